"""ChatstoreSession against the Agents SDK's SQLAlchemySession (issue 10 item 6).

``python -m bench.agents_sessions`` measures, on one PostgreSQL server (``CHATSTORE_DSN``,
else the embedded one), in a database of its own (``chatstore_bench_agents``, dropped
and recreated):

- ``get_items(limit=50)`` of a 1,000-item session,
- ``add_items`` of a three-item turn (function_call, function_call_output, assistant
  message), a durable commit,

for ``chatstore.agents.ChatstoreSession`` and ``agents.extensions.memory.SQLAlchemySession``
(the SDK's, on ``postgresql+psycopg`` and ``postgresql+asyncpg`` async engines), and prints
the Markdown table. ``python -m bench`` runs it too (its section of docs/benchmarks.md).

A ``floor`` row (one raw statement per call on the SDK's own tables, no session API)
shows what any implementation must pay, so how large a ratio could be at all.

How it is measured (``/work/shared/BENCHMARKING.md``): one process per contender, each
with its own pool of five connections (``AsyncConnectionPool(min_size=5, max_size=5)``;
``create_async_engine(pool_size=5, max_overflow=0)``); every such process and all its
server backends pinned to vCPU 0, the orchestrator on vCPU 1 (``--placement unpinned``
leaves them to the scheduler). Per operation: a warm-up
long enough to prepare every statement on every pooled connection, then rounds in which
each contender runs a block of 10 calls, the order rotated each round; the whole is
repeated (``--repeats``). Ratios are the SDK's median over chatstore's; the paired ratio
is the median over rounds of the two block medians' ratio in the same round (a burst of
load from other processes lands on one round).

The sessions hold the items an agent run stores (user messages, reasoning, function
calls, their outputs of a few hundred bytes to a few KB, assistant messages), loaded
turn by turn, round-robin over every session of the store (the read session, one append
target per contender, four more) so that a session's rows are interleaved with other
sessions' as on a live server; the same items in both stores. Each contender appends to
a session of its own (1,000 items at the start). Loading uses ``synchronous_commit=off``;
measuring does not.

``--profile CONTENDER OPERATION`` runs one contender's operation under pyinstrument in
this process (after a load, or on the database a previous run left with ``--reuse``)
instead of measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import machine
from bench.contenders.base import Operation
from bench.pinning import CLIENT_CPU, ORCHESTRATOR_CPU, BackendPinner, cpu_count, pin_self
from bench.server import is_local, recreate_database, server_dsn, with_database
from bench.sqlalchemy_urls import async_engine, asyncpg_engine
from bench.worker import Runner

DATABASE = "chatstore_bench_agents"
USER_ID = "bench-agents"
SESSION_ITEMS = 1_000
BACKGROUND_SESSIONS = 4  # besides the read session and the append targets, per store
POOL_SIZE = 5  # SQLAlchemy's default pool_size; the same for psycopg_pool
READ_LIMIT = 50
SEED = 20_260_601

OPERATIONS: dict[str, str] = {
    "get_50": "get_items(limit=50) of a 1,000-item session",
    "add_turn": "add_items of a 3-item turn (function_call, function_call_output, message)",
}
BASELINE = "chatstore"
TARGET = 5.0
SDK_ROWS = ("sdk-psycopg", "sdk-asyncpg")  # the SDK as its docs show it, against chatstore

# name -> (store, description). Report order; the first is the baseline.
CONTENDERS: dict[str, tuple[str, str]] = {
    "chatstore": (
        "chatstore",
        "ChatstoreSession on AsyncConnectionPool(min_size=5, max_size=5, "
        "check=AsyncConnectionPool.check_connection, autocommit), as chatstore.pool and "
        "the example service configure it (the check is one empty round trip per checkout); "
        "one session object per conversation, reused",
    ),
    "chatstore-nocheck": (
        "chatstore",
        "the same without check=, like SQLAlchemy's default pool (no pre-ping)",
    ),
    "sdk-psycopg": (
        "sdk",
        "SQLAlchemySession(session_id, engine=create_async_engine('postgresql+psycopg://', "
        "pool_size=5, max_overflow=0)), one engine, one session object per conversation, "
        "reused (its compiled statements cached)",
    ),
    "sdk-asyncpg": (
        "sdk",
        "the same on 'postgresql+asyncpg://', the driver the SDK's docs show",
    ),
    "chatstore-per-request": (
        "chatstore",
        "as chatstore, a new ChatstoreSession for every call (a web handler's way)",
    ),
    "sdk-psycopg-per-request": (
        "sdk",
        "as sdk-psycopg, a new SQLAlchemySession for every call (a web handler's way: "
        "new Table objects, so SQLAlchemy compiles each statement again)",
    ),
    "floor": (
        "sdk",
        "diagnostic, no session API: one psycopg AsyncConnection (autocommit, prepared), one "
        "statement on the SDK's own tables: SELECT ... ORDER BY created_at DESC, id DESC "
        "LIMIT 50 and json.loads of each row; INSERT ... SELECT unnest(texts) (no session "
        "row lock or bump, no transcript, no checks): what any implementation must pay",
    ),
}


# --- realistic items ---------------------------------------------------------------------

_VOCABULARY = (
    "task list milk bread call dentist friday report deadline review meeting notes "
    "budget invoice project plan sprint backlog release deploy fix bug write tests "
    "groceries pay rent book flight hotel email reply draft schedule reminder urgent"
)
_WORDS = _VOCABULARY.split()
_TOOLS = ("add_task", "list_tasks", "complete_task", "update_task", "delete_task")


def _text(rng: random.Random, low: int, high: int) -> str:
    target = rng.randint(low, high)
    words: list[str] = []
    size = 0
    while not words or size < target:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _id(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choices("0123456789abcdef", k=48))


def _tool_output(rng: random.Random) -> str:
    """A task tool's JSON answer: 300 bytes to about 4 KB."""
    tasks = [
        {
            "id": rng.randint(1, 10_000),
            "title": _text(rng, 10, 60),
            "description": _text(rng, 0, 200) if rng.random() < 0.5 else None,
            "completed": rng.random() < 0.3,
            "created_at": f"2026-05-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:14:03Z",
        }
        for _ in range(rng.choice((1, 1, 2, 4, 8, 16)))
    ]
    return json.dumps({"tasks": tasks, "count": len(tasks)})


