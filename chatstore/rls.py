"""Row-level security: run a transaction as one user, for services that connect as
``chatstore_app``.

Migration ``chatstore_0005_row_level_security`` puts a policy on users, tasks,
conversations and messages that admits only the rows whose owner is the user named by
the transaction-local setting ``chatstore.user_id``, and creates ``chatstore_app``, a
group role with only the privileges the query layer needs. The policies bind members of
that role; the tables' owner and superusers are exempt (``ENABLE``, not ``FORCE``).

A service enables it in three steps:

1. a DBA creates the service's login role as a member of the group, once per server::

       CREATE ROLE chat_api LOGIN PASSWORD '...' IN ROLE chatstore_app;

2. the service connects as ``chat_api`` (its pool's connection string), never as the
   owner that runs the migrations;
3. every request wraps its chatstore calls in :func:`acting_as` (or
   :func:`acting_as_async`) with the authenticated user's id::

       async with pool.connection() as conn, rls.acting_as_async(conn, user_id=uid):
           history = await aio.get_messages(conn, user_id=uid, conversation_id=cid)

The setting is made with ``SET LOCAL``: it ends with the transaction, so a
pooled connection never carries one request's user into the next, also behind PgBouncer
in transaction mode. Outside :func:`acting_as` the role sees no row and can write none.

This is defence in depth against a query that forgets its ``user_id`` filter. It does
not defend against a caller that can run arbitrary SQL as ``chatstore_app``: such a
caller can set the setting itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, Connection, sql

from chatstore import _core
from chatstore.errors import InvalidInput

#: The transaction-local setting the policies read.
SETTING: Final = "chatstore.user_id"
#: The least-privilege group role that migration 0005 creates.
APP_ROLE: Final = "chatstore_app"


def _set(uid: str) -> sql.Composed:
    """``SET LOCAL`` rather than ``set_config(..., true)``: the same transaction-local
    setting, and on Citus the form that reaches the shards' sessions, whose policies
    read it (``citus.propagate_set_commands = 'local'``, set by chatstore.citus)."""
    return sql.SQL("SET LOCAL chatstore.user_id = {}").format(sql.Literal(uid))


def _checked(user_id: object) -> str:
    uid = _core.user_id(user_id)
    if not uid:
        raise InvalidInput("user_id must not be empty")
    return uid


@contextmanager
def acting_as(conn: Connection[Any], *, user_id: str) -> Iterator[Connection[Any]]:
    """A transaction (a savepoint inside the caller's) in which the row-level security
    policies admit only ``user_id``'s rows; it commits when the block ends normally.

    Raises InvalidInput for an empty id or one with NUL, for a connection that is not a
    ``psycopg.Connection``, and on a session whose client_encoding is not UTF8 (as the
    query functions do); a failure to begin or commit
    becomes chatstore's error (Unavailable when the connection is lost), as in the
    query functions. Errors of the caller's own statements in the block pass unchanged.
    """
    uid = _checked(user_id)
    if not isinstance(conn, Connection):
        raise InvalidInput(f"conn must be a psycopg.Connection, not {type(conn).__name__}")
    in_block = False
    try:
        _core.check_session(conn.pgconn)
        with conn.transaction():
            psycopg.Cursor(conn).execute(_set(uid), prepare=False)
            in_block = True
            yield conn
            in_block = False
    except psycopg.Error as exc:
        if in_block:  # the caller's own statement: theirs to handle
            raise
        raise _core.translate(exc) from exc


@asynccontextmanager
async def acting_as_async(
    conn: AsyncConnection[Any], *, user_id: str
) -> AsyncIterator[AsyncConnection[Any]]:
    """:func:`acting_as` for an ``AsyncConnection``."""
    uid = _checked(user_id)
    if not isinstance(conn, AsyncConnection):
        raise InvalidInput(f"conn must be a psycopg.AsyncConnection, not {type(conn).__name__}")
    in_block = False
    try:
        _core.check_session(conn.pgconn)
        async with conn.transaction():
            await psycopg.AsyncCursor(conn).execute(_set(uid), prepare=False)
            in_block = True
            yield conn
            in_block = False
    except psycopg.Error as exc:
        if in_block:  # the caller's own statement: theirs to handle
            raise
        raise _core.translate(exc) from exc


__all__ = ["APP_ROLE", "SETTING", "acting_as", "acting_as_async"]
