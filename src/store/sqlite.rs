//! The SQLite backend: one file, WAL journal, `synchronous=FULL` so that a
//! committed batch survives a crash of the process or the machine.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::rows::{approval, delivery, entry, key_row, policy_version, session, stored};
use super::{
    ApprovalOp, ApprovalRow, Delivery, Entry, KeyRow, LogFilter, PolicyVersion, SessionChange,
    SessionFilter, SessionRow, Store, StoreError, Write,
};
use crate::audit::{self, ChainState, Event, Stored};

pub struct SqliteStore {
    pool: SqlitePool,
}

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

const EVENT_COLUMNS: &str = "id, kind, ref_id, session_id, ts, tool_name, tool_args, agent_id, user_id, metadata, \
     decision, rule_name, reason, policy_version, policy_hash, principal, body";

/// A decision's columns plus the body of the latest result reported for it.
const ENTRY_SELECT: &str = "SELECT d.seq, d.id, d.kind, d.ref_id, d.session_id, d.ts, d.tool_name, d.tool_args, \
     d.agent_id, d.user_id, d.metadata, d.decision, d.rule_name, d.reason, d.policy_version, d.policy_hash, d.principal, d.body, \
     (SELECT r.body FROM audit_log r WHERE r.ref_id = d.id AND r.kind = 'result' ORDER BY r.seq DESC LIMIT 1) AS result_body \
     FROM audit_log d";

async fn read_state(conn: &mut sqlx::SqliteConnection) -> Result<Option<ChainState>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT anchor_seq, anchor_hash, head_seq, head_hash, mac FROM chain_state WHERE id = 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(ChainState {
            anchor_seq: r.try_get("anchor_seq")?,
            anchor_hash: r.try_get("anchor_hash")?,
            head_seq: r.try_get("head_seq")?,
            head_hash: r.try_get("head_hash")?,
            mac: r.try_get("mac")?,
        })
    })
    .transpose()
}

