"""Which PostgreSQL server the tests, the demo and the benchmarks use.

``CHATSTORE_DSN`` (a libpq connection string or URL) names a server. Without it, an
embedded throwaway PostgreSQL 16 starts from the ``pgserver`` package (the
``embedded`` extra): nothing needs to be installed on the machine.
Callers create their own databases on that server; the named database is only used
to connect.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DSN_ENV = "CHATSTORE_DSN"


def server_dsn() -> str:
    """The DSN of ``CHATSTORE_DSN``, else of an embedded server stopped at exit."""
    return os.environ.get(DSN_ENV) or start_embedded()


def start_embedded() -> str:
    """Start a throwaway PostgreSQL in a temporary folder; it is deleted at exit."""
    datadir = tempfile.mkdtemp(prefix="chatstore-pg-")
    # Registered first, so it runs last (atexit is last in, first out): after pgserver's
    # own exit hook has stopped the server, which reads its bookkeeping in that folder.
    atexit.register(shutil.rmtree, datadir, ignore_errors=True)
    server = import_pgserver().get_server(datadir, cleanup_mode="stop")
    return str(server.get_uri())


def import_pgserver() -> ModuleType:
    """The optional ``pgserver`` module (the "embedded" extra)."""
    with warnings.catch_warnings():
        # Its platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers).
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def database_dsn(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


@contextmanager
def scratch_database(dsn: str, dbname: str) -> Iterator[str]:
    """Create ``dbname`` (dropping a leftover of the same name) and drop it afterwards."""
    create_database(dsn, dbname)
    try:
        yield database_dsn(dsn, dbname)
    finally:
        drop_database(dsn, dbname)


def create_database(dsn: str, dbname: str, *, template: str | None = None) -> str:
    drop_database(dsn, dbname)
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
    if template:
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(query)
    return database_dsn(dsn, dbname)


def drop_database(dsn: str, dbname: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
