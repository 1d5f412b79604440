-- Removes the row-level security policies and chatstore_app's privileges in this
-- database. The role itself, shared by the whole cluster, is dropped only when nothing
-- else uses it: no object, privilege or default privilege in any database, and no
-- member but the role running this rollback. Otherwise (another chatstore database,
-- a service's LOGIN role still a member) it stays, and a DBA drops it when done.

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

ALTER TABLE messages DISABLE ROW LEVEL SECURITY;
ALTER TABLE conversations DISABLE ROW LEVEL SECURITY;
ALTER TABLE tasks DISABLE ROW LEVEL SECURITY;
ALTER TABLE users DISABLE ROW LEVEL SECURITY;

DROP POLICY messages_tenant_isolation ON messages;
DROP POLICY conversations_tenant_isolation ON conversations;
DROP POLICY tasks_tenant_isolation ON tasks;
DROP POLICY users_tenant_isolation ON users;

REVOKE ALL ON messages, conversations, tasks, users FROM chatstore_app;

DO $$
DECLARE
    app oid := (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'chatstore_app');
BEGIN
    IF app IS NOT NULL
       AND NOT EXISTS (
           SELECT FROM pg_catalog.pg_shdepend
           WHERE refclassid = 'pg_catalog.pg_authid'::regclass AND refobjid = app)
       AND NOT EXISTS (
           SELECT FROM pg_catalog.pg_auth_members AS m
           JOIN pg_catalog.pg_roles AS r ON r.oid = m.member
           WHERE m.roleid = app AND r.rolname <> current_user)
    THEN
        DROP ROLE chatstore_app;
    END IF;
EXCEPTION
    -- In use after all (a concurrent grant), or not ours to drop: leave it.
    WHEN dependent_objects_still_exist OR insufficient_privilege THEN
        RAISE NOTICE 'role chatstore_app kept: %', SQLERRM;
END
$$;
