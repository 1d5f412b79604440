"""Hostile and malformed input: every public function, driven by hypothesis with
arbitrary text (NUL, lone surrogates, right-to-left marks, 1 MB strings, emoji, SQL),
ids (0, negative, beyond bigint, wrong types), roles, limits and cursors (forged,
truncated, another user's), and agent items (any JSON value, values JSON has no
spelling for, too many, too big). The only outcomes are a correct result or one of
chatstore's typed errors, and after an error the database is unchanged.

Agent items are JSON values, not text a person typed: NUL and lone surrogates in them
are legitimate and kept exactly (as JSON escapes). A value is stored exactly (it comes
back equal, with the same JSON text) or refused with InvalidInput.
"""

from __future__ import annotations

import asyncio
import functools
import json
import types
import typing
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatstore import _blank, _core, aio, queries
from chatstore.errors import ChatstoreError, InvalidInput, NotFound, Unavailable
from tests import _helpers
from tests._helpers import Store, snapshot, user

store = _helpers.store
closed = _helpers.closed

# Pieces that have broken text handling somewhere: NUL, lone surrogates, bidi controls,
# zero-width and combining characters, emoji sequences, quoting and placeholders.
HOSTILE_PIECES = [
    "\x00",
    "\ud800",
    "\udfff",
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE
    "\u200f",  # RIGHT-TO-LEFT MARK
    "\u2066",  # LEFT-TO-RIGHT ISOLATE
    "\u200b",  # ZERO WIDTH SPACE
    "\ufeff",
    "\u0301",
    "🙂",
    "👩\u200d👩\u200d👧",
    "🏳️\u200d🌈",
    "مرحبا",
    "שלום",
    "'",
    '"',
    "\\",
    "%s",
    "%(user_id)s",
    "$1",
    "$$",
    "--",
    "/*",
    ";",
    "\r\n",
    "\t",
    " ",
    "'; DROP TABLE messages; --",
    "' OR '1'='1",
    "\\x00",
]
BIG = ["x" * 1_000_000, "🙂" * 250_000, " " * 1_000_000, "a" * 32_001, "b" * 32_000]


# Hostile but valid: what a user may really type (no NUL, no lone surrogate).
SAFE_PIECES = [p for p in HOSTILE_PIECES if p not in ("\x00", "\ud800", "\udfff")]
_typed = st.characters(exclude_characters="\x00", exclude_categories=["Cs"])

clean_text = (
    st.lists(
        st.one_of(st.text(_typed, max_size=5), st.sampled_from(SAFE_PIECES)),
        min_size=1,
        max_size=12,
    )
    .map("".join)
    .filter(lambda t: not _blank.is_blank(t))
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.text(max_size=5), st.sampled_from(HOSTILE_PIECES)), max_size=12).map(
        "".join
    ),
    st.sampled_from(BIG),
)
# Mostly text a user could type, often text nobody should.
any_text = st.one_of(clean_text, clean_text, hostile_text)
bad_ids = st.one_of(
    st.sampled_from([0, -1, 1, 2, 2**31, 2**63 - 1, 2**63, -(2**63), 2**64, 10**30]),
    st.integers(),
    st.booleans(),
    st.just(None),
    st.text(max_size=3),
    st.floats(allow_nan=True),
)
roles = st.one_of(
    st.sampled_from(["user", "assistant"]),
    st.sampled_from(["user", "assistant", "system", "User", " user", "", "tool"]),
    st.text(),
)
limits = st.one_of(
    st.sampled_from([None, 1, 2, 20, 100]),
    st.sampled_from([0, -1, 101, 1000, 1001, 2**63, True, 1.5, "10"]),
    st.integers(),
)
_word = st.text(
    st.characters(exclude_characters="\x00@", exclude_categories=["Cs", "Zs", "Cc"]),
    min_size=1,
    max_size=20,
).filter(lambda t: not any(c.isspace() for c in t))
new_user_ids = st.one_of(_word, _word, hostile_text, bad_ids)
emails = st.one_of(st.builds("{}@{}".format, _word, _word), hostile_text)
SEEDED = ("alice", "bob")

# --- agent items: JSON values, hostile text in them (no 1 MB strings: kept small, as the
# state compared around every call holds every stored item).
_item_text = st.one_of(
    clean_text,
    st.text(max_size=40),
    st.lists(st.one_of(st.text(max_size=5), st.sampled_from(HOSTILE_PIECES)), max_size=12).map(
        "".join
    ),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**63, -(2**63) - 1, 10**100, 0.1, -0.0, 1e308, 5e-324]),
        st.floats(allow_nan=False, allow_infinity=False),
        _item_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_item_text, inner, max_size=4)
    ),
    max_leaves=10,
)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# Values JSON cannot hold, or holds only as another value: InvalidInput, or (for those
# json.dumps accepts) stored so that they come back equal. Built when drawn: some are big.
NOT_JSON: list[Callable[[], Any]] = [
    lambda: float("nan"),
    lambda: float("inf"),
    lambda: -float("inf"),
    lambda: b"bytes",
    lambda: {1, 2},
    lambda: complex(1, 2),
    object,
    lambda: datetime(2030, 1, 1, tzinfo=UTC),
    lambda: 10**5000,  # more digits than int() may spell
    lambda: _nested(5000),  # deeper than json.dumps goes
    lambda: "x" * 4_194_303,  # 4 MiB + 2 bytes as JSON
    lambda: "é" * 2_097_152,  # under 4 Mi characters, over 4 MiB
    # JSON spells these as another value: {"1": ...}, [...], one astral character.
    lambda: {1: "an int key"},
    lambda: {None: 1, True: 2, 1.5: 3},
    lambda: {1: "a", "1": "b"},
    lambda: (1, "tuple"),
    lambda: "\ud800\udfff",  # a high then a low surrogate: one character in JSON
]
_not_json = st.sampled_from(NOT_JSON).map(lambda build: build())
_bad_item_lists = st.one_of(
    st.lists(st.one_of(json_values, _not_json), min_size=1, max_size=4),
    st.just([]),
    st.builds(lambda: [0] * 1001),
    st.builds(lambda: ["x" * 4_000_000] * 17),  # each fits, not together (64 MiB)
    st.dictionaries(st.text(max_size=3), json_values, max_size=2),  # a mapping, not a list
    any_text,
    bad_ids,
)


