-- The agent's memory: every item an agent run produces (user input, reasoning, tool
-- calls, tool results, assistant messages), per conversation, in order, kept exactly
-- as given. chatstore.agents (OpenAI Agents SDK sessions) and chatstore.pydantic_ai
-- (Pydantic AI histories) store here; docs/agents.md.
--
-- The transcript stays in messages: the query layer writes a user's or an assistant's
-- text to messages in the same statement that stores its item, so titles, counters and
-- get_messages keep working; tool traffic is stored here only.
--
-- Append-only, with a stack on top. An agent session can remove its newest item
-- (pop) or all of them (clear), yet no item is ever updated or deleted (only a deleted
-- conversation or user takes them away, by cascade). Each item has:
--   seq       its number in append order (1, 2, 3 ... over the conversation's life);
--   slot      its place in the session's list when it was added (1 = oldest).
-- The conversation keeps the list's height, agent_item_top. Adding n items writes them
-- at slots top+1 .. top+n and raises top by n; pop lowers top by 1; clear sets it
-- to 0. The session's list is, for each slot 1 .. top, the item with the highest
-- seq at that slot: an item added after a pop takes the popped item's place and
-- hides it. Reads are one range scan of agent_items_pkey; pop and clear are one UPDATE
-- of the conversation; what was popped or cleared stays on record in seq order.
--
-- Items are json, not jsonb: json keeps the text as given (key order, number spelling,
-- \u0000 escapes, which jsonb refuses), so an item comes back exactly; the Agents SDK
-- hashes stored items to resume a paused run. Nothing queries inside an item.
-- depends: chatstore_0011_validate_rules_and_email_key

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';
-- On a distributed database (Citus), one connection per worker for the whole file: the
-- functions below may not follow DDL that ran over several. Elsewhere a no-op setting.
SET LOCAL citus.multi_shard_modify_mode = 'sequential';

-- Constant defaults: metadata only, no table rewrite.
ALTER TABLE conversations
    ADD COLUMN agent_item_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN agent_item_top bigint NOT NULL DEFAULT 0;

COMMENT ON COLUMN conversations.agent_item_count IS 'Agent items ever added: the seq of the last one.';
COMMENT ON COLUMN conversations.agent_item_top IS 'Height of the agent session''s list: its items are at slots 1 .. agent_item_top.';

-- NOT VALID, and never validated: every existing row holds the defaults 0 and 0, which
-- pass, and a VALIDATE would scan conversations under this file's ACCESS EXCLUSIVE
-- lock. It holds for every row written from now on.
ALTER TABLE conversations
    ADD CONSTRAINT conversations_agent_items_check
    CHECK (agent_item_top >= 0 AND agent_item_top <= agent_item_count) NOT VALID;

-- Fixed-width columns first: no alignment padding between them. The foreign key is
-- added at the end, once the table is distributed on Citus (below).
CREATE TABLE agent_items (
    conversation_id bigint NOT NULL,
    slot            bigint NOT NULL,
    seq             bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    user_id         text NOT NULL,
    item            json NOT NULL,
    -- The read path: slots in a range, newest seq first at each. seq alone is
    -- unique within a conversation too (the conversation's counter hands it out under
    -- the row lock); (slot, seq) is what reads need, and is unique with it.
    CONSTRAINT agent_items_pkey PRIMARY KEY (user_id, conversation_id, slot, seq),
    CONSTRAINT agent_items_numbers_check CHECK (slot >= 1 AND seq >= slot),
    -- 4 MiB of JSON text per item: a 1 MB tool output fits with room to spare, a
    -- runaway payload does not. The query layer refuses larger items before any SQL.
    CONSTRAINT agent_items_item_check CHECK (octet_length(item::text) <= 4194304)
);

COMMENT ON TABLE agent_items IS 'Append-only items of an agent session, per conversation; the list is the newest seq at each slot up to conversations.agent_item_top.';
COMMENT ON COLUMN agent_items.item IS 'The item exactly as the framework gave it (json keeps the text).';

-- Append-only, as messages: a statement trigger refuses every UPDATE. The error names
-- its constraint in the message too (Citus passes on a shard's message, not its fields).
CREATE FUNCTION chatstore_refuse_agent_item_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agent items are append-only: UPDATE violates constraint "agent_items_append_only"'
        USING ERRCODE = 'integrity_constraint_violation',
              CONSTRAINT = 'agent_items_append_only';
END
$$;

CREATE TRIGGER agent_items_append_only
    BEFORE UPDATE ON agent_items
    FOR EACH STATEMENT EXECUTE FUNCTION chatstore_refuse_agent_item_update();

-- Pop: the newest item of the session's list, which leaves it (top - 1). A function,
-- not one statement, for its two snapshots: it locks the conversation first, then
-- reads the item with a snapshot taken after the lock, so an item added by a
-- transaction that held the lock before it is seen (one statement would read with the
-- snapshot it started with, and return the item under the new one). Runs with the
-- caller's rights: row-level security applies. No row: no such conversation for this
-- user. A row of NULLs (but the ids): the list is empty.
CREATE FUNCTION chatstore_pop_agent_item(p_user_id text, p_conversation_id bigint)
RETURNS TABLE (conversation_id bigint, user_id text, slot bigint, seq bigint,
               item json, created_at timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    top bigint;
BEGIN
    SELECT c.agent_item_top INTO top
    FROM conversations AS c
    WHERE c.user_id = p_user_id AND c.id = p_conversation_id
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF top = 0 THEN
        RETURN QUERY SELECT p_conversation_id, p_user_id, NULL::bigint, NULL::bigint,
                            NULL::json, NULL::timestamptz;
        RETURN;
    END IF;
    UPDATE conversations AS c SET agent_item_top = top - 1
    WHERE c.user_id = p_user_id AND c.id = p_conversation_id;
    RETURN QUERY
        SELECT i.conversation_id, i.user_id, i.slot, i.seq, i.item, i.created_at
        FROM agent_items AS i
        WHERE i.user_id = p_user_id AND i.conversation_id = p_conversation_id
          AND i.slot = top
        ORDER BY i.seq DESC
        LIMIT 1;
END
$$;

-- Least privilege and row-level security as for messages (0005): chatstore_app may read
-- and insert items, and move the conversation's two counters; no UPDATE, no DELETE.
GRANT SELECT, INSERT (conversation_id, slot, seq, user_id, item) ON agent_items TO chatstore_app;
GRANT UPDATE (agent_item_count, agent_item_top) ON conversations TO chatstore_app;

CREATE POLICY agent_items_tenant_isolation ON agent_items
    TO chatstore_app
    USING (user_id = current_setting('chatstore.user_id', true))
    WITH CHECK (user_id = current_setting('chatstore.user_id', true));

ALTER TABLE agent_items ENABLE ROW LEVEL SECURITY;

-- On a database already distributed by `chatstore distribute`, the new table joins its
-- conversations' shards (by user_id, co-located), as chatstore.citus would have done.
-- Citus names every defaulted column in the INSERT it sends a shard, so chatstore_app
-- may insert those there, as chatstore.citus grants for the other tables. On plain
-- PostgreSQL (or Citus, not distributed yet) this block does nothing.
DO $$
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition
                   WHERE logicalrelid = 'conversations'::regclass) THEN
            EXECUTE $sql$SELECT create_distributed_table('agent_items', 'user_id',
                                                         colocate_with => 'conversations')$sql$;
            GRANT INSERT (created_at) ON agent_items TO chatstore_app;
            GRANT INSERT (agent_item_count, agent_item_top) ON conversations TO chatstore_app;
        END IF;
    END IF;
END
$$;

ALTER TABLE agent_items
    ADD CONSTRAINT agent_items_conversation_fkey
    FOREIGN KEY (user_id, conversation_id)
    REFERENCES conversations (user_id, id) ON DELETE CASCADE;
