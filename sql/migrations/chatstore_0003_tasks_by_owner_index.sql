-- Indexes tasks for "a user's tasks by status", the query the chatbot's task tools
-- run, and drops the seed's single-column task indexes that it replaces.
--
-- (user_id, completed, id) serves the status filter and the id order in one index
-- scan; through its leading column it also serves every lookup by owner and the
-- ON DELETE CASCADE from users, which idx_tasks_user_id did. idx_tasks_completed
-- (a boolean alone) was never selective enough to be chosen.
--
-- CREATE INDEX CONCURRENTLY keeps a busy tasks table writable while it builds, and
-- cannot run inside a transaction. If the build fails it leaves an INVALID index:
-- DROP INDEX CONCURRENTLY it, then apply again (docs/migrations.md).
-- depends: chatstore_0002_harden_users_tasks
-- transactional: false
-- yoyo runs this file outside a transaction (transactional: false).
-- It takes only a SHARE UPDATE EXCLUSIVE lock, and then waits for older transactions
-- by design: a lock_timeout would abort it half-built, so none is set.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout

CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_id_completed_idx
    ON tasks (user_id, completed, id);

-- Present only on Phase II databases created from the seed's full DDL.
DROP INDEX CONCURRENTLY IF EXISTS idx_tasks_user_id;
DROP INDEX CONCURRENTLY IF EXISTS idx_tasks_completed;
