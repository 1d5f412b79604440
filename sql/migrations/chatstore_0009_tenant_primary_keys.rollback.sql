-- Back to the old primary keys, with 0008's indexes beside them. Not online: each
-- index is built under the table's lock (a rollback is a repair, not a deployment).
-- squawk-ignore-file ban-drop-constraint,require-concurrent-index-creation,disallowed-unique-constraint,adding-serial-primary-key-field,constraint-missing-not-valid

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

ALTER TABLE tasks DROP CONSTRAINT tasks_pkey;
CREATE UNIQUE INDEX tasks_user_id_id_key ON tasks (user_id, id);
ALTER TABLE tasks ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

ALTER TABLE messages DROP CONSTRAINT messages_pkey;
CREATE UNIQUE INDEX messages_user_id_conversation_id_seq_key
    ON messages (user_id, conversation_id, seq);
ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (conversation_id, id);

COMMENT ON TABLE messages IS 'Append-only turns of a conversation, in id order; UPDATE is refused.';
