-- Retry-safe appends: append_message, append_messages and add_agent_items take the
-- client's key for the request (request_id). A retry with the same key in the same
-- conversation returns what the first call stored and writes nothing, however many
-- retries race: a timeout after the commit no longer stores a message twice.
--
-- The key is kept on the rows it stored, in messages.request_id (agent_items.request_id
-- for agent items): the first holds the key, the n-th (n >= 2) holds the key, a space
-- and n (a key has no blank character, so the two never meet). One column, NULL for
-- every other row: a row of messages' eight columns keeps its 24-byte header (a ninth
-- column, a separate position, would cost a NULL row 8 bytes more), and a retry can
-- tell how many rows the first call sent. Partial unique indexes hold only keyed rows.
--
-- chatstore_append_messages (chatstore_add_agent_items) looks the key up; a key found is
-- returned at once (its rows were committed together, and never change). A key not
-- found is looked up again under the conversation's row lock, the lock every append to
-- it takes (messages_number and add_agent_items update the row): a call racing the
-- first waits for it to commit, then reads what it stored with a snapshot taken after
-- the lock, and only a call that still finds nothing writes. INSERT ... ON CONFLICT DO NOTHING could not do this:
-- messages_number runs BEFORE the conflict is found, so a refused row would still
-- have counted the conversation up (message_count too high, a gap in seq), and one
-- statement's snapshot does not see the rows that the winner of a race committed
-- while the statement waited, so it could not return them.
--
-- Live databases: transactional: false, for CREATE INDEX CONCURRENTLY, which keeps
-- messages readable and writable while it reads the table (twice) and waits for older
-- transactions by design (no lock_timeout there). The columns and CHECKs are metadata
-- only (brief ACCESS EXCLUSIVE locks under lock_timeout, no rewrite, no scan). Every
-- statement may run again: a failed build leaves an INVALID index, which the next apply
-- drops and builds again (chatstore.migrations); the functions come last, so the API
-- finds them only once their indexes are valid. On Citus the columns, CHECKs and
-- indexes reach the shards, and the indexes include user_id, the distribution column.
-- depends: chatstore_0012_agent_items
-- transactional: false
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,require-lock-timeout,ban-drop-constraint

-- Each statement commits on its own (no transaction): SET, not SET LOCAL.
SET lock_timeout = '5s';

ALTER TABLE messages ADD COLUMN IF NOT EXISTS request_id text;

COMMENT ON COLUMN messages.request_id IS
    'The client''s key of a retry-safe append on its first message; on the n-th (n >= 2) the key, a space and n. NULL otherwise.';

-- The API's rule (1-255 characters, no blank character; chatstore._core.request_id),
-- for every client. The length is counted apart: a bounded repeat ({1,255}) of that
-- bracket costs PostgreSQL's regular expressions some 40 us a row, this 1 us. NOT VALID
-- and never validated: every row from before this file holds NULL, which passes, and a
-- VALIDATE would read all of messages. Dropped first so that a second run adds it
-- again instead of failing.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_request_id_check;
ALTER TABLE messages
    ADD CONSTRAINT messages_request_id_check
    CHECK (request_id ~ ('^[^' || chatstore_space_chars() || chatstore_invisible_chars()
                         || chatstore_attaching_chars() || ']+( [1-9][0-9]{0,3})?$')
           AND char_length(split_part(request_id, ' ', 1)) <= 255)
    NOT VALID;

GRANT INSERT (request_id) ON messages TO chatstore_app;

-- The same for agent items.
ALTER TABLE agent_items ADD COLUMN IF NOT EXISTS request_id text;

COMMENT ON COLUMN agent_items.request_id IS
    'The client''s key of a retry-safe add on its first item; on the n-th (n >= 2) the key, a space and n. NULL otherwise.';

ALTER TABLE agent_items DROP CONSTRAINT IF EXISTS agent_items_request_id_check;
ALTER TABLE agent_items
    ADD CONSTRAINT agent_items_request_id_check
    CHECK (request_id ~ ('^[^' || chatstore_space_chars() || chatstore_invisible_chars()
                         || chatstore_attaching_chars() || ']+( [1-9][0-9]{0,3})?$')
           AND char_length(split_part(request_id, ' ', 1)) <= 255)
    NOT VALID;

GRANT INSERT (request_id) ON agent_items TO chatstore_app;

RESET lock_timeout;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS messages_request_id_key
    ON messages (user_id, conversation_id, request_id)
    WHERE request_id IS NOT NULL;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS agent_items_request_id_key
    ON agent_items (user_id, conversation_id, request_id)
    WHERE request_id IS NOT NULL;

-- One keyed append. The key is looked up; not found, again after locking the
-- conversation as messages_number would, with a snapshot taken after the lock (each
-- statement of a function takes its own). Found, the stored rows from the key's first
-- message on, one more than this call sends, so that the caller
-- (chatstore._core.stored_request) can compare roles, contents and their number; not
-- found, the messages inserted, numbered in the order given. No such conversation for this user: the INSERT's messages_number raises
-- messages_conversation_fkey (NotFound), as for an append without a key. Runs with the
-- caller's rights: row-level security applies.
CREATE OR REPLACE FUNCTION chatstore_append_messages(
    p_user_id text, p_conversation_id bigint, p_request_id text,
    p_roles text[], p_contents text[])
