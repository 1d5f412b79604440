"""Users and tasks through the API, each test run on chatstore.queries and chatstore.aio."""

from __future__ import annotations

import psycopg
import pytest

from chatstore.errors import AlreadyExists, InvalidInput, NotFound
from chatstore.models import Task, User
from tests import _helpers
from tests._helpers import Store, snapshot, user

store = _helpers.store


async def test_create_user_returns_the_stored_user(store: Store) -> None:
    created = await store.create_user(id="auth0|42", email="ann@example.com", name="Ann")
    assert isinstance(created, User)
    assert (created.id, created.email, created.name) == ("auth0|42", "ann@example.com", "Ann")
    assert await store.get_user(user_id="auth0|42") == created


async def test_create_user_with_taken_id_or_email_is_already_exists(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    before = snapshot(conn)
    with pytest.raises(AlreadyExists) as by_id:
        await store.create_user(id="ann", email="other@example.com")
    with pytest.raises(AlreadyExists) as by_email:
        await store.create_user(id="bob", email="ann@example.com")
    assert (by_id.value.constraint, by_email.value.constraint) == ("users_pkey", "users_email_key")
    assert isinstance(by_id.value.__cause__, psycopg.errors.UniqueViolation)
    assert snapshot(conn) == before


async def test_get_user_of_missing_id_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_user(user_id="nobody")


async def test_delete_user_cascades_to_tasks_conversations_and_messages(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    await store.add_task(user_id="ann", title="milk")
    conversation = await store.create_conversation(user_id="ann")
    await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content="hi"
    )
    await store.delete_user(user_id="ann")
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tasks),"
        " (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
    ).fetchone()
    assert counts == (0, 0, 0, 0)
    with pytest.raises(NotFound):
        await store.delete_user(user_id="ann")


async def test_add_task_trims_the_title_and_starts_pending(store: Store) -> None:
    await user(store, "ann")
    task = await store.add_task(user_id="ann", title="  buy milk \n", description="2 litres")
    assert isinstance(task, Task)
    assert (task.title, task.description, task.completed) == ("buy milk", "2 litres", False)
    assert await store.get_task(user_id="ann", task_id=task.id) == task


async def test_add_task_for_unknown_user_is_not_found(
    store: Store, conn: psycopg.Connection
) -> None:
    before = snapshot(conn)
    with pytest.raises(NotFound):
        await store.add_task(user_id="ghost", title="x")
    assert snapshot(conn) == before


async def test_list_tasks_filters_by_status_in_creation_order(store: Store) -> None:
    await user(store, "ann")
    a = await store.add_task(user_id="ann", title="a")
    b = await store.add_task(user_id="ann", title="b")
    c = await store.add_task(user_id="ann", title="c")
    b = await store.complete_task(user_id="ann", task_id=b.id)
    assert [t.id for t in await store.list_tasks(user_id="ann")] == [a.id, b.id, c.id]
    assert [t.id for t in await store.list_tasks(user_id="ann", status="all")] == [a.id, b.id, c.id]
    assert [t.id for t in await store.list_tasks(user_id="ann", status="pending")] == [a.id, c.id]
    assert await store.list_tasks(user_id="ann", status="completed") == [b]


async def test_list_tasks_of_user_without_tasks_is_empty_and_of_unknown_user_not_found(
    store: Store,
) -> None:
    await user(store, "ann")
    assert await store.list_tasks(user_id="ann") == []
    with pytest.raises(NotFound):
        await store.list_tasks(user_id="ghost")


async def test_update_task_changes_only_what_is_given(store: Store) -> None:
    await user(store, "ann")
    task = await store.add_task(user_id="ann", title="a", description="d")
    renamed = await store.update_task(user_id="ann", task_id=task.id, title=" b ")
    assert (renamed.title, renamed.description) == ("b", "d")
    described = await store.update_task(user_id="ann", task_id=task.id, description="e")
    assert (described.title, described.description) == ("b", "e")
    assert described.updated_at >= task.updated_at


async def test_complete_task_is_idempotent(store: Store) -> None:
    await user(store, "ann")
    task = await store.add_task(user_id="ann", title="a")
    done = await store.complete_task(user_id="ann", task_id=task.id)
    again = await store.complete_task(user_id="ann", task_id=task.id)
    assert done.completed
    assert again.completed


async def test_delete_task_removes_it(store: Store) -> None:
    await user(store, "ann")
    task = await store.add_task(user_id="ann", title="a")
    await store.delete_task(user_id="ann", task_id=task.id)
    with pytest.raises(NotFound):
        await store.get_task(user_id="ann", task_id=task.id)
    with pytest.raises(NotFound):
        await store.delete_task(user_id="ann", task_id=task.id)


async def test_update_task_without_changes_is_invalid_input(store: Store) -> None:
    await user(store, "ann")
    task = await store.add_task(user_id="ann", title="a")
    with pytest.raises(InvalidInput):
        await store.update_task(user_id="ann", task_id=task.id)
