//! The PostgreSQL backend: one database shared by any number of servers.
//!
//! - Session counters live in the database: a decision reserves its place
//!   with one atomic `INSERT … ON CONFLICT DO UPDATE … RETURNING`, and its
//!   outcome is added, as a delta, in the transaction that records it.
//! - The audit chain stays one chain. Every append transaction first takes a
//!   transaction-scoped advisory lock, so servers append one batch at a time,
//!   each batch holding all that its server queued meanwhile (group commit).
//! - A resolved or expired approval is announced with `NOTIFY` on commit, so
//!   waiters on every server wake.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{PgConnection, Postgres};

use super::rows::session;
use super::{
    Appended, ApprovalOp, ApprovalRow, Delivery, Entry, KeyRow, LogFilter, PolicyVersion,
    Reservation, SessionChange, SessionFilter, SessionRow, Store, StoreError, Write,
};
use crate::audit::{self, ChainState, Event, Stored};
use crate::policy::Action;
use crate::session::{MAX_TOOLS, OTHER_TOOLS};

/// The advisory lock every append to the chain holds ("tame" in ASCII).
const CHAIN_LOCK: i64 = 0x7461_6d65;
/// The channel resolved and expired approvals are announced on.
pub const APPROVALS_CHANNEL: &str = "tame_approvals";

pub struct PgStore {
    pool: PgPool,
    /// For reservations: their commits do not wait for the disk. Any decision
    /// made under a reservation is committed later with a flush of the log,
    /// which carries the reservation with it; one whose decision was never
    /// committed may be lost in a crash, and then counts for nothing.
    counters: PgPool,
}

/// Number a statement's `?` placeholders as PostgreSQL's `$1`, `$2`, …
/// (the shared statements have no `?` but their placeholders).
fn sql(text: &str) -> sqlx::AssertSqlSafe<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    sqlx::AssertSqlSafe(out)
}

super::queries::queries!(PgStore, Postgres, PgConnection);

impl PgStore {
    /// Sessions are kept up to date in each decision's own transaction.
    async fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Connect with at most `connections` in all: one held by the approvals
    /// listener, and of the others half (rounded down) for the session
    /// counters and the rest for the audit log and reads.
    pub async fn open(
        url: &str,
        acquire_timeout: Duration,
        connections: u32,
    ) -> Result<PgStore, StoreError> {
        if connections < 3 {
            return Err(StoreError::Invalid(format!(
                "database_connections (TAME_DATABASE_CONNECTIONS) is {connections}; PostgreSQL needs at least 3: \
                 one for session counters, one held to hear about approvals, one for the audit log and reads"
            )));
        }
        let counters = (connections - 1) / 2;
        let mut options = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Invalid(format!(
                "bad PostgreSQL URL: {e} (expected postgres://USER:PASSWORD@HOST:5432/DATABASE)"
            ))
        })?;
        // TLS only when asked for (sslmode=require, verify-ca or verify-full,
        // in the URL or PGSSLMODE): opportunistic TLS protects against no one who can
        // tamper with the connection, and the driver's TLS stream holds back
        // the end of large statements until the peer's delayed acknowledgement
        // (tens of milliseconds), which caps a server at several hundred
        // decisions a second.
        if matches!(options.get_ssl_mode(), PgSslMode::Prefer) {
            options = options.ssl_mode(PgSslMode::Disable);
        }
        let connect = |size, options| {
            PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
        };
        let unavailable =
            |e: sqlx::Error| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}"));
        let pool = connect(connections - counters, options.clone())
            .await
            .map_err(unavailable)?;
        let counters = connect(counters, options.options([("synchronous_commit", "off")]))
            .await
            .map_err(unavailable)?;
        // sqlx holds an advisory lock while migrating, so servers starting together take turns.
        super::migrator(&[
            (
                1,
                "init",
                include_str!("../../migrations/postgres/0001_init.sql"),
            ),
            (
                2,
                "approvals",
                include_str!("../../migrations/postgres/0002_approvals.sql"),
            ),
        ])
        .run(&pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))?;
        Ok(PgStore { pool, counters })
    }
}

