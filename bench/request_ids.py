"""The cost of a retry-safe append (issue 11 item 1): append_message and append_messages
with and without ``request_id``, interleaved, on one autocommit connection.

    .venv/bin/python -m bench.request_ids [--calls 3000] [--batch 10]

Runs in a scratch database ``chatstore_request_ids_bench`` on CHATSTORE_DSN's server
(else the embedded one), migrated, dropped at the end. Each round calls every variant
once, in an order rotated each round, each on a conversation of its own (so every
conversation grows alike):

- ``plain``: no key (one INSERT, as before 0013);
- ``keyed``: a new key each call (chatstore_append_messages: lock, look up, insert);
- ``retry``: a key already stored (lock, look up, read back; writes nothing);
- the same three for a batch of ``--batch`` messages.

Prints the median and the 95th percentile of each, in microseconds, and the keyed
variants' difference to the plain one. ``--server-side`` times the same statements
inside the server instead (a procedure that commits after each, synchronous_commit off):
the statements' own cost, without the client, the network and the commit's flush.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import psycopg

from chatstore import devserver, migrations, queries
from chatstore.models import Role

DBNAME = "chatstore_request_ids_bench"
TEXT = "add milk to the shopping list, please"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls of each variant")
    parser.add_argument("--batch", type=int, default=10, help="messages in a batch")
    parser.add_argument(
        "--no-fsync-wait",
        action="store_true",
        help="synchronous_commit = off for the session: the statements' cost without the"
        " commit's flush, which dominates on a shared disk",
    )
    parser.add_argument(
        "--server-side", action="store_true", help="time the statements inside the server"
    )
    args = parser.parse_args()
    server = devserver.server_dsn()
    with devserver.scratch_database(server, DBNAME) as dsn:
        migrations.apply(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            if args.no_fsync_wait or args.server_side:
                conn.execute("SET synchronous_commit = off")
            if args.server_side:
                server_side(conn, args.calls, args.batch)
            else:
                run(conn, args.calls, args.batch)


def run(conn: psycopg.Connection, calls: int, batch: int) -> None:
    queries.create_user(conn, id="bench", email="bench@example.com")
    names = ["plain", "keyed", "retry", "batch plain", "batch keyed", "batch retry"]
    conversation = {n: queries.create_conversation(conn, user_id="bench").id for n in names}
    pairs: list[tuple[Role, str]] = [
        ("user" if i % 2 == 0 else "assistant", f"message {i} " * 8) for i in range(batch)
    ]
    # The keys every retry finds.
    queries.append_message(
        conn,
        user_id="bench",
        conversation_id=conversation["retry"],
        role="user",
        content=TEXT,
        request_id="stored",
    )
    queries.append_messages(
        conn,
        user_id="bench",
        conversation_id=conversation["batch retry"],
        messages=pairs,
        request_id="stored",
    )
    counter = iter(range(10**9))

    def one(name: str, key: Callable[[], str | None]) -> Callable[[], object]:
        return lambda: queries.append_message(
            conn,
            user_id="bench",
            conversation_id=conversation[name],
            role="user",
            content=TEXT,
            request_id=key(),
        )

    def many(name: str, key: Callable[[], str | None]) -> Callable[[], object]:
        return lambda: queries.append_messages(
            conn,
            user_id="bench",
            conversation_id=conversation[name],
            messages=pairs,
            request_id=key(),
        )

    def new_key() -> str:
        return f"req-{next(counter)}"

    calls_of: dict[str, Callable[[], object]] = {
        "plain": one("plain", lambda: None),
        "keyed": one("keyed", new_key),
        "retry": one("retry", lambda: "stored"),
        "batch plain": many("batch plain", lambda: None),
        "batch keyed": many("batch keyed", new_key),
        "batch retry": many("batch retry", lambda: "stored"),
    }
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(50):  # plans prepared, caches warm
        for name in names:
            calls_of[name]()
    for round_ in range(calls):
        start = round_ % len(names)
        for name in names[start:] + names[:start]:
            began = time.perf_counter_ns()
            calls_of[name]()
            times[name].append((time.perf_counter_ns() - began) / 1000)
    print(f"{calls} calls of each, interleaved; batch = {batch} messages; microseconds")
    print(f"{'variant':<12} {'median':>8} {'p95':>8} {'vs plain':>9}")
    for name in names:
        median = statistics.median(times[name])
        p95 = statistics.quantiles(times[name], n=20)[-1]
        base = statistics.median(times["batch plain" if name.startswith("batch") else "plain"])
        print(f"{name:<12} {median:8.0f} {p95:8.0f} {median / base:8.2f}x")


# Each variant as the API sends it, timed around the statement; a COMMIT after each, so
# that no transaction piles row versions of the conversation up (one transaction that
# updates a row n times makes each update walk the versions before it).
_PROCEDURE = """
CREATE PROCEDURE bench_request_ids(calls int, batch int) LANGUAGE plpgsql AS $$
DECLARE
    began timestamptz;
    roles text[] := array_fill('user'::text, ARRAY[batch]);
    contents text[] := ARRAY(SELECT 'message ' || i || repeat(' lorem', 8)
                             FROM generate_series(1, batch) AS i);
