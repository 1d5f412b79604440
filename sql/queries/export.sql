-- Named queries of one user's export, loaded by chatstore/_sql.py and run by
-- chatstore.export (export_user) in this order, in one REPEATABLE READ READ ONLY
-- transaction: one snapshot for all of them. The four table reads run through server-side
-- cursors (DECLARE ... FETCH), so each is read in batches, never whole. Each lists its
-- table's columns and reads in primary key order (no sort: the key's index hands the rows
-- over in that order). Every statement names user_id as a value on every table it reads:
-- on Citus that routes it to the one shard holding the user (docs/scale-out.md).

-- export_user --
-- The user (users_pkey), and the transaction's start time: when the snapshot was taken.
-- No row: no such user.
SELECT id, email, name, created_at, now() AS exported_at
FROM users
WHERE id = %(user_id)s;

-- export_tasks --
-- Every task of the user, by id (tasks_pkey).
SELECT id, user_id, title, description, completed, created_at, updated_at
FROM tasks
WHERE user_id = %(user_id)s
ORDER BY id;

-- export_conversations --
-- Every conversation of the user, by id (conversations_pkey), with its counters and
-- archived_at (migration 0015).
SELECT id, user_id, title, message_count, last_message_at, agent_item_count, agent_item_top,
       created_at, updated_at, archived_at
FROM conversations
WHERE user_id = %(user_id)s
ORDER BY id;

-- export_messages --
-- Every message of the user, by conversation and seq (messages_pkey).
SELECT id, conversation_id, user_id, seq, role, content, created_at, request_id
FROM messages
WHERE user_id = %(user_id)s
ORDER BY conversation_id, seq;

-- export_agent_items --
-- Every agent item of the user, popped and cleared ones included, by conversation, slot
-- and seq (agent_items_pkey). The session's list is the highest seq at each slot up to
-- the conversation's agent_item_top.
SELECT conversation_id, user_id, slot, seq, item, created_at, request_id
FROM agent_items
WHERE user_id = %(user_id)s
ORDER BY conversation_id, slot, seq;
