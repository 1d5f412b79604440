"""Load and concurrency: many writers on one conversation, racing renames, deletes and
appends, and (under the ``soak`` marker) a bounded mixed-load run.

Writers go through psycopg_pool pools, as services do: sync threads on a
``ConnectionPool``, async tasks on an ``AsyncConnectionPool``.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from chatstore import aio, queries
from chatstore import pool as cpool
from chatstore.errors import ChatstoreError, NotFound
from chatstore.models import Role

WRITERS = 16
PER_WRITER = 500


def _chunks(writer: int) -> list[list[tuple[Role, str]]]:
    """Writer ``writer``'s 500 messages, cut into calls of 1-9 messages (a seeded mix of
    append_message and append_messages); contents say who wrote them and in what order."""
    rng = random.Random(writer)
    messages: list[tuple[Role, str]] = [
        ("user" if i % 2 == 0 else "assistant", f"w{writer:02d}:{i:03d}") for i in range(PER_WRITER)
    ]
    chunks = []
    while messages:
        size = rng.randint(1, 9)
        chunks.append(messages[:size])
        messages = messages[size:]
    return chunks


def _setup(conn: psycopg.Connection) -> int:
    queries.create_user(conn, id="alice", email="alice@example.com")
    return queries.create_conversation(conn, user_id="alice").id


def _check_history(conn: psycopg.Connection, conv: int) -> None:
    """All 8,000 stored once, numbered 1 .. 8,000 with no gap, each writer's in its own
    order, and updated_at equal to the newest message's time."""
    history = queries.get_messages(conn, user_id="alice", conversation_id=conv)
    assert len(history) == WRITERS * PER_WRITER
    contents = [m.content for m in history]
    assert len(set(contents)) == len(contents), "a message stored twice"
    assert [m.seq for m in history] == list(range(1, WRITERS * PER_WRITER + 1))
    assert len({m.id for m in history}) == len(history)
    for writer in range(WRITERS):
        own = [c for c in contents if c.startswith(f"w{writer:02d}:")]
        assert own == [f"w{writer:02d}:{i:03d}" for i in range(PER_WRITER)], writer
    # One consistent order: the last N, read on their own, are the tail of the whole.
    tail = queries.get_messages(conn, user_id="alice", conversation_id=conv, limit=777)
    assert tail == history[-777:]
    conversation = queries.get_conversation(conn, user_id="alice", conversation_id=conv)
    assert conversation.updated_at == max(m.created_at for m in history)
    assert conversation.message_count == WRITERS * PER_WRITER


def _append_sync(conn: psycopg.Connection, conv: int, chunk: list[tuple[Role, str]]) -> None:
    if len(chunk) == 1:
        role, content = chunk[0]
        queries.append_message(
            conn, user_id="alice", conversation_id=conv, role=role, content=content
        )
    else:
        queries.append_messages(conn, user_id="alice", conversation_id=conv, messages=chunk)


def test_concurrency_16_threads_append_8000_messages_stored_once_in_each_writers_order(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    conv = _setup(conn)
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)
    with ConnectionPool(
        db_dsn, min_size=WRITERS, max_size=WRITERS, kwargs={"autocommit": True}
    ) as pool:
        pool.wait(timeout=30)

        def writer(w: int) -> None:
            try:
                start.wait(timeout=30)
                for chunk in _chunks(w):
                    with cpool.connection(pool, timeout=30) as c:
                        _append_sync(c, conv, chunk)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert errors == []
    _check_history(conn, conv)


