-- Back to 0004's triggers: message order by id, the statement trigger that bumps the
-- conversation. The numbers and counters are dropped (brief ACCESS EXCLUSIVE locks).
-- squawk-ignore-file ban-drop-column,ban-drop-function

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

REVOKE UPDATE (message_count, last_message_at) ON conversations FROM chatstore_app;

-- As in 0004.
CREATE OR REPLACE FUNCTION chatstore_refuse_message_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'messages are append-only: UPDATE is not allowed'
        USING ERRCODE = 'integrity_constraint_violation',
              CONSTRAINT = 'messages_append_only';
END
$$;

DROP TRIGGER conversations_touch_updated_at ON conversations;
CREATE TRIGGER conversations_touch_updated_at
    BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION chatstore_touch_updated_at();

DROP TRIGGER messages_number ON messages;
DROP FUNCTION chatstore_number_message();

-- As in 0004.
CREATE FUNCTION chatstore_messages_bump_conversation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched record;
BEGIN
    FOR touched IN
        SELECT DISTINCT ON (user_id, conversation_id)
               user_id, conversation_id,
               CASE WHEN role = 'user' THEN content END AS first_user_content
        FROM new_messages
        ORDER BY user_id, conversation_id, role = 'user' DESC, id
    LOOP
        UPDATE conversations
        SET title = coalesce(title, chatstore_title_from(touched.first_user_content))
        WHERE user_id = touched.user_id AND id = touched.conversation_id;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_bump_conversation
    AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION chatstore_messages_bump_conversation();

ALTER TABLE messages DROP COLUMN seq;
ALTER TABLE conversations DROP COLUMN message_count, DROP COLUMN last_message_at;
