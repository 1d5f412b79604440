"""Tenant isolation, stateful: three users perform random sequences of every operation,
including on each other's ids; a model in memory predicts every result, and after every
step the whole database equals the model. So no operation of one user ever reads,
changes or deletes another's data: users, conversations, messages, tasks and agent
sessions (every item on record, and each session's list with its pops and clears).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from chatstore import _blank, _core, queries, rls
from chatstore.errors import AlreadyExists, InvalidInput, NotFound
from chatstore.models import Message, Role, TaskStatus
from tests.reliability_support import app_login

T = TypeVar("T")
USERS = ("alice", "bob", "carol")
EXAMPLES = 30
STEPS = 120

# Text a user may type, with the characters that tend to break things; blank or
# over-long text is drawn too (InvalidInput).
_typed = st.text(alphabet="ab z\n\t🙂\u202e'\";%\\é", min_size=1, max_size=30)
text = st.one_of(
    _typed,
    _typed,
    _typed,
    st.sampled_from(["   ", "\n", "x" * 201, "'; DROP TABLE messages; --"]),
)
roles: st.SearchStrategy[Role] = st.sampled_from(["user", "assistant"])
users = st.sampled_from(USERS)
OWNER = "<owner>"  # the record's own owner, resolved when the rule runs
callers = st.sampled_from([*USERS, OWNER, OWNER, OWNER])
statuses: st.SearchStrategy[TaskStatus] = st.sampled_from(["all", "pending", "completed"])
# Agent items: JSON values, their text with NUL and a lone surrogate (kept exactly, as
# JSON escapes), big integers and floats that must come back unchanged.
_item_text = st.text(alphabet="ab \x00\ud800🙂'\"\\é", max_size=8)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        _item_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_item_text, inner, max_size=3)
    ),
    max_leaves=6,
)
agent_items = st.lists(json_values, min_size=1, max_size=4)
transcripts = st.lists(st.tuples(roles, text), max_size=2)
limits = st.one_of(st.none(), st.integers(0, 6))
# Few request keys, so that a key comes again often (a retry, or a reuse: InvalidInput).
request_ids = st.sampled_from(["k1", "k2", "k3"])


_SPACE_RUN = re.compile(f"[{re.escape(''.join(sorted(_blank.SPACES)))}]+")


def title_from(content: str) -> str | None:
    """What chatstore_title_from() makes of a first user message: runs of spaces folded,
    trimmed (chatstore._blank), cut at 200. The texts drawn here have no character made
    of several code points, so the cut needs no cluster rule."""
    folded = _blank.trim(_SPACE_RUN.sub(" ", content[:1000]))
    return _blank.trim(folded[:200]) or None


def valid_title(value: str) -> str | None:
    stripped = _blank.trim(value)
    return stripped if 1 <= len(stripped) <= 200 and not _blank.is_blank(stripped) else None


@dataclass
class Conv:
    owner: str
    title: str | None
    messages: list[tuple[str, str]] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)  # the agent session's list
    record: list[Any] = field(default_factory=list)  # every agent item added, in seq order
    archived: bool = False
    # request_id -> (first seq, the messages) of a keyed append; of a keyed agent add,
    # (first slot, first seq, the items' JSON texts).
    keys: dict[str, tuple[int, list[tuple[Role, str]]]] = field(default_factory=dict)
    item_keys: dict[str, tuple[int, int, list[str]]] = field(default_factory=dict)


@dataclass
class Task:
    owner: str
    title: str
    description: str | None
    completed: bool = False


def isolation_machine(
    conn: psycopg.Connection, app: psycopg.Connection | None = None
) -> type[RuleBasedStateMachine]:
    """The machine on ``conn`` (the owner); with ``app``, every call runs on that
    connection of a chatstore_app member instead, inside ``rls.acting_as`` the caller.
    The model and the checks (made as the owner) are the same."""

    class Isolation(RuleBasedStateMachine):
        conversations = Bundle("conversations")
        tasks = Bundle("tasks")

        def __init__(self) -> None:
            super().__init__()
            conn.execute("TRUNCATE users, tasks, conversations, messages, agent_items")
            self.users: dict[str, str | None] = {}
            self.convs: dict[int, Conv] = {}
            self.task_model: dict[int, Task] = {}

        def q(self, fn: Callable[..., T], **kwargs: Any) -> T:
            """Call a query function as the machine's caller."""
            if app is None:
                return fn(conn, **kwargs)
            caller = kwargs["user_id"] if "user_id" in kwargs else kwargs["id"]
            with rls.acting_as(app, user_id=caller):
                return fn(app, **kwargs)

        # --- users ---------------------------------------------------------------------

        @initialize()
        def two_users(self) -> None:
            for uid in USERS[:2]:
                self.create_user(uid, None)

        @rule(uid=users, name=st.one_of(st.none(), text))
        def create_user(self, uid: str, name: str | None) -> None:
            email = f"{uid}@example.com"
            if name is not None and len(name) > 200:
                self._invalid(queries.create_user, id=uid, email=email, name=name)
                return
            if uid in self.users:
                try:
                    self.q(queries.create_user, id=uid, email=email, name=name)
                except AlreadyExists:
                    return
                raise AssertionError("a second user with the same id")
            user = self.q(queries.create_user, id=uid, email=email, name=name)
            assert (user.id, user.email, user.name) == (uid, email, name)
            self.users[uid] = name

        @rule(uid=users)
        def get_user(self, uid: str) -> None:
            if uid not in self.users:
                self._not_found(queries.get_user, user_id=uid)
                return
            assert self.q(queries.get_user, user_id=uid).name == self.users[uid]

        # Rarely, and never the last user: a store with no user left tests little.
        @precondition(lambda self: len(self.users) >= 2)
        @rule(uid=users, coin=st.integers(0, 3))
        def delete_user(self, uid: str, coin: int) -> None:
            if coin:
                return
            if uid not in self.users:
                self._not_found(queries.delete_user, user_id=uid)
                return
            self.q(queries.delete_user, user_id=uid)
            del self.users[uid]
            self.convs = {k: c for k, c in self.convs.items() if c.owner != uid}
            self.task_model = {k: t for k, t in self.task_model.items() if t.owner != uid}

        # --- conversations -------------------------------------------------------------

        @rule(target=conversations, uid=users, title=st.one_of(st.none(), st.none(), text))
        def create_conversation(self, uid: str, title: str | None) -> Any:
            if title is not None and valid_title(title) is None:
                self._invalid(queries.create_conversation, user_id=uid, title=title)
                return multiple()  # nothing for the bundle
            if uid not in self.users:
                self._not_found(queries.create_conversation, user_id=uid, title=title)
                return multiple()  # nothing for the bundle
            conv = self.q(queries.create_conversation, user_id=uid, title=title)
            assert (conv.user_id, conv.title) == (uid, title and _blank.trim(title))
            self.convs[conv.id] = Conv(uid, conv.title)
            return conv.id

        def _conv_caller(self, uid: str, cid: int) -> str:
            conv = self.convs.get(cid)
            return uid if uid != OWNER else conv.owner if conv is not None else USERS[0]

        def _task_caller(self, uid: str, tid: int) -> str:
            task = self.task_model.get(tid)
            return uid if uid != OWNER else task.owner if task is not None else USERS[0]

        @rule(target=conversations, uid=users, first=text)
        def start_a_chat(self, uid: str, first: str) -> Any:
            """What a chat endpoint does most: a new conversation and its first message."""
            cid = self.create_conversation(uid, None)
            if isinstance(cid, int):
                self._append(uid, cid, [("user", first)], one=True)
            return cid

        def _owned(self, uid: str, cid: int) -> Conv | None:
            conv = self.convs.get(cid)
            return conv if conv is not None and conv.owner == uid else None

        @rule(uid=callers, cid=conversations)
        def get_conversation(self, uid: str, cid: int) -> None:
            uid = self._conv_caller(uid, cid)
            if cid < 1 or self._owned(uid, cid) is None:
                self._not_found_or_invalid(
                    cid, queries.get_conversation, user_id=uid, conversation_id=cid
                )
                return
            got = self.q(queries.get_conversation, user_id=uid, conversation_id=cid)
            assert (got.user_id, got.title) == (uid, self.convs[cid].title)

        @rule(uid=callers, cid=conversations, title=text)
        def rename_conversation(self, uid: str, cid: int, title: str) -> None:
            uid = self._conv_caller(uid, cid)
            call: dict[str, Any] = {"user_id": uid, "conversation_id": cid, "title": title}
            if cid < 1 or valid_title(title) is None:
                self._invalid(queries.rename_conversation, **call)
                return
            if cid < 1 or self._owned(uid, cid) is None:
                self._not_found(queries.rename_conversation, **call)
                return
            got = self.q(queries.rename_conversation, **call)
            assert got.title == _blank.trim(title)
            self.convs[cid].title = got.title

        @rule(uid=callers, cid=conversations)
        def delete_conversation(self, uid: str, cid: int) -> None:
            uid = self._conv_caller(uid, cid)
            if cid < 1 or self._owned(uid, cid) is None:
                self._not_found_or_invalid(
                    cid, queries.delete_conversation, user_id=uid, conversation_id=cid
                )
                return
            self.q(queries.delete_conversation, user_id=uid, conversation_id=cid)
            del self.convs[cid]

        @rule(uid=callers, cid=conversations, archive=st.booleans())
        def archive_or_unarchive_conversation(self, uid: str, cid: int, archive: bool) -> None:
            uid = self._conv_caller(uid, cid)
            fn = queries.archive_conversation if archive else queries.unarchive_conversation
            if cid < 1 or self._owned(uid, cid) is None:
                self._not_found_or_invalid(cid, fn, user_id=uid, conversation_id=cid)
                return
            got = self.q(fn, user_id=uid, conversation_id=cid)
            assert (got.user_id, got.title) == (uid, self.convs[cid].title)
            assert (got.archived_at is not None) is archive
            self.convs[cid].archived = archive

        @rule(uid=users, page=st.integers(1, 4), archived=st.booleans())
        def list_conversations(self, uid: str, page: int, archived: bool) -> None:
            if uid not in self.users:
                self._not_found(queries.list_conversations, user_id=uid, archived=archived)
                return
            seen: list[Any] = []
            cursor = None
            while True:
                got = self.q(
                    queries.list_conversations,
                    user_id=uid,
                    limit=page,
                    cursor=cursor,
                    archived=archived,
                )
                seen.extend(got.items)
                if got.next_cursor is None:
                    break
                cursor = got.next_cursor
            assert [c.id for c in seen] == [
                c.id for c in sorted(seen, key=lambda c: (c.updated_at, c.id), reverse=True)
            ]
            assert {c.id for c in seen} == {
                k for k, c in self.convs.items() if c.owner == uid and c.archived is archived
            }
            assert len(seen) == len({c.id for c in seen})

        @rule(owner=users, other=users)
        def list_with_another_users_cursor(self, owner: str, other: str) -> None:
            if owner not in self.users or other not in self.users:
                return
            cursor = self.q(queries.list_conversations, user_id=owner, limit=1).next_cursor
            if cursor is None:
                return
            got = self.q(queries.list_conversations, user_id=other, limit=100, cursor=cursor)
            mine = {k for k, c in self.convs.items() if c.owner == other}
            assert {c.id for c in got.items} <= mine

        # --- messages ------------------------------------------------------------------

        def _append(self, uid: str, cid: int, batch: list[tuple[Role, str]], one: bool) -> None:
            call: dict[str, Any] = {"user_id": uid, "conversation_id": cid}
            if one:
                call |= {"role": batch[0][0], "content": batch[0][1]}
            else:
                call["messages"] = batch
            fn = queries.append_message if one else queries.append_messages
            if cid < 1 or any(_blank.is_blank(content) for _, content in batch):
                self._invalid(fn, **call)
                return
            if cid < 1 or self._owned(uid, cid) is None:
                self._not_found(fn, **call)
                return
            got: Any = self.q(fn, **call)
            stored: list[Message] = [got] if one else got
            assert [(m.role, m.content, m.user_id) for m in stored] == [
                (r, c, uid) for r, c in batch
            ]
            self._transcribe(self.convs[cid], batch)

        def _transcribe(self, conv: Conv, batch: list[tuple[Role, str]]) -> None:
            """Messages appended to ``conv``: the first user text titles an untitled one."""
            if conv.title is None:
                first = next((c for r, c in batch if r == "user"), None)
                conv.title = None if first is None else title_from(first)
            conv.messages.extend(batch)

        @rule(uid=callers, cid=conversations, role=roles, content=text)
        def append_message(self, uid: str, cid: int, role: Role, content: str) -> None:
            uid = self._conv_caller(uid, cid)
            self._append(uid, cid, [(role, content)], one=True)

        @rule(
            uid=callers,
            cid=conversations,
            batch=st.lists(st.tuples(roles, text), min_size=1, max_size=4),
        )
        def append_messages(self, uid: str, cid: int, batch: list[tuple[Role, str]]) -> None:
            uid = self._conv_caller(uid, cid)
            self._append(uid, cid, batch, one=False)

        # A chat is mostly its owner appending: weight those calls.
        @rule(cid=conversations, role=roles, content=text)
        def owner_appends_a_message(self, cid: int, role: Role, content: str) -> None:
            self._append(self._conv_caller(OWNER, cid), cid, [(role, content)], one=True)

        @rule(cid=conversations, batch=st.lists(st.tuples(roles, text), min_size=1, max_size=4))
        def owner_appends_messages(self, cid: int, batch: list[tuple[Role, str]]) -> None:
            self._append(self._conv_caller(OWNER, cid), cid, batch, one=False)

        @rule(
            uid=callers,
            cid=conversations,
            batch=st.lists(st.tuples(roles, text), min_size=1, max_size=3),
            key=request_ids,
            one=st.booleans(),
        )
        def keyed_append(
            self, uid: str, cid: int, batch: list[tuple[Role, str]], key: str, one: bool
        ) -> None:
            """append_message(s) with a request_id: the key's first call stores; the same
            key again returns its records and writes nothing; with other messages, or on
            another user's conversation, a refusal."""
            uid = self._conv_caller(uid, cid)
            batch = batch[:1] if one else batch
            call: dict[str, Any] = {"user_id": uid, "conversation_id": cid, "request_id": key}
            if one:
                call |= {"role": batch[0][0], "content": batch[0][1]}
            else:
                call["messages"] = batch
            fn = queries.append_message if one else queries.append_messages
            if cid < 1 or any(_blank.is_blank(content) for _, content in batch):
                self._invalid(fn, **call)
                return
            conv = self._owned(uid, cid)
            if conv is None:
                self._not_found(fn, **call)
                return
            first, sent = conv.keys.get(key, (len(conv.messages) + 1, batch))
            if sent != batch:
                self._invalid(fn, **call)
                return
            got: Any = self.q(fn, **call)
            stored: list[Message] = [got] if one else got
            assert [(m.seq, m.role, m.content, m.user_id) for m in stored] == [
                (first + n, r, c, uid) for n, (r, c) in enumerate(batch)
            ]
            if key not in conv.keys:
                conv.keys[key] = (first, batch)
                self._transcribe(conv, batch)

        @rule(uid=callers, cid=conversations, limit=st.one_of(st.none(), st.integers(1, 5)))
        def get_messages(self, uid: str, cid: int, limit: int | None) -> None:
            uid = self._conv_caller(uid, cid)
            if cid < 1 or self._owned(uid, cid) is None:
                self._not_found_or_invalid(
                    cid, queries.get_messages, user_id=uid, conversation_id=cid, limit=limit
                )
                return
            got = self.q(queries.get_messages, user_id=uid, conversation_id=cid, limit=limit)
            expected = self.convs[cid].messages
            if limit is not None:
                expected = expected[-limit:]
            assert [(m.role, m.content) for m in got] == expected

        # --- agent items ---------------------------------------------------------------

        def _add_items(
            self, uid: str, cid: int, items: list[Any], transcript: list[tuple[Role, str]]
        ) -> None:
            call: dict[str, Any] = {
                "user_id": uid,
                "conversation_id": cid,
                "items": items,
                "transcript": transcript,
            }
            if cid < 1 or any(_blank.is_blank(content) for _, content in transcript):
                self._invalid(queries.add_agent_items, **call)
                return
            conv = self._owned(uid, cid)
            if conv is None:
                self._not_found(queries.add_agent_items, **call)
                return
            got = self.q(queries.add_agent_items, **call)
            top, count = len(conv.items), len(conv.record)
            assert [(i.item, i.user_id, i.conversation_id, i.slot, i.seq) for i in got] == [
                (item, uid, cid, top + n, count + n) for n, item in enumerate(items, 1)
            ]
            conv.items.extend(items)
            conv.record.extend(items)
            self._transcribe(conv, transcript)

        @rule(uid=callers, cid=conversations, items=agent_items, transcript=transcripts)
        def add_agent_items(
            self, uid: str, cid: int, items: list[Any], transcript: list[tuple[Role, str]]
        ) -> None:
            self._add_items(self._conv_caller(uid, cid), cid, items, transcript)

        # An agent run is mostly its owner adding items: weight those calls.
        @rule(cid=conversations, items=agent_items, transcript=transcripts)
        def owner_adds_agent_items(
            self, cid: int, items: list[Any], transcript: list[tuple[Role, str]]
        ) -> None:
            self._add_items(self._conv_caller(OWNER, cid), cid, items, transcript)

        @rule(
            uid=callers,
            cid=conversations,
            items=agent_items,
            transcript=transcripts,
            key=request_ids,
        )
        def keyed_agent_add(
            self,
            uid: str,
            cid: int,
            items: list[Any],
            transcript: list[tuple[Role, str]],
            key: str,
        ) -> None:
            """add_agent_items with a request_id, as keyed_append: the same items (the same
            JSON text) again return the first call's records and write nothing."""
            uid = self._conv_caller(uid, cid)
            call: dict[str, Any] = {
                "user_id": uid,
                "conversation_id": cid,
                "items": items,
                "transcript": transcript,
                "request_id": key,
            }
            if cid < 1 or any(_blank.is_blank(content) for _, content in transcript):
                self._invalid(queries.add_agent_items, **call)
                return
            conv = self._owned(uid, cid)
            if conv is None:
                self._not_found(queries.add_agent_items, **call)
                return
            texts = _core.agent_items(items)
            slot, seq, sent = conv.item_keys.get(
                key, (len(conv.items) + 1, len(conv.record) + 1, texts)
            )
            if sent != texts:
                self._invalid(queries.add_agent_items, **call)
                return
            got = self.q(queries.add_agent_items, **call)
            assert [(i.item, i.user_id, i.conversation_id, i.slot, i.seq) for i in got] == [
                (item, uid, cid, slot + n, seq + n) for n, item in enumerate(items)
            ]
            if key not in conv.item_keys:
                conv.item_keys[key] = (slot, seq, texts)
                conv.items.extend(items)
                conv.record.extend(items)
                self._transcribe(conv, transcript)

        @rule(uid=callers, cid=conversations, limit=limits)
        def get_agent_items(self, uid: str, cid: int, limit: int | None) -> None:
            uid = self._conv_caller(uid, cid)
            call: dict[str, Any] = {"user_id": uid, "conversation_id": cid, "limit": limit}
            conv = self._owned(uid, cid)
            if cid < 1 or conv is None:
                self._not_found_or_invalid(cid, queries.get_agent_items, **call)
                return
            got = self.q(queries.get_agent_items, **call)
            first = 0 if limit is None else max(len(conv.items) - limit, 0)
            assert [(i.item, i.user_id, i.slot) for i in got] == [
                (item, uid, slot) for slot, item in enumerate(conv.items[first:], first + 1)
            ]

        @rule(uid=callers, cid=conversations)
        def pop_agent_item(self, uid: str, cid: int) -> None:
            uid = self._conv_caller(uid, cid)
            conv = self._owned(uid, cid)
            if cid < 1 or conv is None:
                self._not_found_or_invalid(
                    cid, queries.pop_agent_item, user_id=uid, conversation_id=cid
                )
                return
            got = self.q(queries.pop_agent_item, user_id=uid, conversation_id=cid)
            if not conv.items:
                assert got is None
                return
            assert got is not None
            slot = len(conv.items)
            assert (got.item, got.user_id, got.slot) == (conv.items.pop(), uid, slot)

        @rule(uid=callers, cid=conversations)
        def clear_agent_items(self, uid: str, cid: int) -> None:
            uid = self._conv_caller(uid, cid)
            conv = self._owned(uid, cid)
            if cid < 1 or conv is None:
                self._not_found_or_invalid(
                    cid, queries.clear_agent_items, user_id=uid, conversation_id=cid
                )
                return
            self.q(queries.clear_agent_items, user_id=uid, conversation_id=cid)
            conv.items.clear()

        # --- search --------------------------------------------------------------------

        @rule(
            uid=users,
            query=st.sampled_from(
                ["a", "b", "ab", "z", "é", "a OR b", "b -a", '"a b"', "ab 🙂", "🙂", "-a"]
            ),
            limit=st.integers(1, 4),
        )
        def search_messages(self, uid: str, query: str, limit: int) -> None:
            """A walk of the caller's search returns exactly the caller's messages that a
            scan of their rows alone finds (none of another user's), each once."""
            if uid not in self.users:
                self._not_found(queries.search_messages, user_id=uid, query=query)
                return
            seen: list[tuple[int, int]] = []
            cursor = None
            while True:
                page = self.q(
                    queries.search_messages, user_id=uid, query=query, limit=limit, cursor=cursor
                )
                assert not page.capped
                seen += [(hit.conversation_id, hit.seq) for hit in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            # The oracle: the owner's scan of the caller's rows, without the index.
            found = conn.execute(
                "SELECT conversation_id, seq FROM messages WHERE user_id = %(u)s"
                " AND to_tsvector('simple', content) @@ websearch_to_tsquery('simple', %(q)s)"
                " AND querytree(websearch_to_tsquery('simple', %(q)s)) NOT IN ('', 'T')",
                {"u": uid, "q": query},
            ).fetchall()
            assert len(seen) == len(set(seen))
            assert set(seen) == set(found)
            owned = {
                (cid, n)
                for cid, c in self.convs.items()
                if c.owner == uid
                for n in range(1, len(c.messages) + 1)
            }
            assert set(seen) <= owned

        # --- tasks ---------------------------------------------------------------------

        @rule(target=tasks, uid=users, title=text, description=st.one_of(st.none(), text))
        def add_task(self, uid: str, title: str, description: str | None) -> Any:
            call: dict[str, Any] = {"user_id": uid, "title": title, "description": description}
            if valid_title(title) is None:
                self._invalid(queries.add_task, **call)
                return multiple()  # nothing for the bundle
            if uid not in self.users:
                self._not_found(queries.add_task, **call)
                return multiple()  # nothing for the bundle
            task = self.q(queries.add_task, user_id=uid, title=title, description=description)
            assert (task.title, task.description, task.completed) == (
                _blank.trim(title),
                description,
                False,
            )
            self.task_model[task.id] = Task(uid, task.title, description)
            return task.id

        def _own_task(self, uid: str, tid: int) -> Task | None:
            task = self.task_model.get(tid)
            return task if task is not None and task.owner == uid else None

        @rule(uid=users, status=statuses)
        def list_tasks(self, uid: str, status: TaskStatus) -> None:
            if uid not in self.users:
                self._not_found(queries.list_tasks, user_id=uid, status=status)
                return
            got = self.q(queries.list_tasks, user_id=uid, status=status)
            want = [
                k
                for k, t in sorted(self.task_model.items())
                if t.owner == uid and (status == "all" or t.completed == (status == "completed"))
            ]
            assert [t.id for t in got] == want

        @rule(uid=callers, tid=tasks)
        def get_task(self, uid: str, tid: int) -> None:
            uid = self._task_caller(uid, tid)
            task = self._own_task(uid, tid)
            if tid < 1 or task is None:
                self._not_found_or_invalid(tid, queries.get_task, user_id=uid, task_id=tid)
                return
            got = self.q(queries.get_task, user_id=uid, task_id=tid)
            assert (got.title, got.description, got.completed) == (
                task.title,
                task.description,
                task.completed,
            )

        @rule(uid=callers, tid=tasks, title=st.one_of(st.none(), text), description=text)
        def update_task(self, uid: str, tid: int, title: str | None, description: str) -> None:
            uid = self._task_caller(uid, tid)
            call: dict[str, Any] = {
                "user_id": uid,
                "task_id": tid,
                "title": title,
                "description": description,
            }
            if tid < 1 or (title is not None and valid_title(title) is None):
                self._invalid(queries.update_task, **call)
                return
            task = self._own_task(uid, tid)
            if task is None:
                self._not_found(queries.update_task, **call)
                return
            got = self.q(queries.update_task, **call)
            if title is not None:
                task.title = _blank.trim(title)
            task.description = description
            assert (got.title, got.description) == (task.title, task.description)

        @rule(uid=callers, tid=tasks)
        def complete_task(self, uid: str, tid: int) -> None:
            uid = self._task_caller(uid, tid)
            task = self._own_task(uid, tid)
            if tid < 1 or task is None:
                self._not_found_or_invalid(tid, queries.complete_task, user_id=uid, task_id=tid)
                return
            assert self.q(queries.complete_task, user_id=uid, task_id=tid).completed
            task.completed = True

        @rule(uid=callers, tid=tasks)
        def delete_task(self, uid: str, tid: int) -> None:
            uid = self._task_caller(uid, tid)
            if tid < 1 or self._own_task(uid, tid) is None:
                self._not_found_or_invalid(tid, queries.delete_task, user_id=uid, task_id=tid)
                return
            self.q(queries.delete_task, user_id=uid, task_id=tid)
            del self.task_model[tid]

        # --- the whole database equals the model, after every step ---------------------

        @invariant()
        def archived_conversations_equal_model(self) -> None:
            archived = conn.execute(
                "SELECT id FROM conversations WHERE archived_at IS NOT NULL"
            ).fetchall()
            assert {row[0] for row in archived} == {k for k, c in self.convs.items() if c.archived}

        @invariant()
        def database_equals_model(self) -> None:
            db_users: dict[str, str | None] = dict(
                conn.execute("SELECT id, name FROM users").fetchall()
            )
            assert db_users == self.users
            convs = {
                cid: (owner, title, count, top)
                for cid, owner, title, count, top in conn.execute(
                    "SELECT id, user_id, title, agent_item_count, agent_item_top FROM conversations"
                ).fetchall()
            }
            assert convs == {
                k: (c.owner, c.title, len(c.record), len(c.items)) for k, c in self.convs.items()
            }
            # Every agent item on record, exactly, in seq order; and each session's list
            # as the queries define it: the newest seq at each slot up to the top.
            record: dict[int, list[Any]] = {k: [] for k in self.convs}
            newest: dict[int, dict[int, Any]] = {k: {} for k in self.convs}
            for cid, owner, slot, seq, item in conn.execute(
                "SELECT conversation_id, user_id, slot, seq, item FROM agent_items"
                " ORDER BY conversation_id, seq"
            ).fetchall():
                assert owner == self.convs[cid].owner
                assert seq == len(record[cid]) + 1
                record[cid].append(item)
                newest[cid][slot] = item
            assert record == {k: c.record for k, c in self.convs.items()}
            assert {
                k: [newest[k][slot] for slot in range(1, len(c.items) + 1)]
                for k, c in self.convs.items()
            } == {k: c.items for k, c in self.convs.items()}
            messages: dict[int, list[tuple[str, str]]] = {k: [] for k in self.convs}
            for cid, owner, role, content in conn.execute(
                "SELECT conversation_id, user_id, role, content FROM messages ORDER BY id"
            ).fetchall():
                assert owner == self.convs[cid].owner
                messages[cid].append((role, content))
            assert messages == {k: c.messages for k, c in self.convs.items()}
            tasks = {
                tid: (owner, title, description, completed)
                for tid, owner, title, description, completed in conn.execute(
                    "SELECT id, user_id, title, description, completed FROM tasks"
                ).fetchall()
            }
            assert tasks == {
                k: (t.owner, t.title, t.description, t.completed)
                for k, t in self.task_model.items()
            }

        # --- expected refusals ---------------------------------------------------------

        def _not_found(self, fn: Any, **kwargs: Any) -> None:
            try:
                self.q(fn, **kwargs)
            except NotFound:
                return
            raise AssertionError(f"{fn.__name__}({kwargs}) should be NotFound")

        def _invalid(self, fn: Any, **kwargs: Any) -> None:
            try:
                self.q(fn, **kwargs)
            except InvalidInput:
                return
            raise AssertionError(f"{fn.__name__}({kwargs}) should be InvalidInput")

        def _not_found_or_invalid(self, record_id: int, fn: Any, **kwargs: Any) -> None:
            """-1 stands for a record whose creation was refused: not even a valid id."""
            if record_id < 1:
                self._invalid(fn, **kwargs)
            else:
                self._not_found(fn, **kwargs)

    return Isolation


@pytest.fixture(params=["as_owner", "as_app_role_under_rls"])
def app(request: pytest.FixtureRequest, db_dsn: str) -> Iterator[psycopg.Connection | None]:
    """None (calls as the owner), or a connection of a LOGIN member of chatstore_app."""
    if request.param == "as_owner":
        yield None
        return
    with app_login(db_dsn) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def test_security_no_operation_of_one_user_reads_changes_or_deletes_anothers_data(
    conn: psycopg.Connection, app: psycopg.Connection | None
) -> None:
    run_state_machine_as_test(
        isolation_machine(conn, app),
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
