-- Builds the unique indexes of the new tenant keys, which 0009 turns into primary keys:
-- every key of a table that Citus distributes by user_id must include user_id.
--   tasks    (user_id, id)                  replaces tasks_pkey (id)
--   messages (user_id, conversation_id, seq) replaces messages_pkey (conversation_id, id)
-- and drops tasks_user_id_completed_idx (0003), which tasks' new key makes redundant:
-- a user's tasks by owner, in id order, and the cascade from users are served by
-- (user_id, id); the status filter reads the few tasks of one user (docs/schema.md).
-- depends: chatstore_0007_backfill_message_numbers
-- transactional: false
--
-- CREATE INDEX CONCURRENTLY keeps both tables readable and writable while it builds and
-- cannot run in a transaction. A failed build leaves an INVALID index: DROP INDEX
-- CONCURRENTLY it, then apply again (docs/migrations.md). It takes only a SHARE UPDATE
-- EXCLUSIVE lock and then waits for older transactions by design: no lock_timeout.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS tasks_user_id_id_key
    ON tasks (user_id, id);

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS messages_user_id_conversation_id_seq_key
    ON messages (user_id, conversation_id, seq);

DROP INDEX CONCURRENTLY IF EXISTS tasks_user_id_completed_idx;
