"""Archive and retention for the operator: ``chatstore purge``, its durations, and
migration 0015 applied to a database in use, on PostgreSQL and after ``chatstore
distribute`` on Citus. (The API's tests are tests/test_archive_retention.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

import psycopg
import pytest

from chatstore import citus, migrations, queries, retention
from chatstore.cli import main
from chatstore.devserver import DSN_ENV
from tests.citus_support import Cluster, citus_database, maintenance_dsn, one_shard_only

MIGRATION = "chatstore_0015_archive"
NEW_INDEXES = {
    "conversations_user_id_updated_at_active_idx",
    "conversations_user_id_updated_at_archived_idx",
    "conversations_last_activity_idx",
}
OLD_INDEX = "conversations_user_id_updated_at_idx"


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("36500d", timedelta(days=36_500)),
    ],
)
def test_a_duration_is_a_whole_number_and_one_unit(text: str, value: timedelta) -> None:
    assert retention.parse_duration(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "90", "d", "0d", "-1d", "+1d", "1.5d", " 90d", "90d ", "90 d", "90D", "1d12h", "3mo",
     "90days", "\u0661d", "36501d", "99999999999d", "0x10d"],
)  # fmt: skip
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a duration|more than 36500 days"):
        retention.parse_duration(text)


# --- chatstore purge -------------------------------------------------------------------------


def _old_conversations(conn: psycopg.Connection, user_id: str, count: int) -> list[int]:
    queries.create_user(conn, id=user_id, email=f"{user_id}@example.com")
    ids = []
    for _ in range(count):
        conversation = queries.create_conversation(conn, user_id=user_id).id
        queries.append_message(
            conn, user_id=user_id, conversation_id=conversation, role="user", content="hi"
        )
        ids.append(conversation)
    conn.execute(
        "UPDATE conversations SET created_at = now() - interval '100 days',"
        " updated_at = now() - interval '100 days', last_message_at = now() - interval '100 days'"
        " WHERE id = ANY(%s)",
        [ids],
    )
    return ids


def _count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM conversations").fetchone()
    assert row is not None
    return int(row[0])


def test_cli_purge_reports_what_it_removed_and_a_dry_run_removes_nothing(
    db_dsn: str, conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    _old_conversations(conn, "ann", 3)
    queries.create_conversation(conn, user_id="ann")
    assert main(["purge", "--dsn", db_dsn, "--older-than", "90d", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would purge 3 conversations (3 messages, 0 agent items) idle since ")
    assert out.endswith(" s\n")
    assert ": 1 batch, " in out
    assert _count(conn) == 4
    assert main(["--dsn", db_dsn, "purge", "--older-than", "2w", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("purged 3 conversations (3 messages, 0 agent items) idle since ")
    assert ": 2 batches, " in out
    assert _count(conn) == 1
    assert main(["purge", "--dsn", db_dsn, "--older-than", "1d", "--archived-only"]) == 0
    assert capsys.readouterr().out.startswith("purged 0 archived conversations (0 messages")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ([], "the following arguments are required: --older-than"),
        (["--older-than", "90"], "not a duration"),
        (["--older-than", "0d"], "not a duration"),
        (["--older-than", "6mo"], "not a duration"),
        (["--older-than", "99999d"], "more than 36500 days"),
        (["--older-than", "90d", "--batch-size", "0"], "at least 1"),
        (["--older-than", "90d", "--batch-size", "10001"], "at most 10000"),
        (["--older-than", "90d", "--batch-size", "ten"], "not a whole number"),
    ],
)
def test_cli_purge_usage_errors_exit_2_and_delete_nothing(
    db_dsn: str,
    conn: psycopg.Connection,
    args: list[str],
    complaint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _old_conversations(conn, "ann", 1)
    with pytest.raises(SystemExit) as info:
        main(["purge", "--dsn", db_dsn, *args])
    assert info.value.code == 2
    assert complaint in capsys.readouterr().err
    assert _count(conn) == 1


def test_cli_purge_on_a_database_without_the_schema_fails_in_one_line(empty_db: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "chatstore.cli", "purge", "--dsn", empty_db, "--older-than", "1d"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != DSN_ENV},
        check=False,
    )
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr.count("\n") == 1
    assert run.stderr.startswith("chatstore purge: ")
    assert "conversations" in run.stderr


# --- migration 0015 on a database in use ---------------------------------------------------


def _before(dsn: str) -> str:
    """The migration applied just before 0015."""
    ids = [s.id for s in migrations.status(dsn)]
    return ids[ids.index(MIGRATION) - 1]


def _indexes(conn: psycopg.Connection) -> dict[str, bool]:
    """The conversations' indexes and whether each is valid."""
    rows = conn.execute(
        "SELECT c.relname, i.indisvalid FROM pg_index AS i JOIN pg_class AS c"
        " ON c.oid = i.indexrelid WHERE i.indrelid = 'conversations'::regclass"
    ).fetchall()
    return dict(rows)


