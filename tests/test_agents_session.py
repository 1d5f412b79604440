"""chatstore.agents.ChatstoreSession: the OpenAI Agents SDK's Session over chatstore.

The SDK's session behaviours (order, limits, pop, clear, isolation), exact round trips
of every kind of item (the SDK hashes stored items to resume a paused run), the
transcript written beside them, concurrency and cancellation, and offline runs of
``Runner.run`` with the SDK's ``ScriptedModel``, on a real PostgreSQL through a
psycopg_pool pool, as a service uses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import psycopg
import pytest
from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message, function_call
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from chatstore import aio, queries
from chatstore import pool as cpool
from chatstore.agents import ChatstoreSession
from chatstore.errors import InvalidInput, NotFound, Unavailable

# No trace leaves the process: no network, no API key.
set_tracing_disabled(True)
OFFLINE = RunConfig(tracing_disabled=True)

Pool = AsyncConnectionPool[Any]


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[Pool]:
    """As chatstore.pool recommends: autocommit connections, checked when taken."""
    async with AsyncConnectionPool(
        db_dsn,
        min_size=1,
        max_size=8,
        timeout=30,
        open=False,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True},
    ) as p:
        await p.wait(timeout=30)
        yield p


@pytest.fixture
def users(conn: psycopg.Connection) -> None:
    for uid in ("alice", "bob"):
        queries.create_user(conn, id=uid, email=f"{uid}@example.com")


@pytest.fixture
async def session(pool: Pool, users: None) -> ChatstoreSession:
    return await ChatstoreSession.start(pool, user_id="alice")


def user(text: str) -> Any:  # Any: the SDK types items as a union of TypedDicts
    return {"role": "user", "content": text}


def answer(*texts: str, item_id: str = "msg_1") -> Any:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [
            {"type": "output_text", "text": t, "annotations": [], "logprobs": []} for t in texts
        ],
    }


def transcript(conn: psycopg.Connection, s: ChatstoreSession) -> list[tuple[str, str]]:
    messages = queries.get_messages(conn, user_id=s.user_id, conversation_id=s.conversation_id)
    return [(m.role, m.content) for m in messages]


def digest(item: Any) -> str:
    """The SDK's fingerprint of a stored item when it resumes a paused run."""
    return hashlib.sha256(json.dumps(item, sort_keys=True).encode("utf-8")).hexdigest()


# --- the protocol and construction -------------------------------------------------------


async def test_a_session_is_the_sdks_session_on_one_conversation(
    pool: Pool, users: None, conn: psycopg.Connection
) -> None:
    s = await ChatstoreSession.start(pool, user_id="alice", title="Groceries")
    assert isinstance(s, Session)
    assert s.session_id == str(s.conversation_id)
    assert (s.user_id, s.session_settings) == ("alice", SessionSettings())
    conversation = queries.get_conversation(
        conn, user_id="alice", conversation_id=s.conversation_id
    )
    assert conversation.title == "Groceries"
    assert await s.get_items() == []

    # A second object on the same conversation sees the same session.
    await s.add_items([user("hello")])
    again = ChatstoreSession(pool, user_id="alice", conversation_id=s.conversation_id)
    assert await again.get_items() == [user("hello")]


async def test_starting_a_session_for_a_missing_user_is_not_found(pool: Pool, users: None) -> None:
    with pytest.raises(NotFound):
        await ChatstoreSession.start(pool, user_id="nobody")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": "alice", "conversation_id": 0},
        {"user_id": "alice", "conversation_id": "1"},
        {"user_id": "alice", "conversation_id": True},
        {"user_id": "al\x00ice", "conversation_id": 1},
        {"user_id": 7, "conversation_id": 1},
    ],
)
async def test_bad_ids_are_invalid_input_at_construction(pool: Pool, kwargs: Any) -> None:
    with pytest.raises(InvalidInput):
        ChatstoreSession(pool, **kwargs)


