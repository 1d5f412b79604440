"""What the tenant keys and message numbers cost (issue 9 item 8).

``python -m bench.keys`` builds its own databases, measures, prints Markdown tables and
drops the databases again:

1. **One node, before and after.** On plain PostgreSQL (``--dsn``), one database
   migrated up to ``chatstore_0005_row_level_security`` (the schema before the new keys:
   ``messages_pkey (conversation_id, id)``, ``tasks_pkey (id)``, the AFTER INSERT
   statement trigger) and one fully migrated (``messages_pkey (user_id,
   conversation_id, seq)``, ``tasks_pkey (user_id, id)``, the BEFORE INSERT row trigger
   ``messages_number``). Both receive the same rows through the COPY loader
   (``bench.loader``, same seed: same users, conversations, texts) plus the same tasks.
   Reported: every index's size, the messages table's total size, and the median
   latency of the last 50 of a 1,000-message conversation, a single append and a
   2-message append, each through the named SQL of its own schema (the "before" SQL is
   the previous commit's ``sql/queries/messages.sql``, db33952, embedded below),
   prepared, tuple rows, measured in interleaved blocks (before, after, after, before,
   ...), as before/after ratios of medians.
2. **Citus against one node.** The same rows loaded into a database of the three-node
   Citus cluster (``--citus-dsn``, its coordinator; ``--cluster-dir`` for
   ``cluster.sh add_database``), fully migrated, then distributed by user
   (``chatstore.citus.distribute`` when the tree has it, else the SQL of the brief).
   The tables are distributed empty, then loaded through the coordinator (COPY, the
   loader's triggers disabled on the shards too): distributing loaded tables fires the
   row triggers on every copied row. Then the same calls of ``chatstore.queries``
   (what a service calls) on a connection to the coordinator and on one to the fully
   migrated one-node database, interleaved: last 50, single append, 2-message append,
   get_conversation, list_conversations (first page and page 50).

``--keep`` leaves the databases; ``--reuse --keep`` measures such one-node databases
again without loading (with ``--skip-citus``: one-node figures only). Placement
(``--placement``): ``same-cpu`` pins this process and every backend serving
it (on Citus: the coordinator's and the workers' backends of this database) to CPU 0,
as bench/ does (BENCHMARKING.md); ``unpinned`` leaves them to the scheduler.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from bench import machine, replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT
from bench.contenders.chatstore_sync import new_messages
from bench.fixtures import (
    HEAVY_USER,
    PAGE_NUMBER,
    PAGE_SIZE,
    SPECIAL_USER,
    WRITER_USER,
    find_fixtures,
)
from bench.loader import Loader
from bench.server import with_database

Conn = psycopg.Connection[Any]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DEFAULT_CITUS_DSN = "host=127.0.0.1 port=5433 user=postgres dbname=postgres"
DEFAULT_CLUSTER_DIR = Path("/work/citus/c")
CLUSTER_SH = ROOT.parent / "shared" / "citus" / "cluster.sh"
BEFORE_MIGRATION = "chatstore_0005_row_level_security"
DB_BEFORE = "chatstore_bench_keys_before"
DB_AFTER = "chatstore_bench_keys_after"
DB_CITUS = "chatstore_bench_keys_citus"
TABLES = ("messages", "conversations", "tasks")
TASKS_PER_USER = 15
CPU = 0

# The named SQL of the schema before the new keys: git show db33952:sql/queries/messages.sql
BEFORE_SQL = {
    "append_message": """
INSERT INTO messages (conversation_id, user_id, role, content)
SELECT c.id, c.user_id, %(role)s::text, %(content)s::text
FROM conversations AS c
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
RETURNING id, conversation_id, user_id, role, content, created_at""",
    "append_messages": """
INSERT INTO messages (conversation_id, user_id, role, content)
SELECT c.id, c.user_id, m.role, m.content
FROM conversations AS c
CROSS JOIN unnest(%(roles)s::text[], %(contents)s::text[])
    WITH ORDINALITY AS m (role, content, ord)
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
ORDER BY m.ord
RETURNING id, conversation_id, user_id, role, content, created_at""",
    "get_messages": """
