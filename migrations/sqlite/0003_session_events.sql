-- Which session each event of the log belongs to. The server appends to the
-- log alone as it decides and fills this table and `sessions` behind it, in
-- batches, so that a decision's commit writes only at the log's end.
CREATE TABLE session_events (
    seq        INTEGER PRIMARY KEY REFERENCES audit_log (seq) ON DELETE CASCADE,
    session_id TEXT NOT NULL
);
CREATE INDEX session_events_session ON session_events (session_id, seq);
INSERT INTO session_events (seq, session_id)
    SELECT seq, session_id FROM audit_log WHERE session_id <> '';
DROP INDEX audit_log_session;

-- Up to which seq of the log `sessions` and `session_events` are filled in;
-- at start the server applies the events after it.
CREATE TABLE sessions_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    applied_seq INTEGER NOT NULL
);
INSERT INTO sessions_state (id, applied_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log;
