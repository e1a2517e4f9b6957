-- Approvals: a human says yes (or no) to one exact call before it runs.
CREATE TABLE approvals (
    id              TEXT PRIMARY KEY,
    log_id          TEXT NOT NULL,           -- the approve decision that asked for it
    session_id      TEXT NOT NULL,
    tool_name       TEXT NOT NULL,
    tool_args       TEXT NOT NULL,           -- JSON
    args_digest     TEXT NOT NULL,           -- SHA-256 of the arguments' canonical JSON
    rule_name       TEXT,
    reason          TEXT NOT NULL,
    policy_version  TEXT NOT NULL,
    policy_hash     TEXT NOT NULL,
    requested_by    TEXT NOT NULL,           -- the principal that asked
    status          TEXT NOT NULL,           -- pending | approved | denied | expired
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    resolved_at     TEXT,
    resolved_by     TEXT,
    comment         TEXT,
    consumed_at     TEXT,
    consumed_log_id TEXT
);
CREATE INDEX approvals_status ON approvals (status, created_at);
CREATE INDEX approvals_expiry ON approvals (expires_at) WHERE status = 'pending';

-- Each attempt to deliver a webhook notification.
CREATE TABLE webhook_deliveries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    approval_id TEXT NOT NULL,
    event       TEXT NOT NULL,               -- approval.requested | approval.resolved
    attempt     BIGINT NOT NULL,
    url         TEXT NOT NULL,
    status_code BIGINT,
    error       TEXT,
    at          TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_approval ON webhook_deliveries (approval_id, id);