class Ref:
    """A record of a seeded user, resolved when the call runs (records come and go)."""

    def __init__(self, kind: str, user: str) -> None:
        self.kind, self.user = kind, user

    def __repr__(self) -> str:
        return f"<{self.kind} of {self.user}>"


def _user_ids() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from([*SEEDED, "alice", "bob", "nobody"]), any_text, bad_ids)


def _ref(kind: str) -> st.SearchStrategy[Any]:
    """Mostly a seeded user's record (their own or the other user's), else a bad id."""
    return st.one_of(st.sampled_from([Ref(kind, u) for u in SEEDED]), bad_ids)


class World:
    """The database of one test: alice and bob, each with conversations of messages and a
    task; a listing cursor of each. Deleted records are replaced, so that later calls
    still find some."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.ids: dict[tuple[str, str], int] = {}
        self.cursors: dict[str, str] = {}
        for uid in SEEDED:
            self.reseed(uid)

    def reseed(self, uid: str) -> None:
        conn = self.conn
        try:
            queries.get_user(conn, user_id=uid)
        except NotFound:
            queries.create_user(conn, id=uid, email=f"{uid}@example.com")
        try:
            queries.get_conversation(
                conn, user_id=uid, conversation_id=self.ids.get(("conversation", uid), 1)
            )
        except (NotFound, InvalidInput):
            for n in range(3):
                conv = queries.create_conversation(conn, user_id=uid, title=f"{uid} {n}")
                queries.append_messages(
                    conn,
                    user_id=uid,
                    conversation_id=conv.id,
                    messages=[("user", "q"), ("assistant", "a"), ("user", "q2")],
                )
                queries.add_agent_items(
                    conn,
                    user_id=uid,
                    conversation_id=conv.id,
                    items=[{"role": "user", "content": "q"}, {"n": n}, "a\x00\ud800"],
                )
            self.ids["conversation", uid] = conv.id
        try:
            queries.get_task(conn, user_id=uid, task_id=self.ids.get(("task", uid), 1))
        except (NotFound, InvalidInput):
            self.ids["task", uid] = queries.add_task(conn, user_id=uid, title="t").id
        page = queries.list_conversations(conn, user_id=uid, limit=1)
        if page.next_cursor is not None:
            self.cursors[uid] = page.next_cursor

    def resolve(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in kwargs.items():
            if isinstance(value, Ref):
                value = (
                    self.cursors[value.user]
                    if value.kind == "cursor"
                    else self.ids[value.kind, value.user]
                )
            out[key] = value
        return out

    def state(self) -> list[list[tuple[Any, ...]]]:
        c = self.conn
        return [
            c.execute("SELECT id, email, name FROM users ORDER BY id").fetchall(),
            c.execute(
                "SELECT id, user_id, title, description, completed, updated_at"
                " FROM tasks ORDER BY id"
            ).fetchall(),
            c.execute(
                "SELECT id, user_id, title, updated_at, agent_item_count, agent_item_top"
                " FROM conversations ORDER BY id"
            ).fetchall(),
            c.execute(
                "SELECT id, conversation_id, user_id, role, content FROM messages ORDER BY id"
            ).fetchall(),
            c.execute(
                "SELECT conversation_id, seq, slot, user_id, item::text FROM agent_items"
                " ORDER BY conversation_id, seq"
            ).fetchall(),
        ]


def _cursors() -> st.SearchStrategy[Any]:
    real = st.sampled_from([Ref("cursor", u) for u in SEEDED])  # possibly the other user's
    forged = st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        min_size=23,
        max_size=23,
    )
    made = st.builds(
        _core.encode_cursor,
        st.datetimes(timezones=st.just(UTC)),
        st.integers(1, 2**63 - 1),
    )
    truncated = made.flatmap(lambda c: st.integers(0, len(c) - 1).map(lambda k: c[:k]))
    return st.one_of(st.just(None), real, real, made, forged, truncated, any_text, bad_ids)


def _search_cursors(*, valid: bool) -> st.SearchStrategy[Any]:
    """search_messages' cursors: none or well formed (a position anywhere, possibly past
    every match); and, unless ``valid``, forged, cut short, or anything at all."""
    made = st.builds(
        _core.encode_search_cursor,
        st.floats(0, 1e6, width=32),
        st.integers(1, 2**63 - 1),
        st.integers(1, 2**63 - 1),
        st.datetimes(timezones=st.just(UTC)),
    )
    if valid:
        return st.one_of(st.none(), made)
    forged = st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        min_size=39,
        max_size=39,
    )
    truncated = made.flatmap(lambda c: st.integers(0, len(c) - 1).map(lambda k: c[:k]))
    return st.one_of(st.none(), made, forged, truncated, _cursors(), any_text, bad_ids)


def _pairs() -> st.SearchStrategy[Any]:
    pair = st.one_of(st.tuples(roles, any_text), st.lists(any_text, max_size=3))
    return st.one_of(st.lists(pair, min_size=1, max_size=5), any_text, bad_ids)


def _calls() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """A function name and keyword arguments for it: half the time valid ones (but with
    hostile text a user could type), half the time anything at all."""
    valid = st.sampled_from(SEEDED).flatmap(lambda owner: _calls_of(owner=owner))
    return st.one_of(valid, _calls_of(owner=None))


def _calls_of(*, owner: str | None) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """Valid calls of ``owner`` on their own records, or (no owner) anything at all."""
    if owner is not None:
        users: st.SearchStrategy[Any] = st.just(owner)
        conv = st.just(Ref("conversation", owner))
        task = st.just(Ref("task", owner))
        text: st.SearchStrategy[Any] = clean_text
        role: st.SearchStrategy[Any] = st.sampled_from(["user", "assistant"])
        limit: st.SearchStrategy[Any] = st.sampled_from([None, 1, 2, 20, 100])
        cursor = st.one_of(st.none(), st.just(Ref("cursor", owner)))
        ids: st.SearchStrategy[Any] = _word
        email: st.SearchStrategy[Any] = st.builds("{}@{}".format, _word, _word)
        pairs: st.SearchStrategy[Any] = st.lists(st.tuples(role, text), min_size=1, max_size=5)
        before: st.SearchStrategy[Any] = st.none()
        status: st.SearchStrategy[Any] = st.sampled_from(["all", "pending", "completed"])
        items: st.SearchStrategy[Any] = st.lists(json_values, min_size=1, max_size=5)
        transcript: st.SearchStrategy[Any] = st.lists(st.tuples(role, text), max_size=3)
        item_limit: st.SearchStrategy[Any] = st.sampled_from([None, 0, 1, 2, 20, 1000])
        # Few keys, so that retries (the same key again) are frequent.
        key: st.SearchStrategy[Any] = st.one_of(st.none(), st.sampled_from(["k1", "k2"]), _word)
    else:
        users, conv, task = _user_ids(), _ref("conversation"), _ref("task")
        text, role, limit, cursor = any_text, roles, limits, _cursors()
        ids, email, pairs, before = new_user_ids, emails, _pairs(), bad_ids
        status = st.one_of(st.sampled_from(["all", "pending", "completed"]), hostile_text)
        items, transcript = _bad_item_lists, st.one_of(st.just([]), _pairs())
        item_limit = limits
        key = st.one_of(st.none(), any_text, bad_ids)
    optional = st.one_of(st.none(), text)
    per_function: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "create_user": st.fixed_dictionaries({"id": ids, "email": email, "name": optional}),
        "get_user": st.fixed_dictionaries({"user_id": users}),
        "delete_user": st.fixed_dictionaries({"user_id": users}),
        "create_conversation": st.fixed_dictionaries({"user_id": users, "title": optional}),
        "get_conversation": st.fixed_dictionaries({"user_id": users, "conversation_id": conv}),
        "list_conversations": st.fixed_dictionaries(
            {
                "user_id": users,
                "limit": limit,
                "cursor": cursor,
                "archived": st.booleans()
                if owner is not None
                else st.one_of(st.booleans(), any_text, bad_ids),
            }
        ),
        "archive_conversation": st.fixed_dictionaries({"user_id": users, "conversation_id": conv}),
        "unarchive_conversation": st.fixed_dictionaries(
            {"user_id": users, "conversation_id": conv}
        ),
        "rename_conversation": st.fixed_dictionaries(
            {"user_id": users, "conversation_id": conv, "title": text}
        ),
        "delete_conversation": st.fixed_dictionaries({"user_id": users, "conversation_id": conv}),
        "append_message": st.fixed_dictionaries(
            {
                "user_id": users,
                "conversation_id": conv,
                "role": role,
                "content": text,
                "request_id": key,
            }
        ),
        "append_messages": st.fixed_dictionaries(
            {"user_id": users, "conversation_id": conv, "messages": pairs, "request_id": key}
        ),
        "get_messages": st.fixed_dictionaries(
            {"user_id": users, "conversation_id": conv, "limit": limit, "before": before}
        ),
        "add_task": st.fixed_dictionaries(
            {"user_id": users, "title": text, "description": optional}
        ),
        "list_tasks": st.fixed_dictionaries({"user_id": users, "status": status}),
        "get_task": st.fixed_dictionaries({"user_id": users, "task_id": task}),
        "update_task": st.fixed_dictionaries(
            {"user_id": users, "task_id": task, "title": optional, "description": optional}
        ),
        "complete_task": st.fixed_dictionaries({"user_id": users, "task_id": task}),
        "delete_task": st.fixed_dictionaries({"user_id": users, "task_id": task}),
        "add_agent_items": st.fixed_dictionaries(
            {
                "user_id": users,
                "conversation_id": conv,
                "items": items,
                "transcript": transcript,
                "request_id": key,
            }
        ),
        "get_agent_items": st.fixed_dictionaries(
            {"user_id": users, "conversation_id": conv, "limit": item_limit}
        ),
        "pop_agent_item": st.fixed_dictionaries({"user_id": users, "conversation_id": conv}),
        "clear_agent_items": st.fixed_dictionaries({"user_id": users, "conversation_id": conv}),
        "search_messages": st.fixed_dictionaries(
            {
                "user_id": users,
                "query": text,
                "limit": limit,
                "cursor": _search_cursors(valid=owner is not None),
            }
        ),
    }
    assert set(per_function) == set(queries.__all__), "every public function is driven"
    return st.sampled_from(sorted(per_function)).flatmap(
        lambda name: per_function[name].map(lambda kwargs: (name, kwargs))
    )


def _check_result(world: World, name: str, kwargs: dict[str, Any], result: Any) -> None:
    """What a successful call must have returned: the caller's own rows, text verbatim."""
    uid: str = kwargs["user_id"] if "user_id" in kwargs else kwargs["id"]
    if name in ("append_message",):
        assert result.content == kwargs["content"]
        assert result.role == kwargs["role"]
        # The newest message; with a request_id, the key's first call's, wherever it is.
        stored = queries.get_messages(
            world.conn,
            user_id=uid,
            conversation_id=kwargs["conversation_id"],
            limit=1,
            before=None if kwargs.get("request_id") is None else result.seq + 1,
        )
        assert stored == [result]
    elif name == "append_messages":
        assert [(m.role, m.content) for m in result] == [tuple(p) for p in kwargs["messages"]]
    elif name in ("create_conversation", "rename_conversation", "add_task", "update_task"):
        if kwargs.get("title") is not None:
            assert result.title == _blank.trim(kwargs["title"])
        if name in ("add_task", "update_task") and kwargs.get("description") is not None:
            assert result.description == kwargs["description"]
    elif name == "create_user":
        assert result == queries.get_user(world.conn, user_id=kwargs["id"])
        assert (result.email, result.name) == (kwargs["email"], kwargs["name"])
    elif name == "list_conversations":
        assert all(c.user_id == uid for c in result.items)
        # Only the view asked for: archived ones, or the others.
        assert all((c.archived_at is not None) is kwargs["archived"] for c in result.items)
    elif name in ("archive_conversation", "unarchive_conversation"):
        assert (result.archived_at is not None) is (name == "archive_conversation")
        assert result == queries.get_conversation(
            world.conn, user_id=uid, conversation_id=kwargs["conversation_id"]
        )
    elif name in ("get_messages", "list_tasks"):
        assert all(r.user_id == uid for r in result)
    elif name == "search_messages":
        # The caller's own messages only, each once, and offsets inside the snippet.
        keys = [(hit.conversation_id, hit.seq) for hit in result.items]
        assert len(set(keys)) == len(keys)
        for conversation_id, seq in keys:
            owner = world.conn.execute(
                "SELECT user_id FROM messages WHERE conversation_id = %s AND seq = %s",
                (conversation_id, seq),
            ).fetchone()
            assert owner == (uid,)
        for hit in result.items:
            assert all(0 <= a < b <= len(hit.snippet) for a, b in hit.highlights)
    elif name in _AGENT_ITEMS:
        _check_agent_items(world, name, kwargs, result)
    if hasattr(result, "user_id"):
        assert result.user_id == uid
    if isinstance(result, list):
        assert all(getattr(r, "user_id", uid) == uid for r in result)