async def test_concurrency_16_async_tasks_append_8000_messages_stored_once_in_each_writers_order(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    conv = _setup(conn)
    async with AsyncConnectionPool(
        db_dsn, min_size=WRITERS, max_size=WRITERS, kwargs={"autocommit": True}
    ) as pool:
        await pool.wait(timeout=30)
        start = asyncio.Event()

        async def writer(w: int) -> None:
            await start.wait()
            for chunk in _chunks(w):
                async with cpool.connection_async(pool, timeout=30) as c:
                    if len(chunk) == 1:
                        role, content = chunk[0]
                        await aio.append_message(
                            c, user_id="alice", conversation_id=conv, role=role, content=content
                        )
                    else:
                        await aio.append_messages(
                            c, user_id="alice", conversation_id=conv, messages=chunk
                        )

        tasks = [asyncio.create_task(writer(w)) for w in range(WRITERS)]
        start.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    _check_history(conn, conv)


# --- racing renames, deletes and appends -------------------------------------------------


def _race(db_dsn: str, rounds: int, seed: int) -> Counter[str]:
    """Six threads on the same user's conversations: two append, one renames, one
    deletes and re-creates, one reads, one lists. Returns the outcomes by kind; any
    exception that is not chatstore's own is raised."""
    outcomes: Counter[str] = Counter()
    foreign: list[BaseException] = []
    lock = threading.Lock()
    with psycopg.connect(db_dsn, autocommit=True) as c:
        convs = [queries.create_conversation(c, user_id="alice").id for _ in range(3)]

    def step(c: psycopg.Connection, rng: random.Random, kind: str) -> None:
        conv = rng.choice(convs)
        if kind == "append":
            if rng.random() < 0.5:
                queries.append_message(
                    c, user_id="alice", conversation_id=conv, role="user", content="hi"
                )
            else:
                queries.append_messages(
                    c,
                    user_id="alice",
                    conversation_id=conv,
                    messages=[("user", "q"), ("assistant", "a")],
                )
        elif kind == "rename":
            queries.rename_conversation(
                c, user_id="alice", conversation_id=conv, title=f"t{rng.random()}"
            )
        elif kind == "delete":
            queries.delete_conversation(c, user_id="alice", conversation_id=conv)
            new = queries.create_conversation(c, user_id="alice").id
            with lock:
                convs[convs.index(conv)] = new
        elif kind == "read":
            queries.get_messages(c, user_id="alice", conversation_id=conv, limit=50)
        else:
            queries.list_conversations(c, user_id="alice", limit=5)

    def client(kind: str, n: int) -> None:
        rng = random.Random(f"{seed}-{kind}-{n}")
        with psycopg.connect(db_dsn, autocommit=True) as c:
            for _ in range(rounds):
                try:
                    step(c, rng, kind)
                    outcome = "ok"
                except ChatstoreError as exc:
                    outcome = type(exc).__name__
                except BaseException as exc:
                    foreign.append(exc)
                    return
                with lock:
                    outcomes[f"{kind}:{outcome}"] += 1

    kinds = ["append", "append", "rename", "delete", "read", "list"]
    threads = [threading.Thread(target=client, args=(k, i)) for i, k in enumerate(kinds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert foreign == [], "only chatstore's own errors may leave a query function"
    return outcomes


def test_concurrency_racing_renames_deletes_and_appends_leave_no_orphan_and_raise_only_chatstore_errors(  # noqa: E501
    conn: psycopg.Connection, db_dsn: str
) -> None:
    _setup(conn)
    outcomes = _race(db_dsn, rounds=150, seed=1)
    # No Unavailable, so no deadlock and no serialization failure: under READ COMMITTED
    # every statement here locks at most one conversation row (the trigger's UPDATE for an
    # append, the UPDATE of a rename, the DELETE), and always before any message row (the
    # cascade deletes them after; an append only inserts new ones). One lock order, so no
    # cycle; a retry loop would only hide a regression. NotFound only where another
    # client's delete explains it: the deleter and the lister always find theirs.
    expected = {
        "append": {"ok", "NotFound"},
        "rename": {"ok", "NotFound"},
        "read": {"ok", "NotFound"},
        "delete": {"ok"},
        "list": {"ok"},
    }
    unexpected = {
        key: n
        for key, n in outcomes.items()
        if key.split(":")[1] not in expected[key.split(":")[0]]
    }
    assert unexpected == {}, outcomes
    assert outcomes["delete:ok"] > 0
    assert outcomes["append:ok"] > 0
    orphans = conn.execute(
        "SELECT count(*) FROM messages AS m LEFT JOIN conversations AS c"
        " ON c.user_id = m.user_id AND c.id = m.conversation_id WHERE c.id IS NULL"
    ).fetchone()
    assert orphans == (0,)
    stale = conn.execute(
        "SELECT count(*) FROM conversations AS c WHERE c.updated_at < ("
        " SELECT max(created_at) FROM messages AS m WHERE m.conversation_id = c.id)"
    ).fetchone()
    assert stale == (0,), "a conversation older than its newest message"


# --- soak --------------------------------------------------------------------------------


def _connections(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.soak
def test_soak_mixed_load_from_several_clients_raises_nothing_and_leaks_no_connection(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    """About a minute (CHATSTORE_SOAK_SECONDS) of every operation from 8 sync threads and
    8 async tasks on two pools: no error but NotFound for what another client deleted,
    and as many server connections at the end as the pools hold."""
    seconds = float(os.environ.get("CHATSTORE_SOAK_SECONDS", "60"))
    for uid in ("alice", "bob", "carol"):
        queries.create_user(conn, id=uid, email=f"{uid}@example.com")
    deadline = time.monotonic() + seconds
    outcomes: Counter[str] = Counter()
    unexpected: list[BaseException] = []
    lock = threading.Lock()

    def record(what: str) -> None:
        with lock:
            outcomes[what] += 1

    samples: list[int] = []

    def monitor() -> None:  # server connections to this database, twice a second
        with psycopg.connect(db_dsn, autocommit=True) as m:
            while time.monotonic() < deadline:
                samples.append(_connections(m))
                time.sleep(0.5)

    def sync_client(pool: ConnectionPool[Any], n: int) -> None:
        rng = random.Random(n)
        uid = ("alice", "bob", "carol")[n % 3]
        while time.monotonic() < deadline:
            try:
                with cpool.connection(pool, timeout=30) as c:
                    record(_soak_step_sync(c, rng, uid))
            except NotFound:  # another client of the same user deleted it
                record("NotFound")
            except BaseException as exc:
                unexpected.append(exc)
                return

    before = _connections(conn)
    with ConnectionPool(db_dsn, min_size=4, max_size=8, kwargs={"autocommit": True}) as pool:
        threads = [threading.Thread(target=sync_client, args=(pool, n)) for n in range(8)]
        threads.append(threading.Thread(target=monitor))
        for t in threads:
            t.start()
        asyncio.run(_soak_async(db_dsn, deadline, outcomes, unexpected))
        for t in threads:
            t.join(seconds + 60)
    assert unexpected == []
    assert sum(outcomes.values()) > 100
    # Never more than the two pools may hold (8 + 8, and the monitor), and all gone
    # once the pools are closed.
    assert max(samples) <= 8 + 8 + 1, samples
    for _ in range(100):
        if _connections(conn) == before:
            break
        time.sleep(0.1)
    assert _connections(conn) == before, "connections left behind"
    print(
        f"soak: {seconds:.0f}s, {sum(outcomes.values())} operations, max connections "
        f"{max(samples)}: {dict(outcomes)}"
    )


def _soak_step_sync(c: psycopg.Connection, rng: random.Random, uid: str) -> str:
    page = queries.list_conversations(c, user_id=uid, limit=10)
    op = rng.choice(["new", "append", "batch", "read", "rename", "delete", "task"])
    if op == "new" or not page.items:
        queries.create_conversation(c, user_id=uid)
        return "new"
    conv = rng.choice(page.items).id
    ops: dict[str, Callable[[], Any]] = {
        "append": lambda: queries.append_message(
            c, user_id=uid, conversation_id=conv, role="user", content="hello"
        ),
        "batch": lambda: queries.append_messages(
            c,
            user_id=uid,
            conversation_id=conv,
            messages=[("user", "q"), ("assistant", "a" * rng.randint(1, 2000))],
        ),
        "read": lambda: queries.get_messages(c, user_id=uid, conversation_id=conv, limit=20),
        "rename": lambda: queries.rename_conversation(
            c, user_id=uid, conversation_id=conv, title="renamed"
        ),
        "delete": lambda: queries.delete_conversation(c, user_id=uid, conversation_id=conv),
        "task": lambda: queries.complete_task(
            c, user_id=uid, task_id=queries.add_task(c, user_id=uid, title="t").id
        ),
    }
    ops[op]()
    return op


async def _soak_async(
    dsn: str, deadline: float, outcomes: Counter[str], unexpected: list[BaseException]
) -> None:
    async with AsyncConnectionPool(
        dsn, min_size=4, max_size=8, kwargs={"autocommit": True}
    ) as pool:

        async def client(n: int) -> None:
            uid = ("alice", "bob", "carol")[n % 3]
            while time.monotonic() < deadline:
                try:
                    async with cpool.connection_async(pool, timeout=30) as c:
                        conv = await aio.create_conversation(c, user_id=uid)
                        stored = await aio.append_messages(
                            c,
                            user_id=uid,
                            conversation_id=conv.id,
                            messages=[("user", "q"), ("assistant", "a")],
                        )
                        got = await aio.get_messages(c, user_id=uid, conversation_id=conv.id)
                        # Sync clients of the same user may add theirs around them.
                        seqs = {m.seq for m in stored}
                        assert [m for m in got if m.seq in seqs] == stored
                    outcomes["async"] += 1
                except NotFound:  # a sync client deleted it meanwhile
                    outcomes["async:NotFound"] += 1
                except BaseException as exc:
                    unexpected.append(exc)
                    return

        await asyncio.gather(*(client(n) for n in range(8)))
