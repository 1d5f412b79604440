"""Session settings a service may legitimately have do not change records (issue 12).

Each test runs every public function, sync and async, on a connection whose session has
one non-default setting, and compares every record with the same record read through a
default connection: equal (a ``str`` field is a ``str``, a time the same instant), or the
call raises chatstore's error before writing anything (the database is unchanged).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from chatstore import aio, queries
from chatstore.errors import ChatstoreError, InvalidInput
from tests._helpers import Store, snapshot

# Settings under which every record must come out exactly as on a default connection.
EXACT: list[tuple[str, str]] = [
    ("DateStyle", "SQL, DMY"),
    ("DateStyle", "German"),
    ("DateStyle", "Postgres, MDY"),
    ("DateStyle", "ISO, DMY"),
    ("IntervalStyle", "sql_standard"),
    ("IntervalStyle", "iso_8601"),
    ("TimeZone", "Asia/Kolkata"),
    ("TimeZone", "America/St_Johns"),
    ("TimeZone", "Pacific/Kiritimati"),
    ("extra_float_digits", "-15"),
    ("bytea_output", "escape"),
    ("standard_conforming_strings", "off"),
    ("search_path", "public, pg_catalog"),
    ("default_transaction_isolation", "serializable"),
    ("client_encoding", "UTF8"),
]
# Settings under which records cannot be exact: every call is refused before any SQL.
# psycopg encodes and decodes text in the session's client_encoding: LATIN1 and its
# like cannot carry every character, and under SQL_ASCII text comes back as bytes.
REFUSED: list[tuple[str, str]] = [
    ("client_encoding", "LATIN1"),
    ("client_encoding", "WIN1252"),
    ("client_encoding", "EUC_JP"),
    ("client_encoding", "SQL_ASCII"),
]
# Text that no single-byte encoding holds, with characters that differ between them.
CONTENT = "Grüße, naïve café: 東京 🙂 \\n 'quoted' \\\\ back\\slash"


def _id(setting: tuple[str, str]) -> str:
    return f"{setting[0]}={setting[1]}"


@pytest.fixture(params=["sync", "async"])
async def fresh(request: pytest.FixtureRequest, db_dsn: str) -> AsyncIterator[Store]:
    """The API on an autocommit connection of its own, to be given a setting."""
    if request.param == "sync":
        with psycopg.connect(db_dsn, autocommit=True) as sync_conn:
            yield Store(queries, sync_conn, "sync")
    else:
        async_conn = await psycopg.AsyncConnection.connect(db_dsn, autocommit=True)
        async with async_conn:
            yield Store(aio, async_conn, "async")


async def _set(api: Store, name: str, value: str) -> None:
    """``SET name = value`` for the session, as a service's pool ``configure`` would."""
    result = api.conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    if api.kind == "async":
        await result


