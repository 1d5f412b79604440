"""Each access path the chat endpoint needs is served by the index built for it.

On 5,000 users, 100 of them with 100 conversations x 10 messages and 10 agent items,
plus one conversation of 20,000 messages (120k messages in all), and 20k tasks, after ANALYZE,
the planner runs chatstore's own named queries (sql/queries/) on the intended index.
docs/schema.md shows the same plans (python -m tools.explain_plans prints them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql.executors.noop import NoopExecutor

from chatstore import devserver, retention
from chatstore._sql import QUERIES
from tests.test_queries_sql import SAMPLES

LOAD = """
INSERT INTO users (id, email)
SELECT 'user' || u, 'user' || u || '@example.com' FROM generate_series(1, 5000) AS u;

INSERT INTO conversations (user_id, created_at, updated_at)
SELECT 'user' || u, now() - make_interval(hours => c), now() - make_interval(hours => c)
FROM generate_series(1, 100) AS u, generate_series(1, 100) AS c;

INSERT INTO messages (user_id, conversation_id, role, content)
SELECT c.user_id, c.id, CASE WHEN m % 2 = 1 THEN 'user' ELSE 'assistant' END,
       'message ' || m || repeat(' lorem ipsum', m * 5)
FROM conversations AS c, generate_series(1, 10) AS m;

WITH long AS (INSERT INTO conversations (user_id) VALUES ('user1') RETURNING user_id, id)
INSERT INTO messages (user_id, conversation_id, role, content)
SELECT long.user_id, long.id, CASE WHEN m % 2 = 1 THEN 'user' ELSE 'assistant' END, 'turn ' || m
FROM long, generate_series(1, 20000) AS m;

INSERT INTO tasks (user_id, title, completed)
SELECT 'user' || u, 'task ' || t, t % 2 = 0
FROM generate_series(1, 100) AS u, generate_series(1, 200) AS t;

INSERT INTO agent_items (user_id, conversation_id, slot, seq, item)
SELECT c.user_id, c.id, i, i, '{"type":"function_call","arguments":"{}"}'
FROM conversations AS c, generate_series(1, 10) AS i;
UPDATE conversations SET agent_item_count = 10, agent_item_top = 10;
-- One conversation in ten archived (0015), on the archive's own index.
UPDATE conversations SET archived_at = updated_at WHERE id % 10 = 0;

