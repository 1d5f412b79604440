-- Back to 0004's listing index, and no archive: archived conversations are listed again
-- (which were archived is lost with the column; a brief ACCESS EXCLUSIVE lock).
-- transactional: false
-- The build waits for older transactions by design: no lock_timeout for it.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,ban-drop-column,require-lock-timeout

CREATE INDEX CONCURRENTLY IF NOT EXISTS conversations_user_id_updated_at_idx
    ON conversations (user_id, updated_at, id);

DROP INDEX CONCURRENTLY IF EXISTS conversations_last_activity_idx;
DROP INDEX CONCURRENTLY IF EXISTS conversations_user_id_updated_at_archived_idx;
DROP INDEX CONCURRENTLY IF EXISTS conversations_user_id_updated_at_active_idx;

SET lock_timeout = '5s';

REVOKE UPDATE (archived_at) ON conversations FROM chatstore_app;
ALTER TABLE conversations DROP COLUMN IF EXISTS archived_at;

RESET lock_timeout;
