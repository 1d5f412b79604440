"""Throughput under 1, 4 and 16 concurrent clients sharing a ``psycopg_pool`` pool.

Each client is a thread with its own conversation; it alternates appending one
message and reading that conversation's last 50, borrowing a pooled connection for
each call, as a web handler would. One process per contender, unpinned (16 backends
cannot share one vCPU fairly), contenders alternated; the median of the repetitions
is reported.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from bench import replenish
from bench.contenders.base import USER_TEXT
from bench.contenders.floor import APPEND_ONE, LAST_N
from bench.fixtures import WRITER_USER

CLIENTS = (1, 4, 16)
KINDS = ("floor", "chatstore")

Call = Callable[[psycopg.Connection[Any], int], object]


def _floor_calls() -> tuple[Call, Call]:
    def append(conn: psycopg.Connection[Any], cid: int) -> object:
        return conn.execute(
            APPEND_ONE, (cid, WRITER_USER, "user", USER_TEXT), prepare=True
        ).fetchone()

    def read(conn: psycopg.Connection[Any], cid: int) -> object:
        rows = conn.execute(LAST_N, (WRITER_USER, cid, 50), prepare=True).fetchall()
        rows.reverse()
        return rows

    return append, read


def _chatstore_calls() -> tuple[Call, Call]:
    from chatstore import queries as q

    def append(conn: psycopg.Connection[Any], cid: int) -> object:
        return q.append_message(
            conn, user_id=WRITER_USER, conversation_id=cid, role="user", content=USER_TEXT
        )

    def read(conn: psycopg.Connection[Any], cid: int) -> object:
        return q.get_messages(conn, user_id=WRITER_USER, conversation_id=cid, limit=50)

    return append, read


def measure(dsn: str, kind: str, clients: int, seconds: float) -> float:
    """Operations per second of ``clients`` threads over ``seconds`` (in a child process)."""
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    append, read = _floor_calls() if kind == "floor" else _chatstore_calls()
    with psycopg.connect(dsn, autocommit=True) as setup:
        cids = [replenish.chatstore_conversation(setup, WRITER_USER, 50) for _ in range(clients)]
    counts = [0] * clients
    state = {"counting": False, "stop": False}

    def client(i: int) -> None:
        cid = cids[i]
        while not state["stop"]:
            with pool.connection() as conn:
                append(conn, cid)
            with pool.connection() as conn:
                read(conn, cid)
            if state["counting"]:
                counts[i] += 2

    with ConnectionPool(
        dsn, min_size=clients, max_size=clients, open=True, kwargs={"autocommit": True}
    ) as pool:
        pool.wait()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(min(0.5, seconds / 4))  # warm-up: prepared statements, caches
        state["counting"] = True
        started = time.perf_counter()
        time.sleep(seconds)
        state["counting"] = False
        elapsed = time.perf_counter() - started
        state["stop"] = True
        for t in threads:
            t.join()
    return sum(counts) / elapsed


def run(
    dsn: str, *, seconds: float = 2.0, repeats: int = 4, log: Callable[[str], None] = print
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    available = list(KINDS)
    try:
        import chatstore.queries  # noqa: F401
    except ImportError as exc:
        available.remove("chatstore")
        log(f"concurrency: chatstore unavailable ({exc})")
    pools = {kind: ctx.Pool(1) for kind in available}
    samples: dict[int, dict[str, list[float]]] = {n: {k: [] for k in available} for n in CLIENTS}
    try:
        for n in CLIENTS:
            for rep in range(repeats):
                order = available if rep % 2 == 0 else available[::-1]
                for kind in order:
                    samples[n][kind].append(pools[kind].apply(measure, (dsn, kind, n, seconds)))
            log(
                f"  concurrency {n:2d} clients: "
                + "  ".join(f"{k}={statistics.median(v):,.0f} ops/s" for k, v in samples[n].items())
            )
    finally:
        for pool in pools.values():
            pool.close()
            pool.join()
    return {
        "method": (
            f"Threads in one process per contender, each with its own conversation, "
            f"alternating append-one and read-last-50 through a psycopg_pool "
            f"ConnectionPool of as many connections as clients; {seconds:g} s per "
            f"measurement after a warm-up, {repeats} repetitions alternated between "
            f"contenders, median reported; unpinned."
        ),
        "clients": {
            str(n): {k: statistics.median(v) for k, v in row.items() if v}
            for n, row in samples.items()
        },
    }
