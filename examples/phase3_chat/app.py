"""The service: ``create_app(dsn)`` builds the FastAPI app of the Phase III chatbot.

One ``AsyncConnectionPool`` per process, opened in the lifespan after checking that the
database's schema is the installed chatstore's. chatstore's errors become HTTP answers
in one place: InvalidInput 422, NotFound 404, Unavailable 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agents import Model
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from chatstore import migrations
from chatstore.errors import InvalidInput, NotFound, Unavailable
from examples.phase3_chat import chat, conversations
from examples.phase3_chat.agent import build_agent

RETRY_AFTER_SECONDS = 1


def create_app(dsn: str, *, model: Model | str | None = None) -> FastAPI:
    """The app on the database ``dsn`` (migrated: the start-up refuses any other).

    ``model`` is the agent's model; None is the Agents SDK's default OpenAI model
    (needs OPENAI_API_KEY).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # SchemaMismatch stops the start: a service never runs on a schema it does not
        # know (migrations are applied by a deploy step, `chatstore migrate`).
        await asyncio.to_thread(migrations.assert_current, dsn)
        async with AsyncConnectionPool(
            dsn,
            open=False,
            check=AsyncConnectionPool.check_connection,  # replace connections that died idle
            kwargs={"autocommit": True},  # behind PgBouncer add "prepare_threshold": None
        ) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(title="Phase III todo chatbot (chatstore example)", lifespan=lifespan)
    app.state.agent = build_agent(model)
    app.include_router(chat.router)
    app.include_router(conversations.router)
    app.add_exception_handler(InvalidInput, _answer(422))
    app.add_exception_handler(NotFound, _answer(404))
    app.add_exception_handler(
        Unavailable, _answer(503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    )
    return app


def _answer(status: int, headers: dict[str, str] | None = None) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    return handler
