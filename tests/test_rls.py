"""Tenant isolation in depth: row-level security and the least-privilege role.

A LOGIN role that is a member of ``chatstore_app`` (what a service connects as) sees
and writes only the rows of the user named by ``chatstore.rls.acting_as``, even with a
query that forgets its ``user_id`` filter, and may not change messages, truncate or run
DDL. Every query function works as that role.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, LiteralString

import psycopg
import pytest
from psycopg import errors as pg_errors

from chatstore import aio, migrations, queries, rls
from chatstore.errors import AlreadyExists, InvalidInput, NotFound
from tests.reliability_support import app_login

USER_TABLES = ("users", "tasks", "conversations", "messages", "agent_items")
# Rows each user owns in each table after _seed.
SEEDED = {"users": 1, "tasks": 1, "conversations": 2, "messages": 3, "agent_items": 3}


def _seed(conn: psycopg.Connection) -> dict[str, dict[str, int]]:
    """Two users with a task, two conversations, three messages and three agent items
    each (as the owner); the ids of each user's first conversation and task."""
    ids: dict[str, dict[str, int]] = {}
    for uid in ("alice", "bob"):
        queries.create_user(conn, id=uid, email=f"{uid}@example.com")
        task = queries.add_task(conn, user_id=uid, title=f"{uid}'s task")
        first = queries.create_conversation(conn, user_id=uid)
        queries.create_conversation(conn, user_id=uid, title="second")
        queries.append_messages(
            conn,
            user_id=uid,
            conversation_id=first.id,
            messages=[("user", f"hi from {uid}"), ("assistant", "hello"), ("user", "bye")],
        )
        queries.add_agent_items(
            conn,
            user_id=uid,
            conversation_id=first.id,
            items=[{"role": "user", "content": f"hi from {uid}"}, {"call": uid}, [uid]],
        )
        ids[uid] = {"conversation": first.id, "task": task.id}
    return ids


@pytest.fixture
def app_dsn(db_dsn: str) -> Iterator[str]:
    """This test's database, connected as a service's LOGIN role in chatstore_app."""
    with app_login(db_dsn) as dsn:
        yield dsn


