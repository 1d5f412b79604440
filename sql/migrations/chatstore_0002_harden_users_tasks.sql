-- Makes the Phase II tables sound: text and timestamptz columns, owners NOT NULL,
-- a user's deletion cascading to their tasks, a bigint identity key, CHECKs, and an
-- updated_at that the database keeps true.
--
-- Runs unchanged on a fresh database and on an adopted Phase II one, so both end
-- with the same schema. On Phase II data it fails, changing nothing, when a row
-- breaks a rule below (a task with no owner, a blank title): the error names the
-- constraint; fix or delete those rows and apply again.
--
-- Locks: users and tasks are held ACCESS EXCLUSIVE for the length of this
-- migration. varchar -> text is binary compatible and timestamp -> timestamptz
-- under a UTC session needs no rewrite (PostgreSQL 12+), but integer -> bigint
-- rewrites tasks. A todo app's tasks table is small; see docs/migrations.md before
-- doing the same to a large table.
-- depends: chatstore_0001_phase2_baseline
-- Each rule below is a lock on a large table; the header above says why it is
-- accepted here (small tables, one short transaction).
-- squawk-ignore-file changing-column-type,adding-not-nullable-field,constraint-missing-not-valid,adding-foreign-key-constraint,ban-alter-identity,ban-drop-constraint,ban-drop-default,ban-drop-sequence

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

-- Phase II wrote naive UTC (utcnow): read the existing values as UTC.
SET LOCAL timezone = 'UTC';

CREATE FUNCTION chatstore_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- now() is the transaction's start time; greatest() keeps updated_at from
    -- moving backwards when an older transaction commits after a newer one.
    NEW.updated_at := greatest(now(), OLD.updated_at);
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION chatstore_touch_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at to now(), never earlier than before.';

-- Phase II left these nullable; give old rows the values new rows get.
UPDATE users SET created_at = now() WHERE created_at IS NULL;
UPDATE tasks SET completed = false WHERE completed IS NULL;
UPDATE tasks SET created_at = now() WHERE created_at IS NULL;
UPDATE tasks SET updated_at = created_at WHERE updated_at IS NULL;

-- The foreign key is re-created below, with ON DELETE CASCADE, once both sides are text.
ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_fkey;

ALTER TABLE users
    ALTER COLUMN id TYPE text,
    ALTER COLUMN email TYPE text,
    ALTER COLUMN name TYPE text,
    ALTER COLUMN created_at TYPE timestamptz,
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL,
    -- Ids come from the auth provider: opaque, but never empty or padded.
    ADD CONSTRAINT users_id_check
        CHECK (char_length(id) >= 1 AND char_length(id) <= 255 AND id !~ '[[:space:]]'),
    -- 320 is the longest address RFC 5321 allows; the shape check is deliberately loose.
    ADD CONSTRAINT users_email_check
        CHECK (char_length(email) <= 320 AND email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    ADD CONSTRAINT users_name_check CHECK (char_length(name) <= 200);

-- The serial's sequence goes; an identity column takes its place below.
ALTER TABLE tasks ALTER COLUMN id DROP DEFAULT;
DROP SEQUENCE tasks_id_seq;

ALTER TABLE tasks
    ALTER COLUMN id TYPE bigint,
    ALTER COLUMN user_id TYPE text,
    ALTER COLUMN user_id SET NOT NULL,
    ALTER COLUMN title TYPE text,
    ALTER COLUMN completed SET NOT NULL,
    ALTER COLUMN created_at TYPE timestamptz,
    ALTER COLUMN created_at SET DEFAULT now(),
    ALTER COLUMN created_at SET NOT NULL,
    ALTER COLUMN updated_at TYPE timestamptz,
    ALTER COLUMN updated_at SET DEFAULT now(),
    ALTER COLUMN updated_at SET NOT NULL,
    ADD CONSTRAINT tasks_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    -- Not blank, as in Phase II's validation; the API also trims what it stores.
    ADD CONSTRAINT tasks_title_check
        CHECK (char_length(title) <= 200 AND title ~ '[^[:space:]]'),
    ADD CONSTRAINT tasks_description_check CHECK (char_length(description) <= 10000);

-- GENERATED ALWAYS: the database alone assigns ids (an explicit id needs
-- OVERRIDING SYSTEM VALUE, which nothing in chatstore uses).
ALTER TABLE tasks ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
-- Continue after the highest existing id (a DO block, so that yoyo prints nothing).
DO $$
BEGIN
    PERFORM setval(pg_get_serial_sequence('tasks', 'id'), coalesce(max(id), 0) + 1, false)
    FROM tasks;
END
$$;

CREATE TRIGGER tasks_touch_updated_at
    BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION chatstore_touch_updated_at();
