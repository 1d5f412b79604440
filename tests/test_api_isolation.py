"""Tenant isolation: every function that takes a user_id scopes by it in SQL.

Bob exists and calls with Alice's record ids: he gets NotFound, exactly as for an id
that does not exist, and nothing changes. Listings show him only his own rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from chatstore.errors import NotFound
from tests import _helpers
from tests._helpers import Store, snapshot, user

store = _helpers.store


@dataclass
class Alice:
    conversation_id: int
    task_id: int


async def alice_and_bob(store: Store) -> Alice:
    await user(store, "alice")
    await user(store, "bob")
    conversation = await store.create_conversation(user_id="alice", title="private")
    await store.append_message(
        user_id="alice", conversation_id=conversation.id, role="user", content="secret"
    )
    task = await store.add_task(user_id="alice", title="alice's task")
    # Bob has a conversation and a task of his own, so his ids are not simply missing.
    await store.create_conversation(user_id="bob")
    await store.add_task(user_id="bob", title="bob's task")
    return Alice(conversation.id, task.id)


def calls(a: Alice) -> dict[str, dict[str, Any]]:
    """Bob's calls on Alice's records."""
    conv = {"user_id": "bob", "conversation_id": a.conversation_id}
    task = {"user_id": "bob", "task_id": a.task_id}
    return {
        "get_conversation": conv,
        "rename_conversation": {**conv, "title": "mine now"},
        "delete_conversation": conv,
        "append_message": {**conv, "role": "user", "content": "hello"},
        "append_messages": {**conv, "messages": [("user", "a"), ("assistant", "b")]},
        "get_messages": conv,
        "get_task": task,
        "update_task": {**task, "title": "mine now"},
        "complete_task": task,
        "delete_task": task,
    }


FUNCTIONS = sorted(calls(Alice(1, 1)))


@pytest.mark.parametrize("function", FUNCTIONS)
async def test_another_users_record_is_not_found_and_unchanged(
    store: Store, conn: psycopg.Connection, function: str
) -> None:
    alice = await alice_and_bob(store)
    before = snapshot(conn)
    with pytest.raises(NotFound):
        await getattr(store, function)(**calls(alice)[function])
    assert snapshot(conn) == before
    # Alice still sees her own record through the same function family.
    assert await store.get_conversation(user_id="alice", conversation_id=alice.conversation_id)
    assert (await store.get_task(user_id="alice", task_id=alice.task_id)).completed is False


@pytest.mark.parametrize("function", FUNCTIONS)
async def test_a_missing_record_is_not_found_the_same_way(store: Store, function: str) -> None:
    alice = await alice_and_bob(store)
    missing = Alice(alice.conversation_id + 1000, alice.task_id + 1000)
    kwargs = calls(missing)[function] | {"user_id": "alice"}
    with pytest.raises(NotFound) as caught:
        await getattr(store, function)(**kwargs)
    with pytest.raises(NotFound) as other:
        await getattr(store, function)(**calls(alice)[function])
    assert str(caught.value) == str(other.value)


async def test_listings_show_only_the_callers_rows(store: Store) -> None:
    await alice_and_bob(store)
    bob_conversations = await store.list_conversations(user_id="bob")
    assert [c.user_id for c in bob_conversations.items] == ["bob"]
    assert [t.title for t in await store.list_tasks(user_id="bob")] == ["bob's task"]


@pytest.mark.parametrize(
    ("function", "kwargs"),
    [
        ("create_conversation", {}),
        ("add_task", {"title": "x"}),
        ("list_conversations", {}),
        ("list_tasks", {}),
        ("get_user", {}),
        ("delete_user", {}),
    ],
)
async def test_unknown_user_is_not_found_and_changes_nothing(
    store: Store, conn: psycopg.Connection, function: str, kwargs: dict[str, Any]
) -> None:
    await alice_and_bob(store)
    before = snapshot(conn)
    with pytest.raises(NotFound):
        await getattr(store, function)(user_id="carol", **kwargs)
    assert snapshot(conn) == before
