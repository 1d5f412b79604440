-- Named queries on conversations, loaded by chatstore/_sql.py and called by name from
-- chatstore.aio and chatstore.queries. Each block: "-- name --", a description, the SQL.
-- Every statement is scoped by user_id: another user's conversation is simply not found.
-- Every statement names user_id as a value on every table it reads: on Citus that routes
-- it to the one shard holding the user (docs/scale-out.md).

-- create_conversation --
-- Start a conversation for an existing user; no row returned means no such user.
INSERT INTO conversations (user_id, title)
SELECT u.id, %(title)s::text
FROM users AS u
WHERE u.id = %(user_id)s
RETURNING id, user_id, title, message_count, last_message_at, created_at, updated_at;

-- get_conversation --
-- One conversation of a user (conversations_pkey).
SELECT id, user_id, title, message_count, last_message_at, created_at, updated_at
FROM conversations
WHERE user_id = %(user_id)s AND id = %(conversation_id)s;

-- list_conversations --
-- A page of a user's conversations, most recently updated first, strictly after the
-- keyset position (before_updated_at, before_id); NULLs mean the first page. The caller
-- asks for one row more than the page to learn whether another page follows.
-- No row: no such user. One row of NULLs: the user has nothing past the position.
SELECT c.id, c.user_id, c.title, c.message_count, c.last_message_at, c.created_at, c.updated_at
FROM users AS u
LEFT JOIN LATERAL (
    SELECT id, user_id, title, message_count, last_message_at, created_at, updated_at
    FROM conversations
    WHERE user_id = %(user_id)s
      AND (updated_at, id) < (
          coalesce(%(before_updated_at)s::timestamptz, 'infinity'),
          coalesce(%(before_id)s::bigint, 9223372036854775807)
      )
    ORDER BY updated_at DESC, id DESC
    LIMIT %(limit)s::bigint
) AS c ON true
WHERE u.id = %(user_id)s
ORDER BY c.updated_at DESC, c.id DESC;

-- rename_conversation --
-- Set a conversation's title (already trimmed); its BEFORE UPDATE trigger moves updated_at.
UPDATE conversations
SET title = %(title)s::text
WHERE user_id = %(user_id)s AND id = %(conversation_id)s
RETURNING id, user_id, title, message_count, last_message_at, created_at, updated_at;

-- delete_conversation --
-- Delete a conversation of a user; its messages go with it (ON DELETE CASCADE).
DELETE FROM conversations
WHERE user_id = %(user_id)s AND id = %(conversation_id)s
RETURNING id;
