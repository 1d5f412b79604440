"""The five task tools as an MCP server (the Phase III spec's tools, ``user_id`` first).

    CHATSTORE_DSN="host=... dbname=phase3_chat" python -m examples.phase3_chat.mcp_server

serves them over stdio to an MCP client (a desktop assistant, an agent framework, the
MCP inspector). ``CHATSTORE_DSN`` names the migrated database itself; ``make example``
prints the line for the database it serves.

Same implementation as the chat service's agent tools (:mod:`.tools`). One difference,
on purpose: here ``user_id`` is a tool argument, as the spec has it, so the server acts
for whichever user its client names. A stdio server trusts the process that launched
it; never expose it to other clients without binding ``user_id`` to their
authentication (the chat service does: its tools take the user from the request).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from psycopg_pool import AsyncConnectionPool

from chatstore import migrations
from chatstore.devserver import DSN_ENV
from chatstore.errors import InvalidInput, NotFound
from examples.phase3_chat import tools


def create_mcp_server(pool: AsyncConnectionPool[Any]) -> MCPServer:
    """An MCP server whose tools run on ``pool`` (an open pool of autocommit connections).
    A chatstore error (no such task, a blank title) comes back as the tool's error."""
    server: MCPServer = MCPServer(
        "chatstore-tasks", instructions="A user's todo list: add, list, complete, delete, update."
    )

    @server.tool(description=tools.ADD_TASK)
    async def add_task(
        user_id: tools.UserId, title: tools.Title, description: tools.Description = None
    ) -> tools.TaskChange:
        with _reported():
            return await tools.add_task(pool, user_id=user_id, title=title, description=description)

    @server.tool(description=tools.LIST_TASKS)
    async def list_tasks(
        user_id: tools.UserId, status: tools.Status = "all"
    ) -> list[tools.TaskView]:
        with _reported():
            return await tools.list_tasks(pool, user_id=user_id, status=status)

    @server.tool(description=tools.COMPLETE_TASK)
    async def complete_task(user_id: tools.UserId, task_id: tools.TaskId) -> tools.TaskChange:
        with _reported():
            return await tools.complete_task(pool, user_id=user_id, task_id=task_id)

    @server.tool(description=tools.DELETE_TASK)
    async def delete_task(user_id: tools.UserId, task_id: tools.TaskId) -> tools.TaskChange:
        with _reported():
            return await tools.delete_task(pool, user_id=user_id, task_id=task_id)

    @server.tool(description=tools.UPDATE_TASK)
    async def update_task(
        user_id: tools.UserId,
        task_id: tools.TaskId,
        title: tools.NewTitle = None,
        description: tools.NewDescription = None,
    ) -> tools.TaskChange:
        with _reported():
            return await tools.update_task(
                pool, user_id=user_id, task_id=task_id, title=title, description=description
            )

    return server


@contextmanager
def _reported() -> Iterator[None]:
    """A bad argument or a missing task goes back to the client as the tool's error, with
    chatstore's message; the MCP SDK hides the text of any other exception (a crash)."""
    try:
        yield
    except (NotFound, InvalidInput) as exc:
        raise ToolError(str(exc)) from exc


async def serve(dsn: str) -> None:
    """Serve the tools over stdio until the client closes it."""
    await asyncio.to_thread(migrations.assert_current, dsn)
    async with AsyncConnectionPool(
        dsn,
        open=False,
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True},
    ) as pool:
        await create_mcp_server(pool).run_stdio_async()


def main() -> None:
    dsn = os.environ.get(DSN_ENV)
    if not dsn:
        sys.exit(f"{DSN_ENV} must name the (migrated) database the tools work on")
    asyncio.run(serve(dsn))


if __name__ == "__main__":
    main()
