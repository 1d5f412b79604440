"""The seed's own schema for the SQLModel contenders (seed 002, "Phase III").

Seed 002 gives the DDL, the indexes and the SQLModel classes of a chatbot's history. The
SQLModel contenders run on exactly that, in a PostgreSQL schema of their own
(``sqlmodel``), so that they are measured as the seed's users would deploy them: SERIAL
ids, ``TIMESTAMP`` without time zone, the seed's six indexes (among them
``idx_messages_conversation_id_created_at``), ``ON DELETE CASCADE`` foreign keys, and no
trigger (the seed keeps ``conversations.updated_at`` from the application). The seed's
``tasks`` table and its two indexes are left out: nothing here touches tasks.

The loader copies chatstore's conversations into these tables (same ids, texts and
times); the rows the contenders create themselves take ids from 1,000,000,000 up, so
they never collide with the ids the loader copies at a later scale.
"""

# No ``from __future__ import annotations``: SQLModel resolves relationships from the
# evaluated annotations.
from datetime import UTC, datetime

from psycopg import sql
from sqlmodel import Field, Relationship, SQLModel

SCHEMA = "sqlmodel"
OWN_IDS_FROM = 1_000_000_000

# Seed 002's DDL and its indexes, verbatim but for the schema (and tasks, left out).
DDL = f"""
CREATE SCHEMA {SCHEMA};
SET LOCAL search_path = {SCHEMA};

CREATE TABLE users (
    id VARCHAR PRIMARY KEY,
    email VARCHAR UNIQUE NOT NULL,
    name VARCHAR,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE conversations (
    id SERIAL PRIMARY KEY,
    user_id VARCHAR NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title VARCHAR(200),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE messages (
    id SERIAL PRIMARY KEY,
    user_id VARCHAR NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role VARCHAR(20) NOT NULL,
    content TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX idx_conversations_user_id ON conversations(user_id);
CREATE INDEX idx_conversations_updated_at ON conversations(updated_at);
CREATE INDEX idx_messages_conversation_id ON messages(conversation_id);
CREATE INDEX idx_messages_conversation_id_created_at ON messages(conversation_id, created_at);

ALTER SEQUENCE conversations_id_seq RESTART {OWN_IDS_FROM};
ALTER SEQUENCE messages_id_seq RESTART {OWN_IDS_FROM};
"""

TABLES = ("users", "conversations", "messages")


def utcnow() -> datetime:
    """The seed's ``datetime.utcnow``, made aware: SQLModel 0.0.50 (the version measured)
    refuses naive datetimes. The server runs in UTC, so the stored values are the same."""
    return datetime.now(UTC)


def create(conn: object) -> None:
    """Create the seed's tables (``conn``: a psycopg connection)."""
    with conn.transaction():  # type: ignore[attr-defined]
        conn.execute(DDL)  # type: ignore[attr-defined]


# The copy of chatstore's rows lo..hi, made by the loader at each scale. The seed's
# columns are TIMESTAMP without time zone: UTC times are stored.
MIRROR = [
    sql.SQL("""
INSERT INTO {s}.users (id, email, name, created_at)
SELECT u.id, u.email, u.name, u.created_at AT TIME ZONE 'UTC'
FROM users AS u
ON CONFLICT (id) DO NOTHING
""").format(s=sql.Identifier(SCHEMA)),
    sql.SQL("""
INSERT INTO {s}.conversations (id, user_id, title, created_at, updated_at)
SELECT c.id, c.user_id, c.title, c.created_at AT TIME ZONE 'UTC',
       c.updated_at AT TIME ZONE 'UTC'
FROM conversations AS c
WHERE c.id BETWEEN %(lo)s AND %(hi)s
""").format(s=sql.Identifier(SCHEMA)),
    sql.SQL("""
INSERT INTO {s}.messages (id, user_id, conversation_id, role, content, created_at)
SELECT m.id, m.user_id, m.conversation_id, m.role, m.content, m.created_at AT TIME ZONE 'UTC'
FROM messages AS m
WHERE m.conversation_id BETWEEN %(lo)s AND %(hi)s
ORDER BY m.conversation_id, m.seq
""").format(s=sql.Identifier(SCHEMA)),
]


# -- the seed's SQLModel classes (seed 002), mapped to the schema above ------------------
# As the seed writes them: Optional ids, ``datetime.utcnow`` defaults (see utcnow), the
# Conversation.messages / Message.conversation relationship (plus the one setting that
# makes the seed's delete work, below).
# ``User`` stands for the seed's Phase II model, which it imports.


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}

    id: str = Field(primary_key=True)
    email: str
    name: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key=f"{SCHEMA}.users.id")
    title: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    # The seed writes Relationship(back_populates="conversation"), with which
    # session.delete(conversation) cannot work: SQLAlchemy loads the messages and sets
    # their NOT NULL conversation_id to NULL. SQLModel's tutorial ("Cascade Delete
    # Relationships") fixes that with cascade_delete=True, as done here: the ORM then
    # loads the messages and deletes them itself. (passive_deletes would let the
    # database's ON DELETE CASCADE do it; the competent contender deletes with one
    # DELETE statement instead, which no relationship setting touches.)
    messages: list["Message"] = Relationship(back_populates="conversation", cascade_delete=True)


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key=f"{SCHEMA}.users.id")
    conversation_id: int = Field(foreign_key=f"{SCHEMA}.conversations.id")
    role: str = Field(max_length=20)
    content: str
    created_at: datetime = Field(default_factory=utcnow)

    conversation: Conversation = Relationship(back_populates="messages")