_AGENT_ITEMS = ("add_agent_items", "get_agent_items", "pop_agent_item", "clear_agent_items")


def _json(value: Any) -> str:
    """The JSON text of a value, to compare exactly (1, 1.0 and true are == in Python)."""
    return json.dumps(value, allow_nan=False)


def _session(world: World, uid: str, cid: int) -> list[tuple[int, int, Any]]:
    """The conversation's agent session, (slot, seq, item), read without the query layer:
    the newest seq at each slot up to the conversation's top."""
    (top,) = world.conn.execute(
        "SELECT agent_item_top FROM conversations WHERE user_id = %s AND id = %s", (uid, cid)
    ).fetchone() or (None,)
    assert top is not None, "a call that succeeded on a conversation that is not the user's"
    newest: dict[int, tuple[int, int, Any]] = {}
    for slot, seq, item in world.conn.execute(
        "SELECT slot, seq, item FROM agent_items WHERE user_id = %s AND conversation_id = %s"
        " ORDER BY seq",
        (uid, cid),
    ).fetchall():
        newest[slot] = (slot, seq, item)
    return [newest[slot] for slot in range(1, top + 1)]


def _check_agent_items(world: World, name: str, kwargs: dict[str, Any], result: Any) -> None:
    """A successful agent item call against the rows: exact items, the caller's own
    conversation, the list moved as the call says."""
    uid, cid = kwargs["user_id"], kwargs["conversation_id"]
    session = _session(world, uid, cid)
    if name == "add_agent_items":
        given = list(kwargs["items"])
        # Stored exactly: the top of the list is what was given, equal and with the same
        # JSON text, and the records returned are those rows. With a request_id, the
        # rows of the key's first call, which later adds and pops may have covered.
        rows = session[-len(given) :]
        if kwargs.get("request_id") is not None:
            rows = world.conn.execute(
                "SELECT slot, seq, item FROM agent_items WHERE user_id = %s"
                " AND conversation_id = %s AND seq = ANY(%s) ORDER BY seq",
                (uid, cid, [r.seq for r in result]),
            ).fetchall()
        assert [(r.slot, r.seq, r.item) for r in result] == rows
        assert [r.item for r in result] == given
        assert [_json(item) for _, _, item in rows] == [_json(v) for v in given]
        assert all(r.conversation_id == cid for r in result)
        seqs = [r.seq for r in result]
        assert seqs == list(range(seqs[0], seqs[0] + len(given)))
        if kwargs["transcript"] and kwargs.get("request_id") is None:
            n = len(kwargs["transcript"])
            stored = queries.get_messages(world.conn, user_id=uid, conversation_id=cid, limit=n)
            assert [(m.role, m.content) for m in stored] == [tuple(p) for p in kwargs["transcript"]]
    elif name == "get_agent_items":
        limit = kwargs["limit"]
        expected = session if limit is None else session[len(session) - min(limit, len(session)) :]
        assert [(r.slot, r.seq, _json(r.item)) for r in result] == [
            (slot, seq, _json(item)) for slot, seq, item in expected
        ]
        assert all(r.conversation_id == cid for r in result)
    elif name == "pop_agent_item":
        if result is not None:
            # It left the list: the top is now just below it; it stays on record.
            assert result.slot == len(session) + 1
            (item,) = world.conn.execute(
                "SELECT item FROM agent_items WHERE user_id = %s AND conversation_id = %s"
                " AND seq = %s",
                (uid, cid, result.seq),
            ).fetchone() or (None,)
            assert _json(result.item) == _json(item)
            assert result.conversation_id == cid
        else:
            assert session == []
    else:
        assert result is None
        assert session == []


