"""Every refusal is a typed error a caller can act on (issue 12 item 8).

Row-level security and missing privileges, a caller's own cancel, and connections or pools
of the wrong kind (or with an unusual cursor factory) reach the caller as
:mod:`chatstore.errors`, never as a plain ``ChatstoreError`` that a service can only
answer with a 500, nor as a raw Python exception.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.rows import namedtuple_row, tuple_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from chatstore import aio, pool, queries, rls
from chatstore.errors import (
    Cancelled,
    ChatstoreError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TimedOut,
    Unavailable,
)
from tests._helpers import Store, snapshot
from tests.reliability_support import app_login
from tests.test_api_session_settings import calls_of_every_function, every_function


def _seed(conn: psycopg.Connection) -> tuple[int, int]:
    """Bob, with a conversation holding a message and a task: their ids."""
    queries.create_user(conn, id="bob", email="bob@example.com")
    conversation = queries.create_conversation(conn, user_id="bob")
    queries.append_message(
        conn, user_id="bob", conversation_id=conversation.id, role="user", content="hi"
    )
    return conversation.id, queries.add_task(conn, user_id="bob", title="t").id


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _connect(dsn: str, kind: str, **kwargs: Any) -> Store:
    if kind == "sync":
        return Store(queries, psycopg.connect(dsn, autocommit=True, **kwargs), kind)
    aconn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, **kwargs)
    return Store(aio, aconn, kind)


async def _close(api: Store) -> None:
    result = api.conn.close()
    if api.kind == "async":
        await result


@pytest.fixture
async def app_store(db_dsn: str, kind: str) -> AsyncIterator[Store]:
    """The API as a service's LOGIN role in chatstore_app."""
    with app_login(db_dsn) as dsn:
        api = await _connect(dsn, kind)
        try:
            yield api
        finally:
            await _close(api)


async def _create_user_acting_as(api: Store, acting: str, new_id: str) -> None:
    if api.kind == "sync":
        with rls.acting_as(api.conn, user_id=acting):
            await api.create_user(id=new_id, email=f"{new_id}@example.org")
    else:
        async with rls.acting_as_async(api.conn, user_id=acting):
            await api.create_user(id=new_id, email=f"{new_id}@example.org")


# --- (a) row-level security and privileges -----------------------------------------------


async def test_a_row_level_security_refusal_is_not_found_like_another_users_record(
    conn: psycopg.Connection, app_store: Store
) -> None:
    """create_user in another user's name (or with no acting_as) is refused by the users
    policy's WITH CHECK: NotFound, as every other function is for another user's id."""
    conversation_id, task_id = _seed(conn)
    before = snapshot(conn)
    api = app_store
    # Outside acting_as: every function, with Bob's own ids, is NotFound.
    for name, kwargs in calls_of_every_function(conversation_id, task_id):
        with pytest.raises(NotFound) as caught:
            await getattr(api, name)(**kwargs)
        assert not caught.value.retryable, name
    # Acting as Alice: creating Bob, or anyone but Alice, is NotFound too.
    for new_id in ("bob", "carol"):
        with pytest.raises(NotFound) as caught:
            await _create_user_acting_as(api, "alice", new_id)
        assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege)
    assert snapshot(conn) == before


async def test_a_role_without_chatstores_privileges_is_permission_denied(
    conn: psycopg.Connection, db_dsn: str, kind: str
) -> None:
    conversation_id, task_id = _seed(conn)
    before = snapshot(conn)
    with app_login(db_dsn, in_app=False) as dsn:
        api = await _connect(dsn, kind)
        try:
            for name, kwargs in calls_of_every_function(conversation_id, task_id):
                with pytest.raises(PermissionDenied) as caught:
                    await getattr(api, name)(**kwargs)
                assert not caught.value.retryable
                assert not isinstance(caught.value, NotFound | Unavailable)
                assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege)
        finally:
            await _close(api)
    assert snapshot(conn) == before


