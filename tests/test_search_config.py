"""The text search configuration of search_messages is changed by a migration, as
docs/schema.md ("Search") writes it: the function that names it is redefined and the
index rebuilt concurrently, by the runner, and rolled back the same way.

Not in the Citus suite (tests/test_citus.py): it changes the schema of its database;
the same two statements were run on a distributed database by hand (docs/schema.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from chatstore import migrations, queries

TO_ENGLISH = """-- Search with English stemming: running, runs and ran's stem are one word.
-- transactional: false
-- squawk-ignore-file require-lock-timeout

CREATE OR REPLACE FUNCTION chatstore_search_config() RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '{config}'::regconfig;

REINDEX INDEX CONCURRENTLY messages_search_idx;
"""


def snippets(conn: psycopg.Connection, query: str) -> list[str]:
    page = queries.search_messages(conn, user_id="ann", query=query)
    return sorted(hit.snippet for hit in page.items)


def test_a_migration_changes_the_configuration_and_its_rollback_restores_it(
    conn: psycopg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    queries.create_user(conn, id="ann", email="ann@example.com")
    conversation = queries.create_conversation(conn, user_id="ann")
    queries.append_messages(
        conn,
        user_id="ann",
        conversation_id=conversation.id,
        messages=[("user", "She was running"), ("assistant", "The runs were long")],
    )
    assert snippets(conn, "runs") == ["The runs were long"]  # 'simple': whole words
    assert snippets(conn, "the") == ["The runs were long"]  # and no stop words
    source = tmp_path / "migrations"
    shutil.copytree(migrations.migrations_dir(), source)
    (source / "zz_search_english.sql").write_text(TO_ENGLISH.format(config="english"))
    (source / "zz_search_english.rollback.sql").write_text(TO_ENGLISH.format(config="simple"))
    assert migrations.apply(db_dsn, source=source) == ["zz_search_english"]
    assert snippets(conn, "runs") == ["She was running", "The runs were long"]
    assert snippets(conn, "the") == []  # an English stop word: nothing to look for
    # Still on the index, whose expression is the new configuration's (two rows would
    # rather be read whole).
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(
        str(row[0])
        for row in conn.execute(
            "EXPLAIN SELECT 1 FROM messages WHERE chatstore_search_key(user_id, content)"
            " @@ 'run'::tsquery"
        )
    )
    assert "messages_search_idx" in plan
    assert "'english'::regconfig" in plan
    conn.execute("RESET enable_seqscan")
    assert migrations.rollback(db_dsn, source=source) == ["zz_search_english"]
    assert snippets(conn, "runs") == ["The runs were long"]
