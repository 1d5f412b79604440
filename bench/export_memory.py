"""Peak memory of exporting one user, at 10k and at 100k messages: flat, not growing.

    python -m bench.export_memory                  # 10k and 100k messages
    python -m bench.export_memory --sizes 10000 100000 1000000

For each size, one user gets size/1,000 conversations of 1,000 messages (120-1,070
characters, about 600 on average), half as many agent items (a tool call or a 1 KB tool
output each) and 100 tasks, beside a second user with the same rows. Then, each in a
fresh process:

- ``cli``: ``chatstore export --user ID > /dev/null``, its peak resident set
  (``ru_maxrss`` from ``wait4``), beside a process that imports and connects the same
  way and exports nothing (``baseline``): the difference is what the export holds;
- ``traced``: ``export_user_sync`` + ``json_line`` under ``tracemalloc``: the peak of
  Python allocations during the export;
- ``whole``: for contrast, the same messages read with a plain cursor (``fetchall``, dict
  rows), as an export without a server-side cursor would: its tracemalloc peak.

``CHATSTORE_DSN`` names a server (else the embedded one); the database
``chatstore_bench_export`` is dropped and recreated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import psycopg
from psycopg.rows import dict_row

from bench.server import recreate_database, server_dsn

DATABASE = "chatstore_bench_export"
USER = "exporter"
PER_CONVERSATION = 1_000

# Triggers off (session_replication_role = replica) for the load only: the rows are
# consistent by construction (seq and the conversations' counters are written here).
LOAD = """
SET session_replication_role = replica;
INSERT INTO users (id, email) VALUES (%(user)s, %(user)s || '@example.com');
INSERT INTO tasks (user_id, title, description)
SELECT %(user)s, 'task ' || t, repeat('detail ', t %% 20) FROM generate_series(1, 100) AS t;
INSERT INTO conversations (user_id, title, message_count, last_message_at,
                           agent_item_count, agent_item_top)
SELECT %(user)s, 'conversation ' || c, %(per)s, now(), %(per)s / 2, %(per)s / 2
FROM generate_series(1, %(conversations)s) AS c;
INSERT INTO messages (user_id, conversation_id, seq, role, content)
SELECT %(user)s, c.id, m, CASE WHEN m %% 2 = 1 THEN 'user' ELSE 'assistant' END,
       'message ' || m || ' ' || repeat('lorem ipsum ', 10 + m %% 80)
FROM conversations AS c, generate_series(1, %(per)s) AS m
WHERE c.user_id = %(user)s;
INSERT INTO agent_items (user_id, conversation_id, slot, seq, item)
SELECT %(user)s, c.id, i, i,
       CASE WHEN i %% 2 = 1
            THEN json_build_object('type', 'function_call', 'call_id', 'call_' || i,
                                   'name', 'add_task', 'arguments', '{"title":"milk"}')
            ELSE json_build_object('type', 'function_call_output', 'call_id', 'call_' || i,
                                   'output', repeat('x', 1000))
       END
FROM conversations AS c, generate_series(1, %(per)s / 2) AS i
WHERE c.user_id = %(user)s;
RESET session_replication_role;
"""


def load(dsn: str, messages: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE users, tasks, conversations, messages, agent_items")
        for user in (USER, "neighbour"):
            params = {
                "user": user,
                "per": PER_CONVERSATION,
                "conversations": max(1, messages // PER_CONVERSATION),
            }
            for statement in LOAD.split(";\n")[:-1]:
                conn.execute(statement, params)
        conn.execute("VACUUM ANALYZE")


def _maxrss_mib(args: list[str]) -> tuple[float, float]:
    """Peak resident set (MiB) and seconds of one process, stdout to /dev/null."""
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        process = subprocess.Popen(args, stdout=sink)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{args} exited {process.returncode}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def child(mode: str, dsn: str) -> None:
    """One measurement in this (fresh) process; prints JSON."""
    from chatstore.export import export_user_sync, json_line

    with psycopg.connect(dsn, autocommit=True) as conn:
        if mode == "baseline":
            return
        tracemalloc.start()
        started = time.perf_counter()
        if mode == "traced":
            size = 0  # a running total: the loop itself holds nothing
            for record in export_user_sync(conn, user_id=USER):
                size += len(json_line(record))
            records = sum(record["counts"].values()) + 2  # the last record; header and end
        else:  # whole
            with conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(
                    "SELECT id, conversation_id, user_id, seq, role, content, created_at"
                    " FROM messages WHERE user_id = %s ORDER BY conversation_id, seq",
                    [USER],
                ).fetchall()
            size, records = sum(len(r["content"]) for r in rows), len(rows)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"peak_mib": peak / 2**20, "records": records, "bytes": size, "s": seconds}))


def _child(mode: str, dsn: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.export_memory", "--child", mode, dsn],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(dsn: str, messages: int) -> dict[str, Any]:
    load(dsn, messages)
    cli = [sys.executable, "-m", "chatstore.cli", "export", "--user", USER, "--dsn", dsn]
    baseline = [sys.executable, "-m", "bench.export_memory", "--child", "baseline", dsn]
    base_rss, _ = _maxrss_mib(baseline)
    cli_rss, cli_seconds = _maxrss_mib(cli)
    traced = _child("traced", dsn)
    whole = _child("whole", dsn)
    return {
        "messages": messages,
        "records": traced["records"],
        "json_mib": traced["bytes"] / 2**20,
        "baseline_rss_mib": base_rss,
        "cli_rss_mib": cli_rss,
        "cli_seconds": cli_seconds,
        "traced_peak_mib": traced["peak_mib"],
        "whole_messages_peak_mib": whole["peak_mib"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DSN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with server_dsn() as admin:
        dsn = recreate_database(admin, DATABASE)
        from chatstore import migrations

        migrations.apply(dsn)
        print(
            f"{'messages':>9} {'records':>8} {'JSON MiB':>9} {'baseline RSS':>13}"
            f" {'export RSS':>11} {'seconds':>8} {'traced peak':>12} {'fetchall peak':>14}"
        )
        for size in args.sizes:
            r = measure(dsn, size)
            print(
                f"{r['messages']:>9,} {r['records']:>8,} {r['json_mib']:>9.1f}"
                f" {r['baseline_rss_mib']:>10.1f} MiB {r['cli_rss_mib']:>7.1f} MiB"
                f" {r['cli_seconds']:>8.2f} {r['traced_peak_mib']:>8.2f} MiB"
                f" {r['whole_messages_peak_mib']:>10.1f} MiB",
                flush=True,
            )


if __name__ == "__main__":
    main()
