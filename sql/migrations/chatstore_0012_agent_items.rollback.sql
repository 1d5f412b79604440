-- Drops the agent's memory: every stored agent item goes (the transcript in messages
-- stays), and the conversations lose their two counters (brief ACCESS EXCLUSIVE locks).
-- squawk-ignore-file ban-drop-column,ban-drop-constraint,ban-drop-table,ban-drop-function

-- Fail fast rather than queue every query behind a lock we are waiting for.
SET LOCAL lock_timeout = '5s';

DROP FUNCTION chatstore_pop_agent_item(text, bigint);
DROP TABLE agent_items;
DROP FUNCTION chatstore_refuse_agent_item_update();

REVOKE UPDATE (agent_item_count, agent_item_top) ON conversations FROM chatstore_app;
ALTER TABLE conversations
    DROP CONSTRAINT conversations_agent_items_check,
    DROP COLUMN agent_item_count,
    DROP COLUMN agent_item_top;
