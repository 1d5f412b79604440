"""The rules the database itself enforces, proven with plain SQL (no chatstore code),
so they hold for every client: CHECKs, owner consistency, append-only messages,
cascades, and an updated_at that only moves forward."""

from __future__ import annotations

from datetime import datetime

import psycopg
import pytest
from psycopg import errors

ALICE, BOB = "alice", "bob"


@pytest.fixture
def conversation_id(conn: psycopg.Connection) -> int:
    """Alice's conversation (Bob exists too, with none)."""
    conn.execute(
        "INSERT INTO users (id, email) VALUES (%s, 'alice@example.com'), (%s, 'bob@example.com')",
        (ALICE, BOB),
    )
    row = conn.execute(
        "INSERT INTO conversations (user_id) VALUES (%s) RETURNING id", (ALICE,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_message(
    conn: psycopg.Connection,
    conversation_id: int,
    content: str,
    role: str = "user",
    user: str = ALICE,
) -> int:
    row = conn.execute(
        "INSERT INTO messages (user_id, conversation_id, role, content)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (user, conversation_id, role, content),
    ).fetchone()
    assert row is not None
    return int(row[0])


def count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def updated_at(conn: psycopg.Connection, conversation_id: int) -> datetime:
    row = conn.execute(
        "SELECT updated_at FROM conversations WHERE id = %s", (conversation_id,)
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("content", ["", " ", "\t\n \r", "\u000b\u000c", "x" * 32_001], ids=repr)
def test_message_content_that_is_blank_or_over_32000_characters_is_refused(
    conn: psycopg.Connection, conversation_id: int, content: str
) -> None:
    with pytest.raises(errors.CheckViolation) as refused:
        add_message(conn, conversation_id, content)
    assert refused.value.diag.constraint_name == "messages_content_check"
    assert count(conn, "messages") == 0


@pytest.mark.parametrize("content", ["x", " padded ", "x" * 32_000, "مرحبا 👋"], ids=len)
def test_message_content_up_to_32000_characters_is_accepted(
    conn: psycopg.Connection, conversation_id: int, content: str
) -> None:
    add_message(conn, conversation_id, content)
    row = conn.execute("SELECT content FROM messages").fetchone()
    assert row == (content,)


@pytest.mark.parametrize("role", ["system", "tool", "User", "assistant ", ""])
def test_an_unknown_role_is_refused(
    conn: psycopg.Connection, conversation_id: int, role: str
) -> None:
    with pytest.raises(errors.CheckViolation) as refused:
        add_message(conn, conversation_id, "hello", role=role)
    assert refused.value.diag.constraint_name == "messages_role_check"


@pytest.mark.parametrize("title", ["", " ", "x" * 201, " leading", "trailing\n"], ids=repr)
def test_a_title_that_is_empty_over_200_characters_or_untrimmed_is_refused(
    conn: psycopg.Connection, conversation_id: int, title: str
) -> None:
    with pytest.raises(errors.CheckViolation) as refused:
        conn.execute("UPDATE conversations SET title = %s", (title,))
    assert refused.value.diag.constraint_name == "conversations_title_check"
    with pytest.raises(errors.CheckViolation):
        conn.execute("INSERT INTO conversations (user_id, title) VALUES (%s, %s)", (ALICE, title))


@pytest.mark.parametrize("title", ["x", "x" * 200, "Plan my week", "a  b"], ids=len)
def test_titles_of_1_to_200_characters_are_accepted(
    conn: psycopg.Connection, conversation_id: int, title: str
) -> None:
    conn.execute("UPDATE conversations SET title = %s", (title,))
    assert conn.execute("SELECT title FROM conversations").fetchone() == (title,)


@pytest.mark.parametrize(
    ("table", "values", "constraint"),
    [
        ("users", ("", "e@example.com"), "users_id_check"),
        ("users", ("has space", "e@example.com"), "users_id_check"),
        ("users", ("carol", "not-an-email"), "users_email_check"),
    ],
)
def test_users_checks_refuse_bad_rows(
    conn: psycopg.Connection, table: str, values: tuple[str, str], constraint: str
) -> None:
    with pytest.raises(errors.CheckViolation) as refused:
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", values)
    assert refused.value.diag.constraint_name == constraint


@pytest.mark.parametrize(
    ("title", "description", "constraint"),
    [
        (" ", None, "tasks_title_check"),
        ("x" * 201, None, "tasks_title_check"),
        ("ok", "d" * 10_001, "tasks_description_check"),
    ],
    ids=["blank-title", "long-title", "long-description"],
)
def test_tasks_checks_refuse_bad_rows(
    conn: psycopg.Connection,
    conversation_id: int,
    title: str,
    description: str | None,
    constraint: str,
) -> None:
    with pytest.raises(errors.CheckViolation) as refused:
        conn.execute(
            "INSERT INTO tasks (user_id, title, description) VALUES (%s, %s, %s)",
            (ALICE, title, description),
        )
    assert refused.value.diag.constraint_name == constraint


def test_a_message_whose_user_is_not_the_conversation_owner_is_refused(
    conn: psycopg.Connection, conversation_id: int
) -> None:
    with pytest.raises(errors.ForeignKeyViolation) as refused:
        add_message(conn, conversation_id, "I am not Alice", user=BOB)
    assert refused.value.diag.constraint_name == "messages_conversation_fkey"
    assert count(conn, "messages") == 0


def test_a_message_for_a_missing_conversation_is_refused(
    conn: psycopg.Connection, conversation_id: int
) -> None:
    with pytest.raises(errors.ForeignKeyViolation):
        add_message(conn, conversation_id + 1000, "hello")


def test_update_of_a_message_is_refused_even_when_it_matches_no_row(
    conn: psycopg.Connection, conversation_id: int
) -> None:
    add_message(conn, conversation_id, "original")
    for where in ("true", "false"):
        with pytest.raises(errors.IntegrityConstraintViolation) as refused:
            conn.execute(f"UPDATE messages SET content = 'edited' WHERE {where}")
        assert refused.value.diag.constraint_name == "messages_append_only"
    assert conn.execute("SELECT content FROM messages").fetchall() == [("original",)]


def test_deleting_a_conversation_removes_its_messages_only(
    conn: psycopg.Connection, conversation_id: int
) -> None:
    other = conn.execute(
        "INSERT INTO conversations (user_id) VALUES (%s) RETURNING id", (ALICE,)
    ).fetchone()
    assert other is not None
    add_message(conn, conversation_id, "one")
    add_message(conn, conversation_id, "two")
    add_message(conn, other[0], "kept")
    conn.execute("DELETE FROM conversations WHERE id = %s", (conversation_id,))
    assert conn.execute("SELECT content FROM messages").fetchall() == [("kept",)]


def test_deleting_a_user_removes_their_tasks_conversations_and_messages(
    conn: psycopg.Connection, conversation_id: int
) -> None:
    bobs = conn.execute(
        "INSERT INTO conversations (user_id) VALUES (%s) RETURNING id", (BOB,)
    ).fetchone()
    assert bobs is not None
    add_message(conn, conversation_id, "alice's")
    add_message(conn, bobs[0], "bob's", user=BOB)
    conn.execute("INSERT INTO tasks (user_id, title) VALUES (%s, 'a'), (%s, 'b')", (ALICE, BOB))
    conn.execute("DELETE FROM users WHERE id = %s", (ALICE,))
    for table in ("tasks", "conversations", "messages"):
        owners = conn.execute(f"SELECT DISTINCT user_id FROM {table}").fetchall()
        assert owners == [(BOB,)], table


def test_updated_at_moves_on_a_conversation_update_and_on_each_new_message(
    conn: psycopg.Connection, conversation_id: int
) -> None:
    seen = [updated_at(conn, conversation_id)]
    conn.execute("UPDATE conversations SET title = 'Renamed'")
    seen.append(updated_at(conn, conversation_id))
    add_message(conn, conversation_id, "hello")
    seen.append(updated_at(conn, conversation_id))
    add_message(conn, conversation_id, "again", role="assistant")
    seen.append(updated_at(conn, conversation_id))
    assert seen == sorted(seen)
    assert len(set(seen)) == 4
    newest = conn.execute("SELECT max(created_at) FROM messages").fetchone()
    assert newest == (seen[-1],)


def test_updated_at_never_moves_backwards_when_an_older_transaction_commits_last(
    conn: psycopg.Connection, db_dsn: str, conversation_id: int
) -> None:
    with psycopg.connect(db_dsn) as older:
        # The older transaction's now() is fixed here, before the newer one runs.
        older.execute("SELECT now()")
        add_message(conn, conversation_id, "newer transaction")
        after_newer = updated_at(conn, conversation_id)
        older.execute("UPDATE conversations SET title = 'older' WHERE id = %s", (conversation_id,))
        older.commit()
    assert updated_at(conn, conversation_id) == after_newer


def test_the_first_user_message_titles_an_untitled_conversation(
    conn: psycopg.Connection, conversation_id: int
) -> None:
    add_message(conn, conversation_id, "Hi! I can help with your tasks.", role="assistant")
    assert conn.execute("SELECT title FROM conversations").fetchone() == (None,)
    add_message(conn, conversation_id, "  Plan   my\nweek " + "x" * 300)
    add_message(conn, conversation_id, "second question")
    (title,) = conn.execute("SELECT title FROM conversations").fetchone() or (None,)
    assert title == ("Plan my week " + "x" * 300)[:200]
    conn.execute("UPDATE conversations SET title = 'Chosen'")
    add_message(conn, conversation_id, "does not retitle")
    assert conn.execute("SELECT title FROM conversations").fetchone() == ("Chosen",)
