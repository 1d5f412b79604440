"""Fast data loading with COPY: users, conversations, messages, and the peers' copies.

The loader grows one database step by step (100k, then 1M, then 10M messages), so
each scale adds only the difference. Ids are written explicitly and the identity
sequences are moved past them afterwards. The user triggers (``messages_number``, which
numbers each message and updates its conversation row) are disabled during the load, so
the loader writes what they would have: each message's ``seq`` (1..n in order within its
conversation) and each conversation's ``message_count``, ``last_message_at`` and
``updated_at`` (the time of its last message); the foreign keys stay checked. On a schema
from before migration 0006 (no ``seq``; ``bench.keys`` loads one) those columns are
left out.

The peers' tables (seed 002's own schema for SQLModel, langchain-postgres, OpenAI Agents
SDK) receive the same conversations, converted in SQL from the rows just loaded.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from bench.content import TextSource
from bench.fixtures import (
    AGENTS_MESSAGES_TABLE,
    AGENTS_SESSIONS_TABLE,
    HEAVY_CONVERSATIONS,
    HEAVY_USER,
    LANGCHAIN_TABLE,
    SPECIAL_USER,
    WRITER_USER,
    Fixtures,
)

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
MESSAGE_GAP = timedelta(seconds=20)
COPY_CHUNK_BYTES = 1 << 20
TAIL = 50
COPY_NULL = "\\N"


@dataclass(frozen=True)
class PlannedConversation:
    user_id: str
    message_count: int
    same_tail: bool = False  # last TAIL messages identical across such conversations


@dataclass(frozen=True)
class LoadReport:
    total_messages: int
    added_messages: int
    seconds: float  # chatstore's tables, ANALYZE included
    peer_seconds: float  # the peers' copies, made in SQL from chatstore's rows

    @property
    def rows_per_second(self) -> float:
        return self.added_messages / self.seconds if self.seconds else 0.0


Conn = psycopg.Connection[tuple[object, ...]]


def background_plan(
    rng: random.Random, first_user: int, budget: int
) -> Iterator[PlannedConversation]:
    """Ordinary users: many conversations each, of a few to a few hundred messages."""
    user_no = first_user
    while budget > 0:
        user_id = f"u{user_no:08d}"
        user_no += 1
        for _ in range(1 + min(300, int(rng.expovariate(1 / 7)))):
            if rng.random() < 0.02:
                count = 2 * rng.randint(100, 400)
            else:
                count = 2 * (1 + min(300, int(rng.expovariate(1 / 10))))
            count = min(count, budget)
            budget -= count
            yield PlannedConversation(user_id, count)
            if budget <= 0:
                return


class Loader:
    def __init__(self, conn: Conn, seed: int = 5, *, peers: bool = True) -> None:
        self._conn = conn
        self._rng = random.Random(seed)
        self._text = TextSource(seed)
        self._peers = peers  # also fill the langchain and Agents SDK tables
        # Migration 0006 numbers messages (seq) and counts them on the conversation.
        self._numbered = bool(
            self._scalar(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema ="
                " current_schema() AND table_name = 'messages' AND column_name = 'seq'"
            )
        )

    # -- state -----------------------------------------------------------
    def _scalar(self, query: str) -> int:
        row = self._conn.execute(query).fetchone()
        return int(row[0]) if row and row[0] is not None else 0  # type: ignore[call-overload]

    def total_messages(self) -> int:
        return self._scalar("SELECT count(*) FROM messages")

    # -- public ------------------------------------------------------------
    def load_special(self) -> Fixtures:
        """The conversations of 50, 1,000 and 10,000 messages and the heavy lister."""
        plans = [
            PlannedConversation(SPECIAL_USER, 50, same_tail=True),
            PlannedConversation(SPECIAL_USER, 1_000, same_tail=True),
            PlannedConversation(SPECIAL_USER, 10_000, same_tail=True),
        ] + [PlannedConversation(HEAVY_USER, 4)] * HEAVY_CONVERSATIONS
        ids = self._load(plans, extra_users=[SPECIAL_USER, HEAVY_USER, WRITER_USER])
        return Fixtures(conv_50=ids[0], conv_1000=ids[1], conv_10000=ids[2])

    def grow_to(self, total_messages: int) -> LoadReport:
        """Add ordinary users' conversations until the messages table holds the total."""
        current = self.total_messages()
        budget = total_messages - current
        if budget <= 0:
            return LoadReport(current, 0, 0.0, 0.0)
        first_user = self._scalar("SELECT count(*) FROM users")
        started = time.perf_counter()
        plans = list(background_plan(self._rng, first_user, budget))
        self._load(plans, extra_users=[])
        seconds = time.perf_counter() - started - self._last_peer_seconds
        return LoadReport(self.total_messages(), budget, seconds, self._last_peer_seconds)

    # -- internals -----------------------------------------------------------
    _last_peer_seconds = 0.0

    def _load(self, plans: list[PlannedConversation], extra_users: list[str]) -> list[int]:
        conn = self._conn
        next_conv = self._scalar("SELECT coalesce(max(id), 0) + 1 FROM conversations")
        next_msg = self._scalar("SELECT coalesce(max(id), 0) + 1 FROM messages")
        users = list(dict.fromkeys([*extra_users, *(p.user_id for p in plans)]))
        conv_ids = list(range(next_conv, next_conv + len(plans)))
        with conn.transaction():
            conn.execute("ALTER TABLE messages DISABLE TRIGGER USER")
            conn.execute("ALTER TABLE conversations DISABLE TRIGGER USER")
            self._copy_users(users)
            self._copy_conversations_and_messages(plans, conv_ids, next_msg)
            conn.execute("ALTER TABLE messages ENABLE TRIGGER USER")
            conn.execute("ALTER TABLE conversations ENABLE TRIGGER USER")
            for table in ("conversations", "messages"):
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, 'id'), max(id)) FROM {i}"
                    ).format(t=sql.Literal(table), i=sql.Identifier(table))
                )
        started = time.perf_counter()
        if self._peers:
            mirror_to_peers(conn, conv_ids[0], conv_ids[-1])
        self._last_peer_seconds = time.perf_counter() - started
        # Settle the new rows (hint bits, visibility map, statistics) now, so that
        # autovacuum does not do it in the middle of the measurements.
        conn.execute("VACUUM (ANALYZE)")
        return conv_ids

    def _copy_users(self, users: list[str]) -> None:
        existing = {
            r[0] for r in self._conn.execute("SELECT id FROM users WHERE id = ANY(%s)", (users,))
        }
        with self._conn.cursor().copy(
            "COPY users (id, email, name, created_at) FROM STDIN"
        ) as copy:
            stamp = EPOCH.isoformat()
            for user_id in users:
                if user_id not in existing:
                    copy.write(f"{user_id}\t{user_id}@example.com\t{user_id}\t{stamp}\n")

    def _copy_conversations_and_messages(
        self, plans: list[PlannedConversation], conv_ids: list[int], next_msg: int
    ) -> None:
        rng = self._rng
        numbered = self._numbered
        starts = [EPOCH + timedelta(seconds=rng.randrange(365 * 86_400)) for _ in plans]
        conv_columns = "id, user_id, title, created_at, updated_at"
        msg_columns = "id, conversation_id, created_at, user_id, role, content"
        if numbered:
            conv_columns += ", message_count, last_message_at"
            msg_columns += ", seq"
        with self._conn.cursor().copy(f"COPY conversations ({conv_columns}) FROM STDIN") as copy:
            rows = []
            for conv_id, plan, start in zip(conv_ids, plans, starts, strict=True):
                last = (start + MESSAGE_GAP * max(0, plan.message_count - 1)).isoformat()
                row = f"{conv_id}\t{plan.user_id}\tConversation {conv_id}\t{start.isoformat()}"
                row += f"\t{last}"
                if numbered:
                    last_message_at = last if plan.message_count else COPY_NULL
                    row += f"\t{plan.message_count}\t{last_message_at}"
                rows.append(row + "\n")
            copy.write("".join(rows))
        with self._conn.cursor().copy(f"COPY messages ({msg_columns}) FROM STDIN") as copy:
            buf: list[str] = []
            size = 0
            msg_id = next_msg
            for conv_id, plan, start in zip(conv_ids, plans, starts, strict=True):
                text = self._text
                tail_from = plan.message_count - TAIL if plan.same_tail else plan.message_count
                for i in range(plan.message_count):
                    role = "user" if i % 2 == 0 else "assistant"
                    if i == tail_from:
                        # The same last 50 texts, so that reading the last 50 of a long and
                        # of a short conversation moves the same bytes.
                        text = TextSource(seed=TAIL)
                    body = text.text(role)
                    seq = f"\t{i + 1}" if numbered else ""
                    buf.append(
                        f"{msg_id}\t{conv_id}\t{(start + MESSAGE_GAP * i).isoformat()}"
                        f"\t{plan.user_id}\t{role}\t{body}{seq}\n"
                    )
                    size += len(body) + 64
                    msg_id += 1
                    if size > COPY_CHUNK_BYTES:
                        copy.write("".join(buf))
                        buf, size = [], 0
            copy.write("".join(buf))


