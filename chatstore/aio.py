"""chatstore's query functions on a ``psycopg.AsyncConnection``.

This module is the source of its sync twin ``chatstore.queries``, which
``tools/async_to_sync.py`` generates from it; a test fails when the two differ.

Every function takes the connection first and keyword-only arguments after it, runs
one named statement of ``sql/queries/`` (one round trip; :func:`get_messages`,
:func:`list_conversations` and :func:`list_tasks` a second when their page is empty, to
tell "nothing there" from a missing conversation or user), and returns frozen records
of :mod:`chatstore.models`. Every read and write of a user's data is filtered by
``user_id`` in SQL: another user's id gets :class:`~chatstore.errors.NotFound`, exactly
as a missing id does.

Transactions belong to the caller. Functions never commit, roll back or open a
transaction block. On an autocommit connection each call is its own transaction (one
statement: all or nothing). On a connection in a transaction (psycopg's default, or
inside ``conn.transaction()``), calls join it and the caller commits; after an error
the caller rolls back (a NotFound found by a query, not by a constraint, leaves the
transaction usable).

Statements are prepared by psycopg once one has run ``prepare_threshold`` times on a
connection; behind PgBouncer in transaction mode, connect with
``prepare_threshold=None``.

Errors are :mod:`chatstore.errors` only: bad arguments raise ``InvalidInput`` before
any SQL runs; database errors are mapped by ``chatstore._core.translate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import tuple_row

from chatstore import _core
from chatstore._core import R
from chatstore._sql import QUERIES
from chatstore.errors import InvalidInput, NotFound
from chatstore.models import (
    AgentItem,
    Conversation,
    ConversationPage,
    Message,
    Role,
    SearchHit,
    SearchPage,
    Task,
    TaskStatus,
    User,
)

__all__ = [
    "add_agent_items",
    "add_task",
    "append_message",
    "append_messages",
    "archive_conversation",
    "clear_agent_items",
    "complete_task",
    "create_conversation",
    "create_user",
    "delete_conversation",
    "delete_task",
    "delete_user",
    "get_agent_items",
    "get_conversation",
    "get_messages",
    "get_task",
    "get_user",
    "list_conversations",
    "list_tasks",
    "pop_agent_item",
    "rename_conversation",
    "search_messages",
    "unarchive_conversation",
    "update_task",
]

_NO_USER = "no such user"
_NO_CONVERSATION = "no such conversation for this user"
_NO_TASK = "no such task for this user"


async def _run(
    conn: AsyncConnection[Any], name: str, params: dict[str, object]
) -> list[dict[str, Any]]:
    """Run the named query; its rows as dicts."""
    names, rows = await _fetch(conn, name, params)
    return [dict(zip(names, row, strict=True)) for row in rows]


async def _records(
    conn: AsyncConnection[Any], name: str, params: dict[str, object], model: type[R]
) -> list[R]:
    """Run the named query, whose columns are ``model``'s fields; its rows as records."""
    names, rows = await _fetch(conn, name, params)
    return _core.records(model, names, rows)


