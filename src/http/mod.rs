//! The HTTP API: one file per resource. A request passes the layers (request
//! id, tracing, panic catching, body limit, timeout), then its handler's
//! extractors authenticate and rate-limit it (`auth`), then the handler runs.

pub mod approvals;
pub mod auth;
pub mod enforce;
pub mod error;
pub mod json;
pub mod openapi;
pub mod ops;
pub mod params;
pub mod policy;
pub mod sessions;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;

pub fn router(state: AppState) -> Router {
    let limits = &state.settings.limits;
    // Ordinary requests are cut off after the request timeout. Decisions,
    // results and resolutions are not: each bounds the part before its write
    // is queued and, once queued, answers when it is committed, so a 503
    // always means nothing was recorded. Long polls, streams, exports and
    // verification bound themselves.
    let deadline = Duration::from_secs(limits.request_timeout_secs);
    let api = Router::new()
        .route(
            "/policy/test",
            post(enforce::test_post).get(enforce::test_get),
        )
        .route("/policy/current", get(policy::current))
        .route("/policy/validate", post(policy::validate))
        .route("/policy/reload", post(policy::reload))
        .route("/policy/versions", get(policy::versions))
        .route("/policy/versions/{hash}", get(policy::version))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::logs_of))
        .route("/sessions/{id}/summary", get(sessions::summary))
        .route("/logs", get(sessions::logs))
        .route("/approvals", get(approvals::list))
        .route("/status", get(ops::status))
        .route_layer(axum::middleware::from_fn_with_state(deadline, cut_off))
        .route("/enforce", post(enforce::enforce))
        .route("/enforce/{session_id}/result", post(enforce::report_result))
        .route("/approvals/{id}", get(approvals::show))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/deny", post(approvals::deny))
        .route("/logs/export", get(sessions::export))
        .route("/events", get(ops::events))
        .route("/compliance/integrity/verify", get(ops::verify));
    Router::new()
        .nest("/api/v1", api)
        .route("/enforce", post(enforce::enforce))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::document))
        .method_not_allowed_fallback(|| async {
            error::ApiError::MethodNotAllowed(
                "this endpoint does not take that method; see /openapi.json".into(),
            )
        })
        .fallback(|| async {
            error::ApiError::NotFound(
                "no such endpoint; the API is under /api/v1 (see /openapi.json)".into(),
            )
        })
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The request timeout as a JSON 503 (nothing the cut-off routes do is
/// half-recorded: they only read, or change what a retry changes again).
async fn cut_off(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error::ApiError::Unavailable(format!(
            "the request took longer than {} s and was stopped",
            limit.as_secs()
        ))
        .into_response(),
    }
}

/// Tasks that run beside the server: key refresh, policy reload on SIGHUP and
/// on file change, audit retention.
pub fn spawn_background(state: AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let s = state.clone();
    tasks.push(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            if let Err(e) = s.auth.refresh(&*s.store).await {
                tracing::warn!(error = %e, "could not refresh API keys; the previous set stays");
            }
        }
    }));
    #[cfg(unix)]
    {
        let s = state.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the policy");
                let _ = s.policy.reload().await;
            }
        }));
    }
    tasks.push(tokio::spawn(crate::approvals::sweep(state.clone())));
    tasks.push(tokio::spawn(crate::webhook::resend_undelivered(
        state.clone(),
    )));
    // Approvals resolved through other servers sharing the database wake waiters here too.
    let s = state.clone();
    tasks.push(tokio::spawn(async move {
        let wake = |id: Option<&str>| match id {
            Some(id) => s.waiters.wake(id),
            None => s.waiters.wake_all(),
        };
        s.store.listen_approvals(&wake).await;
    }));
    if state.settings.watch_policy {
        tasks.push(tokio::spawn(crate::watch::watch_policy(state.clone())));
    }
    if let Some(days) = state.settings.audit.retention_days {
        tasks.push(tokio::spawn(crate::retention::run(state.clone(), days)));
    }
    tasks
}
