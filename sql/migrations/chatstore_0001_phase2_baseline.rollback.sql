-- Drops the Phase II tables and all their rows.
-- Only ever roll this back on a database that chatstore created: on an adopted
-- Phase II database it deletes the application's users and tasks.
-- squawk-ignore-file ban-drop-table

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

DROP TABLE tasks;
DROP TABLE users;
