-- Named queries on users, loaded by chatstore/_sql.py and called by name from
-- chatstore.aio and chatstore.queries. Each block: "-- name --", a description, the SQL.

-- create_user --
-- Insert a user (id from the auth provider); a taken id or email is a unique violation.
INSERT INTO users (id, email, name)
VALUES (%(id)s, %(email)s, %(name)s::text)
RETURNING id, email, name, created_at;

-- get_user --
-- One user by id (users_pkey).
SELECT id, email, name, created_at
FROM users
WHERE id = %(user_id)s;

-- delete_user --
-- Delete a user; their tasks, conversations and messages go with them (ON DELETE CASCADE).
DELETE FROM users
WHERE id = %(user_id)s
RETURNING id;
