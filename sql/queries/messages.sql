-- Named queries on messages, loaded by chatstore/_sql.py and called by name from
-- chatstore.aio and chatstore.queries. Each block: "-- name --", a description, the SQL.
-- Messages are append-only and ordered by id (one sequence; created_at may tie).
-- The AFTER INSERT statement trigger messages_bump_conversation bumps the conversation's
-- updated_at and titles an untitled one from its first user message, in the same statement.

-- append_message --
-- Append one message to a conversation of the user; no row returned means no such
-- conversation for this user (a concurrent delete surfaces as messages_conversation_fkey).
INSERT INTO messages (conversation_id, user_id, role, content)
SELECT c.id, c.user_id, %(role)s::text, %(content)s::text
FROM conversations AS c
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
RETURNING id, conversation_id, user_id, role, content, created_at;

-- append_messages --
-- Append several messages in the order given (ids follow the array order), in one
-- statement, hence all or none; no row returned means no such conversation for this user.
INSERT INTO messages (conversation_id, user_id, role, content)
SELECT c.id, c.user_id, m.role, m.content
FROM conversations AS c
CROSS JOIN unnest(%(roles)s::text[], %(contents)s::text[])
    WITH ORDINALITY AS m (role, content, ord)
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
ORDER BY m.ord
RETURNING id, conversation_id, user_id, role, content, created_at;

-- get_messages --
-- A conversation's messages in id order: the last `limit` (NULL: all) before before_id
-- (NULL: the newest), read backwards on messages_pkey and returned oldest first.
-- No row: no such conversation for this user. One row of NULLs: no message (yet).
SELECT m.id, m.conversation_id, m.user_id, m.role, m.content, m.created_at
FROM conversations AS c
LEFT JOIN LATERAL (
    SELECT id, conversation_id, user_id, role, content, created_at
    FROM messages
    WHERE conversation_id = c.id
      AND user_id = c.user_id
      AND id < coalesce(%(before_id)s::bigint, 9223372036854775807)
    ORDER BY id DESC
    LIMIT %(limit)s::bigint
) AS m ON true
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
ORDER BY m.id;
