"""The seed quickstart (seeds/001) as a test: its five steps and its 100-message read,
through the API (sync and async). No timing assertion: figures belong to the benchmarks."""

from __future__ import annotations

import psycopg
import pytest

from chatstore.errors import NotFound
from tests import _helpers
from tests._helpers import Store

store = _helpers.store


async def test_quickstart_five_steps(store: Store, conn: psycopg.Connection) -> None:
    # Test 1: create a conversation (for a user that exists: user ids are foreign keys).
    await store.create_user(id="test_user_123", email="test_user_123@example.com")
    conversation = await store.create_conversation(user_id="test_user_123")
    assert conversation.user_id == "test_user_123"
    assert conversation.created_at.utcoffset() is not None  # timestamptz: aware

    # Test 2: add messages.
    first = await store.append_message(
        user_id="test_user_123",
        conversation_id=conversation.id,
        role="user",
        content="Hello, can you help me?",
    )
    second = await store.append_message(
        user_id="test_user_123",
        conversation_id=conversation.id,
        role="assistant",
        content="Of course! How can I assist you today?",
    )
    assert first.id < second.id

    # Test 3: conversation history, in order.
    history = await store.get_messages(user_id="test_user_123", conversation_id=conversation.id)
    assert [(m.role, m.content) for m in history] == [
        ("user", "Hello, can you help me?"),
        ("assistant", "Of course! How can I assist you today?"),
    ]

    # Test 4: user-scoped conversations; another user sees none of them.
    page = await store.list_conversations(user_id="test_user_123")
    assert [c.id for c in page.items] == [conversation.id]
    assert page.items[0].title == "Hello, can you help me?"  # from the first user message
    await store.create_user(id="someone_else", email="else@example.com")
    assert (await store.list_conversations(user_id="someone_else")).items == ()
    with pytest.raises(NotFound):
        await store.get_messages(user_id="someone_else", conversation_id=conversation.id)

    # Test 5: cascade delete.
    await store.delete_conversation(user_id="test_user_123", conversation_id=conversation.id)
    remaining = conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = %s", [conversation.id]
    ).fetchone()
    assert remaining == (0,)
    with pytest.raises(NotFound):
        await store.get_messages(user_id="test_user_123", conversation_id=conversation.id)


async def test_quickstart_reads_back_100_messages_in_order(store: Store) -> None:
    await store.create_user(id="perf_test", email="perf_test@example.com")
    conversation = await store.create_conversation(user_id="perf_test")
    sent = [("user" if i % 2 == 0 else "assistant", f"Test message {i}") for i in range(100)]
    await store.append_messages(user_id="perf_test", conversation_id=conversation.id, messages=sent)
    read = await store.get_messages(user_id="perf_test", conversation_id=conversation.id)
    assert [(m.role, m.content) for m in read] == sent
    last50 = await store.get_messages(
        user_id="perf_test", conversation_id=conversation.id, limit=50
    )
    assert last50 == read[50:]