SYNC_EXAMPLES = 200
ASYNC_EXAMPLES = 100
SETTINGS = settings(
    max_examples=SYNC_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def _after(world: World, name: str, kwargs: dict[str, Any], result: Any) -> None:
    """Check a successful call's result, then put back what it deleted."""
    _check_result(world, name, kwargs, result)
    if name.startswith("delete_") and kwargs.get("user_id") in SEEDED:
        world.reseed(kwargs["user_id"])


def test_security_every_function_under_hostile_arguments_gives_a_correct_result_or_a_typed_error(
    conn: psycopg.Connection,
) -> None:
    world = World(conn)
    outcomes: Counter[str] = Counter()

    @SETTINGS
    @given(call=_calls())
    def run(call: tuple[str, dict[str, Any]]) -> None:
        name, kwargs = call[0], world.resolve(call[1])
        before = world.state()
        try:
            result = getattr(queries, name)(conn, **kwargs)
        except ChatstoreError as exc:
            outcomes[f"{type(exc).__name__}"] += 1
            assert world.state() == before, f"{name} failed but changed the database"
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert queries.get_user(conn, user_id="alice").id == "alice", "connection unusable"
            return
        outcomes["ok"] += 1
        _after(world, name, kwargs, result)

    run()
    # Enough of the calls got through the checks to prove the stored text verbatim.
    assert outcomes["ok"] >= SETTINGS.max_examples // 5, outcomes


def test_security_every_async_function_under_hostile_arguments_gives_a_correct_result_or_a_typed_error(  # noqa: E501
    conn: psycopg.Connection, db_dsn: str
) -> None:
    """The same property through chatstore.aio. Hypothesis runs no coroutine itself, so
    each example runs its call on this test's own event loop (one AsyncConnection for
    all): calls are drawn inside ``@given``, and a failure shrinks like the sync one's."""
    world = World(conn)
    outcomes: Counter[str] = Counter()
    loop = asyncio.new_event_loop()
    try:
        aconn = loop.run_until_complete(psycopg.AsyncConnection.connect(db_dsn, autocommit=True))

        async def invoke(name: str, kwargs: dict[str, Any]) -> Any:
            fn: Callable[..., Awaitable[Any]] = getattr(aio, name)
            return await fn(aconn, **kwargs)

        async def alice() -> str:
            return (await aio.get_user(aconn, user_id="alice")).id

        @settings(SETTINGS, max_examples=ASYNC_EXAMPLES)
        @given(call=_calls())
        def run(call: tuple[str, dict[str, Any]]) -> None:
            name, kwargs = call[0], world.resolve(call[1])
            before = world.state()
            try:
                result = loop.run_until_complete(invoke(name, kwargs))
            except ChatstoreError as exc:
                outcomes[f"{type(exc).__name__}"] += 1
                assert world.state() == before, f"async {name} failed but changed the database"
                assert aconn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                assert loop.run_until_complete(alice()) == "alice", "connection unusable"
                return
            outcomes["ok"] += 1
            _after(world, name, kwargs, result)

        try:
            run()
        finally:
            loop.run_until_complete(aconn.close())
    finally:
        loop.close()
    assert outcomes["ok"] >= ASYNC_EXAMPLES // 5, outcomes


# --- named promises ----------------------------------------------------------------------

INJECTIONS = [
    "'; DROP TABLE messages; --",
    "' OR '1'='1",
    "Robert'); DROP TABLE users;--",
    "%(user_id)s %s $1 $$ ; -- /* */",
    "\\'; SELECT pg_sleep(10); --",
    "1; TRUNCATE conversations CASCADE",
    "') UNION SELECT id, email, name, created_at FROM users --",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_security_sql_injection_strings_are_stored_and_returned_verbatim(
    conn: psycopg.Connection, text: str
) -> None:
    uid = "alice"
    user = queries.create_user(conn, id=uid, email="alice@example.com", name=text)
    assert queries.get_user(conn, user_id=uid).name == text == user.name
    conv = queries.create_conversation(conn, user_id=uid, title=text)
    assert queries.get_conversation(conn, user_id=uid, conversation_id=conv.id).title == text
    renamed = queries.rename_conversation(conn, user_id=uid, conversation_id=conv.id, title=text)
    assert renamed.title == text
    one = queries.append_message(
        conn, user_id=uid, conversation_id=conv.id, role="user", content=text
    )
    many = queries.append_messages(
        conn, user_id=uid, conversation_id=conv.id, messages=[("assistant", text), ("user", text)]
    )
    history = queries.get_messages(conn, user_id=uid, conversation_id=conv.id)
    assert [m.content for m in history] == [text, text, text]
    assert history == [one, *many]
    # In agent items, as values and keys, and in their transcript.
    items = [{"role": "user", "content": text}, {text: [text, {text: text}]}]
    added = queries.add_agent_items(
        conn, user_id=uid, conversation_id=conv.id, items=items, transcript=[("user", text)]
    )
    stored = queries.get_agent_items(conn, user_id=uid, conversation_id=conv.id)
    assert [i.item for i in stored] == items
    assert stored == added
    (said,) = queries.get_messages(conn, user_id=uid, conversation_id=conv.id, limit=1)
    assert said.content == text
    popped = queries.pop_agent_item(conn, user_id=uid, conversation_id=conv.id)
    assert popped == added[-1]
    task = queries.add_task(conn, user_id=uid, title=text, description=text)
    assert queries.get_task(conn, user_id=uid, task_id=task.id).description == text
    updated = queries.update_task(conn, user_id=uid, task_id=task.id, title=text, description=text)
    assert (updated.title, updated.description) == (text, text)
    # An injection in the user id finds nobody, and breaks nothing.
    with pytest.raises(NotFound):
        queries.get_user(conn, user_id=text)
    with pytest.raises(NotFound):
        queries.list_tasks(conn, user_id=text)
    for agent_call in (
        queries.get_agent_items,
        queries.pop_agent_item,
        queries.clear_agent_items,
        functools.partial(queries.add_agent_items, items=[text], transcript=[("user", text)]),
    ):
        with pytest.raises(NotFound):
            agent_call(conn, user_id=text, conversation_id=conv.id)
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM conversations),"
        " (SELECT count(*) FROM messages), (SELECT count(*) FROM tasks),"
        " (SELECT count(*) FROM agent_items),"
        " (SELECT agent_item_top FROM conversations)"
    ).fetchone()
    assert counts == (1, 1, 4, 1, 2, 1)


