-- Which session each event of the log belongs to. The server appends to the
-- log alone as it decides, and fills this table and `sessions` in behind
-- it, so that a decision's commit writes only at the log's end.
CREATE TABLE session_events (
    session_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,             -- audit_log.seq
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
INSERT INTO session_events (session_id, seq)
    SELECT session_id, seq FROM audit_log WHERE session_id <> '';
DROP INDEX audit_log_session;

-- A row removed from the log (by retention) leaves the index with it.
CREATE TRIGGER audit_log_removed AFTER DELETE ON audit_log BEGIN
    DELETE FROM session_events WHERE session_id = old.session_id AND seq = old.seq;
END;

-- The seq of the last event of the log that a session's row counts.
ALTER TABLE sessions ADD COLUMN log_seq INTEGER NOT NULL DEFAULT 0;

-- Up to which seq of the log `sessions` and `session_events` are filled in;
-- at start the server counts the events after it (those a row does not
-- count already).
CREATE TABLE sessions_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    applied_seq INTEGER NOT NULL
);
INSERT INTO sessions_state (id, applied_seq) SELECT 1, COALESCE(MAX(seq), 0) FROM audit_log;
