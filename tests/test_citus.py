"""chatstore distributed over a real Citus cluster (coordinator and two workers), named by
``CHATSTORE_CITUS_DSN``; skipped, with the reason, without it.

The single-node API suite runs here again, unchanged: its tests ask for ``store``,
``conn`` and ``db_dsn``, which this module answers with the cluster's database. The API's
connections refuse any query that needs more than one shard
(``citus.multi_task_query_log_level = error``), so a query that fans out fails its test;
``conn`` (the owner, for the tests' own checks) may read every shard.

Then what only a cluster shows: writers on one conversation through every node at once,
appends alternating between nodes, a shard moved while writers append, a migration after
distribution, row-level security on the shards, and distributing twice.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chatstore import aio, citus, migrations, queries, rls
from chatstore.errors import NotFound, TimedOut
from tests import (
    test_api_agent_items,
    test_api_conversations,
    test_api_errors_transactions,
    test_api_isolation,
    test_api_pagination,
    test_api_quickstart,
    test_api_records,
    test_api_users_tasks,
    test_archive_retention,
    test_export,
    test_request_ids,
    test_search,
)
from tests._helpers import Store
from tests.citus_support import Cluster, citus_database, maintenance_dsn, one_shard_only
from tests.reliability_support import app_login, wait_until

pytestmark = pytest.mark.citus

# The single-node API suite, collected again in this module, and the fixtures of its own
# that it needs (`fresh`, `kind`); `store`, `conn` and `db_dsn` are this module's.
# (test_api_invalid_input is left out: it proves checks made before any SQL runs.)
API_SUITE = (
    test_api_users_tasks,
    test_api_conversations,
    test_api_isolation,
    test_api_pagination,
    test_api_quickstart,
    test_api_records,
    test_api_errors_transactions,
    test_api_agent_items,
    test_request_ids,
    test_archive_retention,
    test_export,
    test_search,
)
_collected = {
    name: obj
    for module in API_SUITE
    for name, obj in vars(module).items()
    if name.startswith("test_") or name in ("fresh", "kind")
}
assert len(_collected) == sum(  # no two modules' tests share a name
    1 for m in API_SUITE for n in vars(m) if n.startswith("test_") or n in ("fresh", "kind")
)
globals().update(_collected)


@pytest.fixture
def conn(citus_db: Cluster) -> Iterator[psycopg.Connection]:
    """The owner on the coordinator, free to read every shard (the tests' own checks)."""
    with psycopg.connect(citus_db.coordinator, autocommit=True) as connection:
        yield connection


@pytest.fixture
def db_dsn(citus_db: Cluster) -> str:
    """The coordinator, for the API: a query that needs more than one shard fails."""
    return one_shard_only(citus_db.coordinator)


@pytest.fixture(params=["sync", "async"])
async def store(request: pytest.FixtureRequest, db_dsn: str) -> AsyncIterator[Store]:
    """The API (``queries`` or ``aio``) on an autocommit one-shard-only connection."""
    if request.param == "sync":
        with psycopg.connect(db_dsn, autocommit=True) as sync_conn:
            yield Store(queries, sync_conn, "sync")
        return
    async with await psycopg.AsyncConnection.connect(db_dsn, autocommit=True) as aconn:
        yield Store(aio, aconn, "async")


def _conversation(conn: psycopg.Connection, user_id: str) -> int:
    queries.create_user(conn, id=user_id, email=f"{user_id}@example.com")
    return queries.create_conversation(conn, user_id=user_id).id


def _append(dsn: str, user_id: str, conversation_id: int, contents: list[str]) -> None:
    with psycopg.connect(one_shard_only(dsn), autocommit=True) as writer:
        for content in contents:
            queries.append_message(
                writer,
                user_id=user_id,
                conversation_id=conversation_id,
                role="user",
                content=content,
            )


def test_citus_every_api_function_has_a_test_here() -> None:
    """Every public function of chatstore.aio (and so of chatstore.queries) is called by
    the suite collected above."""
    source = "".join(Path(m.__file__ or "").read_text() for m in API_SUITE)
    assert set(aio.__all__) == set(queries.__all__)
    assert [f for f in aio.__all__ if f"store.{f}(" not in source] == []


def test_citus_writers_on_every_node_at_once_number_one_conversation_without_gaps(
    citus_db: Cluster, conn: psycopg.Connection
) -> None:
    conversation_id = _conversation(conn, "busy")
    count = 100
    names = [f"node{i}" for i in range(len(citus_db.nodes))]
    start = threading.Barrier(len(names))

    def write(node: str, name: str) -> None:
        start.wait()
        _append(node, "busy", conversation_id, [f"{name} {k}" for k in range(count)])

    with ThreadPoolExecutor(len(names)) as pool:
        for done in [
            pool.submit(write, n, name) for n, name in zip(citus_db.nodes, names, strict=True)
        ]:
            done.result()

    stored = queries.get_messages(conn, user_id="busy", conversation_id=conversation_id)
    assert [m.seq for m in stored] == list(range(1, count * len(names) + 1))
    contents = [m.content for m in stored]
    assert sorted(contents) == sorted(f"{n} {k}" for n in names for k in range(count))
    for name in names:  # each writer's own order kept
        mine = [int(c.split()[1]) for c in contents if c.split()[0] == name]
        assert mine == list(range(count)), name
    after = queries.get_conversation(conn, user_id="busy", conversation_id=conversation_id)
    assert after.message_count == count * len(names)
    assert after.last_message_at == stored[-1].created_at


def test_citus_appends_alternating_between_coordinator_and_worker_read_back_in_order(
    citus_db: Cluster,
) -> None:
    nodes = [citus_db.coordinator, citus_db.workers[0]]
    with (
        psycopg.connect(one_shard_only(nodes[0]), autocommit=True) as first,
        psycopg.connect(one_shard_only(nodes[1]), autocommit=True) as second,
    ):
        conversation_id = _conversation(first, "ann")
        appended = [
            queries.append_message(
                (first, second)[turn % 2],
                user_id="ann",
                conversation_id=conversation_id,
                role="user",
                content=f"turn {turn}",
            )
            for turn in range(6)
        ]
        for reader in (first, second):
            read = queries.get_messages(reader, user_id="ann", conversation_id=conversation_id)
            assert [m.content for m in read] == [f"turn {t}" for t in range(6)]
            assert [m.seq for m in read] == [1, 2, 3, 4, 5, 6]
    # Each node hands out ids from its own range: id order is not append order.
    assert sorted(appended, key=lambda m: m.id) != appended


def test_citus_a_shard_moved_to_the_other_worker_while_writers_append_loses_nothing(
    citus_db: Cluster, conn: psycopg.Connection
) -> None:
    conversation_id = _conversation(conn, "mover")
    shard = _one(conn, "SELECT get_shard_id_for_distribution_column('messages', 'mover')")
    source = conn.execute(
        "SELECT nodename, nodeport FROM pg_dist_shard_placement WHERE shardid = %s", [shard]
    ).fetchone()
    assert source is not None
    target = conn.execute(
        "SELECT nodename, nodeport FROM pg_dist_node"
        " WHERE groupid <> 0 AND noderole = 'primary' AND (nodename, nodeport) <> (%s, %s)"
        " ORDER BY nodeid LIMIT 1",
        source,
    ).fetchone()
    assert target is not None

    stop = threading.Event()
    acknowledged: list[str] = []
    failed: list[BaseException] = []
    retried: list[str] = []

    def write(node: str, name: str) -> None:
        # A writer on a worker can wait, through the shard it writes on another node, for
        # the move's metadata lock while the move waits for the writer's lock on its own
        # node: a cycle Citus 13.2's deadlock detector does not see (the test hung on it
        # once). A service sets statement_timeout; the append then fails with
        # TimedOut and is retried under its request_id, which cannot store it twice.
        dsn = one_shard_only(node)
        options = conninfo_to_dict(dsn).get("options") or ""
        dsn = make_conninfo(dsn, options=f"{options} -c statement_timeout=5s")
        with psycopg.connect(dsn, autocommit=True) as writer:
            k = 0
            while not stop.is_set():
                content = f"{name} {k}"
                for attempt in range(5):
                    try:
                        queries.append_message(
                            writer,
                            user_id="mover",
                            conversation_id=conversation_id,
                            role="user",
                            content=content,
                            request_id=content.replace(" ", "-"),
                        )
                        break
                    except TimedOut as exc:
                        retried.append(f"{content}: {exc}")
                        if attempt == 4:
                            failed.append(exc)
                            return
                    except Exception as exc:  # recorded: the test fails on any
                        failed.append(exc)
                        return
                acknowledged.append(content)
                k += 1

    writers = [
        threading.Thread(target=write, args=(node, f"node{i}"))
        for i, node in enumerate(citus_db.nodes)
    ]
    for thread in writers:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 30 or bool(failed), timeout=60, what="appends")
        before_move = len(acknowledged)
        conn.execute("SET statement_timeout = '120s'")  # a stuck move fails, never hangs
        conn.execute(
            "SELECT citus_move_shard_placement(%s, %s, %s, %s, %s,"
            " shard_transfer_mode => 'force_logical')",
            [shard, *source, *target],
        )
        moved_at = len(acknowledged)
        wait_until(
            lambda: len(acknowledged) >= moved_at + 30 or bool(failed),
            timeout=60,
            what="appends after the move",
        )
    finally:
        stop.set()
        for thread in writers:
            thread.join()

    assert failed == []
    # Writers kept appending while the shard was copied (logical replication), not only
    # before and after it.
    assert moved_at > before_move
    print(  # the counts, for `pytest -s`: before, during and after the move
        f"shard move: {before_move} appends before, {moved_at - before_move} during,"
        f" {len(acknowledged) - moved_at} after; {len(retried)} retried {retried[:3]}"
    )
    placement = conn.execute(
        "SELECT nodename, nodeport FROM pg_dist_shard_placement WHERE shardid = %s", [shard]
    ).fetchone()
    assert placement == target
    stored = queries.get_messages(conn, user_id="mover", conversation_id=conversation_id)
    assert sorted(m.content for m in stored) == sorted(acknowledged)
    assert [m.seq for m in stored] == list(range(1, len(acknowledged) + 1))