def test_security_a_cursor_from_one_users_listing_gives_another_user_nothing_of_theirs(
    conn: psycopg.Connection,
) -> None:
    for uid in ("alice", "bob"):
        queries.create_user(conn, id=uid, email=f"{uid}@example.com")
    alice = [queries.create_conversation(conn, user_id="alice").id for _ in range(5)]
    bob = [queries.create_conversation(conn, user_id="bob").id for _ in range(2)]
    cursor = queries.list_conversations(conn, user_id="alice", limit=2).next_cursor
    assert cursor is not None
    page = queries.list_conversations(conn, user_id="bob", limit=100, cursor=cursor)
    assert {c.id for c in page.items} <= set(bob)
    assert not {c.id for c in page.items} & set(alice)
    assert all(c.user_id == "bob" for c in page.items)
    # A cursor forged past every position shows bob only bob's, too.
    forged = _core.encode_cursor(
        queries.get_conversation(conn, user_id="alice", conversation_id=alice[-1]).updated_at,
        2**62,
    )
    page = queries.list_conversations(conn, user_id="bob", limit=100, cursor=forged)
    assert all(c.user_id == "bob" for c in page.items)


# A valid call of every public function, with a value for every text argument (optional
# ones too); CONV and TASK stand for the test's conversation and task.
CONV, TASK = object(), object()
VALID_CALLS: dict[str, dict[str, Any]] = {
    "create_user": {"id": "carol", "email": "carol@example.com", "name": "Carol"},
    "get_user": {"user_id": "ann"},
    "delete_user": {"user_id": "ann"},
    "create_conversation": {"user_id": "ann", "title": "a title"},
    "get_conversation": {"user_id": "ann", "conversation_id": CONV},
    "list_conversations": {
        "user_id": "ann",
        "limit": 20,
        "cursor": _core.encode_cursor(datetime(2030, 1, 1, tzinfo=UTC), 1),
    },
    "rename_conversation": {"user_id": "ann", "conversation_id": CONV, "title": "renamed"},
    "archive_conversation": {"user_id": "ann", "conversation_id": CONV},
    "unarchive_conversation": {"user_id": "ann", "conversation_id": CONV},
    "delete_conversation": {"user_id": "ann", "conversation_id": CONV},
    "append_message": {
        "user_id": "ann",
        "conversation_id": CONV,
        "role": "user",
        "content": "hello",
        "request_id": "req-1",
    },
    "append_messages": {
        "user_id": "ann",
        "conversation_id": CONV,
        "messages": [("user", "q"), ("assistant", "a")],
        "request_id": "req-2",
    },
    "get_messages": {"user_id": "ann", "conversation_id": CONV},
    "add_task": {"user_id": "ann", "title": "a task", "description": "details"},
    "list_tasks": {"user_id": "ann", "status": "pending"},
    "get_task": {"user_id": "ann", "task_id": TASK},
    "update_task": {"user_id": "ann", "task_id": TASK, "title": "new", "description": "new"},
    "complete_task": {"user_id": "ann", "task_id": TASK},
    "delete_task": {"user_id": "ann", "task_id": TASK},
    "add_agent_items": {
        "user_id": "ann",
        "conversation_id": CONV,
        "items": [{"role": "user", "content": "q"}, {"type": "function_call"}],
        "transcript": [("user", "q")],
        "request_id": "req-3",
    },
    "get_agent_items": {"user_id": "ann", "conversation_id": CONV, "limit": 10},
    "pop_agent_item": {"user_id": "ann", "conversation_id": CONV},
    "clear_agent_items": {"user_id": "ann", "conversation_id": CONV},
    "search_messages": {
        "user_id": "ann",
        "query": "hello",
        "limit": 20,
        "cursor": _core.encode_search_cursor(0.5, 1, 1, datetime(2030, 1, 1, tzinfo=UTC)),
    },
}


