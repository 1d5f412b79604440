"""Apply, roll back and list chatstore's schema migrations.

The migrations are yoyo SQL files. A wheel carries them in ``chatstore/sql``; a
source checkout (editable install) reads the repository's ``sql/`` folder. Every
function takes a libpq connection string (``host=... dbname=...``) or a URL
(``postgresql://...``). ``apply`` and ``rollback`` hold yoyo's lock while they work, so
concurrent callers queue and apply each migration once; ``status`` and ``assert_current``
only read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations
from yoyo.backends import DatabaseBackend
from yoyo.migrations import Migration, MigrationList

from chatstore._core import translate
from chatstore.errors import ChatstoreError

#: How long ``apply`` and ``rollback`` wait for another run's lock, in seconds.
DEFAULT_LOCK_WAIT = 600.0

_PACKAGED_SQL = Path(__file__).parent / "sql"
_SOURCE_SQL = Path(__file__).parent.parent / "sql"


class MigrationError(ChatstoreError):
    """A migration did not complete; it is not recorded as applied (or rolled back)."""

    def __init__(self, message: str, *, migration_id: str) -> None:
        super().__init__(message)
        #: The id of the migration that did not complete.
        self.migration_id = migration_id


class SchemaMismatch(ChatstoreError):
    """The database's applied migrations are not the installed chatstore's (see
    :func:`assert_current`): it is behind (``pending``), ahead (``unknown``), or both."""

    def __init__(self, message: str, *, pending: tuple[str, ...], unknown: tuple[str, ...]) -> None:
        super().__init__(message)
        #: Ids of the installed code's migrations that the database has not applied,
        #: oldest first: ``chatstore migrate`` applies them.
        self.pending = pending
        #: Ids of chatstore migrations the database has applied that the installed code
        #: does not know: a newer chatstore migrated it.
        self.unknown = unknown


class MigrationLocked(ChatstoreError):
    """Another migration run holds yoyo's lock on this database."""

    def __init__(self, message: str, *, holder_pid: int, holder_alive: bool) -> None:
        super().__init__(message)
        #: The pid the lock row names: the holder's server process when chatstore took it.
        self.holder_pid = holder_pid
        #: True when a session with that pid, started before the lock was taken, is
        #: still connected to this database.
        self.holder_alive = holder_alive


@dataclass(frozen=True)
class MigrationStatus:
    id: str
    applied: bool


def sql_dir() -> Path:
    """The folder holding ``migrations/`` and ``queries/``: packaged, else the checkout's."""
    return _PACKAGED_SQL if _PACKAGED_SQL.is_dir() else _SOURCE_SQL


def migrations_dir() -> Path:
    return sql_dir() / "migrations"


def yoyo_uri(dsn: str) -> str:
    """The yoyo URI for a libpq DSN or URL: psycopg 3 driver, every parameter kept.

    Every parameter, the database name included, goes in the query string,
    percent-encoded (``quote``, nothing left safe): yoyo decodes query values
    (``parse_qsl``) and gives them to ``psycopg.connect``, where ``dbname`` overrides the
    URL's empty path. The path and the authority would not do: yoyo takes the path as it
    is, without decoding, and an authority cannot hold a socket folder, a list of hosts
    or a name with ``#`` (a ``#`` in the path cut the rest of the URL off: the host, so
    the connection went to the local socket, and the user and port with it).
    """
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    query = urlencode(params, quote_via=quote)
    return f"postgresql+psycopg:///?{query}" if query else "postgresql+psycopg:///"


_LOCK_POLL = 0.5  # seconds between attempts, as yoyo's own lock

# The row records the lock connection's server pid, so that whether its holder is still
# there can be read from pg_stat_activity (yoyo records its client's os.getpid()).
_TAKE_LOCK = """
INSERT INTO {} (locked, ctime, pid) VALUES (1, now() AT TIME ZONE 'UTC', pg_backend_pid())
ON CONFLICT DO NOTHING
RETURNING pid
"""
_LOCK_HOLDER = """
SELECT l.pid, l.ctime, EXISTS (
    SELECT FROM pg_stat_activity AS a
    WHERE a.pid = l.pid AND a.datname = current_database()
      -- Started before the lock was taken: not a later session that reuses the pid.
      -- backend_start is NULL for other roles' sessions without pg_read_all_stats.
      AND (a.backend_start IS NULL OR a.backend_start <= l.ctime AT TIME ZONE 'UTC')
)
FROM {} AS l
"""


