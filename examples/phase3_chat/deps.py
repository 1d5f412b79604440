"""FastAPI dependencies: the pool, a connection, the agent and the current user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from agents import Agent
from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from chatstore import pool as chatpool
from examples.phase3_chat.agent import ChatContext
from examples.phase3_chat.tools import CHECKOUT_TIMEOUT


def get_pool(request: Request) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    return pool


async def get_connection(
    pool: Annotated[AsyncConnectionPool[Any], Depends(get_pool)],
) -> AsyncIterator[AsyncConnection[Any]]:
    """One autocommit connection for the request; a pool that cannot give one in time
    raises chatstore's Unavailable (503)."""
    async with chatpool.connection_async(pool, timeout=CHECKOUT_TIMEOUT) as conn:
        yield conn


def get_agent(request: Request) -> Agent[ChatContext]:
    agent: Agent[ChatContext] = request.app.state.agent
    return agent


def current_user(user_id: str) -> str:
    """The user the request acts for: the path's ``{user_id}``.

    DEMO STAND-IN, NO AUTHENTICATION: this example believes the path. A real service
    replaces this function with its authentication (e.g. verify the session cookie or
    the bearer token, take the user id it proves) and answers 403 when the path's
    ``user_id`` is not that user. Every route takes its user from here, and chatstore
    filters every read and write by it, so that one function is the whole change.
    """
    return user_id


Pool = Annotated[AsyncConnectionPool[Any], Depends(get_pool)]
Connection = Annotated[AsyncConnection[Any], Depends(get_connection)]
TodoAgent = Annotated[Agent[ChatContext], Depends(get_agent)]
CurrentUser = Annotated[str, Depends(current_user)]