/// Session rows: the counters reserved and the outcomes committed, with the
/// tool counts as JSON text. `s` is the sessions table (or a row of it).
const SESSIONS: &str = "SELECT id, agent_id, user_id, started_at, last_at, action_count, \
     COALESCE(o.allowed_count, 0) AS allowed_count, COALESCE(o.denied_count, 0) AS denied_count, \
     COALESCE(o.approval_count, 0) AS approval_count, tool_counts::text AS tool_counts, \
     COALESCE(o.estimated_cost, 0) AS estimated_cost, principal \
     FROM sessions s LEFT JOIN session_outcomes o USING (id)";

/// A decision of the session `?`: the log is indexed by session.
const SESSION_MATCH: &str = "d.session_id = ?";

/// Appends read the chain's head after taking its lock, so each statement
/// must see what the previous holder committed, whatever the database's default.
const READ_COMMITTED: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// The largest cost total kept; past it, costs add nothing.
const MAX_COST: f64 = f64::MAX;

/// Begin a transaction that appends to the chain: take the chain's lock
/// (servers append one at a time), then read where it stands.
async fn begin_chain(
    pool: &PgPool,
) -> Result<(sqlx::Transaction<'static, Postgres>, ChainState), sqlx::Error> {
    let mut tx = pool.begin_with(READ_COMMITTED).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await?;
    let at = read_chain(&mut tx).await?.unwrap_or_else(ChainState::empty);
    Ok((tx, at))
}

/// Append `events` after the head of `at` with one statement, advancing it.
async fn append_events(
    conn: &mut PgConnection,
    secret: &[u8],
    at: &mut ChainState,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len();
    let (mut seqs, mut prevs, mut hashes) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in events {
        let seq = at.head_seq + 1;
        let hash = audit::row_hash(secret, seq, e, &at.head_hash);
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut at.head_hash, hash.clone()));
        hashes.push(hash);
        at.head_seq = seq;
    }
    let text = |f: fn(&Event) -> &String| events.iter().map(f).cloned().collect::<Vec<_>>();
    let maybe =
        |f: fn(&Event) -> &Option<String>| events.iter().map(f).cloned().collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO audit_log (seq, id, kind, ref_id, session_id, ts, tool_name, tool_args, agent_id, user_id, metadata, \
         decision, rule_name, reason, policy_version, policy_hash, principal, body, prev_hash, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
         $16::text[], $17::text[], $18::text[], $19::text[], $20::text[])",
    )
    .bind(seqs)
    .bind(text(|e| &e.id))
    .bind(text(|e| &e.kind))
    .bind(maybe(|e| &e.ref_id))
    .bind(text(|e| &e.session_id))
    .bind(text(|e| &e.ts))
    .bind(maybe(|e| &e.tool_name))
    .bind(maybe(|e| &e.tool_args))
    .bind(maybe(|e| &e.agent_id))
    .bind(maybe(|e| &e.user_id))
    .bind(maybe(|e| &e.metadata))
    .bind(maybe(|e| &e.decision))
    .bind(maybe(|e| &e.rule_name))
    .bind(maybe(|e| &e.reason))
    .bind(maybe(|e| &e.policy_version))
    .bind(maybe(|e| &e.policy_hash))
    .bind(maybe(|e| &e.principal))
    .bind(text(|e| &e.body))
    .bind(prevs)
    .bind(hashes)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Outcome counts and cost to add to one session.
#[derive(Default)]
struct Delta {
    allowed: i64,
    denied: i64,
    approval: i64,
    cost: f64,
}

