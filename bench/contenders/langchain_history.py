"""langchain-postgres ``PostgresChatMessageHistory`` on psycopg 3, its own table.

A history object per request on one shared connection, as its docs show. It can only
read a whole history (no limit), so "last 50" reads everything and slices; it has no
owner and no conversation listing.
"""

from __future__ import annotations

from typing import Any

import psycopg
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_postgres import PostgresChatMessageHistory

from bench import replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT, Operation, Unsupported
from bench.fixtures import LANGCHAIN_TABLE, Fixtures, langchain_session_id

NO_LISTING = Unsupported("no listing: a history is a bare session UUID, with no owner")


class LangchainHistory:
    is_async = False
    description = "langchain-postgres PostgresChatMessageHistory (psycopg 3, jsonb rows)"

    def __init__(self) -> None:
        self.notes = [
            "reads every message of a history (no LIMIT); last 50 = slice in Python",
            "connection in autocommit mode (its commit() calls become no-ops)",
        ]

    def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        # Untimed writes (append targets, conversations to delete) go through a
        # connection of their own: a batch INSERT on the measured connection would
        # change that session's cached plans (before migration 0004 was fixed, a batch
        # there left the bump trigger seq-scanning conversations; bench/ANALYSIS.md).
        self._setup_conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.langchain_session(self._setup_conn, 50)
        self._doomed: list[str] = []

    def _history(self, session_id: str) -> PostgresChatMessageHistory:
        return PostgresChatMessageHistory(LANGCHAIN_TABLE, session_id, sync_connection=self._conn)

    def _last(self, cid: int, n: int | None) -> list[BaseMessage]:
        messages = self._history(langchain_session_id(cid)).get_messages()
        return messages if n is None else messages[-n:]

    def operations(self) -> dict[str, Operation | Unsupported]:
        fx = self._fx

        def append(messages: list[BaseMessage]) -> None:
            self._history(self._target).add_messages(messages)

        def new_doomed() -> None:
            self._doomed.append(replenish.langchain_session(self._setup_conn, 1000))

        return {
            "append_one": Operation(lambda: append([HumanMessage(content=USER_TEXT)])),
            "append_pair": Operation(
                lambda: append([HumanMessage(content=USER_TEXT), AIMessage(content=ASSISTANT_TEXT)])
            ),
            "last50_of_50": Operation(lambda: self._last(fx.conv_50, 50)),
            "last50_of_10000": Operation(lambda: self._last(fx.conv_10000, 50)),
            "whole_1000": Operation(lambda: self._last(fx.conv_1000, None)),
            "list_recent_20": NO_LISTING,
            "list_page_50": NO_LISTING,
            "delete_1000": Operation(
                lambda: self._history(self._doomed.pop()).clear(), prepare=new_doomed
            ),
        }

    def close(self) -> None:
        self._conn.close()
        self._setup_conn.close()


def make() -> LangchainHistory:
    return LangchainHistory()