async def test_a_retried_turn_stores_each_add_once_under_its_request_id(
    pool: Pool, users: None, conn: psycopg.Connection
) -> None:
    """The endpoint's key for a turn keys each add_items call: a retry (a new session
    object, as a new request makes) stores nothing twice, and a call that differs from
    the first attempt's is InvalidInput, nothing stored."""
    first = await ChatstoreSession.start(pool, user_id="alice", request_id="turn-1")
    cid = first.conversation_id
    await first.add_items([user("add milk")])
    await first.add_items([answer("Added milk.")])
    stored = await first.get_items()

    retry = ChatstoreSession(pool, user_id="alice", conversation_id=cid, request_id="turn-1")
    await retry.add_items([user("add milk")])
    await retry.add_items([answer("Added milk.")])
    assert await retry.get_items() == stored == [user("add milk"), answer("Added milk.")]
    assert transcript(conn, retry) == [("user", "add milk"), ("assistant", "Added milk.")]

    rerun = ChatstoreSession(pool, user_id="alice", conversation_id=cid, request_id="turn-1")
    await rerun.add_items([user("add milk")])
    with pytest.raises(InvalidInput, match="request_id"):
        await rerun.add_items([answer("Milk added.")])  # the model answered differently
    assert await rerun.get_items() == stored

    # Another turn's key, or none, stores as usual; more than 1,000 items are keyed per
    # batch and retried whole.
    nxt = ChatstoreSession(pool, user_id="alice", conversation_id=cid, request_id="turn-2")
    await nxt.add_items([user("thanks")])
    many = [user(f"item {i}") for i in range(1_001)]
    await nxt.add_items(many)
    again = ChatstoreSession(pool, user_id="alice", conversation_id=cid, request_id="turn-2")
    await again.add_items([user("thanks")])
    await again.add_items(many)
    assert await again.get_items() == [*stored, user("thanks"), *many]


@pytest.mark.parametrize("key", ["", "a b", "x" * 236, 7])
async def test_a_bad_request_id_is_invalid_input_at_construction(
    pool: Pool, users: None, key: Any
) -> None:
    with pytest.raises(InvalidInput, match="request_id"):
        ChatstoreSession(pool, user_id="alice", conversation_id=1, request_id=key)
    with pytest.raises(InvalidInput, match="request_id"):
        await ChatstoreSession.start(pool, user_id="alice", request_id=key)


async def test_a_pool_of_the_wrong_kind_is_invalid_input(db_dsn: str) -> None:
    sync_pool: ConnectionPool[Any] = ConnectionPool(db_dsn, open=False)
    with pytest.raises(InvalidInput, match="AsyncConnectionPool"):
        ChatstoreSession(sync_pool, user_id="alice", conversation_id=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="AsyncConnectionPool"):
        await ChatstoreSession.start(sync_pool, user_id="alice")  # type: ignore[arg-type]


# --- the SDK's session behaviours --------------------------------------------------------


async def test_items_come_back_in_order_and_pop_until_empty(session: ChatstoreSession) -> None:
    items = [user(f"message {n}") for n in range(5)]
    await session.add_items(items[:2])
    await session.add_items(items[2:])
    assert await session.get_items() == items

    for expected in reversed(items):
        assert await session.pop_item() == expected
    assert await session.pop_item() is None
    assert await session.pop_item() is None
    assert await session.get_items() == []

    # An item added after pops takes the popped one's place.
    await session.add_items([user("again")])
    assert await session.get_items() == [user("again")]


async def test_limit_gives_the_latest_items_oldest_first(session: ChatstoreSession) -> None:
    items = [user(f"message {n}") for n in range(5)]
    await session.add_items(items)
    assert await session.get_items(limit=2) == items[3:]
    assert await session.get_items(limit=1) == items[4:]
    assert await session.get_items(limit=5) == items
    assert await session.get_items(limit=50) == items
    assert await session.get_items(limit=0) == []
    with pytest.raises(InvalidInput):
        await session.get_items(limit=-1)


@pytest.mark.parametrize("settings", [SessionSettings(limit=2), {"limit": 2}])
async def test_the_settings_limit_applies_unless_a_limit_is_given(
    pool: Pool, session: ChatstoreSession, settings: Any
) -> None:
    items = [user(f"message {n}") for n in range(5)]
    await session.add_items(items)
    limited = ChatstoreSession(
        pool, user_id="alice", conversation_id=session.conversation_id, session_settings=settings
    )
    assert limited.session_settings == SessionSettings(limit=2)
    assert await limited.get_items() == items[3:]
    assert await limited.get_items(limit=4) == items[1:]
    assert await limited.get_items(limit=0) == []


