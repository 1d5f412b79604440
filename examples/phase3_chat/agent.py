"""The todo agent: the Phase III spec's instructions and its five task tools.

The tools are the Agents SDK's function tools over :mod:`.tools`. They act for the user
of the run context (:class:`ChatContext`, set by the chat route from the authenticated
user), never for a user the model names: the model sees no ``user_id`` parameter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agents import (
    Agent,
    Model,
    ModelBehaviorError,
    RunContextWrapper,
    default_tool_error_function,
    function_tool,
)
from psycopg_pool import AsyncConnectionPool

from chatstore.errors import ChatstoreError, InvalidInput, NotFound
from examples.phase3_chat import tools

INSTRUCTIONS = """\
You are a friendly assistant that manages the user's todo list through tools.

- When the user asks to add, create or remember something, call add_task.
- When they ask to see, show or list tasks, call list_tasks with the status they ask
  for ("pending", "completed", or "all" by default).
- When they say a task is done, complete or finished, call complete_task.
- When they ask to delete, remove or cancel a task, call delete_task.
- When they ask to change, update or rename a task, call update_task.
- If you need a task's id and do not know it, call list_tasks first.
- Always confirm what you did in a short, friendly sentence.
- If a tool reports an error (for example, a task that does not exist), say so plainly
  and suggest what the user can do.
"""


@dataclass(frozen=True)
class ChatContext:
    """What the tools need and the model never sees: the pool and the request's user."""

    pool: AsyncConnectionPool[Any]
    user_id: str


def _tool_error(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """What the model reads when a tool call fails.

    A missing task or a bad argument (chatstore's message, or the SDK's when the model's
    arguments do not fit the schema) goes back to the model, which tells the user. Any
    other chatstore error (the database unavailable) fails the turn: the HTTP layer
    answers it (503). Anything else gets the SDK's default message.
    """
    if isinstance(error, NotFound | InvalidInput | ModelBehaviorError):
        return json.dumps({"error": str(error)})
    if isinstance(error, ChatstoreError):
        raise error
    return default_tool_error_function(ctx, error)


@function_tool(description_override=tools.ADD_TASK, failure_error_function=_tool_error)
async def add_task(
    ctx: RunContextWrapper[ChatContext],
    title: tools.Title,
    description: tools.Description = None,
) -> str:
    you = ctx.context
    return _json(
        await tools.add_task(you.pool, user_id=you.user_id, title=title, description=description)
    )


@function_tool(description_override=tools.LIST_TASKS, failure_error_function=_tool_error)
async def list_tasks(ctx: RunContextWrapper[ChatContext], status: tools.Status = "all") -> str:
    you = ctx.context
    return _json(await tools.list_tasks(you.pool, user_id=you.user_id, status=status))


@function_tool(description_override=tools.COMPLETE_TASK, failure_error_function=_tool_error)
async def complete_task(ctx: RunContextWrapper[ChatContext], task_id: tools.TaskId) -> str:
    you = ctx.context
    return _json(await tools.complete_task(you.pool, user_id=you.user_id, task_id=task_id))


@function_tool(description_override=tools.DELETE_TASK, failure_error_function=_tool_error)
async def delete_task(ctx: RunContextWrapper[ChatContext], task_id: tools.TaskId) -> str:
    you = ctx.context
    return _json(await tools.delete_task(you.pool, user_id=you.user_id, task_id=task_id))


@function_tool(description_override=tools.UPDATE_TASK, failure_error_function=_tool_error)
async def update_task(
    ctx: RunContextWrapper[ChatContext],
    task_id: tools.TaskId,
    title: tools.NewTitle = None,
    description: tools.NewDescription = None,
) -> str:
    you = ctx.context
    return _json(
        await tools.update_task(
            you.pool, user_id=you.user_id, task_id=task_id, title=title, description=description
        )
    )


def build_agent(model: Model | str | None = None) -> Agent[ChatContext]:
    """The todo agent; ``model=None`` is the SDK's default OpenAI model (needs
    OPENAI_API_KEY)."""
    return Agent[ChatContext](
        name="Todo assistant",
        instructions=INSTRUCTIONS,
        tools=[add_task, list_tasks, complete_task, delete_task, update_task],
        model=model,
    )


def _json(value: object) -> str:
    # JSON, not Python's repr, is what the model reads as the tool's output.
    return json.dumps(value, ensure_ascii=False)
