"""OpenAI Agents SDK ``SQLAlchemySession`` on PostgreSQL, three ways.

Items are the SDK's input-item dicts stored as JSON text. It reads the latest N with a
LIMIT, bumps its session's ``updated_at`` on append (after ``SELECT ... FOR UPDATE`` of
the session row), and has no listing of sessions. One ``AsyncEngine`` per contender.

- ``agents-psycopg`` / ``agents-asyncpg``: what a service does. One engine, one
  ``SQLAlchemySession`` object per conversation, kept and reused for every call on it.
  Each object builds its own ``Table`` objects, so SQLAlchemy's compiled-statement cache
  serves the calls of one object from the second on. asyncpg
  (``postgresql+asyncpg://``) is the driver the SDK's docs and docstrings show; psycopg 3
  async is chatstore's driver. For delete, the object of the conversation to clear is
  built untimed beforehand (a service built it when the conversation started), so its
  timed call compiles its statements once, as a service's single clear would.
- ``agents-per-call``: a new ``SQLAlchemySession`` for every call (psycopg), as this
  benchmark measured before: each call pays the constructor and compiles its
  statements afresh.
"""

from __future__ import annotations

from typing import Any

import psycopg
from agents.extensions.memory import SQLAlchemySession
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import replenish
from bench.contenders.base import ASSISTANT_TEXT, USER_TEXT, Operation, Unsupported
from bench.fixtures import (
    AGENTS_MESSAGES_TABLE,
    AGENTS_SESSIONS_TABLE,
    Fixtures,
    agents_session_id,
)
from bench.sqlalchemy_urls import async_engine, asyncpg_engine

NO_LISTING = Unsupported("no listing: the SDK has no API to list a user's sessions")
USER: Any = {"role": "user", "content": USER_TEXT}
ASSISTANT: Any = {"role": "assistant", "content": ASSISTANT_TEXT}


class AgentsSession:
    """One session object per conversation, reused (``reuse=False``: one per call)."""

    is_async = True

    def __init__(self, driver: str, reuse: bool) -> None:
        self._driver = driver
        self._reuse = reuse
        how = (
            "one engine, one session object per conversation reused"
            if reuse
            else "a new session object for every call"
        )
        self.description = f"openai-agents SQLAlchemySession (SQLAlchemy async, {driver}), {how}"
        self.notes: list[str] = []

    async def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._engine: AsyncEngine = (
            asyncpg_engine(dsn) if self._driver == "asyncpg" else async_engine(dsn)
        )
        self._raw: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._objects: dict[str, SQLAlchemySession] = {}
        self._target = replenish.agents_session(self._raw, 50)
        self._doomed: list[SQLAlchemySession] = []

    def _new(self, session_id: str) -> SQLAlchemySession:
        return SQLAlchemySession(
            session_id,
            engine=self._engine,
            sessions_table=AGENTS_SESSIONS_TABLE,
            messages_table=AGENTS_MESSAGES_TABLE,
        )

    def _session(self, session_id: str) -> SQLAlchemySession:
        if not self._reuse:
            return self._new(session_id)
        found = self._objects.get(session_id)
        if found is None:
            found = self._objects[session_id] = self._new(session_id)
        return found

    def operations(self) -> dict[str, Operation | Unsupported]:
        fx = self._fx

        async def new_doomed() -> None:
            sid = replenish.agents_session(self._raw, 1000)
            self._doomed.append(self._new(sid) if self._reuse else sid)  # type: ignore[arg-type]

        async def delete() -> None:
            doomed: Any = self._doomed.pop()
            session = doomed if self._reuse else self._new(doomed)
            await session.clear_session()

        return {
            "append_one": Operation(lambda: self._session(self._target).add_items([USER])),
            "append_pair": Operation(
                lambda: self._session(self._target).add_items([USER, ASSISTANT])
            ),
            "last50_of_50": Operation(
                lambda: self._session(agents_session_id(fx.conv_50)).get_items(limit=50)
            ),
            "last50_of_10000": Operation(
                lambda: self._session(agents_session_id(fx.conv_10000)).get_items(limit=50)
            ),
            "whole_1000": Operation(
                lambda: self._session(agents_session_id(fx.conv_1000)).get_items()
            ),
            "list_recent_20": NO_LISTING,
            "list_page_50": NO_LISTING,
            "delete_1000": Operation(delete, prepare=new_doomed),
        }

    async def close(self) -> None:
        self._raw.close()
        await self._engine.dispose()


def make_per_call() -> AgentsSession:
    return AgentsSession("psycopg", reuse=False)


def make_psycopg() -> AgentsSession:
    return AgentsSession("psycopg", reuse=True)


def make_asyncpg() -> AgentsSession:
    return AgentsSession("asyncpg", reuse=True)
