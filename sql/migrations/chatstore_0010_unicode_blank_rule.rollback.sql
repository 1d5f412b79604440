-- Back to the [[:space:]] CHECKs and 0004's title function. Not online: each CHECK is
-- added validated, scanning its table under lock (a rollback is a repair). Task titles
-- trimmed by 0010 stay trimmed.
-- squawk-ignore-file ban-drop-constraint,constraint-missing-not-valid,ban-drop-function

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

ALTER TABLE messages
    DROP CONSTRAINT messages_content_check,
    ADD CONSTRAINT messages_content_check
        CHECK (char_length(content) <= 32000 AND content ~ '[^[:space:]]');

ALTER TABLE conversations
    DROP CONSTRAINT conversations_title_check,
    ADD CONSTRAINT conversations_title_check
        CHECK (char_length(title) >= 1 AND char_length(title) <= 200 AND title !~ '^[[:space:]]|[[:space:]]$');

ALTER TABLE tasks
    DROP CONSTRAINT tasks_title_check,
    ADD CONSTRAINT tasks_title_check
        CHECK (char_length(title) <= 200 AND title ~ '[^[:space:]]');

ALTER TABLE users
    DROP CONSTRAINT users_id_check,
    ADD CONSTRAINT users_id_check
        CHECK (char_length(id) >= 1 AND char_length(id) <= 255 AND id !~ '[[:space:]]'),
    DROP CONSTRAINT users_email_check,
    ADD CONSTRAINT users_email_check
        CHECK (char_length(email) <= 320 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$');

-- As in 0004.
CREATE OR REPLACE FUNCTION chatstore_title_from(content text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(btrim(left(btrim(regexp_replace(left(content, 1000), '[[:space:]]+', ' ', 'g')), 200)), '');

DROP FUNCTION chatstore_cut(text, integer);
DROP FUNCTION chatstore_trim(text);
DROP FUNCTION chatstore_is_blank(text);
DROP FUNCTION chatstore_attaching_chars();
DROP FUNCTION chatstore_invisible_chars();
DROP FUNCTION chatstore_space_chars();