async def _fetch(
    conn: AsyncConnection[Any], name: str, params: dict[str, object]
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Run the named query; its column names and rows. The one place SQL is sent.

    Results come in binary format: no session setting that changes how values are shown
    (DateStyle, IntervalStyle, ...) changes a record. The one that does, a client_encoding
    other than UTF8, is refused before the statement (``_core.check_session``). The cursor
    is chatstore's own (server-side binding, tuple rows), whatever ``cursor_factory`` and
    ``row_factory`` the connection was given.
    """
    if not isinstance(conn, AsyncConnection):
        raise InvalidInput(f"conn must be a psycopg.AsyncConnection, not {type(conn).__name__}")
    try:
        _core.check_session(conn.pgconn)
        async with AsyncCursor(conn, row_factory=tuple_row) as cur:
            await cur.execute(QUERIES[name], params, binary=True)
            return _core.columns(name, cur), await cur.fetchall()
    except psycopg.Error as exc:
        raise _core.translate(exc) from exc


# --- users -------------------------------------------------------------------------------


async def create_user(
    conn: AsyncConnection[Any], *, id: str, email: str, name: str | None = None
) -> User:
    """Create a user. ``id`` is the auth provider's (1-255 characters, no blank character).

    Raises AlreadyExists (an InvalidInput) when the id or the email is taken.
    """
    params: dict[str, object] = {
        "id": _core.new_user_id(id),
        "email": _core.email(email),
        "name": _core.optional_text(name, "name", _core.MAX_NAME),
    }
    rows = await _run(conn, "create_user", params)
    return _core.build(User, rows)[0]


async def get_user(conn: AsyncConnection[Any], *, user_id: str) -> User:
    """The user ``user_id``; NotFound when there is none."""
    rows = await _run(conn, "get_user", {"user_id": _core.user_id(user_id)})
    if not rows:
        raise NotFound(_NO_USER)
    return _core.build(User, rows)[0]


async def delete_user(conn: AsyncConnection[Any], *, user_id: str) -> None:
    """Delete a user with all their tasks, conversations and messages."""
    rows = await _run(conn, "delete_user", {"user_id": _core.user_id(user_id)})
    if not rows:
        raise NotFound(_NO_USER)


# --- conversations -----------------------------------------------------------------------


async def create_conversation(
    conn: AsyncConnection[Any], *, user_id: str, title: str | None = None
) -> Conversation:
    """Start a conversation. ``title`` is trimmed; without one, the first user message
    gives it."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "title": _core.optional_title(title),
    }
    rows = await _run(conn, "create_conversation", params)
    if not rows:
        raise NotFound(_NO_USER)
    return _core.build(Conversation, rows)[0]


async def get_conversation(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int
) -> Conversation:
    """One conversation of the user."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
    }
    rows = await _run(conn, "get_conversation", params)
    if not rows:
        raise NotFound(_NO_CONVERSATION)
    return _core.build(Conversation, rows)[0]


async def list_conversations(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    limit: int = 20,
    cursor: str | None = None,
    archived: bool = False,
) -> ConversationPage:
    """The user's conversations, most recently updated first, ``limit`` (1-100) a page:
    those not archived, or with ``archived=True`` only the archived ones (two views, each
    on its own index; archiving does not move ``updated_at``, so a conversation keeps
    its place in either).

    Pass a page's ``next_cursor`` back as ``cursor`` for the next page of the same view
    (keyset pagination on ``(updated_at, id)``, never OFFSET). A walk returns no
    conversation twice and keeps the order; one that gets a new message during the walk
    moves to the front, so the walk skips it if it had not reached it yet, and one
    archived or unarchived during the walk leaves the view or joins it where it sorts.
    """
    page = _core.limit(limit, _core.MAX_PAGE)
    before = None if cursor is None else _core.decode_cursor(cursor)
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "before_updated_at": None if before is None else before[0],
        "before_id": None if before is None else _core.bigint(before[1]),
        "limit": _core.bigint(page + 1),
    }
    if _core.flag(archived, "archived"):
        items = await _records(conn, "list_archived_conversations", params, Conversation)
    else:
        items = await _records(conn, "list_conversations", params, Conversation)
    if not items and not await _run(conn, "get_user", params):
        raise NotFound(_NO_USER)
    if len(items) <= page:
        return ConversationPage(items=tuple(items), next_cursor=None)
    last = items[page - 1]
    return ConversationPage(
        items=tuple(items[:page]), next_cursor=_core.encode_cursor(last.updated_at, last.id)
    )


async def rename_conversation(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int, title: str
) -> Conversation:
    """Set a conversation's title (trimmed, 1-200 characters)."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
        "title": _core.title(title),
    }
    rows = await _run(conn, "rename_conversation", params)
    if not rows:
        raise NotFound(_NO_CONVERSATION)
    return _core.build(Conversation, rows)[0]


