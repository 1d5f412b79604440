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
    id: int
    user_id: str
    title: str | None
    message_count: int
    last_message_at: datetime | None
    created_at: datetime
    updated_at: datetime


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


__all__ = [
    "AgentItem",
    "Conversation",
    "ConversationPage",
    "Message",
    "Role",
    "Task",
    "TaskStatus",
    "User",
]