def _is_text(hint: Any) -> bool:
    """``str``, a ``Literal`` of strings (a role, a status), or either or ``None``."""
    if hint is str:
        return True
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return all(isinstance(a, str) for a in args)
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return any(_is_text(a) for a in args if a is not type(None))
    return False


def _with_lone_surrogates(function: str) -> list[tuple[str, dict[str, Any]]]:
    """The function's valid call with a lone surrogate added to one text argument, for
    every text argument its signature has, also each text field of a message pair (of
    append_messages and of add_agent_items' transcript). Agent items are JSON values, not
    text: a surrogate in them is kept (test_security_nul_and_lone_surrogates_...)."""
    valid = VALID_CALLS[function]
    hints = typing.get_type_hints(getattr(aio, function))
    found: list[tuple[str, dict[str, Any]]] = []
    for arg, hint in hints.items():
        if arg in ("conn", "return"):
            continue
        if _is_text(hint):
            assert valid.get(arg) is not None, f"VALID_CALLS[{function!r}] needs a {arg}"
            for bad in (f"{valid[arg]}\ud800", f"\udfff{valid[arg]}"):
                found.append((arg, {**valid, arg: bad}))
        elif typing.get_origin(hint) is Sequence:  # (role, content) pairs, or agent items
            (pair,) = typing.get_args(hint)
            if pair is Any:  # add_agent_items' items
                continue
            for i, field in enumerate(typing.get_args(pair)):
                assert _is_text(field), hint
                pairs = [list(p) for p in valid[arg]]
                pairs[-1][i] = f"{pairs[-1][i]}\ud800"
                found.append((f"{arg}[-1][{i}]", {**valid, arg: [tuple(p) for p in pairs]}))
    return found