def test_citus_a_migration_after_distribution_applies_and_reaches_every_shard(
    citus_db: Cluster, conn: psycopg.Connection, tmp_path: Path
) -> None:
    source = tmp_path / "migrations"
    shutil.copytree(migrations.migrations_dir(), source)
    (source / "zz_throwaway.sql").write_text(
        "ALTER TABLE messages ADD COLUMN throwaway text;\n"
        "CREATE INDEX messages_throwaway_idx ON messages (user_id, throwaway);\n"
    )
    (source / "zz_throwaway.rollback.sql").write_text(
        "DROP INDEX messages_throwaway_idx;\nALTER TABLE messages DROP COLUMN throwaway;\n"
    )
    try:
        assert migrations.apply(citus_db.coordinator, source=source) == ["zz_throwaway"]
        shards = _one(
            conn, "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'messages'::regclass"
        )
        with_column = _one(
            conn,
            "SELECT count(*) FROM run_command_on_shards('messages',"
            " $$SELECT count(*) FROM pg_attribute WHERE attrelid = '%s'::regclass"
            " AND attname = 'throwaway'$$) WHERE success AND result = '1'",
        )
        assert with_column == shards > 1
        conversation_id = _conversation(conn, "ann")
        conn.execute(
            "INSERT INTO messages (user_id, conversation_id, role, content, throwaway)"
            " VALUES ('ann', %s, 'user', 'hi', 'kept')",
            [conversation_id],
        )
        row = conn.execute("SELECT seq, throwaway FROM messages WHERE user_id = 'ann'").fetchone()
        assert row == (1, "kept")
    finally:
        assert migrations.rollback(citus_db.coordinator, source=source) == ["zz_throwaway"]
    assert migrations.status(citus_db.coordinator)[-1].applied


