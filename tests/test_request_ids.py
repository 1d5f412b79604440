"""Retry-safe appends (migration 0013): with a ``request_id``, a retried append_message,
append_messages or add_agent_items returns what the first call stored and writes
nothing, even when the first call's backend died after its commit or 8 retries race;
the same key with other messages (items) is InvalidInput; keys belong to one
conversation."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from chatstore import _core, queries, rls
from chatstore._sql import QUERIES
from chatstore.errors import InvalidInput, NotFound
from chatstore.models import Message, Role
from tests import _helpers
from tests._helpers import Store, snapshot, user
from tests.reliability_support import app_login, wait_until

store = _helpers.store

TURN: list[tuple[Role, str]] = [
    ("user", "add milk"),
    ("assistant", "Added: milk"),
    ("user", "thanks 🥛"),
]


async def _conversation(store: Store, user_id: str = "ann") -> int:
    await user(store, user_id)
    return int((await store.create_conversation(user_id=user_id)).id)


def _stored(conn: psycopg.Connection, user_id: str, conversation_id: int) -> list[Any]:
    """Each message's number, text and stored key, and the conversation's counter."""
    rows = conn.execute(
        "SELECT seq, role, content, request_id FROM messages"
        " WHERE user_id = %s AND conversation_id = %s ORDER BY seq",
        (user_id, conversation_id),
    ).fetchall()
    count = conn.execute(
        "SELECT message_count FROM conversations WHERE user_id = %s AND id = %s",
        (user_id, conversation_id),
    ).fetchone()
    return [rows, count]


async def test_request_ids_a_retried_append_returns_the_first_record_and_writes_nothing(
    store: Store, conn: psycopg.Connection
) -> None:
    conv = await _conversation(store)
    first = await store.append_message(
        user_id="ann", conversation_id=conv, role="user", content="add milk", request_id="r-1"
    )
    assert first.seq == 1
    assert Message.model_validate(first.model_dump()) == first
    before = snapshot(conn)
    for _ in range(3):
        again = await store.append_message(
            user_id="ann", conversation_id=conv, role="user", content="add milk", request_id="r-1"
        )
        assert again.model_dump() == first.model_dump()
    assert snapshot(conn) == before
    # Still the first call's record after other appends moved the conversation on.
    await store.append_message(user_id="ann", conversation_id=conv, role="assistant", content="ok")
    again = await store.append_message(
        user_id="ann", conversation_id=conv, role="user", content="add milk", request_id="r-1"
    )
    assert again == first
    assert _stored(conn, "ann", conv) == [
        [(1, "user", "add milk", "r-1"), (2, "assistant", "ok", None)],
        (2,),
    ]


async def test_request_ids_a_retried_batch_returns_the_first_records_and_writes_nothing(
    store: Store, conn: psycopg.Connection
) -> None:
    conv = await _conversation(store)
    await store.append_message(user_id="ann", conversation_id=conv, role="user", content="hi")
    first = await store.append_messages(
        user_id="ann", conversation_id=conv, messages=TURN, request_id="turn-7"
    )
    assert [(m.seq, m.role, m.content) for m in first] == [
        (n + 2, role, text) for n, (role, text) in enumerate(TURN)
    ]
    # The key on the first message, the key and its place on the next ones.
    assert _stored(conn, "ann", conv)[0][1:] == [
        (2, "user", "add milk", "turn-7"),
        (3, "assistant", "Added: milk", "turn-7 2"),
        (4, "user", "thanks 🥛", "turn-7 3"),
    ]
    before = snapshot(conn)
    again = await store.append_messages(
        user_id="ann", conversation_id=conv, messages=TURN, request_id="turn-7"
    )
    assert [m.model_dump() for m in again] == [m.model_dump() for m in first]
    assert snapshot(conn) == before
    # A batch of one and a single append with the same key are the same request.
    one = await store.append_messages(
        user_id="ann", conversation_id=conv, messages=[("user", "bye")], request_id="one"
    )
    assert [
        await store.append_message(
            user_id="ann", conversation_id=conv, role="user", content="bye", request_id="one"
        )
    ] == one


@pytest.mark.parametrize(
    ("retry", "why"),
    [
        (TURN[:2], "for more than 2 message"),
        ([*TURN, ("user", "more")], "for 3 message"),
        ([TURN[0], ("assistant", "Added: oat milk"), TURN[2]], "for other messages"),
        ([TURN[0], ("user", TURN[1][1]), TURN[2]], "for other messages"),
        ([("user", "add milk "), *TURN[1:]], "for other messages"),
        (TURN[:1], "for more than 1 message"),
    ],
    ids=["fewer", "more", "other-content", "other-role", "trailing-space", "single"],
)
async def test_request_ids_the_same_key_with_other_messages_is_invalid_input_and_writes_nothing(
    store: Store, conn: psycopg.Connection, retry: list[tuple[Role, str]], why: str
) -> None:
    conv = await _conversation(store)
    await store.append_messages(
        user_id="ann", conversation_id=conv, messages=TURN, request_id="turn-7"
    )
    await store.append_message(user_id="ann", conversation_id=conv, role="user", content="next")
    before = snapshot(conn)
    if len(retry) == 1:
        role, content = retry[0]
        call = store.append_message(
            user_id="ann", conversation_id=conv, role=role, content=content, request_id="turn-7"
        )
    else:
        call = store.append_messages(
            user_id="ann", conversation_id=conv, messages=retry, request_id="turn-7"
        )
    with pytest.raises(InvalidInput, match=f"request_id 'turn-7' was already used.*{why}"):
        await call
    assert snapshot(conn) == before
    # Refused by chatstore, not by the database: the connection serves the next call.
    assert len(await store.get_messages(user_id="ann", conversation_id=conv)) == 4


async def test_request_ids_a_single_append_retried_as_a_batch_of_two_is_invalid_input(
    store: Store, conn: psycopg.Connection
) -> None:
    conv = await _conversation(store)
    await store.append_message(
        user_id="ann", conversation_id=conv, role="user", content="add milk", request_id="k"
    )
    await store.append_message(
        user_id="ann", conversation_id=conv, role="assistant", content="Added: milk"
    )
    before = snapshot(conn)
    with pytest.raises(InvalidInput, match=r"for 1 message.*sends 2"):
        await store.append_messages(
            user_id="ann", conversation_id=conv, messages=TURN[:2], request_id="k"
        )
    assert snapshot(conn) == before


async def test_request_ids_keys_belong_to_one_conversation(
    store: Store, conn: psycopg.Connection
) -> None:
    first = await _conversation(store)
    second = int((await store.create_conversation(user_id="ann")).id)
    other = await _conversation(store, "bob")
    a = await store.append_messages(
        user_id="ann", conversation_id=first, messages=TURN, request_id="same"
    )
    # The same key elsewhere is another request: stored again, with other messages too.
    b = await store.append_message(
        user_id="ann", conversation_id=second, role="user", content="other", request_id="same"
    )
    c = await store.append_messages(
        user_id="bob", conversation_id=other, messages=TURN, request_id="same"
    )
    assert (b.conversation_id, b.seq, b.content) == (second, 1, "other")
    assert [(m.conversation_id, m.user_id, m.seq) for m in c] == [
        (other, "bob", n) for n in (1, 2, 3)
    ]
    again = await store.append_messages(
        user_id="ann", conversation_id=first, messages=TURN, request_id="same"
    )
    assert again == a
    # Another user's conversation with a key: NotFound, as without one; nothing written.
    before = snapshot(conn)
    with pytest.raises(NotFound):
        await store.append_messages(
            user_id="bob", conversation_id=first, messages=TURN, request_id="same"
        )
    with pytest.raises(NotFound):
        await store.append_message(
            user_id="ann", conversation_id=2**62, role="user", content="x", request_id="same"
        )
    assert snapshot(conn) == before


async def test_request_ids_keys_are_compared_exactly(store: Store) -> None:
    conv = await _conversation(store)
    keys = ["k", "K", "k2", "\u00e9", "e\u0301", "ключ-🥛", "x" * 255]
    stored = [
        await store.append_message(
            user_id="ann", conversation_id=conv, role="user", content=key, request_id=key
        )
        for key in keys
    ]
    assert [m.seq for m in stored] == list(range(1, len(keys) + 1))
    for key, message in zip(keys, stored, strict=True):
        again = await store.append_message(
            user_id="ann", conversation_id=conv, role="user", content=key, request_id=key
        )
        assert again == message


def test_request_ids_the_database_refuses_a_malformed_or_reused_key_from_raw_sql(
    conn: psycopg.Connection,
) -> None:
    """The API's rule is the database's: raw SQL cannot store a key the API would refuse,
    nor a key twice in one conversation; both map to InvalidInput."""
    queries.create_user(conn, id="ann", email="ann@example.com")
    conv = queries.create_conversation(conn, user_id="ann").id
    queries.append_messages(
        conn, user_id="ann", conversation_id=conv, messages=TURN[:2], request_id="k"
    )
    insert = (
        "INSERT INTO messages (user_id, conversation_id, role, content, request_id)"
        " VALUES ('ann', %s, 'user', 'x', %s)"
    )
    for key in ["", "a b", "tab\there", "zero\u200bwidth", "y" * 256, "k 0", "k x", "k 12345"]:
        with pytest.raises(psycopg.errors.CheckViolation) as caught:
            conn.execute(insert, (conv, key))
        error = _core.translate(caught.value)
        assert isinstance(error, InvalidInput)
        assert error.constraint == "messages_request_id_check"
    for key in ["k", "k 2"]:
        with pytest.raises(psycopg.errors.UniqueViolation) as taken:
            conn.execute(insert, (conv, key))
        error = _core.translate(taken.value)
        assert isinstance(error, InvalidInput)
        assert error.constraint == "messages_request_id_key"
    assert _stored(conn, "ann", conv)[1] == (2,)


def test_request_ids_a_retry_in_the_first_calls_transaction_sees_it_and_a_rollback_forgets_it(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    queries.create_user(conn, id="ann", email="ann@example.com")
    conv = queries.create_conversation(conn, user_id="ann").id
    with psycopg.connect(db_dsn) as tx:
        first = queries.append_messages(
            tx, user_id="ann", conversation_id=conv, messages=TURN, request_id="k"
        )
        again = queries.append_messages(
            tx, user_id="ann", conversation_id=conv, messages=TURN, request_id="k"
        )
        assert again == first
        tx.rollback()
        stored = queries.append_messages(
            tx, user_id="ann", conversation_id=conv, messages=TURN, request_id="k"
        )
        tx.commit()
    assert [m.seq for m in stored] == [1, 2, 3]
    assert _stored(conn, "ann", conv)[1] == (3,)


def test_request_ids_keyed_writes_hold_for_the_app_role_under_row_level_security(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    """As a service's role in chatstore_app, acting as the user: keyed writes and their
    retries work (the functions run with the caller's rights); acting as another user,
    the same key on the first user's conversation is NotFound and writes nothing."""
    ids = {}
    for uid in ("ann", "bob"):
        queries.create_user(conn, id=uid, email=f"{uid}@example.com")
        ids[uid] = queries.create_conversation(conn, user_id=uid).id
    with app_login(db_dsn) as app_dsn, psycopg.connect(app_dsn, autocommit=True) as app:
        for _ in range(2):
            with rls.acting_as(app, user_id="ann"):
                said = queries.append_messages(
                    app, user_id="ann", conversation_id=ids["ann"], messages=TURN, request_id="k"
                )
                done = queries.add_agent_items(
                    app, user_id="ann", conversation_id=ids["ann"], items=["x"], request_id="k"
                )
            assert [m.seq for m in said] == [1, 2, 3]
            assert [i.seq for i in done] == [1]
        before = snapshot(conn)
        with pytest.raises(NotFound), rls.acting_as(app, user_id="bob"):
            queries.append_messages(
                app, user_id="bob", conversation_id=ids["ann"], messages=TURN, request_id="k"
            )
        with pytest.raises(NotFound), rls.acting_as(app, user_id="bob"):
            queries.add_agent_items(
                app, user_id="bob", conversation_id=ids["ann"], items=["x"], request_id="k"
            )
        assert snapshot(conn) == before


def _lock_waiters(conn: psycopg.Connection) -> int:
    """Backends of this database waiting on a lock in a keyed write: on Citus, the
    workers' (citus_stat_activity), where the shard's row lock is waited for."""
    found = conn.execute("SELECT to_regclass('pg_catalog.citus_stat_activity')").fetchone()
    view = "pg_catalog.citus_stat_activity" if found and found[0] else "pg_stat_activity"
    row = conn.execute(
        f"SELECT count(*) FROM {view}"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        "   AND (strpos(query, 'chatstore_append_messages') > 0"
        "        OR strpos(query, 'chatstore_add_agent_items') > 0"
        "        OR strpos(query, 'FOR NO KEY UPDATE') > 0)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_request_ids_8_threads_sending_one_key_at_once_write_once_and_get_the_same_records(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    """8 clients send the same keyed batch while the conversation is locked, so that all
    8 wait at the same point, then race for the lock when it is released: exactly one
    writes; the other 7 return its records."""
    queries.create_user(conn, id="ann", email="ann@example.com")
    conv = queries.create_conversation(conn, user_id="ann").id
    results: list[list[Message]] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with psycopg.connect(db_dsn, autocommit=True) as own:
                results.append(
                    queries.append_messages(
                        own, user_id="ann", conversation_id=conv, messages=TURN, request_id="k"
                    )
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    with psycopg.connect(db_dsn) as holder:
        holder.execute(
            "SELECT FROM conversations WHERE user_id = 'ann' AND id = %s FOR UPDATE", (conv,)
        )
        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_until(lambda: _lock_waiters(conn) == 8, what="8 appends waiting on the lock")
        holder.rollback()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8
    assert all(r == results[0] for r in results)
    assert [(m.seq, m.role, m.content) for m in results[0]] == [
        (n + 1, role, text) for n, (role, text) in enumerate(TURN)
    ]
    assert _stored(conn, "ann", conv) == [
        [(1, *TURN[0], "k"), (2, *TURN[1], "k 2"), (3, *TURN[2], "k 3")],
        (3,),
    ]


def _send_without_reading(client: psycopg.Connection, name: str, params: dict[str, Any]) -> None:
    """Send the named query the API sends and return at once: the client never reads
    what the server answers, as one whose request timed out."""
    text = psycopg.ClientCursor(client).mogrify(QUERIES[name], params)
    client.pgconn.send_query(text.encode())


@pytest.mark.parametrize("kill", ["after-commit", "before-commit"])
async def test_request_ids_a_backend_killed_around_its_commit_then_retried_stores_one_copy(
    store: Store, conn: psycopg.Connection, db_dsn: str, kill: str
) -> None:
    """The first call is sent and its backend terminated, after it committed (the client
    never got the answer) or while it waited for the conversation's lock; the client
    retries on a new connection: one copy is stored, and the retry returns it."""
    conv = await _conversation(store)
    params = {
        "user_id": "ann",
        "conversation_id": conv,
        "request_id": "k",
        "roles": [role for role, _ in TURN],
        "contents": [text for _, text in TURN],
    }
    holder = psycopg.connect(db_dsn)
    try:
        if kill == "before-commit":
            holder.execute(
                "SELECT FROM conversations WHERE user_id = 'ann' AND id = %s FOR UPDATE", (conv,)
            )
        # Closed, never left by `with` (which would send a COMMIT on the busy line).
        client = psycopg.connect(db_dsn, autocommit=True)
        try:
            pid = client.info.backend_pid
            _send_without_reading(client, "append_keyed_messages", params)
            if kill == "after-commit":
                wait_until(lambda: len(_stored(conn, "ann", conv)[0]) == 3, what="the commit")
            else:
                wait_until(lambda: _lock_waiters(conn) == 1, what="the append waiting")
            assert conn.execute("SELECT pg_terminate_backend(%s::integer)", (pid,)).fetchone() == (
                True,
            )
            wait_until(
                lambda: (
                    conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
                    ).fetchone()
                    == (0,)
                ),
                what="the backend gone",
            )
        finally:
            client.close()
    finally:
        holder.close()
    retried = await store.append_messages(
        user_id="ann", conversation_id=conv, messages=TURN, request_id="k"
    )
    assert [(m.seq, m.role, m.content) for m in retried] == [
        (n + 1, role, text) for n, (role, text) in enumerate(TURN)
    ]
    assert _stored(conn, "ann", conv) == [
        [(1, *TURN[0], "k"), (2, *TURN[1], "k 2"), (3, *TURN[2], "k 3")],
        (3,),
    ]
    again = await store.append_messages(
        user_id="ann", conversation_id=conv, messages=TURN, request_id="k"
    )
    assert again == retried


# --- agent items: add_agent_items(request_id=...) --------------------------------------

ITEMS: list[Any] = [
    {"role": "user", "content": "add milk"},
    {"type": "function_call", "call_id": "c1", "name": "add_task", "arguments": "{}"},
    {"z": 1, "a": [1.5, None, True, 2**70], "nul": "a\u0000b"},
]
SAID: list[tuple[Role, str]] = [("user", "add milk")]


async def test_request_ids_a_retried_agent_add_returns_the_first_items_and_writes_nothing(
    store: Store, conn: psycopg.Connection
) -> None:
    conv = await _conversation(store)
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["before"])
    first = await store.add_agent_items(
        user_id="ann", conversation_id=conv, items=ITEMS, transcript=SAID, request_id="run-1"
    )
    assert [(i.slot, i.seq, i.item) for i in first] == [(n, n, ITEMS[n - 2]) for n in (2, 3, 4)]
    stored = conn.execute(
        "SELECT seq, request_id FROM agent_items WHERE user_id = 'ann' ORDER BY seq"
    ).fetchall()
    assert stored == [(1, None), (2, "run-1"), (3, "run-1 2"), (4, "run-1 3")]
    # After a pop and another add (the list moved on), a retry still returns the record.
    await store.pop_agent_item(user_id="ann", conversation_id=conv)
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["after"])
    before = snapshot(conn)
    again = await store.add_agent_items(
        user_id="ann", conversation_id=conv, items=ITEMS, transcript=SAID, request_id="run-1"
    )
    assert [a.model_dump() for a in again] == [f.model_dump() for f in first]
    assert snapshot(conn) == before
    assert [m.content for m in await store.get_messages(user_id="ann", conversation_id=conv)] == [
        "add milk"
    ]


@pytest.mark.parametrize(
    ("items", "why"),
    [
        (ITEMS[:2], "for more than 2 item"),
        ([*ITEMS, "more"], "for 3 item"),
        ([ITEMS[0], {**ITEMS[1], "arguments": '{"title":"milk"}'}, ITEMS[2]], "other items"),
        # The same value, other JSON text (key order): the Agents SDK hashes the text.
        ([ITEMS[0], dict(reversed(ITEMS[1].items())), ITEMS[2]], "other items"),
    ],
    ids=["fewer", "more", "other-item", "other-key-order"],
)
async def test_request_ids_the_same_key_with_other_agent_items_is_invalid_input(
    store: Store, conn: psycopg.Connection, items: list[Any], why: str
) -> None:
    conv = await _conversation(store)
    await store.add_agent_items(
        user_id="ann", conversation_id=conv, items=ITEMS, transcript=SAID, request_id="run-1"
    )
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["next"])
    before = snapshot(conn)
    call = store.add_agent_items(
        user_id="ann", conversation_id=conv, items=items, transcript=SAID, request_id="run-1"
    )
    with pytest.raises(InvalidInput, match=f"request_id 'run-1' was already used.*{why}"):
        await call
    assert snapshot(conn) == before
    # The key of an agent add is not a message's, nor the other way round.
    said = await store.append_message(
        user_id="ann", conversation_id=conv, role="user", content="hi", request_id="run-1"
    )
    assert said.seq == 2


async def test_request_ids_agent_keys_belong_to_one_conversation(
    store: Store, conn: psycopg.Connection
) -> None:
    first = await _conversation(store)
    second = int((await store.create_conversation(user_id="ann")).id)
    a = await store.add_agent_items(
        user_id="ann", conversation_id=first, items=ITEMS, request_id="k"
    )
    b = await store.add_agent_items(
        user_id="ann", conversation_id=second, items=["other"], request_id="k"
    )
    assert [(i.conversation_id, i.seq, i.item) for i in b] == [(second, 1, "other")]
    assert (
        await store.add_agent_items(
            user_id="ann", conversation_id=first, items=ITEMS, request_id="k"
        )
        == a
    )
    await user(store, "bob")
    before = snapshot(conn)
    with pytest.raises(NotFound):
        await store.add_agent_items(
            user_id="bob", conversation_id=first, items=ITEMS, request_id="k"
        )
    with pytest.raises(NotFound):
        await store.add_agent_items(
            user_id="ann", conversation_id=2**62, items=ITEMS, request_id="k"
        )
    assert snapshot(conn) == before


def test_request_ids_8_threads_adding_one_keyed_agent_turn_at_once_write_it_once(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    queries.create_user(conn, id="ann", email="ann@example.com")
    conv = queries.create_conversation(conn, user_id="ann").id
    results: list[list[Any]] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with psycopg.connect(db_dsn, autocommit=True) as own:
                results.append(
                    queries.add_agent_items(
                        own,
                        user_id="ann",
                        conversation_id=conv,
                        items=ITEMS,
                        transcript=SAID,
                        request_id="run-1",
                    )
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    with psycopg.connect(db_dsn) as holder:
        holder.execute(
            "SELECT FROM conversations WHERE user_id = 'ann' AND id = %s FOR UPDATE", (conv,)
        )
        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        wait_until(lambda: _lock_waiters(conn) == 8, what="8 adds waiting on the lock")
        holder.rollback()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 8
    assert all(r == results[0] for r in results)
    assert [(i.slot, i.seq, i.item) for i in results[0]] == [
        (n + 1, n + 1, item) for n, item in enumerate(ITEMS)
    ]
    counts = conn.execute(
        "SELECT agent_item_count, agent_item_top, message_count FROM conversations"
        " WHERE user_id = 'ann' AND id = %s",
        (conv,),
    ).fetchone()
    assert counts == (3, 3, 1)
    assert conn.execute("SELECT count(*) FROM agent_items").fetchone() == (3,)
