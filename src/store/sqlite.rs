//! The SQLite backend: one file, WAL journal. Reads, and the writes made
//! outside the group commit (keys, policy versions, retention's removals
//! and its record of them), go through a pool whose commits sync
//! (`synchronous=FULL`); the group commit's batches go through one writing
//! thread ([`writer`]), which answers a batch once the WAL holding it is
//! synced, and also keeps the session tables up to the log. Either way a
//! committed and answered write survives a crash of the process or the
//! machine.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    Appended, ApprovalRow, Delivery, Entry, KeyRow, LogFilter, PolicyVersion, SessionFilter,
    SessionRow, Store, StoreError, Write,
};
use crate::audit::{self, ChainState, Event, Stored};

mod writer;

pub struct SqliteStore {
    pool: SqlitePool,
    /// Appends to the chain go through their own thread and connection.
    writer: writer::Writer,
}

/// How long a statement waits for another connection's write to end.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Statements are written for SQLite already.
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.to_string())
}

/// Session rows, as the store reads them.
const SESSIONS: &str = "SELECT * FROM sessions";

/// A decision of the session `?`, through the log's index by session.
const SESSION_MATCH: &str = "d.seq IN (SELECT seq FROM session_events WHERE session_id = ?)";

/// One row of the chain (`seq`, the event's columns, `prev_hash`, `hash`).
const INSERT_EVENT: &str = "INSERT INTO audit_log (seq, id, kind, ref_id, session_id, ts, tool_name, tool_args, agent_id, user_id, metadata, \
     decision, rule_name, reason, policy_version, policy_hash, principal, body, prev_hash, hash) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// A session's row as counted in the server, whole, with the seq of the
/// last event it counts; never replaced by an older one.
const UPSERT_SESSION: &str = "INSERT INTO sessions (id, agent_id, user_id, started_at, last_at, action_count, allowed_count, denied_count, \
     approval_count, tool_counts, estimated_cost, principal, log_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT(id) DO UPDATE SET agent_id = COALESCE(sessions.agent_id, excluded.agent_id), \
     user_id = COALESCE(sessions.user_id, excluded.user_id), last_at = excluded.last_at, \
     action_count = excluded.action_count, allowed_count = excluded.allowed_count, \
     denied_count = excluded.denied_count, approval_count = excluded.approval_count, \
     tool_counts = excluded.tool_counts, estimated_cost = excluded.estimated_cost, log_seq = excluded.log_seq \
     WHERE excluded.log_seq > sessions.log_seq";

super::queries::queries!(SqliteStore, Sqlite, sqlx::SqliteConnection);

impl SqliteStore {
    /// Ways to hold or fail the syncs of the WAL.
    #[cfg(test)]
    pub(crate) fn sync_hooks(&self) -> &writer::SyncHooks {
        self.writer.hooks()
    }

    /// Bring the session tables up to the log before reading them.
    async fn settle(&self) -> Result<(), StoreError> {
        self.writer.settle().await
    }

    /// Open the database file of `url`, with a pool of at most `readers`
    /// connections for reads, each waited for at most `acquire_timeout`.
    pub async fn open(
        url: &str,
        acquire_timeout: Duration,
        readers: u32,
    ) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(acquire_timeout)
            .connect_with(options.clone())
            .await?;
        super::migrator(&[
            (
                1,
                "init",
                include_str!("../../migrations/sqlite/0001_init.sql"),
            ),
            (
                2,
                "approvals",
                include_str!("../../migrations/sqlite/0002_approvals.sql"),
            ),
            (
                3,
                "session events",
                include_str!("../../migrations/sqlite/0003_session_events.sql"),
            ),
            (
                4,
                "partial session indexes",
                include_str!("../../migrations/sqlite/0004_partial_session_indexes.sql"),
            ),
        ])
        .run(&pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))?;
        let writer = writer::Writer::start(options.get_filename(), BUSY_TIMEOUT).await?;
        Ok(SqliteStore { pool, writer })
    }
}

