"""chatstore.pydantic_ai: Pydantic AI message histories on agent items, on a real database,
with agents driven offline by FunctionModel (no network, no API key)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import psycopg
import pytest
from pydantic_ai import Agent, RunContext
from pydantic_ai.messages import (
    ImageUrl,
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from chatstore import aio
from chatstore.errors import InvalidInput, NotFound
from chatstore.pydantic_ai import load_history, save_messages

AsyncConn = psycopg.AsyncConnection[Any]


@pytest.fixture
async def aconn(db_dsn: str) -> AsyncIterator[AsyncConn]:
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as c:
        yield c


@pytest.fixture
async def convo(aconn: AsyncConn) -> int:
    """A conversation of user "ann"; user "bob" exists too."""
    await aio.create_user(aconn, id="ann", email="ann@example.com")
    await aio.create_user(aconn, id="bob", email="bob@example.com")
    return (await aio.create_conversation(aconn, user_id="ann")).id


def dump(messages: Sequence[ModelMessage]) -> list[Any]:
    """Messages as stored: equal dumps, equal histories."""
    dumped: list[Any] = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
    return dumped


def counts(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM agent_items), (SELECT count(*) FROM messages)"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


# --- an agent over two requests -------------------------------------------------------------


class Key(TypedDict):
    user_id: str
    conversation_id: int


@dataclass
class Deps:
    conn: AsyncConn
    user_id: str


class Script:
    """The model: asks for add_task with the title the user gave, then reports the task;
    keeps, as JSON, every history it was sent."""

    def __init__(self) -> None:
        self.received: list[list[Any]] = []

    def __call__(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        self.received.append(dump(messages))
        last = messages[-1]
        returns = [p for p in last.parts if isinstance(p, ToolReturnPart)]
        if returns:
            task: Any = returns[0].content
            return ModelResponse(parts=[TextPart(f"Added task {task['id']}: {task['title']}.")])
        prompt = next(p.content for p in last.parts if isinstance(p, UserPromptPart))
        assert isinstance(prompt, str)
        title = prompt.removeprefix("Remind me to ")
        return ModelResponse(
            parts=[
                ThinkingPart("The user wants a task."),
                ToolCallPart("add_task", {"title": title}),
            ]
        )


def task_agent(script: Script) -> Agent[Deps, str]:
    agent = Agent(
        FunctionModel(script),
        deps_type=Deps,
        system_prompt="You keep the user's tasks.",
        instructions="Use add_task.",
    )

    @agent.tool
    async def add_task(ctx: RunContext[Deps], title: str) -> dict[str, Any]:
        task = await aio.add_task(ctx.deps.conn, user_id=ctx.deps.user_id, title=title)
        return {"id": task.id, "title": task.title}

    return agent


async def test_two_requests_share_the_history_stored_in_chatstore(
    aconn: AsyncConn, convo: int
) -> None:
    script = Script()
    agent = task_agent(script)
    deps = Deps(aconn, "ann")
    key: Key = {"user_id": "ann", "conversation_id": convo}

    # Request 1: nothing stored yet.
    history = await load_history(aconn, **key)
    assert history == []
    first = await agent.run("Remind me to buy milk", message_history=history, deps=deps)
    await save_messages(aconn, **key, messages=first.new_messages())
    assert first.output == "Added task 1: buy milk."

    # Request 2 (a new process would do the same): the stored history is request 1's.
    history = await load_history(aconn, **key)
    assert dump(history) == dump(first.all_messages())
    assert len(history) == 4
    script.received.clear()
    second = await agent.run("Remind me to call mom", message_history=history, deps=deps)
    await save_messages(aconn, **key, messages=second.new_messages())

    # The model was sent request 1's messages ahead of the new prompt.
    sent = script.received[0]
    assert sent[:4] == dump(first.all_messages())
    assert sent[4]["parts"][-1]["content"] == "Remind me to call mom"
    assert dump(await load_history(aconn, **key)) == dump(second.all_messages())
    assert len(second.all_messages()) == 8

    tasks = await aio.list_tasks(aconn, user_id="ann")
    assert [t.title for t in tasks] == ["buy milk", "call mom"]
    transcript = await aio.get_messages(aconn, **key)
    assert [(m.role, m.content) for m in transcript] == [
        ("user", "Remind me to buy milk"),
        ("assistant", "Added task 1: buy milk."),
        ("user", "Remind me to call mom"),
        ("assistant", "Added task 2: call mom."),
    ]


# --- the transcript ---------------------------------------------------------------------------


async def test_transcript_holds_the_prompts_and_text_answers_only(
    aconn: AsyncConn, convo: int
) -> None:
    messages: list[ModelMessage] = [
        ModelRequest(
            parts=[
                SystemPromptPart("be brief"),
                UserPromptPart(["What is", ImageUrl("https://example.com/a.png"), " ", "this?"]),
                UserPromptPart("And quickly."),
            ]
        ),
        ModelResponse(
            parts=[ThinkingPart("hmm"), ToolCallPart("look", {"q": 1}, tool_call_id="c1")]
        ),
        ModelRequest(parts=[ToolReturnPart("look", "a cat", tool_call_id="c1")]),
        ModelResponse(parts=[TextPart("A "), ThinkingPart("sure?"), TextPart("cat.")]),
        ModelRequest(parts=[UserPromptPart(" \u200b\n")]),
        ModelResponse(parts=[TextPart("\t")]),
    ]
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)

    transcript = await aio.get_messages(aconn, user_id="ann", conversation_id=convo)
    assert [(m.role, m.content) for m in transcript] == [
        ("user", "What is\n\nthis?\n\nAnd quickly."),
        ("assistant", "A cat."),
    ]
    stored = await load_history(aconn, user_id="ann", conversation_id=convo)
    assert dump(stored) == dump(messages)


async def test_transcript_entry_is_a_display_copy_and_the_item_keeps_the_message(
    aconn: AsyncConn, convo: int
) -> None:
    long = "x" * 40_000
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("a\x00b \ud800")]),
        ModelResponse(parts=[TextPart(long)]),
        ModelResponse(parts=[TextPart("\x00")]),
    ]
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)

    transcript = await aio.get_messages(aconn, user_id="ann", conversation_id=convo)
    assert [(m.role, m.content) for m in transcript] == [
        ("user", "ab \ufffd"),
        ("assistant", "x" * 31_999 + "\u2026"),
    ]
    stored = await load_history(aconn, user_id="ann", conversation_id=convo)
    assert dump(stored) == dump(messages)
    assert stored[0].parts[0].content == "a\x00b \ud800"  # type: ignore[union-attr]
    assert stored[1].parts[0].content == long  # type: ignore[union-attr]


# --- storage ------------------------------------------------------------------------------------


async def test_tool_return_with_unicode_and_nul_comes_back_exactly(
    aconn: AsyncConn, convo: int
) -> None:
    value = {"note": "nul \u0000 é 😀 \u202e rtl \ud83d", "big": 2**70, "ratio": 0.1, "z": None}
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("go")]),
        ModelResponse(parts=[ToolCallPart("fetch", {"k": "\u0000"}, tool_call_id="c1")]),
        ModelRequest(parts=[ToolReturnPart("fetch", value, tool_call_id="c1")]),
    ]
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)

    stored = await load_history(aconn, user_id="ann", conversation_id=convo)
    assert dump(stored) == dump(messages)
    part = stored[2].parts[0]
    assert isinstance(part, ToolReturnPart)
    assert part.content == value
    assert list(part.content) == ["note", "big", "ratio", "z"]
    call = stored[1].parts[0]
    assert isinstance(call, ToolCallPart)
    assert call.args == {"k": "\u0000"}


async def test_another_users_conversation_is_not_found_and_nothing_is_written(
    aconn: AsyncConn, convo: int, conn: psycopg.Connection
) -> None:
    messages: list[ModelMessage] = [ModelRequest(parts=[UserPromptPart("hi")])]
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)
    before = counts(conn)
    with pytest.raises(NotFound):
        await load_history(aconn, user_id="bob", conversation_id=convo)
    with pytest.raises(NotFound):
        await save_messages(aconn, user_id="bob", conversation_id=convo, messages=messages)
    with pytest.raises(NotFound):
        await save_messages(aconn, user_id="ann", conversation_id=convo + 1, messages=messages)
    assert counts(conn) == before
    assert dump(await load_history(aconn, user_id="ann", conversation_id=convo)) == dump(messages)


async def test_a_retried_save_under_its_request_id_stores_nothing_twice(
    aconn: AsyncConn, convo: int, conn: psycopg.Connection
) -> None:
    messages = two_turns()
    await save_messages(
        aconn, user_id="ann", conversation_id=convo, messages=messages, request_id="turn-1"
    )
    before = counts(conn)
    await save_messages(
        aconn, user_id="ann", conversation_id=convo, messages=messages, request_id="turn-1"
    )
    assert counts(conn) == before
    with pytest.raises(InvalidInput, match="request_id"):  # a re-run answered differently
        await save_messages(
            aconn, user_id="ann", conversation_id=convo, messages=messages[:2], request_id="turn-1"
        )
    with pytest.raises(InvalidInput, match="request_id"):
        await save_messages(aconn, user_id="ann", conversation_id=convo, messages=[], request_id="")
    assert counts(conn) == before
    assert dump(await load_history(aconn, user_id="ann", conversation_id=convo)) == dump(messages)


async def test_an_item_that_is_not_a_pydantic_ai_message_is_invalid_input(
    aconn: AsyncConn, convo: int
) -> None:
    await save_messages(
        aconn,
        user_id="ann",
        conversation_id=convo,
        messages=[ModelRequest(parts=[UserPromptPart("hi")])],
    )
    # What an OpenAI Agents SDK session stores.
    await aio.add_agent_items(
        aconn, user_id="ann", conversation_id=convo, items=[{"role": "user", "content": "hi"}]
    )
    with pytest.raises(InvalidInput, match=r"agent item 2 .* not a Pydantic AI message"):
        await load_history(aconn, user_id="ann", conversation_id=convo)


async def test_saving_no_messages_writes_nothing_and_sends_no_sql(
    aconn: AsyncConn, convo: int, conn: psycopg.Connection, db_dsn: str
) -> None:
    before = counts(conn)
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=[])
    assert counts(conn) == before
    closed = await psycopg.AsyncConnection.connect(db_dsn)
    await closed.close()
    await save_messages(closed, user_id="ann", conversation_id=convo, messages=())
    with pytest.raises(InvalidInput):
        await save_messages(closed, user_id="ann", conversation_id=0, messages=[])


class Opaque:
    """A tool return value Pydantic cannot serialise."""


@pytest.mark.parametrize(
    "messages",
    [
        "hello",
        {"kind": "request"},
        [{"kind": "request", "parts": []}],
        [ModelRequest(parts=[UserPromptPart("hi")]), "bye"],
        [ModelRequest(parts=[ToolReturnPart("t", Opaque(), tool_call_id="c")])],
        [ModelRequest(parts=[UserPromptPart("hi")])] * 1001,
    ],
    ids=["str", "dict", "dict-in-list", "str-in-list", "unserialisable", "too-many"],
)
async def test_saving_anything_but_messages_is_invalid_input_and_writes_nothing(
    aconn: AsyncConn, convo: int, conn: psycopg.Connection, messages: Any
) -> None:
    before = counts(conn)
    with pytest.raises(InvalidInput):
        await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)
    assert counts(conn) == before


# --- limit ----------------------------------------------------------------------------------------


def two_turns() -> list[ModelMessage]:
    return [
        ModelRequest(parts=[SystemPromptPart("sys"), UserPromptPart("add milk")]),
        ModelResponse(parts=[ToolCallPart("add_task", {"title": "milk"}, tool_call_id="c1")]),
        ModelRequest(parts=[ToolReturnPart("add_task", {"id": 1}, tool_call_id="c1")]),
        ModelResponse(parts=[TextPart("Added milk.")]),
        ModelRequest(parts=[UserPromptPart("thanks")]),
        ModelResponse(parts=[TextPart("You're welcome.")]),
    ]


@pytest.mark.parametrize(
    ("limit", "first"),
    [(None, 0), (6, 0), (9, 0), (5, 4), (4, 4), (3, 4), (2, 4), (1, 6), (0, 6)],
)
async def test_limit_starts_the_window_at_a_user_turn(
    aconn: AsyncConn, convo: int, limit: int | None, first: int
) -> None:
    messages = two_turns()
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)
    loaded = await load_history(aconn, user_id="ann", conversation_id=convo, limit=limit)
    assert dump(loaded) == dump(messages[first:])


async def test_a_window_never_starts_at_a_request_that_answers_a_tool_call(
    aconn: AsyncConn, convo: int
) -> None:
    # A call the user approved: its result goes out with the user's next prompt.
    messages: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("delete my tasks")]),
        ModelResponse(parts=[ToolCallPart("delete_tasks", {}, tool_call_id="c1")]),
        ModelRequest(
            parts=[
                ToolReturnPart("delete_tasks", "deleted", tool_call_id="c1"),
                UserPromptPart("and now?"),
            ]
        ),
        ModelResponse(parts=[TextPart("All gone.")]),
        ModelRequest(parts=[UserPromptPart("thanks")]),
        ModelResponse(parts=[TextPart("Welcome.")]),
    ]
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)
    loaded = await load_history(aconn, user_id="ann", conversation_id=convo, limit=4)
    assert dump(loaded) == dump(messages[4:])


async def test_a_window_from_the_first_message_is_kept_whole(aconn: AsyncConn, convo: int) -> None:
    # A run with no user prompt: its first request holds the system prompt only.
    messages: list[ModelMessage] = [
        ModelRequest(parts=[SystemPromptPart("greet the user")]),
        ModelResponse(parts=[TextPart("Hello!")]),
        ModelRequest(parts=[UserPromptPart("hi")]),
        ModelResponse(parts=[TextPart("How can I help?")]),
    ]
    await save_messages(aconn, user_id="ann", conversation_id=convo, messages=messages)
    whole = await load_history(aconn, user_id="ann", conversation_id=convo, limit=4)
    assert dump(whole) == dump(messages)
    tail = await load_history(aconn, user_id="ann", conversation_id=convo, limit=3)
    assert dump(tail) == dump(messages[2:])


async def test_a_limited_history_runs_and_the_model_gets_that_window(
    aconn: AsyncConn, convo: int
) -> None:
    script = Script()
    agent = task_agent(script)
    deps = Deps(aconn, "ann")
    key: Key = {"user_id": "ann", "conversation_id": convo}
    for prompt in ("Remind me to buy milk", "Remind me to call mom"):
        history = await load_history(aconn, **key)
        result = await agent.run(prompt, message_history=history, deps=deps)
        await save_messages(aconn, **key, messages=result.new_messages())

    window = await load_history(aconn, **key, limit=5)
    assert dump(window) == dump(result.all_messages()[4:])
    script.received.clear()
    await agent.run("Remind me to read", message_history=window, deps=deps)
    assert script.received[0][:4] == dump(window)
    assert [t.title for t in await aio.list_tasks(aconn, user_id="ann")][-1] == "read"


# --- packaging ------------------------------------------------------------------------------------


def test_import_without_pydantic_ai_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['pydantic_ai'] = None\n"  # as if it were not installed
        "import chatstore.aio\n"
        "import chatstore.pydantic_ai\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        'ImportError: chatstore.pydantic_ai needs Pydantic AI: pip install "chatstore[pydantic-ai]"'
    )