def test_citus_row_level_security_holds_on_the_shards_for_the_app_role(
    citus_db: Cluster, conn: psycopg.Connection
) -> None:
    ids = {uid: _conversation(conn, uid) for uid in ("alice", "bob")}
    for uid, conversation_id in ids.items():
        queries.add_task(conn, user_id=uid, title=f"{uid}'s")
        queries.append_message(
            conn, user_id=uid, conversation_id=conversation_id, role="user", content=f"{uid}'s"
        )
    with app_login(citus_db.coordinator) as app_dsn:
        # Every function, as the app role, through the coordinator and each worker.
        for i, node in enumerate(citus_db.nodes):
            with psycopg.connect(_on(app_dsn, node), autocommit=True) as app:
                newcomer = f"carol{i}"
                with rls.acting_as(app, user_id=newcomer):
                    queries.create_user(app, id=newcomer, email=f"{newcomer}@example.com")
                    queries.delete_user(app, user_id=newcomer)
                with rls.acting_as(app, user_id="alice"):
                    _every_function(app, "alice", ids["alice"])
                with rls.acting_as(app, user_id="alice"), pytest.raises(NotFound):
                    queries.get_messages(app, user_id="bob", conversation_id=ids["bob"])
        with psycopg.connect(app_dsn, autocommit=True) as app:
            # A query that forgets its user filter still sees one user's rows.
            with rls.acting_as(app, user_id="alice"):
                for table in ("users", "tasks", "conversations", "messages"):
                    column = "id" if table == "users" else "user_id"
                    owners = app.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()
                    assert owners == [("alice",)], table
                renamed = app.execute(
                    "UPDATE conversations SET title = 'pwned' WHERE user_id = 'bob'"
                )
                assert renamed.rowcount == 0
            with (
                pytest.raises(pg_errors.InsufficientPrivilege),
                rls.acting_as(app, user_id="alice"),
            ):
                app.execute("INSERT INTO conversations (user_id, title) VALUES ('bob', 'planted')")
            # Outside acting_as: nothing.
            assert app.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    bob = queries.get_messages(conn, user_id="bob", conversation_id=ids["bob"])
    assert [m.content for m in bob] == ["bob's"]
    titles = conn.execute("SELECT title FROM conversations WHERE user_id = 'bob'").fetchall()
    assert ("pwned",) not in titles