@contextmanager
def _locked(backend: DatabaseBackend, wait: float | None) -> Iterator[None]:
    """Hold yoyo's lock (its ``yoyo_lock`` row, so that a plain ``yoyo apply`` queues
    too) while the body runs, waiting up to ``wait`` seconds (``None``: no bound) for a
    holder that is still running, and failing at once when the holder is gone.

    yoyo's own ``backend.lock()`` gives up after 10 s whoever holds the lock and then
    suggests ``yoyo break-lock``, though a run waiting in ``CREATE INDEX CONCURRENTLY``
    holds it legitimately for as long as the oldest transaction lasts.
    """
    conn = backend.connection  # yoyo's main connection: autocommit, open for the whole run
    table = sql.Identifier(backend.lock_table)
    deadline = None if wait is None else time.monotonic() + wait
    while conn.execute(sql.SQL(_TAKE_LOCK).format(table)).fetchone() is None:
        row = conn.execute(sql.SQL(_LOCK_HOLDER).format(table)).fetchone()
        if row is None:
            continue  # released in between: try again at once
        pid, since, alive = int(row[0]), row[1], bool(row[2])
        if not alive:
            raise MigrationLocked(_gone_message(pid, since), holder_pid=pid, holder_alive=False)
        if deadline is not None and time.monotonic() >= deadline:
            raise MigrationLocked(
                f"another migration run holds the lock (server process {pid}, since"
                f" {_utc(since)}) and is still running; waited {wait:g} s for it. Let it"
                " finish, or wait longer (--lock-wait SECONDS, lock_wait=)",
                holder_pid=pid,
                holder_alive=True,
            )
        time.sleep(_LOCK_POLL)
    # yoyo's own lock() (ensure_internal_schema_updated calls it) must see it held.
    backend._is_locked = True
    release = sql.SQL("DELETE FROM {} WHERE pid = pg_backend_pid()").format(table)
    try:
        yield
    except BaseException:
        backend._is_locked = False
        with suppress(psycopg.Error):  # the body's error is the one to report
            conn.execute(release)
        raise
    backend._is_locked = False
    conn.execute(release)


def _gone_message(pid: int, since: datetime | None) -> str:
    return (
        f"the migration lock was taken at {_utc(since)} by process {pid}, which has no"
        " session on this database: the run that took it is gone (killed mid-run). Unless a"
        " plain `yoyo apply` is running (it records its client's pid, which this check"
        " cannot see), clear the lock with `yoyo break-lock` (or DELETE FROM yoyo_lock)"
        " and apply again"
    )


def _utc(moment: datetime | None) -> str:
    return "an unknown time" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


@contextmanager
def _open(dsn: str, source: Path | None) -> Iterator[tuple[DatabaseBackend, MigrationList]]:
    backend = get_backend(yoyo_uri(dsn))
    try:
        yield backend, read_migrations(str(source or migrations_dir()))
    finally:
        backend.connection.close()


def _run(backend: DatabaseBackend, migration: Migration, direction: str) -> None:
    """Apply or roll back one migration; an error leaving it says which one it was.

    The error keeps its type (a psycopg error, typically); a note names the migration,
    which tracebacks and ``chatstore``'s one-line messages show.
    """
    try:
        _run_one(backend, migration, direction)
    except MigrationError:
        raise  # its message names the migration
    except Exception as exc:
        verb = "applying" if direction == "apply" else "rolling back"
        exc.add_note(f"{verb} {migration.id}")
        raise


def _run_one(backend: DatabaseBackend, migration: Migration, direction: str) -> None:
    """Apply or roll back one migration and record it in the same transaction.

    yoyo's own ``apply_one`` commits the steps on a second connection and only then
    records them on the first: losing the first in between leaves a migration applied
    but unrecorded, which the next run would apply again. Here the second connection
    commits a transactional migration's steps, its ``_yoyo_migration`` row and its log
    line together, or nothing; the first keeps yoyo's lock and releases it even when
    the second is killed. A ``transactional: false`` migration cannot share a
    transaction: see :func:`_run_outside_transaction`.
    """
    migration.load()
    backend.ensure_internal_schema_updated()
    if not migration.use_transactions:
        _run_outside_transaction(backend, migration, direction)
        return
    with backend.copy() as runner, runner.transaction():
        # Nested in this transaction, process_steps runs under a savepoint.
        migration.process_steps(runner, direction)
        _record(runner, migration, direction)


