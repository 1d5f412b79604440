"""The user's conversations and their messages: what a chat sidebar and a chat window read."""

from __future__ import annotations

from fastapi import APIRouter

from chatstore import aio
from chatstore.models import ConversationPage, Message
from examples.phase3_chat.deps import Connection, CurrentUser

router = APIRouter(prefix="/api/{user_id}/conversations", tags=["conversations"])


@router.get("")
async def list_conversations(
    user_id: CurrentUser, conn: Connection, limit: int = 20, cursor: str | None = None
) -> ConversationPage:
    """Most recently updated first, ``limit`` (1-100) a page; pass ``next_cursor`` back
    as ``cursor`` for the next page (null on the last)."""
    return await aio.list_conversations(conn, user_id=user_id, limit=limit, cursor=cursor)


@router.get("/{conversation_id}/messages")
async def get_messages(
    user_id: CurrentUser,
    conversation_id: int,
    conn: Connection,
    limit: int = 100,
    before: int | None = None,
) -> list[Message]:
    """The last ``limit`` (1-1,000) messages, oldest first: what the user and the
    assistant said (tool calls are kept as agent items, not shown here). Page back with
    ``before`` = the first ``seq`` you hold."""
    return await aio.get_messages(
        conn, user_id=user_id, conversation_id=conversation_id, limit=limit, before=before
    )
