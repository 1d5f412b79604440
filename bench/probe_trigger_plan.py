"""Probe: a session's first INSERT fixes the trigger's plan for the session.

Written for the statement trigger ``messages_bump_conversation`` (bench/ANALYSIS.md);
since migration 0006 the PL/pgSQL trigger that updates the conversation is the row
trigger ``messages_number``, whose UPDATE is cached the same way.

``python -m bench.probe_trigger_plan`` builds a 100k-message database of its own
(``chatstore_probe``), then times 300 single-message appends on two fresh sessions:
one whose first INSERT was a single message, one whose first INSERT added 50.
"""

from __future__ import annotations

import os
import statistics
import time

import psycopg

from bench import replenish
from bench.contenders.base import USER_TEXT
from bench.contenders.floor import APPEND_ONE
from bench.fixtures import WRITER_USER
from bench.loader import Loader
from bench.schema import create_all
from bench.server import recreate_database, server_dsn

PROBE_DATABASE = "chatstore_probe"


def main() -> None:
    os.sched_setaffinity(0, {0})
    with server_dsn() as admin:
        dsn = recreate_database(admin, PROBE_DATABASE)
        create_all(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            loader = Loader(conn)
            loader.load_special()
            loader.grow_to(100_000)
            target = replenish.chatstore_conversation(conn, WRITER_USER, 50)
        for first_insert in (1, 50):
            with psycopg.connect(dsn, autocommit=True) as conn:
                os.sched_setaffinity(conn.info.backend_pid, {0})
                if first_insert > 1:
                    replenish.chatstore_conversation(conn, WRITER_USER, first_insert)
                times = []
                for _ in range(300):
                    start = time.perf_counter_ns()
                    conn.execute(
                        APPEND_ONE, (target, WRITER_USER, "user", USER_TEXT), prepare=True
                    ).fetchall()
                    times.append(time.perf_counter_ns() - start)
            print(
                f"session's first INSERT added {first_insert:2d} message(s): single append "
                f"median {statistics.median(times) / 1e6:.3f} ms"
            )
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {PROBE_DATABASE}")


if __name__ == "__main__":
    main()
