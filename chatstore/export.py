"""Everything of one user as JSON lines: the access half of a data-subject request.

``export_user`` (on a ``psycopg.AsyncConnection``) and ``export_user_sync`` (on a
``psycopg.Connection``) yield one ``dict`` per record, ready for :func:`json_line`, in
this order (``chatstore export --user ID > file.jsonl`` writes them)::

    {"type": "chatstore-export", "version": 1, "user_id": ..., "exported_at": ...}
    {"type": "user", "id", "email", "name", "created_at"}
    {"type": "task", ...}           each task, by id
    {"type": "conversation", ...}   each conversation, by id
    {"type": "message", ...}        each message, by conversation_id, seq
    {"type": "agent_item", ...}     each agent item, by conversation_id, slot, seq
    {"type": "end", "counts": {"user": 1, "task": ..., ...}}

A record holds its table's columns (sql/queries/export.sql lists them); timestamps are
ISO 8601 in UTC with microseconds; an agent item's ``item`` is the JSON value as it was
stored, parsed. A file without the ``end`` line was cut short. The erasure half is
``delete_user``: it removes the user's tasks, conversations, messages and agent items.

The one exception to "transactions belong to the caller": an export opens its own
REPEATABLE READ READ ONLY transaction, so every record comes from one snapshot (an
append made during the export shows up whole or not at all), and server-side cursors,
which need a transaction, read each table in batches: memory stays flat whatever the
user holds. It needs a connection outside any transaction (autocommit, or idle); the
transaction ends with the iteration (stop early with ``contextlib.aclosing`` or
``closing``). Do not use the connection for anything else until then. In it the export
acts as the user for row-level security (as ``chatstore.rls.acting_as`` does), so a
service connected as a member of ``chatstore_app`` exports as well as the owner.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, LiteralString

import psycopg
from psycopg import (
    AsyncConnection,
    AsyncCursor,
    AsyncServerCursor,
    Connection,
    Cursor,
    ServerCursor,
    pq,
    sql,
)
from psycopg.rows import dict_row

from chatstore import _core, rls
from chatstore._sql import QUERIES
from chatstore.errors import ChatstoreError, InvalidInput, NotFound

__all__ = ["FORMAT", "VERSION", "export_user", "export_user_sync", "json_line"]

FORMAT: Final = "chatstore-export"
VERSION: Final = 1

# Must be the transaction's first statement; REPEATABLE READ: one snapshot for every
# statement after it (on Citus too: the coordinator opens the worker's transaction at
# the same level). READ ONLY: an export never writes, and so may run on a standby.
# Then the row-level security setting, as rls.acting_as makes it: a service connected as
# a member of chatstore_app exports with no more (a no-op for the tables' owner).
_BEGIN: Final = sql.SQL("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; {}")


def _begin(user_id: str) -> sql.Composed:
    return _BEGIN.format(rls._set(user_id))


# (record type, named query, rows per FETCH). A batch is what the export holds at once:
# its size bounds memory by the largest rows (a message up to 32,000 characters, an agent
# item up to 4 MiB); a round trip per 500 rows costs nothing measurable next to them.
_TABLES: Final[tuple[tuple[str, LiteralString, int], ...]] = (
    ("task", "export_tasks", 1000),
    ("conversation", "export_conversations", 1000),
    ("message", "export_messages", 500),
    ("agent_item", "export_agent_items", 100),
)


def export_user(conn: AsyncConnection[Any], *, user_id: str) -> AsyncGenerator[dict[str, Any]]:
    """Every record of ``user_id``, as described in this module's docstring; NotFound
    when there is no such user (before any record). Arguments are checked here, the
    connection's state when the iteration starts."""
    if not isinstance(conn, AsyncConnection):
        raise InvalidInput(f"conn must be a psycopg.AsyncConnection, not {type(conn).__name__}")
    return _export_async(conn, _core.user_id(user_id))


