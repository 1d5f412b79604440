-- Named queries on agent_items, loaded by chatstore/_sql.py and called by name from
-- chatstore.aio and chatstore.queries (chatstore.agents and chatstore.pydantic_ai build
-- on those). An agent session's list is, for each slot 1 .. the conversation's
-- agent_item_top, the item with the highest seq at that slot (migration 0012).
-- Every statement names user_id as a value on every table it reads: on Citus that routes
-- it to the one shard holding the user (docs/scale-out.md).

-- add_agent_items --
-- Add `count` items to the top of the session's list, all or none, and their text (roles
-- and contents, in order) to the transcript in messages. The UPDATE numbers them under the
-- conversation's row lock; no such conversation for this user: nothing written, no row.
WITH conversation AS (
    UPDATE conversations
    SET agent_item_count = agent_item_count + %(count)s::bigint,
        agent_item_top = agent_item_top + %(count)s::bigint
    WHERE user_id = %(user_id)s AND id = %(conversation_id)s
    RETURNING agent_item_count - %(count)s::bigint AS seq0,
              agent_item_top - %(count)s::bigint AS slot0
), transcript AS (
    INSERT INTO messages (user_id, conversation_id, role, content)
    SELECT %(user_id)s::text, %(conversation_id)s::bigint, m.role, m.content
    FROM conversation,
         unnest(%(roles)s::text[], %(contents)s::text[]) WITH ORDINALITY AS m (role, content, ord)
    ORDER BY m.ord
    RETURNING seq
)
INSERT INTO agent_items (user_id, conversation_id, slot, seq, item)
SELECT %(user_id)s::text, %(conversation_id)s::bigint, c.slot0 + i.ord, c.seq0 + i.ord, i.item
FROM conversation AS c, unnest(%(items)s::json[]) WITH ORDINALITY AS i (item, ord)
RETURNING conversation_id, user_id, slot, seq, created_at;

-- add_keyed_agent_items --
-- Add with the client's request key (chatstore_add_agent_items, migration 0013): as
-- add_agent_items, each item with its key (the key, then the key, a space and n); or,
-- when the key is already used in this conversation, the items stored under it and the
-- next one, each saying whether it is the item sent at its place, written by nothing.
-- No row: no such conversation for this user.
SELECT conversation_id, user_id, slot, seq, created_at, request_id, same
FROM chatstore_add_agent_items(%(user_id)s::text, %(conversation_id)s::bigint,
                               %(request_id)s::text, %(items)s::json[], %(roles)s::text[],
                               %(contents)s::text[]);

-- get_agent_items --
-- The last `limit` (NULL: all) items of the session's list, oldest first: one backward
-- range scan of agent_items_pkey, the newest seq kept at each slot.
-- No row: no such conversation for this user. One row of NULLs: the list is empty.
SELECT i.conversation_id, i.user_id, i.slot, i.seq, i.item, i.created_at
FROM conversations AS c
LEFT JOIN LATERAL (
    SELECT DISTINCT ON (slot) conversation_id, user_id, slot, seq, item, created_at
    FROM agent_items
    WHERE user_id = %(user_id)s
      AND conversation_id = %(conversation_id)s
      AND slot <= c.agent_item_top
      AND slot > c.agent_item_top - coalesce(%(limit)s::bigint, c.agent_item_top)
    ORDER BY slot DESC, seq DESC
) AS i ON true
WHERE c.user_id = %(user_id)s AND c.id = %(conversation_id)s
ORDER BY i.slot;

-- pop_agent_item --
-- Remove the newest item from the session's list and return it (chatstore_pop_agent_item,
-- migration 0012). No row: no such conversation for this user. NULLs: the list was empty.
SELECT conversation_id, user_id, slot, seq, item, created_at
FROM chatstore_pop_agent_item(%(user_id)s::text, %(conversation_id)s::bigint);

-- clear_agent_items --
-- Empty the session's list (its items stay on record). No row: no such conversation.
UPDATE conversations
SET agent_item_top = 0
WHERE user_id = %(user_id)s AND id = %(conversation_id)s
RETURNING id;
