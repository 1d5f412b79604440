-- Drops the chatbot's tables, with every conversation and message in them.
-- squawk-ignore-file ban-drop-table,ban-drop-function

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

DROP TABLE messages;
DROP TABLE conversations;
DROP FUNCTION chatstore_refuse_message_update();
DROP FUNCTION chatstore_messages_bump_conversation();
DROP FUNCTION chatstore_title_from(text);
