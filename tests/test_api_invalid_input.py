"""Every bad input gets InvalidInput before any SQL runs, and the database is unchanged.

"Before any SQL runs" is proved by calling again on a closed connection: a call that
reached the database would raise Unavailable there, not InvalidInput.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import psycopg
import pytest

from chatstore.errors import InvalidInput
from tests import _helpers
from tests._helpers import Store, snapshot, user

store = _helpers.store
closed = _helpers.closed

CONV = object()  # stands for the test conversation's id
TASK = object()  # stands for the test task's id


def _cursor(version: int, micros: int, conversation_id: int) -> str:
    raw = struct.pack(">Bqq", version, micros, conversation_id)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _search_cursor(version: int, rank: float, conversation_id: int, seq: int, micros: int) -> str:
    raw = struct.pack(">Bfqqq", version, rank, conversation_id, seq, micros)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


LONG = "x" * 32_001
BAD_IDS: list[object] = [0, -1, 2**63, True, "1", 1.0, None]
# request_id: 1-255 characters without blank characters (None: no key).
BAD_REQUEST_IDS: list[object] = [
    "",
    " ",
    "has space",
    "tab\t",
    "zero\u200bwidth",
    "nbsp\u00a0",
    "x" * 256,
    "nul\x00",
    "lone\ud800",
    7,
    b"bytes",
    ["k"],
]

CASES: dict[str, list[dict[str, Any]]] = {
    "create_user": [
        {"id": "", "email": "a@example.com"},
        {"id": "has space", "email": "a@example.com"},
        {"id": "x" * 256, "email": "a@example.com"},
        {"id": "nul\x00", "email": "a@example.com"},
        {"id": 7, "email": "a@example.com"},
        {"id": "new", "email": "no-at-sign"},
        {"id": "new", "email": "a@b@c"},
        {"id": "new", "email": "a@example.com\x00"},
        {"id": "new", "email": "x" * 320 + "@example.com"},
        {"id": "new", "email": "a@example.com", "name": "n" * 201},
        {"id": "new", "email": "a@example.com", "name": "nul\x00"},
    ],
    "get_user": [{"user_id": "ann\x00"}, {"user_id": 1}],
    "delete_user": [{"user_id": "ann\x00"}, {"user_id": None}],
    "create_conversation": [
        {"user_id": "ann", "title": ""},
        {"user_id": "ann", "title": " \t\n "},
        {"user_id": "ann", "title": "t" * 201},
        {"user_id": "ann", "title": "nul\x00"},
        {"user_id": "ann", "title": 5},
        {"user_id": "ann\x00"},
    ],
    "get_conversation": [{"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS],
    "rename_conversation": [
        {"user_id": "ann", "conversation_id": CONV, "title": "   "},
        {"user_id": "ann", "conversation_id": CONV, "title": "t" * 201},
        {"user_id": "ann", "conversation_id": CONV, "title": "a\x00b"},
        {"user_id": "ann", "conversation_id": CONV, "title": None},
        *({"user_id": "ann", "conversation_id": bad, "title": "ok"} for bad in BAD_IDS),
    ],
    "delete_conversation": [{"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS],
    "archive_conversation": [
        {"user_id": "ann\x00", "conversation_id": CONV},
        {"user_id": "ann\ud800", "conversation_id": CONV},
        *({"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS),
    ],
    "unarchive_conversation": [
        {"user_id": "ann\x00", "conversation_id": CONV},
        *({"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS),
    ],
    "list_conversations": [
        *({"user_id": "ann", "limit": bad} for bad in (0, -1, 101, True, "5", 2.0, None)),
        *(
            {"user_id": "ann", "cursor": bad}
            for bad in (
                "",
                "garbage",
                "!" * 23,
                _cursor(1, 0, 1) + "=",  # padded
                _cursor(1, 0, 1) + "A",  # too long
                _cursor(2, 0, 1),  # unknown version
                _cursor(1, 0, 0),  # id out of range
                _cursor(1, 2**62, 1),  # no such time
                _cursor(1, 0, 1)[:-1] + "B",  # non-canonical last character
                12345,
                b"bytes",
            )
        ),
        # A bool, not anything truthy: "no" and 1 are refused.
        *({"user_id": "ann", "archived": bad} for bad in ("yes", "no", "False", 1, 0, None)),
    ],
    "append_message": [
        *(
            {"user_id": "ann", "conversation_id": CONV, "role": "user", "content": bad}
            for bad in ("", "   \n\t", LONG, "a\x00b", None, 42)
        ),
        *(
            {"user_id": "ann", "conversation_id": CONV, "role": bad, "content": "hi"}
            for bad in ("system", "User", "", None, "tool")
        ),
        *(
            {"user_id": "ann", "conversation_id": bad, "role": "user", "content": "hi"}
            for bad in BAD_IDS
        ),
        *(
            {
                "user_id": "ann",
                "conversation_id": CONV,
                "role": "user",
                "content": "hi",
                "request_id": bad,
            }
            for bad in BAD_REQUEST_IDS
        ),
    ],
    "append_messages": [
        *(
            {"user_id": "ann", "conversation_id": CONV, "messages": bad}
            for bad in (
                [],
                "user",
                [("user",)],
                [("user", "a", "b")],
                ["ua"],
                [("user", "ok"), ("system", "bad")],
                [("user", "ok"), ("assistant", "  ")],
                [("user", "ok"), ("assistant", LONG)],
                [("user", "ok"), ("assistant", "nul\x00")],
                [("user", "ok")] * 1001,
                None,
            )
        ),
        {"user_id": "ann", "conversation_id": 0, "messages": [("user", "ok")]},
        *(
            {
                "user_id": "ann",
                "conversation_id": CONV,
                "messages": [("user", "ok")],
                "request_id": bad,
            }
            for bad in BAD_REQUEST_IDS
        ),
    ],
    "get_messages": [
        *({"user_id": "ann", "conversation_id": CONV, "limit": bad} for bad in (0, 1001, True)),
        *({"user_id": "ann", "conversation_id": CONV, "before": bad} for bad in (0, "9")),
        *({"user_id": "ann", "conversation_id": CONV, "after": bad} for bad in (-1, "9", 2.0)),
        *({"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS),
    ],
    "add_agent_items": [
        *(
            {"user_id": "ann", "conversation_id": CONV, "items": bad}
            for bad in (
                [],
                "item",
                {"role": "user"},
                None,
                [1] * 1001,
                [float("nan")],
                [{"a": float("inf")}],
                [{1j: "not JSON"}],
                [object()],
                [b"bytes"],
                ["x" * (4 * 1024 * 1024)],  # 4 MiB + 2 quotes as JSON
                ["é" * (2 * 1024 * 1024)],  # 2 Mi characters, 4 MiB + 2 bytes
            )
        ),
        *(
            {"user_id": "ann", "conversation_id": CONV, "items": [1], "transcript": bad}
            for bad in (
                "user",
                [("user",)],
                [("tool", "ok")],
                [("user", "  ")],
                [("assistant", LONG)],
                [("user", "nul\x00")],
                None,
            )
        ),
        *({"user_id": "ann", "conversation_id": bad, "items": [1]} for bad in BAD_IDS),
        *(
            {"user_id": "ann", "conversation_id": CONV, "items": [1], "request_id": bad}
            for bad in BAD_REQUEST_IDS
        ),
    ],
    "get_agent_items": [
        *(
            {"user_id": "ann", "conversation_id": CONV, "limit": bad}
            for bad in (-1, True, "5", 2.0, 2**63)
        ),
        *({"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS),
    ],
    "pop_agent_item": [{"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS],
    "search_messages": [
        {"user_id": "ann", "query": ""},
        {"user_id": "ann", "query": " \t\u3000\u200b"},
        {"user_id": "ann", "query": "q" * 501},
        {"user_id": "ann", "query": "nul\x00"},
        {"user_id": "ann", "query": None},
        {"user_id": "ann", "query": 7},
        {"user_id": "ann\x00", "query": "ok"},
        *({"user_id": "ann", "query": "ok", "limit": bad} for bad in (0, -1, 101, True, "5", None)),
        *(
            {"user_id": "ann", "query": "ok", "cursor": bad}
            for bad in (
                "",
                "garbage",
                _cursor(1, 0, 1),  # list_conversations' cursor
                _search_cursor(1, 0.5, 1, 1, 0) + "A",  # too long
                _search_cursor(2, 0.5, 1, 1, 0),  # unknown version
                _search_cursor(1, float("nan"), 1, 1, 0),
                _search_cursor(1, -0.5, 1, 1, 0),
                _search_cursor(1, 0.5, 0, 1, 0),  # conversation id out of range
                _search_cursor(1, 0.5, 1, 0, 0),  # seq out of range
                _search_cursor(1, 0.5, 1, 1, 2**62),  # no such time
                12345,
            )
        ),
    ],
    "clear_agent_items": [
        {"user_id": "ann\x00", "conversation_id": CONV},
        *({"user_id": "ann", "conversation_id": bad} for bad in BAD_IDS),
    ],
    "add_task": [
        {"user_id": "ann", "title": ""},
        {"user_id": "ann", "title": "  "},
        {"user_id": "ann", "title": "t" * 201},
        {"user_id": "ann", "title": "a\x00"},
        {"user_id": "ann", "title": "ok", "description": "d" * 10_001},
        {"user_id": "ann", "title": "ok", "description": "nul\x00"},
    ],
    "list_tasks": [{"user_id": "ann", "status": bad} for bad in ("done", "", None, "ALL")],
    "get_task": [{"user_id": "ann", "task_id": bad} for bad in BAD_IDS],
    "update_task": [
        {"user_id": "ann", "task_id": TASK},
        {"user_id": "ann", "task_id": TASK, "title": " "},
        {"user_id": "ann", "task_id": TASK, "title": "t" * 201},
        {"user_id": "ann", "task_id": TASK, "description": "d" * 10_001},
        {"user_id": "ann", "task_id": TASK, "description": "\x00"},
        *({"user_id": "ann", "task_id": bad, "title": "ok"} for bad in BAD_IDS),
    ],
    "complete_task": [{"user_id": "ann", "task_id": bad} for bad in BAD_IDS],
    "delete_task": [{"user_id": "ann", "task_id": bad} for bad in BAD_IDS],
}


@pytest.mark.parametrize("function", sorted(CASES))
async def test_bad_input_is_invalid_input_before_any_sql_and_changes_nothing(
    store: Store, closed: Store, conn: psycopg.Connection, function: str
) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann")
    await store.append_message(
        user_id="ann", conversation_id=conversation.id, role="user", content="first"
    )
    task = await store.add_task(user_id="ann", title="a task")
    before = snapshot(conn)
    for case in CASES[function]:
        kwargs = {
            k: conversation.id if v is CONV else task.id if v is TASK else v
            for k, v in case.items()
        }
        for api in (store, closed):
            with pytest.raises(InvalidInput) as caught:
                await getattr(api, function)(**kwargs)
            assert str(caught.value), kwargs
    assert snapshot(conn) == before


async def test_every_function_has_bad_input_cases() -> None:
    from chatstore import aio

    assert set(CASES) == set(aio.__all__)
