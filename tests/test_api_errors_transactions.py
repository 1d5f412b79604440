"""Error mapping, transactions owned by the caller, and prepared statements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import LiteralString

import psycopg
import pytest

from chatstore import _core, aio, queries
from chatstore.errors import (
    AlreadyExists,
    ChatstoreError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from tests import _helpers
from tests._helpers import Store, user

store = _helpers.store


@pytest.fixture(params=["sync", "async"])
async def fresh(request: pytest.FixtureRequest, db_dsn: str) -> AsyncIterator[Store]:
    """The API on a new connection of its own (not in autocommit: psycopg's default)."""
    if request.param == "sync":
        sync_conn = psycopg.connect(db_dsn)
        try:
            yield Store(queries, sync_conn, "sync")
        finally:
            sync_conn.close()
    else:
        async_conn = await psycopg.AsyncConnection.connect(db_dsn)
        try:
            yield Store(aio, async_conn, "async")
        finally:
            await async_conn.close()


async def commit(api: Store) -> None:
    result = api.conn.commit()
    if api.kind == "async":
        await result


async def rollback(api: Store) -> None:
    result = api.conn.rollback()
    if api.kind == "async":
        await result


def translate(
    conn: psycopg.Connection, sql: LiteralString, params: Sequence[object] = ()
) -> ChatstoreError:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(sql, params)
    return _core.translate(caught.value)


def test_constraint_errors_map_by_constraint_name(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO users (id, email) VALUES ('ann', 'ann@example.com')")
    conn.execute("INSERT INTO conversations (user_id) VALUES ('ann')")
    fk = translate(
        conn,
        "INSERT INTO messages (conversation_id, user_id, role, content)"
        " VALUES (999, 'ann', 'user', 'x')",
    )
    assert isinstance(fk, NotFound)
    assert fk.constraint == "messages_conversation_fkey"
    no_user = translate(conn, "INSERT INTO tasks (user_id, title) VALUES ('ghost', 'x')")
    assert (type(no_user), no_user.constraint) == (NotFound, "tasks_user_id_fkey")
    taken = translate(conn, "INSERT INTO users (id, email) VALUES ('bob', 'ann@example.com')")
    assert (type(taken), taken.constraint) == (AlreadyExists, "users_email_key")
    (conversation,) = conn.execute("SELECT id FROM conversations").fetchone() or (0,)
    role = translate(
        conn,
        "INSERT INTO messages (conversation_id, user_id, role, content)"
        " VALUES (%s, 'ann', 'system', 'x')",
        [conversation],
    )
    assert (type(role), role.constraint) == (InvalidInput, "messages_role_check")
    conn.execute(
        "INSERT INTO messages (conversation_id, user_id, role, content)"
        " SELECT id, user_id, 'user', 'x' FROM conversations"
    )
    update = translate(conn, "UPDATE messages SET content = 'changed'")
    assert (type(update), update.constraint) == (InvalidInput, "messages_append_only")
    title = translate(conn, "UPDATE conversations SET title = ' padded'")
    assert (type(title), title.constraint) == (InvalidInput, "conversations_title_check")
    other = translate(conn, "SELECT * FROM no_such_table")
    assert type(other) is ChatstoreError
    assert not other.retryable


async def test_a_lost_connection_is_a_retryable_unavailable(
    fresh: Store, conn: psycopg.Connection
) -> None:
    await user(fresh, "ann")
    await commit(fresh)
    pid = fresh.conn.info.backend_pid
    # ::integer: Citus adds a pg_terminate_backend(bigint, bigint) overload.
    conn.execute("SELECT pg_terminate_backend(%s::integer)", [pid])
    with pytest.raises(Unavailable) as caught:
        await fresh.get_user(user_id="ann")
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    with pytest.raises(Unavailable):  # and on the now closed connection
        await fresh.get_user(user_id="ann")


async def test_functions_join_the_callers_transaction_and_never_commit(
    fresh: Store, conn: psycopg.Connection
) -> None:
    await user(fresh, "ann")
    conversation = await fresh.create_conversation(user_id="ann")
    await fresh.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content="hi"
    )
    # Uncommitted: another connection sees nothing, and a rollback undoes it all.
    assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
    await rollback(fresh)
    with pytest.raises(NotFound):
        await fresh.get_user(user_id="ann")
    await user(fresh, "ann")
    await commit(fresh)
    assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


async def test_not_found_by_a_query_leaves_the_callers_transaction_usable(
    fresh: Store,
) -> None:
    await user(fresh, "ann")
    with pytest.raises(NotFound):
        await fresh.create_conversation(user_id="bob")
    with pytest.raises(NotFound):
        await fresh.get_conversation(user_id="bob", conversation_id=1)
    with pytest.raises(NotFound):
        await fresh.get_messages(user_id="ann", conversation_id=1)
    assert (await fresh.get_user(user_id="ann")).id == "ann"


async def test_an_append_to_no_conversation_is_not_found_raised_by_the_database(
    fresh: Store,
) -> None:
    """An append is one INSERT ... VALUES (one shard on Citus); messages_number refuses it
    with the foreign key's error, so the caller's transaction must be rolled back."""
    await user(fresh, "ann")
    await commit(fresh)
    with pytest.raises(NotFound) as caught:
        await fresh.append_message(user_id="ann", conversation_id=1, role="user", content="x")
    assert caught.value.constraint == "messages_conversation_fkey"
    with pytest.raises(ChatstoreError):
        await fresh.get_user(user_id="ann")
    await rollback(fresh)
    assert (await fresh.get_user(user_id="ann")).id == "ann"


async def test_a_call_in_an_aborted_transaction_is_a_chatstore_error(fresh: Store) -> None:
    await user(fresh, "ann")
    with pytest.raises(AlreadyExists):
        await user(fresh, "ann")
    with pytest.raises(ChatstoreError) as caught:
        await fresh.get_user(user_id="ann")
    assert isinstance(caught.value.__cause__, psycopg.errors.InFailedSqlTransaction)
    await rollback(fresh)  # the caller's to do; then the connection serves again
    with pytest.raises(NotFound):
        await fresh.get_user(user_id="ann")


@pytest.mark.parametrize("threshold", [0, None])
async def test_statements_are_prepared_unless_disabled_for_pgbouncer(
    db_dsn: str, kind: str, threshold: int | None
) -> None:
    """prepare_threshold=0 prepares at once; None (PgBouncer transaction mode) never."""
    count = (
        "SELECT count(*), count(*) FILTER (WHERE parameter_types && '{smallint,integer}')"
        " FROM pg_prepared_statements"
    )
    if kind == "sync":
        with psycopg.connect(db_dsn, autocommit=True, prepare_threshold=threshold) as conn:
            api = Store(queries, conn, kind)
            await run_a_little_of_everything(api)
            row = conn.execute(count, prepare=False).fetchone()
    else:
        aconn = await psycopg.AsyncConnection.connect(
            db_dsn, autocommit=True, prepare_threshold=threshold
        )
        async with aconn:
            api = Store(aio, aconn, kind)
            await run_a_little_of_everything(api)
            row = await (await aconn.execute(count, prepare=False)).fetchone()
    assert row is not None
    assert (row[0] > 5) if threshold == 0 else (row[0] == 0)
    assert row[1] == 0, "ids and limits are sent as bigint: one statement per query"


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def run_a_little_of_everything(api: Store) -> None:
    for round_ in range(3):
        uid = f"user{round_}"
        await user(api, uid)
        conversation = await api.create_conversation(user_id=uid)
        await api.append_message(
            user_id=uid, conversation_id=conversation.id, role="user", content="hi"
        )
        await api.append_messages(
            user_id=uid, conversation_id=conversation.id, messages=[("assistant", "yo")]
        )
        assert len(await api.get_messages(user_id=uid, conversation_id=conversation.id)) == 2
        page = await api.list_conversations(user_id=uid, limit=1)
        assert page.items[0].id == conversation.id
        task = await api.add_task(user_id=uid, title="t")
        await api.complete_task(user_id=uid, task_id=task.id)
        assert len(await api.list_tasks(user_id=uid, status="completed")) == 1


def test_cursor_round_trips_and_is_opaque() -> None:
    moment = datetime(2026, 2, 9, 10, 0, 0, 123456, tzinfo=UTC)
    cursor = _core.encode_cursor(moment, 42)
    assert len(cursor) == 23
    assert "42" not in cursor
    assert _core.decode_cursor(cursor) == (moment, 42)
