//! Storage: one trait, one implementation per backend.
//!
//! Everything the server keeps goes through [`Store`]: the audit chain and
//! the sessions' counters (recorded with it, one transaction per batch; on
//! SQLite the counters follow within a second, see [`sqlite`]), the policy
//! texts it has loaded, API keys, and a few settings. SQLite is
//! the default (`sqlite://path`), for one server; PostgreSQL
//! (`postgres://…`) lets several servers share one database.

pub mod postgres;
mod queries;
mod rows;
pub mod sqlite;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::audit::{ChainState, Event, Stored};
use crate::policy::Action;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the operation.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The write queue stayed full: storage is not keeping up.
    #[error("storage is busy: the audit log is not keeping up with decisions")]
    Busy,
    /// A conditional write found the state it needed changed (an approval
    /// resolved, used or expired meanwhile).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// A session's counters as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionRow {
    pub id: String,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub started_at: String,
    pub last_at: String,
    pub action_count: i64,
    pub allowed_count: i64,
    pub denied_count: i64,
    pub approval_count: i64,
    /// JSON object text.
    pub tool_counts: String,
    pub estimated_cost: f64,
    /// The principal that opened the session.
    pub principal: Option<String>,
}

/// Filters of `GET /sessions`.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    /// Only the sessions this principal opened (what an agent key may see).
    pub principal: Option<String>,
}

/// What one caller writes: appended and applied together, or not at all.
#[derive(Debug, Clone, Default)]
pub struct Write {
    pub events: Vec<Event>,
    pub sessions: Vec<SessionChange>,
    pub approvals: Vec<ApprovalOp>,
}

impl Write {
    /// A decision in session `session_id`, alone in its write.
    #[cfg(test)]
    pub(crate) fn decision(session_id: &str) -> Write {
        Write {
            events: vec![Event {
                id: uuid::Uuid::now_v7().to_string(),
                kind: "decision".into(),
                session_id: session_id.into(),
                ts: "2026-01-01T00:00:00.000000+00:00".into(),
                body: "{}".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }
}

/// A change to a session's row.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionChange {
    /// The whole row as counted in this process (sessions kept in memory).
    Row(SessionRow),
    /// Add a decision's outcome to a row its reservation advanced.
    Outcome { id: String, action: Action },
    /// Add a reported cost.
    Cost { id: String, amount: f64 },
}

/// A decision about to be made in a session: what its reservation records.
#[derive(Debug, Clone, Default)]
pub struct Reservation {
    pub session_id: String,
    pub tool_name: String,
    /// When the decision is made.
    pub at: chrono::DateTime<chrono::Utc>,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    /// Who asks; a session belongs to the key that opened it.
    pub principal: String,
    /// May act in sessions of other keys.
    pub admin: bool,
}

/// A change to an approval. All but `Create` apply only from the state they
/// expect, else the whole write fails with [`StoreError::Conflict`].
#[derive(Debug, Clone)]
pub enum ApprovalOp {
    Create(ApprovalRow),
    /// pending -> approved | denied, before expiry.
    Resolve {
        id: String,
        status: String,
        by: String,
        comment: Option<String>,
        at: String,
    },
    /// approved and unused -> used by `log_id`, before expiry.
    Consume {
        id: String,
        log_id: String,
        at: String,
    },
    /// pending past its expiry -> expired.
    Expire {
        id: String,
        at: String,
    },
}

/// An approval as stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApprovalRow {
    pub id: String,
    pub log_id: String,
    pub session_id: String,
    pub tool_name: String,
    /// JSON text.
    pub tool_args: String,
    pub args_digest: String,
    pub rule_name: Option<String>,
    pub reason: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub requested_by: String,
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub comment: Option<String>,
    pub consumed_at: Option<String>,
    pub consumed_log_id: Option<String>,
}

/// One attempt to deliver a webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub approval_id: String,
    pub event: String,
    pub attempt: i64,
    pub url: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub at: String,
}

/// A decision with the latest result reported for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: i64,
    pub decision: Event,
    /// The latest result event's body, if any.
    pub result: Option<String>,
}

/// Filters of `GET /logs`.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub session_id: Option<String>,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub tool_name: Option<String>,
    pub decision: Option<String>,
    /// RFC 3339 text, inclusive.
    pub since: Option<String>,
    /// RFC 3339 text, exclusive.
    pub until: Option<String>,
}

