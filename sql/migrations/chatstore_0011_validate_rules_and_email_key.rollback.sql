-- Back to the exact-case unique constraint, and to 0010's CHECKs not yet validated.
-- transactional: false
-- squawk assumes one transaction per file; here each statement is its own. The index
-- build waits for older transactions by design (no lock_timeout); no client names it.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,ban-drop-constraint,constraint-missing-not-valid,disallowed-unique-constraint,require-lock-timeout,renaming-object

-- The build waits for older transactions by design: no lock_timeout for it.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_exact_key ON users (email);

SET lock_timeout = '5s';

ALTER INDEX IF EXISTS users_email_key RENAME TO users_email_lower_key;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_exact_key;
DROP INDEX CONCURRENTLY IF EXISTS users_email_lower_key;

-- A validated CHECK cannot be marked unvalidated: each is added back NOT VALID.
ALTER TABLE messages
    DROP CONSTRAINT messages_content_check,
    ADD CONSTRAINT messages_content_check
        CHECK (char_length(content) <= 32000 AND NOT chatstore_is_blank(content)) NOT VALID;
ALTER TABLE conversations
    DROP CONSTRAINT conversations_title_check,
    ADD CONSTRAINT conversations_title_check
        CHECK (char_length(title) >= 1 AND char_length(title) <= 200
               AND title = chatstore_trim(title)) NOT VALID;
ALTER TABLE tasks
    DROP CONSTRAINT tasks_title_check,
    ADD CONSTRAINT tasks_title_check
        CHECK (char_length(title) >= 1 AND char_length(title) <= 200
               AND title = chatstore_trim(title)) NOT VALID;
ALTER TABLE users
    DROP CONSTRAINT users_id_check,
    ADD CONSTRAINT users_id_check
        CHECK (char_length(id) >= 1 AND char_length(id) <= 255
               AND id !~ ('[' || chatstore_space_chars() || chatstore_invisible_chars()
                          || chatstore_attaching_chars() || ']')) NOT VALID,
    DROP CONSTRAINT users_email_check,
    ADD CONSTRAINT users_email_check
        CHECK (char_length(email) <= 320
               AND email ~ ('^[^@' || chatstore_space_chars() || chatstore_invisible_chars()
                            || ']+@[^@' || chatstore_space_chars() || chatstore_invisible_chars()
                            || ']+$')) NOT VALID;

RESET lock_timeout;
