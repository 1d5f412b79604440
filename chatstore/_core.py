"""What ``chatstore.aio`` and ``chatstore.queries`` share: input checks, the cursor
codec, building records from rows, and the one mapping from database errors to
:mod:`chatstore.errors`. Nothing here does I/O, so it exists once for both.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final, TypeVar

import psycopg
import pydantic
from psycopg import errors as pg_errors
from psycopg.types.numeric import Int8

from chatstore import _blank
from chatstore.errors import (
    AlreadyExists,
    Cancelled,
    ChatstoreError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TimedOut,
    Unavailable,
)

BIGINT_MAX: Final = 2**63 - 1
MAX_CONTENT: Final = 32_000  # messages_content_check
MAX_TITLE: Final = 200  # conversations_title_check, tasks_title_check
MAX_DESCRIPTION: Final = 10_000  # tasks_description_check
MAX_NAME: Final = 200  # users_name_check
MAX_EMAIL: Final = 320  # users_email_check
MAX_USER_ID: Final = 255  # users_id_check
MAX_REQUEST_ID: Final = 255  # messages_request_id_check
MAX_PAGE: Final = 100  # list_conversations(limit=...)
MAX_MESSAGES: Final = 1_000  # get_messages(limit=...)
MAX_BATCH: Final = 1_000  # append_messages(messages=...), add_agent_items(items=...)
MAX_ITEM_BYTES: Final = 4 * 1024 * 1024  # agent_items_item_check, on the JSON text
MAX_ITEMS_BYTES: Final = 64 * 1024 * 1024  # add_agent_items: one call's items together
ROLES: Final = ("user", "assistant")
TASK_STATUSES: Final[dict[str, list[bool]]] = {
    "all": [False, True],
    "pending": [False],
    "completed": [True],
}

# users_email_check: no space or invisible in either part.
_NOT_IN_EMAIL = re.escape("".join(sorted(_blank.SPACES | _blank.INVISIBLES)))
_EMAIL = re.compile(f"[^@{_NOT_IN_EMAIL}]+@[^@{_NOT_IN_EMAIL}]+")

# --- input checks: each raises InvalidInput before any SQL runs --------------------------


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string")
    if "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate: not text PostgreSQL can store
            raise InvalidInput(f"{what} must be valid Unicode (no lone surrogates)") from exc
    return value


def user_id(value: object) -> str:
    """A user id to look up. Any string without NUL; one that cannot exist is not found."""
    return _text(value, "user_id")


def new_user_id(value: object) -> str:
    uid = _text(value, "id")
    if not 1 <= len(uid) <= MAX_USER_ID or _blank.has_blank(uid):
        raise InvalidInput(f"id must be 1-{MAX_USER_ID} characters without blank characters")
    return uid


def request_id(value: object) -> str | None:
    """A retry-safe append's key: None, or 1-255 characters without blank characters
    (the n-th message of a keyed append stores the key, a space and n)."""
    if value is None:
        return None
    key = _text(value, "request_id")
    if not 1 <= len(key) <= MAX_REQUEST_ID or _blank.has_blank(key):
        raise InvalidInput(
            f"request_id must be 1-{MAX_REQUEST_ID} characters without blank characters"
        )
    return key


def email(value: object) -> str:
    text = _text(value, "email")
    if len(text) > MAX_EMAIL or not _EMAIL.fullmatch(text):
        raise InvalidInput(f"email must look like name@domain, at most {MAX_EMAIL} characters")
    return text


def optional_text(value: object, what: str, max_len: int) -> str | None:
    if value is None:
        return None
    text = _text(value, what)
    if len(text) > max_len:
        raise InvalidInput(f"{what} must be at most {max_len} characters")
    return text


def title(value: object, what: str = "title") -> str:
    """A conversation or task title: trimmed (chatstore._blank), then 1-200 characters."""
    text = _blank.trim(_text(value, what))
    if _blank.is_blank(text):
        raise InvalidInput(f"{what} must not be blank")
    if len(text) > MAX_TITLE:
        raise InvalidInput(f"{what} must be at most {MAX_TITLE} characters after trimming")
    return text


def optional_title(value: object) -> str | None:
    return None if value is None else title(value)


def flag(value: object, what: str) -> bool:
    """A yes/no argument: a bool, not merely something truthy (``"no"`` is truthy)."""
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be True or False, not {value!r}")
    return value


def record_id(value: object, what: str) -> int:
    """An id, sent as bigint whatever its size: one prepared statement per query, where a
    plain int would be sent as smallint, integer or bigint and prepared up to three times."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer")
    if not 1 <= value <= BIGINT_MAX:
        raise InvalidInput(f"{what} must be between 1 and {BIGINT_MAX}")
    return Int8(value)


