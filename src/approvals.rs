//! Approvals: a human says yes (or no) to one exact call before it runs.
//!
//! An `approve` decision creates a pending approval in the same transaction
//! as its audit entry. It is bound to the call: session, tool name, a digest
//! of the arguments' canonical JSON, and the policy version that asked.
//! Approvers resolve it once; the agent that asked cannot. Waiters long-poll
//! and are woken the moment it is resolved or expires. Once approved, the
//! agent presents its id with the same call and gets `allow`, exactly once.
//! An approval not resolved within its TTL expires, which counts as denied.
//! Everything is in the database, so pending approvals survive restarts;
//! every step (requested, resolved, used, expired) is an audit event whose
//! `ref_id` is the approval's id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::app::AppState;
use crate::audit::Event;
use crate::store::{ApprovalOp, ApprovalRow, StoreError, Write};
use crate::timefmt;

/// The audit event kind of resolutions and expiries.
pub const EVENT_KIND: &str = "approval";

/// SHA-256 of the arguments' canonical JSON (keys sorted, no spaces).
pub fn args_digest(args: &Value) -> String {
    // serde_json's maps are ordered by key, so this text is canonical.
    hex::encode(Sha256::digest(args.to_string().as_bytes()))
}

/// Wakes the requests waiting on approvals.
#[derive(Default)]
pub struct Waiters {
    by_id: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Waiters {
    fn notifier(&self, id: &str) -> Arc<Notify> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string()).or_default().clone()
    }

    /// Wake everyone waiting on `id`.
    pub fn wake(&self, id: &str) {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get(id) {
            n.notify_waiters();
        }
    }

    /// Wake every waiter, so each looks at its approval again.
    pub fn wake_all(&self) {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        for n in map.values() {
            n.notify_waiters();
        }
    }

    fn forget_if_idle(&self, id: &str) {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(id).is_some_and(|n| Arc::strong_count(n) == 1) {
            map.remove(id);
        }
    }
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map_or(DateTime::<Utc>::MIN_UTC, |t| t.with_timezone(&Utc))
}

/// The approval as the API shows it.
pub fn to_json(a: &ApprovalRow) -> Value {
    json!({
        "id": a.id,
        "status": a.status,
        "usable": usable(a, Utc::now()),
        "session_id": a.session_id,
        "log_id": a.log_id,
        "tool_name": a.tool_name,
        "tool_args": serde_json::from_str::<Value>(&a.tool_args).unwrap_or(Value::Null),
        "rule_name": a.rule_name,
        "reason": a.reason,
        "policy_version": a.policy_version,
        "policy_hash": a.policy_hash,
        "requested_by": a.requested_by,
        "created_at": a.created_at,
        "expires_at": a.expires_at,
        "resolved_at": a.resolved_at,
        "resolved_by": a.resolved_by,
        "comment": a.comment,
        "consumed_at": a.consumed_at,
        "consumed_log_id": a.consumed_log_id,
    })
}

/// Whether presenting `a` at `now` would let its call through (the policy
/// still runs): approved, not used, and not past `expires_at`. An approved
/// approval keeps its status once used or past its time; this tells them apart.
pub fn usable(a: &ApprovalRow, now: DateTime<Utc>) -> bool {
    a.status == "approved"
        && a.consumed_at.is_none()
        && DateTime::parse_from_rfc3339(&a.expires_at).is_ok_and(|t| t > now)
}

/// The audit event recording a resolution or an expiry.
fn event(
    a: &ApprovalRow,
    status: &str,
    by: &str,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Event {
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        kind: EVENT_KIND.into(),
        ref_id: Some(a.id.clone()),
        session_id: a.session_id.clone(),
        ts: timefmt::format(now),
        tool_name: Some(a.tool_name.clone()),
        tool_args: Some(a.tool_args.clone()),
        decision: Some(status.into()),
        rule_name: a.rule_name.clone(),
        reason: comment.map(str::to_string),
        policy_version: Some(a.policy_version.clone()),
        policy_hash: Some(a.policy_hash.clone()),
        principal: Some(by.into()),
        body: json!({"approval_id": a.id, "status": status, "by": by, "comment": comment, "log_id": a.log_id}).to_string(),
        ..Default::default()
    }
}

/// Why a resolution was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no approval {0:?}")]
    NotFound(String),
    #[error("approval {id:?} is already {status}")]
    Settled { id: String, status: String },
    #[error("an approval cannot be resolved by the key that asked for it")]
    OwnRequest,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Approve or deny a pending approval, recording who, when and why.
