"""Connections from a psycopg_pool pool, with chatstore's errors.

A query function on a connection whose server went away raises
:class:`~chatstore.errors.Unavailable`. Taking a connection from a pool while the
server is down fails earlier, in the pool (``psycopg_pool.PoolTimeout``); these context
managers turn that into the same ``Unavailable``, so a service handles one retryable
error for both::

    pool = AsyncConnectionPool(dsn, check=AsyncConnectionPool.check_connection,
                               kwargs={"autocommit": True})
    async with chatstore.pool.connection_async(pool, timeout=2) as conn:
        await aio.append_message(conn, ...)

Create pools with ``check=...check_connection``: a connection that died while idle in
the pool (a server restart, a terminated backend) is then replaced when it is taken,
instead of failing its first call. Once the server is back the pool reconnects by
itself; the process needs no restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from psycopg import AsyncConnection, Connection
from psycopg_pool import (
    AsyncConnectionPool,
    ConnectionPool,
    PoolClosed,
    PoolTimeout,
    TooManyRequests,
)

from chatstore.errors import InvalidInput, Unavailable

# What a checkout raises when no connection can be had: none came in time, more clients
# wait than max_waiting allows, or the pool is closed (shutting down) or not opened yet.
_NO_CONNECTION = (PoolTimeout, TooManyRequests, PoolClosed)


@contextmanager
def connection(
    pool: ConnectionPool[Any], *, timeout: float | None = None
) -> Iterator[Connection[Any]]:
    """``pool.connection(timeout)``, raising Unavailable when none comes in time (or
    the pool is full of waiters, or closed); errors of the caller's block pass unchanged.
    InvalidInput for a pool that is not a ``ConnectionPool``."""
    if not isinstance(pool, ConnectionPool):
        raise InvalidInput(f"pool must be a psycopg_pool.ConnectionPool, not {type(pool).__name__}")
    in_block = False
    try:
        with pool.connection(timeout=timeout) as conn:
            in_block = True
            yield conn
            in_block = False
    except _NO_CONNECTION as exc:
        if in_block:
            raise
        raise Unavailable(f"no database connection: {exc}") from exc


@asynccontextmanager
async def connection_async(
    pool: AsyncConnectionPool[Any],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (the pool's own checkout timeout)
) -> AsyncIterator[AsyncConnection[Any]]:
    """:func:`connection` for an ``AsyncConnectionPool``."""
    if not isinstance(pool, AsyncConnectionPool):
        raise InvalidInput(
            f"pool must be a psycopg_pool.AsyncConnectionPool, not {type(pool).__name__}"
        )
    in_block = False
    try:
        async with pool.connection(timeout=timeout) as conn:
            in_block = True
            yield conn
            in_block = False
    except _NO_CONNECTION as exc:
        if in_block:
            raise
        raise Unavailable(f"no database connection: {exc}") from exc


__all__ = ["connection", "connection_async"]