def optional_record_id(value: object, what: str) -> int | None:
    return None if value is None else record_id(value, what)


def optional_seq(value: object, what: str) -> int | None:
    """A message number to read after: 0 (before the first message) or more."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BIGINT_MAX:
        raise InvalidInput(f"{what} must be an integer between 0 and {BIGINT_MAX}")
    return Int8(value)


def limit(value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(f"limit must be an integer from 1 to {maximum}")
    return Int8(value)


def optional_limit(value: object, maximum: int) -> int | None:
    return None if value is None else limit(value, maximum)


def role(value: object) -> str:
    if value not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {value!r}")
    return str(value)


def content(value: object) -> str:
    """Message content, stored as given: not blank, at most 32,000 characters."""
    text = _text(value, "content")
    if _blank.is_blank(text):
        raise InvalidInput("content must not be blank")
    if len(text) > MAX_CONTENT:
        raise InvalidInput(f"content must be at most {MAX_CONTENT} characters")
    return text


def message_batch(value: object) -> tuple[list[str], list[str]]:
    """``(role, content)`` pairs as two parallel arrays for ``unnest``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidInput("messages must be a sequence of (role, content) pairs")
    if not 1 <= len(value) <= MAX_BATCH:
        raise InvalidInput(f"messages must hold 1 to {MAX_BATCH} pairs")
    roles: list[str] = []
    contents: list[str] = []
    for pair in value:
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidInput("messages must be a sequence of (role, content) pairs")
        roles.append(role(pair[0]))
        contents.append(content(pair[1]))
    return roles, contents


def stored_request(
    rows: list[dict[str, Any]],
    key: str,
    sent: Sequence[tuple[object, ...]],
    fields: tuple[str, ...],
    noun: str,
) -> list[dict[str, Any]]:
    """The rows of a keyed write (``chatstore_append_messages``,
    ``chatstore_add_agent_items``; migration 0013), by seq: those it inserted, or on a
    retry those the key's first call stored, whose ``fields`` must equal ``sent``. The
    functions return one row more than was sent when there is one, so a first call that
    sent more is told apart too."""
    rows.sort(key=lambda row: int(row["seq"]))
    tags = [row.pop("request_id") for row in rows]
    expected = [key, *(f"{key} {n}" for n in range(2, len(sent) + 2))]
    stored = 0
    while stored < len(tags) and tags[stored] == expected[stored]:
        stored += 1
    retry = "a retry sends the same as the first call, and new ones need a new request_id"
    if stored != len(sent):
        shown = f"more than {len(sent)}" if stored > len(sent) else str(stored)
        raise InvalidInput(
            f"request_id {key!r} was already used in this conversation for {shown}"
            f" {noun}(s); this call sends {len(sent)}: {retry}"
        )
    if any(tuple(row[f] for f in fields) != one for row, one in zip(rows, sent, strict=False)):
        raise InvalidInput(
            f"request_id {key!r} was already used in this conversation for other {noun}s: {retry}"
        )
    return rows[: len(sent)]