RETURNS TABLE (id bigint, conversation_id bigint, user_id text, seq bigint, role text,
               content text, created_at timestamptz, request_id text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    first_seq bigint;
BEGIN
    SELECT m.seq INTO first_seq
    FROM messages AS m
    WHERE m.user_id = p_user_id AND m.conversation_id = p_conversation_id
      AND m.request_id = p_request_id;
    IF NOT FOUND THEN
        PERFORM FROM conversations AS c
        WHERE c.user_id = p_user_id AND c.id = p_conversation_id
        FOR NO KEY UPDATE;
        SELECT m.seq INTO first_seq
        FROM messages AS m
        WHERE m.user_id = p_user_id AND m.conversation_id = p_conversation_id
          AND m.request_id = p_request_id;
    END IF;
    IF first_seq IS NOT NULL THEN
        RETURN QUERY
            SELECT m.id, m.conversation_id, m.user_id, m.seq, m.role, m.content,
                   m.created_at, m.request_id
            FROM messages AS m
            WHERE m.user_id = p_user_id AND m.conversation_id = p_conversation_id
              AND m.seq >= first_seq AND m.seq <= first_seq + cardinality(p_roles)
            ORDER BY m.seq;
        RETURN;
    END IF;
    RETURN QUERY
        INSERT INTO messages AS m (user_id, conversation_id, role, content, request_id)
        SELECT p_user_id, p_conversation_id, n.role, n.content,
               CASE WHEN n.ord = 1 THEN p_request_id ELSE p_request_id || ' ' || n.ord END
        FROM unnest(p_roles, p_contents) WITH ORDINALITY AS n (role, content, ord)
        ORDER BY n.ord
        RETURNING m.id, m.conversation_id, m.user_id, m.seq, m.role, m.content,
                  m.created_at, m.request_id;
END
$$;

COMMENT ON FUNCTION chatstore_append_messages(text, bigint, text, text[], text[]) IS
    'A retry-safe append: the messages stored under this request key in this conversation, else these messages, stored with it.';

-- One keyed add of agent items, as add_agent_items (sql/queries/agent_items.sql) with the
-- key on each item, after the same look-ups and lock. A call's items are adjacent in both
-- slot and seq, so the stored ones are read by slot on agent_items_pkey: from the key's
-- first item on, one more than this call sends, at the same distance between slot and
-- seq. Each says whether it holds the JSON text this call sends at its place (same),
-- so a retry compares without sending the items back. No row: no such conversation
-- for this user. Runs with the caller's rights: row-level security applies.
CREATE OR REPLACE FUNCTION chatstore_add_agent_items(
    p_user_id text, p_conversation_id bigint, p_request_id text,
    p_items json[], p_roles text[], p_contents text[])
RETURNS TABLE (conversation_id bigint, user_id text, slot bigint, seq bigint,
               created_at timestamptz, request_id text, same boolean)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    first_slot bigint;
    first_seq bigint;
    n bigint := cardinality(p_items);
BEGIN
    SELECT i.slot, i.seq INTO first_slot, first_seq
    FROM agent_items AS i
    WHERE i.user_id = p_user_id AND i.conversation_id = p_conversation_id
      AND i.request_id = p_request_id;
    IF NOT FOUND THEN
        PERFORM FROM conversations AS c
        WHERE c.user_id = p_user_id AND c.id = p_conversation_id
        FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        SELECT i.slot, i.seq INTO first_slot, first_seq
        FROM agent_items AS i
        WHERE i.user_id = p_user_id AND i.conversation_id = p_conversation_id
          AND i.request_id = p_request_id;
    END IF;
    IF first_seq IS NOT NULL THEN
        RETURN QUERY
            SELECT i.conversation_id, i.user_id, i.slot, i.seq, i.created_at, i.request_id,
                   i.item::text IS NOT DISTINCT FROM p_items[i.slot - first_slot + 1]::text
            FROM agent_items AS i
            WHERE i.user_id = p_user_id AND i.conversation_id = p_conversation_id
              AND i.slot >= first_slot AND i.slot <= first_slot + n
              AND i.seq = first_seq - first_slot + i.slot
            ORDER BY i.seq;
        RETURN;
    END IF;
    RETURN QUERY
        WITH conversation AS (
            UPDATE conversations AS c
            SET agent_item_count = c.agent_item_count + n,
                agent_item_top = c.agent_item_top + n
            WHERE c.user_id = p_user_id AND c.id = p_conversation_id
            RETURNING c.agent_item_count - n AS seq0, c.agent_item_top - n AS slot0
        ), transcript AS (
            INSERT INTO messages AS m (user_id, conversation_id, role, content)
            SELECT p_user_id, p_conversation_id, t.role, t.content
            FROM conversation,
                 unnest(p_roles, p_contents) WITH ORDINALITY AS t (role, content, ord)
            ORDER BY t.ord
            RETURNING m.seq
        )
        INSERT INTO agent_items AS i (user_id, conversation_id, slot, seq, item, request_id)
        SELECT p_user_id, p_conversation_id, c.slot0 + a.ord, c.seq0 + a.ord, a.item,
               CASE WHEN a.ord = 1 THEN p_request_id ELSE p_request_id || ' ' || a.ord END
        FROM conversation AS c, unnest(p_items) WITH ORDINALITY AS a (item, ord)
        RETURNING i.conversation_id, i.user_id, i.slot, i.seq, i.created_at, i.request_id,
                  true;
END
$$;

COMMENT ON FUNCTION chatstore_add_agent_items(text, bigint, text, json[], text[], text[]) IS
    'A retry-safe add of agent items: the items stored under this request key in this conversation, else these items (and their transcript), stored with it.';
