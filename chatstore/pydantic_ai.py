"""Pydantic AI message histories on chatstore's agent items (migration 0012).

One agent item per ``ModelMessage``, stored as ``ModelMessagesTypeAdapter`` dumps it in
JSON mode, so a history comes back as Pydantic AI would load it from JSON. Around each
run::

    history = await load_history(conn, user_id=uid, conversation_id=cid)
    result = await agent.run(prompt, message_history=history)
    await save_messages(conn, user_id=uid, conversation_id=cid, messages=result.new_messages())

Saving also writes the text a person reads (user prompts, the model's text answers) to
the conversation's messages, in the same statement: ``chatstore.aio.get_messages`` is
the transcript, tool traffic and thinking stay in the agent items only.

Like :mod:`chatstore.aio`: connection first, keyword-only arguments, one round trip per
call, never a commit or a rollback; errors are :mod:`chatstore.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
import pydantic_core
from psycopg import AsyncConnection

try:
    from pydantic_ai.messages import (
        ModelMessage,
        ModelMessagesTypeAdapter,
        ModelRequest,
        ModelResponse,
        TextPart,
        UserPromptPart,
    )
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        'chatstore.pydantic_ai needs Pydantic AI: pip install "chatstore[pydantic-ai]"'
    ) from exc

from chatstore import _blank, _core, aio
from chatstore.errors import InvalidInput
from chatstore.models import Role

__all__ = ["load_history", "save_messages"]


async def load_history(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int, limit: int | None = None
) -> list[ModelMessage]:
    """The conversation's Pydantic AI messages, oldest first, for ``message_history=``.

    ``limit`` (0 or more; ``None``: all) reads at most the last ``limit`` messages and
    drops those before the first user turn in them: the window starts at a request with
    a user prompt and no tool result, so no tool result is loaded without its call. A
    window that reaches the first stored message is kept whole. Fewer than ``limit``
    messages may come back, none when one turn is longer than ``limit``. Pydantic AI
    adds an agent's ``system_prompt`` only to an empty history, so with a limit it
    drops out with the first turn; ``instructions`` are sent on every request.

    Raises InvalidInput when a stored item is not a Pydantic AI message (an OpenAI
    Agents SDK session's, say), NotFound for another user's or a missing conversation.
    """
    items = await aio.get_agent_items(
        conn, user_id=user_id, conversation_id=conversation_id, limit=limit
    )
    try:
        messages = ModelMessagesTypeAdapter.validate_python([i.item for i in items])
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        index = first["loc"][0] if first["loc"] else 0
        seq = items[index].seq if isinstance(index, int) else "?"
        raise InvalidInput(
            f"agent item {seq} of conversation {conversation_id} is not a Pydantic AI"
            f" message: {first['msg']}"
        ) from exc
    if limit is None or not items or items[0].slot == 1:
        return messages
    for start, message in enumerate(messages):
        if _starts_turn(message):
            return messages[start:]
    return []


def _starts_turn(message: ModelMessage) -> bool:
    """A request with a user prompt that answers no tool call: a safe first message."""
    return (
        isinstance(message, ModelRequest)
        and any(isinstance(part, UserPromptPart) for part in message.parts)
        and not any(getattr(part, "tool_call_id", None) for part in message.parts)
    )


async def save_messages(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    conversation_id: int,
    messages: Sequence[ModelMessage],
    request_id: str | None = None,
) -> None:
    """Append a run's ``result.new_messages()`` (at most 1,000) to the conversation, in
    one statement: all or none. An empty sequence writes nothing and sends no SQL.

    ``request_id`` is the endpoint's key for the turn, as for ``append_messages``: a
    retried save of the same messages stores nothing again; different messages under
    the key (the retried run answered differently) are InvalidInput, nothing stored.

    The transcript (``get_messages``) gets one ``user`` entry per request with a user
    prompt (its ``str`` pieces, several joined by a blank line) and one ``assistant``
    entry per response with text (its text parts joined, as the run's text output is);
    blank text gets none. Each entry is a display copy: NULs removed, a lone surrogate
    replaced, cut to 32,000 characters; the agent item keeps the message whole.

    Raises InvalidInput for anything but Pydantic AI messages or one that does not
    serialise to JSON, NotFound for another user's or a missing conversation.
    """
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise InvalidInput("messages must be a sequence of Pydantic AI messages")
    for message in messages:
        if not isinstance(message, (ModelRequest, ModelResponse)):
            raise InvalidInput(
                f"messages must hold ModelRequest or ModelResponse, not {type(message).__name__}"
            )
    if not messages:
        _core.user_id(user_id)
        _core.record_id(conversation_id, "conversation_id")
        _core.request_id(request_id)
        return
    try:
        items = ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidInput(f"a message does not serialise to JSON: {exc}") from exc
    transcript: list[tuple[Role, str]] = []
    for message in messages:
        entry = _transcript_entry(message)
        if entry is not None:
            transcript.append(entry)
    await aio.add_agent_items(
        conn,
        user_id=user_id,
        conversation_id=conversation_id,
        items=items,
        transcript=transcript,
        request_id=request_id,
    )


def _transcript_entry(message: ModelMessage) -> tuple[Role, str] | None:
    """The ``(role, text)`` a person reads in ``message``, or None."""
    role: Role
    if isinstance(message, ModelRequest):
        role = "user"
        pieces: list[object] = []
        for part in message.parts:
            if isinstance(part, UserPromptPart):
                pieces += [part.content] if isinstance(part.content, str) else part.content
        text = "\n\n".join(p for p in pieces if isinstance(p, str) and not _blank.is_blank(p))
    else:
        # As the run's text output is: the response's text parts concatenated.
        role = "assistant"
        text = "".join(part.content for part in message.parts if isinstance(part, TextPart))
    display = _core.display_text(text)
    return None if display is None else (role, display)