@pytest.fixture
def app(app_dsn: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        yield conn


def test_rls_a_query_without_a_user_filter_sees_only_the_current_users_rows(
    conn: psycopg.Connection, app: psycopg.Connection
) -> None:
    _seed(conn)
    for uid in ("alice", "bob"):
        with rls.acting_as(app, user_id=uid):
            assert app.execute("SELECT id FROM users").fetchall() == [(uid,)]
            for table in USER_TABLES[1:]:
                stmt: LiteralString = f"SELECT DISTINCT user_id, count(*) FROM {table} GROUP BY 1"
                owners = app.execute(stmt).fetchall()
                assert owners == [(uid, SEEDED[table])], table


def test_rls_without_acting_as_the_app_role_sees_no_row_and_writes_none(
    conn: psycopg.Connection, app: psycopg.Connection
) -> None:
    _seed(conn)
    for table in USER_TABLES:
        stmt: LiteralString = f"SELECT count(*) FROM {table}"
        assert app.execute(stmt).fetchone() == (0,), table
    with pytest.raises(pg_errors.InsufficientPrivilege, match="row-level security"):
        app.execute("INSERT INTO users (id, email) VALUES ('mallory', 'm@example.com')")
    with pytest.raises(pg_errors.InsufficientPrivilege, match="row-level security"):
        app.execute(
            "INSERT INTO agent_items (conversation_id, slot, seq, user_id, item)"
            " VALUES (1, 100, 100, 'alice', '\"planted\"')"
        )
    # The setting ends with its transaction: the next one is back to nothing.
    with rls.acting_as(app, user_id="alice"):
        assert app.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    assert app.execute("SELECT count(*) FROM messages").fetchone() == (0,)
    assert app.execute("SELECT current_setting('chatstore.user_id', true)").fetchone() in {
        ("",),
        (None,),
    }


def test_rls_the_app_role_cannot_read_or_write_another_users_rows(
    conn: psycopg.Connection, app: psycopg.Connection
) -> None:
    ids = _seed(conn)
    before = {t: _rows(conn, t) for t in USER_TABLES}
    bob_conv, bob_task = ids["bob"]["conversation"], ids["bob"]["task"]
    with rls.acting_as(app, user_id="alice"):
        assert app.execute("SELECT * FROM messages WHERE user_id = 'bob'").fetchall() == []
        assert app.execute("SELECT * FROM agent_items WHERE user_id = 'bob'").fetchall() == []
        # A pop or clear of Bob's list, by hand: the policies hide his conversation.
        assert (
            app.execute("SELECT * FROM chatstore_pop_agent_item('bob', %s)", (bob_conv,)).fetchall()
            == []
        )
        changed = [
            app.execute(
                "UPDATE conversations SET agent_item_top = 0 WHERE id = %s", (bob_conv,)
            ).rowcount,
            app.execute(
                "UPDATE conversations SET agent_item_count = agent_item_count + 1"
                " WHERE user_id = 'bob'"
            ).rowcount,
            app.execute("UPDATE tasks SET title = 'pwned' WHERE user_id = 'bob'").rowcount,
            app.execute(
                "UPDATE conversations SET title = 'pwned' WHERE id = %s", (bob_conv,)
            ).rowcount,
            app.execute("DELETE FROM tasks WHERE id = %s", (bob_task,)).rowcount,
            app.execute("DELETE FROM conversations WHERE user_id = 'bob'").rowcount,
            app.execute("DELETE FROM users WHERE id = 'bob'").rowcount,
            app.execute(
                "UPDATE conversations SET archived_at = now() WHERE user_id = 'bob'"
            ).rowcount,
        ]
        assert changed == [0, 0, 0, 0, 0, 0, 0, 0]
    forged: list[tuple[LiteralString, tuple[object, ...], type[Exception]]] = [
        (
            "INSERT INTO tasks (user_id, title) VALUES ('bob', 'planted')",
            (),
            pg_errors.InsufficientPrivilege,
        ),
        (
            "INSERT INTO conversations (user_id, title) VALUES ('bob', 'planted')",
            (),
            pg_errors.InsufficientPrivilege,
        ),
        # Bob's id on Bob's conversation: messages_number runs under the policies, does
        # not see that conversation, and refuses the row as its foreign key would.
        (
            "INSERT INTO messages (conversation_id, user_id, role, content)"
            " VALUES (%s, 'bob', 'user', 'planted')",
            (bob_conv,),
            pg_errors.ForeignKeyViolation,
        ),
        # Alice's id on Bob's conversation: the composite foreign key refuses it.
        (
            "INSERT INTO messages (conversation_id, user_id, role, content)"
            " VALUES (%s, 'alice', 'user', 'planted')",
            (bob_conv,),
            pg_errors.ForeignKeyViolation,
        ),
        # An agent item in Bob's name: the policy's WITH CHECK refuses it.
        (
            "INSERT INTO agent_items (conversation_id, slot, seq, user_id, item)"
            " VALUES (%s, 4, 4, 'bob', '\"planted\"')",
            (bob_conv,),
            pg_errors.InsufficientPrivilege,
        ),
        # Alice's id on Bob's conversation: the composite foreign key refuses it.
        (
            "INSERT INTO agent_items (conversation_id, slot, seq, user_id, item)"
            " VALUES (%s, 4, 4, 'alice', '\"planted\"')",
            (bob_conv,),
            pg_errors.ForeignKeyViolation,
        ),
    ]
    for stmt, params, error in forged:
        with pytest.raises(error), rls.acting_as(app, user_id="alice"):
            app.execute(stmt, params)
    assert {t: _rows(conn, t) for t in USER_TABLES} == before


REFUSED: list[LiteralString] = [
    "UPDATE messages SET content = 'rewritten'",
    "DELETE FROM messages",
    "TRUNCATE messages",
    "TRUNCATE conversations",
    "TRUNCATE tasks",
    "TRUNCATE users CASCADE",
    "INSERT INTO messages (conversation_id, user_id, role, content, created_at)"
    " SELECT id, user_id, 'user', 'backdated', '2000-01-01' FROM conversations LIMIT 1",
    "UPDATE conversations SET user_id = 'bob'",
    "UPDATE conversations SET created_at = '2000-01-01'",
    "UPDATE tasks SET user_id = 'bob'",
    "UPDATE users SET email = 'x@example.com'",
    "CREATE TABLE evil (id int)",
    "CREATE SCHEMA evil",
    "CREATE FUNCTION evil() RETURNS int LANGUAGE sql RETURN 1",
    "CREATE INDEX evil ON messages (content)",
    "ALTER TABLE messages DISABLE ROW LEVEL SECURITY",
    "ALTER TABLE messages ADD COLUMN evil int",
    "DROP POLICY messages_tenant_isolation ON messages",
    "DROP TABLE messages",
    "DROP TRIGGER messages_append_only ON messages",
    # Agent items: read and appended, never changed or removed but by their conversation.
    "UPDATE agent_items SET item = '1'",
    "DELETE FROM agent_items",
    "TRUNCATE agent_items",
    "INSERT INTO agent_items (conversation_id, slot, seq, user_id, item, created_at)"
    " SELECT id, agent_item_top + 1, agent_item_count + 1, user_id, '1', '2000-01-01'"
    " FROM conversations LIMIT 1",
    "ALTER TABLE agent_items DISABLE ROW LEVEL SECURITY",
    "DROP POLICY agent_items_tenant_isolation ON agent_items",
    "DROP TRIGGER agent_items_append_only ON agent_items",
    "DROP TABLE agent_items",
    "ALTER TABLE conversations DROP CONSTRAINT conversations_agent_items_check",
    "CREATE OR REPLACE FUNCTION chatstore_refuse_agent_item_update() RETURNS trigger"
    " LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$",
    "ALTER FUNCTION chatstore_pop_agent_item(text, bigint) SECURITY DEFINER",
    "SELECT count(*) FROM _yoyo_migration",
    "SET ROLE postgres",
]


def test_rls_the_app_role_may_not_change_messages_truncate_or_run_ddl(
    conn: psycopg.Connection, app: psycopg.Connection
) -> None:
    _seed(conn)
    before = {t: _rows(conn, t) for t in USER_TABLES}
    allowed = []
    for statement in REFUSED:
        try:
            with rls.acting_as(app, user_id="alice"):
                app.execute(statement)
        except pg_errors.InsufficientPrivilege:
            continue
        allowed.append(statement)
    assert allowed == []
    assert {t: _rows(conn, t) for t in USER_TABLES} == before


def test_rls_turning_row_security_off_makes_queries_fail_not_see_more(
    conn: psycopg.Connection, app: psycopg.Connection
) -> None:
    _seed(conn)
    app.execute("SET row_security = off")
    for table in USER_TABLES:
        stmt: LiteralString = f"SELECT count(*) FROM {table}"
        with pytest.raises(pg_errors.InsufficientPrivilege), rls.acting_as(app, user_id="alice"):
            app.execute(stmt)


def test_rls_acting_as_refuses_an_empty_or_nul_user_id(app: psycopg.Connection) -> None:
    for bad in ("", "a\x00b"):
        with pytest.raises(InvalidInput), rls.acting_as(app, user_id=bad):
            pass
    assert app.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


async def test_rls_acting_as_holds_under_the_sessions_settings(
    conn: psycopg.Connection, app: psycopg.Connection, app_dsn: str
) -> None:
    """The setting is quoted for the session (standard_conforming_strings off: a quote and
    a backslash in the id reach the policies intact); a client_encoding that cannot carry
    every id is InvalidInput before anything is sent, sync and async (issue 12)."""
    odd = "o'brien\\x"
    queries.create_user(conn, id=odd, email="ob@example.com")
    _seed(conn)
    app.execute("SET standard_conforming_strings = off")
    with rls.acting_as(app, user_id=odd):
        assert app.execute("SELECT id FROM users").fetchall() == [(odd,)]
    app.execute("RESET standard_conforming_strings")
    app.execute("SET client_encoding = 'LATIN1'")
    with pytest.raises(InvalidInput, match="client_encoding"), rls.acting_as(app, user_id="東京"):
        pass
    assert app.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    aconn = await psycopg.AsyncConnection.connect(app_dsn, autocommit=True)
    async with aconn:
        await aconn.execute("SET client_encoding = 'LATIN1'")
        with pytest.raises(InvalidInput, match="client_encoding"):
            async with rls.acting_as_async(aconn, user_id="東京"):
                pass
        assert aconn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


# What chatstore_app may do, table by table: whole-table privileges, and the columns it
# may insert and update. Least privilege: nothing more (a broader grant fails here), so
# a migration that grants a column adds it here.
PRIVILEGES: dict[str, tuple[set[str], set[str], set[str]]] = {
    "users": ({"SELECT", "DELETE"}, {"id", "email", "name"}, set()),
    "tasks": (
        {"SELECT", "DELETE"},
        {"user_id", "title", "description"},
        {"title", "description", "completed"},
    ),
    "conversations": (
        {"SELECT", "DELETE"},
        {"user_id", "title"},
        {
            "title",
            "message_count",
            "last_message_at",
            "agent_item_count",
            "agent_item_top",
            "archived_at",
        },
    ),
    "messages": (
        {"SELECT"},
        {"conversation_id", "user_id", "role", "content", "request_id"},
        set(),
    ),
    "agent_items": (
        {"SELECT"},
        {"conversation_id", "slot", "seq", "user_id", "item", "request_id"},
        set(),
    ),
}


def test_rls_every_user_table_has_its_policy_and_the_app_role_only_its_grants(
    conn: psycopg.Connection,
) -> None:
    assert set(PRIVILEGES) == set(USER_TABLES)
    for table in USER_TABLES:
        owner_column = "id" if table == "users" else "user_id"
        condition = f"({owner_column} = current_setting('chatstore.user_id'::text, true))"
        policies = conn.execute(
            "SELECT policyname, permissive, roles::text[], cmd, qual, with_check"
            " FROM pg_policies WHERE schemaname = 'public' AND tablename = %s",
            (table,),
        ).fetchall()
        assert policies == [
            (
                f"{table}_tenant_isolation",
                "PERMISSIVE",
                ["chatstore_app"],
                "ALL",
                condition,
                condition,
            )
        ], table
        # Enabled, not forced: the owner (migrations, admin tools) is exempt.
        assert conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = to_regclass(%s)",
            (table,),
        ).fetchone() == (True, False), table
        whole, insert, update = PRIVILEGES[table]
        granted = {
            p
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
            if conn.execute(
                "SELECT has_table_privilege('chatstore_app', %s, %s)", (table, p)
            ).fetchone()
            == (True,)
        }
        assert granted == whole, table
        columns = {
            p: {
                name
                for (name,) in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                    " AND attnum > 0 AND NOT attisdropped"
                    " AND has_column_privilege('chatstore_app', attrelid, attnum, %s)",
                    (table, p),
                ).fetchall()
            }
            for p in ("INSERT", "UPDATE", "REFERENCES")
        }
        assert columns == {"INSERT": insert, "UPDATE": update, "REFERENCES": set()}, table
    # Every function runs with its caller's rights: under the policies, as the app role.
    assert (
        conn.execute(
            "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prosecdef"
        ).fetchall()
        == []
    )
    assert conn.execute(
        "SELECT has_function_privilege('chatstore_app',"
        " 'chatstore_pop_agent_item(text, bigint)', 'EXECUTE')"
    ).fetchone() == (True,)


