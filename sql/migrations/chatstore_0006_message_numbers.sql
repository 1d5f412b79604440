-- Numbers every message within its conversation (seq: 1, 2, 3 ... with no gap and no
-- duplicate) and keeps the conversation's message count and the time of its last
-- message, so that order no longer depends on a global id (Citus hands out identity
-- values from a range per node: an id from a worker can be older than one from the
-- coordinator) and a sidebar needs no COUNT(*).
--
-- The numbers come from one BEFORE INSERT row trigger, messages_number, on every
-- insert path (the API, raw SQL, COPY): it updates the conversation row, which locks
-- it, so appends to one conversation are numbered one after another in the order they
-- take that lock, and a number is never handed out twice. The same UPDATE moves
-- updated_at, sets last_message_at and titles an untitled conversation from its first
-- user message: it replaces the statement trigger messages_bump_conversation of 0004.
--
-- Live databases: this migration only adds nullable columns and swaps triggers (brief
-- ACCESS EXCLUSIVE locks, no rewrite, no scan). Conversations that existed before it
-- have message_count NULL, "not counted yet": the trigger counts their messages at
-- their first new append, and 0007 numbers the old messages in small batches.
-- depends: chatstore_0005_row_level_security
-- squawk-ignore-file ban-drop-function

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

-- Two steps: existing rows keep NULL (not counted yet), new conversations start at 0.
ALTER TABLE conversations
    ADD COLUMN message_count bigint,
    ADD COLUMN last_message_at timestamptz;
ALTER TABLE conversations ALTER COLUMN message_count SET DEFAULT 0;

ALTER TABLE messages ADD COLUMN seq bigint;

COMMENT ON COLUMN conversations.message_count IS 'Messages in this conversation; the seq of the last one.';
COMMENT ON COLUMN conversations.last_message_at IS 'created_at of the last message; NULL before the first.';
COMMENT ON COLUMN messages.seq IS 'Number within the conversation, 1, 2, 3 ... in append order; set by messages_number.';

-- The trigger runs with the inserting role's rights, so row-level security decides which
-- conversation a message may join: as chatstore_app, another user's conversation is not
-- found. chatstore_app therefore may UPDATE the two counters (below); written by hand,
-- they could only disorder that user's own numbering, which messages_pkey still refuses
-- to duplicate. updated_at is moved by conversations_touch_updated_at, which fires
-- because title is in this UPDATE's SET list.
CREATE FUNCTION chatstore_number_message() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations
    SET message_count = coalesce(
            message_count,
            -- Not counted yet (a conversation from before 0006): count it now, under
            -- the row lock this UPDATE holds.
            (SELECT count(*) FROM messages
             WHERE user_id = NEW.user_id AND conversation_id = NEW.conversation_id)
        ) + 1,
        last_message_at = NEW.created_at,
        title = coalesce(title, CASE WHEN NEW.role = 'user' THEN chatstore_title_from(NEW.content) END)
    WHERE user_id = NEW.user_id AND id = NEW.conversation_id
    RETURNING message_count INTO NEW.seq;
    IF NOT FOUND THEN
        -- The error the foreign key would raise after this trigger, raised first and
        -- worded as PostgreSQL words it (Citus passes on a shard's message, not its fields).
        RAISE EXCEPTION 'insert or update on table "messages" violates foreign key constraint "messages_conversation_fkey"'
            USING ERRCODE = 'foreign_key_violation',
                  CONSTRAINT = 'messages_conversation_fkey',
                  DETAIL = format('Key (user_id, conversation_id)=(%s, %s) is not present in table "conversations".',
                                  NEW.user_id, NEW.conversation_id);
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION chatstore_number_message() IS
    'BEFORE INSERT row trigger on messages: numbers the message under its conversation''s row lock and updates the conversation.';

DROP TRIGGER messages_bump_conversation ON messages;
DROP FUNCTION chatstore_messages_bump_conversation();

CREATE TRIGGER messages_number
    BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION chatstore_number_message();

-- updated_at moves on a rename and on every new message (messages_number names title in
-- its SET list), not when 0007 or an operator fills in the counters.
DROP TRIGGER conversations_touch_updated_at ON conversations;
CREATE TRIGGER conversations_touch_updated_at
    BEFORE UPDATE OF title ON conversations
    FOR EACH ROW EXECUTE FUNCTION chatstore_touch_updated_at();

GRANT UPDATE (message_count, last_message_at) ON conversations TO chatstore_app;

-- The append-only error names its constraint in the message too: Citus passes on a
-- shard's message but not its constraint field, and chatstore maps errors by that name.
CREATE OR REPLACE FUNCTION chatstore_refuse_message_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'messages are append-only: UPDATE violates constraint "messages_append_only"'
        USING ERRCODE = 'integrity_constraint_violation',
              CONSTRAINT = 'messages_append_only';
END
$$;
