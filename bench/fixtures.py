"""The named rows every contender measures against, loaded once per database."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass
from typing import Any

SPECIAL_USER = "bench-special"
HEAVY_USER = "bench-heavy"
WRITER_USER = "bench-writer"
HEAVY_CONVERSATIONS = 1_100  # page 50 of 20 needs at least 1,000
PAGE_SIZE = 20
PAGE_NUMBER = 50
LANGCHAIN_TABLE = "langchain_messages"
AGENTS_SESSIONS_TABLE = "agent_sessions"
AGENTS_MESSAGES_TABLE = "agent_messages"


@dataclass(frozen=True)
class Fixtures:
    """Conversation ids of the special conversations (owned by ``SPECIAL_USER``)."""

    conv_50: int
    conv_1000: int
    conv_10000: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def langchain_session_id(conversation_id: int) -> str:
    """langchain-postgres keys a history by UUID: derive one from the conversation id.

    PostgreSQL computes the same value as ``md5(conversation_id::text)::uuid``.
    """
    return str(uuid.UUID(hashlib.md5(str(conversation_id).encode()).hexdigest()))


def agents_session_id(conversation_id: int) -> str:
    return str(conversation_id)


def find_fixtures(conn: Any) -> Fixtures:
    """The fixtures of an already loaded database (the special user's first three)."""
    rows = conn.execute(
        "SELECT id FROM conversations WHERE user_id = %s ORDER BY id LIMIT 3", (SPECIAL_USER,)
    ).fetchall()
    return Fixtures(conv_50=rows[0][0], conv_1000=rows[1][0], conv_10000=rows[2][0])
