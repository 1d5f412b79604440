"""Faults: killed backends, a restarting server, timeouts and a failing migration.

Every fault leaves the data all-or-nothing, surfaces as one of chatstore's typed errors,
and the next call (through the same pool, in the same process) succeeds.
The server restarts happen on a private PostgreSQL of this module, never the shared one.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from chatstore import aio, devserver, migrations, queries
from chatstore import pool as cpool
from chatstore.errors import TimedOut, Unavailable
from chatstore.models import Message
from tests.catalog import snapshot
from tests.reliability_support import (
    Blocker,
    PrivateServer,
    backend_waiting_on,
    terminate,
    wait_until,
)


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``fn`` in a thread; what it raised lands in the returned list."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


def _killed_while_waiting(dsn: str, waiting_on: str, fn: Callable[[], Any]) -> list[BaseException]:
    """Run ``fn`` in a thread, kill its backend once it waits in a query starting with
    ``waiting_on``, and return what ``fn`` raised."""
    thread, raised = _in_thread(fn)
    wait_until(lambda: backend_waiting_on(dsn, waiting_on) is not None)
    pid = backend_waiting_on(dsn, waiting_on)
    assert pid is not None
    terminate(dsn, pid)
    thread.join(10)
    return raised


def _pool(dsn: str, size: int = 2) -> ConnectionPool[Any]:
    return ConnectionPool(
        dsn,
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True},
        check=ConnectionPool.check_connection,
        open=True,
    )


def _conversation_with(conn: psycopg.Connection, n: int) -> int:
    queries.create_user(conn, id="alice", email="alice@example.com")
    conv = queries.create_conversation(conn, user_id="alice", title="t")
    if n:
        queries.append_messages(
            conn,
            user_id="alice",
            conversation_id=conv.id,
            messages=[("user" if i % 2 == 0 else "assistant", f"m{i}") for i in range(n)],
        )
    return conv.id


def _state(conn: psycopg.Connection) -> tuple[Any, ...]:
    return (
        conn.execute("SELECT id, title, updated_at FROM conversations ORDER BY id").fetchall(),
        conn.execute("SELECT id, conversation_id, content FROM messages ORDER BY id").fetchall(),
    )


# --- a backend killed in the middle of a call --------------------------------------------


def test_fault_a_backend_killed_during_append_messages_stores_none_and_the_pool_recovers(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    conv = _conversation_with(conn, 3)
    before = _state(conn)
    batch = [("user", f"turn {i}") for i in range(500)]
    with _pool(db_dsn) as pool:
        # The foreign key check takes a KEY SHARE lock on the conversation, which waits
        # for this FOR UPDATE: the 500 rows are inserted, the statement not finished.
        locker = psycopg.connect(db_dsn)
        locker.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conv,))

        def append() -> None:
            with cpool.connection(pool, timeout=5) as c:
                queries.append_messages(
                    c,
                    user_id="alice",
                    conversation_id=conv,
                    messages=batch,  # type: ignore[arg-type]
                )

        try:
            raised = _killed_while_waiting(db_dsn, "INSERT INTO messages", append)
        finally:
            locker.close()
        assert len(raised) == 1
        assert isinstance(raised[0], Unavailable), raised
        assert raised[0].retryable
        assert isinstance(raised[0].__cause__, psycopg.OperationalError)
        assert _state(conn) == before
        # The next call through the same pool succeeds.
        with cpool.connection(pool, timeout=5) as c:
            stored = queries.append_messages(
                c,
                user_id="alice",
                conversation_id=conv,
                messages=batch,  # type: ignore[arg-type]
            )
        assert len(stored) == 500


def _conversation_state(conn: psycopg.Connection, conv: int) -> tuple[Any, ...]:
    """What a turn moves: the conversation's title, message_count, last_message_at and
    updated_at, and its messages with their numbers."""
    row = conn.execute(
        "SELECT title, message_count, last_message_at, updated_at FROM conversations WHERE id = %s",
        (conv,),
    ).fetchone()
    assert row is not None
    messages = conn.execute(
        "SELECT seq, role, content FROM messages WHERE conversation_id = %s ORDER BY seq",
        (conv,),
    ).fetchall()
    return (*row, messages)


def _turn(pool: ConnectionPool[Any], conv: int, between: Callable[[int], None]) -> list[Message]:
    """A service's turn: the question and the reply appended in one transaction of the
    caller, on a connection of ``pool``; ``between`` gets its backend's pid between them."""
    with cpool.connection(pool, timeout=5) as c, c.transaction():
        question = queries.append_message(
            c, user_id="alice", conversation_id=conv, role="user", content="Q"
        )
        between(c.info.backend_pid)
        reply = queries.append_message(
            c, user_id="alice", conversation_id=conv, role="assistant", content="A"
        )
    return [question, reply]


