-- Validates 0010's CHECKs on the rows already there, and makes e-mail addresses unique
-- whatever their case: ALICE@EX.COM can no longer register beside alice@ex.com. The
-- address is stored as given; uniqueness is on lower(email).
-- transactional: false
--
-- Phase II (or any earlier) data may hold addresses that differ only by case. This
-- migration does not choose which account wins: it stops, changing nothing, and lists
-- them; merge or change those accounts, then apply again. A row that breaks a 0010
-- rule (a title or message that is blank, a padded title) stops it the same way, with
-- the constraint's name.
--
-- Each statement is its own transaction (autocommit): VALIDATE takes SHARE UPDATE
-- EXCLUSIVE (reads and writes go on), the index is built CONCURRENTLY, and the swap of
-- users_email_key is two statements of milliseconds under lock_timeout; between them
-- the new index already refuses duplicates. It is safe to apply again after a failure.
-- depends: chatstore_0010_unicode_blank_rule
-- squawk assumes one transaction per file; here each statement is its own. No client
-- names the index; the rename keeps the name chatstore's error mapping reads.
-- squawk-ignore-file ban-concurrent-index-creation-in-transaction,ban-drop-constraint,renaming-object

SET lock_timeout = '5s';

ALTER TABLE messages VALIDATE CONSTRAINT messages_content_check;
ALTER TABLE conversations VALIDATE CONSTRAINT conversations_title_check;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_title_check;
ALTER TABLE users VALIDATE CONSTRAINT users_id_check;
ALTER TABLE users VALIDATE CONSTRAINT users_email_check;

DO $$
DECLARE
    clashes text;
    how_many bigint;
BEGIN
    SELECT string_agg(addresses, '; '), count(*)
    INTO clashes, how_many
    FROM (
        SELECT string_agg(email, ', ' ORDER BY email) AS addresses
        FROM users
        GROUP BY lower(email)
        HAVING count(*) > 1
        ORDER BY lower(email)
        LIMIT 20
    ) AS shown;
    IF how_many > 0 THEN
        RAISE EXCEPTION 'users hold e-mail addresses that differ only by case (first %): %',
            how_many, clashes
            USING ERRCODE = 'unique_violation',
                  HINT = 'Merge or change those accounts, then apply this migration again.';
    END IF;
END
$$;

-- The build waits for older transactions by design: no lock_timeout for it.
RESET lock_timeout;
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_lower_key ON users (lower(email));
SET lock_timeout = '5s';

-- The case-insensitive index takes the old constraint's name, which chatstore maps to
-- AlreadyExists ("a user with this email already exists").
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_key;
ALTER INDEX IF EXISTS users_email_lower_key RENAME TO users_email_key;

RESET lock_timeout;
