"""Conversations and messages through the API, on chatstore.queries and chatstore.aio."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from chatstore.errors import NotFound
from chatstore.models import Conversation, ConversationPage, Message
from tests import _helpers
from tests._helpers import Store, snapshot, user

store = _helpers.store


async def test_create_conversation_trims_title_or_leaves_it_empty(store: Store) -> None:
    await user(store, "ann")
    titled = await store.create_conversation(user_id="ann", title="  Trip plans ")
    untitled = await store.create_conversation(user_id="ann")
    assert isinstance(titled, Conversation)
    assert (titled.title, untitled.title) == ("Trip plans", None)
    assert await store.get_conversation(user_id="ann", conversation_id=titled.id) == titled


async def test_create_conversation_for_unknown_user_is_not_found(
    store: Store, conn: psycopg.Connection
) -> None:
    before = snapshot(conn)
    with pytest.raises(NotFound):
        await store.create_conversation(user_id="ghost")
    assert snapshot(conn) == before


async def test_first_user_message_titles_an_untitled_conversation_and_bumps_it(
    store: Store,
) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="assistant", content="Hi there"
    )
    await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content="  Plan   a trip\n"
    )
    await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content="Second"
    )
    after = await store.get_conversation(user_id="ann", conversation_id=conversation.id)
    assert after.title == "Plan a trip"
    assert after.updated_at > conversation.updated_at


async def test_rename_conversation_trims_and_sets_the_title(store: Store) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann", title="old")
    renamed = await store.rename_conversation(
        user_id="ann", conversation_id=conversation.id, title="\tnew "
    )
    assert renamed.title == "new"
    assert renamed.updated_at >= conversation.updated_at


async def test_delete_conversation_removes_its_messages(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    await store.append_messages(
        user_id="ann", conversation_id=conversation.id, messages=[("user", "a"), ("assistant", "b")]
    )
    await store.delete_conversation(user_id="ann", conversation_id=conversation.id)
    with pytest.raises(NotFound):
        await store.get_messages(user_id="ann", conversation_id=conversation.id)
    assert conn.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    with pytest.raises(NotFound):
        await store.delete_conversation(user_id="ann", conversation_id=conversation.id)


async def test_append_message_returns_the_stored_message(store: Store) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    message = await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content=" kept as is "
    )
    assert isinstance(message, Message)
    assert (message.conversation_id, message.user_id, message.role, message.content) == (
        conversation.id,
        "ann",
        "user",
        " kept as is ",
    )


async def test_append_messages_keeps_the_given_order_despite_equal_timestamps(
    store: Store,
) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    batch = [("user" if i % 2 == 0 else "assistant", f"message {i}") for i in range(60)]
    stored = await store.append_messages(
        user_id="ann", conversation_id=conversation.id, messages=batch
    )
    assert [(m.role, m.content) for m in stored] == batch
    assert len({m.created_at for m in stored}) == 1  # one statement: created_at ties
    assert [m.seq for m in stored] == list(range(1, 61))
    read = await store.get_messages(user_id="ann", conversation_id=conversation.id)
    assert read == stored


async def test_messages_appended_in_quick_succession_come_back_in_append_order(
    store: Store,
) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    sent = []
    for i in range(40):
        if i % 10 == 9:
            pairs = [("assistant", f"batch {i}.{j}") for j in range(3)]
            await store.append_messages(
                user_id="ann", conversation_id=conversation.id, messages=pairs
            )
            sent += [content for _, content in pairs]
        else:
            await store.append_message(
                user_id="ann", conversation_id=conversation.id, role="user", content=f"single {i}"
            )
            sent.append(f"single {i}")
    read = await store.get_messages(user_id="ann", conversation_id=conversation.id)
    assert [m.content for m in read] == sent


async def test_get_messages_with_limit_returns_the_last_ones_oldest_first(store: Store) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    stored = await store.append_messages(
        user_id="ann",
        conversation_id=conversation.id,
        messages=[("user", f"m{i}") for i in range(10)],
    )
    last3 = await store.get_messages(user_id="ann", conversation_id=conversation.id, limit=3)
    assert last3 == stored[-3:]
    earlier = await store.get_messages(
        user_id="ann", conversation_id=conversation.id, limit=3, before=last3[0].seq
    )
    assert earlier == stored[-6:-3]
    rest = await store.get_messages(
        user_id="ann", conversation_id=conversation.id, before=earlier[0].seq
    )
    assert rest == stored[:-6]


async def test_get_messages_after_a_number_catches_up_forwards(store: Store) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    stored = await store.append_messages(
        user_id="ann",
        conversation_id=conversation.id,
        messages=[("user", f"m{i}") for i in range(10)],
    )

    async def read(**kwargs: int) -> list[Any]:
        return list(
            await store.get_messages(user_id="ann", conversation_id=conversation.id, **kwargs)
        )

    assert await read(after=0, limit=4) == stored[:4]
    assert await read(after=4, limit=4) == stored[4:8]
    assert await read(after=8) == stored[8:]
    assert await read(after=10) == []
    assert await read(after=2, before=6) == stored[2:5]  # the window 2 < seq < 6
    assert await read(after=2, before=9, limit=2) == stored[2:4]  # its first two
    assert await read(before=9, after=2, limit=2) == stored[2:4]
    assert await read(before=9, limit=2) == stored[6:8]  # without after: the last two


async def test_messages_are_numbered_1_2_3_and_the_conversation_counts_them(
    store: Store,
) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    assert (conversation.message_count, conversation.last_message_at) == (0, None)
    one = await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content="hi"
    )
    more = await store.append_messages(
        user_id="ann",
        conversation_id=conversation.id,
        messages=[("assistant", "hello"), ("user", "again")],
    )
    assert [one.seq, *(m.seq for m in more)] == [1, 2, 3]
    counted = await store.get_conversation(user_id="ann", conversation_id=conversation.id)
    assert counted.message_count == 3
    assert counted.last_message_at == more[-1].created_at
    # Numbers belong to a conversation: another one starts at 1 again.
    other = await store.create_conversation(user_id="ann")
    first = await store.append_message(
        user_id="ann", conversation_id=other.id, role="user", content="x"
    )
    assert first.seq == 1


def test_raw_sql_inserts_are_numbered_by_the_database_whatever_seq_they_give(
    conn: psycopg.Connection,
) -> None:
    conn.execute("INSERT INTO users (id, email) VALUES ('ann', 'ann@example.com')")
    (cid,) = conn.execute(
        "INSERT INTO conversations (user_id) VALUES ('ann') RETURNING id"
    ).fetchone() or (0,)
    rows = conn.execute(
        "INSERT INTO messages (user_id, conversation_id, role, content, seq)"
        " VALUES ('ann', %(c)s, 'user', 'a', 42), ('ann', %(c)s, 'assistant', 'b', 1)"
        " RETURNING seq",
        {"c": cid},
    ).fetchall()
    assert rows == [(1,), (2,)]
    assert conn.execute(
        "SELECT message_count FROM conversations WHERE id = %s", (cid,)
    ).fetchone() == (2,)


async def test_get_messages_of_empty_conversation_is_empty(store: Store) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    assert await store.get_messages(user_id="ann", conversation_id=conversation.id) == []


async def test_an_empty_range_is_empty_and_a_missing_conversation_is_not_found(
    store: Store,
) -> None:
    # The read scans the messages alone; only an empty page asks whose conversation it is.
    await user(store, "ann")
    await user(store, "bob")
    conversation = await store.create_conversation(user_id="ann")
    await store.append_messages(
        user_id="ann", conversation_id=conversation.id, messages=[("user", "a"), ("user", "b")]
    )
    for window in ({"before": 1}, {"after": 2}, {"after": 1, "before": 2}):
        assert (
            await store.get_messages(user_id="ann", conversation_id=conversation.id, **window) == []
        )
        for owner, cid in (("bob", conversation.id), ("ann", conversation.id + 1000)):
            with pytest.raises(NotFound, match="no such conversation for this user"):
                await store.get_messages(user_id=owner, conversation_id=cid, **window)


async def test_list_conversations_orders_by_most_recent_message(store: Store) -> None:
    await user(store, "ann")
    first = await store.create_conversation(user_id="ann", title="first")
    second = await store.create_conversation(user_id="ann", title="second")
    page = await store.list_conversations(user_id="ann")
    assert isinstance(page, ConversationPage)
    assert [c.id for c in page.items] == [second.id, first.id]
    assert page.next_cursor is None
    await store.append_message(user_id="ann", conversation_id=first.id, role="user", content="x")
    page = await store.list_conversations(user_id="ann")
    assert [c.id for c in page.items] == [first.id, second.id]


async def test_list_conversations_of_user_without_any_is_empty_and_unknown_user_not_found(
    store: Store,
) -> None:
    await user(store, "ann")
    page = await store.list_conversations(user_id="ann")
    assert page.items == ()
    assert page.next_cursor is None
    with pytest.raises(NotFound):
        await store.list_conversations(user_id="ghost")