async fn write_state(
    conn: &mut sqlx::SqliteConnection,
    secret: &[u8],
    anchor_seq: i64,
    anchor_hash: &str,
    head_seq: i64,
    head_hash: &str,
) -> Result<(), sqlx::Error> {
    let mac = audit::state_mac(secret, anchor_seq, anchor_hash, head_seq, head_hash);
    sqlx::query(
        "INSERT INTO chain_state (id, anchor_seq, anchor_hash, head_seq, head_hash, mac) VALUES (1, ?, ?, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET anchor_seq = excluded.anchor_seq, anchor_hash = excluded.anchor_hash, \
         head_seq = excluded.head_seq, head_hash = excluded.head_hash, mac = excluded.mac",
    )
    .bind(anchor_seq)
    .bind(anchor_hash)
    .bind(head_seq)
    .bind(head_hash)
    .bind(mac)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Where the chain stands while a transaction appends to it.
struct Cursor {
    anchor_seq: i64,
    anchor_hash: String,
    seq: i64,
    prev: String,
}

impl Cursor {
    async fn read(conn: &mut sqlx::SqliteConnection) -> Result<Cursor, sqlx::Error> {
        Ok(match read_state(conn).await? {
            Some(s) => Cursor {
                anchor_seq: s.anchor_seq,
                anchor_hash: s.anchor_hash,
                seq: s.head_seq,
                prev: s.head_hash,
            },
            None => Cursor {
                anchor_seq: 0,
                anchor_hash: audit::GENESIS.into(),
                seq: 0,
                prev: audit::GENESIS.into(),
            },
        })
    }

    async fn seal(
        &self,
        conn: &mut sqlx::SqliteConnection,
        secret: &[u8],
    ) -> Result<(), sqlx::Error> {
        write_state(
            conn,
            secret,
            self.anchor_seq,
            &self.anchor_hash,
            self.seq,
            &self.prev,
        )
        .await
    }
}

/// Append `events` at the cursor, advancing it.
async fn append_events(
    conn: &mut sqlx::SqliteConnection,
    secret: &[u8],
    at: &mut Cursor,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    for e in events {
        let seq = at.seq + 1;
        let hash = audit::row_hash(secret, seq, e, &at.prev);
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
        .bind(&at.prev)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
        at.seq = seq;
        at.prev = hash;
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

/// Apply one approval change; `Ok(false)` when its expected state is not there.
async fn apply_approval(
    conn: &mut sqlx::SqliteConnection,
    op: &ApprovalOp,
) -> Result<bool, sqlx::Error> {
    let done = match op {
        ApprovalOp::Create(a) => sqlx::query(
            "INSERT INTO approvals (id, log_id, session_id, tool_name, tool_args, args_digest, rule_name, reason, \
             policy_version, policy_hash, requested_by, status, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.log_id)
        .bind(&a.session_id)
        .bind(&a.tool_name)
        .bind(&a.tool_args)
        .bind(&a.args_digest)
        .bind(&a.rule_name)
        .bind(&a.reason)
        .bind(&a.policy_version)
        .bind(&a.policy_hash)
        .bind(&a.requested_by)
        .bind(&a.status)
        .bind(&a.created_at)
        .bind(&a.expires_at)
        .execute(&mut *conn)
        .await?,
        ApprovalOp::Resolve { id, status, by, comment, at } => sqlx::query(
            "UPDATE approvals SET status = ?, resolved_by = ?, comment = ?, resolved_at = ? \
             WHERE id = ? AND status = 'pending' AND expires_at > ?",
        )
        .bind(status)
        .bind(by)
        .bind(comment)
        .bind(at)
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?,
        ApprovalOp::Consume { id, log_id, at } => sqlx::query(
            "UPDATE approvals SET consumed_at = ?, consumed_log_id = ? \
             WHERE id = ? AND status = 'approved' AND consumed_at IS NULL AND expires_at > ?",
        )
        .bind(at)
        .bind(log_id)
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?,
        ApprovalOp::Expire { id, at } => {
            sqlx::query("UPDATE approvals SET status = 'expired', resolved_at = ? WHERE id = ? AND status = 'pending' AND expires_at <= ?")
                .bind(at)
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
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

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.setting(key)
            .await?
            .ok_or_else(|| StoreError::Unavailable(format!("setting {key} vanished")))
    }

    async fn append(
        &self,
        secret: &[u8],
        writes: Vec<Write>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut at = Cursor::read(&mut tx).await?;
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
            let (seq, prev) = (at.seq, at.prev.clone());
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
                (at.seq, at.prev) = (seq, prev);
                results.push(Err(StoreError::Conflict(
                    "the approval was resolved, used or expired meanwhile".into(),
                )));
            }
        }
        append_events(&mut tx, secret, &mut at, &run_events).await?;
        for s in &run_sessions {
            upsert_session(&mut tx, s).await?;
        }
        at.seal(&mut tx, secret).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn chain_state(&self) -> Result<Option<ChainState>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(read_state(&mut conn).await?)
    }

    async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<Stored>, StoreError> {
        let sql = format!(
            "SELECT seq, {EVENT_COLUMNS}, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(stored).collect::<Result<_, _>>()?)
    }

    async fn remove_before(
        &self,
        secret: &[u8],
        before: &str,
        event: Event,
    ) -> Result<u64, StoreError> {
        // In chunks, each its own transaction with the chain's start sealed
        // anew, so the writer never waits long; then one event records it all.
        const CHUNK: i64 = 10_000;
        let mut removed = 0;
        loop {
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            // Only a prefix of the chain may go, so that what stays still links up.
            let last: Option<(i64, String)> = sqlx::query_as(
                "SELECT seq, hash FROM audit_log WHERE seq < COALESCE((SELECT MIN(seq) FROM audit_log WHERE ts >= ?), \
                 (SELECT MAX(seq) + 1 FROM audit_log)) AND seq <= (SELECT MIN(seq) FROM audit_log) + ? - 1 \
                 ORDER BY seq DESC LIMIT 1",
            )
            .bind(before)
            .bind(CHUNK)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((last_seq, last_hash)) = last else {
                tx.rollback().await?;
                break;
            };
            removed += sqlx::query("DELETE FROM audit_log WHERE seq <= ?")
                .bind(last_seq)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let mut at = Cursor::read(&mut tx).await?;
            (at.anchor_seq, at.anchor_hash) = (last_seq, last_hash);
            at.seal(&mut tx, secret).await?;
            tx.commit().await?;
        }
        if removed > 0 {
            let mut event = event;
            if let Ok(mut body) = serde_json::from_str::<serde_json::Value>(&event.body) {
                body["removed"] = removed.into();
                event.body = body.to_string();
            }
            let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            let mut at = Cursor::read(&mut tx).await?;
            append_events(&mut tx, secret, &mut at, &[event]).await?;
            at.seal(&mut tx, secret).await?;
            tx.commit().await?;
        }
        Ok(removed)
    }

    async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(session).transpose()?)
    }

    async fn sessions(
        &self,
        f: &SessionFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<SessionRow>, i64), StoreError> {
        let (agent_id, user_id, principal) = (
            f.agent_id.as_deref(),
            f.user_id.as_deref(),
            f.principal.as_deref(),
        );
        let filter = |q: &mut QueryBuilder<Sqlite>| {
            q.push(" WHERE 1 = 1");
            if let Some(p) = principal {
                q.push(" AND principal = ").push_bind(p.to_string());
            }
            if let Some(a) = agent_id {
                q.push(" AND agent_id = ").push_bind(a.to_string());
            }
            if let Some(u) = user_id {
                q.push(" AND user_id = ").push_bind(u.to_string());
            }
        };
        let mut count = QueryBuilder::new("SELECT COUNT(*) FROM sessions");
        filter(&mut count);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut q = QueryBuilder::new("SELECT * FROM sessions");
        filter(&mut q);
        q.push(" ORDER BY last_at DESC, id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok((rows.iter().map(session).collect::<Result<_, _>>()?, total))
    }

    async fn session_entries(&self, session_id: &str) -> Result<Vec<Entry>, StoreError> {
        let sql =
            format!("{ENTRY_SELECT} WHERE d.kind = 'decision' AND d.session_id = ? ORDER BY d.seq");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(session_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(entry).collect::<Result<_, _>>()?)
    }

    async fn entry(&self, log_id: &str) -> Result<Option<Entry>, StoreError> {
        let sql = format!("{ENTRY_SELECT} WHERE d.kind = 'decision' AND d.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(log_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(entry).transpose()?)
    }

    async fn entries(
        &self,
        f: &LogFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(ENTRY_SELECT);
        q.push(" WHERE d.kind = 'decision'");
        for (column, value) in [
            ("d.session_id", &f.session_id),
            ("d.agent_id", &f.agent_id),
            ("d.user_id", &f.user_id),
            ("d.tool_name", &f.tool_name),
            ("d.decision", &f.decision),
        ] {
            if let Some(v) = value {
                q.push(format_args!(" AND {column} = "))
                    .push_bind(v.clone());
            }
        }
        if let Some(since) = &f.since {
            q.push(" AND d.ts >= ").push_bind(since.clone());
        }
        if let Some(until) = &f.until {
            q.push(" AND d.ts < ").push_bind(until.clone());
        }
        if let Some(b) = before {
            q.push(" AND d.seq < ").push_bind(b);
        }
        q.push(" ORDER BY d.seq DESC LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(entry).collect::<Result<_, _>>()?)
    }

    async fn count_decisions(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE kind = 'decision'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn record_policy(&self, v: &PolicyVersion) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policy_versions (hash, version, file, rules_count, loaded_at, source) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT(hash) DO UPDATE SET loaded_at = excluded.loaded_at, file = excluded.file",
        )
        .bind(&v.hash)
        .bind(&v.version)
        .bind(&v.file)
        .bind(v.rules_count)
        .bind(&v.loaded_at)
        .bind(&v.source)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn policy_versions(&self) -> Result<Vec<PolicyVersion>, StoreError> {
        let rows = sqlx::query("SELECT * FROM policy_versions ORDER BY loaded_at DESC")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(policy_version).collect::<Result<_, _>>()?)
    }

    async fn policy_version(&self, hash: &str) -> Result<Option<PolicyVersion>, StoreError> {
        let row = sqlx::query("SELECT * FROM policy_versions WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(policy_version).transpose()?)
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(approval).transpose()?)
    }

    async fn events_about(&self, id: &str) -> Result<Vec<Stored>, StoreError> {
        let sql = format!(
            "SELECT seq, {EVENT_COLUMNS}, prev_hash, hash FROM audit_log WHERE ref_id = ? ORDER BY seq"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(stored).collect::<Result<_, _>>()?)
    }

    async fn approvals(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM approvals");
        if let Some(st) = status {
            q.push(" WHERE status = ").push_bind(st.to_string());
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(approval).collect::<Result<_, _>>()?)
    }

    async fn overdue_approvals(&self, now: &str) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM approvals WHERE status = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT 500")
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(approval).collect::<Result<_, _>>()?)
    }

    async fn record_delivery(&self, d: &Delivery) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO webhook_deliveries (approval_id, event, attempt, url, status_code, error, at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&d.approval_id)
            .bind(&d.event)
            .bind(d.attempt)
            .bind(&d.url)
            .bind(d.status_code)
            .bind(&d.error)
            .bind(&d.at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn deliveries(&self, approval_id: &str) -> Result<Vec<Delivery>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM webhook_deliveries WHERE approval_id = ? ORDER BY id")
                .bind(approval_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
    }

    async fn insert_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_keys (id, hash, role, label, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&k.id)
            .bind(&k.hash)
            .bind(&k.role)
            .bind(&k.label)
            .bind(&k.created_at)
            .bind(&k.revoked_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(key_row).collect::<Result<_, _>>()?)
    }

    async fn revoke_key(&self, id: &str, at: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }
}