async def test_row_security_turned_off_for_the_app_role_is_permission_denied(
    conn: psycopg.Connection, app_store: Store
) -> None:
    """Not NotFound: the refusal is the session's setting, not the data."""
    _seed(conn)
    api = app_store
    result = api.conn.execute("SET row_security = off")
    if api.kind == "async":
        await result
    with pytest.raises(PermissionDenied, match="row-level security"):
        await api.get_user(user_id="bob")


# --- (b) a caller's own cancel -----------------------------------------------------------


def _wait_until_blocked(observer: psycopg.Connection, pid: int, call: Future[Any]) -> None:
    """Poll until backend ``pid`` waits for a lock (no timing: it must get there), or
    until the call ended some other way (its result then fails the test)."""
    while not call.done() and not _blocked(observer, pid):
        threading.Event().wait(0.01)


def _blocked(observer: psycopg.Connection, pid: int) -> bool:
    query = "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s"
    return observer.execute(query, (pid,)).fetchone() == (True,)


async def test_a_callers_own_cancel_is_cancelled_not_a_retryable_timeout(
    conn: psycopg.Connection, db_dsn: str, kind: str
) -> None:
    """conn.cancel() during an append (blocked on the conversation's row lock): Cancelled,
    not retryable, chained to QueryCanceled; nothing written; the connection serves the
    next call. A statement_timeout on the same wait stays TimedOut (retryable)."""
    conversation_id, _ = _seed(conn)
    before = snapshot(conn)
    api = await _connect(db_dsn, kind)
    blocker = psycopg.connect(db_dsn)
    try:
        blocker.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conversation_id,))
        call: dict[str, Any] = {
            "user_id": "bob",
            "conversation_id": conversation_id,
            "role": "user",
        }
        pid = api.conn.info.backend_pid
        if kind == "sync":
            with ThreadPoolExecutor(1) as ex:
                future = ex.submit(queries.append_message, api.conn, **call, content="x")
                _wait_until_blocked(conn, pid, future)
                api.conn.cancel()
                with pytest.raises(Cancelled) as caught:
                    future.result()
        else:
            task = asyncio.ensure_future(aio.append_message(api.conn, **call, content="x"))
            while not task.done():
                await asyncio.sleep(0.01)
                blocked = conn.execute(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                    (pid,),
                ).fetchone()
                if blocked == (True,):
                    await api.conn.cancel_safe()
                    break
            with pytest.raises(Cancelled) as caught:
                await task
        assert not caught.value.retryable
        assert not isinstance(caught.value, Unavailable)
        assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)
        assert snapshot(conn) == before
        # A statement timeout on the same wait is still a retryable TimedOut.
        result = api.conn.execute("SET statement_timeout = '50ms'")
        if kind == "async":
            await result
        with pytest.raises(TimedOut) as timed_out:
            await api.append_message(**call, content="y")
        assert timed_out.value.retryable
        blocker.rollback()
        result = api.conn.execute("RESET statement_timeout")
        if kind == "async":
            await result
        assert (await api.get_user(user_id="bob")).id == "bob"
        assert snapshot(conn) == before
    finally:
        blocker.close()
        await _close(api)


# --- (c) connections and pools of the wrong kind -----------------------------------------


