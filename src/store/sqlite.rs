//! The SQLite backend: one file, WAL journal, `synchronous=FULL` so that a
//! committed batch survives a crash of the process or the machine.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    ApprovalOp, ApprovalRow, Delivery, Entry, KeyRow, LogFilter, PolicyVersion, SessionChange,
    SessionFilter, SessionRow, Store, StoreError, Write,
};
use crate::audit::{self, ChainState, Event, Stored};

pub struct SqliteStore {
    pool: SqlitePool,
}

/// Statements are written for SQLite already.
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(text.to_string())
}

/// Session rows, as the store reads them.
const SESSIONS: &str = "SELECT * FROM sessions";

super::queries::queries!(SqliteStore, Sqlite, sqlx::SqliteConnection);

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
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
        ])
        .run(&pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))?;
        Ok(SqliteStore { pool })
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
        sqlx::query(
            "INSERT INTO audit_log (seq, id, kind, ref_id, session_id, ts, tool_name, tool_args, agent_id, user_id, metadata, \
             decision, rule_name, reason, policy_version, policy_hash, principal, body, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
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

async fn upsert_session(
    conn: &mut sqlx::SqliteConnection,
    s: &SessionRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sessions (id, agent_id, user_id, started_at, last_at, action_count, allowed_count, denied_count, \
         approval_count, tool_counts, estimated_cost, principal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET agent_id = COALESCE(sessions.agent_id, excluded.agent_id), \
         user_id = COALESCE(sessions.user_id, excluded.user_id), last_at = excluded.last_at, \
         action_count = excluded.action_count, allowed_count = excluded.allowed_count, \
         denied_count = excluded.denied_count, approval_count = excluded.approval_count, \
         tool_counts = excluded.tool_counts, estimated_cost = excluded.estimated_cost",
    )
    .bind(&s.id)
    .bind(&s.agent_id)
    .bind(&s.user_id)
    .bind(&s.started_at)
    .bind(&s.last_at)
    .bind(s.action_count)
    .bind(s.allowed_count)
    .bind(s.denied_count)
    .bind(s.approval_count)
    .bind(&s.tool_counts)
    .bind(s.estimated_cost)
    .bind(&s.principal)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The whole rows among `changes`; this store counts no other way.
fn rows_of(changes: Vec<SessionChange>) -> Result<Vec<SessionRow>, StoreError> {
    changes
        .into_iter()
        .map(|c| match c {
            SessionChange::Row(row) => Ok(row),
            other => Err(StoreError::Invalid(format!(
                "SQLite keeps session counters in the server, not as {other:?}"
            ))),
        })
        .collect()
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn append(
        &self,
        secret: &[u8],
        writes: Vec<Write>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let (mut tx, mut at) = begin_chain(&self.pool).await?;
        let mut results = Vec::with_capacity(writes.len());
        // Plain writes are gathered into runs: their events in order, each session's last row.
        let mut run_events: Vec<Event> = Vec::new();
        let mut run_sessions: Vec<SessionRow> = Vec::new();
        // Where each session's row stands in `run_sessions`.
        let mut run_index: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for w in writes {
            // Sessions are counted in memory here: every change is a whole row.
            let rows = rows_of(w.sessions)?;
            if w.approvals.is_empty() {
                run_events.extend(w.events);
                for s in rows {
                    match run_index.get(&s.id) {
                        Some(&at) => run_sessions[at] = s,
                        None => {
                            run_index.insert(s.id.clone(), run_sessions.len());
                            run_sessions.push(s);
                        }
                    }
                }
                results.push(Ok(()));
                continue;
            }
            append_events(&mut tx, secret, &mut at, &std::mem::take(&mut run_events)).await?;
            run_index.clear();
            for s in run_sessions.drain(..) {
                upsert_session(&mut tx, &s).await?;
            }
            // A conditional write: all of it, or none of it.
            sqlx::query("SAVEPOINT write").execute(&mut *tx).await?;
            let (seq, prev) = (at.head_seq, at.head_hash.clone());
            let mut applied = true;
            for op in &w.approvals {
                if !apply_approval(&mut tx, op).await? {
                    applied = false;
                    break;
                }
            }
            if applied {
                append_events(&mut tx, secret, &mut at, &w.events).await?;
                for s in &rows {
                    upsert_session(&mut tx, s).await?;
                }
                sqlx::query("RELEASE write").execute(&mut *tx).await?;
                results.push(Ok(()));
            } else {
                sqlx::query("ROLLBACK TO write").execute(&mut *tx).await?;
                sqlx::query("RELEASE write").execute(&mut *tx).await?;
                (at.head_seq, at.head_hash) = (seq, prev);
                results.push(Err(StoreError::Conflict(
                    "the approval was resolved, used or expired meanwhile".into(),
                )));
            }
        }
        append_events(&mut tx, secret, &mut at, &run_events).await?;
        for s in &run_sessions {
            upsert_session(&mut tx, s).await?;
        }
        seal(&mut tx, secret, &at).await?;
        tx.commit().await?;
        Ok(results)
    }
}