async def delete_conversation(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int
) -> None:
    """Delete a conversation and its messages."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
    }
    if not await _run(conn, "delete_conversation", params):
        raise NotFound(_NO_CONVERSATION)


async def archive_conversation(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int
) -> Conversation:
    """Archive a conversation: :func:`list_conversations` leaves it out (it shows it with
    ``archived=True``). Everything else stays as it was: its messages, agent items and
    ``updated_at``; it can still be read and appended to. Archiving an archived
    conversation changes nothing (``archived_at`` keeps the first time)."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
    }
    rows = await _run(conn, "archive_conversation", params)
    if not rows:
        raise NotFound(_NO_CONVERSATION)
    return _core.build(Conversation, rows)[0]


async def unarchive_conversation(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int
) -> Conversation:
    """Put an archived conversation back in :func:`list_conversations`, at its place by
    ``updated_at``; a conversation that is not archived is returned unchanged."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
    }
    rows = await _run(conn, "unarchive_conversation", params)
    if not rows:
        raise NotFound(_NO_CONVERSATION)
    return _core.build(Conversation, rows)[0]


# --- messages ----------------------------------------------------------------------------


async def append_message(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    conversation_id: int,
    role: Role,
    content: str,
    request_id: str | None = None,
) -> Message:
    """Append a message, numbered ``seq`` = the conversation's previous
    ``message_count`` + 1. In the same statement the conversation's ``updated_at``,
    ``message_count`` and ``last_message_at`` move, and an untitled conversation takes its
    title from its first user message. No such conversation for this user: NotFound
    (raised by the database, so a caller's open transaction must be rolled back).

    ``request_id`` (1-255 characters, no blank character) makes the append retry-safe:
    a call with a key already used in this conversation writes nothing and returns the
    message that the first call stored; InvalidInput if that was another message."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
        "role": _core.role(role),
        "content": _core.content(content),
    }
    if request_id is None:
        rows = await _run(conn, "append_message", params)
        return _core.build(Message, rows)[0]
    stored = await append_messages(
        conn,
        user_id=user_id,
        conversation_id=conversation_id,
        messages=[(role, content)],
        request_id=request_id,
    )
    return stored[0]


async def append_messages(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    conversation_id: int,
    messages: Sequence[tuple[Role, str]],
    request_id: str | None = None,
) -> list[Message]:
    """Append 1-1,000 ``(role, content)`` pairs in one statement (all or none); they
    are numbered (``seq``) in the order given and come back in that order.

    ``request_id`` as for :func:`append_message`: a retry with a key already used in
    this conversation writes nothing and returns what the first call stored;
    InvalidInput unless it sent the same pairs, as many."""
    roles, contents = _core.message_batch(messages)
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
        "roles": roles,
        "contents": contents,
    }
    key = _core.request_id(request_id)
    if key is None:
        rows = await _run(conn, "append_messages", params)
        rows.sort(key=lambda row: int(row["seq"]))
        return _core.build(Message, rows)
    params["request_id"] = key
    rows = await _run(conn, "append_keyed_messages", params)
    sent = list(zip(roles, contents, strict=True))
    return _core.build(
        Message, _core.stored_request(rows, key, sent, ("role", "content"), "message")
    )


async def get_messages(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    conversation_id: int,
    limit: int | None = None,
    before: int | None = None,
    after: int | None = None,
) -> list[Message]:
    """A conversation's messages, oldest first (``seq`` order).

    Only those with ``after < seq < before`` (either bound optional). With ``limit``
    (1-1,000), the last ``limit`` of them: page back by passing the first ``seq`` you
    hold as ``before``. With ``after``, the first ``limit`` after it instead: a client
    that holds everything up to ``after`` catches up.

    The read is the messages' index scan alone, as a raw read is; only an empty range
    costs a second round trip, which tells an empty conversation from a missing one.
    """
    if limit is not None:
        limit = _core.limit(limit, _core.MAX_MESSAGES)
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
        "limit": limit,
        "before": _core.optional_record_id(before, "before"),
        "after": _core.optional_seq(after, "after"),
    }
    if after is None:
        messages = await _records(conn, "get_messages", params, Message)
        messages.reverse()
    else:
        messages = await _records(conn, "get_messages_after", params, Message)
    if not messages and not await _run(conn, "get_conversation", params):
        raise NotFound(_NO_CONVERSATION)
    return messages


# --- tasks -------------------------------------------------------------------------------


