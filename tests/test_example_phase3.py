"""The Phase III chat service (examples/phase3_chat), offline, on a real database.

Each test serves the app on its own migrated database through httpx's ASGI transport,
with the lifespan run explicitly, and a scripted model (``agents.testing.ScriptedModel``)
in place of OpenAI: no network. What the tools and the session did is read back through
chatstore itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from agents import Model, set_tracing_disabled
from agents.items import TResponseOutputItem
from agents.testing import ModelCall, ModelStep, ScriptedModel, assistant_message, function_call
from fastapi import FastAPI
from mcp import Client
from psycopg_pool import AsyncConnectionPool

from chatstore import queries
from chatstore.migrations import SchemaMismatch
from examples.phase3_chat.app import create_app
from examples.phase3_chat.demo_model import DemoModel
from examples.phase3_chat.mcp_server import create_mcp_server
from tests._helpers import snapshot

set_tracing_disabled(True)  # traces would go to OpenAI


# --- helpers -----------------------------------------------------------------------------


def say(text: str) -> list[TResponseOutputItem]:
    return [assistant_message(text, item_id=f"msg_{abs(hash(text))}")]


def call(name: str, call_id: str, **arguments: Any) -> list[TResponseOutputItem]:
    return [function_call(name, arguments, call_id=call_id)]


def last_tool_output(model_call: ModelCall) -> Any:
    """The JSON output of the newest tool call the model is shown."""
    outputs = [i for i in model_call.input if i.get("type") == "function_call_output"]
    return json.loads(outputs[-1]["output"])


def then(build: Callable[[Any], list[TResponseOutputItem]]) -> ModelStep:
    """A model step built from the output of the tool the previous step called."""
    return ModelStep.respond(lambda model_call: build(last_tool_output(model_call)))


def shown(model_call: ModelCall) -> list[tuple[str, str]]:
    """What the model is shown, as (kind, text) pairs."""
    pairs = []
    for item in model_call.input:
        kind = item.get("type", "message")
        if kind == "message":
            content = item["content"]
            text = content if isinstance(content, str) else content[0]["text"]
            pairs.append((item["role"], text))
        elif kind == "function_call":
            pairs.append(("call", item["name"]))
        elif kind == "function_call_output":
            pairs.append(("output", item["output"]))
    return pairs


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (pool open) and a client that talks to it in-process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://phase3.test"
        ) as client,
    ):
        yield client


@asynccontextmanager
async def service(db_dsn: str, model: Model) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(db_dsn, model=model)) as client:
        yield client


async def chat(
    client: httpx.AsyncClient, user_id: str, message: str, conversation_id: int | None = None
) -> dict[str, Any]:
    response = await client.post(
        f"/api/{user_id}/chat", json={"conversation_id": conversation_id, "message": message}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def tasks(conn: psycopg.Connection, user_id: str) -> list[tuple[str, bool]]:
    return [(t.title, t.completed) for t in queries.list_tasks(conn, user_id=user_id)]


# --- the chat turn -----------------------------------------------------------------------


async def test_a_turn_whose_tool_calls_change_the_users_tasks(
    db_dsn: str, conn: psycopg.Connection
) -> None:
    model = ScriptedModel(
        [
            call("add_task", "c1", title="buy milk", description=None),
            then(lambda added: call("complete_task", "c2", task_id=added["task_id"])),
            say("Added buy milk and marked it done."),
        ]
    )
    async with service(db_dsn, model) as client:
        body = await chat(client, "alice", "add buy milk, it's already done")

    model.assert_complete()
    assert tasks(conn, "alice") == [("buy milk", True)]
    task_id = queries.list_tasks(conn, user_id="alice")[0].id
    assert body["response"] == "Added buy milk and marked it done."
    assert body["tool_calls"] == [
        {
            "name": "add_task",
            "arguments": {"title": "buy milk", "description": None},
            "result": {"task_id": task_id, "status": "created", "title": "buy milk"},
        },
        {
            "name": "complete_task",
            "arguments": {"task_id": task_id},
            "result": {"task_id": task_id, "status": "completed", "title": "buy milk"},
        },
    ]
    conversation = queries.get_conversation(
        conn, user_id="alice", conversation_id=body["conversation_id"]
    )
    assert conversation.title == "add buy milk, it's already done"


async def test_the_next_request_continues_from_the_stored_history(db_dsn: str) -> None:
    model = ScriptedModel(
        [
            call("add_task", "c1", title="buy milk", description=None),
            say("Added buy milk."),
            say("You asked me to add buy milk."),
        ]
    )
    async with service(db_dsn, model) as client:
        first = await chat(client, "alice", "add buy milk")
        second = await chat(client, "alice", "what did I ask?", first["conversation_id"])

    assert second["conversation_id"] == first["conversation_id"]
    assert second["tool_calls"] == []
    history = shown(model.calls[-1])
    assert history[:3] == [
        ("user", "add buy milk"),
        ("call", "add_task"),
        ("output", history[2][1]),
    ]
    assert json.loads(history[2][1])["title"] == "buy milk"
    assert history[3:] == [("assistant", "Added buy milk."), ("user", "what did I ask?")]


async def test_a_restarted_service_continues_the_same_conversation(db_dsn: str) -> None:
    async with service(db_dsn, ScriptedModel([say("Hello, Alice.")])) as client:
        first = await chat(client, "alice", "hi, I am Alice")

    # A new app instance: a new pool, a new agent, nothing shared with the first but the
    # database.
    model = ScriptedModel([say("You are Alice.")])
    async with service(db_dsn, model) as client:
        second = await chat(client, "alice", "who am I?", first["conversation_id"])

    assert second == {
        "conversation_id": first["conversation_id"],
        "response": "You are Alice.",
        "tool_calls": [],
    }
    assert model.first_call is not None
    assert shown(model.first_call) == [
        ("user", "hi, I am Alice"),
        ("assistant", "Hello, Alice."),
        ("user", "who am I?"),
    ]


async def test_a_tools_errors_go_back_to_the_model_and_the_turn_succeeds(
    db_dsn: str, conn: psycopg.Connection
) -> None:
    model = ScriptedModel(
        [
            call("complete_task", "c1", task_id=424242),
            call("add_task", "c2", title="   ", description=None),
            [function_call("add_task", "{}", call_id="c3")],  # arguments that miss the schema
            say("Sorry, none of that worked."),
        ]
    )
    async with service(db_dsn, model) as client:
        body = await chat(client, "alice", "complete task 424242, then add a blank one")

    assert body["response"] == "Sorry, none of that worked."
    missing, blank, malformed = (c["result"] for c in body["tool_calls"])
    assert missing == {"error": "no such task for this user"}
    assert blank == {"error": "title must not be blank"}
    assert "add_task" in malformed["error"]
    assert tasks(conn, "alice") == []


# --- isolation ---------------------------------------------------------------------------


async def test_two_users_are_isolated(db_dsn: str, conn: psycopg.Connection) -> None:
    alice_model = ScriptedModel(
        [call("add_task", "a1", title="alice's task", description=None), say("Added.")]
    )
    async with service(db_dsn, alice_model) as client:
        alices = await chat(client, "alice", "add alice's task")
    alices_task = queries.list_tasks(conn, user_id="alice")[0].id

    bob_model = ScriptedModel(
        [
            call("list_tasks", "b1", status="all"),
            then(lambda listed: call("complete_task", "b2", task_id=alices_task)),
            then(lambda output: say(f"Listed; completing said {output}.")),
        ]
    )
    async with service(db_dsn, bob_model) as client:
        before = snapshot(conn)
        intruding = await client.post(
            "/api/bob/chat",
            json={"conversation_id": alices["conversation_id"], "message": "hello"},
        )
        assert intruding.status_code == 404
        assert snapshot(conn) == before  # not even bob was created
        reading = await client.get(f"/api/bob/conversations/{alices['conversation_id']}/messages")
        assert reading.status_code == 404

        bobs = await chat(client, "bob", "show my tasks, then complete alice's")

    assert bobs["conversation_id"] != alices["conversation_id"]
    listed, completing = bobs["tool_calls"]
    assert listed["result"] == []  # bob's tools see bob's tasks only
    assert completing["result"] == {"error": "no such task for this user"}
    assert tasks(conn, "alice") == [("alice's task", False)]
    assert [c.id for c in queries.list_conversations(conn, user_id="bob").items] == [
        bobs["conversation_id"]
    ]


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "body", "status"),
    [
        pytest.param("alice", {"message": ""}, 422, id="empty"),
        pytest.param("alice", {"message": " \t\n"}, 422, id="blank"),
        pytest.param("alice", {"message": "\u200b\u2060"}, 422, id="invisible-only"),
        pytest.param("alice", {"message": "x" * 32_001}, 422, id="too-long"),
        pytest.param("alice", {"message": "a\x00b"}, 422, id="nul"),
        pytest.param("alice", {}, 422, id="no-message"),
        pytest.param("alice", {"message": 7}, 422, id="not-a-string"),
        pytest.param("alice", {"message": "hi", "conversation_id": 0}, 422, id="id-zero"),
        pytest.param("alice", {"message": "hi", "conversation_id": 2**63}, 422, id="id-huge"),
        pytest.param("alice", {"message": "hi", "conversation_id": 99999}, 404, id="unknown"),
        pytest.param("bob", {"message": "hi", "conversation_id": "ALICES"}, 404, id="others"),
        pytest.param("carol", {"message": " ", "conversation_id": None}, 422, id="blank-new"),
        pytest.param("no one", {"message": "hi"}, 422, id="bad-new-user-id"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    db_dsn: str, conn: psycopg.Connection, user_id: str, body: dict[str, Any], status: int
) -> None:
    async with service(db_dsn, ScriptedModel([say("Hi.")])) as client:
        alices = await chat(client, "alice", "hi")
    if body.get("conversation_id") == "ALICES":
        body = {**body, "conversation_id": alices["conversation_id"]}

    model = ScriptedModel([])  # any model call fails the request
    async with service(db_dsn, model) as client:
        before = snapshot(conn)
        response = await client.post(f"/api/{user_id}/chat", json=body)
        assert snapshot(conn) == before

    assert response.status_code == status, response.text
    assert model.calls == ()


# --- reading conversations ---------------------------------------------------------------


async def test_conversations_are_listed_in_pages_most_recent_first(db_dsn: str) -> None:
    model = ScriptedModel([say("One."), say("Two."), say("Three."), say("One again.")])
    async with service(db_dsn, model) as client:
        one = await chat(client, "alice", "first")
        two = await chat(client, "alice", "second")
        three = await chat(client, "alice", "third")
        await chat(client, "alice", "first, again", one["conversation_id"])

        page = (await client.get("/api/alice/conversations", params={"limit": 2})).json()
        rest = (
            await client.get(
                "/api/alice/conversations", params={"limit": 2, "cursor": page["next_cursor"]}
            )
        ).json()
        too_big = await client.get("/api/alice/conversations", params={"limit": 101})
        bad_cursor = await client.get("/api/alice/conversations", params={"cursor": "nope"})

    ids = [c["conversation_id"] for c in (one, three, two)]
    assert [c["id"] for c in page["items"]] == ids[:2]
    assert page["next_cursor"] is not None
    assert [c["id"] for c in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None
    assert page["items"][0]["title"] == "first"
    assert page["items"][0]["message_count"] == 4
    assert (too_big.status_code, bad_cursor.status_code) == (422, 422)


async def test_messages_show_what_the_user_and_the_assistant_said(
    db_dsn: str, conn: psycopg.Connection
) -> None:
    model = ScriptedModel(
        [
            call("add_task", "c1", title="buy milk", description=None),
            say("Added buy milk."),
            say("Anything else?"),
        ]
    )
    async with service(db_dsn, model) as client:
        first = await chat(client, "alice", "add buy milk")
        cid = first["conversation_id"]
        await chat(client, "alice", "thanks", cid)
        everything = (await client.get(f"/api/alice/conversations/{cid}/messages")).json()
        last = (
            await client.get(f"/api/alice/conversations/{cid}/messages", params={"limit": 1})
        ).json()
        earlier = (
            await client.get(
                f"/api/alice/conversations/{cid}/messages", params={"limit": 2, "before": 3}
            )
        ).json()

    said = [("user", "add buy milk"), ("assistant", "Added buy milk.")]
    said += [("user", "thanks"), ("assistant", "Anything else?")]
    assert [(m["role"], m["content"]) for m in everything] == said
    assert [m["seq"] for m in everything] == [1, 2, 3, 4]
    assert [(m["role"], m["content"]) for m in last] == said[3:]
    assert [(m["role"], m["content"]) for m in earlier] == said[:2]
    # The tool call and its output are kept, as agent items, not as messages.
    items = queries.get_agent_items(conn, user_id="alice", conversation_id=cid)
    assert [i.item.get("type", "message") for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]


# --- the service's edges -----------------------------------------------------------------


async def test_an_unavailable_database_is_503_with_retry_after(db_dsn: str) -> None:
    app = create_app(db_dsn, model=ScriptedModel([]))
    async with serving(app) as client:
        await app.state.pool.close()  # as if the server were unreachable
        listing = await client.get("/api/alice/conversations")
        chatting = await client.post("/api/alice/chat", json={"message": "hi"})

    for response in (listing, chatting):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"


async def test_a_database_lost_during_a_tool_call_is_503_not_500(db_dsn: str) -> None:
    model = ScriptedModel([])
    app = create_app(db_dsn, model=model)

    async def lose_the_database(model_call: ModelCall) -> list[TResponseOutputItem]:
        await app.state.pool.close()
        return call("add_task", "c1", title="buy milk", description=None)

    model.enqueue(ModelStep.respond(lose_the_database))
    async with serving(app) as client:
        response = await client.post("/api/alice/chat", json={"message": "add buy milk"})

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"


async def test_the_service_refuses_to_start_on_an_unmigrated_database(empty_db: str) -> None:
    app = create_app(empty_db, model=ScriptedModel([]))
    with pytest.raises(SchemaMismatch, match="pending"):
        async with app.router.lifespan_context(app):
            pass


async def test_the_offline_demo_model_drives_the_real_tools(
    db_dsn: str, conn: psycopg.Connection
) -> None:
    async with service(db_dsn, DemoModel()) as client:
        added = await chat(client, "alice", "add buy milk")
        task_id = added["tool_calls"][0]["result"]["task_id"]
        done = await chat(client, "alice", f"complete {task_id}", added["conversation_id"])
        listed = await chat(client, "alice", "list completed", added["conversation_id"])
        other = await chat(client, "alice", "what is the weather?", added["conversation_id"])

    assert tasks(conn, "alice") == [("buy milk", True)]
    assert "buy milk" in done["response"]
    assert listed["tool_calls"][0]["arguments"] == {"status": "completed"}
    assert f"{task_id}: buy milk" in listed["response"]
    assert other["tool_calls"] == []
    assert "stand-in" in other["response"]


# --- the MCP server ----------------------------------------------------------------------


async def test_the_mcp_server_serves_the_same_tools_per_user(
    db_dsn: str, conn: psycopg.Connection
) -> None:
    for user_id in ("alice", "bob"):
        queries.create_user(conn, id=user_id, email=f"{user_id}@example.com")
    async with (
        AsyncConnectionPool(db_dsn, open=False, kwargs={"autocommit": True}) as pool,
        Client(create_mcp_server(pool)) as client,
    ):
        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        added = await client.call_tool("add_task", {"user_id": "alice", "title": "buy milk"})
        alices = await client.call_tool("list_tasks", {"user_id": "alice"})
        bobs = await client.call_tool("list_tasks", {"user_id": "bob", "status": "all"})
        task_id = added.structured_content["task_id"] if added.structured_content else None
        intrusion = await client.call_tool("delete_task", {"user_id": "bob", "task_id": task_id})
        blank = await client.call_tool("add_task", {"user_id": "alice", "title": "  "})

    assert names == ["add_task", "complete_task", "delete_task", "list_tasks", "update_task"]
    assert added.structured_content == {
        "task_id": task_id,
        "status": "created",
        "title": "buy milk",
    }
    assert alices.structured_content == {
        "result": [{"id": task_id, "title": "buy milk", "description": None, "completed": False}]
    }
    assert bobs.structured_content == {"result": []}
    assert intrusion.is_error
    assert "no such task" in str(intrusion.content)
    assert blank.is_error
    assert "blank" in str(blank.content)
    assert tasks(conn, "alice") == [("buy milk", False)]


# --- the README ----------------------------------------------------------------------------


def test_the_readmes_service_snippet_is_the_examples_own_code() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    after = readme.split("A FastAPI-style service keeps one `AsyncConnectionPool`", 1)[1]
    snippet = after.split("```python\n", 1)[1].split("```", 1)[0]
    source = {
        line.strip()
        for module in ("app.py", "chat.py")
        for line in (root / "examples" / "phase3_chat" / module).read_text().splitlines()
    }
    code = [line.strip() for line in snippet.splitlines() if line.strip()]
    code = [line for line in code if not line.startswith("#")]  # the snippet's captions
    assert len(code) >= 10
    assert [line for line in code if line not in source] == []