# --- the query layer, run as the app role ------------------------------------------------


class Api:
    """chatstore.queries or chatstore.aio on one connection, awaited alike."""

    def __init__(self, module: Any, conn: Any) -> None:
        self.module, self.conn = module, conn

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        fn = getattr(self.module, name)

        async def call(**kwargs: Any) -> Any:
            result = fn(self.conn, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return call


class Scope:
    """``acting_as`` for either kind of connection, as an async context manager."""

    def __init__(self, conn: Any, user_id: str) -> None:
        self.conn, self.user_id = conn, user_id
        self._sync: AbstractContextManager[Any] | None = None
        self._async: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> None:
        if isinstance(self.conn, psycopg.AsyncConnection):
            self._async = rls.acting_as_async(self.conn, user_id=self.user_id)
            await self._async.__aenter__()
        else:
            self._sync = rls.acting_as(self.conn, user_id=self.user_id)
            self._sync.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        if self._async is not None:
            await self._async.__aexit__(*exc)
        elif self._sync is not None:
            self._sync.__exit__(*exc)


@pytest.fixture(params=["sync", "async"])
async def app_api(
    request: pytest.FixtureRequest, app_dsn: str
) -> AsyncIterator[tuple[Api, Callable[[str], Scope]]]:
    if request.param == "sync":
        with psycopg.connect(app_dsn, autocommit=True) as sconn:
            yield Api(queries, sconn), lambda uid: Scope(sconn, uid)
        return
    aconn = await psycopg.AsyncConnection.connect(app_dsn, autocommit=True)
    try:
        yield Api(aio, aconn), lambda uid: Scope(aconn, uid)
    finally:
        await aconn.close()


async def test_rls_every_query_function_works_as_the_app_role(
    conn: psycopg.Connection, app_api: tuple[Api, Callable[[str], Scope]]
) -> None:
    api, acting_as = app_api
    bob = _seed(conn)["bob"]
    seeded = {t: _rows(conn, t) for t in ("conversations", "messages", "agent_items")}
    async with acting_as("carol"):
        user = await api.create_user(id="carol", email="carol@example.com", name="Carol")
        assert (await api.get_user(user_id="carol")) == user
        conv = await api.create_conversation(user_id="carol")
        first = await api.append_message(
            user_id="carol", conversation_id=conv.id, role="user", content="Plan my week"
        )
        more = await api.append_messages(
            user_id="carol",
            conversation_id=conv.id,
            messages=[("assistant", "Sure."), ("user", "Thanks")],
        )
        history = await api.get_messages(user_id="carol", conversation_id=conv.id)
        assert [m.id for m in history] == [first.id, *(m.id for m in more)]
        assert [
            m.id for m in await api.get_messages(user_id="carol", conversation_id=conv.id, limit=1)
        ] == [more[-1].id]
        # The statement trigger bumped and titled the conversation under the policies.
        bumped = await api.get_conversation(user_id="carol", conversation_id=conv.id)
        assert bumped.title == "Plan my week"
        assert bumped.updated_at == more[-1].created_at
        page = await api.list_conversations(user_id="carol")
        assert [c.id for c in page.items] == [conv.id]
        renamed = await api.rename_conversation(
            user_id="carol", conversation_id=conv.id, title="Week"
        )
        assert renamed.title == "Week"
        archived = await api.archive_conversation(user_id="carol", conversation_id=conv.id)
        assert archived.archived_at is not None
        assert (await api.list_conversations(user_id="carol")).items == ()
        shelf = await api.list_conversations(user_id="carol", archived=True)
        assert shelf.items == (archived,)
        restored = await api.unarchive_conversation(user_id="carol", conversation_id=conv.id)
        assert restored.archived_at is None
        task = await api.add_task(user_id="carol", title="Gym", description="Tue")
        await api.update_task(user_id="carol", task_id=task.id, title="Gym!")
        done = await api.complete_task(user_id="carol", task_id=task.id)
        assert done.completed
        assert [t.id for t in await api.list_tasks(user_id="carol", status="completed")] == [
            task.id
        ]
        assert (await api.get_task(user_id="carol", task_id=task.id)).title == "Gym!"
        await api.delete_task(user_id="carol", task_id=task.id)
        await api.delete_conversation(user_id="carol", conversation_id=conv.id)
        assert (await api.list_conversations(user_id="carol")).items == ()
        # An agent session: items and their transcript in one call, read back exactly,
        # popped, added over the popped one, cleared; all under the policies.
        chat = await api.create_conversation(user_id="carol")
        items = [
            {"role": "user", "content": "Remind me"},
            {"type": "function_call", "call_id": "c1", "arguments": '{"at": 9}'},
            {"role": "assistant", "content": "Done.", "n": 2**70},
        ]
        added = await api.add_agent_items(
            user_id="carol",
            conversation_id=chat.id,
            items=items,
            transcript=[("user", "Remind me"), ("assistant", "Done.")],
        )
        assert [(a.item, a.slot, a.seq, a.user_id) for a in added] == [
            (item, n, n, "carol") for n, item in enumerate(items, 1)
        ]
        assert await api.get_agent_items(user_id="carol", conversation_id=chat.id) == added
        assert (
            await api.get_agent_items(user_id="carol", conversation_id=chat.id, limit=1)
            == added[-1:]
        )
        assert await api.pop_agent_item(user_id="carol", conversation_id=chat.id) == added[-1]
        (again,) = await api.add_agent_items(
            user_id="carol", conversation_id=chat.id, items=["again"]
        )
        assert (again.slot, again.seq) == (3, 4)
        got = await api.get_agent_items(user_id="carol", conversation_id=chat.id)
        assert got == [*added[:2], again]
        transcript = await api.get_messages(user_id="carol", conversation_id=chat.id)
        assert [(m.role, m.content) for m in transcript] == [
            ("user", "Remind me"),
            ("assistant", "Done."),
        ]
        assert (await api.get_conversation(user_id="carol", conversation_id=chat.id)).title == (
            "Remind me"
        )
        await api.clear_agent_items(user_id="carol", conversation_id=chat.id)
        assert await api.get_agent_items(user_id="carol", conversation_id=chat.id) == []
        assert await api.pop_agent_item(user_id="carol", conversation_id=chat.id) is None
        # Deleting the conversation takes its items (the cascade, not a DELETE grant).
        await api.delete_conversation(user_id="carol", conversation_id=chat.id)
        assert conn.execute(
            "SELECT count(*) FROM agent_items WHERE user_id = 'carol'"
        ).fetchone() == (0,)
        # Asking for Bob's rows by Bob's id, while acting as Carol: the policies hide them
        # even though each query's own filter would match.
        bobs = {"user_id": "bob", "conversation_id": bob["conversation"]}
        for call in (
            api.get_user(user_id="bob"),
            api.get_conversation(**bobs),
            api.get_messages(**bobs),
            api.get_task(user_id="bob", task_id=bob["task"]),
            api.get_agent_items(**bobs),
            api.get_agent_items(**bobs, limit=0),
            api.pop_agent_item(**bobs),
            api.clear_agent_items(**bobs),
            api.add_agent_items(**bobs, items=["planted"], transcript=[("user", "planted")]),
            api.archive_conversation(**bobs),
            api.unarchive_conversation(**bobs),
            # Carol's own id on Bob's conversation: the queries' filters find nothing.
            api.get_agent_items(user_id="carol", conversation_id=bob["conversation"]),
            api.pop_agent_item(user_id="carol", conversation_id=bob["conversation"]),
            api.clear_agent_items(user_id="carol", conversation_id=bob["conversation"]),
            api.add_agent_items(
                user_id="carol", conversation_id=bob["conversation"], items=["planted"]
            ),
            api.delete_user(user_id="bob"),
        ):
            with pytest.raises(NotFound):
                await call
        await api.delete_user(user_id="carol")
    # An append to Bob's conversation: messages_number, under the policies, does not see
    # it and refuses the row (the database's error ends that transaction).
    with pytest.raises(NotFound):
        async with acting_as("carol"):
            await api.append_message(
                user_id="bob", conversation_id=bob["conversation"], role="user", content="x"
            )
    # Unique checks ignore the policies: another user's email is still taken.
    with pytest.raises(AlreadyExists):
        async with acting_as("dave"):
            await api.create_user(id="dave", email="alice@example.com")
    assert _rows(conn, "users") == [("alice",), ("bob",)]
    # Alice's and Bob's rows as seeded: conversations (agent item counters included),
    # messages and agent items; Carol's went with her.
    assert {t: _rows(conn, t) for t in seeded} == seeded


# --- the migration's role handling -------------------------------------------------------


def test_rls_migration_reuses_an_existing_role_and_its_rollback_keeps_a_role_in_use(
    empty_db: str, db_dsn: str
) -> None:
    # db_dsn's database (a clone of the migrated template) already uses chatstore_app.
    migrations.apply(empty_db, up_to="chatstore_0005_row_level_security")
    with psycopg.connect(empty_db) as c:
        assert c.execute(
            "SELECT count(*) FROM pg_policies WHERE policyname LIKE '%_tenant_isolation'"
        ).fetchone() == (4,)
    assert migrations.rollback(empty_db, steps=1) == ["chatstore_0005_row_level_security"]
    with psycopg.connect(empty_db) as c:
        assert c.execute("SELECT count(*) FROM pg_policies").fetchone() == (0,)
        granted = c.execute(
            "SELECT count(*) FROM information_schema.role_table_grants"
            " WHERE grantee = 'chatstore_app'"
        ).fetchone()
        assert granted == (0,)
        assert c.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname = 'chatstore_app'"
        ).fetchone() == (1,)
    with psycopg.connect(db_dsn) as c:  # the other database still works as before
        assert c.execute(
            "SELECT has_table_privilege('chatstore_app', 'messages', 'SELECT')"
        ).fetchone() == (True,)
    migrations.apply(empty_db)


# Each table's columns, in the order rows are sorted by. A conversation's two agent item
# counters hold its session's list: a pop or clear shows in them.
_COLUMNS: dict[str, LiteralString] = {
    "users": "id",
    "tasks": "id, user_id, title, description, completed, updated_at",
    "conversations": "id, user_id, title, updated_at, agent_item_count, agent_item_top,"
    " archived_at",
    "messages": "id, conversation_id, user_id, role, content, created_at",
    "agent_items": "conversation_id, seq, slot, user_id, item::text, created_at",
}


def _rows(conn: psycopg.Connection, table: str) -> list[tuple[Any, ...]]:
    """Every row of a table, as the owner sees it (no policy applies)."""
    stmt: LiteralString = {t: f"SELECT {c} FROM {t} ORDER BY {c}" for t, c in _COLUMNS.items()}[
        table
    ]
    return conn.execute(stmt).fetchall()
