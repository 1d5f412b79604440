"""The OpenAI Agents SDK's ``Session`` over chatstore: an agent's memory per conversation.

::

    from agents import Agent, Runner
    from chatstore.agents import ChatstoreSession

    pool = AsyncConnectionPool(dsn, check=AsyncConnectionPool.check_connection,
                               kwargs={"autocommit": True})
    session = await ChatstoreSession.start(pool, user_id="alice")   # a new conversation
    # or ChatstoreSession(pool, user_id="alice", conversation_id=42) to continue one
    result = await Runner.run(agent, "add milk", session=session)

Every item a run produces (user input, tool calls and their outputs, reasoning, the
assistant's messages) is stored exactly as given, in the conversation's agent items
(migration 0012): the SDK hashes stored items to resume a paused run. What a person
reads, the user's text and the assistant's answers, also goes to the conversation's
messages in the same statement, so titles and ``get_messages`` show the chat.

Each method takes one connection from the pool for one call and gives it back: none is
held between calls, so none across a model call. Errors are :mod:`chatstore.errors`.

Needs the ``agents`` extra: ``pip install "chatstore[agents]"``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

try:
    from agents.items import TResponseInputItem
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
except ImportError as exc:  # the core install has no dependency on the SDK
    raise ImportError(
        "chatstore.agents needs the OpenAI Agents SDK (openai-agents>=0.24):"
        f' pip install "chatstore[agents]" ({exc})'
    ) from exc

from chatstore import _core, aio
from chatstore import pool as _pool
from chatstore.errors import InvalidInput
from chatstore.models import Role

__all__ = ["ChatstoreSession"]

_T = TypeVar("_T")


class ChatstoreSession:
    """An Agents SDK ``Session`` (``agents.memory.Session``) on one conversation of one
    user. ``session_id`` is the conversation id as text.

    ``pool`` is a ``psycopg_pool.AsyncConnectionPool``; autocommit connections
    (``kwargs={"autocommit": True}``, as :mod:`chatstore.pool` recommends) make each
    call one round trip. On a pool of non-autocommit connections each call runs in a
    transaction of its own, which it commits.

    Another user's conversation, or a missing one, is NotFound from every method.

    ``request_id`` (optional) is the endpoint's key for the turn this session object
    serves, as ``append_message`` takes one (1-235 characters, no blank character). The
    session keys its n-th ``add_items`` call ``"{request_id}:{n}"`` (n from 0): a turn
    retried with the same key and a new session object stores each call's items once. A
    retried call whose items differ from the first attempt's (the model answered
    differently) is InvalidInput and stores nothing: the endpoint's cue to answer from
    what is stored rather than run the model again.
    """

    session_id: str
    session_settings: SessionSettings | None

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        user_id: str,
        conversation_id: int,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        if not isinstance(pool, AsyncConnectionPool):
            raise InvalidInput(
                f"pool must be a psycopg_pool.AsyncConnectionPool, not {type(pool).__name__}"
            )
        # Checked now, not at the first call inside a run.
        _core.user_id(user_id)
        _core.record_id(conversation_id, "conversation_id")
        self._request_id = _turn_key(request_id)
        self._adds = 0  # add_items calls so far: the n of the next call's key
        self._pool = pool
        self._user_id = user_id
        self._conversation_id = int(conversation_id)
        self.session_id = str(conversation_id)
        self.session_settings = _settings(session_settings)

    @classmethod
    async def start(
        cls,
        pool: AsyncConnectionPool[Any],
        *,
        user_id: str,
        title: str | None = None,
        session_settings: SessionSettings | Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> ChatstoreSession:
        """A session on a new conversation of ``user_id`` (NotFound if there is no such
        user). Without a title, the first user message gives it. A ``request_id`` keys
        the items, not the conversation: a retried turn continues the conversation the
        first attempt created, by id."""
        settings = _settings(session_settings)  # refused before a conversation exists
        _turn_key(request_id)
        conversation = await _call(
            pool, lambda conn: aio.create_conversation(conn, user_id=user_id, title=title)
        )
        return cls(
            pool,
            user_id=user_id,
            conversation_id=conversation.id,
            session_settings=settings,
            request_id=request_id,
        )

    @property
    def user_id(self) -> str:
        return self._user_id

    @property
    def conversation_id(self) -> int:
        return self._conversation_id

    def __repr__(self) -> str:
        return (
            f"ChatstoreSession(user_id={self._user_id!r}, conversation_id={self._conversation_id})"
        )

    # --- the Session protocol ------------------------------------------------------------

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The latest ``limit`` items, oldest first, exactly as they were added; all when
        ``limit`` and ``session_settings.limit`` are None. Reads only what it returns."""
        # 0 too is one round trip: another user's conversation is NotFound here as well.
        count = resolve_session_limit(limit, self.session_settings)
        records = await _call(
            self._pool,
            lambda conn: aio.get_agent_items(
                conn, user_id=self._user_id, conversation_id=self._conversation_id, limit=count
            ),
        )
        return [record.item for record in records]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append ``items``, all or none; their readable text goes to the transcript.

        Up to 1,000 items (64 MiB of JSON) are one statement. More are added 1,000 at a
        time in one transaction, still all or none. Each item is at most 4 MiB as JSON,
        else InvalidInput and nothing is stored. With the session's ``request_id``, a
        call that repeats the first attempt's n-th call stores nothing again.
        """
        if not items:
            return
        batches = [items[i : i + _core.MAX_BATCH] for i in range(0, len(items), _core.MAX_BATCH)]
        transcripts = [_transcript(batch) for batch in batches]
        call, self._adds = self._adds, self._adds + 1
        keys: list[str | None] = [None] * len(batches)
        if self._request_id is not None:
            key = f"{self._request_id}:{call}"
            keys = [key] if len(batches) == 1 else [f"{key}:{b}" for b in range(len(batches))]

        async def add(conn: AsyncConnection[Any]) -> None:
            for batch, transcript, key in zip(batches, transcripts, keys, strict=True):
                await aio.add_agent_items(
                    conn,
                    user_id=self._user_id,
                    conversation_id=self._conversation_id,
                    items=batch,
                    transcript=transcript,
                    request_id=key,
                )

        await _settled(_call(self._pool, add, transaction=len(batches) > 1))

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove the newest item and return it; None when there is none. It stays on
        record (agent items are append-only), and so does its transcript message."""
        record = await _settled(
            _call(
                self._pool,
                lambda conn: aio.pop_agent_item(
                    conn, user_id=self._user_id, conversation_id=self._conversation_id
                ),
            )
        )
        return None if record is None else record.item

    async def clear_session(self) -> None:
        """Empty the session's list of items; the conversation and its messages stay."""
        await _settled(
            _call(
                self._pool,
                lambda conn: aio.clear_agent_items(
                    conn, user_id=self._user_id, conversation_id=self._conversation_id
                ),
            )
        )