BEGIN
    FOR round IN 1..calls LOOP
        FOR variant IN 1..6 LOOP
            began := clock_timestamp();
            CASE variant
            WHEN 1 THEN
                INSERT INTO messages (user_id, conversation_id, role, content)
                VALUES ('bench', 1, 'user', 'add milk to the shopping list, please');
            WHEN 2 THEN
                PERFORM FROM chatstore_append_messages('bench', 2, 'req-' || round,
                    ARRAY['user'], ARRAY['add milk to the shopping list, please']);
            WHEN 3 THEN
                PERFORM FROM chatstore_append_messages('bench', 3, 'stored',
                    ARRAY['user'], ARRAY['add milk to the shopping list, please']);
            WHEN 4 THEN
                INSERT INTO messages (user_id, conversation_id, role, content)
                SELECT 'bench', 4, m.role, m.content
                FROM unnest(roles, contents) WITH ORDINALITY AS m (role, content, ord)
                ORDER BY m.ord;
            WHEN 5 THEN
                PERFORM FROM chatstore_append_messages('bench', 5, 'req-' || round,
                    roles, contents);
            ELSE
                PERFORM FROM chatstore_append_messages('bench', 6, 'stored', roles, contents);
            END CASE;
            INSERT INTO bench_times VALUES (variant,
                extract(epoch FROM clock_timestamp() - began) * 1e6);
            COMMIT;
        END LOOP;
    END LOOP;
END
$$
"""


def server_side(conn: psycopg.Connection, calls: int, batch: int) -> None:
    queries.create_user(conn, id="bench", email="bench@example.com")
    for _ in range(6):
        queries.create_conversation(conn, user_id="bench")
    pairs: list[tuple[Role, str]] = [("user", f"message {i} lorem") for i in range(batch)]
    queries.append_message(
        conn, user_id="bench", conversation_id=3, role="user", content=TEXT, request_id="stored"
    )
    queries.append_messages(
        conn, user_id="bench", conversation_id=6, messages=pairs, request_id="stored"
    )
    conn.execute("CREATE TABLE bench_times (variant int, us float8)")
    conn.execute(_PROCEDURE)
    conn.execute("CALL bench_request_ids(50, %s)", [batch])  # warm-up
    conn.execute("TRUNCATE bench_times")
    conn.execute("CALL bench_request_ids(%s, %s)", [calls, batch])
    rows = conn.execute(
        "SELECT variant, percentile_cont(0.5) WITHIN GROUP (ORDER BY us),"
        " percentile_cont(0.95) WITHIN GROUP (ORDER BY us) FROM bench_times"
        " GROUP BY variant ORDER BY variant"
    ).fetchall()
    names = ["plain", "keyed", "retry", "batch plain", "batch keyed", "batch retry"]
    print(f"server-side, {calls} calls of each, interleaved; batch = {batch}; microseconds")
    print(f"{'variant':<12} {'median':>8} {'p95':>8} {'vs plain':>9}")
    medians = {names[v - 1]: median for v, median, _ in rows}
    for variant, median, p95 in rows:
        name = names[variant - 1]
        base = medians["batch plain" if name.startswith("batch") else "plain"]
        print(f"{name:<12} {median:8.1f} {p95:8.1f} {median / base:8.2f}x")


if __name__ == "__main__":
    main()