async def test_clear_empties_the_session_and_keeps_the_transcript(
    session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    await session.add_items([user("hi"), answer("hello")])
    await session.clear_session()
    assert await session.get_items() == []
    assert await session.pop_item() is None
    await session.clear_session()  # clearing an empty session is fine
    assert transcript(conn, session) == [("user", "hi"), ("assistant", "hello")]

    await session.add_items([user("next")])
    assert await session.get_items() == [user("next")]


async def test_adding_no_items_does_nothing(
    pool: Pool, session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    await session.add_items([])
    assert await session.get_items() == []
    # Not even a round trip: another user's session does not find out it is not theirs.
    await ChatstoreSession(pool, user_id="bob", conversation_id=session.conversation_id).add_items(
        []
    )
    assert transcript(conn, session) == []


async def test_conversations_and_users_are_isolated(
    pool: Pool, session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    other = await ChatstoreSession.start(pool, user_id="alice")
    bobs = await ChatstoreSession.start(pool, user_id="bob")
    await session.add_items([user("alice 1")])
    await other.add_items([user("alice 2")])
    await bobs.add_items([user("bob 1")])
    assert await session.get_items() == [user("alice 1")]
    assert await other.get_items() == [user("alice 2")]
    assert await bobs.get_items() == [user("bob 1")]

    await other.clear_session()
    assert await other.pop_item() is None
    assert await session.get_items() == [user("alice 1")]

    # Bob on Alice's conversation, and anyone on a missing one: NotFound from every method.
    missing = max(session.conversation_id, other.conversation_id, bobs.conversation_id) + 1
    for intruder in (
        ChatstoreSession(pool, user_id="bob", conversation_id=session.conversation_id),
        ChatstoreSession(pool, user_id="carol", conversation_id=session.conversation_id),
        ChatstoreSession(pool, user_id="alice", conversation_id=missing),
    ):
        calls: list[Callable[[], Awaitable[Any]]] = [
            intruder.get_items,
            partial(intruder.get_items, limit=0),
            partial(intruder.get_items, limit=1),
            partial(intruder.add_items, [user("intrusion")]),
            intruder.pop_item,
            intruder.clear_session,
        ]
        for call in calls:
            with pytest.raises(NotFound):
                await call()
    assert await session.get_items() == [user("alice 1")]
    assert transcript(conn, session) == [("user", "alice 1")]


async def test_hostile_and_unicode_text_is_stored_as_given(
    session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    texts = [
        "'; DROP TABLE messages; --",
        "%(user_id)s %s {} $1 \\x00 \\",
        "Ünïcödé — 中文 — العربية — 👩‍👩‍👧 ❤️",
    ]
    await session.add_items([user(t) for t in texts])
    assert await session.get_items() == [user(t) for t in texts]
    assert transcript(conn, session) == [("user", t) for t in texts]
    assert conn.execute("SELECT count(*) FROM messages").fetchone() == (3,)


# --- exact round trips -------------------------------------------------------------------

# Every kind of item a run stores, and values JSON tools tend to change: the SDK
# compares sha256(json.dumps(item, sort_keys=True)) of stored items to resume a run.
ITEMS: list[Any] = [
    {"role": "user", "content": "add milk"},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "see "},
            {
                "type": "input_image",
                "image_url": "data:image/png;base64,iVBORw0K",
                "detail": "auto",
            },
            {"type": "input_text", "text": "this"},
        ],
    },
    {"role": "system", "content": "You are a task assistant."},
    {"role": "developer", "content": "Use the tools."},
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "The user wants a task."}],
        "encrypted_content": "gAAAAABo" + "A" * 500,
    },
    {
        "arguments": '{"title": "milk", "n": 1.50, "due": null}',
        "call_id": "call_1",
        "name": "add_task",
        "type": "function_call",
        "id": "fc_1",
        "status": "completed",
    },
    {"call_id": "call_1", "output": "", "type": "function_call_output"},
    {"call_id": "call_2", "output": "nul \u0000 inside", "type": "function_call_output"},
    answer("Added ", "milk.", item_id="msg_2"),
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "refusal", "refusal": "I can't."}],
        "id": "msg_3",
        "status": "completed",
    },
    {
        "type": "function_call_output",
        "call_id": "call_3",
        "output": {
            "zebra": 1,
            "apple": 2,  # key order kept, not sorted
            "big": 2**70,
            "negative": -(2**70),
            "float": 1.0,
            "tiny": 0.1,
            "huge": 1e300,
            "minus_zero": -0.0,
            "flags": [True, False, None],
            "nested": {
                "emoji": "👍🏽 👩‍👩‍👧",
                "rtl": "שלום",
                "lone": "\ud800 and \udfff",
                "k\u0000": "\u0000",
            },
            "escapes": 'quote " backslash \\ newline \n tab \t',
        },
    },
    {"call_id": "call_4", "output": "x" * 999_000 + "é€😀" * 300, "type": "function_call_output"},
]


