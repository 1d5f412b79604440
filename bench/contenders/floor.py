"""The floor: minimal psycopg 3 per operation.

One prepared statement, one round trip, tuples, no validation. The append relies on
the schema's row trigger ``messages_number`` for the message's number (``seq``) and the
conversation's counters and ``updated_at``, as chatstore does. History is read on
``messages_pkey (user_id, conversation_id, seq)``.
"""

from __future__ import annotations

from typing import Any

import psycopg

from bench import replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT, Operation, Unsupported
from bench.fixtures import HEAVY_USER, PAGE_NUMBER, PAGE_SIZE, SPECIAL_USER, WRITER_USER, Fixtures

APPEND_ONE = (
    "INSERT INTO messages (conversation_id, user_id, role, content)"
    " VALUES (%s, %s, %s, %s) RETURNING id, seq, created_at"
)
APPEND_PAIR = (
    "INSERT INTO messages (conversation_id, user_id, role, content)"
    " VALUES (%s, %s, %s, %s), (%s, %s, %s, %s) RETURNING id, seq, created_at"
)
LAST_N = (
    "SELECT id, seq, role, content, created_at FROM messages"
    " WHERE user_id = %s AND conversation_id = %s ORDER BY seq DESC LIMIT %s"
)
WHOLE = (
    "SELECT id, seq, role, content, created_at FROM messages"
    " WHERE user_id = %s AND conversation_id = %s ORDER BY seq"
)
# The sidebar lists the conversations that are not archived (migration 0015), on the
# partial index whose predicate is this literal.
LIST_FIRST = (
    "SELECT id, title, created_at, updated_at FROM conversations WHERE user_id = %s"
    " AND archived_at IS NULL ORDER BY updated_at DESC, id DESC LIMIT %s"
)
LIST_AFTER = (
    "SELECT id, title, created_at, updated_at FROM conversations WHERE user_id = %s"
    " AND archived_at IS NULL AND (updated_at, id) < (%s, %s)"
    " ORDER BY updated_at DESC, id DESC LIMIT %s"
)
DELETE = "DELETE FROM conversations WHERE user_id = %s AND id = %s"


class Floor:
    is_async = False
    description = "psycopg 3, prepared statements, one round trip, tuples"

    def __init__(self) -> None:
        self.notes: list[str] = []
        self._conn: psycopg.Connection[Any] | None = None

    def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
        # Untimed writes (append targets, conversations to delete) go through a
        # connection of their own: a batch INSERT on the measured connection would
        # change that session's cached plans (before migration 0004 was fixed, a batch
        # there left the bump trigger seq-scanning conversations; bench/ANALYSIS.md).
        self._setup_conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.chatstore_conversation(self._setup_conn, WRITER_USER, 50)
        self._doomed: list[int] = []
        # Keyset cursor of the last row on page 49, found untimed.
        cursor = None
        for _ in range(PAGE_NUMBER - 1):
            page = self._list(cursor)
            cursor = (page[-1][3], page[-1][0])
        self._page_cursor = cursor

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None
        return self._conn

    def _list(self, cursor: tuple[Any, Any] | None) -> list[tuple[Any, ...]]:
        if cursor is None:
            return self.conn.execute(LIST_FIRST, (HEAVY_USER, PAGE_SIZE), prepare=True).fetchall()
        return self.conn.execute(
            LIST_AFTER, (HEAVY_USER, *cursor, PAGE_SIZE), prepare=True
        ).fetchall()

    def operations(self) -> dict[str, Operation | Unsupported]:
        conn, fx = self.conn, self._fx

        def append_one() -> object:
            return conn.execute(
                APPEND_ONE, (self._target, WRITER_USER, "user", USER_TEXT), prepare=True
            ).fetchone()

        def append_pair() -> object:
            return conn.execute(
                APPEND_PAIR,
                (
                    self._target,
                    WRITER_USER,
                    "user",
                    USER_TEXT,
                    self._target,
                    WRITER_USER,
                    "assistant",
                    ASSISTANT_TEXT,
                ),
                prepare=True,
            ).fetchall()

        def last50(cid: int) -> Operation:
            def run() -> object:
                rows = conn.execute(LAST_N, (SPECIAL_USER, cid, 50), prepare=True).fetchall()
                rows.reverse()
                return rows

            return Operation(run)

        def whole() -> object:
            return conn.execute(WHOLE, (SPECIAL_USER, fx.conv_1000), prepare=True).fetchall()

        def new_doomed() -> None:
            self._doomed.append(
                replenish.chatstore_conversation(self._setup_conn, WRITER_USER, 1000)
            )

        def delete() -> object:
            return conn.execute(DELETE, (WRITER_USER, self._doomed.pop()), prepare=True)

        return {
            "append_one": Operation(append_one),
            "append_pair": Operation(append_pair),
            "last50_of_50": last50(fx.conv_50),
            "last50_of_10000": last50(fx.conv_10000),
            "whole_1000": Operation(whole),
            "list_recent_20": Operation(lambda: self._list(None)),
            "list_page_50": Operation(lambda: self._list(self._page_cursor)),
            "delete_1000": Operation(delete, prepare=new_doomed),
        }

    def close(self) -> None:
        self.conn.close()
        self._setup_conn.close()


def make() -> Floor:
    return Floor()
