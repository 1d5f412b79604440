"""Shared by the reliability and security tests: a LOGIN role in ``chatstore_app``,
a private PostgreSQL server that a test may stop and start, and small helpers.

Roles belong to the whole server, which other test runs may share: every role made
here has a unique name (pid and random suffix) and is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chatstore import devserver, rls


@contextmanager
def app_login(owner_dsn: str, *, in_app: bool = True) -> Iterator[str]:
    """The DSN of ``owner_dsn``'s database for a new LOGIN role that is a member of
    ``chatstore_app`` (what a service connects as), or with ``in_app=False`` of no role
    (no privilege on chatstore's tables); the role is dropped afterwards."""
    name = f"chatstore_svc_{os.getpid()}_{secrets.token_hex(4)}"
    password = secrets.token_hex(16)
    create = sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
        sql.Identifier(name), sql.Literal(password)
    )
    if in_app:
        create += sql.SQL(" IN ROLE {}").format(sql.Identifier(rls.APP_ROLE))
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield make_conninfo(owner_dsn, user=name, password=password)
    finally:
        with psycopg.connect(owner_dsn, autocommit=True) as conn:
            # Its sessions first: DROP ROLE fails while one is connected.
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


class PrivateServer:
    """A PostgreSQL 16 of this test alone (pgserver), on a unix socket in a temporary
    folder, that the test may stop and start again. Never the shared server."""

    def __init__(self) -> None:
        self.datadir = tempfile.mkdtemp(prefix="chatstore-private-pg-")
        pgserver = devserver.import_pgserver()
        self._server: Any = pgserver.get_server(self.datadir, cleanup_mode="stop")
        self.dsn: str = str(self._server.get_uri())

    def stop(self) -> None:
        """A fast shutdown: open sessions are terminated, new ones refused."""
        pg_ctl = devserver.import_pgserver()._commands.pg_ctl
        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user
        )

    def start(self) -> None:
        """Start it again, on the same socket."""
        with self._server._lock:
            self._server.ensure_postgres_running()

    def close(self) -> None:
        self._server.cleanup()
        shutil.rmtree(self.datadir, ignore_errors=True)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` every 10 ms until it holds; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


def backend_waiting_on(dsn: str, needle: str) -> int | None:
    """The pid of a backend of ``dsn``'s database whose current query contains
    ``needle`` and that waits on a lock, else None."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            "   AND wait_event_type = 'Lock' AND strpos(query, %s) > 0",
            (needle,),
        ).fetchone()
    return None if row is None else int(row[0])


def terminate(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


class Blocker:
    """Holds a transaction-level advisory lock on its own connection until released,
    so that a statement taking the same lock waits at a known point."""

    def __init__(self, dsn: str, key: int) -> None:
        self.conn = psycopg.connect(dsn)
        self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if not self.conn.closed:
                self.conn.rollback()
                self.conn.close()