ANALYZE users, conversations, messages, tasks, agent_items;
"""

# The statements chatstore runs for the three access paths (sql/queries/).
RECENT_CONVERSATIONS = QUERIES["list_conversations"]
LAST_MESSAGES = QUERIES["get_messages"]
MESSAGES_AFTER = QUERIES["get_messages_after"]
TASKS_BY_STATUS = QUERIES["list_tasks"]


@pytest.fixture(scope="module")
def loaded(postgresql_proc: NoopExecutor, server_dsn: str) -> Iterator[psycopg.Connection]:
    """One clone of the migrated template, loaded once for this module (read-only tests)."""
    name = f"{postgresql_proc.dbname}_plans"
    dsn = devserver.create_database(server_dsn, name, template=postgresql_proc.template_dbname)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(LOAD)
            yield conn
    finally:
        devserver.drop_database(server_dsn, name)


def plan_nodes(
    conn: psycopg.Connection, query: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every node of the plan PostgreSQL chooses, depth first."""
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()
    assert row is not None
    nodes, todo = [], [row[0][0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    return nodes


def last_50(user_id: str, conversation_id: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "conversation_id": conversation_id,
        "before": None,
        "after": None,
        "limit": 50,
    }


def scans_of(nodes: list[dict[str, Any]], relation: str) -> list[dict[str, Any]]:
    return [n for n in nodes if n.get("Relation Name") == relation]


def indexes_used(nodes: list[dict[str, Any]], table: str = "") -> set[str]:
    """The indexes the plan reads (of ``table``: index names start with their table's)."""
    names = (n["Index Name"] for n in nodes if "Index Name" in n)
    return {name for name in names if name.startswith(table)}


def node_types(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["Node Type"] for n in nodes}


def test_a_users_conversations_by_recency_use_the_recency_index_without_sorting(
    loaded: psycopg.Connection,
) -> None:
    row = loaded.execute(
        "SELECT updated_at, id FROM conversations WHERE user_id = 'user7'"
        " ORDER BY updated_at DESC, id DESC OFFSET 40 LIMIT 1"
    ).fetchone()
    assert row is not None
    params = {"user_id": "user7", "before_updated_at": row[0], "before_id": row[1], "limit": 21}
    nodes = plan_nodes(loaded, RECENT_CONVERSATIONS, params)
    # The index hands the rows over in page order: no sort before the LIMIT (the
    # query's outer ORDER BY only re-sorts the page's 21 rows).
    (scan,) = scans_of(nodes, "conversations")
    assert (scan["Node Type"], scan["Index Name"], scan["Scan Direction"]) == (
        "Index Scan",
        "conversations_user_id_updated_at_active_idx",
        "Backward",
    )
    assert "Seq Scan" not in node_types(nodes)


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("list_conversations", "conversations_user_id_updated_at_active_idx"),
        ("list_archived_conversations", "conversations_user_id_updated_at_archived_idx"),
    ],
)
def test_each_listing_stays_on_its_partial_index_in_a_generic_plan_too(
    loaded: psycopg.Connection, name: str, index: str
) -> None:
    # psycopg prepares a statement after five runs, and PostgreSQL may then plan it once
    # for any parameters: the predicate each partial index needs (archived_at IS NULL,
    # IS NOT NULL) is in the query's text, not a parameter, so that plan keeps it.
    types = {"user_id": "text", "before_updated_at": "timestamptz"}
    names: list[str] = []

    def numbered(found: re.Match[str]) -> str:
        if found.group(1) not in names:
            names.append(found.group(1))
        return f"${names.index(found.group(1)) + 1}"

    statement = re.sub(r"%\((\w+)\)s", numbered, QUERIES[name])
    signature = ", ".join(types.get(n, "bigint") for n in names)
    values = {"user_id": "user7", "before_updated_at": None, "before_id": None, "limit": 21}
    with psycopg.connect(loaded.info.dsn, autocommit=True) as session:
        session.execute("SET plan_cache_mode = force_generic_plan")
        session.execute(f"PREPARE listing ({signature}) AS {statement}")
        arguments = sql.SQL(", ").join(sql.Literal(values[n]) for n in names)
        row = session.execute(
            sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE listing ({})").format(arguments)
        ).fetchone()
    assert row is not None
    nodes, todo = [], [row[0][0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    (scan,) = scans_of(nodes, "conversations")
    assert (scan["Node Type"], scan["Index Name"], scan["Scan Direction"]) == (
        "Index Scan",
        index,
        "Backward",
    )
    assert "$1" in scan["Index Cond"]  # a generic plan indeed
    assert "Seq Scan" not in node_types(nodes)


@pytest.mark.parametrize("statement", ["_PURGE_BATCH", "_COUNT_BATCH", "_CANDIDATES"])
def test_a_purge_batch_walks_the_last_activity_index_oldest_first(
    loaded: psycopg.Connection, statement: str
) -> None:
    # A batch of chatstore.retention: the conversations of every user idle since the
    # cutoff (here all of them), oldest first from the keyset position, LIMIT the batch,
    # on the expression index of their last activity.
    cutoff = loaded.execute("SELECT now()").fetchone()
    assert cutoff is not None
    params = {
        "cutoff": cutoff[0],
        "after_active_at": None,
        "after_user_id": None,
        "after_id": None,
        "archived_only": False,
        "batch_size": 500,
    }
    nodes = plan_nodes(loaded, getattr(retention, statement), params)
    walk = [n for n in nodes if n.get("Index Name") == "conversations_last_activity_idx"]
    assert [(n["Node Type"], n["Scan Direction"]) for n in walk] == [("Index Scan", "Forward")]
    # A DELETE finds each row again on its key; nothing else is read.
    assert indexes_used(nodes) <= {"conversations_last_activity_idx", "conversations_pkey"}
    assert "Seq Scan" not in node_types(nodes)
    if statement == "_CANDIDATES":  # the index hands the rows over in order: no sort
        assert node_types(nodes) == {"Limit", "Index Scan"}


def test_the_last_messages_of_a_conversation_use_the_message_key(
    loaded: psycopg.Connection,
) -> None:
    row = loaded.execute("SELECT id FROM conversations WHERE user_id = 'user42' LIMIT 1").fetchone()
    assert row is not None
    nodes = plan_nodes(loaded, LAST_MESSAGES, last_50("user42", row[0]))
    assert indexes_used(nodes, "messages") == {"messages_pkey"}
    assert "Seq Scan" not in node_types(nodes)


def long_conversation(loaded: psycopg.Connection) -> int:
    """The id of user1's 20,000-message conversation."""
    row = loaded.execute(
        "SELECT conversation_id FROM messages GROUP BY 1 HAVING count(*) = 20000"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_last_50_of_a_20000_message_conversation_read_50_index_entries_backwards(
    loaded: psycopg.Connection,
) -> None:
    nodes = plan_nodes(loaded, LAST_MESSAGES, last_50("user1", long_conversation(loaded)))
    (scan,) = scans_of(nodes, "messages")
    assert (scan["Node Type"], scan["Index Name"], scan["Scan Direction"]) == (
        "Index Scan",
        "messages_pkey",
        "Backward",
    )


def test_catching_up_after_a_number_reads_forwards_on_the_message_key(
    loaded: psycopg.Connection,
) -> None:
    params = {**last_50("user1", long_conversation(loaded)), "after": 19_000}
    nodes = plan_nodes(loaded, MESSAGES_AFTER, params)
    (scan,) = scans_of(nodes, "messages")
    assert (scan["Node Type"], scan["Index Name"], scan["Scan Direction"]) == (
        "Index Scan",
        "messages_pkey",
        "Forward",
    )


@pytest.mark.parametrize("completed", [False, True])
def test_a_users_tasks_by_status_use_the_tasks_key(
    loaded: psycopg.Connection, completed: bool
) -> None:
    nodes = plan_nodes(loaded, TASKS_BY_STATUS, {"user_id": "user3", "completed": [completed]})
    # A user's tasks lie scattered over the table, so the planner may read them
    # through a bitmap and sort the few it finds; either way, through this index.
    assert indexes_used(nodes, "tasks") == {"tasks_pkey"}
    assert "Seq Scan" not in node_types(nodes)


def test_deleting_a_conversation_cascades_through_the_message_key(
    loaded: psycopg.Connection,
) -> None:
    # The cascade runs "DELETE FROM messages WHERE user_id = $1 AND conversation_id = $2";
    # EXPLAIN plans it without running it.
    nodes = plan_nodes(
        loaded,
        "DELETE FROM messages WHERE user_id = %(user_id)s AND conversation_id = %(id)s",
        {"user_id": "user1", "id": 1},
    )
    assert indexes_used(nodes) == {"messages_pkey"}


def test_a_sessions_first_batch_insert_does_not_leave_appends_scanning_conversations(
    loaded: psycopg.Connection,
) -> None:
    # PL/pgSQL caches the plans of the bump trigger's statements for the session at
    # their first execution. A large first batch must not leave every later
    # single-message append of that session scanning the whole conversations table.
    row = loaded.execute("SELECT id FROM conversations WHERE user_id = 'user9' LIMIT 1").fetchone()
    assert row is not None
    append = (
        "INSERT INTO messages (user_id, conversation_id, role, content)"
        " SELECT 'user9', %s, 'user', 'batch ' || n FROM generate_series(1, %s) AS n"
    )
    seq_scans = "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'conversations'"
    with psycopg.connect(loaded.info.dsn) as session, session.transaction(force_rollback=True):
        session.execute(append, (row[0], 200))
        before = session.execute(seq_scans).fetchone()
        for _ in range(10):
            session.execute(append, (row[0], 1))
        assert session.execute(seq_scans).fetchone() == before


@pytest.mark.parametrize(
    ("call", "indexes"),
    [
        (
            "SELECT seq FROM chatstore_append_messages('user7', %s, 'req-1',"
            " ARRAY['user', 'assistant'], ARRAY['hi', 'hello'])",
            ("messages_request_id_key", "messages_pkey", "conversations_pkey"),
        ),
        (
            "SELECT seq, same FROM chatstore_add_agent_items('user7', %s, 'req-1',"
            " ARRAY['{}', '[1]']::json[], ARRAY['user'], ARRAY['hi'])",
            ("agent_items_request_id_key", "agent_items_pkey", "conversations_pkey"),
        ),
    ],
    ids=["append_keyed_messages", "add_keyed_agent_items"],
)
def test_a_keyed_write_and_its_retry_read_their_indexes_and_scan_no_table(
    loaded: psycopg.Connection, call: LiteralString, indexes: tuple[str, ...]
) -> None:
    # Each function locks the conversation (conversations_pkey), looks the key up (its
    # partial unique index, which holds only keyed rows) and, on a retry, reads the
    # stored rows on the table's key; EXPLAIN of a call shows a function, so the
    # statistics of the transaction tell what its statements read.
    row = loaded.execute("SELECT id FROM conversations WHERE user_id = 'user7' LIMIT 1").fetchone()
    assert row is not None
    tables = (
        "SELECT relname, seq_scan FROM pg_stat_xact_user_tables"
        " WHERE relname IN ('agent_items', 'conversations', 'messages') ORDER BY relname"
    )
    reads = "SELECT pg_stat_get_xact_numscans(%s::regclass)"
    with psycopg.connect(loaded.info.dsn) as session, session.transaction(force_rollback=True):
        first = session.execute(call, (row[0],)).fetchall()
        again = session.execute(call, (row[0],)).fetchall()
        assert [r[0] for r in first] == [r[0] for r in again]
        assert all(r[-1] is not False for r in again)
        assert all(seq_scans == 0 for _, seq_scans in session.execute(tables)), "a table scan"
        for index in indexes:
            scans = session.execute(reads, (index,)).fetchone()
            assert scans is not None
            assert scans[0] >= 1, index


# Every named query, planned on the loaded data: the indexes it must read, and never a
# sequential scan. Writes are planned by EXPLAIN without running.
EXPECTED_INDEXES: dict[str, set[str]] = {
    "create_user": set(),
    "get_user": {"users_pkey"},
    "delete_user": {"users_pkey"},
    "create_conversation": {"users_pkey"},
    "get_conversation": {"conversations_pkey"},
    "list_conversations": {"conversations_user_id_updated_at_active_idx"},
    "list_archived_conversations": {"conversations_user_id_updated_at_archived_idx"},
    "archive_conversation": {"conversations_pkey"},
    "unarchive_conversation": {"conversations_pkey"},
    "rename_conversation": {"conversations_pkey"},
    "delete_conversation": {"conversations_pkey"},
    "append_message": set(),
    "append_messages": set(),
    # A call of chatstore_append_messages (migration 0013): its statements are checked by
    # test_a_keyed_write_and_its_retry_read_their_indexes_and_scan_no_table.
    "append_keyed_messages": set(),
    "get_messages": {"messages_pkey"},
    "get_messages_after": {"messages_pkey"},
    "add_task": {"users_pkey"},
    "list_tasks": {"tasks_pkey"},
    "get_task": {"tasks_pkey"},
    "update_task": {"tasks_pkey"},
    "complete_task": {"tasks_pkey"},
    "delete_task": {"tasks_pkey"},
    "add_agent_items": {"conversations_pkey"},
    # A call of chatstore_add_agent_items (migration 0013), checked as the one above.
    "add_keyed_agent_items": set(),
    "get_agent_items": {"conversations_pkey", "agent_items_pkey"},
    # A call of chatstore_pop_agent_item (its statements read conversations_pkey and
    # agent_items_pkey by the same keys as get_agent_items; EXPLAIN sees a function).
    "pop_agent_item": set(),
    "clear_agent_items": {"conversations_pkey"},
    # The owner's matches on the search index (entered by the owner's lexeme, below),
    # their conversations' titles by key.
    "search_messages": {"users_pkey", "messages_search_idx", "conversations_pkey"},
    # chatstore.export: each table in key order (run as cursors: see the test after this).
    "export_user": {"users_pkey"},
    "export_tasks": {"tasks_pkey"},
    "export_conversations": {"conversations_pkey"},
    "export_messages": {"messages_pkey"},
    "export_agent_items": {"agent_items_pkey"},
}


def test_every_named_query_has_an_expected_plan() -> None:
    assert set(EXPECTED_INDEXES) == set(QUERIES)


@pytest.mark.parametrize("name", sorted(EXPECTED_INDEXES))
def test_each_named_query_reads_its_index_and_never_scans_a_table(
    loaded: psycopg.Connection, name: str
) -> None:
    conversation = loaded.execute(
        "SELECT id FROM conversations WHERE user_id = 'user42' ORDER BY id LIMIT 1"
    ).fetchone()
    task = loaded.execute(
        "SELECT id FROM tasks WHERE user_id = 'user42' ORDER BY id LIMIT 1"
    ).fetchone()
    assert conversation is not None
    assert task is not None
    values = {
        **SAMPLES,
        "id": "newcomer",
        "email": "newcomer@example.com",
        "user_id": "user42",
        "conversation_id": conversation[0],
        "task_id": task[0],
        "after": 5,
        "limit": 21,
        "completed": [False],
    }
    sql = QUERIES[name]
    params = {key: value for key, value in values.items() if f"%({key})s" in sql}
    nodes = plan_nodes(loaded, sql, params)
    assert indexes_used(nodes) == EXPECTED_INDEXES[name]
    assert "Seq Scan" not in node_types(nodes)
    # Each index is entered by its leading column, the owner (a whole-index scan that
    # filters on a later column would also name the index).
    for node in nodes:
        if node.get("Index Name") == "messages_search_idx":
            # Entered by the owner's lexeme, ANDed into the query (migration 0014).
            assert "''user user42''" in node["Index Cond"], node
        elif "Index Name" in node:
            owner = "id" if node["Index Name"] == "users_pkey" else "user_id"
            assert node.get("Index Cond", "").startswith(f"(({owner} = ") or node.get(
                "Index Cond", ""
            ).startswith(f"({owner} = "), node


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("export_tasks", "tasks_pkey"),
        ("export_conversations", "conversations_pkey"),
        ("export_messages", "messages_pkey"),
        ("export_agent_items", "agent_items_pkey"),
    ],
)
@pytest.mark.parametrize("user_id", ["user42", "user1"])
def test_an_export_cursor_reads_its_table_in_key_order_without_sorting(
    loaded: psycopg.Connection, name: str, index: str, user_id: str
) -> None:
    # chatstore.export DECLAREs these: planned for the first rows, each is one forward
    # scan of the key that streams the user's rows in order, even for user1's 21,000
    # messages (a sixth of the table), where the whole result alone would be a sort.
    query = f"DECLARE export NO SCROLL CURSOR FOR {QUERIES[name]}"
    nodes = plan_nodes(loaded, query, {"user_id": user_id})
    assert [(n["Node Type"], n.get("Index Name"), n.get("Scan Direction")) for n in nodes] == [
        ("Index Scan", index, "Forward")
    ]


def test_a_search_reads_only_its_users_matches_from_the_search_index(
    loaded: psycopg.Connection,
) -> None:
    # Every loaded message but user1's long conversation says "lorem": 100,000 of them,
    # 1,000 of them user42's. The owner's lexeme, ANDed into the query, makes the index
    # hand over those 1,000 only (a GIN index on the words alone would hand over all
    # 100,000 for the heap to filter by user_id).
    params = {
        **SAMPLES,
        "user_id": "user42",
        "query": "lorem",
        "limit": 21,
    }
    sql = QUERIES["search_messages"]
    params = {key: value for key, value in params.items() if f"%({key})s" in sql}
    row = loaded.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()
    assert row is not None
    nodes, todo = [], [row[0][0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    (scan,) = [n for n in nodes if n.get("Index Name") == "messages_search_idx"]
    assert scan["Node Type"] == "Bitmap Index Scan"
    assert scan["Actual Rows"] == 1_000
    assert "Seq Scan" not in node_types(nodes)