async def test_every_kind_of_item_comes_back_exactly(session: ChatstoreSession) -> None:
    await session.add_items(ITEMS)
    got = await session.get_items()
    assert got == ITEMS
    # Same text, key order and number spelling, not only equal values (-0.0 == 0.0).
    assert [json.dumps(i) for i in got] == [json.dumps(i) for i in ITEMS]
    assert [digest(i) for i in got] == [digest(i) for i in ITEMS]
    assert await session.get_items(limit=3) == ITEMS[-3:]
    assert [digest(await session.pop_item()) for _ in ITEMS] == [digest(i) for i in ITEMS[::-1]]


async def test_an_item_too_big_stores_nothing(
    session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    await session.add_items([user("before")])
    too_big: Any = {
        "call_id": "c",
        "output": "x" * (4 * 1024 * 1024 + 1),
        "type": "function_call_output",
    }
    with pytest.raises(InvalidInput):
        await session.add_items([user("lost"), too_big])
    not_json: Any = {"call_id": "c", "output": float("nan"), "type": "function_call_output"}
    with pytest.raises(InvalidInput):
        await session.add_items([user("lost"), not_json])
    assert await session.get_items() == [user("before")]
    assert transcript(conn, session) == [("user", "before")]


async def test_more_than_a_statements_items_are_added_in_one_transaction(
    session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    items = [user(f"m{n}") for n in range(2_345)]
    too_big: Any = {
        "call_id": "c",
        "output": "x" * (4 * 1024 * 1024 + 1),
        "type": "function_call_output",
    }
    with pytest.raises(InvalidInput):  # the third statement fails: the first two roll back
        await session.add_items([*items, too_big])
    assert await session.get_items() == []
    assert transcript(conn, session) == []

    await session.add_items(items)
    assert await session.get_items() == items
    assert transcript(conn, session) == [("user", f"m{n}") for n in range(2_345)]


# --- the transcript ----------------------------------------------------------------------


async def test_the_transcript_holds_what_a_person_reads(
    session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    items = [
        user("Add milk to my list"),
        {
            "arguments": '{"title":"milk"}',
            "call_id": "call_1",
            "name": "add_task",
            "type": "function_call",
            "id": "fc_1",
        },
        {"call_id": "call_1", "output": "task 1 added", "type": "function_call_output"},
        answer("Added milk."),
    ]
    await session.add_items(items)
    assert transcript(conn, session) == [
        ("user", "Add milk to my list"),
        ("assistant", "Added milk."),
    ]
    conversation = queries.get_conversation(
        conn, user_id="alice", conversation_id=session.conversation_id
    )
    assert conversation.title == "Add milk to my list"
    assert await session.get_items() == items


async def test_the_transcript_rules(session: ChatstoreSession, conn: psycopg.Connection) -> None:
    long = "y" * 40_000
    items = [
        *ITEMS,
        {"role": "user", "content": "   \u200b "},  # blank: no entry
        {"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]},
        {"role": "assistant", "content": "an answer given as history"},
        {"type": "message", "role": "user", "content": "a\u0000b \ud800"},
        answer(long),
        answer("part one, ", "part two"),
    ]
    await session.add_items(items)
    assert await session.get_items() == items  # the items keep every character
    assert transcript(conn, session) == [
        ("user", "add milk"),
        ("user", "see this"),  # input_text parts joined, the image is not text
        ("assistant", "Added milk."),  # the refusal, reasoning, tools, system: none
        ("assistant", "an answer given as history"),
        ("user", "ab \ufffd"),  # NUL dropped, a lone surrogate replaced
        ("assistant", "y" * 31_999 + "\N{HORIZONTAL ELLIPSIS}"),  # the message limit
        ("assistant", "part one, part two"),
    ]


# --- concurrency and cancellation --------------------------------------------------------


async def test_concurrent_adds_keep_every_batch_whole(
    session: ChatstoreSession, conn: psycopg.Connection
) -> None:
    batches = [[user(f"batch {b} item {i}") for i in range(4)] for b in range(30)]
    await asyncio.gather(*(session.add_items(batch) for batch in batches))
    got: list[Any] = await session.get_items()
    assert len(got) == 120
    assert sorted(json.dumps(i) for i in got) == sorted(json.dumps(i) for b in batches for i in b)
    for batch in batches:
        start = got.index(batch[0])
        assert got[start : start + 4] == batch
    # The transcript follows the items' order.
    assert transcript(conn, session) == [("user", i["content"]) for i in got]


async def test_concurrent_pops_take_each_item_once(session: ChatstoreSession) -> None:
    items = [user(f"item {n}") for n in range(30)]
    await session.add_items(items)
    popped = await asyncio.gather(*(session.pop_item() for _ in range(40)))
    got = [p for p in popped if p is not None]
    assert sorted(json.dumps(p) for p in got) == sorted(json.dumps(i) for i in items)
    assert popped.count(None) == 10
    assert await session.get_items() == []


async def _wait_for_lock_wait(conn: psycopg.Connection) -> None:
    """Until some backend of this database waits for a lock."""
    for _ in range(500):
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        if row is not None and row[0] > 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no backend waits for a lock")


@pytest.mark.parametrize("write", ["add", "pop", "clear"])
async def test_a_cancelled_write_finishes_before_the_cancellation(
    session: ChatstoreSession, conn: psycopg.Connection, db_dsn: str, write: str
) -> None:
    await session.add_items([user("one"), user("two")])
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "add": lambda: session.add_items([user("three")]),
        "pop": session.pop_item,
        "clear": session.clear_session,
    }
    expected = {
        "add": [user("one"), user("two"), user("three")],
        "pop": [user("one")],
        "clear": [],
    }
    with psycopg.connect(db_dsn) as locker:  # holds the conversation's row lock
        locker.execute(
            "SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (session.conversation_id,)
        )
        task = asyncio.ensure_future(calls[write]())
        await _wait_for_lock_wait(conn)
        task.cancel()
        await asyncio.sleep(0.3)
        assert not task.done()  # the write waits on; no statement cancelled midway
        locker.commit()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await session.get_items() == expected[write]


# --- connections -------------------------------------------------------------------------


async def test_a_pool_without_autocommit_commits_each_call(
    db_dsn: str, users: None, conn: psycopg.Connection
) -> None:
    async with AsyncConnectionPool(db_dsn, min_size=1, max_size=1, open=False) as plain:
        s = await ChatstoreSession.start(plain, user_id="alice")
        await s.add_items([user("hi"), answer("hello")])
        # Committed: another connection sees it.
        assert transcript(conn, s) == [("user", "hi"), ("assistant", "hello")]
        bobs = ChatstoreSession(plain, user_id="bob", conversation_id=s.conversation_id)
        with pytest.raises(NotFound):
            await bobs.add_items([user("intrusion")])
        with pytest.raises(InvalidInput):
            await s.add_items([user("x"), {"output": float("inf")}])  # type: ignore[list-item]
        # The one connection came back clean after each error.
        assert await s.pop_item() == answer("hello")
        await s.add_items([user(f"m{n}") for n in range(1_500)])
        assert len(await s.get_items()) == 1_501
        await s.clear_session()
        async with cpool.connection_async(plain) as c:
            assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert queries.get_agent_items(conn, user_id="alice", conversation_id=s.conversation_id) == []


async def test_a_closed_pool_is_unavailable_from_every_method(
    pool: Pool, session: ChatstoreSession
) -> None:
    await pool.close()
    calls: list[Callable[[], Awaitable[Any]]] = [
        session.get_items,
        lambda: session.add_items([user("x")]),
        session.pop_item,
        session.clear_session,
        lambda: ChatstoreSession.start(pool, user_id="alice"),
    ]
    for call in calls:
        with pytest.raises(Unavailable):
            await call()


def test_without_the_sdk_the_import_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['agents'] = None\n"  # as if openai-agents were not installed
        "import chatstore, chatstore.aio, chatstore.queries, chatstore.pool\n"
        "try:\n"
        "    import chatstore.agents\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert 'pip install "chatstore[agents]"' in out.stdout
    assert out.stderr == ""


# --- the SDK's Runner, offline -----------------------------------------------------------


async def test_runs_remember_across_turns_and_a_restart(
    db_dsn: str, users: None, conn: psycopg.Connection
) -> None:
    # One connection in the pool, which the tool needs too: a session that held a
    # connection across a model or tool call would leave the tool waiting (PoolTimeout).
    async with AsyncConnectionPool(
        db_dsn, min_size=1, max_size=1, timeout=5, open=False, kwargs={"autocommit": True}
    ) as small:

        @function_tool
        async def add_task(title: str) -> str:
            """Add a task to the user's list."""
            async with cpool.connection_async(small) as c:
                task = await aio.add_task(c, user_id="alice", title=title)
            return f"task {task.id} added: {task.title}"

        model = ScriptedModel(
            [
                [function_call("add_task", {"title": "milk"}, call_id="call_1")],
                [assistant_message("Added milk.")],
            ]
        )
        agent = Agent(name="Todo", instructions="Manage tasks.", model=model, tools=[add_task])
        s = await ChatstoreSession.start(small, user_id="alice")

        result = await Runner.run(agent, "add milk", session=s, run_config=OFFLINE)
        assert result.final_output == "Added milk."
        first_run: list[Any] = await s.get_items()
        assert [(i.get("type"), i.get("role")) for i in first_run] == [
            (None, "user"),
            ("function_call", None),
            ("function_call_output", None),
            ("message", "assistant"),
        ]
        assert first_run[2]["output"].startswith("task 1 added: milk")
        assert [t.title for t in queries.list_tasks(conn, user_id="alice")] == ["milk"]

        model.enqueue([assistant_message("You added milk.", item_id="msg_2")])
        result = await Runner.run(agent, "what did I add?", session=s, run_config=OFFLINE)
        assert result.final_output == "You added milk."
        assert model.last_call is not None
        assert model.last_call.input == [*first_run, user("what did I add?")]
        model.assert_complete()

    # A restart: a new process would have a new pool and a new session object.
    async with AsyncConnectionPool(
        db_dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True}
    ) as fresh:
        again = ChatstoreSession(fresh, user_id="alice", conversation_id=s.conversation_id)
        history = await again.get_items()
        assert history[:4] == first_run
        assert len(history) == 6
        model.enqueue([assistant_message("Milk, earlier.", item_id="msg_3")])
        result = await Runner.run(agent, "remind me", session=again, run_config=OFFLINE)
        assert result.final_output == "Milk, earlier."
        assert model.last_call is not None
        assert model.last_call.input == [*history, user("remind me")]

    assert transcript(conn, s) == [
        ("user", "add milk"),
        ("assistant", "Added milk."),
        ("user", "what did I add?"),
        ("assistant", "You added milk."),
        ("user", "remind me"),
        ("assistant", "Milk, earlier."),
    ]
    assert queries.get_conversation(
        conn, user_id="alice", conversation_id=s.conversation_id
    ).title == ("add milk")


async def test_a_paused_run_resumes_after_a_failed_write_without_rerunning_its_tool(
    db_dsn: str, users: None, conn: psycopg.Connection
) -> None:
    """An approval pauses the run; its resume's session write fails (a lock held past
    lock_timeout); the next resume finds the stored history unchanged, by the SDK's
    hashes of the items chatstore returns, appends the tool's output and goes on."""
    deleted: list[int] = []

    @function_tool(needs_approval=True)
    def delete_task(task_id: int) -> str:
        """Delete a task."""
        deleted.append(task_id)
        return f"deleted {task_id} \u0000 {2**70}"

    model = ScriptedModel(
        [
            [function_call("delete_task", {"task_id": 7}, call_id="call_1")],
            [assistant_message("Deleted.")],
        ]
    )
    agent = Agent(name="Todo", instructions="Manage tasks.", model=model, tools=[delete_task])
    async with AsyncConnectionPool(
        db_dsn,
        min_size=1,
        max_size=2,
        open=False,
        kwargs={"autocommit": True, "options": "-c lock_timeout=300ms"},
    ) as p:
        s = await ChatstoreSession.start(p, user_id="alice")
        paused = await Runner.run(agent, "delete task 7", session=s, run_config=OFFLINE)
        assert paused.final_output is None
        state = paused.to_state()
        state.approve(state.get_interruptions()[0])

        with psycopg.connect(db_dsn) as locker:
            locker.execute(
                "SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (s.conversation_id,)
            )
            with pytest.raises(Unavailable):  # TimedOut: chatstore's error, not psycopg's
                await Runner.run(agent, state, session=s, run_config=OFFLINE)
        assert deleted == [7]
        assert len(await s.get_items()) == 2  # user input and the call: the output is not in

        restarted = ChatstoreSession(p, user_id="alice", conversation_id=s.conversation_id)
        result = await Runner.run(agent, state, session=restarted, run_config=OFFLINE)
        assert result.final_output == "Deleted."
        assert deleted == [7]  # the tool ran once
        items: list[Any] = await restarted.get_items()
        assert [i.get("type") for i in items] == [
            None,
            "function_call",
            "function_call_output",
            "message",
        ]
        assert items[2]["output"] == f"deleted 7 \u0000 {2**70}"
    assert transcript(conn, s) == [("user", "delete task 7"), ("assistant", "Deleted.")]
