"""Agent items (migration 0012): an agent session's list per conversation, kept exactly,
append-only underneath, with pop and clear; its user and assistant text in messages."""

from __future__ import annotations

import json
import threading
from typing import Any

import psycopg
import pytest

from chatstore import queries
from chatstore.errors import InvalidInput, NotFound
from tests import _helpers
from tests._helpers import Store, snapshot, user

store = _helpers.store

ITEMS: list[Any] = [
    {"role": "user", "content": "add milk"},
    {"type": "function_call", "call_id": "c1", "name": "add_task", "arguments": '{"title":"milk"}'},
    {"type": "function_call_output", "call_id": "c1", "output": ""},
    {"z": 1, "a": [1.5, None, True, 2**70], "nul": "a\u0000b", "emoji": "🥛 é 漢"},
    "a lone \ud800 surrogate",
    [],
]


async def _conversation(store: Store, user_id: str = "ann") -> int:
    await user(store, user_id)
    return int((await store.create_conversation(user_id=user_id)).id)


async def test_items_come_back_exactly_in_order_with_their_numbers(store: Store) -> None:
    conv = await _conversation(store)
    added = await store.add_agent_items(user_id="ann", conversation_id=conv, items=ITEMS)
    assert [(a.slot, a.seq) for a in added] == [(n, n) for n in range(1, 7)]
    got = await store.get_agent_items(user_id="ann", conversation_id=conv)
    assert [g.item for g in got] == ITEMS
    # Exactly: the same JSON text, key order included, as the Agents SDK hashes it.
    assert [json.dumps(g.item) for g in got] == [json.dumps(i) for i in ITEMS]
    assert [g.model_dump() for g in got] == [a.model_dump() for a in added]


async def test_limit_reads_the_newest_oldest_first(store: Store) -> None:
    conv = await _conversation(store)
    for n in range(5):
        await store.add_agent_items(user_id="ann", conversation_id=conv, items=[n, n + 100])
    latest = await store.get_agent_items(user_id="ann", conversation_id=conv, limit=3)
    assert [i.item for i in latest] == [103, 4, 104]
    assert await store.get_agent_items(user_id="ann", conversation_id=conv, limit=0) == []
    every = await store.get_agent_items(user_id="ann", conversation_id=conv, limit=10**6)
    assert [i.item for i in every] == [v for n in range(5) for v in (n, n + 100)]


async def test_pop_and_clear_change_the_list_and_keep_the_record(
    store: Store, conn: psycopg.Connection
) -> None:
    conv = await _conversation(store)
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["a", "b", "c"])
    popped = await store.pop_agent_item(user_id="ann", conversation_id=conv)
    assert popped is not None
    assert (popped.item, popped.slot, popped.seq) == ("c", 3, 3)
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["d"])
    items = await store.get_agent_items(user_id="ann", conversation_id=conv)
    assert [(i.item, i.slot, i.seq) for i in items] == [("a", 1, 1), ("b", 2, 2), ("d", 3, 4)]

    pops = [await store.pop_agent_item(user_id="ann", conversation_id=conv) for _ in range(4)]
    assert [p.item if p else None for p in pops] == ["d", "b", "a", None]
    assert await store.get_agent_items(user_id="ann", conversation_id=conv) == []

    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["e", "f"])
    await store.clear_agent_items(user_id="ann", conversation_id=conv)
    assert await store.get_agent_items(user_id="ann", conversation_id=conv) == []
    assert await store.pop_agent_item(user_id="ann", conversation_id=conv) is None
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["g"])
    assert [i.item for i in await store.get_agent_items(user_id="ann", conversation_id=conv)] == [
        "g"
    ]
    # Nothing was updated or deleted: every item ever added is on record, in seq order.
    record = conn.execute("SELECT item::text FROM agent_items ORDER BY seq").fetchall()
    assert [json.loads(r[0]) for r in record] == ["a", "b", "c", "d", "e", "f", "g"]


async def test_text_a_person_reads_joins_the_transcript_in_the_same_call(store: Store) -> None:
    conv = await _conversation(store)
    await store.add_agent_items(
        user_id="ann",
        conversation_id=conv,
        items=[*ITEMS[:3], {"role": "assistant", "content": "Added milk."}],
        transcript=[("user", "add milk"), ("assistant", "Added milk.")],
    )
    messages = await store.get_messages(user_id="ann", conversation_id=conv)
    assert [(m.seq, m.role, m.content) for m in messages] == [
        (1, "user", "add milk"),
        (2, "assistant", "Added milk."),
    ]
    conversation = await store.get_conversation(user_id="ann", conversation_id=conv)
    assert (conversation.title, conversation.message_count) == ("add milk", 2)


