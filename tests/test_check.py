"""The startup check: ``chatstore.migrations.assert_current`` and ``chatstore check``
pass on a database with exactly the installed migrations applied, name the pending ones
of a database that is behind and the unknown ones of one that is ahead (a newer
chatstore migrated it), read only, and fail in one line when the server is unreachable.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

from chatstore import migrations
from chatstore.cli import main
from chatstore.devserver import DSN_ENV
from chatstore.errors import ChatstoreError, Unavailable
from chatstore.migrations import SchemaMismatch, assert_current

UNREACHABLE = "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=5"
FUTURE = "chatstore_9999_from_a_newer_chatstore"


def migration_ids() -> list[str]:
    """The installed migrations, read from the folder (not through the code under test)."""
    return sorted(
        p.stem for p in migrations.migrations_dir().glob("*.sql") if ".rollback" not in p.name
    )


def _objects(dsn: str) -> list[tuple[str, str, str]]:
    """Every relation outside the system schemas, and every schema: what a check that
    created yoyo's tables (or anything else) would change."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class AS c"
            " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
            " UNION ALL SELECT nspname, '', 'schema' FROM pg_namespace"
            " ORDER BY 1, 2"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _mark_applied(dsn: str, migration_id: str) -> None:
    """Record ``migration_id`` as applied, as yoyo does (the key is its id's sha256)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)"
            " VALUES (%s, %s, now() AT TIME ZONE 'UTC')",
            (hashlib.sha256(migration_id.encode()).hexdigest(), migration_id),
        )


def _mismatch(dsn: str) -> SchemaMismatch:
    with pytest.raises(SchemaMismatch) as info:
        assert_current(dsn)
    return info.value


# --- the function ------------------------------------------------------------------------


def test_check_passes_on_a_database_with_every_migration_applied(db_dsn: str) -> None:
    assert len(migration_ids()) >= 11
    assert_current(db_dsn)  # raises nothing


def test_check_an_empty_database_is_behind_with_every_migration_pending_and_stays_empty(
    empty_db: str,
) -> None:
    before = _objects(empty_db)
    assert [o for o in before if o[0] == "public"] == [("public", "", "schema")]
    error = _mismatch(empty_db)
    assert isinstance(error, ChatstoreError)
    assert error.pending == tuple(migration_ids())
    assert error.unknown == ()
    assert str(error) == (
        f"database is behind: {len(migration_ids())} pending migrations:"
        f" {', '.join(migration_ids())}; run `chatstore migrate`"
    )
    assert _objects(empty_db) == before, "the check created something"


def test_check_names_exactly_the_rolled_back_last_migration_as_pending(db_dsn: str) -> None:
    last = migration_ids()[-1]
    assert migrations.rollback(db_dsn, steps=1) == [last]
    error = _mismatch(db_dsn)
    assert error.pending == (last,)
    assert error.unknown == ()
    assert str(error) == f"database is behind: 1 pending migration: {last}; run `chatstore migrate`"
    migrations.apply(db_dsn)
    assert_current(db_dsn)


def test_check_names_an_applied_migration_the_code_does_not_know_as_unknown(
    db_dsn: str,
) -> None:
    _mark_applied(db_dsn, FUTURE)
    _mark_applied(db_dsn, "billing_0001_another_service")  # not chatstore's: ignored
    error = _mismatch(db_dsn)
    assert error.pending == ()
    assert error.unknown == (FUTURE,)
    assert str(error) == (
        "database is ahead of the installed chatstore: applied migrations unknown to it:"
        f" {FUTURE}; upgrade chatstore"
    )


def test_check_ignores_other_services_migrations_in_the_same_yoyo_tables(db_dsn: str) -> None:
    _mark_applied(db_dsn, "billing_0001_another_service")
    assert_current(db_dsn)


def test_check_reports_a_database_both_behind_and_ahead(db_dsn: str) -> None:
    last = migration_ids()[-1]
    migrations.rollback(db_dsn, steps=1)
    _mark_applied(db_dsn, FUTURE)
    _mark_applied(db_dsn, "chatstore_9998_also_newer")
    error = _mismatch(db_dsn)
    assert error.pending == (last,)
    assert error.unknown == ("chatstore_9998_also_newer", FUTURE)
    message = str(error)
    assert message.startswith(f"database is behind: 1 pending migration: {last};")
    assert message.endswith(
        "database is ahead of the installed chatstore: applied migrations unknown to it:"
        f" chatstore_9998_also_newer, {FUTURE}; upgrade chatstore"
    )


def test_check_answers_where_every_transaction_is_read_only(db_dsn: str) -> None:
    """A hot standby or a read-only role: the check reads, so it answers."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                sql.Identifier(str(conn.info.dbname))
            )
        )
    assert_current(db_dsn)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute("DELETE FROM _yoyo_migration WHERE migration_id = %s", (migration_ids()[0],))
    assert _mismatch(db_dsn).pending == (migration_ids()[0],)


