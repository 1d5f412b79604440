"""The ``chatstore`` command: ``--dsn`` before or after the subcommand or from
``CHATSTORE_DSN``, and ``distribute``, which refuses plain PostgreSQL in one line and
changing nothing, and on Citus distributes once and then finds nothing to do."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from chatstore import migrations
from chatstore.cli import main
from chatstore.devserver import DSN_ENV
from tests import catalog
from tests.citus_support import Cluster, citus_database, maintenance_dsn


def test_cli_accepts_dsn_after_the_subcommand(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--dsn", empty_db]) == 0
    assert all(s.applied for s in migrations.status(empty_db))
    assert main(["--dsn", empty_db, "status"]) == 0
    out = capsys.readouterr().out
    assert "applied  chatstore_0001_phase2_baseline" in out
    assert "pending" not in out


def test_cli_takes_the_dsn_from_the_environment_and_the_option_wins(
    empty_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DSN_ENV, empty_db)
    assert main(["status"]) == 0
    assert "pending  chatstore_0001_phase2_baseline" in capsys.readouterr().out
    monkeypatch.setenv(DSN_ENV, "host=127.0.0.1 port=1 dbname=nowhere")
    assert main(["migrate", "--dsn", empty_db]) == 0


def test_cli_distribute_on_plain_postgresql_fails_in_one_line_and_changes_nothing(
    db_dsn: str,
) -> None:
    before = catalog.snapshot(db_dsn)
    run = subprocess.run(
        [sys.executable, "-m", "chatstore.cli", "distribute", "--dsn", db_dsn],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != DSN_ENV},
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("chatstore distribute: this server has no Citus extension")
    assert catalog.snapshot(db_dsn) == before
    with psycopg.connect(db_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'citus'"
        ).fetchone() == (0,)


@pytest.mark.citus
def test_cli_distribute_on_citus_refuses_pending_migrations_then_runs_once(
    citus_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = maintenance_dsn()
    assert dsn is not None  # citus_cluster skips without it
    with citus_database(dsn, f"chatstore_cli_{os.getpid()}_{uuid.uuid4().hex[:6]}") as cluster:
        assert main(["distribute", "--dsn", cluster.coordinator]) == 1
        assert "pending" in capsys.readouterr().err
        migrations.apply(cluster.coordinator)
        assert main(["distribute", "--shard-count", "4", "--dsn", cluster.coordinator]) == 0
        first = capsys.readouterr().out
        assert "users: reference table" in first
        assert "conversations: distributed by user_id (4 shards)" in first
        assert main(["distribute", "--dsn", cluster.coordinator]) == 0
        assert capsys.readouterr().out == "already distributed\n"
        with psycopg.connect(cluster.coordinator) as conn:
            shards = conn.execute(
                "SELECT logicalrelid::regclass::text, count(*) FROM pg_dist_shard"
                " GROUP BY 1 ORDER BY 1"
            ).fetchall()
        assert shards == [
            ("agent_items", 4),
            ("conversations", 4),
            ("messages", 4),
            ("tasks", 4),
            ("users", 1),
        ]


# --- errors and usage: one line, never a traceback ----------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``chatstore ARGS`` in a process of its own, without ``CHATSTORE_DSN``."""
    return subprocess.run(
        [sys.executable, "-m", "chatstore.cli", *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != DSN_ENV},
        check=False,
    )


