"""export_user: everything of one user as JSON lines, from one snapshot, in batches.

Every test asks only for ``conn`` (the owner, for setup and checks) and ``db_dsn`` (what
the export connects to), so tests/test_citus.py runs this module again on the cluster,
where ``db_dsn`` refuses any statement that needs more than one shard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager, closing
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from chatstore import queries
from chatstore._sql import NAMED, QUERIES
from chatstore.devserver import DSN_ENV
from chatstore.errors import InvalidInput, NotFound, Unavailable
from chatstore.export import _TABLES, FORMAT, VERSION, export_user, export_user_sync, json_line
from tests.reliability_support import app_login

MODES = pytest.mark.parametrize("mode", ["sync", "async"])

ITEMS: list[Any] = [
    {"z": 1, "a": [1.5, None, True, 2**70], "nul": "a\u0000b", "emoji": "🥛 é 漢"},
    {"type": "function_call", "call_id": "c1", "arguments": '{"title":"milk"}'},
    "a lone \ud800 surrogate",
    [],
    -0.0,
    1e300,
]

# (record type, table, key) in export order.
TABLES = (
    ("task", "tasks", "id"),
    ("conversation", "conversations", "id"),
    ("message", "messages", "conversation_id, seq"),
    ("agent_item", "agent_items", "conversation_id, slot, seq"),
)


def fill(conn: psycopg.Connection, user_id: str) -> list[int]:
    """A user with two tasks, three conversations (one empty), messages and agent items,
    popped and cleared ones among them; the conversations' ids."""
    queries.create_user(conn, id=user_id, email=f"{user_id}@example.com", name=f"{user_id} é")
    queries.add_task(conn, user_id=user_id, title=f"{user_id} milk", description="2 l")
    done = queries.add_task(conn, user_id=user_id, title=f"{user_id} eggs")
    queries.complete_task(conn, user_id=user_id, task_id=done.id)
    ids = [queries.create_conversation(conn, user_id=user_id).id for _ in range(3)]
    for n, conv in enumerate(ids[:2]):
        queries.append_messages(
            conn,
            user_id=user_id,
            conversation_id=conv,
            messages=[("user", f"{user_id} says {n}"), ("assistant", f"to {user_id} {n}")],
        )
        queries.add_agent_items(
            conn,
            user_id=user_id,
            conversation_id=conv,
            items=[*ITEMS, user_id],
            transcript=[("user", f"{user_id} asks {n}")],
        )
    queries.pop_agent_item(conn, user_id=user_id, conversation_id=ids[0])
    queries.add_agent_items(conn, user_id=user_id, conversation_id=ids[0], items=["after pop"])
    queries.clear_agent_items(conn, user_id=user_id, conversation_id=ids[1])
    return ids


async def _async_records(
    records: Iterator[dict[str, Any]],
) -> AsyncIterator[dict[str, Any]]:
    for record in records:
        yield record


