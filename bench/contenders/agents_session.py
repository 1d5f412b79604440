"""OpenAI Agents SDK ``SQLAlchemySession`` on PostgreSQL (psycopg 3 async driver).

A session object per request on one shared ``AsyncEngine``; items are the SDK's
input-item dicts stored as JSON text. It reads the latest N with a LIMIT, bumps its
session's ``updated_at`` on append, and has no listing of sessions.
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
from bench.sqlalchemy_urls import async_engine

NO_LISTING = Unsupported("no listing: the SDK has no API to list a user's sessions")


class AgentsSession:
    is_async = True
    description = "openai-agents SQLAlchemySession (SQLAlchemy async, psycopg 3)"

    def __init__(self) -> None:
        self.notes: list[str] = []

    async def setup(self, dsn: str, fixtures: Fixtures) -> None:
        self._engine: AsyncEngine = async_engine(dsn)
        self._raw: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True)
        self._fx = fixtures
        self._target = replenish.agents_session(self._raw, 50)
        self._doomed: list[str] = []

    def _session(self, session_id: str) -> SQLAlchemySession:
        return SQLAlchemySession(
            session_id,
            engine=self._engine,
            sessions_table=AGENTS_SESSIONS_TABLE,
            messages_table=AGENTS_MESSAGES_TABLE,
        )

    def operations(self) -> dict[str, Operation | Unsupported]:
        fx = self._fx
        user: Any = {"role": "user", "content": USER_TEXT}
        assistant: Any = {"role": "assistant", "content": ASSISTANT_TEXT}

        async def new_doomed() -> None:
            self._doomed.append(replenish.agents_session(self._raw, 1000))

        return {
            "append_one": Operation(lambda: self._session(self._target).add_items([user])),
            "append_pair": Operation(
                lambda: self._session(self._target).add_items([user, assistant])
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
            "delete_1000": Operation(
                lambda: self._session(self._doomed.pop()).clear_session(), prepare=new_doomed
            ),
        }

    async def close(self) -> None:
        self._raw.close()
        await self._engine.dispose()


def make() -> AgentsSession:
    return AgentsSession()
