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
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from chatstore.errors import Unavailable


@contextmanager
def connection(
    pool: ConnectionPool[Any], *, timeout: float | None = None
) -> Iterator[Connection[Any]]:
    """``pool.connection(timeout)``, raising Unavailable when none comes in time."""
    try:
        with pool.connection(timeout=timeout) as conn:
            yield conn
    except PoolTimeout as exc:
        raise Unavailable(f"no database connection: {exc}") from exc


@asynccontextmanager
async def connection_async(
    pool: AsyncConnectionPool[Any],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (the pool's own checkout timeout)
) -> AsyncIterator[AsyncConnection[Any]]:
    """:func:`connection` for an ``AsyncConnectionPool``."""
    try:
        async with pool.connection(timeout=timeout) as conn:
            yield conn
    except PoolTimeout as exc:
        raise Unavailable(f"no database connection: {exc}") from exc


__all__ = ["connection", "connection_async"]