async def test_security_lone_surrogates_are_invalid_input(
    store: Store, closed: Store, conn: psycopg.Connection
) -> None:
    """A lone surrogate in any text argument of any public function is InvalidInput,
    before any SQL: on a closed connection the valid call fails with Unavailable (it
    sends SQL), the same call with the surrogate with InvalidInput (it sends none)."""
    assert set(VALID_CALLS) == set(aio.__all__) == set(queries.__all__)
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content="first"
    )
    task = await store.add_task(user_id="ann", title="a task")

    def fill(raw: dict[str, Any]) -> dict[str, Any]:
        return {
            k: conversation.id if v is CONV else task.id if v is TASK else v for k, v in raw.items()
        }

    before = snapshot(conn)
    checked: list[str] = []
    for function in sorted(VALID_CALLS):
        valid = fill(VALID_CALLS[function])
        with pytest.raises(Unavailable):
            await getattr(closed, function)(**valid)
        for arg, raw in _with_lone_surrogates(function):
            kwargs = fill(raw)
            for api in (closed, store):
                with pytest.raises(InvalidInput):
                    await getattr(api, function)(**kwargs)
            checked.append(f"{function}({arg})")
        # The live connection serves the next call.
        assert (await store.get_user(user_id="ann")).id == "ann"
    assert snapshot(conn) == before
    # All 43 text arguments: the user_id of 21 functions, create_user's id, email and
    # name, 4 titles, 2 descriptions, a cursor, a status, append_message's role and
    # content, both fields of append_messages' pairs and of add_agent_items'
    # transcript, and the request_id of those three.
    # search_messages adds its user_id, query and cursor.
    # archive_conversation and unarchive_conversation add their user_id.
    assert len(set(checked)) == 45, sorted(set(checked))


