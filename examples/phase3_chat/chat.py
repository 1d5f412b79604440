"""``POST /api/{user_id}/chat``: one stateless turn of the todo agent.

Nothing of a conversation lives in the process. Each request builds a
:class:`chatstore.agents.ChatstoreSession` for (user, conversation); ``Runner.run``
loads the history from it, runs the model and the tools, and saves the turn's items
(the user's message, tool calls and results, the answer) back to it. The session takes
a connection from the pool for each read or write, so none is held while the model
thinks; any instance of the service can take the next request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from agents import Runner
from agents.exceptions import AgentsException
from agents.items import RunItem, ToolCallItem, ToolCallOutputItem
from fastapi import APIRouter
from openai.types.responses import ResponseFunctionToolCall
from psycopg_pool import AsyncConnectionPool

from chatstore import aio
from chatstore import pool as chatpool
from chatstore.agents import ChatstoreSession
from chatstore.errors import AlreadyExists, ChatstoreError, NotFound
from examples.phase3_chat.agent import ChatContext
from examples.phase3_chat.deps import CurrentUser, Pool, TodoAgent
from examples.phase3_chat.schemas import ChatRequest, ChatResponse, ToolCall
from examples.phase3_chat.tools import CHECKOUT_TIMEOUT

router = APIRouter(prefix="/api/{user_id}", tags=["chat"])


@router.post("/chat")
async def chat(
    body: ChatRequest, user_id: CurrentUser, pool: Pool, agent: TodoAgent
) -> ChatResponse:
    # The message was checked by ChatRequest; the conversation is checked here: both
    # before anything is created or the model runs, so a refused request stores nothing.
    session = await _session(pool, user_id=user_id, conversation_id=body.conversation_id)
    try:
        result = await Runner.run(
            agent, body.message, session=session, context=ChatContext(pool=pool, user_id=user_id)
        )
    except AgentsException as exc:
        # The SDK wraps a tool's exception (the database unavailable mid-turn): answer
        # with chatstore's error (503 and Retry-After), not a 500.
        cause = _chatstore_error(exc)
        if cause is None:
            raise
        raise cause from None
    return ChatResponse(
        conversation_id=session.conversation_id,
        response=str(result.final_output),
        tool_calls=_tool_calls(result.new_items),
    )


async def _session(
    pool: AsyncConnectionPool[Any], *, user_id: str, conversation_id: int | None
) -> ChatstoreSession:
    if conversation_id is None:
        await _ensure_user(pool, user_id)
        return await ChatstoreSession.start(pool, user_id=user_id)
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        # NotFound (404) for a missing conversation or another user's. The SDK's first
        # call, get_items, would refuse it too; checked here so that "a refused request
        # stores nothing" does not rest on the order of the SDK's calls.
        await aio.get_conversation(conn, user_id=user_id, conversation_id=conversation_id)
    return ChatstoreSession(pool, user_id=user_id, conversation_id=conversation_id)


async def _ensure_user(pool: AsyncConnectionPool[Any], user_id: str) -> None:
    """DEMO STAND-IN for sign-up: the first chat of an unknown user creates them.

    A real service creates users when they sign up, with their real e-mail address.
    Here the address is a placeholder made from a hash of the id (e-mails are unique
    whatever their case, ids are not, and an id may hold characters no address may).
    Only a new conversation creates a user: a request refused for any other reason
    leaves none behind.
    """
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        try:
            await aio.get_user(conn, user_id=user_id)
        except NotFound:
            email = f"user-{_digest(user_id)}@example.invalid"
            with suppress(AlreadyExists):  # a concurrent first request created them
                await aio.create_user(conn, id=user_id, email=email)


def _digest(user_id: str) -> str:
    # get_user has refused an id that is not valid text before this runs.
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


def _chatstore_error(exc: BaseException) -> ChatstoreError | None:
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        if isinstance(error, ChatstoreError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _tool_calls(items: Sequence[RunItem]) -> list[ToolCall]:
    """The function tools called in this turn, with their arguments and results."""
    calls: dict[str, ToolCall] = {}
    for item in items:
        if isinstance(item, ToolCallItem) and isinstance(item.raw_item, ResponseFunctionToolCall):
            raw = item.raw_item
            calls[raw.call_id] = ToolCall(name=raw.name, arguments=_json(raw.arguments))
        elif isinstance(item, ToolCallOutputItem) and isinstance(item.raw_item, dict):
            call = calls.get(str(item.raw_item.get("call_id")))
            if call is not None:
                call.result = _json(item.output)
    return list(calls.values())


def _json(value: object) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
