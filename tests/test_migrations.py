"""The migrations: reversible step by step, idempotent, safe to run concurrently,
equal to sql/schema.sql, and able to upgrade a live Phase II database."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import zipfile
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatstore import cli, devserver, migrations
from tests.catalog import snapshot, user_tables

ROOT = Path(__file__).parent.parent


def migration_ids() -> list[str]:
    return sorted(
        p.stem for p in migrations.migrations_dir().glob("*.sql") if ".rollback" not in p.name
    )


def test_apply_rollback_apply_gives_the_same_catalog_each_time(empty_db: str) -> None:
    assert snapshot(empty_db) == []
    migrations.apply(empty_db)
    first = snapshot(empty_db)
    assert migrations.rollback(empty_db, steps=None) == migration_ids()[::-1]
    assert snapshot(empty_db) == []
    assert user_tables(empty_db) == set()
    migrations.apply(empty_db)
    assert snapshot(empty_db) == first
    assert user_tables(empty_db) == {"users", "tasks", "conversations", "messages", "agent_items"}


def test_schema_sql_matches_the_migrations(empty_db: str, server_dsn: str) -> None:
    migrations.apply(empty_db)
    with devserver.scratch_database(server_dsn, f"{_dbname(empty_db)}_file") as from_file:
        with psycopg.connect(from_file, autocommit=True) as conn:
            conn.execute((ROOT / "sql" / "schema.sql").read_text())
        assert snapshot(from_file) == snapshot(empty_db), "sql/schema.sql is stale: run make schema"


def test_each_rollback_restores_exactly_the_schema_before_its_migration(empty_db: str) -> None:
    ids = migration_ids()
    before = [snapshot(empty_db)]
    for mid in ids:
        assert migrations.apply(empty_db, up_to=mid) == [mid]
        before.append(snapshot(empty_db))
    assert len(set(map(tuple, before))) == len(before), "every migration changes the schema"
    for k in range(len(ids), 0, -1):
        assert migrations.rollback(empty_db, steps=1) == [ids[k - 1]]
        assert snapshot(empty_db) == before[k - 1], f"rollback of {ids[k - 1]}"


def test_applying_twice_is_a_no_op(empty_db: str) -> None:
    assert migrations.apply(empty_db) == migration_ids()
    schema = snapshot(empty_db)
    assert migrations.apply(empty_db) == []
    assert snapshot(empty_db) == schema
    assert all(s.applied for s in migrations.status(empty_db))


def _apply_after(barrier: Any, dsn: str) -> list[str]:
    barrier.wait(timeout=30)
    return migrations.apply(dsn)


def test_four_processes_applying_at_once_apply_each_migration_once(empty_db: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(4, mp_context=ctx) as pool:
        barrier = manager.Barrier(4)
        results = list(pool.map(_apply_after, [barrier] * 4, [empty_db] * 4))
    applied = sorted(mid for result in results for mid in result)
    assert applied == migration_ids()
    with psycopg.connect(empty_db) as conn:
        logged = conn.execute(
            "SELECT migration_id, count(*) FROM _yoyo_log WHERE operation = 'apply'"
            " GROUP BY migration_id ORDER BY 1"
        ).fetchall()
    assert logged == [(mid, 1) for mid in migration_ids()]


# Phase II's DDL as seed 002 gives it, with the indexes it lists, and rows of the
# kinds a live todo app holds (naive UTC timestamps, a NULL completed flag).
PHASE2_DDL = """
CREATE TABLE users (
    id VARCHAR PRIMARY KEY,
    email VARCHAR UNIQUE NOT NULL,
    name VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE tasks (
    id SERIAL PRIMARY KEY,
    user_id VARCHAR REFERENCES users(id),
    title VARCHAR(200) NOT NULL,
    description TEXT,
    completed BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_tasks_user_id ON tasks(user_id);
CREATE INDEX idx_tasks_completed ON tasks(completed);
INSERT INTO users (id, email, name, created_at) VALUES
    ('auth0|alice', 'alice@example.com', 'Alice', '2025-06-01 12:00:00'),
    ('auth0|bob', 'bob@example.com', NULL, '2025-06-02 08:30:00');
INSERT INTO tasks (user_id, title, description, completed, created_at, updated_at) VALUES
    ('auth0|alice', 'Buy milk', NULL, false, '2025-06-03 09:00:00', '2025-06-03 09:00:00'),
    ('auth0|alice', 'Ship Phase III', 'chat!', true, '2025-06-04 10:00:00', '2025-06-05 10:00:00'),
    ('auth0|bob', 'Call mum', NULL, NULL, '2025-06-06 11:00:00', '2025-06-06 11:00:00');
"""


def _phase2_database(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(PHASE2_DDL)


def test_a_phase2_database_upgrades_in_place_with_its_data_intact(
    empty_db: str, server_dsn: str
) -> None:
    _phase2_database(empty_db)
    assert migrations.apply(empty_db) == migration_ids()

    with psycopg.connect(empty_db, autocommit=True) as conn:
        users = conn.execute("SELECT id, email, name, created_at FROM users ORDER BY id").fetchall()
        assert users == [
            ("auth0|alice", "alice@example.com", "Alice", datetime(2025, 6, 1, 12, tzinfo=UTC)),
            ("auth0|bob", "bob@example.com", None, datetime(2025, 6, 2, 8, 30, tzinfo=UTC)),
        ]
        tasks = conn.execute(
            "SELECT id, user_id, title, description, completed, created_at FROM tasks ORDER BY id"
        ).fetchall()
        assert tasks == [
            (1, "auth0|alice", "Buy milk", None, False, datetime(2025, 6, 3, 9, tzinfo=UTC)),
            (
                2,
                "auth0|alice",
                "Ship Phase III",
                "chat!",
                True,
                datetime(2025, 6, 4, 10, tzinfo=UTC),
            ),
            (3, "auth0|bob", "Call mum", None, False, datetime(2025, 6, 6, 11, tzinfo=UTC)),
        ]
        # New rows continue the old key sequence, and the new tables work.
        new_id = conn.execute(
            "INSERT INTO tasks (user_id, title) VALUES ('auth0|bob', 'New') RETURNING id"
        ).fetchone()
        assert new_id == (4,)
        conn.execute("INSERT INTO conversations (user_id) VALUES ('auth0|alice')")

    # Upgraded and fresh databases end with one and the same schema.
    with devserver.scratch_database(server_dsn, f"{_dbname(empty_db)}_fresh") as fresh:
        migrations.apply(fresh)
        assert snapshot(empty_db) == snapshot(fresh)


KEYS_BEFORE = "chatstore_0005_row_level_security"
NUMBERS_ADDED = "chatstore_0006_message_numbers"


def test_messages_from_before_the_numbers_are_numbered_in_their_old_order_while_appends_go_on(
    empty_db: str,
) -> None:
    """0006-0009 on a database with conversations and messages: the old messages get
    1 .. k in id order, the counters are filled without moving updated_at, and an append
    made between 0006 and 0007 (the service keeps running) continues the numbering."""
    migrations.apply(empty_db, up_to=KEYS_BEFORE)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email) VALUES ('ann', 'ann@example.com')")
        # 1,201 conversations (more than one backfill batch of 500), three messages each,
        # inserted interleaved so that ids within a conversation are not consecutive.
        conn.execute(
            "INSERT INTO conversations (user_id) SELECT 'ann' FROM generate_series(1, 1201)"
        )
        conn.execute(
            "INSERT INTO messages (user_id, conversation_id, role, content)"
            " SELECT 'ann', c, CASE WHEN m = 2 THEN 'assistant' ELSE 'user' END, 'm' || m"
            " FROM generate_series(1, 3) AS m, generate_series(1, 1200) AS c"
        )
        before: dict[int, datetime] = dict(
            conn.execute("SELECT id, updated_at FROM conversations").fetchall()
        )
        migrations.apply(empty_db, up_to=NUMBERS_ADDED)
        # The service appends to conversation 7, not counted yet: the trigger counts it.
        late = conn.execute(
            "INSERT INTO messages (user_id, conversation_id, role, content)"
            " VALUES ('ann', 7, 'user', 'late') RETURNING seq"
        ).fetchone()
        assert late == (4,)
        migrations.apply(empty_db)
        rows = conn.execute(
            "SELECT conversation_id, array_agg(content ORDER BY seq), array_agg(seq ORDER BY seq)"
            " FROM messages GROUP BY conversation_id"
        ).fetchall()
        assert len(rows) == 1200
        for cid, contents, seqs in rows:
            expected = ["m1", "m2", "m3", "late"] if cid == 7 else ["m1", "m2", "m3"]
            assert (contents, seqs) == (expected, list(range(1, len(expected) + 1))), cid
        counts = conn.execute(
            "SELECT id, message_count, last_message_at IS NOT NULL, updated_at FROM conversations"
        ).fetchall()
        for cid, count, has_last, updated_at in counts:
            assert (count, has_last) == ((4 if cid == 7 else 0 if cid == 1201 else 3), cid != 1201)
            if cid != 7:  # the backfill does not reorder anyone's sidebar
                assert updated_at == before[cid]
        # Messages are append-only again, and the next append continues the numbering.
        with pytest.raises(psycopg.errors.IntegrityError):
            conn.execute("UPDATE messages SET seq = seq WHERE false")
        nxt = conn.execute(
            "INSERT INTO messages (user_id, conversation_id, role, content)"
            " VALUES ('ann', 1, 'user', 'next') RETURNING seq"
        ).fetchone()
        assert nxt == (4,)


def test_a_phase2_row_that_breaks_a_rule_stops_the_upgrade_and_changes_nothing(
    empty_db: str,
) -> None:
    _phase2_database(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO tasks (user_id, title) VALUES (NULL, 'orphan')")
    phase2 = snapshot(empty_db)
    with pytest.raises(psycopg.errors.NotNullViolation):
        migrations.apply(empty_db)
    assert snapshot(empty_db) == phase2
    assert [s.id for s in migrations.status(empty_db) if s.applied] == [migration_ids()[0]]


def test_yoyo_cli_applies_from_the_repository_root(empty_db: str) -> None:
    yoyo = Path(sys.executable).parent / "yoyo"
    subprocess.run(
        [str(yoyo), "apply", "--database", migrations.yoyo_uri(empty_db)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert all(s.applied for s in migrations.status(empty_db))


def test_chatstore_cli_migrates_reports_and_rolls_back(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = migration_ids()
    assert cli.main(["--dsn", empty_db, "migrate"]) == 0
    assert capsys.readouterr().out.split() == [w for mid in ids for w in ("applied", mid)]
    assert cli.main(["--dsn", empty_db, "rollback"]) == 0
    assert capsys.readouterr().out.split() == ["rolled", "back", ids[-1]]
    assert cli.main(["--dsn", empty_db, "status"]) == 0
    assert capsys.readouterr().out.split()[-2:] == ["pending", ids[-1]]


def test_the_wheel_ships_every_migration(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("chatstore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("chatstore/sql/migrations/") for n in names if "sql/migrations/" in n}
    on_disk = {p.name for p in (ROOT / "sql" / "migrations").glob("*.sql")}
    assert shipped == on_disk
    assert "chatstore/py.typed" in names


def _dbname(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(dsn)["dbname"])
