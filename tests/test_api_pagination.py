"""Keyset pagination of list_conversations over 1,000 conversations.

The guarantee: a walk of next_cursor pages never returns a conversation twice, returns
them in (updated_at, id) descending order as read, and returns exactly once every
conversation that no one touches during the walk. A conversation bumped by a new message
during the walk moves ahead of the cursor: the walk skips it when it had not reached it
yet (it is at the front of the next walk). The one exception is a bump made by a
transaction that started before a page was read and commits after (updated_at is that
transaction's start time), which can place a conversation behind the cursor again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tests import _helpers
from tests._helpers import Store, user

store = _helpers.store

COUNT = 1_000


def make_conversations(conn: psycopg.Connection, user_id: str) -> list[int]:
    """COUNT conversations whose updated_at tie in threes; their ids, newest first."""
    conn.execute(
        """
        INSERT INTO conversations (user_id, title, created_at, updated_at)
        SELECT %(user_id)s, 'c' || g, ts, ts
        FROM generate_series(1, %(count)s) AS g,
             LATERAL (SELECT timestamptz '2026-01-01 00:00Z' + (g / 3) * interval '1 s') AS t (ts)
        """,
        {"user_id": user_id, "count": COUNT},
    )
    rows = conn.execute(
        "SELECT id FROM conversations WHERE user_id = %s ORDER BY updated_at DESC, id DESC",
        [user_id],
    ).fetchall()
    return [r[0] for r in rows]


async def walk(store: Store, user_id: str, limit: int, between: Any = None) -> list[Any]:
    seen: list[Any] = []
    cursor = None
    while True:
        page = await store.list_conversations(user_id=user_id, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += page.items
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor
        if between is not None:
            await between(seen)


async def test_walking_all_pages_yields_each_conversation_once_in_order(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    await user(store, "bob")
    expected = make_conversations(conn, "ann")
    make_conversations(conn, "bob")
    seen = await walk(store, "ann", limit=37)
    assert [c.id for c in seen] == expected
    assert {c.user_id for c in seen} == {"ann"}


async def test_walk_while_new_messages_reorder_conversations_never_repeats_one(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    expected = make_conversations(conn, "ann")
    bumped_seen: list[int] = []
    bumped_ahead: list[int] = []

    async def bump(seen: list[Any]) -> None:
        seen_ids = {c.id for c in seen}
        # One conversation already returned, one not reached yet (from the far end).
        old = seen[len(seen) // 2].id
        ahead = next(i for i in reversed(expected) if i not in seen_ids and i not in bumped_ahead)
        for conversation_id in (old, ahead):
            await store.append_message(
                user_id="ann", conversation_id=conversation_id, role="user", content="bump"
            )
        bumped_seen.append(old)
        bumped_ahead.append(ahead)

    seen = await walk(store, "ann", limit=50, between=bump)
    ids = [c.id for c in seen]
    assert len(ids) == len(set(ids)), "a conversation came back twice"
    keys = [(c.updated_at, c.id) for c in seen]
    assert keys == sorted(keys, reverse=True)
    untouched = [i for i in expected if i not in bumped_ahead and i not in bumped_seen]
    assert [i for i in ids if i in set(untouched)] == untouched
    assert not set(bumped_ahead) & set(ids), "skipped: they moved ahead of the cursor"
    # The next walk starts with them, most recently bumped first.
    first = await store.list_conversations(user_id="ann", limit=2 * len(bumped_ahead))
    assert {c.id for c in first.items} == set(bumped_ahead) | set(bumped_seen)
    assert first.items[0].id == bumped_ahead[-1]


async def test_cursor_of_another_user_shows_only_the_callers_rows(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    await user(store, "bob")
    make_conversations(conn, "ann")
    make_conversations(conn, "bob")
    ann_page = await store.list_conversations(user_id="ann", limit=10)
    last = ann_page.items[-1]
    bob_page = await store.list_conversations(user_id="bob", cursor=ann_page.next_cursor)
    assert {c.user_id for c in bob_page.items} == {"bob"}
    # The cursor is only a position: bob's own rows past it, scoped by user_id in SQL.
    rows = conn.execute(
        "SELECT id FROM conversations WHERE user_id = 'bob' AND (updated_at, id) < (%s, %s)"
        " ORDER BY updated_at DESC, id DESC LIMIT 20",
        [last.updated_at, last.id],
    ).fetchall()
    assert [c.id for c in bob_page.items] == [r[0] for r in rows]