@asynccontextmanager
async def exporting(
    db_dsn: str, mode: str, user_id: str, **connect: Any
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """The records of one export on a connection of its own (autocommit unless told),
    read the same way in both modes; closed (its transaction ended) on the way out."""
    connect.setdefault("autocommit", True)
    if mode == "sync":
        with (
            psycopg.connect(db_dsn, **connect) as sync_conn,
            closing(export_user_sync(sync_conn, user_id=user_id)) as records,
        ):
            yield _async_records(records)
        return
    async with (
        await psycopg.AsyncConnection.connect(db_dsn, **connect) as aconn,
        aclosing(export_user(aconn, user_id=user_id)) as arecords,
    ):
        yield arecords


async def export(db_dsn: str, mode: str, user_id: str) -> list[dict[str, Any]]:
    async with exporting(db_dsn, mode, user_id) as records:
        return [record async for record in records]


def iso(value: object) -> object:
    return (
        value.astimezone(UTC).isoformat(timespec="microseconds")
        if isinstance(value, datetime)
        else value
    )


# Columns an export leaves out on purpose, by table (none: it is the user's data).
LEFT_OUT: dict[str, set[str]] = {}


def exported_columns(conn: psycopg.Connection) -> dict[str, list[str]]:
    """The columns each export query gives, by table."""
    found = {}
    for table, query in [
        ("users", "export_user"),
        *((t, q) for (_, t, _), (_, q, _) in zip(TABLES, _TABLES, strict=True)),
    ]:
        cur = conn.execute(QUERIES[query] + " LIMIT 0", {"user_id": ""})
        found[table] = [c.name for c in cur.description or ()]
    found["users"].remove("exported_at")
    return found


def expected(conn: psycopg.Connection, user_id: str) -> list[dict[str, Any]]:
    """The user's rows as the export should give them, the columns it exports, in key
    order, read without it (test_export_gives_every_column checks the column lists)."""
    columns = exported_columns(conn)
    with conn.cursor(row_factory=dict_row) as cur:
        users = cur.execute("SELECT * FROM users WHERE id = %s", [user_id]).fetchall()
        rows = [("user", "users", users[0])]
        for kind, table, key in TABLES:
            cur.execute(f"SELECT * FROM {table} WHERE user_id = %s ORDER BY {key}", [user_id])
            rows += [(kind, table, row) for row in cur.fetchall()]
    return [{"type": kind, **{c: iso(row[c]) for c in columns[table]}} for kind, table, row in rows]


def test_export_gives_every_column_of_its_tables(conn: psycopg.Connection) -> None:
    """A column a migration adds is exported, or left out here on purpose."""
    for table, columns in exported_columns(conn).items():
        in_table = {
            row[0]
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = %s",
                [table],
            )
        }
        assert set(columns) == in_table - LEFT_OUT.get(table, set()), table
        assert len(columns) == len(set(columns)), table


def counts(records: list[dict[str, Any]]) -> dict[str, int]:
    found = {"user": 0} | {kind: 0 for kind, _, _ in TABLES}
    for record in records[1:-1]:
        found[record["type"]] += 1
    return found


# --- what an export holds ------------------------------------------------------------