SELECT m.id, m.conversation_id, m.user_id, m.role, m.content, m.created_at
FROM conversations AS c
LEFT JOIN LATERAL (
    SELECT id, conversation_id, user_id, role, content, created_at
    FROM messages
    WHERE conversation_id = c.id
      AND user_id = c.user_id
      AND id < coalesce(%(before_id)s::bigint, 9223372036854775807)
    ORDER BY id DESC
    LIMIT %(limit)s::bigint
) AS m ON true
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
ORDER BY m.id""",
}

# The brief's distribution SQL, used only when chatstore.citus is not in the tree.
FALLBACK_DISTRIBUTE: list[LiteralString] = [
    "SET citus.enable_unsafe_triggers = on",
    "BEGIN",
    "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'",
    "ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_fkey",
    "ALTER TABLE conversations DROP CONSTRAINT conversations_user_id_fkey",
    "ALTER TABLE messages DROP CONSTRAINT messages_conversation_fkey",
    "SELECT create_reference_table('users')",
    "SELECT create_distributed_table('conversations', 'user_id')",
    "SELECT create_distributed_table('tasks', 'user_id', colocate_with => 'conversations')",
    "SELECT create_distributed_table('messages', 'user_id', colocate_with => 'conversations')",
    "ALTER TABLE conversations ADD CONSTRAINT conversations_user_id_fkey"
    " FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE",
    "ALTER TABLE messages ADD CONSTRAINT messages_conversation_fkey FOREIGN KEY"
    " (user_id, conversation_id) REFERENCES conversations(user_id, id) ON DELETE CASCADE",
    "ALTER TABLE tasks ADD CONSTRAINT tasks_user_id_fkey"
    " FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE",
    "COMMIT",
]

INDEX_SIZES = """
SELECT t.relname, i.relname, pg_relation_size(i.oid)
FROM pg_index AS x
JOIN pg_class AS i ON i.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
WHERE t.relnamespace = 'public'::regnamespace AND t.relname = ANY(%s)
ORDER BY t.relname, i.relname
"""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- databases -------------------------------------------------------------------------


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def create_database(admin_dsn: str, name: str) -> str:
    drop_database(admin_dsn, name)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_dsn, name)


def node_dsns(citus_dsn: str) -> list[str]:
    """The coordinator's and the two workers' maintenance DSNs (ports +1, +2)."""
    port = int(conninfo_to_dict(citus_dsn).get("port") or 5432)
    return [with_database(citus_dsn, "postgres", port=str(port + i)) for i in range(3)]


def drop_citus_database(citus_dsn: str, name: str) -> None:
    for dsn in node_dsns(citus_dsn):
        drop_database(dsn, name)


def load(dsn: str, messages: int, *, citus: bool = False) -> dict[str, Any]:
    """The loader's special conversations, ordinary users up to ``messages``, tasks.

    On Citus (``citus``), into the distributed tables through the coordinator: the
    loader's DISABLE TRIGGER reaches the shards, and its DDL and COPY share one
    transaction, which Citus allows only in sequential mode.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        if citus:
            conn.execute("SET citus.multi_shard_modify_mode TO 'sequential'")
        for table in TABLES:
            conn.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                    sql.Identifier(table)
                )
            )
        loader = Loader(conn, peers=False)
        started = time.perf_counter()
        fixtures = loader.load_special()
        loader.grow_to(messages)
        # The same tasks in every database: TASKS_PER_USER per user, a third completed.
        conn.execute(
            "INSERT INTO tasks (user_id, title, completed)"
            " SELECT u.id, 'Task ' || g, g %% 3 = 0"
            " FROM users AS u CROSS JOIN generate_series(1, %s) AS g ORDER BY u.id, g",
            (TASKS_PER_USER,),
        )
        conn.execute("VACUUM (ANALYZE) tasks")
        seconds = time.perf_counter() - started
        counts = rows(conn)
    return {"fixtures": fixtures.as_dict(), "load_seconds": round(seconds, 1), "rows": counts}


def rows(conn: Conn) -> dict[str, int]:
    out = {}
    for table in ("users", *TABLES):
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        out[table] = int(row.fetchone()[0])  # type: ignore[index]
    return out


