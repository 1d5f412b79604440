-- Defence in depth for tenant isolation: row-level security on every user-owned
-- table, and chatstore_app, a least-privilege group role for services to run as.
--
-- Each policy admits only the rows of the user named by the transaction-local setting
-- chatstore.user_id (chatstore.rls.acting_as sets it with set_config(..., true)).
-- Unset, it matches nothing: a role bound by these policies that forgets to set it
-- sees no rows and can write none, and a query that forgets its user_id filter still
-- sees only the current user's rows.
--
-- ENABLE, not FORCE: the tables' owner (who runs these migrations) and superusers are
-- exempt, so migrations, backups and the owner-connected test suite see every row.
-- Services connect as a LOGIN role that is a member of chatstore_app (docs/guarantees.md).
--
-- chatstore_app may read the four tables and make only the writes the query layer
-- makes, column by column: no DDL (it owns nothing; PostgreSQL 15+ gives PUBLIC no
-- CREATE on schema public), no TRUNCATE anywhere, and on messages only SELECT and
-- INSERT (no UPDATE, no DELETE: messages go only by cascade, which runs as the owner).
-- Identity columns need no sequence privilege, and the columns it may not insert
-- (ids, timestamps, completed) keep their defaults, so it cannot forge them.
--
-- The messages_bump_conversation trigger runs as the inserting role and needs no
-- SECURITY DEFINER: a new message must carry the current user's id (WITH CHECK) and,
-- by messages_conversation_fkey, belongs to that user's conversation, which the
-- conversations policy lets the trigger update; chatstore_app holds UPDATE (title).
-- Foreign key checks and ON DELETE CASCADE run as the owner and ignore the policies.
--
-- Roles belong to the whole cluster, not to this database: the role is created only if
-- it is missing, so several chatstore databases on one server share it. Creating it
-- needs CREATEROLE (or a DBA who created it beforehand).
-- depends: chatstore_0004_conversations_messages

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'chatstore_app') THEN
        CREATE ROLE chatstore_app NOLOGIN;
    END IF;
EXCEPTION
    -- Another database's migration created it at the same moment.
    WHEN duplicate_object OR unique_violation THEN
        NULL;
    WHEN insufficient_privilege THEN
        RAISE EXCEPTION 'role chatstore_app does not exist and % may not create it',
            current_user
            USING HINT = 'Run CREATE ROLE chatstore_app NOLOGIN as a superuser or a role '
                         'with CREATEROLE, then apply again.';
END
$$;

GRANT SELECT, INSERT (id, email, name), DELETE ON users TO chatstore_app;
GRANT SELECT, INSERT (user_id, title, description),
      UPDATE (title, description, completed), DELETE
    ON tasks TO chatstore_app;
GRANT SELECT, INSERT (user_id, title), UPDATE (title), DELETE
    ON conversations TO chatstore_app;
GRANT SELECT, INSERT (conversation_id, user_id, role, content) ON messages TO chatstore_app;

CREATE POLICY users_tenant_isolation ON users
    TO chatstore_app
    USING (id = current_setting('chatstore.user_id', true))
    WITH CHECK (id = current_setting('chatstore.user_id', true));

CREATE POLICY tasks_tenant_isolation ON tasks
    TO chatstore_app
    USING (user_id = current_setting('chatstore.user_id', true))
    WITH CHECK (user_id = current_setting('chatstore.user_id', true));

CREATE POLICY conversations_tenant_isolation ON conversations
    TO chatstore_app
    USING (user_id = current_setting('chatstore.user_id', true))
    WITH CHECK (user_id = current_setting('chatstore.user_id', true));

CREATE POLICY messages_tenant_isolation ON messages
    TO chatstore_app
    USING (user_id = current_setting('chatstore.user_id', true))
    WITH CHECK (user_id = current_setting('chatstore.user_id', true));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
