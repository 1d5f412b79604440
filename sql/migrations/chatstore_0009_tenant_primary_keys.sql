-- Swaps the primary keys of tasks and messages for the tenant keys 0008 built: each
-- ADD CONSTRAINT ... USING INDEX takes the finished index as it is (no build, no scan:
-- the columns are already NOT NULL) and renames it to <table>_pkey. The old keys'
-- indexes go with their constraints: nothing references them.
--
-- Locks: ACCESS EXCLUSIVE on tasks and on messages for milliseconds, under lock_timeout.
-- messages.id stays, as the identity column it was: a handle a record carries, no
-- longer a key or an order (order is seq). Nothing looks a message up by id alone.
-- depends: chatstore_0008_tenant_keys_concurrently
-- squawk-ignore-file ban-drop-constraint

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

ALTER TABLE tasks
    DROP CONSTRAINT tasks_pkey,
    ADD CONSTRAINT tasks_pkey PRIMARY KEY USING INDEX tasks_user_id_id_key;

ALTER TABLE messages
    DROP CONSTRAINT messages_pkey,
    ADD CONSTRAINT messages_pkey PRIMARY KEY USING INDEX messages_user_id_conversation_id_seq_key;

COMMENT ON TABLE messages IS 'Append-only turns of a conversation, numbered by seq; UPDATE is refused.';