def sizes(dsn: str) -> dict[str, Any]:
    with psycopg.connect(dsn) as conn:
        indexes = [
            {"table": t, "index": i, "bytes": b}
            for t, i, b in conn.execute(INDEX_SIZES, (list(TABLES),)).fetchall()
        ]
        totals = {}
        for table in TABLES:
            row = conn.execute(
                "SELECT pg_relation_size(%s::regclass), pg_indexes_size(%s::regclass),"
                " pg_total_relation_size(%s::regclass)",
                (table, table, table),
            ).fetchone()
            assert row is not None
            totals[table] = {"heap": row[0], "indexes": row[1], "total": row[2]}
    return {"indexes": indexes, "tables": totals}


def settings(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        out = {}
        for name in ("server_version", *machine.SETTINGS):
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            out[name] = str(row[0]) if row else "?"
    return out


# -- timing ----------------------------------------------------------------------------


class Pinner:
    """Pins this process and the backends of the given servers' database to one CPU."""

    def __init__(self, enabled: bool, admin_dsns: list[str], dbnames: list[str]) -> None:
        self.enabled = enabled and len(os.sched_getaffinity(0)) > 1
        self._admins = (
            [psycopg.connect(d, autocommit=True) for d in admin_dsns] if self.enabled else []
        )
        self._dbnames = dbnames
        self._pinned: set[tuple[int, int]] = set()
        if self.enabled:
            os.sched_setaffinity(0, {CPU})

    def pin(self) -> None:
        for n, admin in enumerate(self._admins):
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                (self._dbnames,),
            ).fetchall():
                if (n, pid) not in self._pinned:
                    with suppress(OSError):
                        os.sched_setaffinity(pid, {CPU})
                        self._pinned.add((n, pid))

    def close(self) -> None:
        for admin in self._admins:
            admin.close()


def interleaved(
    ops: dict[str, Callable[[], object]],
    rounds: int,
    block: int,
    warmup: int,
    before_round: Callable[[], None],
) -> dict[str, list[int]]:
    """Blocks of ``block`` calls per contender, order reversed every other round."""
    names = list(ops)
    for name in names:
        for _ in range(warmup):
            ops[name]()
    samples: dict[str, list[int]] = {n: [] for n in names}
    for r in range(rounds):
        before_round()
        for name in names if r % 2 == 0 else reversed(names):
            fn = ops[name]
            for _ in range(block):
                started = time.perf_counter_ns()
                fn()
                samples[name].append(time.perf_counter_ns() - started)
    return samples


def summarize(samples: dict[str, list[int]], base: str, other: str) -> dict[str, Any]:
    a = statistics.median(samples[base]) / 1e6
    b = statistics.median(samples[other]) / 1e6
    return {
        f"{base}_ms": round(a, 4),
        f"{other}_ms": round(b, 4),
        "ratio": round(b / a, 3),
        "n": len(samples[base]),
    }


@contextmanager
def connect(dsn: str, **settings: str) -> Iterator[Conn]:
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=0)
    for name, value in settings.items():
        conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    try:
        yield conn
    finally:
        conn.close()


# -- part 1: one node, before and after -----------------------------------------------