def transcript(value: object) -> tuple[list[str], list[str]]:
    """Like :func:`message_batch`, but may be empty."""
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) and not value:
        return [], []
    return message_batch(value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def display_text(text: str) -> str | None:
    """A framework's text as its transcript copy in messages, or None when it is blank.

    The agent item keeps every character; the copy must be text PostgreSQL stores and a
    person reads, within the messages' limit, because refusing it would make the agent
    lose its memory of the turn: NULs go, a lone surrogate becomes U+FFFD, and more than
    32,000 characters are cut to 31,999 and an ellipsis.
    """
    text = _SURROGATE.sub("\N{REPLACEMENT CHARACTER}", text.replace("\x00", ""))
    if len(text) > MAX_CONTENT:
        text = text[: MAX_CONTENT - 1] + "\N{HORIZONTAL ELLIPSIS}"
    return None if _blank.is_blank(text) else text


def _item_json(value: object) -> str:
    """One agent item as JSON text that loads back equal to ``value``."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"an agent item must be a JSON value: {exc}") from exc
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: kept as a \ud800 escape
            text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    if len(text) > MAX_ITEM_BYTES // 4 and len(text.encode("utf-8")) > MAX_ITEM_BYTES:
        raise InvalidInput(f"an agent item must be at most {MAX_ITEM_BYTES} bytes as JSON")
    # json.dumps also writes what JSON cannot give back: a tuple (read back as a list), a
    # key that is not a string ({1: "x"} as {"1": "x"}, and {1: "a", "1": "b"} as a
    # duplicate key), a surrogate pair given as two code points (read back as one).
    # Refused rather than stored as something else.
    try:
        same = json.loads(text) == value
    except RecursionError:
        same = False
    if not same:
        raise InvalidInput(
            "an agent item must be a JSON value that reads back equal (no tuples, no keys"
            " other than strings, no surrogate pairs as two code points)"
        )
    return text


def agent_items(value: object) -> list[str]:
    """1-1,000 agent items as JSON texts, at most 64 MiB together."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise InvalidInput("items must be a sequence of JSON values")
    if not 1 <= len(value) <= MAX_BATCH:
        raise InvalidInput(f"items must hold 1 to {MAX_BATCH} items")
    texts = [_item_json(item) for item in value]
    total = sum(map(len, texts))  # characters: at most 4 bytes each
    if (
        total > MAX_ITEMS_BYTES // 4
        and sum(len(t.encode("utf-8")) for t in texts) > MAX_ITEMS_BYTES
    ):
        raise InvalidInput(f"items must be at most {MAX_ITEMS_BYTES} bytes together")
    return texts


def optional_count(value: object, what: str) -> int | None:
    """None, or a whole number of 0 or more."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BIGINT_MAX:
        raise InvalidInput(f"{what} must be None or a whole number from 0 to {BIGINT_MAX}")
    return bigint(value)


def task_status(value: object) -> list[bool]:
    if not isinstance(value, str) or value not in TASK_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(TASK_STATUSES)}, not {value!r}")
    return TASK_STATUSES[value]


# --- the opaque cursor of list_conversations ---------------------------------------------
# Version byte, then updated_at in microseconds since the epoch and the id, big-endian:
# 17 bytes, 23 characters of unpadded urlsafe base64. It is only a position: the query
# still filters by user_id, so another user's cursor shows nothing of theirs.

_CURSOR = struct.Struct(">Bqq")
_CURSOR_VERSION: Final = 1
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{23}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def bigint(value: int) -> int:
    """``value`` sent as a bigint parameter (see :func:`record_id`)."""
    return Int8(value)


def encode_cursor(updated_at: datetime, conversation_id: int) -> str:
    micros = (updated_at - _EPOCH) // _MICROSECOND
    raw = _CURSOR.pack(_CURSOR_VERSION, micros, conversation_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(value: object) -> tuple[datetime, int]:
    """``(updated_at, id)`` of a cursor made by :func:`encode_cursor`, else InvalidInput."""
    if not isinstance(value, str) or not _CURSOR_TEXT.fullmatch(value):
        raise InvalidInput("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(value + "=")
        version, micros, conversation_id = _CURSOR.unpack(raw)
        updated_at = _EPOCH + micros * _MICROSECOND
    except (binascii.Error, struct.error, OverflowError) as exc:
        raise InvalidInput("malformed cursor") from exc
    canonical = encode_cursor(updated_at, conversation_id) if conversation_id >= 1 else None
    if version != _CURSOR_VERSION or canonical != value:
        raise InvalidInput("malformed cursor")
    return updated_at, conversation_id


# --- search_messages: its query, its cursor, its snippets --------------------------------

MAX_QUERY: Final = 500  # search_messages(query=...), in characters
# search_messages parses again (to check phrases and exclusions, and to rank) only the
# newest messages holding a query's words: at most SEARCH_CAP of them and SEARCH_BUDGET
# bytes of text, since parsing is its cost (docs/schema.md, "Search").
SEARCH_CAP: Final = 1_000
SEARCH_BUDGET: Final = 256 * 1024  # more than the longest message (32,000 x 4 bytes)


def search_query(value: object) -> str:
    """A web-search query: not blank, at most 500 characters."""
    text = _text(value, "query")
    if _blank.is_blank(text):
        raise InvalidInput("query must not be blank")
    if len(text) > MAX_QUERY:
        raise InvalidInput(f"query must be at most {MAX_QUERY} characters")
    return text


# Version byte, the rank as the database's float4, the conversation id, the seq and the
# walk's newest created_at (microseconds since the epoch), big-endian: 29 bytes, 39
# characters of unpadded urlsafe base64; list_conversations' cursor (23) is refused here.
_SEARCH_CURSOR = struct.Struct(">Bfqqq")
_SEARCH_CURSOR_VERSION: Final = 1
_SEARCH_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{39}")


def encode_search_cursor(rank: float, conversation_id: int, seq: int, newest: datetime) -> str:
    micros = (newest - _EPOCH) // _MICROSECOND
    raw = _SEARCH_CURSOR.pack(_SEARCH_CURSOR_VERSION, rank, conversation_id, seq, micros)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_search_cursor(value: object) -> tuple[float, int, int, datetime]:
    """``(rank, conversation_id, seq, newest)`` of a cursor made by
    :func:`encode_search_cursor`, else InvalidInput."""
    if not isinstance(value, str) or not _SEARCH_CURSOR_TEXT.fullmatch(value):
        raise InvalidInput("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(value + "=")
        version, rank, conversation_id, seq, micros = _SEARCH_CURSOR.unpack(raw)
        newest = _EPOCH + micros * _MICROSECOND
    except (binascii.Error, struct.error, OverflowError) as exc:
        raise InvalidInput("malformed cursor") from exc
    sound = math.isfinite(rank) and rank >= 0 and conversation_id >= 1 and seq >= 1
    canonical = encode_search_cursor(rank, conversation_id, seq, newest) if sound else None
    if version != _SEARCH_CURSOR_VERSION or canonical != value:
        raise InvalidInput("malformed cursor")
    return rank, conversation_id, seq, newest


# ts_headline marks the words found with these; chatstore_search_text keeps them out of
# the text itself (migration 0014), so every one in a snippet is a mark.
_MARKS = re.compile("([\x02\x03])")


def search_hits(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """search_messages' rows as SearchHit fields: the snippet without its marks, and
    the offsets of the marked words in it."""
    hits = []
    for row in rows:
        text: list[str] = []
        highlights: list[tuple[int, int]] = []
        length = 0
        start = None
        for part in _MARKS.split(row["snippet"]):
            if part == "\x02":
                start = length
            elif part == "\x03":
                if start is not None and start < length:
                    highlights.append((start, length))
                start = None
            else:
                text.append(part)
                length += len(part)
        hits.append(
            {
                "conversation_id": row["conversation_id"],
                "conversation_title": row["conversation_title"],
                "seq": row["seq"],
                "role": row["role"],
                "created_at": row["created_at"],
                "rank": row["rank"],
                "snippet": "".join(text),
                "highlights": tuple(highlights),
            }
        )
    return hits


# --- records -----------------------------------------------------------------------------

R = TypeVar("R", bound=pydantic.BaseModel)

# A record's four slots (pydantic.BaseModel.__slots__), set through their descriptors:
# what model_construct sets, 20% cheaper per row than object.__setattr__ by name.
_SLOTS: Final = pydantic.BaseModel.__dict__
_set_dict = _SLOTS["__dict__"].__set__
_set_fields_set = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


@cache
def _field_names(model: type[pydantic.BaseModel]) -> frozenset[str]:
    return frozenset(model.model_fields)


def _record(model: type[R], fields: frozenset[str], values: dict[str, Any]) -> R:
    record = model.__new__(model)
    _set_dict(record, values)
    _set_fields_set(record, fields)
    _set_extra(record, None)
    _set_private(record, None)
    return record


def build(model: type[R], rows: list[dict[str, Any]]) -> list[R]:
    """Records from rows the database produced, without validating them again.

    Every field is already guaranteed by the schema (column types, NOT NULL, CHECKs)
    and by the query's column list, so this sets exactly what a validated model holds,
    as ``model_construct`` does, at half the cost of a ``TypeAdapter`` pass and a sixth
    of ``model_construct``'s (docs/decisions.md). ``tests/test_api_records.py`` checks
    that every function's records equal validated ones.
    """
    fields = _field_names(model)
    return [_record(model, fields, row) for row in rows]


_COLUMNS: Final[dict[str, tuple[str, ...]]] = {}


def columns(query: str, cursor: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> tuple[str, ...]:
    """The column names of the named query's result, which its SQL text fixes: read from
    the cursor's description once per query, which costs more than building a row."""
    names = _COLUMNS.get(query)
    if names is None:
        names = _COLUMNS[query] = tuple(column.name for column in cursor.description or ())
    return names


def records(model: type[R], names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[R]:
    """Records of ``model`` from tuple rows whose columns are ``names``: :func:`build`
    without the dict row in between (docs/decisions.md, "Reads near the floor")."""
    return _records_builder(model, names)(rows)


@cache
def _records_builder(
    model: type[R], names: tuple[str, ...]
) -> Callable[[list[tuple[Any, ...]]], list[R]]:
    """The function that :func:`records` runs for one model and one column list.

    Generated once, as ``dataclasses`` generates ``__init__``: each row unpacks into
    locals and the record's dict is a literal with constant keys, which costs half of
    ``dict(zip(names, row))``; on a 1,000-row read the difference is a quarter of the
    raw read's time. Only ``repr``s of the column names go into the source.
    """
    if sorted(names) != sorted(_field_names(model)):
        raise TypeError(f"columns {names} are not the fields of {model.__name__}")
    values = "".join(f"v{i}, " for i in range(len(names)))
    items = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    source = (
        "def build(rows):\n"
        "    built = []\n"
        "    append = built.append\n"
        f"    for {values}in rows:\n"
        "        record = new(model)\n"
        f"        set_dict(record, {{{items}}})\n"
        "        set_fields_set(record, fields_set)\n"
        "        set_extra(record, None)\n"
        "        set_private(record, None)\n"
        "        append(record)\n"
        "    return built\n"
    )
    namespace: dict[str, Any] = {
        "new": model.__new__,
        "model": model,
        "fields_set": _field_names(model),
        "set_dict": _set_dict,
        "set_fields_set": _set_fields_set,
        "set_extra": _set_extra,
        "set_private": _set_private,
    }
    exec(source, namespace)  # the source above: fixed text and the names as reprs
    built: Callable[[list[tuple[Any, ...]]], list[R]] = namespace["build"]
    return built


# --- database errors ---------------------------------------------------------------------

_NOT_FOUND: Final = {
    "messages_conversation_fkey": "no such conversation for this user",
    "agent_items_conversation_fkey": "no such conversation for this user",
    "conversations_user_id_fkey": "no such user",
    "tasks_user_id_fkey": "no such user",
}
_TAKEN: Final = {
    "users_pkey": "a user with this id already exists",
    "users_email_key": "a user with this email already exists",
}
_INVALID: Final = {
    "messages_role_check": "role must be one of user, assistant",
    "messages_content_check": f"content must not be blank, at most {MAX_CONTENT} characters",
    "messages_append_only": "messages are append-only",
    "messages_request_id_check": (
        f"request_id must be 1-{MAX_REQUEST_ID} characters without blank characters"
    ),
    "messages_request_id_key": "request_id was already used in this conversation",
    "agent_items_append_only": "agent items are append-only",
    "agent_items_item_check": f"an agent item must be at most {MAX_ITEM_BYTES} bytes as JSON",
    "conversations_title_check": f"title must be 1-{MAX_TITLE} characters, trimmed",
    "tasks_title_check": f"title must be 1-{MAX_TITLE} characters, trimmed",
    "tasks_description_check": f"description must be at most {MAX_DESCRIPTION} characters",
    "users_id_check": f"id must be 1-{MAX_USER_ID} characters without blank characters",
    "users_email_check": f"email must look like name@domain, at most {MAX_EMAIL} characters",
    "users_name_check": f"name must be at most {MAX_NAME} characters",
}


_MAPPED: Final = frozenset(_NOT_FOUND) | frozenset(_TAKEN) | frozenset(_INVALID)
# Citus names a shard's copy of a constraint after the shard (users_pkey_102008), and an
# error raised on a worker reaches the client without the constraint field, only with
# PostgreSQL's message, which names it: ... violates unique constraint "users_pkey_102008".
_SHARD_SUFFIX = re.compile(r"_[0-9]+$")
_NAMED_IN_MESSAGE = re.compile(r'constraint "([^"]+)"')


def constraint_name(exc: psycopg.Error) -> str | None:
    """The constraint an error names, as the schema names it (without a shard's suffix)."""
    name = exc.diag.constraint_name if exc.diag is not None else None
    if name is None and isinstance(exc, pg_errors.IntegrityError):
        found = _NAMED_IN_MESSAGE.search(exc.diag.message_primary or "")
        name = found.group(1) if found else None
    if name is None or name in _MAPPED:
        return name
    base = _SHARD_SUFFIX.sub("", name)
    return base if base in _MAPPED else name


_POLICY_REFUSED: Final = (
    "no such record for the acting user (row-level security admits only the rows of the"
    " user named by chatstore.rls.acting_as, and none outside it)"
)


def _refused_by_policy(exc: psycopg.Error) -> bool:
    """A row-level security policy refused a new row (WITH CHECK). Its SQLSTATE, 42501, is
    also a missing privilege's and row_security turned off's: the server's function name
    tells them apart (never translated); the message is the fallback for an error relayed
    by a Citus worker without that field."""
    return exc.diag.source_function == "ExecWithCheckOptions" or (
        exc.diag.message_primary or ""
    ).startswith("new row violates row-level security policy")


def _cancelled_on_request(exc: psycopg.Error) -> bool:
    """57014 is both a statement_timeout and a cancel request (``conn.cancel()``,
    ``pg_cancel_backend``); only the message tells them apart. A message in another
    language (lc_messages) stays a timeout, as before."""
    return (exc.diag.message_primary or "").endswith("due to user request")


def translate(exc: psycopg.Error) -> ChatstoreError:
    """The chatstore error for a psycopg one: the single place errors are mapped.

    The caller raises the result ``from exc``.
    """
    constraint = constraint_name(exc)
    if isinstance(exc, pg_errors.ForeignKeyViolation) and constraint in _NOT_FOUND:
        return NotFound(_NOT_FOUND[constraint], constraint=constraint)
    if isinstance(exc, pg_errors.UniqueViolation) and constraint in _TAKEN:
        return AlreadyExists(_TAKEN[constraint], constraint=constraint)
    if isinstance(exc, pg_errors.IntegrityError) and constraint in _INVALID:
        return InvalidInput(_INVALID[constraint], constraint=constraint)
    if isinstance(exc, pg_errors.DataError):  # class 22: a value PostgreSQL cannot take
        return InvalidInput(f"invalid value: {exc.diag.message_primary or exc}")
    if isinstance(exc, pg_errors.InsufficientPrivilege):  # 42501
        if _refused_by_policy(exc):
            # Like a read of another user's record: NotFound, whatever exists (the policy
            # refuses before any unique index is checked).
            return NotFound(_POLICY_REFUSED)
        return PermissionDenied(f"permission denied: {exc.diag.message_primary or exc}")
    if isinstance(exc, pg_errors.QueryCanceled) and _cancelled_on_request(exc):
        return Cancelled(f"cancelled: {exc.diag.message_primary or exc}")
    if isinstance(exc, (pg_errors.QueryCanceled, pg_errors.LockNotAvailable)):
        # statement_timeout (57014) or lock_timeout (55P03).
        return TimedOut(f"timed out: {exc.diag.message_primary or exc}")
    if isinstance(exc, psycopg.OperationalError):
        # Connection lost or refused (class 08, or raised by psycopg itself), server
        # shutdown (57P01-57P03), resources (53), serialization failure or deadlock (40).
        return Unavailable(f"database unavailable: {exc}")
    return ChatstoreError(f"database error: {exc}", constraint=constraint)


# --- the session -------------------------------------------------------------------------


def check_session(pgconn: psycopg.pq.abc.PGconn) -> None:
    """InvalidInput unless the session's settings let records come out exact.

    Results are read in binary format, which no display setting (DateStyle,
    IntervalStyle, extra_float_digits, bytea_output) changes, so only the text encoding
    is left: psycopg encodes and decodes text in the session's client_encoding, and any
    other than UTF8 cannot carry every character (under SQL_ASCII text comes back as
    bytes). The server reports the setting whenever it changes; reading it is local, no
    round trip (docs/decisions.md, "Session settings").
    """
    encoding = pgconn.parameter_status(b"client_encoding")
    if encoding != b"UTF8":
        shown = encoding.decode("ascii", "replace") if encoding else "unknown"
        raise InvalidInput(
            f"chatstore needs client_encoding UTF8; this connection's is {shown}"
            " (connect with client_encoding=utf8 or RESET client_encoding)"
        )