def test_citus_distributing_a_database_with_data_keeps_every_row_number_and_counter(
    citus_cluster: Cluster,  # skips, with the reason, without a cluster
) -> None:
    """A single-node database that grew before it was distributed: the rows Citus copies
    into the shards keep their numbers and counters (the triggers stay off for the copy)
    and the next append continues the numbering."""
    maintenance = maintenance_dsn()
    assert maintenance is not None
    with citus_database(maintenance, f"chatstore_citus_data_{os.getpid()}") as cluster:
        migrations.apply(cluster.coordinator)
        with psycopg.connect(cluster.coordinator, autocommit=True) as conn:
            for uid in ("ann", "bob"):
                queries.create_user(conn, id=uid, email=f"{uid}@example.com")
                queries.add_task(conn, user_id=uid, title="Buy milk")
                for size in (1, 5):
                    conversation = queries.create_conversation(conn, user_id=uid)
                    queries.append_messages(
                        conn,
                        user_id=uid,
                        conversation_id=conversation.id,
                        messages=[("user", f"{uid} {size} {i}") for i in range(size)],
                    )
            tables = {
                "messages": "SELECT user_id, conversation_id, seq, role, content, created_at"
                " FROM messages ORDER BY 1, 2, 3",
                "conversations": "SELECT user_id, id, title, message_count, last_message_at,"
                " created_at, updated_at FROM conversations ORDER BY 1, 2",
                "tasks": "SELECT user_id, id, title, updated_at FROM tasks ORDER BY 1, 2",
            }
            before = {name: conn.execute(query).fetchall() for name, query in tables.items()}
            citus.distribute(cluster.coordinator)
            after = {name: conn.execute(query).fetchall() for name, query in tables.items()}
            assert after == before
            last = before["conversations"][-1]
            more = queries.append_message(
                conn, user_id=last[0], conversation_id=last[1], role="user", content="next"
            )
            assert more.seq == last[3] + 1