def one_node(args: argparse.Namespace, loads: dict[str, Any]) -> dict[str, Any]:
    from chatstore._sql import QUERIES

    dsns = {
        "before": with_database(args.dsn, DB_BEFORE),
        "after": with_database(args.dsn, DB_AFTER),
    }
    named = {"before": BEFORE_SQL, "after": QUERIES}
    targets = {}
    for schema, dsn in dsns.items():
        with psycopg.connect(dsn, autocommit=True) as setup:
            targets[schema] = replenish.chatstore_conversation(setup, WRITER_USER, 50)
    conv_1000 = loads["before"]["fixtures"]["conv_1000"]
    assert conv_1000 == loads["after"]["fixtures"]["conv_1000"]

    def ops(schema: str, conn: Conn) -> dict[str, Callable[[], object]]:
        q, target = named[schema], targets[schema]
        read = {"user_id": SPECIAL_USER, "conversation_id": conv_1000, "limit": 50}
        read |= {"before_id": None} if schema == "before" else {"before": None, "after": None}
        one = {"user_id": WRITER_USER, "conversation_id": target, "role": "user"}
        one["content"] = USER_TEXT
        pair = {"user_id": WRITER_USER, "conversation_id": target}
        pair |= {"roles": ["user", "assistant"], "contents": [USER_TEXT, ASSISTANT_TEXT]}

        def run(name: str, params: dict[str, Any]) -> Callable[[], object]:
            return lambda: conn.execute(q[name], params, prepare=True).fetchall()

        return {
            "last50_of_1000": run("get_messages", read),
            "append_one": run("append_message", one),
            "append_pair": run("append_messages", pair),
        }

    results: dict[str, Any] = {}
    pinner = Pinner(args.placement == "same-cpu", [args.dsn], [DB_BEFORE, DB_AFTER])
    try:
        for label, extra in (
            ("", {}),
            (" (synchronous_commit off)", {"synchronous_commit": "off"}),
        ):
            with connect(dsns["before"], **extra) as cb, connect(dsns["after"], **extra) as ca:
                pinner.pin()
                before, after = ops("before", cb), ops("after", ca)
                names = list(before) if not extra else ["append_one", "append_pair"]
                for op in names:
                    samples = interleaved(
                        {"before": before[op], "after": after[op]},
                        args.rounds,
                        args.block,
                        args.warmup,
                        pinner.pin,
                    )
                    results[op + label] = summarize(samples, "before", "after")
                    r = results[op + label]
                    log(
                        f"  one node {op + label:40s} before {r['before_ms']:.3f} ms"
                        f"  after {r['after_ms']:.3f} ms  ratio {r['ratio']:.2f}  n={r['n']}"
                    )
    finally:
        pinner.close()
    return results


# -- part 2: Citus against one node ----------------------------------------------------


def distribute(dsn: str) -> str:
    try:
        from chatstore import citus as chatstore_citus
    except ImportError:
        pass
    else:
        steps = chatstore_citus.distribute(dsn)
        return "chatstore.citus.distribute: " + "; ".join(steps)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in FALLBACK_DISTRIBUTE:
            conn.execute(statement)
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET citus.enable_unsafe_triggers = on").format(
                sql.Identifier(DB_CITUS)
            )
        )
    return "the brief's SQL (chatstore.citus not in the tree)"