async def test_a_connection_of_the_wrong_kind_is_invalid_input_before_any_sql(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    conversation_id, task_id = _seed(conn)
    before = snapshot(conn)
    aconn = await psycopg.AsyncConnection.connect(db_dsn, autocommit=True)
    async with aconn:
        for name, kwargs in calls_of_every_function(conversation_id, task_id):
            with pytest.raises(InvalidInput, match="AsyncConnection"):
                await getattr(aio, name)(conn, **kwargs)
            with pytest.raises(InvalidInput, match=r"psycopg\.Connection"):
                getattr(queries, name)(aconn, **kwargs)
        for not_a_connection in (None, "host=db", object()):
            with pytest.raises(InvalidInput):
                queries.get_user(not_a_connection, user_id="bob")  # type: ignore[arg-type]
            with pytest.raises(InvalidInput):
                await aio.get_user(not_a_connection, user_id="bob")  # type: ignore[arg-type]
        with (
            pytest.raises(InvalidInput, match=r"psycopg\.Connection"),
            rls.acting_as(aconn, user_id="bob"),  # type: ignore[arg-type]
        ):
            pass
        with pytest.raises(InvalidInput, match="AsyncConnection"):
            async with rls.acting_as_async(conn, user_id="bob"):  # type: ignore[arg-type]
                pass
        assert aconn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert snapshot(conn) == before


FACTORIES: dict[str, list[dict[str, Any]]] = {
    "sync": [
        {"cursor_factory": psycopg.ClientCursor},
        {"cursor_factory": psycopg.RawCursor},
        {"row_factory": tuple_row},
        {"row_factory": namedtuple_row, "cursor_factory": psycopg.ClientCursor},
    ],
    "async": [
        {"cursor_factory": psycopg.AsyncClientCursor},
        {"cursor_factory": psycopg.AsyncRawCursor},
        {"row_factory": tuple_row},
        {"row_factory": namedtuple_row, "cursor_factory": psycopg.AsyncRawCursor},
    ],
}


@pytest.mark.parametrize("case", range(4))
async def test_a_connections_own_cursor_and_row_factories_change_no_record(
    conn: psycopg.Connection, db_dsn: str, kind: str, case: int
) -> None:
    """chatstore opens its own server-binding cursor with its own row factory: a
    connection made with ClientCursor, RawCursor or another row factory works the same,
    also inside acting_as."""
    api = await _connect(db_dsn, kind, **FACTORIES[kind][case])
    try:
        await every_function(api, conn)
        with app_login(db_dsn) as app_dsn:
            app = await _connect(app_dsn, kind, **FACTORIES[kind][case])
            try:
                await _create_user_acting_as(app, "zed", "zed")
            finally:
                await _close(app)
        assert queries.get_user(conn, user_id="zed").email == "zed@example.org"
    finally:
        await _close(api)


async def test_a_pool_of_the_wrong_kind_closed_or_full_is_a_typed_error(db_dsn: str) -> None:
    sync_pool = ConnectionPool(db_dsn, min_size=1, max_size=1, max_waiting=1, open=False)
    async_pool = AsyncConnectionPool(db_dsn, min_size=1, max_size=1, open=False)
    with pytest.raises(InvalidInput, match="AsyncConnectionPool"):
        async with pool.connection_async(sync_pool):  # type: ignore[arg-type]
            pass
    with (
        pytest.raises(InvalidInput, match="ConnectionPool"),
        pool.connection(async_pool),  # type: ignore[arg-type]
    ):
        pass
    # Not opened (or closed during shutdown): Unavailable, as a pool that cannot connect.
    with pytest.raises(Unavailable, match=r"closed|not open"), pool.connection(sync_pool):
        pass
    with pytest.raises(Unavailable, match=r"closed|not open"):
        async with pool.connection_async(async_pool):
            pass
    # More waiting than max_waiting: psycopg_pool's TooManyRequests is Unavailable too.
    sync_pool.open(wait=True)
    try:
        with pool.connection(sync_pool):  # holds the only connection
            waiting = threading.Thread(target=_wait_for, args=(sync_pool,))
            waiting.start()
            while waiting.is_alive() and sync_pool.get_stats().get("requests_waiting", 0) < 1:
                threading.Event().wait(0.01)
            with pytest.raises(Unavailable) as caught, pool.connection(sync_pool):
                pass
            assert caught.value.retryable
        waiting.join()
    finally:
        sync_pool.close()
    # Errors of the caller's own block pass unchanged.
    with (
        pytest.raises(ChatstoreError, match="mine"),
        ConnectionPool(db_dsn, min_size=1, open=True) as other,
        pool.connection(other),
    ):
        raise ChatstoreError("mine")


def _wait_for(sync_pool: ConnectionPool[Any]) -> None:
    with pool.connection(sync_pool, timeout=60):
        pass
