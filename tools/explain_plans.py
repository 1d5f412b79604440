"""Print the plans shown in docs/schema.md: python -m tools.explain_plans

Loads the data of tests/test_query_plans.py (120k messages) into a scratch database
on CHATSTORE_DSN's server (else the embedded one) and prints EXPLAIN ANALYZE for each
named query.
"""

from __future__ import annotations

import uuid

import psycopg

from chatstore import devserver, migrations, retention
from chatstore._sql import QUERIES
from tests.test_query_plans import (
    LAST_MESSAGES,
    LOAD,
    MESSAGES_AFTER,
    RECENT_CONVERSATIONS,
    TASKS_BY_STATUS,
    last_50,
    long_conversation,
)

AGENT_SESSION = """
DELETE FROM agent_items WHERE user_id = 'user2' AND conversation_id = %(conversation_id)s;
INSERT INTO agent_items (user_id, conversation_id, slot, seq, item)
SELECT 'user2', %(conversation_id)s, s, s, json_build_object('type', 'message', 'n', s)
FROM generate_series(1, 1000) AS s
UNION ALL
SELECT 'user2', %(conversation_id)s, s, s + 40, json_build_object('type', 'message', 'n', s)
FROM generate_series(981, 1000) AS s;
UPDATE conversations SET agent_item_count = 1040, agent_item_top = 1000
WHERE user_id = 'user2' AND id = %(conversation_id)s;
ANALYZE agent_items;
"""


def main() -> None:
    server = devserver.server_dsn()
    with devserver.scratch_database(server, f"chatstore_explain_{uuid.uuid4().hex[:8]}") as dsn:
        migrations.apply(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(LOAD)
            version = conn.execute("SHOW server_version").fetchone()
            print(f"-- PostgreSQL {version[0] if version else '?'}")
            cursor = conn.execute(
                "SELECT updated_at, id FROM conversations WHERE user_id = 'user7'"
                " ORDER BY updated_at DESC, id DESC OFFSET 40 LIMIT 1"
            ).fetchone()
            assert cursor is not None
            long = long_conversation(conn)
            # An agent session of 1,000 items, of which the last 20 were popped and
            # replaced: 1,020 items on record, 1,000 in the list.
            session = conn.execute(
                "SELECT id FROM conversations WHERE user_id = 'user2' ORDER BY id LIMIT 1"
            ).fetchone()
            assert session is not None
            for statement in AGENT_SESSION.split(";\n")[:-1]:
                conn.execute(statement, {"conversation_id": session[0]})
            cases = [
                (
                    "list_conversations",
                    RECENT_CONVERSATIONS,
                    {
                        "user_id": "user7",
                        "before_updated_at": cursor[0],
                        "before_id": cursor[1],
                        "limit": 21,
                    },
                ),
                (
                    "list_conversations(archived=True)",
                    QUERIES["list_archived_conversations"],
                    {
                        "user_id": "user7",
                        "before_updated_at": None,
                        "before_id": None,
                        "limit": 21,
                    },
                ),
                ("get_messages", LAST_MESSAGES, last_50("user1", long)),
                (
                    "get_messages_after",
                    MESSAGES_AFTER,
                    {**last_50("user1", long), "after": 19_000},
                ),
                ("list_tasks", TASKS_BY_STATUS, {"user_id": "user3", "completed": [False]}),
                (
                    "get_agent_items",
                    QUERIES["get_agent_items"],
                    {"user_id": "user2", "conversation_id": session[0], "limit": 50},
                ),
            ]
            for name, query, params in cases:
                print(f"-- {name}")
                plan = conn.execute(
                    f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {query}", params
                )
                print("\n".join(row[0] for row in plan), end="\n\n")
            # A batch of the retention job: 500 of the conversations idle since the cutoff
            # (here all of them), deleted, then rolled back.
            print("-- chatstore.retention: one purge batch")
            with conn.transaction(force_rollback=True):
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                    + retention._PURGE_BATCH,
                    {
                        "cutoff": conn.execute("SELECT now()").fetchone()[0],  # type: ignore[index]
                        "after_active_at": None,
                        "after_user_id": None,
                        "after_id": None,
                        "archived_only": False,
                        "batch_size": 500,
                    },
                )
                print("\n".join(row[0] for row in plan))


if __name__ == "__main__":
    main()
