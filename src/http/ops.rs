//! Operations: `/health`, `/ready`, `/api/v1/status`, `/metrics`,
//! `/api/v1/compliance/integrity/verify` and the `/api/v1/events` stream.

use std::convert::Infallible;

use super::params::Params;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;

use super::auth::{Principal, Role};
use super::error::{ApiError, ErrorBody};
use crate::app::AppState;
use crate::store::{Store, StoreError};

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "Alive: {\"status\": \"ok\", \"version\"}", body = serde_json::Value)))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, description = "The database answers, the audit writer runs and a policy is loaded: {\"ready\": true, \"database\": \"ok\", \"audit\": \"ok\", \"policy\"}", body = serde_json::Value), (status = 503, description = "Not ready: database or audit says why", body = serde_json::Value)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let loaded = state.policy.current();
    let policy = json!({"version": loaded.policy.version, "hash": loaded.policy.hash});
    let database = state.store.ping().await;
    // Decisions need the log's writers as well as a database that answers.
    let audit = state.audit_writing();
    let said = |r: &Result<(), StoreError>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e.to_string()),
    };
    let ready = database.is_ok() && audit.is_ok();
    let body = Json(
        json!({"ready": ready, "database": said(&database), "audit": said(&audit), "policy": policy}),
    );
    match ready {
        true => body.into_response(),
        false => (StatusCode::SERVICE_UNAVAILABLE, body).into_response(),
    }
}

#[utoipa::path(get, path = "/api/v1/status", tag = "operations", responses((status = 200, description = "version, uptime_seconds, policy, storage, auth, counts", body = serde_json::Value), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let loaded = state.policy.current();
    let p = &loaded.policy;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "policy": {"version": p.version, "hash": p.hash, "rules_count": p.rules.len(), "loaded_at": loaded.loaded_at, "file": p.file},
        "storage": state.store.backend(),
        "auth": if state.auth.is_open() { "open" } else { "required" },
        "counts": {"decisions": state.decision_count.get(&*state.store).await?, "queued_writes": state.writer.queued()},
    })))
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain"), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Admin], "reading metrics")?;
    let mut text = state.metrics.render();
    // Pending approvals are counted in the database at each scrape, so those
    // made or resolved through other servers count too; without the
    // database, the rest still renders.
    match state
        .store
        .count_pending_approvals(&crate::timefmt::format(chrono::Utc::now()))
        .await
    {
        Ok(pending) => text.push_str(&format!(
            "# HELP tame_approvals_pending Approvals waiting for a human (unexpired).\n\
             # TYPE tame_approvals_pending gauge\n\
             tame_approvals_pending {pending}\n"
        )),
        Err(e) => {
            tracing::warn!(error = %e, "/metrics: could not count pending approvals; the gauge is left out")
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

#[utoipa::path(get, path = "/api/v1/compliance/integrity/verify", tag = "operations", responses((status = 200, description = "{valid, checked, first_seq, last_seq, broken: {seq, id, problem} | null}", body = serde_json::Value), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[Role::Approver, Role::Admin], "verifying the audit log")?;
    let v = crate::audit::verify(&*state.store, &state.secret).await?;
    Ok(Json(
        serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    session_id: Option<String>,
}

/// Server-sent events: one per committed decision and result.
#[utoipa::path(get, path = "/api/v1/events", tag = "operations", params(("session_id" = Option<String>, Query)), responses((status = 200, description = "Server-sent events: one per committed decision and result", content_type = "text/event-stream"), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    Params(q): Params<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    principal.require(&[Role::Approver, Role::Admin], "following events")?;
    let only = q.session_id.filter(|s| !s.is_empty());
    let stream = BroadcastStream::new(state.events.subscribe()).filter_map(move |item| {
        let event = item.ok()?;
        if let Some(s) = &only {
            if event.get("session_id").and_then(Value::as_str) != Some(s.as_str()) {
                return None;
            }
        }
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("event")
            .to_string();
        Some(Ok(SseEvent::default().event(kind).data(event.to_string())))
    });
    // The stream ends when the server starts shutting down, so draining never waits on it.
    let mut stopping = state.stopping.subscribe();
    let stopped = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    Ok(Sse::new(futures::StreamExt::take_until(stream, stopped)).keep_alive(KeepAlive::default()))
}

/// The count of decisions in the log, as `/status` reports it. Counting
/// takes time in proportion to the log, so callers share counts: at most one
/// runs at a time, and a caller takes the result of one that started after it
/// arrived (never an older one), so a burst of calls costs one count, not one
/// each, and each still sees every decision committed before it asked.
#[derive(Default)]
pub struct DecisionCount {
    /// Counts started so far.
    started: std::sync::atomic::AtomicU64,
    /// The last count to finish: (its number, its result).
    last: tokio::sync::Mutex<(u64, Option<Result<i64, StoreError>>)>,
}

impl DecisionCount {
    pub async fn get(&self, store: &dyn Store) -> Result<i64, StoreError> {
        use std::sync::atomic::Ordering;
        let arrived = self.started.load(Ordering::Acquire);
        let mut last = self.last.lock().await;
        if let (n, Some(result)) = &*last
            && *n > arrived
        {
            return result.clone();
        }
        let n = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        let result = store.count_decisions().await;
        *last = (n, Some(result.clone()));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callers_at_once_share_one_count_and_none_gets_one_older_than_its_call() {
        let (_dir, store) = crate::store::sqlite::SqliteStore::temporary().await;
        let count = std::sync::Arc::new(DecisionCount::default());
        assert_eq!(count.get(&store).await.unwrap(), 0);
        // Held, as a count under way would hold it: those who call meanwhile wait.
        let held = count.last.lock().await;
        let store = std::sync::Arc::new(store);
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (count, store) = (count.clone(), store.clone());
                tokio::spawn(async move { count.get(&*store).await })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), 0);
        }
        // The eight who called while the lock was held shared one count.
        assert_eq!(count.started.load(std::sync::atomic::Ordering::Acquire), 2);
    }
}