def test_citus_distribute_twice_changes_nothing(
    citus_db: Cluster, conn: psycopg.Connection
) -> None:
    layout = (
        "SELECT logicalrelid::regclass::text, partmethod, repmodel, colocationid,"
        " column_to_column_name(logicalrelid, partkey),"
        " (SELECT count(*) FROM pg_dist_shard AS s WHERE s.logicalrelid = p.logicalrelid)"
        " FROM pg_dist_partition AS p ORDER BY 1"
    )
    keys = (
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'f' AND connamespace = 'public'::regnamespace ORDER BY 1, 2"
    )
    before = conn.execute(layout).fetchall(), conn.execute(keys).fetchall()
    assert {row[0]: row[1:3] for row in before[0]}["users"] == ("n", "t")
    assert {row[0] for row in before[0] if row[1] == "h"} == set(citus.DISTRIBUTED)
    assert citus.distribute(citus_db.coordinator) == []
    assert citus.distribute(citus_db.coordinator, shard_count=4) == []
    assert (conn.execute(layout).fetchall(), conn.execute(keys).fetchall()) == before


async def test_citus_get_messages_pages_back_and_forward_by_seq(store: Store) -> None:
    await store.create_user(id="ann", email="ann@example.com")
    conversation = await store.create_conversation(user_id="ann")
    sent = [("user" if i % 2 else "assistant", f"m{i}") for i in range(1, 8)]
    await store.append_messages(user_id="ann", conversation_id=conversation.id, messages=sent)
    last = await store.get_messages(user_id="ann", conversation_id=conversation.id, limit=3)
    assert [m.seq for m in last] == [5, 6, 7]
    back = await store.get_messages(
        user_id="ann", conversation_id=conversation.id, limit=3, before=last[0].seq
    )
    assert [m.seq for m in back] == [2, 3, 4]
    caught_up = await store.get_messages(user_id="ann", conversation_id=conversation.id, after=4)
    assert caught_up == last
    assert [m.content for m in back + caught_up] == [c for _, c in sent[1:]]


def _every_function(app: psycopg.Connection, uid: str, conversation_id: int) -> None:
    assert queries.get_user(app, user_id=uid).id == uid
    new = queries.create_conversation(app, user_id=uid, title="new")
    queries.rename_conversation(app, user_id=uid, conversation_id=new.id, title="renamed")
    assert queries.get_conversation(app, user_id=uid, conversation_id=new.id).title == "renamed"
    queries.append_message(app, user_id=uid, conversation_id=new.id, role="user", content="a")
    queries.append_messages(
        app, user_id=uid, conversation_id=new.id, messages=[("assistant", "b"), ("user", "c")]
    )
    read = queries.get_messages(app, user_id=uid, conversation_id=new.id, limit=2)
    assert [m.seq for m in read] == [2, 3]
    assert queries.get_messages(app, user_id=uid, conversation_id=new.id, after=1) == read
    assert [
        m.seq for m in queries.get_messages(app, user_id=uid, conversation_id=new.id, before=2)
    ] == [1]
    assert conversation_id in [c.id for c in queries.list_conversations(app, user_id=uid).items]
    queries.delete_conversation(app, user_id=uid, conversation_id=new.id)
    task = queries.add_task(app, user_id=uid, title="t")
    queries.update_task(app, user_id=uid, task_id=task.id, description="d")
    queries.complete_task(app, user_id=uid, task_id=task.id)
    assert [t.id for t in queries.list_tasks(app, user_id=uid, status="completed")] == [task.id]
    assert queries.get_task(app, user_id=uid, task_id=task.id).completed
    queries.delete_task(app, user_id=uid, task_id=task.id)


def _on(dsn: str, node: str) -> str:
    """``dsn``'s user and password on ``node``'s host and port, one shard per query."""
    where = conninfo_to_dict(node)
    return one_shard_only(make_conninfo(dsn, host=where["host"], port=where["port"]))


def _one(conn: psycopg.Connection, query: Any) -> Any:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]