async def add_task(
    conn: AsyncConnection[Any], *, user_id: str, title: str, description: str | None = None
) -> Task:
    """Add a pending task; ``title`` is trimmed (1-200), ``description`` at most 10,000."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "title": _core.title(title),
        "description": _core.optional_text(description, "description", _core.MAX_DESCRIPTION),
    }
    rows = await _run(conn, "add_task", params)
    if not rows:
        raise NotFound(_NO_USER)
    return _core.build(Task, rows)[0]


async def list_tasks(
    conn: AsyncConnection[Any], *, user_id: str, status: TaskStatus = "all"
) -> list[Task]:
    """The user's tasks in creation (id) order: ``all``, ``pending`` or ``completed``."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "completed": _core.task_status(status),
    }
    tasks = await _records(conn, "list_tasks", params, Task)
    if not tasks and not await _run(conn, "get_user", params):
        raise NotFound(_NO_USER)
    return tasks


async def get_task(conn: AsyncConnection[Any], *, user_id: str, task_id: int) -> Task:
    """One task of the user."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "task_id": _core.record_id(task_id, "task_id"),
    }
    rows = await _run(conn, "get_task", params)
    if not rows:
        raise NotFound(_NO_TASK)
    return _core.build(Task, rows)[0]


async def update_task(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    task_id: int,
    title: str | None = None,
    description: str | None = None,
) -> Task:
    """Change a task's title and/or description (``None``: keep); at least one of them."""
    if title is None and description is None:
        raise InvalidInput("update_task needs a title or a description")
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "task_id": _core.record_id(task_id, "task_id"),
        "title": _core.optional_title(title),
        "description": _core.optional_text(description, "description", _core.MAX_DESCRIPTION),
    }
    rows = await _run(conn, "update_task", params)
    if not rows:
        raise NotFound(_NO_TASK)
    return _core.build(Task, rows)[0]


async def complete_task(conn: AsyncConnection[Any], *, user_id: str, task_id: int) -> Task:
    """Mark a task completed (completing a completed task changes nothing else)."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "task_id": _core.record_id(task_id, "task_id"),
    }
    rows = await _run(conn, "complete_task", params)
    if not rows:
        raise NotFound(_NO_TASK)
    return _core.build(Task, rows)[0]


async def delete_task(conn: AsyncConnection[Any], *, user_id: str, task_id: int) -> None:
    """Delete a task of the user."""
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "task_id": _core.record_id(task_id, "task_id"),
    }
    if not await _run(conn, "delete_task", params):
        raise NotFound(_NO_TASK)


# --- agent items -------------------------------------------------------------------------


def _agent_item_params(user_id: str, conversation_id: int) -> dict[str, object]:
    return {
        "user_id": _core.user_id(user_id),
        "conversation_id": _core.record_id(conversation_id, "conversation_id"),
    }


async def add_agent_items(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    conversation_id: int,
    items: Sequence[Any],
    transcript: Sequence[tuple[Role, str]] = (),
    request_id: str | None = None,
) -> list[AgentItem]:
    """Add 1-1,000 items (JSON values, each at most 4 MiB as JSON) to the top of the
    conversation's agent session, in one statement: all or none. ``transcript`` holds
    the ``(role, content)`` pairs of those items that a person reads (user input, the
    assistant's answers), appended to the conversation's messages in the same statement,
    as :func:`append_messages` would. The records come back in the order given.

    ``request_id`` as for :func:`append_message`: a retry with a key already used in
    this conversation writes nothing (items nor transcript) and returns the items the
    first call stored; InvalidInput unless it sent the same items (as JSON), as many."""
    params = _agent_item_params(user_id, conversation_id)
    texts = _core.agent_items(items)
    roles, contents = _core.transcript(transcript)
    key = _core.request_id(request_id)
    params |= {"items": texts, "roles": roles, "contents": contents}
    if key is None:
        params["count"] = len(texts)
        rows = await _run(conn, "add_agent_items", params)
    else:
        params["request_id"] = key
        rows = await _run(conn, "add_keyed_agent_items", params)
    if not rows:
        raise NotFound(_NO_CONVERSATION)
    if key is None:
        rows.sort(key=lambda row: int(row["seq"]))
    else:
        # Each row says whether it holds the item sent at its place (its JSON text).
        rows = _core.stored_request(rows, key, [(True,)] * len(texts), ("same",), "item")
    for row, item in zip(rows, items, strict=True):
        row.pop("same", None)
        row["item"] = item
    return _core.build(AgentItem, rows)


async def get_agent_items(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int, limit: int | None = None
) -> list[AgentItem]:
    """The conversation's agent session, oldest first: the last ``limit`` items (0 or
    more; ``None``: all), each exactly as it was given."""
    params = _agent_item_params(user_id, conversation_id)
    params["limit"] = _core.optional_count(limit, "limit")
    rows = await _run(conn, "get_agent_items", params)
    if not rows:
        raise NotFound(_NO_CONVERSATION)
    return _core.build(AgentItem, [row for row in rows if row["seq"] is not None])


async def pop_agent_item(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int
) -> AgentItem | None:
    """Remove the newest item from the conversation's agent session and return it;
    ``None`` when the session is empty. The item stays on record (migration 0012)."""
    rows = await _run(conn, "pop_agent_item", _agent_item_params(user_id, conversation_id))
    if not rows:
        raise NotFound(_NO_CONVERSATION)
    if rows[0]["seq"] is None:
        return None
    return _core.build(AgentItem, rows)[0]


async def clear_agent_items(
    conn: AsyncConnection[Any], *, user_id: str, conversation_id: int
) -> None:
    """Empty the conversation's agent session; its items stay on record, its messages stay."""
    if not await _run(conn, "clear_agent_items", _agent_item_params(user_id, conversation_id)):
        raise NotFound(_NO_CONVERSATION)


