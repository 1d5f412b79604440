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
        assert shards == [("conversations", 4), ("messages", 4), ("tasks", 4), ("users", 1)]
