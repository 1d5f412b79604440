"""Archive and retention (migration 0015): archive_conversation / unarchive_conversation,
list_conversations' two views, and the retention job, chatstore.retention's
purge_conversations, under concurrent appends.

Every test asks only for ``store``, ``conn`` and ``db_dsn``, so tests/test_citus.py runs
this module again on the Citus cluster: there the API's connections are limited to one
shard, while the purge (an operator's job across users) connects as ``conn`` does, the
owner, free to touch every shard (``conn.info.dsn``).
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from chatstore import queries, retention
from chatstore.errors import InvalidInput, NotFound, PermissionDenied
from tests import _helpers
from tests._helpers import Store, snapshot, user
from tests.reliability_support import app_login

store = _helpers.store

OLD = timedelta(days=100)
CUTOFF = timedelta(days=90)


async def _conversations(store: Store, user_id: str, count: int) -> list[int]:
    """``count`` new conversations of a new user, oldest first (each updated after the
    one before: a message each)."""
    await user(store, user_id)
    ids = []
    for n in range(count):
        conversation = await store.create_conversation(user_id=user_id, title=f"c{n}")
        await store.append_message(
            user_id=user_id, conversation_id=conversation.id, role="user", content=f"m{n}"
        )
        ids.append(conversation.id)
    return ids


async def _listed(store: Store, user_id: str, *, archived: bool = False) -> list[int]:
    page = await store.list_conversations(user_id=user_id, limit=100, archived=archived)
    assert page.next_cursor is None
    return [c.id for c in page.items]


# --- archive -------------------------------------------------------------------------------


async def test_archiving_hides_a_conversation_from_the_listing_and_unarchiving_restores_it(
    store: Store,
) -> None:
    first, second, third = await _conversations(store, "ann", 3)
    assert await _listed(store, "ann") == [third, second, first]
    before = await store.get_conversation(user_id="ann", conversation_id=second)
    assert before.archived_at is None

    archived = await store.archive_conversation(user_id="ann", conversation_id=second)
    assert archived.archived_at is not None
    # Nothing else moved.
    assert {**archived.model_dump(), "archived_at": None} == before.model_dump()
    assert await store.get_conversation(user_id="ann", conversation_id=second) == archived
    assert await _listed(store, "ann") == [third, first]
    assert await _listed(store, "ann", archived=True) == [second]

    restored = await store.unarchive_conversation(user_id="ann", conversation_id=second)
    assert restored == before  # back at its place: updated_at never moved
    assert await _listed(store, "ann") == [third, second, first]
    assert await _listed(store, "ann", archived=True) == []


async def test_archiving_twice_keeps_the_first_time_and_unarchiving_a_listed_one_changes_nothing(
    store: Store,
) -> None:
    (conversation,) = await _conversations(store, "ann", 1)
    listed = await store.unarchive_conversation(user_id="ann", conversation_id=conversation)
    assert listed == await store.get_conversation(user_id="ann", conversation_id=conversation)
    assert listed.archived_at is None
    once = await store.archive_conversation(user_id="ann", conversation_id=conversation)
    twice = await store.archive_conversation(user_id="ann", conversation_id=conversation)
    assert twice == once
    assert await store.unarchive_conversation(user_id="ann", conversation_id=conversation) == listed
    assert await store.unarchive_conversation(user_id="ann", conversation_id=conversation) == listed


async def test_an_archived_conversation_is_read_renamed_and_appended_to_and_stays_archived(
    store: Store,
) -> None:
    older, newer = await _conversations(store, "ann", 2)
    await store.archive_conversation(user_id="ann", conversation_id=newer)
    await store.archive_conversation(user_id="ann", conversation_id=older)
    assert await _listed(store, "ann", archived=True) == [newer, older]
    message = await store.append_message(
        user_id="ann", conversation_id=older, role="assistant", content="still here"
    )
    assert message.seq == 2
    renamed = await store.rename_conversation(user_id="ann", conversation_id=older, title="kept")
    assert renamed.archived_at is not None
    assert renamed.message_count == 2
    # The append moved it to the front of its view, not out of it.
    assert await _listed(store, "ann", archived=True) == [older, newer]
    assert await _listed(store, "ann") == []
    history = await store.get_messages(user_id="ann", conversation_id=older)
    assert [m.content for m in history] == ["m0", "still here"]


async def test_each_view_pages_in_order_and_the_two_views_split_the_conversations(
    store: Store,
) -> None:
    ids = await _conversations(store, "ann", 23)
    archived = set(ids[::3])
    for conversation in sorted(archived, key=lambda _: random.random()):
        await store.archive_conversation(user_id="ann", conversation_id=conversation)
    for view, expected in ((False, set(ids) - archived), (True, archived)):
        seen: list[int] = []
        cursor = None
        while True:
            page = await store.list_conversations(
                user_id="ann", limit=4, cursor=cursor, archived=view
            )
            assert all((c.archived_at is not None) == view for c in page.items)
            seen += [c.id for c in page.items]
            if page.next_cursor is None:
                break
            assert len(page.items) == 4
            cursor = page.next_cursor
        # Newest first (each conversation was updated after the one before it), each once.
        assert seen == sorted(expected, reverse=True), view


async def test_archive_and_unarchive_another_users_conversation_are_not_found_and_change_nothing(
    store: Store, conn: psycopg.Connection
) -> None:
    (mine,) = await _conversations(store, "ann", 1)
    await user(store, "bob")
    before = snapshot(conn)
    for missing in (
        {"user_id": "bob", "conversation_id": mine},
        {"user_id": "ann", "conversation_id": mine + 1},
        {"user_id": "nobody", "conversation_id": mine},
    ):
        with pytest.raises(NotFound, match="no such conversation"):
            await store.archive_conversation(**missing)
        with pytest.raises(NotFound, match="no such conversation"):
            await store.unarchive_conversation(**missing)
    assert snapshot(conn) == before
    with pytest.raises(NotFound, match="no such user"):
        await store.list_conversations(user_id="nobody", archived=True)
    assert await _listed(store, "bob", archived=True) == []


async def test_archived_must_be_a_bool(store: Store) -> None:
    await user(store, "ann")
    for wrong in ("yes", 1, None):
        with pytest.raises(InvalidInput, match="archived must be True or False"):
            await store.list_conversations(user_id="ann", archived=wrong)


# --- purge ---------------------------------------------------------------------------------


def _distributed(conn: psycopg.Connection) -> bool:
    if conn.execute("SELECT FROM pg_extension WHERE extname = 'citus'").fetchone() is None:
        return False
    row = conn.execute(
        "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'conversations'::regclass"
    ).fetchone()
    return row == (1,)


def _age(conn: psycopg.Connection, user_id: str, ids: list[int], by: timedelta) -> None:
    """Make conversations look idle for ``by``: what the owner does in a test, never the
    API (updated_at only moves forwards through it)."""
    row = conn.execute("SELECT now() - %s::interval", [by]).fetchone()
    assert row is not None
    # A value, not now() in the statement: Citus refuses now() inside CASE.
    conn.execute(
        "UPDATE conversations"
        " SET created_at = least(created_at, %(at)s), updated_at = %(at)s,"
        "     last_message_at = CASE WHEN last_message_at IS NOT NULL THEN %(at)s END"
        " WHERE user_id = %(user_id)s AND id = ANY(%(ids)s)",
        {"user_id": user_id, "ids": ids, "at": row[0]},
    )


def _make(conn: psycopg.Connection, user_id: str, count: int, *, messages: int = 2) -> list[int]:
    """``count`` conversations of ``user_id`` (created if new), each with ``messages``
    messages and one agent item; their ids."""
    if conn.execute("SELECT FROM users WHERE id = %s", [user_id]).fetchone() is None:
        queries.create_user(conn, id=user_id, email=f"{user_id}@example.com")
    ids = []
    for _ in range(count):
        conversation = queries.create_conversation(conn, user_id=user_id).id
        queries.add_agent_items(
            conn,
            user_id=user_id,
            conversation_id=conversation,
            items=[{"type": "reasoning"}],
            transcript=[("user" if k % 2 == 0 else "assistant", f"t{k}") for k in range(messages)],
        )
        ids.append(conversation)
    return ids


def _ids(conn: psycopg.Connection) -> set[int]:
    return {r[0] for r in conn.execute("SELECT id FROM conversations").fetchall()}


def _rows(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _purge(conn: psycopg.Connection, **kwargs: Any) -> retention.PurgeReport:
    kwargs.setdefault("older_than", CUTOFF)
    return retention.purge_conversations(conn.info.dsn, **kwargs)


def test_purge_deletes_exactly_the_conversations_idle_past_the_cutoff_with_what_they_hold(
    conn: psycopg.Connection,
) -> None:
    ann_old = _make(conn, "ann", 3, messages=3)
    bob_old = _make(conn, "bob", 2, messages=1)
    recent = _make(conn, "ann", 2) + _make(conn, "bob", 1)
    _age(conn, "ann", ann_old, OLD)
    _age(conn, "bob", bob_old, OLD)
    # Idle for 89 days: kept. Created long ago but written to today: kept.
    almost = _make(conn, "carol", 1)
    _age(conn, "carol", almost, timedelta(days=89))
    revived = _make(conn, "carol", 1)
    _age(conn, "carol", revived, OLD)
    queries.append_message(
        conn, user_id="carol", conversation_id=revived[0], role="user", content="back"
    )
    # Archived and old: purged like any other. Renamed today, last message long ago:
    # purged (last activity is the last message). Without messages: its creation or
    # rename counts.
    queries.archive_conversation(conn, user_id="ann", conversation_id=ann_old[0])
    queries.rename_conversation(conn, user_id="bob", conversation_id=bob_old[0], title="new")
    empty_old, empty_renamed = (queries.create_conversation(conn, user_id="carol").id for _ in "ab")
    _age(conn, "carol", [empty_old, empty_renamed], OLD)
    queries.rename_conversation(conn, user_id="carol", conversation_id=empty_renamed, title="x")
    kept = set(recent + almost + revived + [empty_renamed])
    messages, items = _rows(conn, "messages"), _rows(conn, "agent_items")

    report = _purge(conn)

    assert _ids(conn) == kept
    assert (report.conversations, report.messages, report.agent_items) == (6, 3 * 3 + 2 * 1, 5)
    assert _rows(conn, "messages") == messages - report.messages
    assert _rows(conn, "agent_items") == items - report.agent_items
    orphans = conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = ANY(%s)", [ann_old + bob_old]
    ).fetchone()
    assert orphans == (0,)
    assert report.batches == 1
    assert report.dry_run is False
    assert report.seconds > 0
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    assert abs(now[0] - CUTOFF - report.cutoff) < timedelta(minutes=5)
    # Nothing left to do: a second run finds nothing.
    again = _purge(conn)
    assert (again.conversations, again.batches) == (0, 0)
    assert _ids(conn) == kept


def test_purge_commits_each_batch_of_batch_size_on_its_own(conn: psycopg.Connection) -> None:
    old = _make(conn, "ann", 7, messages=1)
    _age(conn, "ann", old, OLD)
    log = not _distributed(conn)
    if log:  # Each deleting transaction, as a trigger sees it (plain PostgreSQL only).
        conn.execute(
            """
            CREATE TABLE purge_log (xid xid8, id bigint);
            CREATE FUNCTION log_purge() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO purge_log VALUES (pg_current_xact_id(), OLD.id); RETURN OLD; END $$;
            CREATE TRIGGER log_purge AFTER DELETE ON conversations
                FOR EACH ROW EXECUTE FUNCTION log_purge();
            """
        )
    report = _purge(conn, batch_size=3)
    assert (report.conversations, report.messages, report.batches) == (7, 7, 3)
    assert _ids(conn) == set()
    if log:
        sizes = conn.execute(
            "SELECT count(*) FROM purge_log GROUP BY xid ORDER BY min(id)"
        ).fetchall()
        assert sizes == [(3,), (3,), (1,)]


def test_purge_archived_only_keeps_old_conversations_that_are_listed(
    conn: psycopg.Connection,
) -> None:
    old = _make(conn, "ann", 4)
    recent_archived = _make(conn, "ann", 1)
    for conversation in old[:2] + recent_archived:
        queries.archive_conversation(conn, user_id="ann", conversation_id=conversation)
    _age(conn, "ann", old, OLD)
    report = _purge(conn, archived_only=True, batch_size=1)
    assert (report.conversations, report.batches) == (2, 2)
    assert _ids(conn) == set(old[2:] + recent_archived)


def test_purge_dry_run_counts_what_a_run_would_delete_and_deletes_nothing(
    conn: psycopg.Connection,
) -> None:
    old = _make(conn, "ann", 5, messages=4) + _make(conn, "bob", 1, messages=2)
    _make(conn, "bob", 2)
    _age(conn, "ann", old[:5], OLD)
    _age(conn, "bob", old[5:], OLD)
    before = snapshot(conn)
    dry = _purge(conn, dry_run=True, batch_size=2)
    assert snapshot(conn) == before
    assert dry.dry_run is True
    assert (dry.conversations, dry.messages, dry.agent_items, dry.batches) == (6, 22, 6, 3)
    real = _purge(conn, batch_size=2)
    assert (real.conversations, real.messages, real.agent_items, real.batches) == (6, 22, 6, 3)


def test_purge_passes_over_a_conversation_held_by_an_open_transaction_without_waiting(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    old = _make(conn, "ann", 6)
    _age(conn, "ann", old, OLD)
    with psycopg.connect(db_dsn) as holder:
        # An application transaction that holds one old conversation's row lock (an
        # append, then a slow model call before its commit, say).
        holder.execute(
            "SELECT FROM conversations WHERE user_id = 'ann' AND id = %s FOR UPDATE", [old[3]]
        )
        started = time.monotonic()
        report = _purge(conn, batch_size=4, lock_timeout=0.2)
        took = time.monotonic() - started
        holder.rollback()
    assert report.conversations == 5
    assert _ids(conn) == {old[3]}
    assert took < 5  # never waited for the holder's commit (0.2 s at most on Citus)
    assert _purge(conn).conversations == 1  # released: the next run takes it
    assert _ids(conn) == set()


def test_purge_under_concurrent_appends_spares_what_is_written_to_and_never_blocks_it(
    conn: psycopg.Connection, db_dsn: str
) -> None:
    """Writers append to recent and to old conversations while the purge runs: no error
    reaches them but NotFound for a conversation it purged, nothing recent or written
    to is deleted, and no append waits long for a lock (the figures: `pytest -s`)."""
    users = [f"user{n}" for n in range(4)]
    old: dict[int, str] = {}
    recent: dict[int, str] = {}
    for uid in users:
        for conversation in _make(conn, uid, 60, messages=2):
            old[conversation] = uid
        for conversation in _make(conn, uid, 3, messages=2):
            recent[conversation] = uid
        _age(conn, uid, [c for c, owner in old.items() if owner == uid], OLD)
    targets = list(old.items()) + list(recent.items()) * 10  # as many appends to each kind
    stop = threading.Event()
    lock = threading.Lock()
    acknowledged: dict[int, int] = {}
    not_found: set[int] = set()
    failures: list[BaseException] = []
    waits: dict[str, list[float]] = {"old": [], "recent": []}

    def append(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with psycopg.connect(db_dsn, autocommit=True) as writer:
                while not stop.is_set():
                    conversation, uid = rng.choice(targets)
                    kind = "old" if conversation in old else "recent"
                    started = time.monotonic()
                    try:
                        queries.append_message(
                            writer,
                            user_id=uid,
                            conversation_id=conversation,
                            role="user",
                            content="more",
                        )
                    except NotFound:
                        with lock:
                            not_found.add(conversation)
                        continue
                    took = time.monotonic() - started
                    with lock:
                        acknowledged[conversation] = acknowledged.get(conversation, 0) + 1
                        waits[kind].append(took)
        except BaseException as exc:  # reported below
            failures.append(exc)

    writers = [threading.Thread(target=append, args=(n,)) for n in range(4)]
    for thread in writers:
        thread.start()
    try:
        time.sleep(0.1)
        report = _purge(conn, batch_size=5)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in writers:
            thread.join()

    assert failures == []
    left = {
        row[0]: row[1]
        for row in conn.execute("SELECT id, message_count FROM conversations").fetchall()
    }
    purged = set(old) - set(left)
    assert set(recent) <= set(left)
    assert not_found <= purged, "NotFound only for a conversation the purge took"
    for conversation, count in acknowledged.items():  # every acknowledged append is kept
        assert left[conversation] == 2 + count
    # Old and never written to: purged. Old and written to before the purge reached it:
    # spared, its updated_at having moved.
    assert purged == set(old) - set(acknowledged)
    assert report.conversations == len(purged) > 0
    assert report.messages == 2 * len(purged)
    assert all(waits.values()), waits
    worst = {kind: max(times) for kind, times in waits.items()}
    print(
        f"purge under appends: {report.conversations} conversations in {report.batches}"
        f" batches, {report.seconds:.3f} s; appends {len(waits['recent'])} recent,"
        f" {len(waits['old'])} old; slowest append (any lock wait included):"
        f" recent {worst['recent'] * 1000:.1f} ms, old {worst['old'] * 1000:.1f} ms"
    )
    assert max(worst.values()) < 2.0


def test_purge_refuses_the_app_role_which_row_level_security_shows_nothing(
    conn: psycopg.Connection,
) -> None:
    old = _make(conn, "ann", 1)
    _age(conn, "ann", old, OLD)
    with app_login(conn.info.dsn) as app_dsn, pytest.raises(PermissionDenied, match="owner"):
        retention.purge_conversations(app_dsn, older_than=CUTOFF)
    assert _ids(conn) == set(old)


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"older_than": timedelta(0)}, "older_than"),
        ({"older_than": timedelta(seconds=-1)}, "older_than"),
        ({"older_than": timedelta(days=36_501)}, "older_than"),
        ({"older_than": 90}, "older_than"),
        ({"older_than": "90d"}, "older_than"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10_001}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"batch_size": 5.0}, "batch_size"),
        ({"archived_only": "yes"}, "archived_only"),
        ({"dry_run": 1}, "dry_run"),
        ({"lock_timeout": 0}, "lock_timeout"),
        ({"lock_timeout": float("nan")}, "lock_timeout"),
    ],
)
def test_purge_refuses_bad_arguments_before_connecting(
    kwargs: dict[str, Any], complaint: str
) -> None:
    nowhere = "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=1"
    with pytest.raises(InvalidInput, match=complaint):
        retention.purge_conversations(nowhere, **{"older_than": CUTOFF, **kwargs})
