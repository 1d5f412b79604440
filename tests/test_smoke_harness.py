import psycopg


def test_clone_has_the_chat_tables(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    ).fetchall()
    names = {r[0] for r in rows}
    assert {"users", "tasks", "conversations", "messages"} <= names
