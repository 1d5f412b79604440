-- Back to 0006's state: the counters may be NULL again and the trigger counts a
-- conversation it finds uncounted. The numbers given to old messages stay (0006's
-- rollback drops the column).
-- squawk-ignore-file ban-drop-not-null,ban-drop-constraint

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

ALTER TABLE conversations DROP CONSTRAINT conversations_message_count_check;
ALTER TABLE conversations ALTER COLUMN message_count DROP NOT NULL;
ALTER TABLE messages ALTER COLUMN seq DROP NOT NULL;

-- As in 0006.
CREATE OR REPLACE FUNCTION chatstore_number_message() RETURNS trigger
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
