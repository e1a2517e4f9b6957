-- The audit log: an append-only chain of events. Each row's hash is an
-- HMAC over its own columns and the previous row's hash, so altering or
-- removing a row breaks the chain at that row. Columns the HMAC covers are
-- kept as the exact text that was hashed.
CREATE TABLE audit_log (
    seq            BIGINT PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL,            -- decision | result | approval | retention
    ref_id         TEXT,                     -- result: the decision's id; approval events: the approval's
    session_id     TEXT NOT NULL,
    ts             TEXT NOT NULL,            -- RFC 3339, UTC, microseconds
    tool_name      TEXT,
    tool_args      TEXT,                     -- JSON
    agent_id       TEXT,
    user_id        TEXT,
    metadata       TEXT,                     -- JSON
    decision       TEXT,                     -- allow | deny | approve
    rule_name      TEXT,
    reason         TEXT,
    policy_version TEXT,
    policy_hash    TEXT,
    principal      TEXT,                     -- who asked: key id, JWT subject or client address
    body           TEXT NOT NULL,            -- JSON: the trace for decisions, the report for results
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX audit_log_session ON audit_log (session_id, seq);
CREATE INDEX audit_log_ref ON audit_log (ref_id) WHERE ref_id IS NOT NULL;
CREATE INDEX audit_log_ts ON audit_log (ts);

-- Where the chain starts (after retention removed older rows) and where it
-- ends, with an HMAC so that neither can be moved without the secret.
-- Appends from every server take a transaction-scoped advisory lock first,
-- so the chain has one writer at a time.
CREATE TABLE chain_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    anchor_seq  BIGINT NOT NULL,             -- the last removed seq (0: nothing removed)
    anchor_hash TEXT NOT NULL,               -- its hash: the first kept row's prev_hash
    head_seq    BIGINT NOT NULL,
    head_hash   TEXT NOT NULL,
    mac         TEXT NOT NULL
);

-- Each session's counters. A decision reserves its place by advancing
-- action_count and tool_counts in one atomic update before it is decided.
CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    agent_id       TEXT,
    user_id        TEXT,
    started_at     TEXT NOT NULL,
    last_at        TEXT NOT NULL,
    action_count   BIGINT NOT NULL,
    tool_counts    JSONB NOT NULL,           -- tool name -> decisions
    principal      TEXT                      -- the key (or subject) that opened it
);

-- What a session's decisions came to, added in the transaction that records
-- them. Kept apart from `sessions` so that a commit never holds a lock that
-- reservations wait for.
CREATE TABLE session_outcomes (
    id             TEXT PRIMARY KEY,
    allowed_count  BIGINT NOT NULL,
    denied_count   BIGINT NOT NULL,
    approval_count BIGINT NOT NULL,
    estimated_cost DOUBLE PRECISION NOT NULL
);
CREATE INDEX sessions_agent ON sessions (agent_id);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_last ON sessions (last_at);

-- Every policy text a server has loaded, so any decision can be replayed.
CREATE TABLE policy_versions (
    hash        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    file        TEXT NOT NULL,
    rules_count BIGINT NOT NULL,
    loaded_at   TEXT NOT NULL,
    source      TEXT NOT NULL
);

-- API keys, stored as SHA-256 of the key; the key itself is shown once.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    label      TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- Server-kept settings, such as a generated audit secret.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
