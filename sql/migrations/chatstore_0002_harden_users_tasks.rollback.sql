-- Returns users and tasks to their Phase II shape (types, nullability, serial key,
-- foreign key without cascade). Rows are kept; timestamps become naive UTC again.
-- Restores Phase II's legacy types on purpose.
-- squawk-ignore-file changing-column-type,constraint-missing-not-valid,adding-foreign-key-constraint,ban-alter-identity,ban-drop-constraint,ban-drop-not-null,ban-drop-function,prefer-bigint-over-int,prefer-text-field,prefer-timestamp-tz

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

SET LOCAL timezone = 'UTC';

DROP TRIGGER tasks_touch_updated_at ON tasks;
DROP FUNCTION chatstore_touch_updated_at();

ALTER TABLE tasks DROP CONSTRAINT tasks_user_id_fkey;

ALTER TABLE tasks ALTER COLUMN id DROP IDENTITY;
CREATE SEQUENCE tasks_id_seq AS integer OWNED BY tasks.id;

ALTER TABLE tasks
    DROP CONSTRAINT tasks_title_check,
    DROP CONSTRAINT tasks_description_check,
    ALTER COLUMN id TYPE integer,
    ALTER COLUMN id SET DEFAULT nextval('tasks_id_seq'),
    ALTER COLUMN user_id TYPE varchar,
    ALTER COLUMN user_id DROP NOT NULL,
    ALTER COLUMN title TYPE varchar(200),
    ALTER COLUMN completed DROP NOT NULL,
    ALTER COLUMN created_at TYPE timestamp,
    ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP,
    ALTER COLUMN created_at DROP NOT NULL,
    ALTER COLUMN updated_at TYPE timestamp,
    ALTER COLUMN updated_at SET DEFAULT CURRENT_TIMESTAMP,
    ALTER COLUMN updated_at DROP NOT NULL;

DO $$
BEGIN
    PERFORM setval('tasks_id_seq', coalesce(max(id), 0) + 1, false) FROM tasks;
END
$$;

ALTER TABLE users
    DROP CONSTRAINT users_id_check,
    DROP CONSTRAINT users_email_check,
    DROP CONSTRAINT users_name_check,
    ALTER COLUMN id TYPE varchar,
    ALTER COLUMN email TYPE varchar,
    ALTER COLUMN name TYPE varchar,
    ALTER COLUMN created_at TYPE timestamp,
    ALTER COLUMN created_at SET DEFAULT CURRENT_TIMESTAMP,
    ALTER COLUMN created_at DROP NOT NULL;

ALTER TABLE tasks
    ADD CONSTRAINT tasks_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);
