-- Numbers the messages that existed before 0006 and counts their conversations, in
-- batches of 500 conversations, each its own short transaction, while the service keeps
-- appending. Then makes both columns NOT NULL without a long lock, and drops the
-- trigger's "not counted yet" branch, which no row needs any more.
-- depends: chatstore_0006_message_numbers
-- transactional: false
--
-- Runs outside a transaction (yoyo's autocommit) so that the DO block can COMMIT
-- between batches: no lock is held across batches, and a failure keeps the batches
-- done. It is safe to apply again after any failure: every step finds what is left.
-- On a fresh database there is nothing to number and it takes milliseconds.
--
-- messages_append_only refuses every UPDATE, so it is disabled while the old rows get
-- their numbers (chatstore_app has no UPDATE privilege on messages either way: only the
-- owner could edit a message in that window) and enabled again at the end.
-- squawk assumes one transaction per file; here each statement is its own, so NOT VALID
-- and VALIDATE do not share one, and the constraints dropped are this file's temporary
-- NOT NULL checks.
-- squawk-ignore-file constraint-missing-not-valid,ban-drop-constraint

SET lock_timeout = '5s';

ALTER TABLE messages DISABLE TRIGGER messages_append_only;

DO $$
DECLARE
    after_user text := '';
    after_id bigint := 0;
BEGIN
    LOOP
        -- The next 500 conversations in key order, locked for this batch: their appends
        -- wait for it (milliseconds), appends to every other conversation go on.
        WITH batch AS (
            SELECT user_id, id, message_count
            FROM conversations
            WHERE (user_id, id) > (after_user, after_id)
            ORDER BY user_id, id
            LIMIT 500
            FOR UPDATE
        ),
        -- Messages from before 0006, numbered 1 .. k in id order (their old order). In a
        -- conversation the trigger has counted since (an append after 0006), they are the
        -- k it counted, and the new ones already carry k + 1 onwards.
        numbered AS (
            UPDATE messages AS m
            SET seq = old.seq
            FROM (
                SELECT m2.conversation_id, m2.id,
                       row_number() OVER (PARTITION BY m2.conversation_id ORDER BY m2.id) AS seq
                FROM batch
                JOIN messages AS m2 ON m2.user_id = batch.user_id AND m2.conversation_id = batch.id
                WHERE m2.seq IS NULL
            ) AS old
            WHERE m.conversation_id = old.conversation_id AND m.id = old.id
            RETURNING m.user_id, m.conversation_id, m.seq, m.created_at
        ),
        counted AS (
            UPDATE conversations AS c
            SET message_count = coalesce(
                    (SELECT max(n.seq) FROM numbered AS n
                     WHERE n.user_id = c.user_id AND n.conversation_id = c.id), 0),
                last_message_at =
                    (SELECT max(n.created_at) FROM numbered AS n
                     WHERE n.user_id = c.user_id AND n.conversation_id = c.id)
            FROM batch
            WHERE c.user_id = batch.user_id AND c.id = batch.id AND batch.message_count IS NULL
        )
        SELECT user_id, id INTO after_user, after_id
        FROM batch
        ORDER BY user_id DESC, id DESC
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        COMMIT;
    END LOOP;
END
$$;

ALTER TABLE messages ENABLE TRIGGER messages_append_only;

-- NOT NULL without a long lock: a NOT VALID check is validated under SHARE UPDATE
-- EXCLUSIVE (reads and writes go on), then SET NOT NULL uses it instead of a scan.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_seq_not_null;
ALTER TABLE messages ADD CONSTRAINT messages_seq_not_null CHECK (seq IS NOT NULL) NOT VALID;
ALTER TABLE messages VALIDATE CONSTRAINT messages_seq_not_null;
ALTER TABLE messages ALTER COLUMN seq SET NOT NULL;
ALTER TABLE messages DROP CONSTRAINT messages_seq_not_null;

ALTER TABLE conversations DROP CONSTRAINT IF EXISTS conversations_message_count_not_null;
ALTER TABLE conversations
    ADD CONSTRAINT conversations_message_count_not_null CHECK (message_count IS NOT NULL) NOT VALID;
ALTER TABLE conversations VALIDATE CONSTRAINT conversations_message_count_not_null;
ALTER TABLE conversations ALTER COLUMN message_count SET NOT NULL;
ALTER TABLE conversations DROP CONSTRAINT conversations_message_count_not_null;

ALTER TABLE conversations
    ADD CONSTRAINT conversations_message_count_check CHECK (message_count >= 0) NOT VALID;
ALTER TABLE conversations VALIDATE CONSTRAINT conversations_message_count_check;

-- Every conversation is counted now: the trigger's final form.
CREATE OR REPLACE FUNCTION chatstore_number_message() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations
    SET message_count = message_count + 1,
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

RESET lock_timeout;