def _one_line_error(run: subprocess.CompletedProcess[str], command: str) -> str:
    assert run.returncode == 1, run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith(f"chatstore {command}: "), run.stderr
    return run.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--steps", "-1"], "at least 1"),
        (["--steps", "0"], "at least 1"),
        (["--steps", "2", "--all"], "not allowed with"),
        (["--steps", "1", "--all"], "not allowed with"),
    ],
)
def test_cli_rollback_refuses_steps_below_one_and_steps_with_all_as_usage_errors(
    empty_db: str, args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrations.apply(empty_db)
    with pytest.raises(SystemExit) as info:
        main(["rollback", "--dsn", empty_db, *args])
    assert info.value.code == 2
    assert complaint in capsys.readouterr().err
    assert all(s.applied for s in migrations.status(empty_db)), "nothing was rolled back"


def _relations(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT relname, relkind::text FROM pg_class"
            " WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()


def test_cli_status_on_an_empty_database_lists_all_pending_and_creates_nothing(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _relations(empty_db) == []
    assert main(["status", "--dsn", empty_db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines
    assert all(line.startswith("pending  ") for line in lines)
    assert _relations(empty_db) == [], "status wrote to the database"
    # Nor does a rollback with nothing to roll back.
    assert main(["rollback", "--dsn", empty_db]) == 0
    assert capsys.readouterr().out == "nothing to roll back\n"
    assert _relations(empty_db) == []


def test_cli_status_reads_a_database_where_every_transaction_is_read_only(
    empty_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hot standby, or a read-only role: status still answers."""
    migrations.apply(empty_db, up_to="chatstore_0002_harden_users_tasks")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        dbname = conn.execute("SELECT current_database()").fetchone()
        assert dbname is not None
        conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                psycopg.sql.Identifier(dbname[0])
            )
        )
    assert main(["status", "--dsn", empty_db]) == 0
    out = capsys.readouterr().out.split()
    assert out[:4] == [
        "applied",
        "chatstore_0001_phase2_baseline",
        "applied",
        "chatstore_0002_harden_users_tasks",
    ]
    assert set(out[4::2]) == {"pending"}


def test_cli_a_lock_timeout_in_a_migration_is_one_line_naming_the_migration(
    empty_db: str,
) -> None:
    """0002 sets lock_timeout = 5s; a transaction holding tasks makes it give up."""
    migrations.apply(empty_db, up_to="chatstore_0001_phase2_baseline")
    with psycopg.connect(empty_db) as holder:
        holder.execute("LOCK TABLE tasks IN ACCESS SHARE MODE")
        run = _cli("migrate", "--dsn", empty_db)
    err = _one_line_error(run, "migrate")
    assert "chatstore_0002_harden_users_tasks" in err
    assert "lock timeout" in err
    assert [s.id for s in migrations.status(empty_db) if s.applied] == [
        "chatstore_0001_phase2_baseline"
    ]


def test_cli_a_migration_refused_by_a_constraint_is_one_line_naming_the_migration(
    empty_db: str,
) -> None:
    migrations.apply(empty_db, up_to="chatstore_0001_phase2_baseline")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO tasks (user_id, title) VALUES (NULL, 'orphan')")
    err = _one_line_error(_cli("migrate", "--dsn", empty_db), "migrate")
    assert "chatstore_0002_harden_users_tasks" in err
    assert "null value" in err


@pytest.mark.parametrize(
    "dsn",
    ["host=127.0.0.1 port=1 dbname=nowhere connect_timeout=5", "host=127.0.0.1 no_such_option=1"],
    ids=["unreachable", "malformed"],
)
def test_cli_a_connection_that_fails_is_one_line(dsn: str) -> None:
    for command in ("migrate", "status", "rollback"):
        _one_line_error(_cli(command, "--dsn", dsn), command)


def test_cli_migrate_waits_lock_wait_seconds_for_a_live_holder_and_names_a_dead_one(
    empty_db: str,
) -> None:
    migrations.apply(empty_db, up_to="chatstore_0001_phase2_baseline")
    take = (
        "INSERT INTO yoyo_lock (locked, ctime, pid)"
        " VALUES (1, now() AT TIME ZONE 'UTC', pg_backend_pid())"
    )
    with psycopg.connect(empty_db, autocommit=True) as holder:
        holder.execute(take)
        err = _one_line_error(_cli("migrate", "--lock-wait", "0.5", "--dsn", empty_db), "migrate")
        assert "still running" in err
        assert "break-lock" not in err
    # The holder's session is gone, its row stays: the message says how to clear it.
    # (--lock-wait: the server may list the ended session for a moment.)
    err = _one_line_error(_cli("rollback", "--lock-wait", "30", "--dsn", empty_db), "rollback")
    assert "yoyo break-lock" in err
    run = _cli("migrate", "--lock-wait", "-1", "--dsn", empty_db)
    assert run.returncode == 2
    assert "must be 0 or more seconds" in run.stderr
