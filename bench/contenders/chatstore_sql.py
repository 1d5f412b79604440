"""Diagnostic: chatstore's own named SQL, run the floor's way (prepared, tuples).

Not a contender a user would pick. Set beside the floor and chatstore, it splits
chatstore's overhead into what its SQL costs (extra columns, the owner join) and what
its Python costs (argument checks, dict rows, pydantic records).
"""

from __future__ import annotations

from typing import Any

import psycopg

from bench import replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT, Operation, Unsupported
from bench.fixtures import HEAVY_USER, PAGE_NUMBER, PAGE_SIZE, SPECIAL_USER, WRITER_USER, Fixtures


class ChatstoreSQL:
    is_async = False
    description = (
        "diagnostic: chatstore's named SQL executed like the floor "
        "(prepared, tuples, no checks, no records)"
    )

    def __init__(self) -> None:
        from chatstore._sql import QUERIES

        self.queries = QUERIES
        self.notes: list[str] = []

    def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._conn: psycopg.Connection[Any] = psycopg.connect(
            dsn, autocommit=True, prepare_threshold=0
        )
        # Untimed writes (append targets, conversations to delete) go through a
        # connection of their own: a batch INSERT on the measured connection would
        # change that session's cached plans (before migration 0004 was fixed, a batch
        # there left the bump trigger seq-scanning conversations; bench/ANALYSIS.md).
        self._setup_conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.chatstore_conversation(self._setup_conn, WRITER_USER, 50)
        self._doomed: list[int] = []
        before: tuple[Any, Any] = (None, None)
        for _ in range(PAGE_NUMBER - 1):
            cur = self._conn.execute(
                self.queries["list_conversations"], self._list_params(before), prepare=True
            )
            assert cur.description is not None
            columns = [c.name for c in cur.description]
            last = cur.fetchall()[PAGE_SIZE - 1]
            before = (last[columns.index("updated_at")], last[columns.index("id")])
        self._before = before

    def _run(self, name: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._conn.execute(self.queries[name], params, prepare=True).fetchall()

    @staticmethod
    def _list_params(before: tuple[Any, Any]) -> dict[str, Any]:
        return {
            "user_id": HEAVY_USER,
            "before_updated_at": before[0],
            "before_id": before[1],
            "limit": PAGE_SIZE + 1,
        }

    def _list(self, before: tuple[Any, Any]) -> list[tuple[Any, ...]]:
        return self._run("list_conversations", self._list_params(before))

    def operations(self) -> dict[str, Operation | Unsupported]:
        fx = self._fx

        def messages(cid: int, limit: int | None) -> Operation:
            return Operation(
                lambda: self._run(
                    "get_messages",
                    {
                        "user_id": SPECIAL_USER,
                        "conversation_id": cid,
                        "limit": limit,
                        "before": None,
                        "after": None,
                    },
                )
            )

        def new_doomed() -> None:
            self._doomed.append(
                replenish.chatstore_conversation(self._setup_conn, WRITER_USER, 1000)
            )

        return {
            "append_one": Operation(
                lambda: self._run(
                    "append_message",
                    {
                        "user_id": WRITER_USER,
                        "conversation_id": self._target,
                        "role": "user",
                        "content": USER_TEXT,
                    },
                )
            ),
            "append_pair": Operation(
                lambda: self._run(
                    "append_messages",
                    {
                        "user_id": WRITER_USER,
                        "conversation_id": self._target,
                        "roles": ["user", "assistant"],
                        "contents": [USER_TEXT, ASSISTANT_TEXT],
                    },
                )
            ),
            "last50_of_50": messages(fx.conv_50, 50),
            "last50_of_10000": messages(fx.conv_10000, 50),
            "whole_1000": messages(fx.conv_1000, None),
            "list_recent_20": Operation(lambda: self._list((None, None))),
            "list_page_50": Operation(lambda: self._list(self._before)),
            "delete_1000": Operation(
                lambda: self._run(
                    "delete_conversation",
                    {"user_id": WRITER_USER, "conversation_id": self._doomed.pop()},
                ),
                prepare=new_doomed,
            ),
        }

    def close(self) -> None:
        self._conn.close()
        self._setup_conn.close()


def make() -> ChatstoreSQL:
    return ChatstoreSQL()
