"""The retention job's throughput, and what appends see while it runs.

    python -m bench.purge                          # 20k old conversations, 200k messages
    python -m bench.purge --conversations 50000 --writers 8
    python -m bench.purge --citus                  # on the CHATSTORE_CITUS_DSN cluster

``--conversations`` conversations (of 500 users) idle for 100 days, each with 10
messages and 2 agent items, beside 1,000 recent ones. Writers (threads, one autocommit
connection each) append one message at a time, half to recent conversations and half to
old ones, before the purge (a baseline) and while ``purge_conversations(older_than=90
days)`` runs. Printed: the purge's throughput (conversations and messages a second, its
batches), and each writer's append latency, lock waits included, p50/p99/max, for
recent and for old conversations, baseline and during.

Then, on PostgreSQL, what ``conversations_last_activity_idx`` costs an append: single
appends in interleaved blocks with the index dropped and built again, medians.

``CHATSTORE_DSN`` names a server (else the embedded one); the database
``chatstore_bench_purge`` is dropped and recreated (with ``--citus``, a database of
that name on every node of the cluster).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg

from bench.server import recreate_database, server_dsn
from chatstore import citus, migrations, queries, retention
from chatstore.errors import NotFound

DATABASE = "chatstore_bench_purge"
USERS = 500
RECENT = 1_000
MESSAGES = 10
ITEMS = 2

# The messages go through messages_number (which numbers them and sets the
# conversations' counters and last_message_at from their created_at) on PostgreSQL and
# on Citus alike; then updated_at is set back to the last message's time.
LOAD = """
INSERT INTO users (id, email) SELECT 'u' || u, 'u' || u || '@example.com'
FROM generate_series(1, %(users)s) AS u;
INSERT INTO conversations (user_id, title, created_at, updated_at, agent_item_count,
                           agent_item_top)
SELECT 'u' || (1 + c %% %(users)s), 'c' || c, at, at, %(items)s, %(items)s
FROM generate_series(1, %(old)s + %(recent)s) AS c,
     LATERAL (SELECT CASE WHEN c <= %(old)s THEN now() - interval '100 days'
                                                 - c * interval '1 second'
                          ELSE now() END) AS t (at);
INSERT INTO messages (user_id, conversation_id, role, content, created_at)
SELECT c.user_id, c.id, CASE WHEN m %% 2 = 1 THEN 'user' ELSE 'assistant' END,
       'message ' || m || ' ' || repeat('lorem ipsum ', 10 + m * 7), c.created_at