@MODES
async def test_export_holds_every_row_of_the_user_in_key_order_and_nothing_else(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    fill(conn, "ann")
    fill(conn, "bob")
    records = await export(db_dsn, mode, "ann")

    header, *body, end = records
    assert header["type"] == FORMAT
    assert (header["version"], header["user_id"]) == (VERSION, "ann")
    exported_at = datetime.fromisoformat(header["exported_at"])
    assert abs((datetime.now(UTC) - exported_at).total_seconds()) < 60
    assert body == expected(conn, "ann")
    assert end == {"type": "end", "counts": counts(records)}
    assert end["counts"] == {
        "user": 1,
        "task": 2,
        "conversation": 3,
        "message": 6,
        "agent_item": 15,
    }
    # Nothing of bob's, whatever field it would be in.
    assert all(r.get("user_id", r.get("id")) == "ann" for r in body)
    assert "bob" not in b"".join(map(json_line, records)).decode()


@MODES
async def test_export_round_trips_agent_items_exactly(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    conv = fill(conn, "ann")[0]
    lines = b"".join(json_line(r) for r in await export(db_dsn, mode, "ann")).splitlines()
    parsed = [json.loads(line) for line in lines]
    items = [r for r in parsed if r["type"] == "agent_item" and r["conversation_id"] == conv]
    # Every item ever added, popped ones included, in (slot, seq) order; as given.
    assert [(r["slot"], r["seq"]) for r in items] == [(n, n) for n in range(1, 8)] + [(7, 8)]
    assert [r["item"] for r in items] == [*ITEMS, "ann", "after pop"]
    assert [json.dumps(r["item"]) for r in items[:6]] == [json.dumps(i) for i in ITEMS]
    # The line carries the very text chatstore stored (key order, spelling, escapes).
    stored = [
        row[0]
        for row in conn.execute(
            "SELECT item::text FROM agent_items WHERE user_id = 'ann' AND conversation_id = %s"
            " ORDER BY slot, seq",
            [conv],
        )
    ]
    in_lines = [json.dumps(r["item"], ensure_ascii=False, separators=(",", ":")) for r in items]
    assert [s.encode("utf-8", "backslashreplace") for s in in_lines if "\ud800" not in s] == [
        s.encode() for s in stored if "\\ud800" not in s
    ]
    assert all(b'"a\\u0000b"' in line for line in lines if b'"nul"' in line)
    # The session's list is what the counters say: pop and clear are visible.
    convs = {r["id"]: r for r in parsed if r["type"] == "conversation"}
    assert (convs[conv]["agent_item_top"], convs[conv]["agent_item_count"]) == (7, 8)
    assert queries.get_agent_items(conn, user_id="ann", conversation_id=conv)[-1].item == (
        "after pop"
    )


@MODES
async def test_export_order_is_stable_by_table_then_key(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    fill(conn, "ann")
    # Rows written out of key order: a task and messages of the older conversation last.
    first = queries.list_conversations(conn, user_id="ann").items[-1].id
    queries.append_message(conn, user_id="ann", conversation_id=first, role="user", content="x")
    queries.add_task(conn, user_id="ann", title="late")
    one, two = await export(db_dsn, mode, "ann"), await export(db_dsn, mode, "ann")
    assert [r for r in one if r["type"] != FORMAT] == [r for r in two if r["type"] != FORMAT]
    kinds = [r["type"] for r in one]
    order = [FORMAT, "user", *(kind for kind, _, _ in TABLES), "end"]
    assert kinds == sorted(kinds, key=order.index)
    keys = {
        "task": ("id",),
        "conversation": ("id",),
        "message": ("conversation_id", "seq"),
        "agent_item": ("conversation_id", "slot", "seq"),
    }
    for kind, key in keys.items():
        found = [tuple(r[k] for k in key) for r in one if r["type"] == kind]
        assert found == sorted(found), kind
        assert len(set(found)) == len(found), kind


@MODES
async def test_export_is_one_snapshot_whatever_is_written_during_it(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    """Rows written while an export runs (between its reads of one table and the next)
    are in it whole or not at all; counters match the rows exported."""
    ids = fill(conn, "ann")
    before = expected(conn, "ann")

    def write() -> None:
        queries.add_task(conn, user_id="ann", title="during")
        queries.append_message(
            conn, user_id="ann", conversation_id=ids[2], role="user", content="d"
        )
        queries.add_agent_items(
            conn, user_id="ann", conversation_id=ids[0], items=["d"], transcript=[("user", "d")]
        )
        queries.pop_agent_item(conn, user_id="ann", conversation_id=ids[1])
        queries.create_conversation(conn, user_id="ann", title="during")

    async with exporting(db_dsn, mode, "ann") as records:
        got = []
        async for record in records:
            got.append(record)
            # After the first record of each table: its cursor is open, the next not yet.
            if (
                record["type"] in ("task", "message", "agent_item")
                and got[-2]["type"] != (record["type"])
            ):
                write()
    assert got[1:-1] == before
    assert got[-1]["counts"] == counts(got)
    assert len(expected(conn, "ann")) == len(before) + 3 * 5  # the writes were made


@MODES
async def test_export_as_the_app_role_under_row_level_security_gives_the_same_records(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    """A service connected as a member of chatstore_app (whose policies admit only the
    rows of the user the transaction acts as) exports exactly what the owner does."""
    fill(conn, "ann")
    fill(conn, "bob")
    with app_login(db_dsn) as app_dsn:
        as_app = await export(app_dsn, mode, "ann")
        with pytest.raises(NotFound):
            await export(app_dsn, mode, "carol")
    as_owner = await export(db_dsn, mode, "ann")
    assert as_app[1:] == as_owner[1:]
    assert counts(as_app)["message"] == 6


@MODES
async def test_export_erasure_is_delete_user_which_leaves_no_row_of_the_user(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    """The other half of a data-subject request: delete_user cascades to every table
    that holds a user's rows (each has a user_id), and the export then finds nobody."""
    fill(conn, "ann")
    fill(conn, "bob")
    bobs = await export(db_dsn, mode, "bob")
    queries.delete_user(conn, user_id="ann")
    owned = [
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND column_name = 'user_id' ORDER BY 1"
        )
    ]
    assert set(owned) == {table for _, table, _ in TABLES}
    for table, column in [("users", "id"), *((t, "user_id") for t in owned)]:
        left = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = 'ann'").fetchone()
        assert left == (0,), table
    with pytest.raises(NotFound):
        await export(db_dsn, mode, "ann")
    assert (await export(db_dsn, mode, "bob"))[1:] == bobs[1:]


# --- errors and the connection -----------------------------------------------------------


@MODES
async def test_export_of_an_unknown_user_is_not_found_before_any_record(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    fill(conn, "bob")
    for stranger in ("ann", "", "BOB", "bob "):
        async with exporting(db_dsn, mode, stranger) as records:
            with pytest.raises(NotFound, match="no such user"):
                await anext(records)


async def test_export_checks_its_arguments_when_called(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    async with await psycopg.AsyncConnection.connect(db_dsn) as aconn:
        with pytest.raises(InvalidInput, match=r"psycopg\.AsyncConnection"):
            export_user(conn, user_id="ann")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match=r"psycopg\.Connection"):
            export_user_sync(aconn, user_id="ann")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="NUL"):
            export_user(aconn, user_id="a\x00b")
    with pytest.raises(InvalidInput, match="string"):
        export_user_sync(conn, user_id=7)  # type: ignore[arg-type]


def _status(conn: psycopg.Connection) -> psycopg.pq.TransactionStatus:
    return conn.info.transaction_status


def test_export_refuses_a_connection_in_a_transaction_and_leaves_it_alone(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    fill(conn, "ann")
    with psycopg.connect(db_dsn) as busy:  # not autocommit: the SELECT opens a transaction
        busy.execute("SELECT 1")
        with pytest.raises(InvalidInput, match="not in a transaction"):
            next(export_user_sync(busy, user_id="ann"))
        assert busy.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        busy.rollback()
        # Idle, not autocommit: the export runs and leaves it idle again.
        assert counts(list(export_user_sync(busy, user_id="ann")))["message"] == 6
        assert _status(busy) == psycopg.pq.TransactionStatus.IDLE
    closed = psycopg.connect(db_dsn)
    closed.close()
    with pytest.raises(Unavailable):
        next(export_user_sync(closed, user_id="ann"))


@MODES
async def test_export_stopped_early_ends_its_transaction(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    fill(conn, "ann")
    if mode == "sync":
        with psycopg.connect(db_dsn, autocommit=True) as sync_conn:
            with closing(export_user_sync(sync_conn, user_id="ann")) as records:
                assert [next(records)["type"] for _ in range(3)] == [FORMAT, "user", "task"]
            assert sync_conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert sync_conn.autocommit
            assert sync_conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)
            assert counts(list(export_user_sync(sync_conn, user_id="ann")))["task"] == 2
        return
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as aconn:
        async with aclosing(export_user(aconn, user_id="ann")) as arecords:
            assert [(await anext(arecords))["type"] for _ in range(3)] == [FORMAT, "user", "task"]
        assert aconn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        cursors = await (await aconn.execute("SELECT count(*) FROM pg_cursors")).fetchone()
        assert cursors == (0,)
        assert len([r async for r in export_user(aconn, user_id="ann")]) > 3


@MODES
async def test_export_reads_in_batches_so_memory_stays_flat(
    conn: psycopg.Connection, db_dsn: str, mode: str
) -> None:
    """4,000 messages of 5,000 characters (20 MB of text): the export's Python objects
    peak at one batch's worth (500 messages), where reading them whole would take 20 MB
    and more."""
    queries.create_user(conn, id="ann", email="ann@example.com")
    convs = [queries.create_conversation(conn, user_id="ann").id for _ in range(20)]
    conn.execute(  # 20 x 200: one conversation per row lock would take longer
        "INSERT INTO messages (user_id, conversation_id, role, content)"
        " SELECT 'ann', c, 'user', n || repeat('x', 5000)"
        " FROM unnest(%s::bigint[]) AS c, generate_series(1, 200) AS n",
        [convs],
    )
    tracemalloc.start()
    try:
        async with exporting(db_dsn, mode, "ann") as records:
            tracemalloc.reset_peak()
            seen = 0
            async for record in records:
                seen += len(json_line(record))
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen > 20_000_000
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"


# --- the named queries -------------------------------------------------------------------


def test_export_runs_every_query_of_export_sql_and_each_names_the_user() -> None:
    in_file = {name for name, q in NAMED.items() if q.path.name == "export.sql"}
    assert in_file == {"export_user"} | {query for _, query, _ in _TABLES}
    for name in in_file:
        sql = NAMED[name].sql
        owner = "id" if name == "export_user" else "user_id"
        assert f"WHERE {owner} = %(user_id)s" in sql, name


# --- the command ---------------------------------------------------------------------------


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """``chatstore ARGS`` in a process of its own, without ``CHATSTORE_DSN``."""
    return subprocess.run(
        [sys.executable, "-m", "chatstore.cli", *args],
        capture_output=True,
        env={k: v for k, v in os.environ.items() if k != DSN_ENV} | env,
        check=False,
    )


def test_export_command_writes_the_export_as_utf8_json_lines(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    fill(conn, "ann")
    fill(conn, "bob")
    # An ASCII-only stdout encoding changes nothing: the command writes UTF-8 bytes.
    run = _cli("export", "--user", "ann", "--dsn", db_dsn, PYTHONIOENCODING="ascii")
    assert (run.returncode, run.stderr) == (0, b"")
    assert run.stdout.endswith(b"\n")
    lines = run.stdout.decode("utf-8").split("\n")[:-1]
    records = [json.loads(line) for line in lines]
    assert records[0]["type"] == FORMAT
    assert records[-1]["type"] == "end"
    assert records[1:-1] == expected(conn, "ann")
    assert "🥛 é 漢" in run.stdout.decode("utf-8")


def test_export_command_errors_are_one_line_with_exit_1(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    fill(conn, "bob")
    run = _cli("export", "--user", "ann", "--dsn", db_dsn)
    assert (run.returncode, run.stdout) == (1, b"")
    assert run.stderr == b"chatstore export: no such user\n"
    run = _cli("export", "--user", "ann", "--dsn", "host=127.0.0.1 port=1 dbname=nowhere")
    assert (run.returncode, run.stdout) == (1, b"")
    assert run.stderr.startswith(b"chatstore export: ")
    assert run.stderr.count(b"\n") == 1
    run = _cli("export", "--dsn", db_dsn)  # no --user: a usage error
    assert run.returncode == 2
    assert b"--user" in run.stderr


def test_export_command_whose_reader_goes_away_stops_with_one_line(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    """``chatstore export ... | head -1``: more than a pipe holds, and the reader leaves."""
    fill(conn, "ann")
    conv = queries.create_conversation(conn, user_id="ann").id
    queries.append_messages(
        conn, user_id="ann", conversation_id=conv, messages=[("user", "x" * 2000)] * 500
    )
    with subprocess.Popen(
        [sys.executable, "-m", "chatstore.cli", "export", "--user", "ann", "--dsn", db_dsn],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != DSN_ENV},
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert json.loads(process.stdout.readline())["type"] == FORMAT
        process.stdout.close()
        stderr = process.stderr.read()
    assert process.returncode == 1
    assert stderr == b"chatstore export: [Errno 32] Broken pipe\n"
