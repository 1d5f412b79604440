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
RETURNING id, user_id, title, message_count, last_message_at, created_at, updated_at, archived_at;

-- get_conversation --
-- One conversation of a user (conversations_pkey).
SELECT id, user_id, title, message_count, last_message_at, created_at, updated_at, archived_at
FROM conversations
WHERE user_id = %(user_id)s AND id = %(conversation_id)s;

-- list_conversations --
-- A page of a user's conversations that are not archived, most recently updated first,
-- strictly after the keyset position (before_updated_at, before_id); NULLs mean the
-- first page. The caller asks for one row more than the page to learn whether another
-- page follows. The literal `archived_at IS NULL` is the predicate of the partial index
-- conversations_user_id_updated_at_active_idx (migration 0015), so every plan, generic
-- ones included, can use it. The index scan alone, as get_messages (no join to users):
-- no row is either nothing past the position or no such user, and the caller asks
-- get_user which.
SELECT id, user_id, title, message_count, last_message_at, created_at, updated_at, archived_at
FROM conversations
WHERE user_id = %(user_id)s
  AND archived_at IS NULL
  AND (updated_at, id) < (
      coalesce(%(before_updated_at)s::timestamptz, 'infinity'),
      coalesce(%(before_id)s::bigint, 9223372036854775807)
  )
ORDER BY updated_at DESC, id DESC
LIMIT %(limit)s::bigint;

-- list_archived_conversations --
-- The same page of the user's archived conversations, on the partial index
-- conversations_user_id_updated_at_archived_idx (migration 0015): same order, same cursor.
-- No row: as list_conversations.
SELECT id, user_id, title, message_count, last_message_at, created_at, updated_at, archived_at
FROM conversations
WHERE user_id = %(user_id)s
  AND archived_at IS NOT NULL
  AND (updated_at, id) < (
      coalesce(%(before_updated_at)s::timestamptz, 'infinity'),
      coalesce(%(before_id)s::bigint, 9223372036854775807)
  )
ORDER BY updated_at DESC, id DESC
LIMIT %(limit)s::bigint;

-- rename_conversation --
-- Set a conversation's title (already trimmed); its BEFORE UPDATE trigger moves updated_at.
UPDATE conversations
SET title = %(title)s::text
WHERE user_id = %(user_id)s AND id = %(conversation_id)s
RETURNING id, user_id, title, message_count, last_message_at, created_at, updated_at, archived_at;

-- delete_conversation --
-- Delete a conversation of a user; its messages go with it (ON DELETE CASCADE).
DELETE FROM conversations
WHERE user_id = %(user_id)s AND id = %(conversation_id)s
RETURNING id;

-- archive_conversation --
-- Archive a conversation of the user: archived_at is set, or kept when it already was
-- (the first archiving's time; least() skips a NULL, and Citus refuses now() inside
-- coalesce). Not an UPDATE OF title: updated_at stays.
UPDATE conversations
SET archived_at = least(archived_at, now())
WHERE user_id = %(user_id)s AND id = %(conversation_id)s
RETURNING id, user_id, title, message_count, last_message_at, created_at, updated_at, archived_at;

-- unarchive_conversation --
-- Put an archived conversation back in the listing, at its place by updated_at (which
-- stays); a conversation that is not archived is returned as it is.
UPDATE conversations
SET archived_at = NULL
WHERE user_id = %(user_id)s AND id = %(conversation_id)s
RETURNING id, user_id, title, message_count, last_message_at, created_at, updated_at, archived_at;
