"""Probe: what building chatstore's records costs, and what would make it cheaper.

``python -m bench.probe_records`` on a loaded ``chatstore_bench`` database. For the
last 50 and for a whole 1,000-message conversation, same connection, interleaved:

- ``tuples``: chatstore's SQL, tuple rows, no records (the SQL's own cost);
- ``dict_row + TypeAdapter``: what chatstore did before commit 0e75f3d;
- ``dict_row + _core.build``: what chatstore does now (records set without validation);
- ``tuples + zip + TypeAdapter``: tuple rows, dicts built by ``zip``, one pass;
- ``json_agg + validate_json``: the server sends one JSON array; pydantic-core parses
  and validates it without Python dicts.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import TypeAdapter

from bench.fixtures import SPECIAL_USER, find_fixtures
from bench.server import BENCH_DATABASE, server_dsn, with_database

COLUMNS = ("id", "conversation_id", "user_id", "seq", "role", "content", "created_at")

JSON_AGG = """
SELECT coalesce(json_agg(m ORDER BY m.seq), '[]')::text
FROM conversations AS c
JOIN LATERAL (
    SELECT id, conversation_id, user_id, seq, role, content, created_at
    FROM messages
    WHERE user_id = %(user_id)s AND conversation_id = %(conversation_id)s
    ORDER BY seq DESC
    LIMIT %(limit)s::bigint
) AS m ON true
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
"""


def main() -> None:
    from chatstore import _core
    from chatstore._sql import QUERIES
    from chatstore.models import Message

    adapter = TypeAdapter(list[Message])
    os.sched_setaffinity(0, {0})
    with (
        server_dsn() as admin,
        psycopg.connect(with_database(admin, BENCH_DATABASE), autocommit=True) as conn,
    ):
        os.sched_setaffinity(conn.info.backend_pid, {0})
        fx = find_fixtures(conn)
        sql = QUERIES["get_messages"]

        def params(cid: int, limit: int | None) -> dict[str, Any]:
            return {
                "user_id": SPECIAL_USER,
                "conversation_id": cid,
                "limit": limit,
                "before": None,
                "after": None,
            }

        def variants(cid: int, limit: int | None) -> dict[str, Callable[[], object]]:
            p = params(cid, limit)

            def tuples() -> object:
                return conn.execute(sql, p, prepare=True).fetchall()

            def dict_rows() -> object:
                with conn.cursor(row_factory=dict_row) as cur:
                    return adapter.validate_python(cur.execute(sql, p, prepare=True).fetchall())

            def unvalidated() -> object:
                with conn.cursor(row_factory=dict_row) as cur:
                    return _core.build(Message, cur.execute(sql, p, prepare=True).fetchall())

            def zipped() -> object:
                rows = conn.execute(sql, p, prepare=True).fetchall()
                return adapter.validate_python([dict(zip(COLUMNS, r, strict=True)) for r in rows])

            def json_agg() -> object:
                row = conn.execute(JSON_AGG, p, prepare=True).fetchone()
                assert row is not None
                return adapter.validate_json(row[0])

            return {
                "tuples (SQL only)": tuples,
                "dict_row + TypeAdapter (before)": dict_rows,
                "dict_row + _core.build (now)": unvalidated,
                "tuples + zip + TypeAdapter": zipped,
                "json_agg + validate_json": json_agg,
            }

        for label, cid, limit in (("last 50", fx.conv_50, 50), ("whole 1,000", fx.conv_1000, None)):
            runs = variants(cid, limit)
            times: dict[str, list[int]] = {k: [] for k in runs}
            for _ in range(30):
                for name, fn in runs.items():
                    for _ in range(10 if limit else 2):
                        start = time.perf_counter_ns()
                        fn()
                        times[name].append(time.perf_counter_ns() - start)
            base = statistics.median(times["tuples (SQL only)"])
            print(f"{label}:")
            for name, values in times.items():
                med = statistics.median(values)
                print(f"  {name:34s} {med / 1e6:7.3f} ms  {med / base:5.2f}x")


if __name__ == "__main__":
    main()
