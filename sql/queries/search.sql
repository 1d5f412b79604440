-- Named queries of full-text search over one user's messages, loaded by chatstore/_sql.py
-- and called by name from chatstore.aio and chatstore.queries. Each block: "-- name --",
-- a description, the SQL. The index and the functions are migration 0014's: the owner's
-- lexeme ANDed into the query makes messages_search_idx read only this user's matches.
-- Every statement names user_id as a value on every table it reads: on Citus that routes
-- it to the one shard holding the user (docs/scale-out.md).

-- search_messages --
-- A page of the user's messages that match a web-search query, best first: rank
-- (ts_rank_cd, divided by 1 + the log of the length), then conversation_id, then seq,
-- descending, strictly after the keyset position (before_rank, before_conversation_id,
-- before_seq); NULLs mean the first page. The caller asks for one row more than the page.
-- The work is bounded. The index finds the messages holding the query's words
-- (chatstore_search_words), created at or before `newest` (NULL: any; a walk keeps its
-- first page's). Only the newest of them are parsed again, once each, to check the
-- phrases and exclusions and to rank them: at most `cap` messages and `budget` bytes of
-- text (more than the longest message); `capped` says whether any was left out. The
-- snippet (ts_headline parses the message too) is made only for the rows returned: a
-- message of up to 300 characters whole, a longer one as two passages around the words
-- found. A query without a word to look for (only punctuation, only -excluded words)
-- matches nothing.
-- No row: no such user. One row of NULLs: no message holds the words. Rows with `hit`
-- false: no more matches past the position (they carry `capped`).
SELECT h.conversation_id, h.conversation_title, h.seq, h.role, h.created_at, h.rank,
       h.hit, h.capped, h.newest,
       CASE WHEN h.hit THEN ts_headline(
           chatstore_search_config(), chatstore_search_text(h.content),
           querytree(chatstore_search_query(%(query)s))::tsquery,
           'StartSel=' || chr(2) || ', StopSel=' || chr(3) || CASE
               WHEN char_length(h.content) <= 300 THEN ', HighlightAll=true'
               ELSE ', MaxFragments=2, MaxWords=24, MinWords=8, ShortWord=0,'
                    || ' FragmentDelimiter=" … "'
           END)
       END AS snippet
FROM users AS u
LEFT JOIN LATERAL (
    SELECT p.conversation_id, c.title AS conversation_title, p.seq, p.role, p.created_at,
           p.content, p.rank, p.hit, p.capped, p.newest
    FROM (
        -- Matches past the position first, best first; then, only so that a page
        -- without any still says whether it is capped, the messages that did not match.
        SELECT r.conversation_id, r.seq, r.role, r.created_at, r.content,
               ts_rank_cd(r.vector, chatstore_search_query(%(query)s), 1) AS rank,
               coalesce(
                   r.vector @@ chatstore_search_query(%(query)s)
                   AND (ts_rank_cd(r.vector, chatstore_search_query(%(query)s), 1),
                        r.conversation_id, r.seq) < (
                       coalesce(%(before_rank)s::real, 'infinity'),
                       coalesce(%(before_conversation_id)s::bigint, 9223372036854775807),
                       coalesce(%(before_seq)s::bigint, 9223372036854775807)
                   ),
                   false
               ) AS hit,
               r.capped, r.newest
        FROM (
            -- A subquery with window functions is never merged into the one above, so
            -- each message is parsed here once, and only the newest.
            SELECT m.conversation_id, m.seq, m.role, m.created_at, m.content,
                   count(*) OVER () > %(cap)s::bigint
                   OR sum(octet_length(m.content)) OVER () > %(budget)s::bigint AS capped,
                   max(m.created_at) OVER () AS newest,
                   CASE WHEN row_number() OVER newest_first <= %(cap)s::bigint
                         AND sum(octet_length(m.content)) OVER newest_first
                             <= %(budget)s::bigint
                        THEN chatstore_search_vector(m.content)
                   END AS vector
            FROM (
                SELECT conversation_id, seq, role, created_at, content
                FROM messages
                WHERE user_id = %(user_id)s
                  AND querytree(chatstore_search_query(%(query)s)) NOT IN ('', 'T')
                  AND chatstore_search_key(user_id, content)
                      @@ (chatstore_search_words(chatstore_search_query(%(query)s))
                          && chatstore_search_owner(%(user_id)s))
                  AND created_at <= coalesce(%(newest)s::timestamptz, 'infinity')
                ORDER BY created_at DESC, conversation_id DESC, seq DESC
                LIMIT %(cap)s::bigint + 1
            ) AS m
            WINDOW newest_first AS (
                ORDER BY m.created_at DESC, m.conversation_id DESC, m.seq DESC
            )
        ) AS r
        ORDER BY hit DESC, rank DESC NULLS LAST, r.conversation_id DESC, r.seq DESC
        LIMIT %(limit)s::bigint
    ) AS p
    JOIN conversations AS c ON c.user_id = %(user_id)s AND c.id = p.conversation_id
) AS h ON true
WHERE u.id = %(user_id)s
ORDER BY h.hit DESC, h.rank DESC NULLS LAST, h.conversation_id DESC, h.seq DESC;