def test_fault_a_backend_killed_mid_turn_leaves_no_half_turn_in_a_caller_transaction(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    queries.create_user(conn, id="alice", email="alice@example.com")
    # Untitled, with one message: the question would number itself 2 and title it.
    conv = queries.create_conversation(conn, user_id="alice").id
    queries.append_message(
        conn, user_id="alice", conversation_id=conv, role="assistant", content="Hello"
    )
    before = _conversation_state(conn, conv)
    assert before[:2] == (None, 1)
    with _pool(db_dsn, size=1) as pool:
        # The question is stored (in the transaction), then its backend dies.
        with pytest.raises(Unavailable) as info:
            _turn(pool, conv, lambda pid: _kill(db_dsn, pid))
        assert info.value.retryable
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        assert _conversation_state(conn, conv) == before, "no half turn, counters unmoved"
        # The retried turn, through the same pool, numbers on from where it was.
        stored = _turn(pool, conv, lambda pid: None)
    assert [(m.seq, m.content) for m in stored] == [(2, "Q"), (3, "A")]
    after = _conversation_state(conn, conv)
    assert after[:2] == ("Q", 3)
    assert after[4] == [(1, "assistant", "Hello"), (2, "user", "Q"), (3, "assistant", "A")]


def _gone(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row == (0,)


def _kill(dsn: str, pid: int) -> None:
    """Terminate backend ``pid`` and wait until it is gone."""
    terminate(dsn, pid)
    wait_until(lambda: _gone(dsn, pid), what=f"backend {pid} to exit")


def _append_through(pool: ConnectionPool[Any], conv: int, handed: list[int]) -> None:
    """Append through ``pool``, noting the backend of the connection it handed out."""
    with cpool.connection(pool, timeout=5) as c:
        handed.append(c.info.backend_pid)
        queries.append_message(
            c, user_id="alice", conversation_id=conv, role="user", content="lost"
        )


async def _append_through_async(
    pool: AsyncConnectionPool[Any], conv: int, handed: list[int]
) -> None:
    async with cpool.connection_async(pool, timeout=5) as c:
        handed.append(c.info.backend_pid)
        await aio.append_message(
            c, user_id="alice", conversation_id=conv, role="user", content="lost"
        )


def test_fault_a_dead_pooled_connection_fails_its_call_with_unavailable_then_is_replaced(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    conv = _conversation_with(conn, 0)
    # A pool without check=: it hands out a connection whose backend died while idle,
    # and the call on it is what fails.
    with ConnectionPool(
        db_dsn, min_size=1, max_size=1, kwargs={"autocommit": True}, open=True
    ) as pool:
        with cpool.connection(pool, timeout=5) as c:
            dead = c.info.backend_pid
        _kill(db_dsn, dead)
        handed: list[int] = []
        with pytest.raises(Unavailable) as info:
            _append_through(pool, conv, handed)
        assert handed == [dead], "the call ran on the dead connection itself"
        assert info.value.retryable
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        # The pool drops it when it comes back; the retry gets a new one.
        with cpool.connection(pool, timeout=5) as c:
            assert c.info.backend_pid != dead
            queries.append_message(
                c, user_id="alice", conversation_id=conv, role="user", content="retried"
            )
    # With check=, the same death while idle is replaced at checkout and never seen; a
    # backend that dies after checkout is not, and its call is Unavailable too.
    with _pool(db_dsn, size=1) as pool:
        with cpool.connection(pool, timeout=5) as c:
            dead = c.info.backend_pid
        _kill(db_dsn, dead)
        with cpool.connection(pool, timeout=5) as c:
            assert c.info.backend_pid != dead, "check_connection replaced it"
            queries.get_conversation(c, user_id="alice", conversation_id=conv)
            dead = c.info.backend_pid
            _kill(db_dsn, dead)
            with pytest.raises(Unavailable) as info:
                queries.append_message(
                    c, user_id="alice", conversation_id=conv, role="user", content="lost"
                )
        assert info.value.retryable
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        with cpool.connection(pool, timeout=5) as c:
            got = queries.get_messages(c, user_id="alice", conversation_id=conv)
    assert [(m.seq, m.content) for m in got] == [(1, "retried")]


async def test_fault_a_dead_pooled_connection_fails_its_async_call_with_unavailable_then_is_replaced(  # noqa: E501
    conn: psycopg.Connection, db_dsn: str
) -> None:
    conv = _conversation_with(conn, 0)
    async with AsyncConnectionPool(
        db_dsn, min_size=1, max_size=1, kwargs={"autocommit": True}, open=False
    ) as pool:  # no check=
        async with cpool.connection_async(pool, timeout=5) as c:
            dead = c.info.backend_pid
        await asyncio.to_thread(_kill, db_dsn, dead)
        handed: list[int] = []
        with pytest.raises(Unavailable) as info:
            await _append_through_async(pool, conv, handed)
        assert handed == [dead], "the call ran on the dead connection itself"
        assert info.value.retryable
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        async with cpool.connection_async(pool, timeout=5) as c:
            assert c.info.backend_pid != dead
            await aio.append_message(
                c, user_id="alice", conversation_id=conv, role="user", content="retried"
            )
            got = await aio.get_messages(c, user_id="alice", conversation_id=conv)
    assert [(m.seq, m.content) for m in got] == [(1, "retried")]


def test_fault_a_backend_killed_during_a_conversation_delete_keeps_every_message(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    conv = _conversation_with(conn, 1000)
    before = _state(conn)
    last = conn.execute("SELECT max(id) FROM messages").fetchone()
    assert last is not None
    with _pool(db_dsn) as pool:
        # The cascade deletes the messages and waits on the last one's row lock.
        locker = psycopg.connect(db_dsn)
        locker.execute("SELECT 1 FROM messages WHERE id = %s FOR UPDATE", (last[0],))

        def delete() -> None:
            with cpool.connection(pool, timeout=5) as c:
                queries.delete_conversation(c, user_id="alice", conversation_id=conv)

        try:
            raised = _killed_while_waiting(db_dsn, "DELETE FROM conversations", delete)
        finally:
            locker.close()
        assert len(raised) == 1
        assert isinstance(raised[0], Unavailable), raised
        assert _state(conn) == before
        with cpool.connection(pool, timeout=5) as c:
            queries.delete_conversation(c, user_id="alice", conversation_id=conv)
    assert _state(conn) == ([], [])


# --- timeouts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "cause"),
    [
        ("statement_timeout", pg_errors.QueryCanceled),
        ("lock_timeout", pg_errors.LockNotAvailable),
    ],
)
def test_fault_a_statement_or_lock_timeout_is_a_typed_retryable_error(
    conn: psycopg.Connection, db_dsn: str, setting: str, cause: type[Exception]
) -> None:
    conv = _conversation_with(conn, 2)
    before = _state(conn)
    locker = psycopg.connect(db_dsn)
    locker.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conv,))
    try:
        with psycopg.connect(db_dsn, autocommit=True, options=f"-c {setting}=100") as c:
            with pytest.raises(TimedOut) as info:
                queries.rename_conversation(c, user_id="alice", conversation_id=conv, title="x")
            assert isinstance(info.value, Unavailable)
            assert info.value.retryable
            assert isinstance(info.value.__cause__, cause)
            # The same connection serves the next call.
            assert queries.get_conversation(c, user_id="alice", conversation_id=conv).id == conv
    finally:
        locker.close()
    assert _state(conn) == before


# --- a server restart while pools are open -----------------------------------------------


@pytest.fixture(scope="module")
def private_server() -> Iterator[PrivateServer]:
    server = PrivateServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_db(private_server: PrivateServer) -> Iterator[str]:
    name = f"chatstore_private_{uuid.uuid4().hex[:8]}"
    with devserver.scratch_database(private_server.dsn, name) as dsn:
        migrations.apply(dsn)
        with psycopg.connect(dsn, autocommit=True) as c:
            queries.create_user(c, id="alice", email="alice@example.com")
        yield dsn


def test_fault_a_server_restart_fails_calls_with_unavailable_then_the_same_pool_recovers(
    private_server: PrivateServer, private_db: str
) -> None:
    with _pool(private_db, size=4) as pool:
        with cpool.connection(pool, timeout=5) as c:
            conv = queries.create_conversation(c, user_id="alice").id
        private_server.stop()
        try:
            failures = []
            for _ in range(3):  # each kind of failure: stale connection, no connection
                with pytest.raises(Unavailable) as info, cpool.connection(pool, timeout=0.5) as c:
                    queries.get_messages(c, user_id="alice", conversation_id=conv)
                failures.append(info.value)
            assert all(f.retryable and f.__cause__ is not None for f in failures)
        finally:
            private_server.start()
        wait_until(lambda: _works(pool, conv), timeout=30, what="the pool to reconnect")
        with cpool.connection(pool, timeout=5) as c:
            queries.append_message(
                c, user_id="alice", conversation_id=conv, role="user", content="back"
            )
            assert [
                m.content for m in queries.get_messages(c, user_id="alice", conversation_id=conv)
            ] == ["back"]


def _works(pool: ConnectionPool[Any], conv: int) -> bool:
    try:
        with cpool.connection(pool, timeout=1) as c:
            queries.get_conversation(c, user_id="alice", conversation_id=conv)
    except Unavailable:
        return False
    return True


async def test_fault_a_server_restart_fails_async_calls_with_unavailable_then_recovers(
    private_server: PrivateServer, private_db: str
) -> None:
    async with AsyncConnectionPool(
        private_db,
        min_size=4,
        max_size=4,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
    ) as pool:
        async with cpool.connection_async(pool, timeout=5) as c:
            conv = (await aio.create_conversation(c, user_id="alice")).id
        await asyncio.to_thread(private_server.stop)
        try:
            for _ in range(3):
                with pytest.raises(Unavailable):
                    async with cpool.connection_async(pool, timeout=0.5) as c:
                        await aio.get_conversation(c, user_id="alice", conversation_id=conv)
        finally:
            await asyncio.to_thread(private_server.start)
        for _ in range(300):  # at most 30 s
            try:
                async with cpool.connection_async(pool, timeout=1) as c:
                    await aio.append_message(
                        c, user_id="alice", conversation_id=conv, role="user", content="back"
                    )
                break
            except Unavailable:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the async pool did not reconnect")
        async with cpool.connection_async(pool, timeout=5) as c:
            got = await aio.get_messages(c, user_id="alice", conversation_id=conv)
        assert [m.content for m in got] == ["back"]


def test_fault_a_pool_checkout_timeout_is_unavailable(private_db: str) -> None:
    with _pool(private_db, size=1) as pool, cpool.connection(pool, timeout=5):
        with pytest.raises(Unavailable) as info, cpool.connection(pool, timeout=0.1):
            pass
        assert info.value.retryable


# --- migrations: killed and failing half-way ---------------------------------------------


def _migration_set(tmp_path: Path, extra: str) -> Path:
    """The real migrations plus a test-only one that depends on the last of them."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations.migrations_dir(), folder)
    last = sorted(p.stem for p in folder.glob("*.sql") if ".rollback" not in p.name)[-1]
    (folder / "chatstore_9001_fault.sql").write_text(
        f"-- A test-only migration.\n-- depends: {last}\n\n{extra}", encoding="utf-8"
    )
    (folder / "chatstore_9001_fault.rollback.sql").write_text(
        "-- Undo the test-only migration.\n\nDROP TABLE IF EXISTS fault_probe;\n",
        encoding="utf-8",
    )
    return folder


def _apply_folder(dsn: str, folder: Path) -> list[str]:
    return migrations.apply(dsn, source=folder)


def _applied(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT migration_id FROM _yoyo_migration ORDER BY 1").fetchall()
        locks = c.execute("SELECT count(*) FROM yoyo_lock").fetchone()
    assert locks == (0,), "yoyo's lock must be released"
    return [r[0] for r in rows]


HALF_WAY = """
CREATE TABLE fault_probe (id bigint);
ALTER TABLE messages ADD COLUMN fault_probe text;
CREATE INDEX fault_probe_idx ON conversations (title);
INSERT INTO fault_probe VALUES (1 / 0);
DROP TABLE tasks;
"""


def test_fault_a_migration_failing_half_way_leaves_the_schema_as_before(
    empty_db: str, tmp_path: Path
) -> None:
    real = migrations.apply(empty_db)
    before = snapshot(empty_db)
    folder = _migration_set(tmp_path, HALF_WAY)
    with pytest.raises(pg_errors.DivisionByZero):
        _apply_folder(empty_db, folder)
    assert snapshot(empty_db) == before
    assert _applied(empty_db) == sorted(real)


def test_fault_a_failing_migration_keeps_the_earlier_ones_of_the_same_run(
    empty_db: str, tmp_path: Path, server_dsn: str
) -> None:
    folder = _migration_set(tmp_path, HALF_WAY)
    with pytest.raises(pg_errors.DivisionByZero):
        _apply_folder(empty_db, folder)
    real = [s.id for s in migrations.status(empty_db)]
    assert _applied(empty_db) == sorted(real)
    with devserver.scratch_database(server_dsn, f"chatstore_ref_{uuid.uuid4().hex[:8]}") as ref:
        migrations.apply(ref)
        assert snapshot(empty_db) == snapshot(ref)


def test_fault_a_migration_whose_backend_is_killed_leaves_nothing_and_applies_again(
    empty_db: str, tmp_path: Path
) -> None:
    real = migrations.apply(empty_db)
    before = snapshot(empty_db)
    key = secrets.randbelow(2**62)
    folder = _migration_set(
        tmp_path,
        "CREATE TABLE fault_probe (id bigint);\n"
        "ALTER TABLE messages ADD COLUMN fault_probe text;\n"
        f"SELECT pg_advisory_xact_lock({key});\n"
        "CREATE INDEX fault_probe_idx ON fault_probe (id);\n",
    )
    blocker = Blocker(empty_db, key)
    try:
        raised = _killed_while_waiting(
            empty_db, "pg_advisory_xact_lock", lambda: _apply_folder(empty_db, folder)
        )
    finally:
        blocker.release()
    assert len(raised) == 1
    assert isinstance(raised[0], psycopg.OperationalError), raised
    assert snapshot(empty_db) == before
    assert _applied(empty_db) == sorted(real)
    # Applying again succeeds, and then the test-only migration is all there.
    assert _apply_folder(empty_db, folder) == ["chatstore_9001_fault"]
    assert "chatstore_9001_fault" in _applied(empty_db)
    with psycopg.connect(empty_db) as c:
        assert c.execute("SELECT to_regclass('fault_probe_idx') IS NOT NULL").fetchone() == (True,)


def test_fault_a_migration_and_its_record_commit_together_when_the_lock_connection_dies(
    empty_db: str, tmp_path: Path
) -> None:
    migrations.apply(empty_db)
    key = secrets.randbelow(2**62)
    folder = _migration_set(
        tmp_path, f"CREATE TABLE fault_probe (id bigint);\nSELECT pg_advisory_xact_lock({key});\n"
    )
    blocker = Blocker(empty_db, key)
    with psycopg.connect(empty_db) as c:
        own = c.execute("SELECT pg_backend_pid()").fetchone()
    thread, raised = _in_thread(lambda: _apply_folder(empty_db, folder))
    try:
        wait_until(lambda: backend_waiting_on(empty_db, "pg_advisory_xact_lock") is not None)
        migrating = backend_waiting_on(empty_db, "pg_advisory_xact_lock")
        with psycopg.connect(empty_db, autocommit=True) as c:
            # yoyo's main connection: the other session of this database, idle.
            row = c.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid NOT IN (pg_backend_pid(), %s, %s) AND state = 'idle'"
                " AND backend_type = 'client backend' AND query LIKE '%%yoyo%%'"
                " ORDER BY backend_start LIMIT 1",
                (migrating, own[0] if own else 0),
            ).fetchone()
        assert row is not None
        terminate(empty_db, int(row[0]))
    finally:
        blocker.release()
    thread.join(10)
    with psycopg.connect(empty_db) as c:
        probe = c.execute("SELECT to_regclass('fault_probe') IS NOT NULL").fetchone()
        recorded = c.execute(
            "SELECT count(*) FROM _yoyo_migration WHERE migration_id = 'chatstore_9001_fault'"
        ).fetchone()
    assert probe == (True,), "the migration committed on its own connection"
    assert recorded == (1,), "and its record committed with it"
    # Only the lock's connection was lost: apply reports it, and the lock row it could not
    # delete is what `yoyo break-lock` clears (docs/migrations.md).
    assert [type(e) for e in raised] == [pg_errors.AdminShutdown]
    with psycopg.connect(empty_db, autocommit=True) as c:
        c.execute("DELETE FROM yoyo_lock")
    assert _apply_folder(empty_db, folder) == []


# --- the cluster-wide role of migration 0005, on a server of our own ---------------------


# The migration these tests roll back: the last one applied.
RLS = "chatstore_0005_row_level_security"


def _role_exists(dsn: str) -> bool:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'chatstore_app'").fetchone()
    return row == (1,)


def test_rls_rollback_drops_chatstore_app_only_when_no_database_or_member_uses_it(
    private_server: PrivateServer,
) -> None:
    server = private_server.dsn
    with (
        devserver.scratch_database(server, f"chatstore_a_{uuid.uuid4().hex[:8]}") as one,
        devserver.scratch_database(server, f"chatstore_b_{uuid.uuid4().hex[:8]}") as two,
    ):
        migrations.apply(one, up_to=RLS)
        migrations.apply(two, up_to=RLS)  # the role exists already: reused
        migrations.rollback(one, steps=1)
        assert _role_exists(server), "database two still uses it"
        with psycopg.connect(server, autocommit=True) as c:
            c.execute("CREATE ROLE chatstore_svc_member LOGIN IN ROLE chatstore_app")
        try:
            migrations.rollback(two, steps=1)
            assert _role_exists(server), "a service's login role is still a member"
        finally:
            with psycopg.connect(server, autocommit=True) as c:
                c.execute("DROP ROLE chatstore_svc_member")
        migrations.apply(one, up_to=RLS)
        migrations.rollback(one, steps=1)
        assert not _role_exists(server), "unused: dropped with the last rollback"
        migrations.apply(one, up_to=RLS)
        assert _role_exists(server)