async def test_another_users_conversation_is_not_found_and_nothing_changes(
    store: Store, conn: psycopg.Connection
) -> None:
    conv = await _conversation(store, "ann")
    await user(store, "bob")
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["mine"])
    before = snapshot(conn)
    for missing in (
        {"user_id": "bob", "conversation_id": conv},
        {"user_id": "ann", "conversation_id": conv + 1},
    ):
        with pytest.raises(NotFound):
            await store.add_agent_items(**missing, items=["x"], transcript=[("user", "x")])
        with pytest.raises(NotFound):
            await store.get_agent_items(**missing)
        with pytest.raises(NotFound):
            await store.get_agent_items(**missing, limit=0)
        with pytest.raises(NotFound):
            await store.pop_agent_item(**missing)
        with pytest.raises(NotFound):
            await store.clear_agent_items(**missing)
    assert snapshot(conn) == before


async def test_a_one_megabyte_tool_output_round_trips_and_the_bound_holds(store: Store) -> None:
    conv = await _conversation(store)
    output = {"type": "function_call_output", "call_id": "c", "output": "é" * 1_000_000}
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=[output])
    (got,) = await store.get_agent_items(user_id="ann", conversation_id=conv)
    assert got.item == output
    with pytest.raises(InvalidInput, match="4194304 bytes"):
        await store.add_agent_items(user_id="ann", conversation_id=conv, items=["x" * 4_194_303])


def test_items_are_append_only_and_go_with_their_conversation(conn: psycopg.Connection) -> None:
    queries.create_user(conn, id="ann", email="ann@example.com")
    conv = queries.create_conversation(conn, user_id="ann").id
    queries.add_agent_items(conn, user_id="ann", conversation_id=conv, items=[1, 2])
    with pytest.raises(psycopg.errors.IntegrityError, match="agent_items_append_only"):
        conn.execute("UPDATE agent_items SET item = '3' WHERE user_id = 'ann'")
    queries.delete_conversation(conn, user_id="ann", conversation_id=conv)
    assert conn.execute("SELECT count(*) FROM agent_items").fetchone() == (0,)


def test_concurrent_adds_number_every_item_once(conn: psycopg.Connection, db_dsn: str) -> None:
    queries.create_user(conn, id="ann", email="ann@example.com")
    conv = queries.create_conversation(conn, user_id="ann").id
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with psycopg.connect(db_dsn, autocommit=True) as own:
                for k in range(20):
                    queries.add_agent_items(
                        own, user_id="ann", conversation_id=conv, items=[[n, k, 0], [n, k, 1]]
                    )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    items = queries.get_agent_items(conn, user_id="ann", conversation_id=conv)
    assert [i.slot for i in items] == list(range(1, 161))
    assert sorted(i.seq for i in items) == list(range(1, 161))
    # Each call's two items are adjacent, and each writer's calls keep their order.
    for first, second in zip(items[::2], items[1::2], strict=True):
        assert first.item[:2] == second.item[:2]
        assert (first.item[2], second.item[2]) == (0, 1)
    for n in range(4):
        assert [i.item[1] for i in items[::2] if i.item[0] == n] == list(range(20))


def test_a_pop_waiting_on_an_add_returns_the_added_item(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    """The pop locks the conversation, then reads with a snapshot taken after the lock:
    it returns the item the add it waited for committed, not the one below it."""
    queries.create_user(conn, id="ann", email="ann@example.com")
    conv = queries.create_conversation(conn, user_id="ann").id
    queries.add_agent_items(conn, user_id="ann", conversation_id=conv, items=["below"])
    result: list[Any] = []
    with psycopg.connect(db_dsn) as adder, psycopg.connect(db_dsn, autocommit=True) as popper:
        queries.add_agent_items(adder, user_id="ann", conversation_id=conv, items=["added"])
        thread = threading.Thread(
            target=lambda: result.append(
                queries.pop_agent_item(popper, user_id="ann", conversation_id=conv)
            )
        )
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the adder's row lock
        adder.commit()
        thread.join()
    assert result[0] is not None
    assert result[0].item == "added"
    left = queries.get_agent_items(conn, user_id="ann", conversation_id=conv)
    assert [i.item for i in left] == ["below"]
