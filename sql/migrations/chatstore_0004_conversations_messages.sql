-- The chatbot's tables: conversations (one per chat thread, owned by a user) and
-- messages (append-only turns of a conversation).
--
-- Keys lead with the owner: conversations are keyed (user_id, id), and a message
-- points at its conversation through (user_id, conversation_id). That composite
-- foreign key is how the database itself forces a message's owner to equal its
-- conversation's owner, and every read can be scoped by user_id on an index.
--
-- Two indexes per table, no more; docs/schema.md shows each one in EXPLAIN:
--   conversations_pkey (user_id, id)        get one conversation; cascade from users
--   conversations_user_id_updated_at_idx    a user's conversations by recency, keyset
--   messages_pkey (conversation_id, id)     last N messages in order; cascade delete
-- Message order is id order: ids come from one sequence, so messages that share a
-- created_at (one transaction, one batch) still have a total, append-ordered sequence.
-- depends: chatstore_0003_tasks_by_owner_index

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

CREATE TABLE conversations (
    id         bigint GENERATED ALWAYS AS IDENTITY,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    user_id    text NOT NULL,
    -- NULL until set by the caller or taken from the first user message.
    title      text,
    CONSTRAINT conversations_pkey PRIMARY KEY (user_id, id),
    CONSTRAINT conversations_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    -- 1-200 characters with no whitespace at either end (the API trims).
    CONSTRAINT conversations_title_check
        CHECK (char_length(title) >= 1 AND char_length(title) <= 200 AND title !~ '^[[:space:]]|[[:space:]]$'),
    CONSTRAINT conversations_updated_at_check CHECK (updated_at >= created_at)
);

CREATE INDEX conversations_user_id_updated_at_idx
    ON conversations (user_id, updated_at, id);

COMMENT ON TABLE conversations IS 'A chat thread of one user; updated_at moves on any change and on every new message.';

-- Fixed-width columns first: no alignment padding between them.
CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY,
    conversation_id bigint NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    user_id         text NOT NULL,
    role            text NOT NULL,
    content         text NOT NULL,
    CONSTRAINT messages_pkey PRIMARY KEY (conversation_id, id),
    CONSTRAINT messages_conversation_fkey
        FOREIGN KEY (user_id, conversation_id)
        REFERENCES conversations (user_id, id) ON DELETE CASCADE,
    -- text + CHECK rather than an enum: a value can be added or removed by
    -- replacing this constraint, and a rollback can undo that.
    CONSTRAINT messages_role_check CHECK (role IN ('user', 'assistant')),
    -- Not blank, and at most 32,000 characters: a long assistant answer (about
    -- 8,000 tokens) fits; a runaway payload does not.
    CONSTRAINT messages_content_check
        CHECK (char_length(content) <= 32000 AND content ~ '[^[:space:]]')
);

COMMENT ON TABLE messages IS 'Append-only turns of a conversation, in id order; UPDATE is refused.';

CREATE TRIGGER conversations_touch_updated_at
    BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION chatstore_touch_updated_at();

-- A title made from a message: whitespace runs folded to one space, cut to 200
-- characters, trimmed; NULL when nothing printable is left.
CREATE FUNCTION chatstore_title_from(content text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN nullif(btrim(left(btrim(regexp_replace(left(content, 1000), '[[:space:]]+', ' ', 'g')), 200)), '');

-- Once per INSERT statement, however many messages it adds: bump each touched
-- conversation (its BEFORE UPDATE trigger sets updated_at) and give an untitled
-- one the title of its first new user message.
-- One UPDATE per conversation, by its primary key, in key order: PL/pgSQL caches a
-- statement's plan for the session at its first run, and a join with the new rows
-- planned for a large first batch would seq-scan conversations on every later
-- append of that session. Key order also makes concurrent batches lock alike.
CREATE FUNCTION chatstore_messages_bump_conversation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched record;
BEGIN
    FOR touched IN
        SELECT DISTINCT ON (user_id, conversation_id)
               user_id, conversation_id,
               CASE WHEN role = 'user' THEN content END AS first_user_content
        FROM new_messages
        ORDER BY user_id, conversation_id, role = 'user' DESC, id
    LOOP
        UPDATE conversations
        SET title = coalesce(title, chatstore_title_from(touched.first_user_content))
        WHERE user_id = touched.user_id AND id = touched.conversation_id;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_bump_conversation
    AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION chatstore_messages_bump_conversation();

-- Messages are append-only. A statement trigger refuses every UPDATE, even one
-- that matches no row. The error carries the trigger's name as its constraint.
CREATE FUNCTION chatstore_refuse_message_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'messages are append-only: UPDATE is not allowed'
        USING ERRCODE = 'integrity_constraint_violation',
              CONSTRAINT = 'messages_append_only';
END
$$;

CREATE TRIGGER messages_append_only
    BEFORE UPDATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION chatstore_refuse_message_update();