async def every_function(api: Store, default: psycopg.Connection) -> None:
    """Every public function under the session's setting; each record equals the one a
    default connection reads (``default``: the owner's autocommit connection)."""

    def same(record: Any, expected: Any) -> None:
        assert record == expected
        for name, value in dict(record).items():
            assert type(value) is type(getattr(expected, name)), name

    user = await api.create_user(id="ann", email="ann@example.com", name="Änne 🙂")
    same(user, queries.get_user(default, user_id="ann"))
    same(await api.get_user(user_id="ann"), user)
    first = await api.create_conversation(user_id="ann")
    second = await api.create_conversation(user_id="ann", title=" Zweite, 東京 ")
    same(second, queries.get_conversation(default, user_id="ann", conversation_id=second.id))
    message = await api.append_message(
        user_id="ann", conversation_id=first.id, role="user", content=CONTENT
    )
    batch = await api.append_messages(
        user_id="ann",
        conversation_id=first.id,
        messages=[("assistant", "Réponse 🙂"), ("user", CONTENT[::-1])],
    )
    history = queries.get_messages(default, user_id="ann", conversation_id=first.id)
    assert [message, *batch] == history
    for got, expected in zip([message, *batch], history, strict=True):
        same(got, expected)
    # A keyed append and its retry (migration 0013): the retry compares the stored text.
    keyed = await api.append_messages(
        user_id="ann", conversation_id=first.id, messages=[("user", CONTENT)], request_id="ключ🙂"
    )
    again = await api.append_message(
        user_id="ann", conversation_id=first.id, role="user", content=CONTENT, request_id="ключ🙂"
    )
    assert [again] == keyed
    same(again, queries.get_messages(default, user_id="ann", conversation_id=first.id)[-1])
    for kwargs in ({}, {"limit": 2}, {"before": 3}, {"after": 1, "limit": 1}):
        got_messages = await api.get_messages(user_id="ann", conversation_id=first.id, **kwargs)
        assert got_messages == queries.get_messages(
            default, user_id="ann", conversation_id=first.id, **kwargs
        )
    got_conversation = await api.get_conversation(user_id="ann", conversation_id=first.id)
    same(
        got_conversation,
        queries.get_conversation(default, user_id="ann", conversation_id=first.id),
    )
    # A walk one conversation a page: the cursor made under the setting works there and
    # on a default connection alike.
    page = await api.list_conversations(user_id="ann", limit=1)
    expected_page = queries.list_conversations(default, user_id="ann", limit=1)
    assert page == expected_page
    assert page.next_cursor is not None
    rest = await api.list_conversations(user_id="ann", limit=1, cursor=page.next_cursor)
    assert rest == queries.list_conversations(
        default, user_id="ann", limit=1, cursor=page.next_cursor
    )
    assert [c.id for c in (*page.items, *rest.items)] == [first.id, second.id]
    # Search: the same hits (rank, snippet and offsets included), a page at a time, and
    # the cursor made under the setting works there and on a default connection alike.
    hits = await api.search_messages(user_id="ann", query="café OR réponse", limit=1)
    assert hits == queries.search_messages(default, user_id="ann", query="café OR réponse", limit=1)
    assert hits.next_cursor is not None
    same(hits.items[0], hits.items[0].model_validate(dict(hits.items[0])))
    more = await api.search_messages(
        user_id="ann", query="café OR réponse", limit=1, cursor=hits.next_cursor
    )
    assert more == queries.search_messages(
        default, user_id="ann", query="café OR réponse", limit=1, cursor=hits.next_cursor
    )
    assert {h.snippet for h in (*hits.items, *more.items)} <= {CONTENT, "Réponse 🙂"}
    renamed = await api.rename_conversation(
        user_id="ann", conversation_id=second.id, title="Ümlaut 🙂"
    )
    same(renamed, queries.get_conversation(default, user_id="ann", conversation_id=second.id))
    archived = await api.archive_conversation(user_id="ann", conversation_id=second.id)
    same(archived, queries.get_conversation(default, user_id="ann", conversation_id=second.id))
    shelf = await api.list_conversations(user_id="ann", archived=True)
    assert shelf == queries.list_conversations(default, user_id="ann", archived=True)
    assert [c.id for c in shelf.items] == [second.id]
    same(shelf.items[0], archived)
    restored = await api.unarchive_conversation(user_id="ann", conversation_id=second.id)
    same(restored, queries.get_conversation(default, user_id="ann", conversation_id=second.id))
    # Agent items: JSON kept as text, so no setting may touch a number's spelling (floats
    # under extra_float_digits), a backslash (standard_conforming_strings) or a character.
    items: list[Any] = [
        {"role": "user", "content": CONTENT, "z": 0.1, "a": [2**70, -1.5e-300, None, True]},
        {"type": "function_call_output", "output": "a\u0000b \ud800 \\ 'q' 東京"},
        CONTENT,
    ]
    added = await api.add_agent_items(
        user_id="ann",
        conversation_id=second.id,
        items=items,
        transcript=[("user", "Grüße 東京"), ("assistant", CONTENT)],
    )
    stored = queries.get_agent_items(default, user_id="ann", conversation_id=second.id)
    assert [i.item for i in stored] == items
    for got_item, expected_item in zip(added, stored, strict=True):
        same(got_item, expected_item)
    for limit in (None, 0, 2):
        got_items = await api.get_agent_items(user_id="ann", conversation_id=second.id, limit=limit)
        expected_items = queries.get_agent_items(
            default, user_id="ann", conversation_id=second.id, limit=limit
        )
        assert got_items == expected_items
        for got_item, expected_item in zip(got_items, expected_items, strict=True):
            same(got_item, expected_item)
    transcript = queries.get_messages(default, user_id="ann", conversation_id=second.id)
    assert [(m.role, m.content) for m in transcript] == [
        ("user", "Grüße 東京"),
        ("assistant", CONTENT),
    ]
    popped = await api.pop_agent_item(user_id="ann", conversation_id=second.id)
    assert popped is not None
    same(popped, stored[-1])
    assert queries.get_agent_items(default, user_id="ann", conversation_id=second.id) == stored[:-1]
    await api.clear_agent_items(user_id="ann", conversation_id=second.id)
    assert queries.get_agent_items(default, user_id="ann", conversation_id=second.id) == []
    assert await api.pop_agent_item(user_id="ann", conversation_id=second.id) is None
    # A keyed add and its retry: the retry compares the stored JSON text.
    keyed_items = await api.add_agent_items(
        user_id="ann", conversation_id=second.id, items=items, request_id="ключ🙂"
    )
    again_items = await api.add_agent_items(
        user_id="ann", conversation_id=second.id, items=items, request_id="ключ🙂"
    )
    assert again_items == keyed_items
    for got_item, expected_item in zip(
        again_items,
        queries.get_agent_items(default, user_id="ann", conversation_id=second.id),
        strict=True,
    ):
        same(got_item, expected_item)
    task = await api.add_task(user_id="ann", title="Kaffee ☕", description=CONTENT)
    same(task, queries.get_task(default, user_id="ann", task_id=task.id))
    updated = await api.update_task(user_id="ann", task_id=task.id, title="Tee 🍵")
    same(updated, queries.get_task(default, user_id="ann", task_id=task.id))
    done = await api.complete_task(user_id="ann", task_id=task.id)
    same(done, queries.get_task(default, user_id="ann", task_id=task.id))
    assert await api.list_tasks(user_id="ann") == queries.list_tasks(default, user_id="ann")
    same(await api.get_task(user_id="ann", task_id=task.id), done)
    await api.delete_task(user_id="ann", task_id=task.id)
    assert queries.list_tasks(default, user_id="ann") == []
    await api.delete_conversation(user_id="ann", conversation_id=second.id)
    assert [c.id for c in queries.list_conversations(default, user_id="ann").items] == [first.id]
    await api.delete_user(user_id="ann")
    assert default.execute("SELECT count(*) FROM users").fetchone() == (0,)