def citus(args: argparse.Namespace, one_node_fixtures: dict[str, int]) -> dict[str, Any]:
    from chatstore import migrations
    from chatstore import queries as q

    drop_citus_database(args.citus_dsn, DB_CITUS)
    subprocess.run(
        [str(args.cluster_sh), "add_database", str(args.cluster_dir), DB_CITUS],
        check=True,
        capture_output=True,
    )
    cdsn = with_database(args.citus_dsn, DB_CITUS)
    migrations.apply(cdsn)
    # Distribute the empty tables, then load: create_distributed_table on loaded tables
    # copies the rows into the shards with the triggers firing on every row (message
    # numbers and counts doubled; a worker backend grew past 20 GB at 1M messages).
    started = time.perf_counter()
    how = distribute(cdsn)
    dist_seconds = time.perf_counter() - started
    log(f"citus: distributed in {dist_seconds:.0f} s; loading {args.citus_messages:,} messages")
    loaded = load(cdsn, args.citus_messages, citus=True)
    with psycopg.connect(cdsn, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        placement = conn.execute(
            "SELECT nodeport, count(*) FROM citus_shards WHERE table_name = 'messages'::regclass"
            " GROUP BY nodeport ORDER BY nodeport"
        ).fetchall()
        special = conn.execute(
            "SELECT nodeport FROM citus_shards WHERE table_name = 'messages'::regclass"
            " AND shardid = get_shard_id_for_distribution_column('messages', %s::text)",
            (SPECIAL_USER,),
        ).fetchone()
        counted = conn.execute(
            "SELECT message_count, (SELECT max(seq) FROM messages WHERE user_id = %s"
            " AND conversation_id = %s) FROM conversations WHERE user_id = %s AND id = %s",
            (SPECIAL_USER, loaded["fixtures"]["conv_1000"]) * 2,
        ).fetchone()
        assert counted == (1000, 1000), counted
    log(f"citus: loaded in {loaded['load_seconds']} s ({how[:60]}...)")
    fx = loaded["fixtures"]
    assert fx == one_node_fixtures, (fx, one_node_fixtures)

    one_dsn = with_database(args.dsn, DB_AFTER)
    results: dict[str, Any] = {
        "distributed_by": how,
        "load": loaded,
        "distribute_seconds": round(dist_seconds, 1),
        "messages_shards_per_port": placement,
        "special_user_port": special[0] if special else None,
        "settings": {"citus": settings(cdsn)},
        "errors": {},
    }
    pin_one = Pinner(args.placement == "same-cpu", [args.dsn], [DB_AFTER])
    pin_citus = Pinner(args.placement == "same-cpu", node_dsns(args.citus_dsn), [DB_CITUS])
    try:
        with (
            psycopg.connect(one_dsn, autocommit=True) as c1,
            psycopg.connect(cdsn, autocommit=True) as cc,
        ):
            conns = {"one_node": c1, "citus": cc}
            targets = {
                k: q.create_conversation(c, user_id=WRITER_USER, title="bench.keys").id
                for k, c in conns.items()
            }
            cursors = {}
            for k, c in conns.items():
                cursor = None
                for _ in range(PAGE_NUMBER - 1):
                    cursor = q.list_conversations(
                        c, user_id=HEAVY_USER, limit=PAGE_SIZE, cursor=cursor
                    ).next_cursor
                cursors[k] = cursor
            pair = new_messages([("user", USER_TEXT), ("assistant", ASSISTANT_TEXT)])
            cid = fx["conv_1000"]

            def ops(k: str) -> dict[str, Callable[[], object]]:
                c, t = conns[k], targets[k]
                return {
                    "last50_of_1000": lambda: q.get_messages(
                        c, user_id=SPECIAL_USER, conversation_id=cid, limit=50
                    ),
                    "append_one": lambda: q.append_message(
                        c, user_id=WRITER_USER, conversation_id=t, role="user", content=USER_TEXT
                    ),
                    "append_pair": lambda: q.append_messages(
                        c, user_id=WRITER_USER, conversation_id=t, messages=pair
                    ),
                    "get_conversation": lambda: q.get_conversation(
                        c, user_id=SPECIAL_USER, conversation_id=cid
                    ),
                    "list_recent_20": lambda: q.list_conversations(
                        c, user_id=HEAVY_USER, limit=PAGE_SIZE
                    ),
                    "list_page_50": lambda: q.list_conversations(
                        c, user_id=HEAVY_USER, limit=PAGE_SIZE, cursor=cursors[k]
                    ),
                }

            one, dist = ops("one_node"), ops("citus")

            def pin() -> None:
                pin_one.pin()
                pin_citus.pin()

            for op in one:
                try:
                    samples = interleaved(
                        {"one_node": one[op], "citus": dist[op]},
                        args.rounds,
                        args.block,
                        args.warmup,
                        pin,
                    )
                except psycopg.Error as exc:
                    results["errors"][op] = f"{type(exc).__name__}: {exc}".strip()
                    log(f"  citus {op}: {results['errors'][op]}")
                    continue
                r = results[op] = summarize(samples, "one_node", "citus")
                log(
                    f"  citus {op:20s} one node {r['one_node_ms']:.3f} ms"
                    f"  citus {r['citus_ms']:.3f} ms  ratio {r['ratio']:.2f}  n={r['n']}"
                )
    finally:
        pin_one.close()
        pin_citus.close()
    return results


# -- report ----------------------------------------------------------------------------


def kib(n: int) -> str:
    return f"{n / 1024:,.0f} KiB" if n < 10 * 2**20 else f"{n / 2**20:,.1f} MiB"


def markdown(res: dict[str, Any]) -> str:
    out = [f"load average before/after: {res['load_average']}", ""]
    out += ["| table | index (before) | size | index (after) | size |", "|---|---|---|---|---|"]
    for table in TABLES:
        b = [i for i in res["sizes"]["before"]["indexes"] if i["table"] == table]
        a = [i for i in res["sizes"]["after"]["indexes"] if i["table"] == table]
        for k in range(max(len(a), len(b))):
            bi = b[k] if k < len(b) else None
            ai = a[k] if k < len(a) else None
            out.append(
                f"| {table} | {bi['index'] if bi else ''} | {kib(bi['bytes']) if bi else ''} "
                f"| {ai['index'] if ai else ''} | {kib(ai['bytes']) if ai else ''} |"
            )
    out += ["", "| table | heap before | heap after | indexes before | indexes after "
            "| total before | total after |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for table in TABLES:
        b, a = res["sizes"]["before"]["tables"][table], res["sizes"]["after"]["tables"][table]
        out.append(
            f"| {table} | {kib(b['heap'])} | {kib(a['heap'])} | {kib(b['indexes'])} "
            f"| {kib(a['indexes'])} | {kib(b['total'])} | {kib(a['total'])} |"
        )
    out += ["", "| operation (one node) | before ms | after ms | after/before | n each |"]
    out += ["|---|---|---|---|---|"]
    for op, r in res["one_node"].items():
        out.append(
            f"| {op} | {r['before_ms']:.3f} | {r['after_ms']:.3f} | {r['ratio']:.2f} | {r['n']} |"
        )
    if "citus" in res:
        c = res["citus"]
        out += ["", "| operation (chatstore.queries) | one node ms | Citus ms | Citus/one node "
                "| n each |", "|---|---|---|---|---|"]  # fmt: skip
        for op, r in c.items():
            if isinstance(r, dict) and "ratio" in r:
                out.append(
                    f"| {op} | {r['one_node_ms']:.3f} | {r['citus_ms']:.3f} "
                    f"| {r['ratio']:.2f} | {r['n']} |"
                )
        for op, err in c["errors"].items():
            out.append(f"| {op} | | fails: {err.splitlines()[0]} | | |")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.keys", description=__doc__.split("\n")[0])
    p.add_argument("--dsn", default=os.environ.get("CHATSTORE_KEYS_DSN", DEFAULT_DSN))
    p.add_argument("--citus-dsn", default=os.environ.get("CHATSTORE_CITUS_DSN", DEFAULT_CITUS_DSN))
    p.add_argument("--cluster-dir", type=Path, default=DEFAULT_CLUSTER_DIR)
    p.add_argument("--cluster-sh", type=Path, default=CLUSTER_SH)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--citus-messages", type=int, default=None, help="default: --messages")
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--block", type=int, default=20)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--placement", choices=["same-cpu", "unpinned"], default="same-cpu")
    p.add_argument("--skip-citus", action="store_true")
    p.add_argument("--keep", action="store_true", help="do not drop the databases")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="measure the one-node databases a --keep run left (no create, no load)",
    )
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    if args.citus_messages is None:
        args.citus_messages = args.messages
    return args


