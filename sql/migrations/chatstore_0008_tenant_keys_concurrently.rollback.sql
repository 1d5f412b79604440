-- Drops the new keys' indexes and builds 0003's tasks index again, concurrently.
-- transactional: false
-- It takes only a SHARE UPDATE EXCLUSIVE lock, and then waits for older transactions
-- by design: a lock_timeout would abort it half-built, so none is set.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout

CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_id_completed_idx
    ON tasks (user_id, completed, id);

DROP INDEX CONCURRENTLY IF EXISTS messages_user_id_conversation_id_seq_key;
DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_id_key;