LANGCHAIN_MIRROR = sql.SQL("""
INSERT INTO {table} (session_id, message, created_at)
SELECT md5(m.conversation_id::text)::uuid,
       jsonb_build_object(
           'type', CASE m.role WHEN 'user' THEN 'human' ELSE 'ai' END,
           'data', jsonb_build_object(
               'content', m.content, 'additional_kwargs', '{{}}'::jsonb,
               'response_metadata', '{{}}'::jsonb,
               'type', CASE m.role WHEN 'user' THEN 'human' ELSE 'ai' END,
               'name', NULL, 'id', NULL)
           || CASE m.role WHEN 'assistant' THEN
               '{{"tool_calls": [], "invalid_tool_calls": [], "usage_metadata": null}}'::jsonb
              ELSE '{{}}'::jsonb END),
       m.created_at
FROM messages AS m
WHERE m.conversation_id BETWEEN %(lo)s AND %(hi)s
ORDER BY m.conversation_id, m.seq
""").format(table=sql.Identifier(LANGCHAIN_TABLE))

AGENTS_SESSIONS_MIRROR = sql.SQL("""
INSERT INTO {table} (session_id, created_at, updated_at)
SELECT c.id::text, c.created_at AT TIME ZONE 'UTC', c.updated_at AT TIME ZONE 'UTC'
FROM conversations AS c
WHERE c.id BETWEEN %(lo)s AND %(hi)s
""").format(table=sql.Identifier(AGENTS_SESSIONS_TABLE))

AGENTS_MESSAGES_MIRROR = sql.SQL("""
INSERT INTO {table} (session_id, message_data, created_at)
SELECT m.conversation_id::text,
       jsonb_build_object('role', m.role, 'content', m.content)::text,
       m.created_at AT TIME ZONE 'UTC'
FROM messages AS m
WHERE m.conversation_id BETWEEN %(lo)s AND %(hi)s
ORDER BY m.conversation_id, m.seq
""").format(table=sql.Identifier(AGENTS_MESSAGES_TABLE))


def _has_sqlmodel_schema(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('sqlmodel.messages') IS NOT NULL").fetchone()
    return bool(row and row[0])


def mirror_to_peers(conn: Conn, lo: int, hi: int) -> None:
    """Copy conversations lo..hi into the seed's, langchain's and Agents SDK tables."""
    params = {"lo": lo, "hi": hi}
    with conn.transaction():
        if _has_sqlmodel_schema(conn):
            from bench.seed_schema import MIRROR

            for statement in MIRROR:
                conn.execute(statement, params)
        conn.execute(LANGCHAIN_MIRROR, params)
        conn.execute(AGENTS_SESSIONS_MIRROR, params)
        conn.execute(AGENTS_MESSAGES_MIRROR, params)