def export_user_sync(conn: Connection[Any], *, user_id: str) -> Generator[dict[str, Any]]:
    """:func:`export_user` on a sync connection."""
    if not isinstance(conn, Connection):
        raise InvalidInput(f"conn must be a psycopg.Connection, not {type(conn).__name__}")
    return _export_sync(conn, _core.user_id(user_id))


async def _export_async(conn: AsyncConnection[Any], uid: str) -> AsyncGenerator[dict[str, Any]]:
    _check_idle(conn.pgconn)
    params: dict[str, object] = {"user_id": uid}
    counts = {"user": 1} | {kind: 0 for kind, _, _ in _TABLES}
    try:
        async with conn.transaction():
            async with AsyncCursor(conn, row_factory=dict_row) as cur:
                await cur.execute(_begin(uid))
                await cur.execute(QUERIES["export_user"], params, binary=True)
                user = await cur.fetchone()
            for record in _opening(uid, user):
                yield record
            for kind, query, batch in _TABLES:
                async with AsyncServerCursor(
                    conn, f"chatstore_{query}", row_factory=dict_row
                ) as sc:
                    sc.itersize = batch
                    await sc.execute(QUERIES[query], params, binary=True)
                    async for row in sc:
                        counts[kind] += 1
                        yield _record(kind, row)
    except psycopg.Error as exc:
        raise _core.translate(exc) from exc
    yield {"type": "end", "counts": counts}


def _export_sync(conn: Connection[Any], uid: str) -> Generator[dict[str, Any]]:
    # The same steps as _export_async, without await.
    _check_idle(conn.pgconn)
    params: dict[str, object] = {"user_id": uid}
    counts = {"user": 1} | {kind: 0 for kind, _, _ in _TABLES}
    try:
        with conn.transaction():
            with Cursor(conn, row_factory=dict_row) as cur:
                cur.execute(_begin(uid))
                cur.execute(QUERIES["export_user"], params, binary=True)
                user = cur.fetchone()
            yield from _opening(uid, user)
            for kind, query, batch in _TABLES:
                with ServerCursor(conn, f"chatstore_{query}", row_factory=dict_row) as sc:
                    sc.itersize = batch
                    sc.execute(QUERIES[query], params, binary=True)
                    for row in sc:
                        counts[kind] += 1
                        yield _record(kind, row)
    except psycopg.Error as exc:
        raise _core.translate(exc) from exc
    yield {"type": "end", "counts": counts}


def _check_idle(pgconn: psycopg.pq.abc.PGconn) -> None:
    # A transaction already open has (or may take) its own snapshot, at its own level:
    # the export could not be one snapshot. A closed connection passes: its first
    # statement raises Unavailable.
    if pgconn.transaction_status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
        raise InvalidInput(
            "export_user runs its own transaction (one snapshot): pass a connection that"
            " is not in a transaction (autocommit, or idle)"
        )
    if pgconn.status == pq.ConnStatus.OK:
        _core.check_session(pgconn)


def _opening(uid: str, user: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The header and the user's record; NotFound before either without a user."""
    if user is None:
        raise NotFound("no such user")
    header = {
        "type": FORMAT,
        "version": VERSION,
        "user_id": uid,
        "exported_at": _iso(user.pop("exported_at")),
    }
    return [header, _record("user", user)]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _record(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"type": kind}
    for name, value in row.items():
        record[name] = _iso(value) if isinstance(value, datetime) else value
    return record


def json_line(record: Mapping[str, Any]) -> bytes:
    """One record as a line of UTF-8 JSON, ``\\n`` included. An agent item keeps the
    text chatstore stored it as (no spaces, characters unescaped, key order kept); one
    that holds a lone surrogate makes its line ASCII, with ``\\ud800`` escapes."""
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        try:
            return text.encode("utf-8") + b"\n"
        except UnicodeEncodeError:
            return json.dumps(record, allow_nan=False, separators=(",", ":")).encode() + b"\n"
    except ValueError as exc:  # a number like 1e999, written by SQL outside chatstore
        raise ChatstoreError(f"a {record.get('type')} record is not valid JSON: {exc}") from exc
