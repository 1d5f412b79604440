"""chatstore's synchronous API (``chatstore.queries``), records included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from bench import replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT, Operation, Unsupported
from bench.fixtures import HEAVY_USER, PAGE_NUMBER, PAGE_SIZE, SPECIAL_USER, WRITER_USER, Fixtures


def new_messages(pairs: list[tuple[str, str]]) -> list[Any]:
    """The ``messages`` argument of ``append_messages``: ``(role, content)`` pairs."""
    return list(pairs)


def chatstore_operations(
    contender: Any, new_doomed: Callable[[], Any]
) -> dict[str, Operation | Unsupported]:
    """The measured calls of ``chatstore.queries`` or ``chatstore.aio`` (``contender.q``):
    the same calls either way; the async module's return coroutines, which the worker
    awaits. ``new_doomed`` replenishes the conversations that ``delete_1000`` removes."""
    q, conn, fx = contender.q, contender._conn, contender._fx
    pair = new_messages([("user", USER_TEXT), ("assistant", ASSISTANT_TEXT)])

    def last50(cid: int) -> Operation:
        return Operation(
            lambda: q.get_messages(conn, user_id=SPECIAL_USER, conversation_id=cid, limit=50)
        )

    return {
        "append_one": Operation(
            lambda: q.append_message(
                conn,
                user_id=WRITER_USER,
                conversation_id=contender._target,
                role="user",
                content=USER_TEXT,
            )
        ),
        "append_pair": Operation(
            lambda: q.append_messages(
                conn, user_id=WRITER_USER, conversation_id=contender._target, messages=pair
            )
        ),
        "last50_of_50": last50(fx.conv_50),
        "last50_of_10000": last50(fx.conv_10000),
        "whole_1000": Operation(
            lambda: q.get_messages(conn, user_id=SPECIAL_USER, conversation_id=fx.conv_1000)
        ),
        "list_recent_20": Operation(
            lambda: q.list_conversations(conn, user_id=HEAVY_USER, limit=PAGE_SIZE)
        ),
        "list_page_50": Operation(
            lambda: q.list_conversations(
                conn, user_id=HEAVY_USER, limit=PAGE_SIZE, cursor=contender._page_cursor
            )
        ),
        "delete_1000": Operation(
            lambda: q.delete_conversation(
                conn, user_id=WRITER_USER, conversation_id=contender._doomed.pop()
            ),
            prepare=new_doomed,
        ),
    }


class ChatstoreSync:
    is_async = False
    description = "chatstore.queries on one psycopg 3 connection (autocommit), records built"

    def __init__(self) -> None:
        from chatstore import queries

        self.q = queries
        self.notes: list[str] = []

    def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        # Untimed writes (append targets, conversations to delete) go through a
        # connection of their own: a batch INSERT on the measured connection would
        # change that session's cached plans (before migration 0004 was fixed, a batch
        # there left the bump trigger seq-scanning conversations; bench/ANALYSIS.md).
        self._setup_conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.chatstore_conversation(self._setup_conn, WRITER_USER, 50)
        self._doomed: list[int] = []
        cursor = None
        for _ in range(PAGE_NUMBER - 1):
            cursor = self.q.list_conversations(
                self._conn, user_id=HEAVY_USER, limit=PAGE_SIZE, cursor=cursor
            ).next_cursor
        self._page_cursor = cursor

    def operations(self) -> dict[str, Operation | Unsupported]:
        def new_doomed() -> None:
            self._doomed.append(
                replenish.chatstore_conversation(self._setup_conn, WRITER_USER, 1000)
            )

        return chatstore_operations(self, new_doomed)

    def close(self) -> None:
        self._conn.close()
        self._setup_conn.close()


def make() -> ChatstoreSync:
    return ChatstoreSync()
