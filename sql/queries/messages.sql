-- Named queries on messages, loaded by chatstore/_sql.py and called by name from
-- chatstore.aio and chatstore.queries. Each block: "-- name --", a description, the SQL.
-- Messages are append-only and ordered by seq, their number within the conversation
-- (1, 2, 3 ...), which the BEFORE INSERT trigger messages_number assigns under the
-- conversation's row lock; the same trigger moves the conversation's updated_at,
-- message_count and last_message_at, and titles an untitled one from its first user message.
-- Every statement names user_id as a value on every table it reads: on Citus that routes
-- it to the one shard holding the user (docs/scale-out.md).

-- append_message --
-- Append one message to a conversation of the user. No such conversation for this user:
-- messages_number raises messages_conversation_fkey (NotFound).
INSERT INTO messages (user_id, conversation_id, role, content)
VALUES (%(user_id)s, %(conversation_id)s, %(role)s::text, %(content)s::text)
RETURNING id, conversation_id, user_id, seq, role, content, created_at;

-- append_messages --
-- Append several messages in one statement, hence all or none, numbered in the order
-- given. No such conversation for this user: messages_conversation_fkey (NotFound).
INSERT INTO messages (user_id, conversation_id, role, content)
SELECT %(user_id)s::text, %(conversation_id)s::bigint, m.role, m.content
FROM unnest(%(roles)s::text[], %(contents)s::text[]) WITH ORDINALITY AS m (role, content, ord)
ORDER BY m.ord
RETURNING id, conversation_id, user_id, seq, role, content, created_at;

-- append_keyed_messages --
-- Append with the client's request key (chatstore_append_messages, migration 0013): the
-- messages inserted, numbered in the order given, each with its key (the key, then the
-- key, a space and n); or, when the key is already used in this conversation, the
-- messages stored under it and the next one, written by nothing. No such conversation
-- for this user: messages_conversation_fkey (NotFound).
SELECT id, conversation_id, user_id, seq, role, content, created_at, request_id
FROM chatstore_append_messages(%(user_id)s::text, %(conversation_id)s::bigint,
                               %(request_id)s::text, %(roles)s::text[], %(contents)s::text[]);

-- get_messages --
-- The last `limit` (NULL: all) messages with after < seq < before (NULLs: unbounded),
-- newest first: read backwards on messages_pkey, the one index scan the raw read makes;
-- the caller reverses them. Messages only, no join: a join to conversations (to tell a
-- missing conversation from an empty range in the same statement) cost this read
-- 1.4x (50 rows) and 1.35x (1,000 rows) of the bare scan (docs/decisions.md, "Reads
-- near the floor"). No row: the caller asks get_conversation which it was.
SELECT id, conversation_id, user_id, seq, role, content, created_at
FROM messages
WHERE user_id = %(user_id)s
  AND conversation_id = %(conversation_id)s
  AND seq < coalesce(%(before)s::bigint, 9223372036854775807)
  AND seq > coalesce(%(after)s::bigint, 0)
ORDER BY seq DESC
LIMIT %(limit)s::bigint;

-- get_messages_after --
-- The first `limit` (NULL: all) messages with after < seq < before, read forwards on
-- messages_pkey: what a client that holds everything up to `after` has not seen yet.
-- No row: as get_messages.
SELECT id, conversation_id, user_id, seq, role, content, created_at
FROM messages
WHERE user_id = %(user_id)s
  AND conversation_id = %(conversation_id)s
  AND seq > %(after)s::bigint
  AND seq < coalesce(%(before)s::bigint, 9223372036854775807)
ORDER BY seq
LIMIT %(limit)s::bigint;
