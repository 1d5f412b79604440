"""Records are built from rows without validation (chatstore._core.build); every
function's records must still equal what validating the same values would give."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from chatstore import _core
from chatstore.models import Message
from tests import _helpers
from tests._helpers import Store

store = _helpers.store


def assert_valid(record: Any) -> None:
    assert isinstance(record, BaseModel)
    validated = type(record).model_validate(dict(record.__dict__))  # extra="forbid": exact columns
    assert validated == record
    assert record.model_fields_set == validated.model_fields_set
    assert record.model_dump() == validated.model_dump()
    assert hash(record) == hash(validated)


async def test_every_function_returns_records_equal_to_validated_ones(store: Store) -> None:
    records: list[Any] = [
        await store.create_user(id="ann", email="ann@example.com", name="Ann"),
        await store.get_user(user_id="ann"),
    ]
    conversation = await store.create_conversation(user_id="ann", title="Plans")
    records += [
        conversation,
        await store.get_conversation(user_id="ann", conversation_id=conversation.id),
        await store.rename_conversation(user_id="ann", conversation_id=conversation.id, title="X"),
        await store.append_message(
            user_id="ann", conversation_id=conversation.id, role="user", content="hello"
        ),
        *await store.append_messages(
            user_id="ann",
            conversation_id=conversation.id,
            messages=[("user", "a"), ("assistant", "b")],
        ),
        *await store.get_messages(user_id="ann", conversation_id=conversation.id, limit=2),
    ]
    page = await store.list_conversations(user_id="ann")
    records += [page, *page.items]
    task = await store.add_task(user_id="ann", title="Milk", description="2 l")
    records += [
        task,
        await store.get_task(user_id="ann", task_id=task.id),
        await store.update_task(user_id="ann", task_id=task.id, title="Oat milk"),
        await store.complete_task(user_id="ann", task_id=task.id),
        *await store.list_tasks(user_id="ann", status="all"),
    ]
    assert len(records) == 17
    for record in records:
        assert_valid(record)


def test_records_from_tuple_rows_equal_validated_ones_and_refuse_other_columns() -> None:
    names = ("seq", "id", "conversation_id", "user_id", "role", "content", "created_at")
    now = datetime.now(UTC)
    rows = [(i, 10 + i, 7, "ann", "user", f"text {i}", now) for i in range(1, 4)]
    built = _core.records(Message, names, rows)
    assert [m.seq for m in built] == [1, 2, 3]
    for record, row in zip(built, rows, strict=True):
        assert_valid(record)
        assert record == Message.model_validate(dict(zip(names, row, strict=True)))
    assert _core.records(Message, names, []) == []
    with pytest.raises(TypeError, match="not the fields of Message"):
        _core.records(Message, names[:-1], [row[:-1] for row in rows])
