"""Shared by the Citus tests: a database of their own on every node of the cluster named
by ``CHATSTORE_CITUS_DSN`` (the coordinator's maintenance database).

Citus keeps its metadata per database, so a new database needs, on every node,
``CREATE DATABASE`` and ``CREATE EXTENSION citus``, and on the coordinator the workers
registered again (what ``cluster.sh add_database`` does; tests never call that script:
elsewhere the cluster is a Docker image or a managed service, named only by its DSN).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

CITUS_DSN_ENV = "CHATSTORE_CITUS_DSN"
#: Any query that needs more than one shard raises instead of running.
ONE_SHARD_ONLY = "-c citus.multi_task_query_log_level=error"


@dataclass(frozen=True)
class Cluster:
    """DSNs of one database on the coordinator and on each worker."""

    coordinator: str
    workers: tuple[str, ...]

    @property
    def nodes(self) -> tuple[str, ...]:
        return (self.coordinator, *self.workers)


def maintenance_dsn() -> str | None:
    return os.environ.get(CITUS_DSN_ENV) or None


def one_shard_only(dsn: str) -> str:
    """``dsn`` with every query limited to one shard (a fan-out fails the test)."""
    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f"{options} {ONE_SHARD_ONLY}".strip())


def _node_addresses(dsn: str) -> tuple[tuple[str, int], list[tuple[str, int]]]:
    """The coordinator's and the workers' (host, port), from the coordinator's metadata."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT groupid, nodename, nodeport FROM pg_dist_node"
            " WHERE noderole = 'primary' ORDER BY groupid"
        ).fetchall()
    params = conninfo_to_dict(dsn)
    coordinator = (str(params.get("host") or "localhost"), int(params.get("port") or 5432))
    workers = []
    for group, host, port in rows:
        if group == 0:
            coordinator = (host, port)
        else:
            workers.append((host, port))
    if not workers:
        raise RuntimeError(f"{CITUS_DSN_ENV} names a Citus node without workers: {dsn}")
    return coordinator, workers


def _on_node(dsn: str, host: str, port: int, dbname: str) -> str:
    return make_conninfo(dsn, host=host, port=str(port), dbname=dbname)


@contextmanager
def citus_database(dsn: str, dbname: str) -> Iterator[Cluster]:
    """A new database ``dbname`` with Citus on the coordinator of ``dsn`` and on every
    worker, the workers registered; dropped on every node afterwards."""
    (chost, cport), workers = _node_addresses(dsn)
    maintenance = str(conninfo_to_dict(dsn).get("dbname") or "postgres")
    nodes = [(chost, cport), *workers]
    cluster = Cluster(
        coordinator=_on_node(dsn, chost, cport, dbname),
        workers=tuple(_on_node(dsn, h, p, dbname) for h, p in workers),
    )
    try:
        for host, port in nodes:
            _drop(_on_node(dsn, host, port, maintenance), dbname)
            with psycopg.connect(_on_node(dsn, host, port, maintenance), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            with psycopg.connect(_on_node(dsn, host, port, dbname), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(cluster.coordinator, autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host(%s, %s)", (chost, cport))
            for host, port in workers:
                conn.execute("SELECT citus_add_node(%s, %s)", (host, port))
        yield cluster
    finally:
        for host, port in nodes:  # the coordinator first: it holds connections to workers
            _drop(_on_node(dsn, host, port, maintenance), dbname)


def _drop(maintenance: str, dbname: str) -> None:
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
