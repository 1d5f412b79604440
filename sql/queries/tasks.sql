-- Named queries on tasks (what the chatbot's tools call), loaded by chatstore/_sql.py and
-- called by name from chatstore.aio and chatstore.queries. Each block: "-- name --", a
-- description, the SQL. Every statement is scoped by user_id.

-- add_task --
-- Add a task for an existing user; no row returned means no such user.
INSERT INTO tasks (user_id, title, description)
SELECT u.id, %(title)s::text, %(description)s::text
FROM users AS u
WHERE u.id = %(user_id)s
RETURNING id, user_id, title, description, completed, created_at, updated_at;

-- list_tasks --
-- A user's tasks in id order whose completed flag is in the given set (tasks_pkey; the
-- status is a filter on the user's few rows). No row: no task, or no such user; the
-- caller asks get_user which.
SELECT id, user_id, title, description, completed, created_at, updated_at
FROM tasks
WHERE user_id = %(user_id)s AND completed = ANY (%(completed)s::boolean[])
ORDER BY id;

-- get_task --
-- One task of a user.
SELECT id, user_id, title, description, completed, created_at, updated_at
FROM tasks
WHERE user_id = %(user_id)s AND id = %(task_id)s;

-- update_task --
-- Change a task's title and/or description (NULL: keep); tasks_touch_updated_at moves
-- updated_at.
UPDATE tasks
SET title = coalesce(%(title)s::text, title),
    description = coalesce(%(description)s::text, description)
WHERE user_id = %(user_id)s AND id = %(task_id)s
RETURNING id, user_id, title, description, completed, created_at, updated_at;

-- complete_task --
-- Mark a task of a user completed (idempotent).
UPDATE tasks
SET completed = true
WHERE user_id = %(user_id)s AND id = %(task_id)s
RETURNING id, user_id, title, description, completed, created_at, updated_at;

-- delete_task --
-- Delete a task of a user.
DELETE FROM tasks
WHERE user_id = %(user_id)s AND id = %(task_id)s
RETURNING id;