def _user(rng: random.Random) -> dict[str, Any]:
    return {"role": "user", "content": _text(rng, 20, 300)}


def _reasoning(rng: random.Random) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": _id(rng, "rs_"),
        "summary": [{"text": _text(rng, 100, 700), "type": "summary_text"}],
        "type": "reasoning",
    }
    if rng.random() < 0.5:  # store=False runs carry the encrypted reasoning
        item["encrypted_content"] = base64.b64encode(rng.randbytes(rng.randint(600, 2400))).decode()
    return item


def _call(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    call_id = _id(rng, "call_")[:29]
    call = {
        "arguments": json.dumps({"title": _text(rng, 10, 60), "description": _text(rng, 0, 120)}),
        "call_id": call_id,
        "name": rng.choice(_TOOLS),
        "type": "function_call",
        "id": _id(rng, "fc_"),
        "status": "completed",
    }
    output = {"call_id": call_id, "output": _tool_output(rng), "type": "function_call_output"}
    return call, output


def _assistant(rng: random.Random) -> dict[str, Any]:
    return {
        "id": _id(rng, "msg_"),
        "content": [
            {"annotations": [], "text": _text(rng, 60, 1200), "type": "output_text", "logprobs": []}
        ],
        "role": "assistant",
        "status": "completed",
        "type": "message",
    }


def session_turns(rng: random.Random, count: int) -> list[list[dict[str, Any]]]:
    """Turns of an agent run, ``count`` items in all: user message, sometimes reasoning,
    0-2 tool calls with their outputs, the assistant's message."""
    turns: list[list[dict[str, Any]]] = []
    total = 0
    while total < count:
        turn = [_user(rng)]
        if rng.random() < 0.6:
            turn.append(_reasoning(rng))
        for _ in range(rng.choice((0, 1, 1, 2))):
            turn.extend(_call(rng))
        turn.append(_assistant(rng))
        turn = turn[: count - total]
        turns.append(turn)
        total += len(turn)
    return turns


def append_turn() -> list[dict[str, Any]]:
    """The timed append: a tool call, its output (about 1 KB) and the answer."""
    rng = random.Random(SEED + 1)
    call, output = _call(rng)
    output["output"] = json.dumps({"tasks": [{"id": 7, "title": _text(rng, 900, 900)}]})
    return [call, output, _assistant(rng)]


# --- contenders ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """Which session each contender reads and appends to."""

    read_conversation: int
    read_session: str
    append: dict[str, str] = field(default_factory=dict)  # contender -> session id


class ChatstoreContender:
    is_async = True

    def __init__(self, name: str, *, check: bool, per_request: bool) -> None:
        self.name = name
        self.description = CONTENDERS[name][1]
        self.notes: list[str] = []
        self._check = check
        self._per_request = per_request

    async def setup(self, dsn: str, targets: Targets) -> None:
        from psycopg_pool import AsyncConnectionPool

        from chatstore.agents import ChatstoreSession

        self._pool = AsyncConnectionPool(
            dsn,
            min_size=POOL_SIZE,
            max_size=POOL_SIZE,
            open=False,
            check=AsyncConnectionPool.check_connection if self._check else None,
            kwargs={"autocommit": True},
        )
        await self._pool.open(wait=True)
        self._cls = ChatstoreSession
        self._read = ChatstoreSession(
            self._pool, user_id=USER_ID, conversation_id=targets.read_conversation
        )
        self._append = ChatstoreSession(
            self._pool, user_id=USER_ID, conversation_id=int(targets.append[self.name])
        )
        self._turn = append_turn()

    def _session(self, kept: Any) -> Any:
        if not self._per_request:
            return kept
        return self._cls(self._pool, user_id=USER_ID, conversation_id=kept.conversation_id)

    def operations(self) -> dict[str, Operation]:
        return {
            "get_50": Operation(lambda: self._session(self._read).get_items(limit=READ_LIMIT)),
            "add_turn": Operation(lambda: self._session(self._append).add_items(self._turn)),
        }

    async def close(self) -> None:
        await self._pool.close()


class SdkContender:
    is_async = True

    def __init__(self, name: str, *, driver: str, per_request: bool) -> None:
        self.name = name
        self.description = CONTENDERS[name][1]
        self.notes: list[str] = []
        self._driver = driver
        self._per_request = per_request

    async def setup(self, dsn: str, targets: Targets) -> None:
        make = asyncpg_engine if self._driver == "asyncpg" else async_engine
        self._engine = make(dsn, pool_size=POOL_SIZE, max_overflow=0)
        self._read_id = targets.read_session
        self._append_id = targets.append[self.name]
        self._read = self._new(self._read_id)
        self._append = self._new(self._append_id)
        self._turn = append_turn()

    def _new(self, session_id: str) -> Any:
        from agents.extensions.memory import SQLAlchemySession

        return SQLAlchemySession(session_id, engine=self._engine)

    def operations(self) -> dict[str, Operation]:
        if self._per_request:
            return {
                "get_50": Operation(lambda: self._new(self._read_id).get_items(limit=READ_LIMIT)),
                "add_turn": Operation(lambda: self._new(self._append_id).add_items(self._turn)),
            }
        return {
            "get_50": Operation(lambda: self._read.get_items(limit=READ_LIMIT)),
            "add_turn": Operation(lambda: self._append.add_items(self._turn)),
        }

    async def close(self) -> None:
        await self._engine.dispose()


class FloorContender:
    is_async = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.description = CONTENDERS[name][1]
        self.notes: list[str] = []

    async def setup(self, dsn: str, targets: Targets) -> None:
        self._conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        self._read = targets.read_session
        self._append = targets.append[self.name]
        self._turn = append_turn()

    def operations(self) -> dict[str, Operation]:
        conn = self._conn

        async def get() -> list[Any]:
            cur = await conn.execute(
                "SELECT message_data FROM agent_messages WHERE session_id = %s"
                " ORDER BY created_at DESC, id DESC LIMIT %s",
                (self._read, READ_LIMIT),
                prepare=True,
            )
            rows = await cur.fetchall()
            return [json.loads(row[0]) for row in reversed(rows)]

        async def add() -> None:
            await conn.execute(
                "INSERT INTO agent_messages (session_id, message_data)"
                " SELECT %s, unnest(%s::text[])",
                (self._append, [json.dumps(item) for item in self._turn]),
                prepare=True,
            )

        return {"get_50": Operation(get), "add_turn": Operation(add)}

    async def close(self) -> None:
        await self._conn.close()


def make(name: str) -> ChatstoreContender | SdkContender | FloorContender:
    if name == "floor":
        return FloorContender(name)
    per_request = name.endswith("-per-request")
    if CONTENDERS[name][0] == "chatstore":
        return ChatstoreContender(name, check=name != "chatstore-nocheck", per_request=per_request)
    driver = "asyncpg" if "asyncpg" in name else "psycopg"
    return SdkContender(name, driver=driver, per_request=per_request)


# --- loading ------------------------------------------------------------------------------


def load(dsn: str, names: list[str]) -> tuple[Targets, dict[str, Any]]:
    """Migrate, create the SDK's tables (by the SDK), and fill both stores with the same
    sessions, turn by turn, round-robin. Commits are not durable while loading only."""
    from chatstore import migrations

    migrations.apply(dsn)
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(
                sql.Identifier(str(dbname))
            )
        )
        conn.execute(
            "INSERT INTO users (id, email, name) VALUES (%s, %s, 'bench')",
            (USER_ID, f"{USER_ID}@example.com"),
        )
    try:
        targets, info = asyncio.run(_load(dsn, names))
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RESET synchronous_commit").format(
                    sql.Identifier(str(dbname))
                )
            )
            conn.execute("VACUUM (ANALYZE)")
            conn.execute("CHECKPOINT")
    return targets, info


