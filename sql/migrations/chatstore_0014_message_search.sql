-- Per-user full-text search over messages (search_messages, sql/queries/search.sql): one
-- GIN index on an expression, no new column, so the table is never rewritten.
--
-- The index holds, for each message, the words of its content (chatstore_search_vector)
-- and one more lexeme that names its owner, 'user ' || user_id
-- (chatstore_search_key). A search ANDs the owner's lexeme into the query
-- (chatstore_search_owner), so the index reads only that user's matches whoever else
-- uses the word: the per-user index the btree_gin extension would give with a
-- (user_id, vector) GIN index, without an extension (the embedded PostgreSQL has none,
-- and Citus would have to create it on every worker). A lexeme holds a space, which the
-- parser never puts in one, so no word of any message or query can be an owner's.
-- The owner filter is an accelerator, not the isolation: the query also filters by
-- user_id = %(user_id)s.
--
-- The text configuration is chatstore_search_config(): 'simple' (words lower-cased, no
-- stemming, no stop words), the same for every language a chat may hold. A later
-- migration may change it: CREATE OR REPLACE FUNCTION chatstore_search_config() with
-- the new configuration, then REINDEX INDEX CONCURRENTLY messages_search_idx (until the
-- rebuild ends, search misses the words the two configurations spell differently;
-- docs/schema.md). Every function here is IMMUTABLE and inlined by the planner, so the
-- index expression and the query's are both to_tsvector('simple', ...) to it.
--
-- Live databases: transactional: false, for CREATE INDEX CONCURRENTLY, which keeps
-- messages readable and writable while it reads the table (twice) and waits for older
-- transactions by design (no lock_timeout there). It computes every message's vector:
-- about 8 minutes per million messages on a busy 2-vCPU machine (docs/benchmarks.md),
-- so give the session a larger maintenance_work_mem on a big table. A failed build leaves
-- an INVALID index, which the next apply drops and builds again (chatstore.migrations);
-- the functions are created with OR REPLACE, so every statement may run again. Until
-- the index is valid, search_messages works without it (slowly). On Citus the functions
-- reach the workers and the index every shard.
-- depends: chatstore_0013_request_ids
-- transactional: false
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout

-- The text search configuration of the index and of every query: the one place it is
-- named.
CREATE OR REPLACE FUNCTION chatstore_search_config() RETURNS regconfig
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'simple'::regconfig;

-- The text that is parsed. The default parser reads '<' .. '>' as an HTML tag and drops
-- what is inside it (Vec<String>, a<b and c>d): '<' becomes a space. The two control
-- characters become spaces too: they mark the highlighted words of a snippet, so the
-- text itself never holds them.
CREATE OR REPLACE FUNCTION chatstore_search_text(p_content text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN translate(p_content, '<' || chr(2) || chr(3), '   ');

-- The words of a message, with their positions (ranking, phrases).
CREATE OR REPLACE FUNCTION chatstore_search_vector(p_content text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_tsvector(chatstore_search_config(), chatstore_search_text(p_content));

-- What the index holds: the words and the owner's lexeme.
CREATE OR REPLACE FUNCTION chatstore_search_key(p_user_id text, p_content text)
RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN chatstore_search_vector(p_content) || array_to_tsvector(ARRAY['user ' || p_user_id]);

-- The owner's lexeme as a query, quoted as tsquery's input wants: a quote doubled, a
-- backslash (chr(92), which yoyo's statement splitter would misread in a literal)
-- escaped by another.
CREATE OR REPLACE FUNCTION chatstore_search_owner(p_user_id text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ('''user ' || replace(replace(p_user_id, chr(92), chr(92) || chr(92)), '''', '''''')
        || '''')::tsquery;

-- A person's query in web-search syntax: words (all required), "quoted phrases", OR,
-- -excluded words. Its text is read as a message's is.
CREATE OR REPLACE FUNCTION chatstore_search_query(p_query text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN websearch_to_tsquery(chatstore_search_config(), chatstore_search_text(p_query));

-- What the index is asked: the words a message must hold to match the query, without
-- its exclusions (querytree drops them) and with each phrase's words ANDed. The index
-- answers that exactly; a phrase would make it recheck every message holding the
-- words by parsing it again. Phrases and exclusions are checked on the newest matches
-- only (sql/queries/search.sql). No lexeme holds '<' (chatstore_search_text), so every
-- '<->' or '<N>' in the text is a phrase operator. A query with nothing to look for
-- gives '' or 'T': the caller tests querytree first.
CREATE OR REPLACE FUNCTION chatstore_search_words(p_query tsquery) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN regexp_replace(querytree(p_query), '<(-|[0-9]+)>', '&', 'g')::tsquery;

COMMENT ON FUNCTION chatstore_search_config() IS 'Text search configuration of messages_search_idx and of search_messages; change it with a migration that also rebuilds the index.';
COMMENT ON FUNCTION chatstore_search_key(text, text) IS 'Indexed by messages_search_idx: the words of a message and its owner''s lexeme.';

-- An append adds its message's words to the index's pending list (fastupdate), not to
-- the index itself: about 0.1 ms more per append here, against 0.3 ms to update the
-- index in place. The list is merged into the index by (auto)vacuum, or by the append
-- that finds it full, which then waits for the merge; and every search reads the whole
-- list. 512 kB instead of 4 MB keeps both short: the longest append measured here took
-- 43 ms instead of 139 ms (docs/benchmarks.md).
CREATE INDEX CONCURRENTLY IF NOT EXISTS messages_search_idx
    ON messages USING gin (chatstore_search_key(user_id, content))
    WITH (fastupdate = on, gin_pending_list_limit = 512);