def _record(backend: DatabaseBackend, migration: Migration, direction: str) -> None:
    """Mark the migration applied (or not) and log it, in the caller's transaction."""
    if direction == "apply":
        backend.mark_one(migration, log=False)
    else:
        backend.unmark_one(migration, log=False)
    backend.log_migration(migration, direction)


def _run_outside_transaction(
    backend: DatabaseBackend, migration: Migration, direction: str
) -> None:
    """Run a ``transactional: false`` migration, then record it.

    Such a migration is written to be run again after a failure (``IF NOT EXISTS``,
    backfills that find what is left), with one exception the runner covers: a
    ``CREATE INDEX CONCURRENTLY`` that fails (cancelled, timed out, a duplicate key)
    leaves an INVALID index behind, which ``IF NOT EXISTS`` then skips, so the migration
    would be recorded while queries seq-scan. So an INVALID index of a name that the
    file creates concurrently is dropped (``DROP INDEX CONCURRENTLY``) before the file
    runs, and after it runs every such index must be valid, or the migration is not
    recorded (:class:`MigrationError`).
    """
    built = _indexes_built_concurrently(migration, direction)
    with backend.copy() as runner:
        conn = runner.connection  # autocommit: each statement commits on its own
        for schema, name in _invalid_indexes(conn, built):
            conn.execute(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, name))
            )
        migration.process_steps(runner, direction)
        left = [name for _, name in _invalid_indexes(conn, built)]
    if left:
        raise MigrationError(
            f"{migration.id}: the concurrent build left {', '.join(left)} INVALID, so it is"
            f" not recorded as {'applied' if direction == 'apply' else 'rolled back'};"
            " run it again: an INVALID leftover is dropped and built again",
            migration_id=migration.id,
        )
    with backend.transaction():
        _record(backend, migration, direction)


# CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON ...; the name is never
# schema-qualified (an index lives in its table's schema).
_CONCURRENT_INDEX = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\s+ON\b',
    re.IGNORECASE,
)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def _indexes_built_concurrently(migration: Migration, direction: str) -> list[str]:
    """The names of the indexes that this direction of a SQL migration builds
    concurrently, as the catalog spells them."""
    if not migration.is_raw_sql():
        return []
    path = Path(migration.path)
    if direction == "rollback":
        path = path.with_name(f"{path.stem}.rollback.sql")
        if not path.is_file():
            return []
    text = _SQL_COMMENT.sub(" ", path.read_text(encoding="utf-8"))
    return [
        name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
        for name in (m.group(1) for m in _CONCURRENT_INDEX.finditer(text))
    ]


def _invalid_indexes(
    conn: psycopg.Connection[tuple[object, ...]], names: list[str]
) -> list[tuple[str, str]]:
    """(schema, name) of each INVALID index among ``names``, found as the migration's
    unqualified names are (``search_path``)."""
    if not names:
        return []
    rows = conn.execute(
        "SELECT n.nspname, c.relname"
        " FROM unnest(%s::text[]) AS wanted (name)"
        " JOIN pg_class AS c ON c.oid = to_regclass(quote_ident(wanted.name))"
        " JOIN pg_index AS i ON i.indexrelid = c.oid"
        " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE NOT i.indisvalid",
        (names,),
    ).fetchall()
    return [(str(schema), str(name)) for schema, name in rows]


def apply(
    dsn: str,
    *,
    up_to: str | None = None,
    source: Path | None = None,
    lock_wait: float | None = DEFAULT_LOCK_WAIT,
) -> list[str]:
    """Apply pending migrations in order, all of them or up to and including ``up_to``.

    Returns the ids applied (an empty list: already up to date). ``source`` is another
    folder of yoyo migrations; chatstore's own by default. Another run holding the lock
    is waited for up to ``lock_wait`` seconds (``None``: without a bound), then
    :class:`MigrationLocked`; a lock whose holder is gone raises it at once.
    """
    with _open(dsn, source) as (backend, migrations), _locked(backend, lock_wait):
        pending = backend.to_apply(migrations)
        if up_to is not None:
            ids = [m.id for m in migrations]
            if up_to not in ids:
                raise ValueError(f"unknown migration {up_to!r}")
            wanted = set(ids[: ids.index(up_to) + 1])
            pending = MigrationList([m for m in pending if m.id in wanted], pending.post_apply)
        for migration in pending:
            _run(backend, migration, "apply")
    return [m.id for m in pending]


