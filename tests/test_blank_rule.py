"""One rule for "blank" and "trimmed", enforced alike by the database (migration 0010)
and the API (chatstore._blank), and e-mail addresses unique whatever their case."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatstore import _blank, migrations
from chatstore.errors import AlreadyExists, InvalidInput
from tests import _helpers
from tests._helpers import Store, snapshot, user

store = _helpers.store

EVERY_CODE_POINT = """
SELECT array_agg(cp ORDER BY cp)
FROM generate_series(1, 1114111) AS cp
WHERE (cp < 55296 OR cp > 57343) AND chr(cp) ~ ('[' || {} || ']')
"""


@pytest.mark.parametrize(
    ("function", "python"),
    [
        ("chatstore_space_chars()", _blank.SPACES),
        ("chatstore_invisible_chars()", _blank.INVISIBLES),
        ("chatstore_attaching_chars()", _blank.ATTACHING),
    ],
)
def test_the_database_and_the_api_hold_the_same_characters(
    conn: psycopg.Connection, function: str, python: frozenset[str]
) -> None:
    row = conn.execute(EVERY_CODE_POINT.format(function)).fetchone()
    assert row is not None
    assert {chr(cp) for cp in row[0]} == python


# A person's view of each: (text, blank?, trimmed title).
EXAMPLES = [
    ("hello", False, "hello"),
    ("\u00a0 Trip plans\u3000", False, "Trip plans"),  # no-break and ideographic spaces
    ("\u200b\u200bhi\u200b", False, "hi"),  # zero-width spaces
    ("\u200b\u2060\ufeff", True, ""),  # zero-width space, word joiner, BOM
    ("\u3164\u115f", True, ""),  # Hangul fillers
    ("\u2800", True, ""),  # braille blank
    ("\u200d\ufe0f", True, ""),  # a joiner and an emoji selector on nothing
    ("I \u2764\ufe0f", False, "I \u2764\ufe0f"),  # the selector stays with its heart
    ("\x1f\x1e tab\t", False, "tab"),  # control characters
    ("e\u0301", False, "e\u0301"),
]


@pytest.mark.parametrize(("text", "blank", "trimmed"), EXAMPLES)
def test_examples_of_blank_and_trimmed(
    conn: psycopg.Connection, text: str, blank: bool, trimmed: str
) -> None:
    assert _blank.is_blank(text) is blank
    assert _blank.trim(text) == trimmed
    row = conn.execute("SELECT chatstore_is_blank(%s), chatstore_trim(%s)", (text, text))
    assert row.fetchone() == (blank, trimmed)


ALPHABET = st.sampled_from(
    [*sorted(_blank.BLANK), "a", "Z", "\u00e9", "\u4e2d", "\U0001f600", "\u0301", "@", "."]
)


# The connection only reads: sharing it between examples is fine.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(ALPHABET, max_size=12))
def test_the_api_refuses_exactly_what_the_database_refuses(
    conn: psycopg.Connection, text: str
) -> None:
    row = conn.execute("SELECT chatstore_is_blank(%s), chatstore_trim(%s)", (text, text))
    assert row.fetchone() == (_blank.is_blank(text), _blank.trim(text))


async def test_blank_and_padded_text_is_refused_by_the_api_and_by_raw_sql(
    store: Store, conn: psycopg.Connection
) -> None:
    await user(store, "ann")
    conversation = await store.create_conversation(user_id="ann", title="\u00a0Week\u200b")
    assert conversation.title == "Week"
    task = await store.add_task(user_id="ann", title="\u3000Milk\u00a0")
    assert task.title == "Milk"
    before = snapshot(conn)
    for call in (
        store.append_message(
            user_id="ann", conversation_id=conversation.id, role="user", content="\u200b\u3164"
        ),
        store.create_conversation(user_id="ann", title="\u2800"),
        store.add_task(user_id="ann", title="\u200b \u00a0"),
        store.create_user(id="bob\u00a0smith", email="bob@example.com"),
        store.create_user(id="bob", email="bob\u200b@example.com"),
    ):
        with pytest.raises(InvalidInput):
            await call
    assert snapshot(conn) == before
    for statement, params in (
        (
            "INSERT INTO messages (user_id, conversation_id, role, content)"
            " VALUES ('ann', %s, 'user', %s)",
            (conversation.id, "\u200b\u3164"),
        ),
        ("UPDATE conversations SET title = %s WHERE id = %s", ("\u00a0Week", conversation.id)),
        ("UPDATE tasks SET title = %s WHERE id = %s", ("Milk\u3000", task.id)),
        ("INSERT INTO users (id, email) VALUES (%s, 'x@example.com')", ("x\u2003y",)),
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(statement, params)


# Cutting an automatic title at 200 characters keeps each character a person sees whole.
CLUSTERS = [
    ("e\u0301", "an accent as a combining mark"),
    ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "a family: a ZWJ sequence"),
    ("\U0001f44d\U0001f3fd", "a thumb with a skin tone"),
    ("1\ufe0f\u20e3", "a keycap"),
    ("\U0001f1eb\U0001f1f7", "a flag: two regional indicators"),
    ("\u0915\u094d\u0937", "a Devanagari conjunct (ksha)"),
]


@pytest.mark.parametrize(("cluster", "what"), CLUSTERS)
@pytest.mark.parametrize("before", [196, 197, 198, 199, 200])
def test_the_automatic_title_is_cut_between_clusters(
    conn: psycopg.Connection, cluster: str, what: str, before: int
) -> None:
    content = "x" * before + cluster + cluster + " tail"
    row = conn.execute("SELECT chatstore_title_from(%s)", (content,)).fetchone()
    assert row is not None
    title = row[0]
    whole = ["x" * before + cluster * n for n in (0, 1, 2)]
    assert title in whole, what
    assert len(title) <= 200
    # The longest whole prefix that fits is kept.
    assert title == max((w for w in whole if len(w) <= 200), key=len), what


async def test_an_email_is_taken_whatever_its_case(store: Store, conn: psycopg.Connection) -> None:
    await store.create_user(id="alice", email="Alice@Example.com")
    before = snapshot(conn)
    with pytest.raises(AlreadyExists) as caught:
        await store.create_user(id="alice2", email="alice@EXAMPLE.COM")
    assert caught.value.constraint == "users_email_key"
    assert snapshot(conn) == before
    stored = await store.get_user(user_id="alice")
    assert stored.email == "Alice@Example.com"  # stored as given


BEFORE_EMAIL_KEY = "chatstore_0010_unicode_blank_rule"


def test_addresses_that_differ_only_by_case_stop_the_upgrade_and_are_listed(
    empty_db: str,
) -> None:
    migrations.apply(empty_db, up_to=BEFORE_EMAIL_KEY)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (id, email) VALUES ('a', 'Ann@ex.com'), ('b', 'ann@EX.com'),"
            " ('c', 'carl@ex.com')"
        )
        with pytest.raises(psycopg.errors.UniqueViolation) as caught:
            migrations.apply(empty_db)
        assert "Ann@ex.com, ann@EX.com" in str(caught.value)
        # 0011 stopped the upgrade: it and every migration after it are still pending.
        pending = [s.id for s in migrations.status(empty_db) if not s.applied]
        assert pending[0] == "chatstore_0011_validate_rules_and_email_key"
        assert pending == sorted(
            s.id for s in migrations.status(empty_db) if s.id > BEFORE_EMAIL_KEY
        )
        conn.execute("UPDATE users SET email = 'ann2@ex.com' WHERE id = 'b'")
        assert migrations.apply(empty_db) == pending


def test_padded_task_titles_from_before_are_trimmed_by_the_upgrade(empty_db: str) -> None:
    migrations.apply(empty_db, up_to="chatstore_0009_tenant_primary_keys")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, email) VALUES ('a', 'a@ex.com')")
        conn.execute(
            "INSERT INTO tasks (user_id, title) VALUES ('a', '  Milk\u00a0'), ('a', 'Eggs')"
        )
        migrations.apply(empty_db)
        titles = conn.execute("SELECT title FROM tasks ORDER BY id").fetchall()
        assert titles == [("Milk",), ("Eggs",)]
