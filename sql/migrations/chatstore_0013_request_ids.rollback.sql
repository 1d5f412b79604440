-- Drops retry-safe appends: the functions, the key indexes (concurrently) and the
-- columns with their CHECKs (metadata only, brief ACCESS EXCLUSIVE locks). The keys are
-- lost; the messages and agent items stay.
-- transactional: false
-- The concurrent drop waits for older transactions by design: no lock_timeout there.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout,ban-drop-column,ban-drop-function

DROP FUNCTION IF EXISTS chatstore_append_messages(text, bigint, text, text[], text[]);
DROP FUNCTION IF EXISTS chatstore_add_agent_items(text, bigint, text, json[], text[], text[]);

DROP INDEX CONCURRENTLY IF EXISTS messages_request_id_key;
DROP INDEX CONCURRENTLY IF EXISTS agent_items_request_id_key;

-- Each statement commits on its own (no transaction): SET, not SET LOCAL.
SET lock_timeout = '5s';
ALTER TABLE messages DROP COLUMN IF EXISTS request_id;
ALTER TABLE agent_items DROP COLUMN IF EXISTS request_id;
RESET lock_timeout;