# --- search ------------------------------------------------------------------------------


async def search_messages(
    conn: AsyncConnection[Any],
    *,
    user_id: str,
    query: str,
    limit: int = 20,
    cursor: str | None = None,
) -> SearchPage:
    """The user's messages that match ``query``, best first, ``limit`` (1-100) a page,
    each with its conversation, its number (``seq``) and a snippet with the words found.

    ``query`` (1-500 characters) is web-search syntax: words (all of them must occur),
    ``"a quoted phrase"``, ``OR``, ``-word`` to leave out; matching ignores case, and
    words match whole (``run`` does not find ``running``). A query with no word to look
    for (only punctuation, only ``-excluded`` words) finds nothing. Only the newest
    messages holding the words are ranked, at most 1,000 and 256 kB of text (``capped``
    says when there were more). Pass a page's ``next_cursor`` back as ``cursor`` for the
    next page (keyset pagination on rank, conversation and seq, never OFFSET): a walk
    returns each match once, in one order, and leaves out messages created after its
    first page.
    """
    page = _core.limit(limit, _core.MAX_PAGE)
    before = None if cursor is None else _core.decode_search_cursor(cursor)
    params: dict[str, object] = {
        "user_id": _core.user_id(user_id),
        "query": _core.search_query(query),
        "cap": _core.bigint(_core.SEARCH_CAP),
        "budget": _core.bigint(_core.SEARCH_BUDGET),
        "newest": None if before is None else before[3],
        "before_rank": None if before is None else before[0],
        "before_conversation_id": None if before is None else _core.bigint(before[1]),
        "before_seq": None if before is None else _core.bigint(before[2]),
        "limit": _core.bigint(page + 1),
    }
    rows = await _run(conn, "search_messages", params)
    if not rows:
        raise NotFound(_NO_USER)
    capped = rows[0]["capped"] is True
    found = [row for row in rows if row["hit"]]
    items = _core.build(SearchHit, _core.search_hits(found[:page]))
    if len(found) <= page:
        return SearchPage(items=tuple(items), next_cursor=None, capped=capped)
    last = items[page - 1]
    newest = rows[0]["newest"] if before is None else before[3]
    next_cursor = _core.encode_search_cursor(last.rank, last.conversation_id, last.seq, newest)
    return SearchPage(items=tuple(items), next_cursor=next_cursor, capped=capped)
