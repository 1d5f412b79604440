"""The five task tools of the Phase III chatbot, once, over :mod:`chatstore.aio`.

The agent's function tools (:mod:`.agent`) and the MCP server (:mod:`.mcp_server`) are
thin signatures over these functions: one implementation, one set of descriptions, the
return shapes of the Phase III spec. Each call takes one connection from the pool and
gives it back; chatstore checks the input and filters every row by ``user_id``, so a
task of another user is NotFound exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from psycopg_pool import AsyncConnectionPool
from pydantic import Field
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12 (MCP schemas)

from chatstore import aio
from chatstore import pool as chatpool
from chatstore.models import Task, TaskStatus

# How long a call waits for a free connection before it fails with Unavailable (503).
CHECKOUT_TIMEOUT = 5.0

# The parameters as the model (or an MCP client) sees them.
UserId = Annotated[str, Field(description="The id of the user whose tasks these are.")]
Title = Annotated[str, Field(description="The task's title, 1-200 characters.")]
NewTitle = Annotated[
    str | None, Field(description="The new title, 1-200 characters; null keeps the title.")
]
Description = Annotated[
    str | None, Field(description="Optional details, at most 10,000 characters.")
]
NewDescription = Annotated[
    str | None, Field(description="The new description; null keeps the description.")
]
TaskId = Annotated[int, Field(description="The task's id, as list_tasks shows it.")]
Status = Annotated[
    Literal["all", "pending", "completed"],
    Field(description='Which tasks: "all", "pending" or "completed".'),
]

ADD_TASK = (
    "Add a task to the user's todo list. Use it when they ask to add, create or remember something."
)
LIST_TASKS = (
    "List the user's tasks, oldest first; filter by status when they ask for pending"
    " or completed ones."
)
COMPLETE_TASK = "Mark one of the user's tasks as completed (done, finished)."
DELETE_TASK = "Delete one of the user's tasks (remove, cancel)."
UPDATE_TASK = "Change a task's title and/or description (rename, change, update)."


class TaskChange(TypedDict):
    """What add, complete, delete and update return (the Phase III spec's shape)."""

    task_id: int
    status: Literal["created", "completed", "deleted", "updated"]
    title: str


class TaskView(TypedDict):
    """One task as list_tasks returns it."""

    id: int
    title: str
    description: str | None
    completed: bool


async def add_task(
    pool: AsyncConnectionPool[Any], *, user_id: str, title: str, description: str | None = None
) -> TaskChange:
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        task = await aio.add_task(conn, user_id=user_id, title=title, description=description)
    return _change(task, "created")


async def list_tasks(
    pool: AsyncConnectionPool[Any], *, user_id: str, status: TaskStatus = "all"
) -> list[TaskView]:
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        tasks = await aio.list_tasks(conn, user_id=user_id, status=status)
    return [
        TaskView(id=t.id, title=t.title, description=t.description, completed=t.completed)
        for t in tasks
    ]


async def complete_task(
    pool: AsyncConnectionPool[Any], *, user_id: str, task_id: int
) -> TaskChange:
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        task = await aio.complete_task(conn, user_id=user_id, task_id=task_id)
    return _change(task, "completed")


async def delete_task(pool: AsyncConnectionPool[Any], *, user_id: str, task_id: int) -> TaskChange:
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        # The spec answers with the deleted task's title, which delete_task does not
        # return: read it first (a rename in between would show the old title, harmless).
        task = await aio.get_task(conn, user_id=user_id, task_id=task_id)
        await aio.delete_task(conn, user_id=user_id, task_id=task_id)
    return _change(task, "deleted")


async def update_task(
    pool: AsyncConnectionPool[Any],
    *,
    user_id: str,
    task_id: int,
    title: str | None = None,
    description: str | None = None,
) -> TaskChange:
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        task = await aio.update_task(
            conn, user_id=user_id, task_id=task_id, title=title, description=description
        )
    return _change(task, "updated")


def _change(
    task: Task, status: Literal["created", "completed", "deleted", "updated"]
) -> TaskChange:
    return TaskChange(task_id=task.id, status=status, title=task.title)