@pytest.mark.parametrize("setting", EXACT, ids=_id)
async def test_session_settings_leave_every_record_exact(
    fresh: Store, conn: psycopg.Connection, setting: tuple[str, str]
) -> None:
    await _set(fresh, *setting)
    await every_function(fresh, conn)


def calls_of_every_function(
    conversation_id: int, task_id: int
) -> list[tuple[str, dict[str, object]]]:
    """One call of every public function (name, arguments), on rows that exist."""
    uid, cid, tid = "bob", conversation_id, task_id
    return [
        ("create_user", {"id": "ann", "email": "ann@example.com"}),
        ("get_user", {"user_id": uid}),
        ("delete_user", {"user_id": uid}),
        ("create_conversation", {"user_id": uid, "title": "t"}),
        ("get_conversation", {"user_id": uid, "conversation_id": cid}),
        ("list_conversations", {"user_id": uid}),
        ("rename_conversation", {"user_id": uid, "conversation_id": cid, "title": "renamed"}),
        ("archive_conversation", {"user_id": uid, "conversation_id": cid}),
        ("unarchive_conversation", {"user_id": uid, "conversation_id": cid}),
        ("delete_conversation", {"user_id": uid, "conversation_id": cid}),
        (
            "append_message",
            {"user_id": uid, "conversation_id": cid, "role": "user", "content": "hi"},
        ),
        (
            "append_messages",
            {
                "user_id": uid,
                "conversation_id": cid,
                "messages": [("user", "hi")],
                "request_id": "k",
            },
        ),
        ("get_messages", {"user_id": uid, "conversation_id": cid}),
        ("add_task", {"user_id": uid, "title": "t"}),
        ("list_tasks", {"user_id": uid}),
        ("get_task", {"user_id": uid, "task_id": tid}),
        ("update_task", {"user_id": uid, "task_id": tid, "title": "u"}),
        ("complete_task", {"user_id": uid, "task_id": tid}),
        ("delete_task", {"user_id": uid, "task_id": tid}),
        (
            "add_agent_items",
            {
                "user_id": uid,
                "conversation_id": cid,
                "items": [{"content": CONTENT}],
                "transcript": [("user", CONTENT)],
                "request_id": "k",
            },
        ),
        ("get_agent_items", {"user_id": uid, "conversation_id": cid}),
        ("pop_agent_item", {"user_id": uid, "conversation_id": cid}),
        ("clear_agent_items", {"user_id": uid, "conversation_id": cid}),
        ("search_messages", {"user_id": uid, "query": "hi"}),
    ]