def rollback(
    dsn: str,
    *,
    steps: int | None = 1,
    source: Path | None = None,
    lock_wait: float | None = DEFAULT_LOCK_WAIT,
) -> list[str]:
    """Roll back the last ``steps`` applied migrations (``None``: all); return their ids.

    With nothing applied it returns ``[]`` and writes nothing (yoyo's tables included).
    ``lock_wait`` as for :func:`apply`.
    """
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, or None for all, not {steps}")
    if not _applied(dsn):
        return []
    with _open(dsn, source) as (backend, migrations), _locked(backend, lock_wait):
        applied = backend.to_rollback(migrations)  # newest first
        chosen = applied if steps is None else applied[:steps]
        for migration in chosen:
            _run(backend, migration, "rollback")
    return [m.id for m in chosen]


def status(dsn: str, *, source: Path | None = None) -> list[MigrationStatus]:
    """Every known migration, oldest first, and whether it is applied.

    Reads only, in a read-only transaction: a database yoyo never touched is all
    pending and stays untouched (yoyo's own status path creates its tables first), and a
    hot standby or a read-only role can ask too.
    """
    applied = _applied(dsn)
    migrations = read_migrations(str(source or migrations_dir()))
    return [MigrationStatus(m.id, m.hash in applied) for m in migrations]


#: The prefix of chatstore's migration ids; other services' migrations may share
#: yoyo's tables, and :func:`assert_current` leaves theirs alone.
_OWN_PREFIX = "chatstore_"


def assert_current(dsn: str) -> None:
    """Raise :class:`SchemaMismatch` unless the database has applied exactly the
    installed chatstore's migrations: none pending, none unknown to this code.

    For a service's start-up: it reads only, as :func:`status` does (a database never
    migrated is behind with every migration pending, and stays untouched). Only
    chatstore's own migrations (ids ``chatstore_...``) count. A database that cannot be
    reached raises :class:`~chatstore.errors.Unavailable` (any other database error, a
    :class:`~chatstore.errors.ChatstoreError`).
    """
    _check(dsn)


def _check(dsn: str) -> int:
    """:func:`assert_current`, returning how many migrations are applied (for the CLI)."""
    try:
        applied = _applied(dsn)
    except psycopg.Error as exc:
        raise translate(exc) from exc
    known = [m for m in read_migrations(str(migrations_dir())) if m.id.startswith(_OWN_PREFIX)]
    hashes = {m.hash for m in known}
    pending = tuple(m.id for m in known if m.hash not in applied)
    unknown = tuple(
        sorted(
            mid
            for hash_, mid in applied.items()
            if hash_ not in hashes and mid.startswith(_OWN_PREFIX)
        )
    )
    problems = []
    if pending:
        count = f"{len(pending)} pending migration{'s' if len(pending) > 1 else ''}"
        problems.append(
            f"database is behind: {count}: {', '.join(pending)}; run `chatstore migrate`"
        )
    if unknown:
        problems.append(
            "database is ahead of the installed chatstore: applied migrations unknown to"
            f" it: {', '.join(unknown)}; upgrade chatstore"
        )
    if problems:
        raise SchemaMismatch("; ".join(problems), pending=pending, unknown=unknown)
    return len(known)


def _applied(dsn: str) -> dict[str, str]:
    """yoyo's record of the applied migrations (``_yoyo_migration``), each hash to its
    id, or nothing when the table does not exist. Reads only, creates nothing.

    yoyo finds its tables unqualified, in ``current_schema``, as its ``list_tables`` does.
    """
    with psycopg.connect(dsn) as conn:
        conn.read_only = True
        found = conn.execute(
            "SELECT 1 FROM pg_catalog.pg_tables"
            " WHERE schemaname = current_schema AND tablename = '_yoyo_migration'"
        ).fetchone()
        if found is None:
            return {}
        rows = conn.execute("SELECT migration_hash, migration_id FROM _yoyo_migration").fetchall()
    return {str(hash_): "" if mid is None else str(mid) for hash_, mid in rows}