def test_check_on_an_unreachable_server_raises_unavailable_not_a_psycopg_error() -> None:
    with pytest.raises(Unavailable) as info:
        assert_current(UNREACHABLE)
    assert isinstance(info.value.__cause__, psycopg.OperationalError)


# --- the command -------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``chatstore ARGS`` in a process of its own, without ``CHATSTORE_DSN`` unless given."""
    base = {k: v for k, v in os.environ.items() if k != DSN_ENV}
    return subprocess.run(
        [sys.executable, "-m", "chatstore.cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        check=False,
    )


def _one_line_error(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("chatstore check: "), run.stderr
    return run.stderr.removeprefix("chatstore check: ").rstrip("\n")


def test_cli_check_on_a_current_database_exits_0_with_chatstores_count(
    db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _mark_applied(db_dsn, "billing_0001_another_service")  # not counted
    expected = f"up to date ({len(migration_ids())} migrations applied)\n"
    assert main(["check", "--dsn", db_dsn]) == 0
    assert capsys.readouterr().out == expected
    assert main(["--dsn", db_dsn, "check"]) == 0
    assert capsys.readouterr().out == expected
    monkeypatch.setenv(DSN_ENV, db_dsn)
    assert main(["check"]) == 0
    assert capsys.readouterr().out == expected


def test_cli_check_on_an_empty_database_exits_1_listing_every_migration_and_creates_nothing(
    empty_db: str,
) -> None:
    before = _objects(empty_db)
    err = _one_line_error(_cli("check", "--dsn", empty_db))
    assert err == (
        f"database is behind: {len(migration_ids())} pending migrations:"
        f" {', '.join(migration_ids())}; run `chatstore migrate`"
    )
    assert _objects(empty_db) == before


def test_cli_check_lists_the_pending_and_the_unknown_migrations(db_dsn: str) -> None:
    last = migration_ids()[-1]
    migrations.rollback(db_dsn, steps=1)
    err = _one_line_error(_cli("check", env={DSN_ENV: db_dsn}))
    assert err == f"database is behind: 1 pending migration: {last}; run `chatstore migrate`"
    migrations.apply(db_dsn)
    _mark_applied(db_dsn, FUTURE)
    err = _one_line_error(_cli("--dsn", db_dsn, "check"))
    assert err == (
        "database is ahead of the installed chatstore: applied migrations unknown to it:"
        f" {FUTURE}; upgrade chatstore"
    )
    migrations.rollback(db_dsn, steps=1)
    err = _one_line_error(_cli("check", "--dsn", db_dsn))
    assert f"1 pending migration: {last}; run `chatstore migrate`" in err
    assert f"unknown to it: {FUTURE}; upgrade chatstore" in err


@pytest.mark.parametrize(
    ("dsn", "complaint"),
    [
        (UNREACHABLE, "database unavailable: "),
        ("host=127.0.0.1 no_such_option=1", "no_such_option"),
    ],
    ids=["unreachable", "malformed"],
)
def test_cli_check_on_a_connection_that_fails_is_one_line(dsn: str, complaint: str) -> None:
    err = _one_line_error(_cli("check", "--dsn", dsn))
    assert complaint in err
    assert "Traceback" not in err
