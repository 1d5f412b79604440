"""``make demo``: the seed quickstart's walk through a chat endpoint's life, on chatstore.

    python -m chatstore.demo [--dbname chatstore_demo] [--keep]

The server is the one named by ``CHATSTORE_DSN``, else an embedded PostgreSQL 16. The
demo creates its own database, applies the migrations, shows the tables, then creates a
user and a conversation, appends a user and an assistant message, reads the history,
lists the user's conversations, shows that another user cannot see them, appends 100
messages and times reading them back, and deletes the conversation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

from chatstore import devserver, migrations
from chatstore import queries as q
from chatstore.errors import NotFound
from chatstore.models import Role

T = TypeVar("T")

USER = "test_user_123"
INTRUDER = "someone_else"


def heading(text: str) -> None:
    print(f"\n=== {text} ===")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def show_tables(conn: psycopg.Connection) -> None:
    tables = conn.execute(
        """
        SELECT c.relname, count(a.attnum)
        FROM pg_class AS c
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT LIKE '%yoyo%'
        GROUP BY c.relname
        ORDER BY c.relname
        """
    ).fetchall()
    print(f"   {'table':<15}{'columns':>8}{'rows':>8}")
    for name, columns in tables:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
        ).fetchone()
        rows = count[0] if count else 0
        print(f"   {name:<15}{columns:>8}{rows:>8}")


def walk(conn: psycopg.Connection) -> None:
    heading("Test 1: Create a user and a conversation")
    user = q.create_user(conn, id=USER, email=f"{USER}@example.com", name="Test User")
    conversation = q.create_conversation(conn, user_id=user.id)
    print(f"✅ Created user {user.id!r} and conversation ID: {conversation.id}")
    print(f"   Created: {conversation.created_at.isoformat(' ', 'seconds')}")
    print(f"   Title:   {conversation.title} (set from the first user message)")

    heading("Test 2: Add messages")
    first = q.append_message(
        conn,
        user_id=USER,
        conversation_id=conversation.id,
        role="user",
        content="Hello, can you help me?",
    )
    second = q.append_message(
        conn,
        user_id=USER,
        conversation_id=conversation.id,
        role="assistant",
        content="Of course! How can I assist you today?",
    )
    print(f"✅ Created message 1 ID: {first.id}")
    print(f"✅ Created message 2 ID: {second.id}")

    heading("Test 3: Read the conversation history")
    history = q.get_messages(conn, user_id=USER, conversation_id=conversation.id)
    print(f"✅ Found {len(history)} messages in conversation {conversation.id}")
    for message in history:
        print(f"   [{message.role}]: {message.content}")

    heading("Test 4: List the user's conversations")
    page = q.list_conversations(conn, user_id=USER)
    print(f"✅ User {USER!r} has {len(page.items)} conversation(s), most recent first:")
    for item in page.items:
        print(f"   #{item.id} {item.title!r}, updated {item.updated_at.isoformat(' ', 'seconds')}")

    heading("Another user cannot see them")
    q.create_user(conn, id=INTRUDER, email=f"{INTRUDER}@example.com")
    print(f"   {INTRUDER!r} lists {len(q.list_conversations(conn, user_id=INTRUDER).items)}")
    for attempt in ("get_conversation", "get_messages", "append_message", "delete_conversation"):
        try:
            if attempt == "append_message":
                q.append_message(
                    conn,
                    user_id=INTRUDER,
                    conversation_id=conversation.id,
                    role="user",
                    content="let me in",
                )
            else:
                getattr(q, attempt)(conn, user_id=INTRUDER, conversation_id=conversation.id)
        except NotFound as exc:
            print(
                f"✅ {attempt}(user_id={INTRUDER!r}, conversation_id={conversation.id}):"
                f" NotFound ({exc})"
            )
        else:
            raise SystemExit(f"❌ {attempt} let {INTRUDER!r} reach {USER!r}'s conversation")

    heading("Performance: 100 messages")
    pairs: list[tuple[Role, str]] = [
        ("user" if i % 2 == 0 else "assistant", f"Test message {i}") for i in range(100)
    ]
    appended, ms = timed(
        lambda: q.append_messages(
            conn, user_id=USER, conversation_id=conversation.id, messages=pairs
        )
    )
    print(f"   Appended {len(appended)} messages in one statement: {ms:.2f} ms")
    read, first_ms = timed(
        lambda: q.get_messages(conn, user_id=USER, conversation_id=conversation.id)
    )
    times = [
        timed(lambda: q.get_messages(conn, user_id=USER, conversation_id=conversation.id))[1]
        for _ in range(30)
    ]
    print(
        f"   Read back {len(read)} messages: first read {first_ms:.2f} ms,"
        f" median of 30 more {statistics.median(times):.2f} ms"
        f" (the seed asks for < 100 ms; not a benchmark: see `make bench`)"
    )
    in_order = [m.content for m in read[2:]] == [content for _, content in pairs]
    print(f"{'✅' if in_order else '❌'} In append order: {in_order}")
    last = q.get_messages(conn, user_id=USER, conversation_id=conversation.id, limit=5)
    print(f"   The last 5 (what an endpoint loads): {[m.content for m in last]}")

    heading("Test 5: Delete the conversation (messages cascade)")
    before = len(read)
    q.delete_conversation(conn, user_id=USER, conversation_id=conversation.id)
    remaining = conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = %s", [conversation.id]
    ).fetchone()
    print(f"   Before delete: {before} messages exist")
    print(f"   After delete: {remaining[0] if remaining else '?'} messages remain")
    try:
        q.get_messages(conn, user_id=USER, conversation_id=conversation.id)
    except NotFound:
        print("✅ CASCADE DELETE works: the conversation and its messages are gone")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dbname", default="chatstore_demo", help="database to (re)create")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)

    server = devserver.server_dsn()
    where = (
        "CHATSTORE_DSN"
        if server == os.environ.get(devserver.DSN_ENV)
        else ("embedded PostgreSQL (pgserver)")
    )
    dsn = devserver.create_database(server, args.dbname)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            print(f"Server: PostgreSQL {version[0] if version else '?'} ({where})")
            print(f"Database: {args.dbname} (created)")
            applied = migrations.apply(dsn)
            print(f"Migrations applied: {len(applied)}")
            for migration in applied:
                print(f"   {migration}")
            heading("Tables")
            show_tables(conn)
            walk(conn)
            heading("Tables after the walk")
            show_tables(conn)
    finally:
        if args.keep:
            print(f"\nKept database {args.dbname}.")
        else:
            devserver.drop_database(server, args.dbname)
    print("\n✅ Demo complete.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
