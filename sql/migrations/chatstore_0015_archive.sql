-- Archive and retention (issue 11 item 3): conversations.archived_at, the listing split
-- into an index per view, and an index that finds old conversations across users.
--
--   archived_at   NULL: listed; a time: archived then (chatstore.aio.archive_conversation).
--                 Archiving is a listing filter, not a lock: an archived conversation is
--                 read and appended to as before, and keeps its updated_at (the touch
--                 trigger fires only on UPDATE OF title), so it keeps its place.
--   conversations_user_id_updated_at_active_idx    (user_id, updated_at, id) WHERE archived_at IS NULL
--   conversations_user_id_updated_at_archived_idx  (user_id, updated_at, id) WHERE archived_at IS NOT NULL
--                 replace 0004's conversations_user_id_updated_at_idx: each listing
--                 (list_conversations, archived=False or True) is one backward range scan
--                 of its own index, and each row is in exactly one of the two, so the
--                 pair is the size of the index they replace.
--   conversations_last_activity_idx  (coalesce(last_message_at, updated_at), user_id, id)
--                 the retention job's walk (chatstore.retention.purge_conversations):
--                 the conversations of every user idle since a cutoff, oldest first, in
--                 keyset order. Its key is an expression no listing names, so a
--                 listing's plan cannot drift onto it (a plain (updated_at, user_id, id)
--                 would also serve a user's listing in order, and the planner took it
--                 when its estimates were off: every conversation of a bulk load shares
--                 one updated_at). An append already updates the row out of place (it
--                 moves updated_at, which is indexed), so this costs one more index
--                 entry per append (docs/decisions.md).
--
-- On a live database: the column has no default, so adding it changes only the catalog
-- (no rewrite, a lock of milliseconds under lock_timeout). Each index is built
-- CONCURRENTLY (reads and writes go on; the build waits for older transactions by
-- design, so no lock_timeout then), and the old index is dropped CONCURRENTLY only after
-- both of its replacements are valid. Each statement is its own transaction; applying
-- again after a failure finishes what is left (an INVALID leftover is rebuilt by
-- `chatstore migrate`). On Citus every statement reaches the shards.
-- depends: chatstore_0014_message_search
-- transactional: false
-- squawk assumes one transaction per file; here each statement is its own.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout

SET lock_timeout = '5s';

ALTER TABLE conversations ADD COLUMN IF NOT EXISTS archived_at timestamptz;

COMMENT ON COLUMN conversations.archived_at IS 'When the conversation was archived (left out of list_conversations); NULL: not archived.';

GRANT UPDATE (archived_at) ON conversations TO chatstore_app;

RESET lock_timeout;

CREATE INDEX CONCURRENTLY IF NOT EXISTS conversations_user_id_updated_at_active_idx
    ON conversations (user_id, updated_at, id) WHERE archived_at IS NULL;

CREATE INDEX CONCURRENTLY IF NOT EXISTS conversations_user_id_updated_at_archived_idx
    ON conversations (user_id, updated_at, id) WHERE archived_at IS NOT NULL;

CREATE INDEX CONCURRENTLY IF NOT EXISTS conversations_last_activity_idx
    ON conversations ((coalesce(last_message_at, updated_at)), user_id, id);

DROP INDEX CONCURRENTLY IF EXISTS conversations_user_id_updated_at_idx;
