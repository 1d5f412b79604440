"""Apply, roll back and list chatstore's schema migrations.

The migrations are yoyo SQL files. A wheel carries them in ``chatstore/sql``; a
source checkout (editable install) reads the repository's ``sql/`` folder. Every
function takes a libpq connection string (``host=... dbname=...``) or a URL
(``postgresql://...``), and holds yoyo's lock while it works, so concurrent
callers apply each migration once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations
from yoyo.backends import DatabaseBackend
from yoyo.migrations import MigrationList

_PACKAGED_SQL = Path(__file__).parent / "sql"
_SOURCE_SQL = Path(__file__).parent.parent / "sql"


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
    """The yoyo URI for a libpq DSN: psycopg 3 driver, every parameter passed through."""
    params = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    dbname = params.pop("dbname", "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql+psycopg:///{dbname}{query}"


@contextmanager
def _open(dsn: str) -> Iterator[tuple[DatabaseBackend, MigrationList]]:
    backend = get_backend(yoyo_uri(dsn))
    try:
        yield backend, read_migrations(str(migrations_dir()))
    finally:
        backend.connection.close()


def apply(dsn: str, *, up_to: str | None = None) -> list[str]:
    """Apply pending migrations in order, all of them or up to and including ``up_to``.

    Returns the ids applied (an empty list: already up to date).
    """
    with _open(dsn) as (backend, migrations), backend.lock():
        pending = backend.to_apply(migrations)
        if up_to is not None:
            ids = [m.id for m in migrations]
            if up_to not in ids:
                raise ValueError(f"unknown migration {up_to!r}")
            wanted = set(ids[: ids.index(up_to) + 1])
            pending = MigrationList([m for m in pending if m.id in wanted], pending.post_apply)
        backend.apply_migrations(pending)
    return [m.id for m in pending]


def rollback(dsn: str, *, steps: int | None = 1) -> list[str]:
    """Roll back the last ``steps`` applied migrations (``None``: all); return their ids."""
    if steps is not None and steps < 0:
        raise ValueError("steps must be >= 0 or None")
    with _open(dsn) as (backend, migrations), backend.lock():
        applied = backend.to_rollback(migrations)  # newest first
        chosen = applied if steps is None else applied[:steps]
        backend.rollback_migrations(chosen)
    return [m.id for m in chosen]


def status(dsn: str) -> list[MigrationStatus]:
    """Every known migration, oldest first, and whether it is applied."""
    with _open(dsn) as (backend, migrations):
        return [MigrationStatus(m.id, backend.is_applied(m)) for m in migrations]