# --- helpers -----------------------------------------------------------------------------

# The session appends ":{call}" (and ":{batch}" past 1,000 items) to a turn's key.
_MAX_TURN_KEY = _core.MAX_REQUEST_ID - 20


def _turn_key(value: object) -> str | None:
    key = _core.request_id(value)
    if key is not None and len(key) > _MAX_TURN_KEY:
        raise InvalidInput(
            f"request_id of a session must be 1-{_MAX_TURN_KEY} characters without blank"
            " characters (the session adds each call's number to it)"
        )
    return key


def _settings(value: SessionSettings | Mapping[str, Any] | None) -> SessionSettings:
    """As the SDK's own sessions: a dict is coerced; None is no default limit."""
    if isinstance(value, Mapping):
        return coerce_session_settings(dict(value))
    return value or SessionSettings()


async def _call(
    pool: AsyncConnectionPool[Any],
    fn: Callable[[AsyncConnection[Any]], Awaitable[_T]],
    *,
    transaction: bool = False,
) -> _T:
    """``fn`` on a connection of the pool, committed when it returns.

    An autocommit connection commits each statement: no transaction block unless ``fn``
    runs several. A non-autocommit one gets a block, committed here rather than left to
    the pool. BEGIN and COMMIT are psycopg's own statements, so their errors (a
    connection lost at COMMIT) are translated here.
    """
    try:
        async with _pool.connection_async(pool) as conn:
            if conn.autocommit and not transaction:
                return await fn(conn)
            async with conn.transaction():
                return await fn(conn)
    except psycopg.Error as exc:
        raise _core.translate(exc) from exc


async def _settled(awaitable: Awaitable[_T]) -> _T:
    """Run a write to its end even when the caller is cancelled, then re-raise the
    cancellation: as the SDK's own sessions do, so a cancelled run leaves the session
    in a known state (the write happened, or failed with its own error) rather than a
    statement cancelled at an unknown point."""
    task = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved: asyncio logs an unretrieved one
        raise cancelled
    return task.result()


def _transcript(items: list[TResponseInputItem]) -> list[tuple[Role, str]]:
    """The ``(role, text)`` pairs a person reads, in order: user input and the
    assistant's messages. Tool traffic, reasoning, system and developer messages: none."""
    pairs: list[tuple[Role, str]] = []
    for item in items:
        if not isinstance(item, Mapping) or item.get("type", "message") != "message":
            continue
        role = item.get("role")
        if role == "user":
            text = _text(item.get("content"), "input_text")
        elif role == "assistant":
            text = _text(item.get("content"), "output_text")
        else:
            continue
        if text is not None:
            pairs.append(("user" if role == "user" else "assistant", text))
    return pairs


def _text(content: object, part_type: str) -> str | None:
    """A message's text as its transcript copy (``_core.display_text``), or None.

    Parts are concatenated, as the SDK's ``ItemHelpers.extract_text`` does; refusals,
    images and files are not text.
    """
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping)
            and part.get("type") == part_type
            and isinstance(part.get("text"), str)
        )
    else:
        return None
    return _core.display_text(text)
