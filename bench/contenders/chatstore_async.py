"""chatstore's asynchronous API (``chatstore.aio``), records included."""

from __future__ import annotations

from typing import Any

import psycopg

from bench import replenish
from bench.contenders.base import Operation, Unsupported
from bench.contenders.chatstore_sync import chatstore_operations
from bench.fixtures import HEAVY_USER, PAGE_NUMBER, PAGE_SIZE, WRITER_USER, Fixtures


class ChatstoreAsync:
    is_async = True
    description = "chatstore.aio on one psycopg 3 AsyncConnection (autocommit), records built"

    def __init__(self) -> None:
        from chatstore import aio

        self.q = aio
        self.notes: list[str] = []

    async def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        self._raw: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.chatstore_conversation(self._raw, WRITER_USER, 50)
        self._doomed: list[int] = []
        cursor = None
        for _ in range(PAGE_NUMBER - 1):
            page = await self.q.list_conversations(
                self._conn, user_id=HEAVY_USER, limit=PAGE_SIZE, cursor=cursor
            )
            cursor = page.next_cursor
        self._page_cursor = cursor

    def operations(self) -> dict[str, Operation | Unsupported]:
        async def new_doomed() -> None:
            self._doomed.append(replenish.chatstore_conversation(self._raw, WRITER_USER, 1000))

        return chatstore_operations(self, new_doomed)

    async def close(self) -> None:
        await self._conn.close()
        self._raw.close()


def make() -> ChatstoreAsync:
    return ChatstoreAsync()