FROM conversations AS c, generate_series(1, %(messages)s) AS m;
UPDATE conversations SET updated_at = last_message_at;
INSERT INTO agent_items (user_id, conversation_id, slot, seq, item, created_at)
SELECT c.user_id, c.id, i, i, '{"type":"function_call","arguments":"{}"}', c.created_at
FROM conversations AS c, generate_series(1, %(items)s) AS i;
ANALYZE users, conversations, messages, agent_items;
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=retention.DEFAULT_BATCH_SIZE)
    parser.add_argument("--citus", action="store_true", help="on CHATSTORE_CITUS_DSN")
    args = parser.parse_args()
    with _database(args.citus) as dsn:
        migrations.apply(dsn)
        if args.citus:
            citus.distribute(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            sizes = {
                "users": USERS,
                "old": args.conversations,
                "recent": RECENT,
                "messages": MESSAGES,
                "items": ITEMS,
            }
            for statement in LOAD.strip().rstrip(";").split(";\n"):
                conn.execute(statement, sizes if "%(" in statement else None)
            targets = conn.execute(
                "SELECT user_id, id, updated_at < now() - interval '90 days' FROM conversations"
            ).fetchall()
        print(
            f"-- {'Citus' if args.citus else 'PostgreSQL'}: {args.conversations} old conversations"
            f" ({args.conversations * MESSAGES} messages), {RECENT} recent, {args.writers} writers"
        )
        _purge_under_appends(dsn, targets, args.writers, args.batch_size)
        if not args.citus:
            _index_cost(dsn, targets)


@contextlib.contextmanager
def _database(on_citus: bool) -> Iterator[str]:
    if not on_citus:
        with server_dsn() as admin:
            yield recreate_database(admin, DATABASE)
        return
    from tests.citus_support import citus_database, maintenance_dsn

    maintenance = maintenance_dsn()
    if maintenance is None:
        raise SystemExit("--citus needs CHATSTORE_CITUS_DSN")
    with citus_database(maintenance, DATABASE) as cluster:
        yield cluster.coordinator


def _purge_under_appends(
    dsn: str, targets: list[tuple[str, int, bool]], writers: int, batch_size: int
) -> None:
    phase = {"name": "baseline"}
    stop = threading.Event()
    lock = threading.Lock()
    latencies: dict[tuple[str, str], list[float]] = {}
    gone = [0]

    def write(seed: int) -> None:
        rng = random.Random(seed)
        old = [t for t in targets if t[2]]
        recent = [t for t in targets if not t[2]]
        with psycopg.connect(dsn, autocommit=True) as conn:
            while not stop.is_set():
                kind = "old" if rng.random() < 0.5 else "recent"
                user_id, conversation_id, _ = rng.choice(old if kind == "old" else recent)
                started = time.perf_counter()
                try:
                    queries.append_message(
                        conn,
                        user_id=user_id,
                        conversation_id=conversation_id,
                        role="user",
                        content="still here?",
                    )
                except NotFound:
                    with lock:
                        gone[0] += 1
                    continue
                took = time.perf_counter() - started
                with lock:
                    latencies.setdefault((phase["name"], kind), []).append(took)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        phase["name"] = "during purge"
        report = retention.purge_conversations(
            dsn, older_than=timedelta(days=90), batch_size=batch_size
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    print(
        f"purge: {report.conversations} conversations, {report.messages} messages,"
        f" {report.agent_items} agent items in {report.batches} batches of {batch_size},"
        f" {report.seconds:.2f} s: {report.conversations / report.seconds:,.0f} conversations/s,"
        f" {report.messages / report.seconds:,.0f} messages/s,"
        f" {report.seconds / max(report.batches, 1) * 1000:.1f} ms a batch"
    )
    print(f"appends refused (NotFound: a purged conversation): {gone[0]}")
    print("append latency, lock waits included (ms):  p50     p99     max     n")
    for (name, kind), times in sorted(latencies.items()):
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"  {name:>12} {kind:>6}:  {statistics.median(times) * 1000:6.2f}"
            f"  {p99 * 1000:6.2f}  {times[-1] * 1000:6.1f}  {len(times):5d}"
        )


def _index_cost(dsn: str, targets: list[tuple[str, int, bool]]) -> None:
    """What conversations_last_activity_idx adds to an append: its WAL (exact, from
    EXPLAIN (ANALYZE, WAL) of one append, the trigger's UPDATE included) and its time
    (medians of interleaved blocks, noisy on a shared machine)."""
    recent = [(u, c) for u, c, old in targets if not old]
    rng = random.Random(7)
    content = "a typical message " * 33  # about 600 characters
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")  # the fsync would drown the difference
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {0})
            os.system(f"taskset -pc 0 {conn.info.backend_pid} > /dev/null 2>&1")

        def wal() -> tuple[float, float]:
            """WAL records and bytes of one append: medians over 30 appends that wrote no
            full-page image (a page split can still make one append larger)."""
            explain = (
                "EXPLAIN (ANALYZE, WAL, FORMAT JSON) INSERT INTO messages"
                " (user_id, conversation_id, role, content) VALUES (%s, %s, 'user', %s)"
            )
            seen: list[tuple[int, int]] = []
            while len(seen) < 30:
                user_id, conversation_id = rng.choice(recent)
                row = conn.execute(explain, (user_id, conversation_id, content)).fetchone()
                assert row is not None
                plan = row[0][0]["Plan"]
                if plan["WAL FPI"] == 0:
                    seen.append((int(plan["WAL Records"]), int(plan["WAL Bytes"])))
            return statistics.median(r for r, _ in seen), statistics.median(b for _, b in seen)

        def block(n: int = 1_000) -> float:
            started = time.perf_counter()
            for _ in range(n):
                user_id, conversation_id = rng.choice(recent)
                queries.append_message(
                    conn, user_id=user_id, conversation_id=conversation_id, role="user", content="x"
                )
            return (time.perf_counter() - started) / n * 1e6

        block()
        with_wal = wal()
        times: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(8):
            for kind in ("without", "with"):
                if kind == "without":
                    conn.execute("DROP INDEX conversations_last_activity_idx")
                else:
                    conn.execute(
                        "CREATE INDEX conversations_last_activity_idx ON conversations"
                        " ((coalesce(last_message_at, updated_at)), user_id, id)"
                    )
                conn.execute("VACUUM conversations")
                times[kind].append(block())
        conn.execute("DROP INDEX conversations_last_activity_idx")
        without_wal = wal()
        conn.execute(
            "CREATE INDEX conversations_last_activity_idx ON conversations"
            " ((coalesce(last_message_at, updated_at)), user_id, id)"
        )
    with_index, without = statistics.median(times["with"]), statistics.median(times["without"])
    print(
        f"one append (600 characters), WAL: {without_wal[0]:.0f} records,"
        f" {without_wal[1]:.0f} bytes without conversations_last_activity_idx;"
        f" {with_wal[0]:.0f} records, {with_wal[1]:.0f} bytes"
        f" with it ({(with_wal[1] / without_wal[1] - 1) * 100:+.1f}%)"
    )
    print(
        f"append time, synchronous_commit off, pinned: {without:.0f} us without the index,"
        f" {with_index:.0f} us with it ({(with_index / without - 1) * 100:+.1f}%, medians of 8"
        " interleaved blocks of 1,000; noise on a shared machine)"
    )


if __name__ == "__main__":
    main()
