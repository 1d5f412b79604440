"""Untimed helpers that create conversations for the timed operations to use up.

Used for the append targets (one per contender, so appends never collide) and for the
delete operation, which needs a fresh 1,000-message conversation every iteration.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import sql

from bench.fixtures import AGENTS_MESSAGES_TABLE, AGENTS_SESSIONS_TABLE, LANGCHAIN_TABLE

# Alternating turns; assistant replies about ten times longer than user turns.
_CONTENT = """CASE WHEN g %% 2 = 1
    THEN 'Question ' || g || ': ' || repeat('how do I index this table? ', 1 + g %% 4)
    ELSE 'Answer ' || g || ': ' || repeat('Use a composite index that leads with the key. ',
                                          8 + g %% 25) END"""

CHATSTORE_MESSAGES = sql.SQL(f"""
INSERT INTO messages (conversation_id, user_id, role, content)
SELECT %(cid)s, %(uid)s, CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END, {_CONTENT}
FROM generate_series(1, %(n)s) AS g
""")

LANGCHAIN_MESSAGES = sql.SQL(f"""
INSERT INTO {{table}} (session_id, message)
SELECT %(sid)s::uuid, jsonb_build_object(
    'type', CASE WHEN g %% 2 = 1 THEN 'human' ELSE 'ai' END,
    'data', jsonb_build_object('content', {_CONTENT},
        'additional_kwargs', '{{{{}}}}'::jsonb, 'response_metadata', '{{{{}}}}'::jsonb,
        'type', CASE WHEN g %% 2 = 1 THEN 'human' ELSE 'ai' END, 'name', NULL, 'id', NULL))
FROM generate_series(1, %(n)s) AS g
""").format(table=sql.Identifier(LANGCHAIN_TABLE))

SQLMODEL_MESSAGES = sql.SQL(f"""
INSERT INTO sqlmodel.messages (conversation_id, user_id, role, content, created_at)
SELECT %(cid)s, %(uid)s, CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END, {_CONTENT},
       (now() AT TIME ZONE 'UTC') + g * interval '1 millisecond'
FROM generate_series(1, %(n)s) AS g
""")

AGENTS_SESSION = sql.SQL("INSERT INTO {table} (session_id) VALUES (%(sid)s)").format(
    table=sql.Identifier(AGENTS_SESSIONS_TABLE)
)
AGENTS_MESSAGES = sql.SQL(f"""
INSERT INTO {{table}} (session_id, message_data)
SELECT %(sid)s, jsonb_build_object(
    'role', CASE WHEN g %% 2 = 1 THEN 'user' ELSE 'assistant' END,
    'content', {_CONTENT})::text
FROM generate_series(1, %(n)s) AS g
""").format(table=sql.Identifier(AGENTS_MESSAGES_TABLE))

Conn = psycopg.Connection[Any]


def chatstore_conversation(conn: Conn, user_id: str, messages: int) -> int:
    """A new conversation of ``messages`` turns in chatstore's tables; its id."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO conversations (user_id) VALUES (%s) RETURNING id", (user_id,)
        ).fetchone()
        assert row is not None
        cid = int(row[0])
        conn.execute(CHATSTORE_MESSAGES, {"cid": cid, "uid": user_id, "n": messages})
    return cid


def sqlmodel_conversation(conn: Conn, user_id: str, messages: int) -> int:
    """A new conversation of ``messages`` turns in the seed's tables (schema sqlmodel)."""
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO sqlmodel.conversations (user_id) VALUES (%s) RETURNING id", (user_id,)
        ).fetchone()
        assert row is not None
        cid = int(row[0])
        conn.execute(SQLMODEL_MESSAGES, {"cid": cid, "uid": user_id, "n": messages})
    return cid


def langchain_session(conn: Conn, messages: int) -> str:
    sid = str(uuid.uuid4())
    with conn.transaction():
        conn.execute(LANGCHAIN_MESSAGES, {"sid": sid, "n": messages})
    return sid


def agents_session(conn: Conn, messages: int) -> str:
    sid = f"bench-{uuid.uuid4()}"
    with conn.transaction():
        conn.execute(AGENTS_SESSION, {"sid": sid})
        conn.execute(AGENTS_MESSAGES, {"sid": sid, "n": messages})
    return sid