def main(argv: list[str] | None = None) -> int:
    from chatstore import migrations

    args = parse_args(argv)
    res: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine.machine(),
        "placement": args.placement,
        "rounds": args.rounds,
        "block": args.block,
        "load_average": [os.getloadavg()],
    }
    try:
        loads: dict[str, dict[str, Any]] = {}
        for schema, db, up_to in (
            ("before", DB_BEFORE, BEFORE_MIGRATION),
            ("after", DB_AFTER, None),
        ):
            if args.reuse:
                with psycopg.connect(with_database(args.dsn, db)) as conn:
                    loads[schema] = {"fixtures": find_fixtures(conn).as_dict(), "reused": True}
                    loads[schema]["rows"] = rows(conn)
                continue
            dsn = create_database(args.dsn, db)
            migrations.apply(dsn, up_to=up_to)
            log(f"{schema}: loading {args.messages:,} messages")
            loads[schema] = load(dsn, args.messages)
            log(f"{schema}: loaded in {loads[schema]['load_seconds']} s, {loads[schema]['rows']}")
        assert loads["before"]["rows"] == loads["after"]["rows"]
        res["load"] = loads
        res["settings"] = {"one_node": settings(with_database(args.dsn, DB_AFTER))}
        res["sizes"] = {
            s: sizes(with_database(args.dsn, d))
            for s, d in (("before", DB_BEFORE), ("after", DB_AFTER))
        }
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        res["one_node"] = one_node(args, loads)
        res["load_average"].append(os.getloadavg())
        if not args.skip_citus:
            res["citus"] = citus(args, loads["after"]["fixtures"])
            res["load_average"].append(os.getloadavg())
    finally:
        if not args.keep:
            for db in (DB_BEFORE, DB_AFTER):
                drop_database(args.dsn, db)
            if not args.skip_citus:
                drop_citus_database(args.citus_dsn, DB_CITUS)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