# Agent items: NUL and lone surrogates are JSON escapes, kept exactly.
ESCAPED: list[Any] = [
    "\x00",
    "\ud800",
    "\udfff",
    "a\x00b\ud800c\udfff",
    "\udfff\ud800",  # a low then a high surrogate: two lone ones in JSON too
    "é\ud800東京",
    {"\x00": "\ud800", "\udfff key": ["\x00", {"\ud800": None}]},
    ["\\u0000", "\\ud800", "\\"],  # backslashes, not escapes
]


async def test_security_nul_and_lone_surrogates_in_agent_items_are_kept_exactly(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    conv = (await store.create_conversation(user_id="ann")).id
    added = await store.add_agent_items(user_id="ann", conversation_id=conv, items=ESCAPED)
    got = await store.get_agent_items(user_id="ann", conversation_id=conv)
    assert [g.item for g in got] == ESCAPED
    assert [json.dumps(g.item) for g in got] == [json.dumps(v) for v in ESCAPED]
    assert got == added
    # Stored as escapes in valid UTF-8 text: the database holds no NUL or surrogate.
    texts = [t for (t,) in conn.execute("SELECT item::text FROM agent_items ORDER BY seq")]
    assert texts[0] == '"\\u0000"'
    assert texts[1] == '"\\ud800"'
    popped = await store.pop_agent_item(user_id="ann", conversation_id=conv)
    assert popped is not None
    assert popped.item == ESCAPED[-1]


@pytest.mark.parametrize(
    "items",
    [
        pytest.param([float("nan")], id="nan"),
        pytest.param([{"x": float("inf")}], id="inf"),
        pytest.param([[-float("inf")]], id="-inf"),
        pytest.param([b"bytes"], id="bytes"),
        pytest.param([{1, 2}], id="set"),
        pytest.param([complex(1, 2)], id="complex"),
        pytest.param([object()], id="object"),
        pytest.param([datetime(2030, 1, 1, tzinfo=UTC)], id="datetime"),
        pytest.param([10**5000], id="5000-digit int"),
        pytest.param([_nested(5000)], id="nested 5000 deep"),
        pytest.param(["x" * 4_194_303], id="4 MiB + 2 bytes"),
        pytest.param(["é" * 2_097_152], id="2 Mi characters, 4 MiB + 2 bytes"),
        pytest.param(["x" * 4_000_000] * 17, id="17 items of 4 MB"),
        pytest.param([0] * 1001, id="1001 items"),
        pytest.param([], id="no item"),
        pytest.param({"role": "user"}, id="a mapping"),
        pytest.param("items", id="a str"),
        pytest.param(None, id="None"),
        pytest.param(["ok", float("nan")], id="one bad among good"),
    ],
)
async def test_security_agent_items_json_cannot_hold_are_invalid_input_before_any_sql(
    store: Store, closed: Store, conn: psycopg.Connection, items: Any
) -> None:
    await user(store, "ann")
    conv = (await store.create_conversation(user_id="ann")).id
    await store.add_agent_items(user_id="ann", conversation_id=conv, items=["kept"])
    before = snapshot(conn)
    for api in (closed, store):
        with pytest.raises(InvalidInput):
            await api.add_agent_items(
                user_id="ann", conversation_id=conv, items=items, transcript=[("user", "x")]
            )
    assert snapshot(conn) == before
    assert [i.item for i in await store.get_agent_items(user_id="ann", conversation_id=conv)] == [
        "kept"
    ]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({1: "an int key"}, id="int key"),
        pytest.param({None: 1}, id="None key"),
        pytest.param({True: 1}, id="bool key"),
        pytest.param({1.5: 1}, id="float key"),
        pytest.param({1: "a", "1": "b"}, id="int and str key, the same in JSON"),
        pytest.param((1, "tuple"), id="tuple"),
        pytest.param({"calls": [(1, 2)]}, id="nested tuple"),
        pytest.param("\ud800\udfff", id="high then low surrogate"),
    ],
)
async def test_security_agent_items_json_would_change_are_refused_or_come_back_equal(
    store: Store, conn: psycopg.Connection, value: Any
) -> None:
    """json.dumps accepts these but spells them as another value: {"1": ...}, an array,
    one astral character. Either InvalidInput with nothing written, or they come back
    equal to what was given (from add_agent_items and from get_agent_items alike)."""
    await user(store, "ann")
    conv = (await store.create_conversation(user_id="ann")).id
    before = snapshot(conn)
    try:
        added = await store.add_agent_items(user_id="ann", conversation_id=conv, items=[value])
    except InvalidInput:
        assert snapshot(conn) == before
        return
    (got,) = await store.get_agent_items(user_id="ann", conversation_id=conv)
    assert added[0].item == value
    assert got.item == value, f"stored {value!r}, read back {got.item!r}"