/// Begin a transaction that appends to the chain (SQLite has one writer at
/// a time), and read where the chain stands.
async fn begin_chain(
    pool: &SqlitePool,
) -> Result<(sqlx::Transaction<'static, Sqlite>, ChainState), sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let at = read_chain(&mut tx).await?.unwrap_or_else(ChainState::empty);
    Ok((tx, at))
}

/// Append `events` after the head of `at`, advancing it.
async fn append_events(
    conn: &mut sqlx::SqliteConnection,
    secret: &[u8],
    at: &mut ChainState,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    for e in events {
        let seq = at.head_seq + 1;
        let hash = audit::row_hash(secret, seq, e, &at.head_hash);
        sqlx::query(INSERT_EVENT)
            .bind(seq)
            .bind(&e.id)
            .bind(&e.kind)
            .bind(&e.ref_id)
            .bind(&e.session_id)
            .bind(&e.ts)
            .bind(&e.tool_name)
            .bind(&e.tool_args)
            .bind(&e.agent_id)
            .bind(&e.user_id)
            .bind(&e.metadata)
            .bind(&e.decision)
            .bind(&e.rule_name)
            .bind(&e.reason)
            .bind(&e.policy_version)
            .bind(&e.policy_hash)
            .bind(&e.principal)
            .bind(&e.body)
            .bind(&at.head_hash)
            .bind(&hash)
            .execute(&mut *conn)
            .await?;
        at.head_seq = seq;
        at.head_hash = hash;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append(&self, secret: &[u8], writes: Vec<Write>) -> Appended {
        let answer = self.writer.hand_over(secret, writes);
        answer.await.map_err(|_| writer::stopped())?
    }

    fn hand_over(
        &self,
        secret: &[u8],
        writes: Vec<Write>,
    ) -> Result<tokio::sync::oneshot::Receiver<Appended>, Vec<Write>> {
        Ok(self.writer.hand_over(secret, writes))
    }

    #[cfg(test)]
    fn crash_writer(&self) -> bool {
        self.writer.crash();
        true
    }

    fn writing(&self) -> Result<(), StoreError> {
        self.writer.state()
    }
}

#[cfg(test)]
impl SqliteStore {
    /// A store on `tame.db` in a new folder, which must outlive it.
    pub(crate) async fn temporary() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("tame.db").display());
        let store = SqliteStore::open(&url, Duration::from_secs(5), 8)
            .await
            .unwrap();
        (dir, store)
    }

    /// Wait (up to 10 s) until a reader sees at least `n` decisions in the log.
    pub(crate) async fn wait_for_decisions(&self, n: i64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let count = super::Queries::count_decisions(self).await.unwrap();
            if count >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the log holds {count} decisions, not {n}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent and user indexes leave out sessions without one; a
    /// listing filtered by either still finds its sessions through them.
    #[tokio::test]
    async fn session_filters_use_the_partial_indexes() {
        let (_dir, store) = SqliteStore::temporary().await;
        for (column, index) in [("agent_id", "sessions_agent"), ("user_id", "sessions_user")] {
            for select in ["COUNT(*)", "*"] {
                let query = format!(
                    "EXPLAIN QUERY PLAN SELECT {select} FROM sessions WHERE 1 = 1 AND {column} = ? \
                     ORDER BY last_at DESC, id LIMIT 50 OFFSET 0"
                );
                let rows = sqlx::query(sql(&query))
                    .bind("a1")
                    .fetch_all(&store.pool)
                    .await
                    .unwrap();
                let details: Vec<String> = rows
                    .iter()
                    .map(|r| sqlx::Row::get::<String, _>(r, "detail"))
                    .collect();
                assert!(
                    details.iter().any(|d| d.contains(index)),
                    "{column} = ? does not use {index}: {details:?}"
                );
            }
        }
        let indexed: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE name IN ('sessions_agent', 'sessions_user') ORDER BY name",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap();
        assert_eq!(indexed.len(), 2, "{indexed:?}");
        assert!(
            indexed.iter().all(|(_, sql)| sql.contains("IS NOT NULL")),
            "{indexed:?}"
        );
    }
}