pub async fn resolve(
    state: &AppState,
    id: &str,
    approve: bool,
    by: &str,
    comment: Option<String>,
) -> Result<ApprovalRow, ResolveError> {
    let row = state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ResolveError::NotFound(id.into()))?;
    // With auth off every caller is the same anonymous admin: there is no one else to ask.
    if row.requested_by == by && !by.starts_with("open:") {
        return Err(ResolveError::OwnRequest);
    }
    let now = Utc::now();
    if row.status == "pending" && parse_time(&row.expires_at) <= now {
        expire(state, &row).await?;
        return Err(ResolveError::Settled {
            id: id.into(),
            status: "expired".into(),
        });
    }
    if row.status != "pending" {
        return Err(ResolveError::Settled {
            id: id.into(),
            status: row.status,
        });
    }
    let status = if approve { "approved" } else { "denied" };
    let at = timefmt::format(now);
    let write = Write {
        events: vec![event(&row, status, by, comment.as_deref(), now)],
        sessions: Vec::new(),
        approvals: vec![ApprovalOp::Resolve {
            id: id.into(),
            status: status.into(),
            by: by.into(),
            comment,
            at,
        }],
    };
    match state.writer.submit(write).await?.committed().await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            let now_status = state
                .store
                .approval(id)
                .await?
                .map_or_else(|| "gone".to_string(), |a| a.status);
            return Err(ResolveError::Settled {
                id: id.into(),
                status: now_status,
            });
        }
        Err(e) => return Err(e.into()),
    }
    state.waiters.wake(id);
    let resolved = state
        .store
        .approval(id)
        .await?
        .ok_or_else(|| ResolveError::NotFound(id.into()))?;
    crate::webhook::notify(state, "approval.resolved", &resolved);
    metrics::counter!("tame_approvals_resolved_total", "status" => status).increment(1);
    Ok(resolved)
}

/// Mark a pending approval past its expiry as expired (a no-op if it was
/// resolved meanwhile), and wake its waiters.
pub async fn expire(state: &AppState, row: &ApprovalRow) -> Result<(), StoreError> {
    let now = Utc::now();
    let write = Write {
        events: vec![event(row, "expired", "system", None, now)],
        sessions: Vec::new(),
        approvals: vec![ApprovalOp::Expire {
            id: row.id.clone(),
            at: timefmt::format(now),
        }],
    };
    match state.writer.submit(write).await?.committed().await {
        Ok(()) => {
            state.waiters.wake(&row.id);
            if let Ok(Some(expired)) = state.store.approval(&row.id).await {
                crate::webhook::notify(state, "approval.resolved", &expired);
            }
            metrics::counter!("tame_approvals_resolved_total", "status" => "expired").increment(1);
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Wait until approval `id` is no longer pending, or `timeout` passes, or it
/// expires (then it is marked expired); return its state then.
pub async fn wait(
    state: &AppState,
    id: &str,
    timeout: Duration,
) -> Result<Option<ApprovalRow>, StoreError> {
    /// Drops the approval's entry in the waiters' map when the last waiter
    /// leaves, however it leaves (answered, failed, or the caller gone).
    struct Leave<'a>(&'a Waiters, &'a str);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.forget_if_idle(self.1);
        }
    }
    let _leave = Leave(&state.waiters, id);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notify = state.waiters.notifier(id);
        let notified = notify.notified();
        tokio::pin!(notified);
        // Registered before reading, so a resolution between the read and the wait is not missed.
        notified.as_mut().enable();
        let Some(row) = state.store.approval(id).await? else {
            return Ok(None);
        };
        if row.status != "pending" {
            return Ok(Some(row));
        }
        let now = Utc::now();
        let expires = parse_time(&row.expires_at);
        if expires <= now {
            expire(state, &row).await?;
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Some(row));
        }
        let until_expiry = (expires - now).to_std().unwrap_or_default();
        let wake_at = deadline.min(tokio::time::Instant::now() + until_expiry);
        let mut stopping = state.stopping.subscribe();
        if *stopping.borrow() {
            return Ok(Some(row));
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(wake_at) => {}
            // The server is shutting down: answer with the state as it is; the client may wait again.
            _ = stopping.changed() => return Ok(Some(row)),
        }
    }
}

/// Expire overdue approvals every second, so that waiters and webhooks hear
/// of expiry even when nobody asks.
pub async fn sweep(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let overdue = match state
            .store
            .overdue_approvals(&timefmt::format(Utc::now()))
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for expired approvals");
                continue;
            }
        };
        for row in overdue {
            if let Err(e) = expire(&state, &row).await {
                tracing::warn!(error = %e, approval = %row.id, "cannot expire an approval");
            }
        }
    }
}
