-- Drops the search index (concurrently: messages stay readable and writable) and its
-- functions; search_messages then fails, as it needs them.
-- transactional: false
-- DROP INDEX CONCURRENTLY waits for older transactions by design: no lock_timeout.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout,ban-drop-function

DROP INDEX CONCURRENTLY IF EXISTS messages_search_idx;

DROP FUNCTION IF EXISTS chatstore_search_words(tsquery);
DROP FUNCTION IF EXISTS chatstore_search_query(text);
DROP FUNCTION IF EXISTS chatstore_search_owner(text);
DROP FUNCTION IF EXISTS chatstore_search_key(text, text);
DROP FUNCTION IF EXISTS chatstore_search_vector(text);
DROP FUNCTION IF EXISTS chatstore_search_text(text);
DROP FUNCTION IF EXISTS chatstore_search_config();