def test_migration_0015_applies_while_appends_go_on_without_rewriting_conversations(
    empty_db: str,
) -> None:
    migrations.apply(empty_db, up_to=_before(empty_db))
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # Written as the code of the time would: today's returns archived_at.
        conn.execute("INSERT INTO users (id, email) VALUES ('ann', 'ann@example.com')")
        ids = [
            row[0]
            for row in conn.execute(
                "INSERT INTO conversations (user_id) SELECT 'ann' FROM generate_series(1, 50)"
                " RETURNING id"
            ).fetchall()
        ]
        order = conn.execute(
            "SELECT id FROM conversations ORDER BY updated_at DESC, id DESC"
        ).fetchall()
        filenode = conn.execute("SELECT pg_relation_filenode('conversations')").fetchone()
    stop = threading.Event()
    appended: list[float] = []
    failures: list[BaseException] = []

    def append() -> None:
        try:
            with psycopg.connect(empty_db, autocommit=True) as writer:
                while not stop.is_set():
                    started = time.monotonic()
                    queries.append_message(
                        writer, user_id="ann", conversation_id=ids[0], role="user", content="x"
                    )
                    appended.append(time.monotonic() - started)
        except BaseException as exc:  # reported below
            failures.append(exc)

    writer = threading.Thread(target=append)
    writer.start()
    try:
        while len(appended) < 20 and not failures:
            time.sleep(0.01)
        before = len(appended)
        assert migrations.apply(empty_db, up_to=MIGRATION) == [MIGRATION]
        during = len(appended) - before
        time.sleep(0.1)
    finally:
        stop.set()
        writer.join()
    assert failures == []
    assert during > 0, "appends went on while the migration ran"
    assert max(appended) < 5  # the ADD COLUMN's lock is milliseconds
    with psycopg.connect(empty_db, autocommit=True) as conn:
        # A column without a default: no rewrite, the same file on disk.
        assert conn.execute("SELECT pg_relation_filenode('conversations')").fetchone() == filenode
        indexes = _indexes(conn)
        assert OLD_INDEX not in indexes
        assert {name: indexes.get(name) for name in NEW_INDEXES} == dict.fromkeys(NEW_INDEXES, True)
        listed = queries.list_conversations(conn, user_id="ann", limit=100).items
        assert [c.archived_at for c in listed] == [None] * 50
        assert [c.id for c in listed] == [ids[0]] + [r[0] for r in order if r[0] != ids[0]]


@pytest.mark.citus
def test_migration_0015_after_distribution_reaches_every_shard_and_purge_works_there(
    citus_cluster: Cluster,  # skips, with the reason, without a cluster
) -> None:
    maintenance = maintenance_dsn()
    assert maintenance is not None
    name = f"chatstore_citus_0015_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with citus_database(maintenance, name) as cluster:
        # Distributing wants every migration applied: 0015 (and any after it) is rolled
        # back once the tables are distributed, then applied again.
        migrations.apply(cluster.coordinator)
        citus.distribute(cluster.coordinator, shard_count=4)
        ids = [s.id for s in migrations.status(cluster.coordinator)]
        migrations.rollback(cluster.coordinator, steps=len(ids) - ids.index(MIGRATION))
        with psycopg.connect(cluster.coordinator, autocommit=True) as conn:
            assert OLD_INDEX in _indexes(conn)
            conn.execute("INSERT INTO users (id, email) VALUES ('ann', 'ann@example.com')")
            old = [
                row[0]
                for row in conn.execute(
                    "INSERT INTO conversations (user_id, created_at, updated_at)"
                    " VALUES ('ann', now() - interval '100 days', now() - interval '100 days'),"
                    "        ('ann', now() - interval '100 days', now() - interval '100 days')"
                    " RETURNING id"
                ).fetchall()
            ]
            assert migrations.apply(cluster.coordinator, up_to=MIGRATION) == [MIGRATION]
            migrations.apply(cluster.coordinator)
            assert set(_indexes(conn)) >= NEW_INDEXES
            # Every shard of conversations has the three indexes, valid, and not the old one.
            per_shard = conn.execute(
                "SELECT result FROM run_command_on_shards('conversations',"
                " $$SELECT string_agg(c.relname || ':' || i.indisvalid, ',' ORDER BY c.relname)"
                " FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = '%s'::regclass$$)"
            ).fetchall()
            assert len(per_shard) == 4
            for (result,) in per_shard:
                names = dict(item.rsplit(":", 1) for item in result.split(","))
                assert {n.rsplit("_", 1)[0] for n, valid in names.items() if valid == "true"} >= (
                    NEW_INDEXES
                ), result
                assert not any(n.startswith(OLD_INDEX) for n in names), result
        with psycopg.connect(one_shard_only(cluster.coordinator), autocommit=True) as app:
            archived = queries.archive_conversation(app, user_id="ann", conversation_id=old[0])
            assert archived.archived_at is not None
            page = queries.list_conversations(app, user_id="ann", archived=True)
            assert [c.id for c in page.items] == [old[0]]
        report = retention.purge_conversations(
            cluster.coordinator, older_than=timedelta(days=90), batch_size=1
        )
        assert (report.conversations, report.messages, report.batches) == (2, 0, 2)