/// A loaded policy text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyVersion {
    pub hash: String,
    pub version: String,
    pub file: String,
    pub rules_count: i64,
    pub loaded_at: String,
    #[serde(skip)]
    pub source: String,
}

/// An API key as stored (its hash, never the key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyRow {
    pub id: String,
    #[serde(skip)]
    pub hash: String,
    pub role: String,
    pub label: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The reads and writes whose SQL is the same on every backend
/// (implemented for each by [`queries::queries`]).
#[async_trait]
pub trait Queries {
    /// The database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Store `value` under `key` unless a value is there; return the value kept.
    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError>;
    async fn chain_state(&self) -> Result<Option<ChainState>, StoreError>;
    /// Remove rows older than `before` (RFC 3339), a prefix of the chain at a
    /// time, then append a retention event saying how many. Returns that count.
    async fn remove_before(
        &self,
        secret: &[u8],
        before: &str,
        event: Event,
    ) -> Result<u64, StoreError>;
    /// Rows with seq > `after`, in order, at most `limit`.
    async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<Stored>, StoreError>;

    async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError>;
    /// Call `each` with the id of every stored session, one at a time (there
    /// may be millions: they are read as a stream, never held all at once).
    async fn each_session_id(
        &self,
        each: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<(), StoreError>;
    /// A page of sessions, most recently active first, and the total count.
    async fn sessions(
        &self,
        filter: &SessionFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<SessionRow>, i64), StoreError>;
    /// A session's decisions, oldest first.
    async fn session_entries(&self, session_id: &str) -> Result<Vec<Entry>, StoreError>;
    /// One decision by id.
    async fn entry(&self, log_id: &str) -> Result<Option<Entry>, StoreError>;
    /// Decisions matching `filter`, newest first, with seq < `before` if given.
    async fn entries(
        &self,
        filter: &LogFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Entry>, StoreError>;
    /// How many decisions there are.
    async fn count_decisions(&self) -> Result<i64, StoreError>;
    /// How many approvals wait for a human, unexpired at `now` (RFC 3339).
    async fn count_pending_approvals(&self, now: &str) -> Result<i64, StoreError>;

    /// Remember a policy text (once per hash; a reload refreshes `loaded_at`).
    async fn record_policy(&self, version: &PolicyVersion) -> Result<(), StoreError>;
    /// Every policy loaded, most recently loaded first.
    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError>;
    async fn policy_version(&self, hash: &str) -> Result<Option<PolicyVersion>, StoreError>;

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError>;
    /// Every audit event whose `ref_id` is `id` (an approval's story), in order.
    async fn events_about(&self, id: &str) -> Result<Vec<Stored>, StoreError>;
    /// Approvals with `status` (all when `None`), newest first.
    async fn approvals(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApprovalRow>, StoreError>;
    /// Pending approvals whose expiry is at or before `now`.
    async fn overdue_approvals(&self, now: &str) -> Result<Vec<ApprovalRow>, StoreError>;
    async fn record_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;
    async fn deliveries(&self, approval_id: &str) -> Result<Vec<Delivery>, StoreError>;

    async fn insert_key(&self, key: &KeyRow) -> Result<(), StoreError>;
    async fn keys(&self) -> Result<Vec<KeyRow>, StoreError>;
    /// Mark a key revoked; false if there is no such unrevoked key.
    async fn revoke_key(&self, id: &str, at: &str) -> Result<bool, StoreError>;
}

/// What an append of a batch comes to: each write's own result (`Conflict`
/// when its approval change found the wrong state), or one failure for all.
pub type Appended = Result<Vec<Result<(), StoreError>>, StoreError>;

/// A backend: [`Queries`], and what each backend does its own way.
#[async_trait]
pub trait Store: Queries + Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Whether session counters are kept in the database ([`Store::reserve`]),
    /// so that several servers can share it; else each server counts in memory.
    fn shared_sessions(&self) -> bool {
        false
    }
    /// Advance the session's action count and the tool's count atomically,
    /// creating the session if needed, and return its row after that.
    /// `None` when the session belongs to another key and `call.admin` is false.
    async fn reserve(&self, call: &Reservation) -> Result<Option<SessionRow>, StoreError> {
        let _ = call;
        Err(StoreError::Invalid(format!(
            "the {} store keeps no session counters",
            self.backend()
        )))
    }

    /// Apply `writes` in order in one transaction: each write's events are
    /// appended to the chain, its session changes and approval changes
    /// written (on SQLite, session rows once the transaction has committed,
    /// shortly after; every read of sessions waits for them).
    /// A write whose approval change finds the wrong state is skipped whole
    /// (its result is `Conflict`) and the others go on; any other failure
    /// fails them all (the outer `Err`).
    async fn append(&self, secret: &[u8], writes: Vec<Write>) -> Appended;

    /// Hand `writes` over to be appended, as [`Store::append`] does, after
    /// every batch handed over before, and return without waiting: the
    /// receiver gets the outcome. A store that takes a batch only once the
    /// last one is answered gives `writes` back; the caller then appends
    /// them itself.
    fn hand_over(
        &self,
        secret: &[u8],
        writes: Vec<Write>,
    ) -> Result<tokio::sync::oneshot::Receiver<Appended>, Vec<Write>> {
        let _ = secret;
        Err(writes)
    }

    /// Whether appends can be made: on SQLite, the thread that makes them
    /// still runs and the WAL still syncs. (Whether the database answers
    /// is [`Queries::ping`].)
    fn writing(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Make the store's writer fail as a bug in it would; `false` when the
    /// store has no writer of its own.
    #[cfg(test)]
    fn crash_writer(&self) -> bool {
        false
    }

    /// Take back a reservation whose decision was not recorded: one action
    /// and one use of `tool_name`. A session left with no action is removed.
    async fn release(&self, session_id: &str, tool_name: &str) -> Result<(), StoreError> {
        let _ = (session_id, tool_name);
        Ok(())
    }
    /// Call `wake` with each approval resolved or expired by any server
    /// sharing the database (`None`: some may have been missed; look again).
    /// Runs until dropped; a store only one server uses has nothing to hear.
    async fn listen_approvals(&self, wake: &(dyn for<'a> Fn(Option<&'a str>) + Send + Sync)) {
        let _ = wake;
        std::future::pending::<()>().await;
    }
}

/// Audit columns, as the HMAC covers them.
const EVENT_COLUMNS: &str = "id, kind, ref_id, session_id, ts, tool_name, tool_args, agent_id, user_id, metadata, \
     decision, rule_name, reason, policy_version, policy_hash, principal, body";

/// A decision's columns plus the body of the latest result reported for it.
const ENTRY_SELECT: &str = "SELECT d.seq, d.id, d.kind, d.ref_id, d.session_id, d.ts, d.tool_name, d.tool_args, \
     d.agent_id, d.user_id, d.metadata, d.decision, d.rule_name, d.reason, d.policy_version, d.policy_hash, d.principal, d.body, \
     (SELECT r.body FROM audit_log r WHERE r.ref_id = d.id AND r.kind = 'result' ORDER BY r.seq DESC LIMIT 1) AS result_body \
     FROM audit_log d";

/// Migrations embedded in the binary: (version, name, SQL).
fn migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, name, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Connections one server opens to SQLite for reads when
/// `TAME_DATABASE_CONNECTIONS` is unset (its writer and checkpointer have
/// one each besides).
pub const SQLITE_READERS: u32 = 8;
/// Connections one server opens to PostgreSQL when
/// `TAME_DATABASE_CONNECTIONS` is unset.
pub const POSTGRES_CONNECTIONS: u32 = 32;

/// Open the store a `TAME_DATABASE_URL` names, applying its migrations.
/// `acquire_timeout` bounds how long an operation waits for a connection;
/// `connections` (`TAME_DATABASE_CONNECTIONS`) bounds how many are opened:
/// on SQLite the readers, on PostgreSQL all of them.
pub async fn open(
    url: &str,
    acquire_timeout: Duration,
    connections: Option<u32>,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        let readers = connections.unwrap_or(SQLITE_READERS);
        Ok(Arc::new(
            sqlite::SqliteStore::open(url, acquire_timeout, readers).await?,
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let connections = connections.unwrap_or(POSTGRES_CONNECTIONS);
        Ok(Arc::new(
            postgres::PgStore::open(url, acquire_timeout, connections).await?,
        ))
    } else {
        Err(StoreError::Invalid(format!(
            "unknown database URL {:?}: use sqlite://PATH (for example sqlite://data/tame.db) or postgres://USER:PASSWORD@HOST:5432/DATABASE",
            url.split("://").next().unwrap_or(url)
        )))
    }
}
