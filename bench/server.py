"""Which PostgreSQL server the benchmark talks to, and a fresh database on it.

``CHATSTORE_DSN`` names a server; without it the embedded PostgreSQL 16 from
``pgserver`` is started in a data directory kept between runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

BENCH_DATABASE = "chatstore_bench"
DEFAULT_DATADIR = Path(tempfile.gettempdir()) / "chatstore-bench-pgdata"


@contextmanager
def server_dsn() -> Iterator[str]:
    """Yield a DSN for the maintenance database of the chosen server."""
    named = os.environ.get("CHATSTORE_DSN")
    if named:
        yield named
        return
    import pgserver  # only needed for the embedded server

    datadir = Path(os.environ.get("CHATSTORE_BENCH_DATADIR", DEFAULT_DATADIR))
    server = pgserver.get_server(datadir, cleanup_mode="stop")
    yield server.get_uri()


def with_database(dsn: str, dbname: str, **extra: str) -> str:
    """The same server, another database (and optional extra libpq parameters)."""
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if v is not None}
    params["dbname"] = dbname
    params.update(extra)
    return make_conninfo(**params)


def recreate_database(admin_dsn: str, dbname: str = BENCH_DATABASE) -> str:
    """Drop and create ``dbname``; return its DSN. Never touches other databases."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_database(admin_dsn, dbname)


def is_local(dsn: str) -> bool:
    """True when the server runs on this machine, so its backends can be pinned."""
    host = conninfo_to_dict(dsn).get("host") or ""
    return host == "" or str(host).startswith("/") or host in {"localhost", "127.0.0.1", "::1"}
