"""Shared by the API tests: one fixture runs each test against chatstore.queries (sync)
and chatstore.aio (async), and a snapshot proves that a failed call changed nothing."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from types import ModuleType
from typing import Any

import psycopg
import pytest

from chatstore import aio, queries


class Store:
    """The API of one module, called the same way for both: ``await store.fn(**kw)``."""

    def __init__(self, module: ModuleType, conn: Any, kind: str) -> None:
        self.module = module
        self.conn = conn
        self.kind = kind

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        fn = getattr(self.module, name)

        async def call(**kwargs: Any) -> Any:
            result = fn(self.conn, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return call


@pytest.fixture(params=["sync", "async"])
async def store(
    request: pytest.FixtureRequest, conn: psycopg.Connection, db_dsn: str
) -> AsyncIterator[Store]:
    """The API on this test's database: ``queries`` on ``conn``, or ``aio`` on its own
    autocommit AsyncConnection."""
    if request.param == "sync":
        yield Store(queries, conn, "sync")
        return
    aconn = await psycopg.AsyncConnection.connect(db_dsn, autocommit=True)
    try:
        yield Store(aio, aconn, "async")
    finally:
        await aconn.close()


@pytest.fixture
async def closed(store: Store, db_dsn: str) -> AsyncIterator[Store]:
    """The same API on a closed connection of the same kind: a call that sends SQL
    raises Unavailable, so an InvalidInput from it proves no SQL was attempted."""
    if store.kind == "sync":
        sync_conn = psycopg.connect(db_dsn)
        sync_conn.close()
        yield Store(store.module, sync_conn, store.kind)
    else:
        async_conn = await psycopg.AsyncConnection.connect(db_dsn)
        await async_conn.close()
        yield Store(store.module, async_conn, store.kind)


TABLES = ("users", "tasks", "conversations", "messages", "agent_items")


def snapshot(conn: psycopg.Connection) -> dict[str, object]:
    """Every row of every table and every sequence position: equal before and after a
    call means the call wrote nothing."""
    state: dict[str, object] = {}
    for table in TABLES:
        row = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
            f" FROM {table} AS t"
        ).fetchone()
        state[table] = row
    # Every sequence but the messages' identity: an append is one INSERT ... VALUES (one
    # shard on Citus), which draws its id before messages_number finds no conversation
    # and refuses it. Ids are handles, not an order (that is seq); a gap is harmless.
    state["sequences"] = conn.execute(
        "SELECT sequencename, last_value FROM pg_sequences"
        " WHERE sequencename <> 'messages_id_seq' ORDER BY sequencename"
    ).fetchall()
    return state


async def user(store: Store, user_id: str = "alice") -> Any:
    return await store.create_user(id=user_id, email=f"{user_id}@example.com")
