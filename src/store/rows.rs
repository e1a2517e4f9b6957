//! Reading rows into the store's types, the same way for every backend.

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::{ApprovalRow, Delivery, Entry, KeyRow, PolicyVersion, SessionRow};
use crate::audit::{ChainState, Event, Stored};

/// A row's columns by name, as the few types the store uses.
pub(super) trait Get {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn maybe(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn float(&self, column: &str) -> Result<f64, sqlx::Error>;
}

macro_rules! get_for {
    ($row:ty) => {
        impl Get for $row {
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn maybe(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
            fn float(&self, column: &str) -> Result<f64, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}

get_for!(SqliteRow);
get_for!(PgRow);

/// Rows of the SQLite writer's own connection.
impl Get for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.get(column).map_err(decode)
    }
    fn maybe(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.get(column).map_err(decode)
    }
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.get(column).map_err(decode)
    }
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.get(column).map_err(decode)
    }
    fn float(&self, column: &str) -> Result<f64, sqlx::Error> {
        self.get(column).map_err(decode)
    }
}

fn decode(e: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

pub(super) fn event(row: &impl Get) -> Result<Event, sqlx::Error> {
    Ok(Event {
        id: row.text("id")?,
        kind: row.text("kind")?,
        ref_id: row.maybe("ref_id")?,
        session_id: row.text("session_id")?,
        ts: row.text("ts")?,
        tool_name: row.maybe("tool_name")?,
        tool_args: row.maybe("tool_args")?,
        agent_id: row.maybe("agent_id")?,
        user_id: row.maybe("user_id")?,
        metadata: row.maybe("metadata")?,
        decision: row.maybe("decision")?,
        rule_name: row.maybe("rule_name")?,
        reason: row.maybe("reason")?,
        policy_version: row.maybe("policy_version")?,
        policy_hash: row.maybe("policy_hash")?,
        principal: row.maybe("principal")?,
        body: row.text("body")?,
    })
}

/// An audit row with its place in the chain.
pub(super) fn stored(row: &impl Get) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        seq: row.int("seq")?,
        event: event(row)?,
        prev_hash: row.text("prev_hash")?,
        hash: row.text("hash")?,
    })
}

pub(super) fn entry(row: &impl Get) -> Result<Entry, sqlx::Error> {
    Ok(Entry {
        seq: row.int("seq")?,
        decision: event(row)?,
        result: row.maybe("result_body")?,
    })
}

pub(super) fn session(row: &impl Get) -> Result<SessionRow, sqlx::Error> {
    Ok(SessionRow {
        id: row.text("id")?,
        agent_id: row.maybe("agent_id")?,
        user_id: row.maybe("user_id")?,
        started_at: row.text("started_at")?,
        last_at: row.text("last_at")?,
        action_count: row.int("action_count")?,
        allowed_count: row.int("allowed_count")?,
        denied_count: row.int("denied_count")?,
        approval_count: row.int("approval_count")?,
        tool_counts: row.text("tool_counts")?,
        estimated_cost: row.float("estimated_cost")?,
        principal: row.maybe("principal")?,
    })
}

pub(super) fn policy_version(row: &impl Get) -> Result<PolicyVersion, sqlx::Error> {
    Ok(PolicyVersion {
        hash: row.text("hash")?,
        version: row.text("version")?,
        file: row.text("file")?,
        rules_count: row.int("rules_count")?,
        loaded_at: row.text("loaded_at")?,
        source: row.text("source")?,
    })
}

pub(super) fn key_row(row: &impl Get) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        id: row.text("id")?,
        hash: row.text("hash")?,
        role: row.text("role")?,
        label: row.maybe("label")?,
        created_at: row.text("created_at")?,
        revoked_at: row.maybe("revoked_at")?,
    })
}

pub(super) fn approval(row: &impl Get) -> Result<ApprovalRow, sqlx::Error> {
    Ok(ApprovalRow {
        id: row.text("id")?,
        log_id: row.text("log_id")?,
        session_id: row.text("session_id")?,
        tool_name: row.text("tool_name")?,
        tool_args: row.text("tool_args")?,
        args_digest: row.text("args_digest")?,
        rule_name: row.maybe("rule_name")?,
        reason: row.text("reason")?,
        policy_version: row.text("policy_version")?,
        policy_hash: row.text("policy_hash")?,
        requested_by: row.text("requested_by")?,
        status: row.text("status")?,
        created_at: row.text("created_at")?,
        expires_at: row.text("expires_at")?,
        resolved_at: row.maybe("resolved_at")?,
        resolved_by: row.maybe("resolved_by")?,
        comment: row.maybe("comment")?,
        consumed_at: row.maybe("consumed_at")?,
        consumed_log_id: row.maybe("consumed_log_id")?,
    })
}

pub(super) fn delivery(row: &impl Get) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        approval_id: row.text("approval_id")?,
        event: row.text("event")?,
        attempt: row.int("attempt")?,
        url: row.text("url")?,
        status_code: row.maybe_int("status_code")?,
        error: row.maybe("error")?,
        at: row.text("at")?,
    })
}

pub(super) fn chain_state(row: &impl Get) -> Result<ChainState, sqlx::Error> {
    Ok(ChainState {
        anchor_seq: row.int("anchor_seq")?,
        anchor_hash: row.text("anchor_hash")?,
        head_seq: row.int("head_seq")?,
        head_hash: row.text("head_hash")?,
        mac: row.text("mac")?,
    })
}
