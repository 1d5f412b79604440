"""The migration runner when things go wrong around it: a concurrent index build that
was cancelled, a second applier queued behind a slow first one, a lock left by a run
that died, and database names that a URL would mangle."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chatstore import migrations

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
