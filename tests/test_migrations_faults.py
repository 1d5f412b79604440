"""The migration runner when things go wrong around it: a concurrent index build that
was cancelled, a second applier queued behind a slow first one, a lock left by a run
that died, and database names that a URL would mangle."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from yoyo.connections import parse_uri

from chatstore import devserver, migrations
from tests.reliability_support import backend_waiting_on, wait_until

BEFORE_0003 = "chatstore_0002_harden_users_tasks"
TASKS_INDEX = "chatstore_0003_tasks_by_owner_index"
BEFORE_0008 = "chatstore_0007_backfill_message_numbers"
TENANT_KEYS = "chatstore_0008_tenant_keys_concurrently"


def _index_state(dsn: str, name: str) -> bool | None:
    """True: the index is valid; False: INVALID; None: there is no such index."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT i.indisvalid FROM pg_index AS i WHERE i.indexrelid = to_regclass(%s)", (name,)
        ).fetchone()
    return None if row is None else bool(row[0])


def _plan(dsn: str, query: str) -> str:
    with psycopg.connect(dsn) as conn:
        conn.execute("SET enable_seqscan = off")
        rows = conn.execute(f"EXPLAIN (COSTS OFF) {query}").fetchall()
    return "\n".join(str(r[0]) for r in rows)


def _applied(dsn: str) -> list[str]:
    return [s.id for s in migrations.status(dsn) if s.applied]


@dataclass(frozen=True)
class Build:
    """A concurrent index build of one migration, and what makes it wait."""

    migration: str
    before: str
    hold: str  # a write that the other connection leaves uncommitted
    index: str
    query: str  # a query the index serves


SEED = """
INSERT INTO users (id, email) VALUES ('ann', 'ann@example.com');
INSERT INTO tasks (user_id, title) SELECT 'ann', 'task ' || n FROM generate_series(1, 50) AS n;
"""

BUILDS = [
    Build(
        TASKS_INDEX,
        BEFORE_0003,
        "INSERT INTO tasks (user_id, title) VALUES ('ann', 'held')",
        "tasks_user_id_completed_idx",
        "SELECT id FROM tasks WHERE user_id = 'ann' AND completed = false ORDER BY id",
    ),
    # 0008 builds two indexes: the tasks key is built, the messages key is cancelled.
    Build(
        TENANT_KEYS,
        BEFORE_0008,
        "INSERT INTO messages (user_id, conversation_id, role, content)"
        " VALUES ('ann', 1, 'user', 'held')",
        "messages_user_id_conversation_id_seq_key",
        "SELECT seq FROM messages WHERE user_id = 'ann' AND conversation_id = 1 ORDER BY seq",
    ),
]


@pytest.mark.parametrize("build", BUILDS, ids=[b.migration for b in BUILDS])
def test_a_cancelled_concurrent_index_build_is_rebuilt_by_the_next_apply(
    empty_db: str, build: Build
) -> None:
    migrations.apply(empty_db, up_to=build.before)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(SEED)
        if build.migration == TENANT_KEYS:
            conn.execute("INSERT INTO conversations (user_id) VALUES ('ann')")
    # An open transaction that has written to the table: CREATE INDEX CONCURRENTLY
    # waits for it, and the migrating connection's statement_timeout cancels the wait
    # after the index entered the catalog, which leaves it INVALID.
    impatient = make_conninfo(empty_db, options="-c statement_timeout=1500")
    with psycopg.connect(empty_db) as holder:
        holder.execute(build.hold)
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            migrations.apply(impatient, up_to=build.migration)
        holder.rollback()
    assert f"applying {build.migration}" in getattr(info.value, "__notes__", [])
    assert _index_state(empty_db, build.index) is False, "the cancelled build left it INVALID"
    assert build.migration not in _applied(empty_db)

    assert migrations.apply(empty_db, up_to=build.migration) == [build.migration]
    assert _index_state(empty_db, build.index) is True
    assert build.index in _plan(empty_db, build.query)
    if build.migration == TENANT_KEYS:
        assert _index_state(empty_db, "tasks_user_id_id_key") is True
    # And the rest of the migrations apply on top (0009 turns 0008's keys into primary keys).
    migrations.apply(empty_db)
    assert all(s.applied for s in migrations.status(empty_db))


def test_a_cancelled_concurrent_build_in_a_rollback_is_rebuilt_by_the_next_rollback(
    empty_db: str,
) -> None:
    """0008's rollback builds 0003's tasks index again, concurrently."""
    migrations.apply(empty_db, up_to=TENANT_KEYS)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(SEED)
    impatient = make_conninfo(empty_db, options="-c statement_timeout=1500")
    with psycopg.connect(empty_db) as holder:
        holder.execute("INSERT INTO tasks (user_id, title) VALUES ('ann', 'held')")
        with pytest.raises(psycopg.errors.QueryCanceled):
            migrations.rollback(impatient)
        holder.rollback()
    assert _index_state(empty_db, "tasks_user_id_completed_idx") is False
    assert TENANT_KEYS in _applied(empty_db)

    assert migrations.rollback(empty_db) == [TENANT_KEYS]
    assert _index_state(empty_db, "tasks_user_id_completed_idx") is True