async def _load(dsn: str, names: list[str]) -> tuple[Targets, dict[str, Any]]:
    from agents.extensions.memory import SQLAlchemySession
    from psycopg_pool import AsyncConnectionPool

    from chatstore.agents import ChatstoreSession

    count = 1 + max(map(len, _appenders(names).values())) + BACKGROUND_SESSIONS
    rng = random.Random(SEED)
    sessions = [session_turns(rng, SESSION_ITEMS) for _ in range(count)]
    engine = async_engine(dsn, pool_size=1, max_overflow=0)
    async with AsyncConnectionPool(
        dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}
    ) as pool:
        ours = [await ChatstoreSession.start(pool, user_id=USER_ID) for _ in range(count)]
        theirs = [
            SQLAlchemySession(_sdk_session_id(i), engine=engine, create_tables=i == 0)
            for i in range(count)
        ]
        for index in range(max(map(len, sessions))):
            for turns, a, b in zip(sessions, ours, theirs, strict=True):
                if index < len(turns):
                    await a.add_items(turns[index])
                    await b.add_items(turns[index])
        # The same items came back from both (checked once, on the read session).
        assert await ours[0].get_items() == await theirs[0].get_items()
    await engine.dispose()
    items = [item for turns in sessions for turn in turns for item in turn]
    sizes = sorted(len(json.dumps(item)) for item in items)
    kinds: dict[str, int] = {}
    for item in items:
        kind = item.get("type", "message") + (
            f"/{item['role']}" if item.get("type", "message") == "message" else ""
        )
        kinds[kind] = kinds.get(kind, 0) + 1
    last50 = [len(json.dumps(item)) for item in _flat(sessions[0])[-READ_LIMIT:]]
    info = {
        "sessions_per_store": count,
        "items_per_store": len(items),
        "item_json_bytes": {
            "median": sizes[len(sizes) // 2],
            "p90": sizes[int(len(sizes) * 0.9)],
            "max": sizes[-1],
        },
        "kinds": {k: round(v / len(items), 3) for k, v in sorted(kinds.items())},
        "last50_json_bytes": sum(last50),
        "turn_json_bytes": sum(len(json.dumps(item)) for item in append_turn()),
    }
    return _targets(names, [a.conversation_id for a in ours]), info


def _appenders(names: list[str]) -> dict[str, list[str]]:
    """The contenders appending to each store, in order: each gets a session of its own."""
    return {s: [n for n in names if CONTENDERS[n][0] == s] for s in ("chatstore", "sdk")}


def _sdk_session_id(index: int) -> str:
    return f"bench-agents-{index}"


def _targets(names: list[str], conversations: list[int]) -> Targets:
    """Session 0 of each store is read; sessions 1.. are the append targets."""
    append: dict[str, str] = {}
    for store, members in _appenders(names).items():
        for i, name in enumerate(members, start=1):
            append[name] = str(conversations[i]) if store == "chatstore" else _sdk_session_id(i)
    return Targets(conversations[0], _sdk_session_id(0), append)


def _flat(turns: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for turn in turns for item in turn]


# --- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    repeats: int = 3
    per_repeat: int = 150  # timed calls per contender, operation and repeat
    warmup: int = 60  # > POOL_SIZE x psycopg's prepare_threshold (5)
    block: int = 10


def _worker(
    name: str, dsn: str, targets: dict[str, Any], cpu: int | None, pipe: Connection
) -> None:
    pin_self(cpu)
    try:
        contender = make(name)
        runner = Runner(contender)  # type: ignore[arg-type]
        runner.call(contender.setup(dsn, Targets(**targets)))
        ops = contender.operations()
    except Exception as exc:
        traceback.print_exc()
        pipe.send(("unavailable", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
        return
    pipe.send(("ready", {"description": contender.description}))
    while True:
        message = pipe.recv()
        if message[0] == "stop":
            runner.call(contender.close())
            pipe.send(("stopped",))
            return
        _, op, n = message
        try:
            pipe.send(("ok", runner.block(ops[op], n)))
        except Exception as exc:
            traceback.print_exc()
            pipe.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))


@dataclass
class _Handle:
    name: str
    app: str
    process: Any
    pipe: Connection

    def ask(self, message: tuple[Any, ...]) -> tuple[Any, ...]:
        self.pipe.send(message)
        reply: tuple[Any, ...] = self.pipe.recv()
        if reply[0] not in ("ok", "stopped"):
            raise RuntimeError(f"{self.name}: {reply[1]}")
        return reply


@contextmanager
def _workers(
    names: list[str], dsn: str, targets: Targets, cpu: int | None
) -> Iterator[tuple[list[_Handle], dict[str, str]]]:
    ctx = mp.get_context("spawn")
    handles: list[_Handle] = []
    info: dict[str, str] = {}
    try:
        for name in names:
            app = f"bench_agents_{name}"
            ours, theirs = ctx.Pipe()
            process = ctx.Process(
                target=_worker,
                name=app,
                daemon=True,
                args=(
                    name,
                    with_database(dsn, DATABASE, application_name=app),
                    asdict(targets),
                    cpu,
                    theirs,
                ),
            )
            process.start()
            handles.append(_Handle(name, app, process, ours))
        for h in handles:
            reply = h.pipe.recv()
            if reply[0] != "ready":
                raise RuntimeError(f"{h.name} unavailable: {reply[1]}")
            info[h.name] = reply[1]["description"]
        yield handles, info
    finally:
        for h in handles:
            if h.process.is_alive():
                with suppress(OSError, EOFError, RuntimeError):
                    h.ask(("stop",))
            h.process.join(timeout=10)
            if h.process.is_alive():
                h.process.kill()


def _measure(
    handles: list[_Handle], op: str, budget: Budget, pinner: BackendPinner
) -> dict[str, Any]:
    """Samples (ns) per contender and repeat, and block medians per round."""
    samples: dict[str, list[list[int]]] = {h.name: [] for h in handles}
    blocks: dict[str, dict[tuple[int, int], float]] = {h.name: {} for h in handles}
    for repeat in range(budget.repeats):
        for h in handles:
            pinner.pin(h.app)
            h.ask(("run", op, budget.warmup))
            pinner.pin(h.app)  # backends a lazy pool opened during the warm-up
            samples[h.name].append([])
        rounds = -(-budget.per_repeat // budget.block)
        for r in range(rounds):
            shift = (r + repeat) % len(handles)
            for h in handles[shift:] + handles[:shift]:
                pinner.pin(h.app)
                reply = h.ask(("run", op, budget.block))
                samples[h.name][repeat].extend(reply[1])
                blocks[h.name][(repeat, r)] = statistics.median(reply[1])
    return {"samples": samples, "blocks": blocks}


def _quantile(ordered: list[int], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] / 1e6


def _summaries(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    samples, blocks = raw["samples"], raw["blocks"]
    out: dict[str, dict[str, Any]] = {}
    for name, repeats in samples.items():
        ordered = sorted(v for rep in repeats for v in rep)
        out[name] = {
            "n": len(ordered),
            "median_ms": statistics.median(ordered) / 1e6,
            "p10_ms": _quantile(ordered, 0.10),
            "p90_ms": _quantile(ordered, 0.90),
            "p99_ms": _quantile(ordered, 0.99),
            "repeat_medians_ms": [statistics.median(rep) / 1e6 for rep in repeats],
        }
    base = out.get(BASELINE)
    if base is None:
        return out
    for name, cell in out.items():
        cell["ratio"] = cell["median_ms"] / base["median_ms"]
        cell["repeat_ratios"] = [
            a / b for a, b in zip(cell["repeat_medians_ms"], base["repeat_medians_ms"], strict=True)
        ]
        pairs = [v / blocks[BASELINE][k] for k, v in blocks[name].items() if k in blocks[BASELINE]]
        cell["paired_ratio"] = statistics.median(pairs)
    return out


def run(
    admin_dsn: str,
    *,
    names: list[str] | None = None,
    budget: Budget | None = None,
    placement: str = "same-cpu",
    log: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
) -> dict[str, Any]:
    """Load, measure, summarise; the dict ``python -m bench`` keeps in results.json."""
    names = names or list(CONTENDERS)
    if BASELINE not in names:
        names = [BASELINE, *names]
    budget = budget or Budget()
    pinned = placement == "same-cpu" and cpu_count() > 1
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = time.perf_counter()
    dsn = recreate_database(admin_dsn, DATABASE)
    targets, items = load(dsn, names)
    log(f"agents sessions: loaded in {time.perf_counter() - t0:.1f} s")
    previous = os.sched_getaffinity(0)
    pin_self(ORCHESTRATOR_CPU if pinned else None)
    result: dict[str, Any] = {
        "started": started,
        "placement": "same-cpu" if pinned else "unpinned",
        "budget": asdict(budget),
        "items": items,
        "load_average_before": os.getloadavg(),
        "operations": {},
    }
    try:
        with psycopg.connect(dsn, autocommit=True) as admin:
            pinner = BackendPinner(
                admin if pinned and is_local(dsn) else None, CLIENT_CPU if pinned else None
            )
            with _workers(names, dsn, targets, CLIENT_CPU if pinned else None) as (handles, info):
                result["contenders"] = info
                for op in OPERATIONS:
                    t1 = time.perf_counter()
                    result["operations"][op] = _summaries(_measure(handles, op, budget, pinner))
                    cells = result["operations"][op]
                    log(
                        f"  {op:9s} {time.perf_counter() - t1:5.1f}s  "
                        + "  ".join(
                            f"{k}={v['median_ms']:.3f}({v.get('ratio', 0):.2f}x)"
                            for k, v in cells.items()
                        )
                    )
    finally:
        os.sched_setaffinity(0, previous)
    result["load_average_after"] = os.getloadavg()
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


# --- report -------------------------------------------------------------------------------


def markdown(result: dict[str, Any], *, heading: str = "##") -> list[str]:
    """The section of docs/benchmarks.md (also what ``python -m bench.agents_sessions``
    prints)."""
    b, it = result["budget"], result["items"]
    before, after = result["load_average_before"], result["load_average_after"]
    kinds = ", ".join(f"{k} {v:.0%}" for k, v in it["kinds"].items())
    lines = [
        f"{heading} Agent sessions: ChatstoreSession against the Agents SDK's SQLAlchemySession",
        "",
        f"Run {result['started']}, {result['seconds']} s; placement {result['placement']}"
        + (
            " (every measuring process and its pool's backends on vCPU 0, the orchestrator "
            "on vCPU 1)"
            if result["placement"] == "same-cpu"
            else ""
        )
        + f"; machine load average {before[0]:.1f} before, {after[0]:.1f} after. "
        f"{b['repeats']} repeats of {b['per_repeat']} timed calls per contender and operation "
        f"(after {b['warmup']} warm-up calls each), in blocks of {b['block']} interleaved "
        "round by round in a rotating order. Appends are durable commits.",
        "",
        f"Data: {it['sessions_per_store']} sessions of {SESSION_ITEMS:,} items per store, loaded "
        f"turn by turn round-robin, the same items in both; items {kinds}; JSON size median "
        f"{it['item_json_bytes']['median']:,} B, p90 {it['item_json_bytes']['p90']:,} B, max "
        f"{it['item_json_bytes']['max']:,} B; the last 50 items {it['last50_json_bytes']:,} B; "
        f"the appended turn {it['turn_json_bytes']:,} B.",
        "",
        "| contender | how |",
        "|---|---|",
    ]
    lines += [f"| {name} | {how} |" for name, how in result["contenders"].items()]
    for op, cells in result["operations"].items():
        lines += [
            "",
            f"**{OPERATIONS[op]}** (ratio: the contender's median over chatstore's; paired: "
            "median over rounds of the ratio of block medians in the same round):",
            "",
            "| contender | median ms | p10-p90 ms | p99 ms | median per repeat ms | "
            "ratio | paired | ratio per repeat | n |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, c in cells.items():
            lines.append(
                f"| {name} | {c['median_ms']:.3f} | {c['p10_ms']:.3f}-{c['p90_ms']:.3f} | "
                f"{c['p99_ms']:.3f} | "
                + ", ".join(f"{v:.3f}" for v in c["repeat_medians_ms"])
                + f" | {c['ratio']:.2f}x | {c['paired_ratio']:.2f}x | "
                + ", ".join(f"{v:.2f}" for v in c["repeat_ratios"])
                + f" | {c['n']} |"
            )
    lines += [
        "",
        f"Target (issue 10): the SDK's SQLAlchemySession at least {TARGET:g}x chatstore's time "
        "on both operations (ratio of medians, paired ratio in brackets). The last columns "
        "divide the SDK's median by the floor's: the most any implementation could reach.",
        "",
        "| operation | "
        + " | ".join(SDK_ROWS)
        + " | met | "
        + " | ".join(f"{n} / floor" for n in SDK_ROWS)
        + " |",
        "|---|" + "---:|" * len(SDK_ROWS) + "---|" + "---:|" * len(SDK_ROWS),
    ]
    for op, cells in result["operations"].items():
        present = [cells[n] for n in SDK_ROWS if n in cells]
        met = bool(present) and all(c["ratio"] >= TARGET for c in present)
        lines.append(
            f"| {op} | "
            + " | ".join(
                f"{cells[n]['ratio']:.2f}x ({cells[n]['paired_ratio']:.2f}x)" if n in cells else "-"
                for n in SDK_ROWS
            )
            + f" | {'yes' if met else '**no**'} | "
            + " | ".join(
                f"{cells[n]['median_ms'] / cells['floor']['median_ms']:.2f}x"
                if n in cells and "floor" in cells
                else "-"
                for n in SDK_ROWS
            )
            + " |"
        )
    return [*lines, ""]


# --- command line -------------------------------------------------------------------------


def _profile(admin_dsn: str, name: str, op: str, iterations: int, reuse: bool) -> None:
    from pyinstrument import Profiler

    if reuse:  # the database a previous run of this module left
        dsn = with_database(admin_dsn, DATABASE)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "SELECT id FROM conversations WHERE user_id = %s ORDER BY id", (USER_ID,)
            ).fetchall()
        targets = _targets([name], [row[0] for row in rows])
    else:
        dsn = recreate_database(admin_dsn, DATABASE)
        targets, _ = load(dsn, [name])
    contender = make(name)
    runner = Runner(contender)  # type: ignore[arg-type]
    runner.call(contender.setup(dsn, targets))
    operation = contender.operations()[op]
    runner.block(operation, 60)
    profiler = Profiler(interval=0.0001, async_mode="disabled")
    profiler.start()
    runner.block(operation, iterations)
    profiler.stop()
    runner.call(contender.close())
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.agents_sessions", description=__doc__)
    p.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=list(CONTENDERS))
    p.add_argument("--repeats", type=int, default=Budget.repeats)
    p.add_argument("--per-repeat", type=int, default=Budget.per_repeat)
    p.add_argument("--placement", choices=["same-cpu", "unpinned"], default="same-cpu")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--profile", nargs=2, metavar=("CONTENDER", "OPERATION"), help="profile instead")
    p.add_argument("--iterations", type=int, default=500, help="with --profile")
    p.add_argument(
        "--reuse", action="store_true", help="with --profile: the database of a previous run"
    )
    args = p.parse_args(argv)
    with server_dsn() as admin:
        if args.profile:
            name, op = args.profile
            if name not in CONTENDERS or op not in OPERATIONS:
                p.error(f"--profile takes one of {list(CONTENDERS)} and one of {list(OPERATIONS)}")
            _profile(admin, name, op, args.iterations, args.reuse)
            return 0
        budget = Budget(repeats=args.repeats, per_repeat=args.per_repeat)
        result = run(admin, names=args.contenders, budget=budget, placement=args.placement)
        result["machine"] = machine.machine()
        result["server"] = machine.server(with_database(admin, DATABASE))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    m, s = result["machine"], result["server"]
    print(
        f"Machine: {m['cpu_model']}, {m['vcpus']} vCPUs, {m['memory_gib']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}; server {s['version'].split(' on ')[0]}, "
        f"synchronous_commit={s['synchronous_commit']}, fsync={s['fsync']}, "
        f"shared_buffers={s['shared_buffers']}, jit={s['jit']}; "
        + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v != "not installed")
        + "\n"
    )
    print("\n".join(markdown(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
