"""The records chatstore returns: frozen pydantic models, one per table, and a page.

They are built from the database's rows without validating them again (the schema
already guarantees every field; see ``chatstore._core.build`` and docs/decisions.md),
never from user input: inputs are checked by the query functions before any SQL runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["user", "assistant"]
TaskStatus = Literal["all", "pending", "completed"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class User(_Record):
    id: str
    email: str
    name: str | None
    created_at: datetime


class Task(_Record):
    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    created_at: datetime
    updated_at: datetime


class Conversation(_Record):
    """A chat thread of one user. ``archived_at``: when it was archived (left out of
    :func:`~chatstore.aio.list_conversations` unless ``archived=True``), else ``None``."""

    id: int
    user_id: str
    title: str | None
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class Message(_Record):
    id: int
    conversation_id: int
    user_id: str
    seq: int
    role: Role
    content: str
    created_at: datetime


class AgentItem(_Record):
    """One item of an agent session (migration 0012): ``item`` is the JSON value as it
    was given, ``slot`` its place in the session's list, ``seq`` its number in append
    order within the conversation."""

    conversation_id: int
    user_id: str
    slot: int
    seq: int
    item: Any
    created_at: datetime


class ConversationPage(_Record):
    """One page of :func:`list_conversations`: most recently updated first.

    ``next_cursor`` is ``None`` on the last page; otherwise pass it back as ``cursor``.
    """

    items: tuple[Conversation, ...]
    next_cursor: str | None


class SearchHit(_Record):
    """One message found by :func:`~chatstore.aio.search_messages`.

    ``rank`` is its relevance (``ts_rank_cd``, higher is better). ``snippet`` is plain
    text: the passages of the message around the words found (the whole message when
    it is short), fragments joined by `` … ``, and ``highlights`` the ``(start, end)``
    offsets of those words in it (``snippet[start:end]``), so a caller renders them as it
    likes, escaping the text itself. Read the message whole with ``get_messages``
    (``conversation_id``, ``before=seq + 1``, ``limit=1``).
    """

    conversation_id: int
    conversation_title: str | None
    seq: int
    role: Role
    created_at: datetime
    rank: float
    snippet: str
    highlights: tuple[tuple[int, int], ...]


class SearchPage(_Record):
    """One page of :func:`~chatstore.aio.search_messages`: best match first.

    ``next_cursor`` is ``None`` on the last page; otherwise pass it back as ``cursor``.
    ``capped`` is ``True`` when some messages holding the query's words were not looked
    at: only the newest are ranked (at most 1,000 of them and 256 kB of their text); a
    narrower query reaches the older ones.
    """

    items: tuple[SearchHit, ...]
    next_cursor: str | None
    capped: bool


__all__ = [
    "AgentItem",
    "Conversation",
    "ConversationPage",
    "Message",
    "Role",
    "SearchHit",
    "SearchPage",
    "Task",
    "TaskStatus",
    "User",
]