/// Gather the additive changes of a write into `deltas`.
fn gather(
    changes: Vec<SessionChange>,
    deltas: &mut HashMap<String, Delta>,
) -> Result<(), StoreError> {
    for change in changes {
        match change {
            SessionChange::Outcome { id, action } => {
                let d = deltas.entry(id).or_default();
                match action {
                    Action::Allow => d.allowed += 1,
                    Action::Deny => d.denied += 1,
                    Action::Approve => d.approval += 1,
                }
            }
            SessionChange::Cost { id, amount } => deltas.entry(id).or_default().cost += amount,
            SessionChange::Row(row) => {
                return Err(StoreError::Invalid(format!(
                    "PostgreSQL counts sessions in the database; a whole row for session {:?} cannot be written",
                    row.id
                )));
            }
        }
    }
    Ok(())
}

async fn apply_deltas(
    conn: &mut PgConnection,
    deltas: HashMap<String, Delta>,
) -> Result<(), sqlx::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    // In a fixed order, so concurrent writers lock rows alike.
    let mut deltas: Vec<_> = deltas.into_iter().collect();
    deltas.sort_by(|a, b| a.0.cmp(&b.0));
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, d) in deltas {
        columns.0.push(id);
        columns.1.push(d.allowed);
        columns.2.push(d.denied);
        columns.3.push(d.approval);
        columns.4.push(d.cost);
    }
    sqlx::query(
        "INSERT INTO session_outcomes AS o (id, allowed_count, denied_count, approval_count, estimated_cost) \
         SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::float8[]) \
         ON CONFLICT (id) DO UPDATE SET allowed_count = o.allowed_count + EXCLUDED.allowed_count, \
         denied_count = o.denied_count + EXCLUDED.denied_count, approval_count = o.approval_count + EXCLUDED.approval_count, \
         estimated_cost = CASE WHEN EXCLUDED.estimated_cost <= $6 - o.estimated_cost \
           THEN o.estimated_cost + EXCLUDED.estimated_cost ELSE $6 END",
    )
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .bind(MAX_COST)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Apply one approval change; `Ok(false)` when its expected state is not there.
async fn apply_approval(
    conn: &mut sqlx::PgConnection,
    op: &ApprovalOp,
) -> Result<bool, sqlx::Error> {
    let done = match op {
        ApprovalOp::Create(a) => {
            sqlx::query(sql(super::queries::APPROVAL_CREATE))
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
                .await?
        }
        ApprovalOp::Resolve {
            id,
            status,
            by,
            comment,
            at,
        } => {
            sqlx::query(sql(super::queries::APPROVAL_RESOLVE))
                .bind(status)
                .bind(by)
                .bind(comment)
                .bind(at)
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?
        }
        ApprovalOp::Consume { id, log_id, at } => {
            sqlx::query(sql(super::queries::APPROVAL_CONSUME))
                .bind(at)
                .bind(log_id)
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?
        }
        ApprovalOp::Expire { id, at } => {
            sqlx::query(sql(super::queries::APPROVAL_EXPIRE))
                .bind(at)
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn shared_sessions(&self) -> bool {
        true
    }

    async fn reserve(&self, c: &Reservation) -> Result<Option<SessionRow>, StoreError> {
        // The session's row comes back from the reservation, joined with its outcomes.
        let sql = format!(
            "WITH s AS (INSERT INTO sessions AS s (id, agent_id, user_id, started_at, last_at, action_count, tool_counts, principal) \
             VALUES ($1, $2, $3, $4, $4, 1, jsonb_build_object($5::text, 1), $6) \
             ON CONFLICT (id) DO UPDATE SET action_count = s.action_count + 1, last_at = GREATEST(s.last_at, EXCLUDED.last_at), \
             agent_id = COALESCE(s.agent_id, EXCLUDED.agent_id), user_id = COALESCE(s.user_id, EXCLUDED.user_id), \
             tool_counts = (SELECT jsonb_set(s.tool_counts, ARRAY[k.key], to_jsonb(COALESCE((s.tool_counts ->> k.key)::bigint, 0) + 1)) \
               FROM (SELECT CASE WHEN jsonb_exists(s.tool_counts, $5) \
                 OR (SELECT count(*) FROM jsonb_object_keys(s.tool_counts)) < {MAX_TOOLS} THEN $5 ELSE $8 END AS key) k) \
             WHERE s.principal IS NULL OR s.principal = EXCLUDED.principal OR $7 \
             RETURNING *) {}",
            SESSIONS.replace("FROM sessions s", "FROM s")
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&c.session_id)
            .bind(&c.agent_id)
            .bind(&c.user_id)
            .bind(crate::timefmt::format(c.at))
            .bind(&c.tool_name)
            .bind(&c.principal)
            .bind(c.admin)
            .bind(OTHER_TOOLS)
            .fetch_optional(&self.counters)
            .await?;
        Ok(row.as_ref().map(session).transpose()?)
    }

    async fn release(&self, id: &str, tool: &str) -> Result<(), StoreError> {
        let mut tx = self.counters.begin().await?;
        sqlx::query(
            "UPDATE sessions SET action_count = GREATEST(action_count - 1, 0), \
             tool_counts = CASE WHEN COALESCE((tool_counts ->> k.key)::bigint, 0) <= 1 THEN tool_counts - k.key \
             ELSE jsonb_set(tool_counts, ARRAY[k.key], to_jsonb((tool_counts ->> k.key)::bigint - 1)) END \
             FROM (SELECT CASE WHEN jsonb_exists(tool_counts, $2) THEN $2 ELSE $3 END AS key FROM sessions WHERE id = $1) k \
             WHERE id = $1",
        )
        .bind(id)
        .bind(tool)
        .bind(OTHER_TOOLS)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE id = $1 AND action_count = 0")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append(&self, secret: &[u8], writes: Vec<Write>) -> Appended {
        let (mut tx, mut at) = begin_chain(&self.pool).await?;
        let mut results = Vec::with_capacity(writes.len());
        let mut events = Vec::new();
        let mut deltas = HashMap::new();
        let mut announce = Vec::new();
        for w in writes {
            if !w.approvals.is_empty() {
                // A conditional write: all of it, or none of it. Its events and
                // counts are only gathered here, so skipping it undoes nothing else.
                sqlx::query("SAVEPOINT write").execute(&mut *tx).await?;
                let mut applied = true;
                for op in &w.approvals {
                    if !apply_approval(&mut tx, op).await? {
                        applied = false;
                        break;
                    }
                }
                if !applied {
                    sqlx::query("ROLLBACK TO SAVEPOINT write")
                        .execute(&mut *tx)
                        .await?;
                    results.push(Err(StoreError::Conflict(
                        "the approval was resolved, used or expired meanwhile".into(),
                    )));
                    continue;
                }
                sqlx::query("RELEASE SAVEPOINT write")
                    .execute(&mut *tx)
                    .await?;
                for op in &w.approvals {
                    if let ApprovalOp::Resolve { id, .. } | ApprovalOp::Expire { id, .. } = op {
                        announce.push(id.clone());
                    }
                }
            }
            gather(w.sessions, &mut deltas)?;
            events.extend(w.events);
            results.push(Ok(()));
        }
        append_events(&mut tx, secret, &mut at, &events).await?;
        apply_deltas(&mut tx, deltas).await?;
        seal(&mut tx, secret, &at).await?;
        if !announce.is_empty() {
            sqlx::query("SELECT pg_notify($1, id) FROM UNNEST($2::text[]) AS id")
                .bind(APPROVALS_CHANNEL)
                .bind(announce)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn listen_approvals(&self, wake: &(dyn for<'a> Fn(Option<&'a str>) + Send + Sync)) {
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for approvals on PostgreSQL; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(APPROVALS_CHANNEL).await {
                tracing::warn!(error = %e, "cannot listen for approvals on PostgreSQL; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever was announced while not listening: every waiter looks again.
            wake(None);
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => wake(Some(n.payload())),
                    // The connection was lost; messages meanwhile may be missed.
                    Ok(None) => {
                        wake(None);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the approvals listener; reconnecting");
                        wake(None);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    }
}
