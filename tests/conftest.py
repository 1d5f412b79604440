"""Test harness: every test talks to a real PostgreSQL.

The server is the one named by ``CHATSTORE_DSN``, else an embedded PostgreSQL 16
(``pgserver``) started for this run. The migrations are applied once, to a template
database; each test that asks for ``conn`` gets a fresh clone of it
(``CREATE DATABASE ... TEMPLATE``, pytest-postgresql's janitor), so tests never see
each other's rows. Database names carry the pid, so runs sharing a server do not
collide.

The Citus tests (marker ``citus``) run on the cluster named by ``CHATSTORE_CITUS_DSN``:
one database of their own on every node, migrated and distributed once, its tables
emptied before each test. Without the variable they are skipped, with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from chatstore import citus, devserver, migrations
from tests.citus_support import CITUS_DSN_ENV, Cluster, citus_database, maintenance_dsn


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """DSN of the server under test, connected to its maintenance database."""
    return devserver.server_dsn()


def _migrate(
    *, host: str, port: str | int, user: str, dbname: str, password: str | None, **_: object
) -> None:
    migrations.apply(
        make_conninfo(host=host, port=str(port), user=user, dbname=dbname, password=password)
    )


@pytest.fixture(scope="session")
def postgresql_proc(server_dsn: str) -> Iterator[NoopExecutor]:
    """The server, with a template database migrated once for the whole run."""
    params = conninfo_to_dict(server_dsn)
    server = NoopExecutor(
        host=str(params.get("host") or "localhost"),
        port=str(params.get("port") or 5432),
        user=str(params.get("user") or "postgres"),
        password=params.get("password") or None,  # type: ignore[arg-type]
        options="",
        dbname=f"chatstore_test_{os.getpid()}",
        maintenance_dbname=str(params.get("dbname") or "postgres"),
    )
    template = DatabaseJanitor(
        user=server.user,
        host=server.host,
        port=server.port,
        password=server.password,
        dbname=server.template_dbname,
        maintenance_dbname=server.maintenance_dbname,
        as_template=True,
    )
    template.drop()
    with template:
        template.load(_migrate)
        yield server


postgresql = factories.postgresql("postgresql_proc")


@pytest.fixture
def conn(postgresql: psycopg.Connection) -> psycopg.Connection:
    """Autocommit connection to this test's own clone of the migrated database."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def db_dsn(postgresql_proc: NoopExecutor, postgresql: psycopg.Connection) -> str:
    """DSN of this test's cloned database, for tests that open more connections."""
    return make_conninfo(
        host=postgresql_proc.host,
        port=str(postgresql_proc.port),
        user=postgresql_proc.user,
        password=postgresql_proc.password,
        dbname=postgresql_proc.dbname,
    )


@pytest.fixture
def empty_db(server_dsn: str) -> Iterator[str]:
    """DSN of a new, empty database (no migrations), dropped after the test."""
    with devserver.scratch_database(server_dsn, f"chatstore_empty_{uuid.uuid4().hex[:12]}") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[Cluster]:
    """A chatstore database on every node of the Citus cluster, migrated and distributed
    for the whole run, dropped on every node at the end; skips without a cluster."""
    dsn = maintenance_dsn()
    if dsn is None:
        pytest.skip(
            f"no Citus cluster: set {CITUS_DSN_ENV} to a coordinator's maintenance database"
            " (.ci/run starts one with ../shared/citus/cluster.sh)"
        )
    with citus_database(dsn, f"chatstore_citus_{os.getpid()}") as cluster:
        migrations.apply(cluster.coordinator)
        citus.distribute(cluster.coordinator)
        yield cluster


@pytest.fixture
def citus_db(citus_cluster: Cluster) -> Cluster:
    """The cluster's chatstore database with its tables emptied for this test."""
    with psycopg.connect(citus_cluster.coordinator, autocommit=True) as conn:
        conn.execute("TRUNCATE users, tasks, conversations, messages, agent_items")
    return citus_cluster