@pytest.mark.parametrize("setting", REFUSED, ids=_id)
async def test_session_settings_that_cannot_give_exact_records_are_refused_before_any_sql(
    fresh: Store, conn: psycopg.Connection, setting: tuple[str, str]
) -> None:
    queries.create_user(conn, id="bob", email="bob@example.com")
    conversation = queries.create_conversation(conn, user_id="bob")
    queries.append_message(
        conn, user_id="bob", conversation_id=conversation.id, role="user", content=CONTENT
    )
    task = queries.add_task(conn, user_id="bob", title="t")
    # Items for pop and clear to remove, were they to run.
    queries.add_agent_items(conn, user_id="bob", conversation_id=conversation.id, items=[1, 2])
    before = snapshot(conn)
    await _set(fresh, *setting)
    calls = calls_of_every_function(conversation.id, task.id)
    assert sorted(name for name, _ in calls) == sorted(aio.__all__) == sorted(queries.__all__)
    for name, kwargs in calls:
        with pytest.raises(InvalidInput, match="client_encoding"):
            await getattr(fresh, name)(**kwargs)
    assert snapshot(conn) == before
    # The connection is fine otherwise: with the setting reset it serves again.
    await _set(fresh, setting[0], "UTF8")
    assert (await fresh.get_user(user_id="bob")).email == "bob@example.com"


async def test_a_search_path_without_chatstores_tables_is_a_chatstore_error_before_writing(
    fresh: Store, conn: psycopg.Connection
) -> None:
    queries.create_user(conn, id="bob", email="bob@example.com")
    conversation = queries.create_conversation(conn, user_id="bob")
    task = queries.add_task(conn, user_id="bob", title="t")
    queries.add_agent_items(conn, user_id="bob", conversation_id=conversation.id, items=[1, 2])
    before = snapshot(conn)
    await _set(fresh, "search_path", "pg_catalog")
    for name, kwargs in calls_of_every_function(conversation.id, task.id):
        with pytest.raises(ChatstoreError, match="does not exist"):
            await getattr(fresh, name)(**kwargs)
    assert snapshot(conn) == before
