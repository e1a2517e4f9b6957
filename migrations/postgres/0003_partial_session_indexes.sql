-- The agent and user indexes of `sessions` leave out sessions without an
-- agent or user id: a filter on either names one, so those entries were
-- never read, only written.
DROP INDEX sessions_agent;
DROP INDEX sessions_user;
CREATE INDEX sessions_agent ON sessions (agent_id) WHERE agent_id IS NOT NULL;
CREATE INDEX sessions_user ON sessions (user_id) WHERE user_id IS NOT NULL;