# --- yoyo's lock: queue behind a live run, point at a dead one ---------------------------


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``fn`` in a thread; its result or what it raised lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_second_apply_queues_behind_one_that_waits_in_a_concurrent_build(
    empty_db: str,
) -> None:
    """The first apply waits in 0003 for a transaction that wrote to tasks; the second
    waits for the first for longer than yoyo's own ten seconds, then finds nothing to do."""
    migrations.apply(empty_db, up_to=BEFORE_0003)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(SEED)
    with psycopg.connect(empty_db) as holder:
        holder.execute("INSERT INTO tasks (user_id, title) VALUES ('ann', 'held')")
        first, first_out = _in_thread(lambda: migrations.apply(empty_db))
        wait_until(lambda: backend_waiting_on(empty_db, "CONCURRENTLY") is not None)
        second, second_out = _in_thread(lambda: migrations.apply(empty_db))
        second.join(12)  # yoyo gave up after 10 s
        assert second.is_alive(), f"the second apply ended: {second_out}"
        holder.rollback()
    first.join(60)
    second.join(60)
    assert first_out[0][0] == TASKS_INDEX
    assert second_out == [[]]


def _hold_lock(conn: psycopg.Connection[Any]) -> int:
    """Take yoyo's lock as the runner does: the row names this session's server pid."""
    row = conn.execute(
        "INSERT INTO yoyo_lock (locked, ctime, pid)"
        " VALUES (1, now() AT TIME ZONE 'UTC', pg_backend_pid()) RETURNING pid"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_lock_whose_holder_is_alive_is_waited_for_up_to_lock_wait_and_never_broken(
    empty_db: str,
) -> None:
    migrations.apply(empty_db, up_to=BEFORE_0003)
    with psycopg.connect(empty_db, autocommit=True) as holder:
        pid = _hold_lock(holder)
        with pytest.raises(migrations.MigrationLocked) as info:
            migrations.apply(empty_db, lock_wait=1)
        assert info.value.holder_pid == pid
        assert info.value.holder_alive
        assert "break-lock" not in str(info.value)
        assert "still running" in str(info.value)
    assert _applied(empty_db) == ["chatstore_0001_phase2_baseline", BEFORE_0003]


def test_a_lock_whose_holder_is_gone_fails_at_once_and_says_how_to_clear_it(
    empty_db: str,
) -> None:
    migrations.apply(empty_db, up_to=BEFORE_0003)
    with psycopg.connect(empty_db, autocommit=True) as holder:
        pid = _hold_lock(holder)
    # The holder's session has ended and left the row: a run that was killed.
    wait_until(lambda: not _session_exists(empty_db, pid))
    thread, out = _in_thread(lambda: migrations.apply(empty_db, lock_wait=None))
    thread.join(30)
    assert not thread.is_alive(), "it waited for a holder that is gone"
    (exc,) = out
    assert isinstance(exc, migrations.MigrationLocked)
    assert exc.holder_pid == pid
    assert not exc.holder_alive
    assert "yoyo break-lock" in str(exc)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("DELETE FROM yoyo_lock")
    assert migrations.apply(empty_db, up_to=TASKS_INDEX) == [TASKS_INDEX]


def _session_exists(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        return row.fetchone() == (1,)


# --- connection strings: every character of every parameter reaches the server ----------


def _yoyo_connect_kwargs(uri: str) -> dict[str, str]:
    """What yoyo's PostgreSQL backend passes to psycopg.connect for ``uri``."""
    parsed = parse_uri(uri)
    kwargs = {"dbname": parsed.database, **parsed.args}
    for key, value in [
        ("user", parsed.username),
        ("password", parsed.password),
        ("port", parsed.port),
        ("host", parsed.hostname),
    ]:
        if value is not None:
            kwargs[key] = value
    return {k: str(v) for k, v in kwargs.items() if v != ""}


def test_apply_migrates_the_database_named_even_when_its_name_needs_quoting(
    server_dsn: str,
) -> None:
    name = f"cs #1?a=b&c/d%41 é ü+{uuid.uuid4().hex[:6]}"
    with devserver.scratch_database(server_dsn, name) as dsn:
        # Parameters that a URL would also mangle; the test server trusts, so the
        # password is sent and ignored.
        dsn = make_conninfo(dsn, application_name="chatstore #?&= ü", password="p@ss#/?%")
        expected = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
        assert _yoyo_connect_kwargs(migrations.yoyo_uri(dsn)) == expected
        applied = migrations.apply(dsn)
        assert applied[0] == "chatstore_0001_phase2_baseline"
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT current_database(), to_regclass('messages') IS NOT NULL,"
                " (SELECT count(*) FROM _yoyo_migration)"
            ).fetchone()
        assert row == (name, True, len(applied))
        assert all(s.applied for s in migrations.status(dsn))
