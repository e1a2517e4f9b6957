//! Approvals over HTTP: `GET /api/v1/approvals?status=`, `GET
//! /api/v1/approvals/{id}?wait=SECONDS` (long poll), `POST
//! /api/v1/approvals/{id}/approve` and `/deny` with `{"comment": "..."}`.

use std::time::Duration;

use super::params::Params;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Principal, Role};
use super::error::{ApiError, ErrorBody};
use crate::app::AppState;
use crate::approvals::{self, ResolveError};
use axum::body::Bytes;

/// The longest a long poll may hold a request open.
const MAX_WAIT_SECS: u64 = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(("status" = Option<String>, Query, description = "pending, approved, denied or expired"), ("limit" = Option<i64>, Query)), responses((status = 200, description = "{approvals: [approval]}, newest first", body = serde_json::Value), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "Needs approver or admin", body = ErrorBody), (status = 422, description = "Bad filter", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Params(q): Params<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[Role::Approver, Role::Admin], "listing approvals")?;
    let status = q.status.filter(|s| !s.is_empty());
    if let Some(s) = &status {
        if !matches!(s.as_str(), "pending" | "approved" | "denied" | "expired") {
            return Err(ApiError::Invalid(format!(
                "status must be pending, approved, denied or expired, not {s:?}"
            )));
        }
    }
    let limit = match q.limit.as_deref() {
        None | Some("") => 100,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "limit must be a whole number from 1 to 1000, not {t:?}"
                ))
            })?,
    };
    let rows = state.store.approvals(status.as_deref(), limit).await?;
    Ok(Json(
        json!({"approvals": rows.iter().map(approvals::to_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    wait: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path), ("wait" = Option<u64>, Query, description = "Hold the request open up to this many seconds (at most 300) until the approval is resolved")), responses((status = 200, description = "The approval, with its history: every audit event about it", body = serde_json::Value), (status = 404, description = "No such approval", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "Another key's approval", body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Params(q): Params<ShowQuery>,
) -> Result<Json<Value>, ApiError> {
    let wait = match q.wait.as_deref() {
        None | Some("") => 0,
        Some(t) => t
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_WAIT_SECS)
            .ok_or_else(|| {
                ApiError::Invalid(format!(
                    "wait must be whole seconds from 0 to {MAX_WAIT_SECS}, not {t:?}"
                ))
            })?,
    };
    let Some(row) = state.store.approval(&id).await? else {
        return Err(ApiError::NotFound(format!("no approval {id:?}")));
    };
    // The agent that asked may read (and wait on) its own approvals; approvers and admins any.
    if principal.role == Role::Agent && row.requested_by != principal.id {
        return Err(ApiError::NotFound(format!("no approval {id:?}")));
    }
    let row = if wait > 0 {
        approvals::wait(&state, &id, Duration::from_secs(wait))
            .await?
            .unwrap_or(row)
    } else {
        row
    };
    let history = state.store.events_about(&id).await?;
    let mut body = approvals::to_json(&row);
    body["history"] = history
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq, "kind": e.event.kind, "timestamp": e.event.ts, "decision": e.event.decision,
                "principal": e.event.principal, "log_id": e.event.id,
                "detail": serde_json::from_str::<Value>(&e.event.body).unwrap_or(Value::Null),
            })
        })
        .collect();
    Ok(Json(body))
}

/// The comment of a resolution's body: none, `{}` or `{"comment": …}`. Any
/// other body is refused, as a resolution cannot be taken back: one sent by
/// mistake (`{"reason": "deny"}` to approve, say) changes nothing.
fn comment(body: &Value) -> Result<Option<String>, ApiError> {
    match body {
        Value::Null => return Ok(None),
        Value::Object(fields) => {
            if let Some(other) = fields.keys().find(|k| *k != "comment") {
                return Err(ApiError::Invalid(format!(
                    "unknown field {other:?}: the body is {{\"comment\": \"...\"}} or nothing"
                )));
            }
        }
        other => {
            return Err(ApiError::Invalid(format!(
                "the body must be a JSON object ({{\"comment\": \"...\"}}) or nothing, not {}",
                super::enforce::json_type(other)
            )));
        }
    }
    match body.get("comment") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 4096 => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::Invalid(
            "comment is longer than 4096 characters".into(),
        )),
        Some(other) => Err(ApiError::Invalid(format!(
            "comment must be a string, not {}",
            super::enforce::json_type(other)
        ))),
    }
}

async fn resolve(
    state: AppState,
    principal: Principal,
    id: String,
    body: Value,
    approve: bool,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[Role::Approver, Role::Admin], "resolving approvals")?;
    let comment = comment(&body)?;
    match approvals::resolve(&state, &id, approve, &principal.id, comment).await {
        Ok(row) => Ok(Json(approvals::to_json(&row))),
        Err(ResolveError::NotFound(_)) => Err(ApiError::NotFound(format!("no approval {id:?}"))),
        Err(e @ ResolveError::Settled { .. }) => Err(ApiError::Conflict(e.to_string())),
        Err(e @ ResolveError::OwnRequest) => Err(ApiError::Forbidden(e.to_string())),
        Err(ResolveError::Store(e)) => Err(e.into()),
    }
}

/// An empty body is allowed: the comment is optional.
fn optional_body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
}

#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", params(("id" = String, Path)), request_body(content = serde_json::Value, description = "{\"comment\": \"...\"} (optional)"), responses((status = 200, description = "The approval, now approved", body = serde_json::Value), (status = 404, description = "No such approval", body = ErrorBody), (status = 409, description = "Already resolved or expired", body = ErrorBody), (status = 403, description = "Needs approver or admin, and not the key that asked", body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    resolve(state, principal, id, optional_body(&body)?, true).await
}

#[utoipa::path(post, path = "/api/v1/approvals/{id}/deny", tag = "approvals", params(("id" = String, Path)), request_body(content = serde_json::Value, description = "{\"comment\": \"...\"} (optional)"), responses((status = 200, description = "The approval, now denied", body = serde_json::Value), (status = 404, description = "No such approval", body = ErrorBody), (status = 409, description = "Already resolved or expired", body = ErrorBody), (status = 403, description = "Needs approver or admin, and not the key that asked", body = ErrorBody)))]
pub async fn deny(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    resolve(state, principal, id, optional_body(&body)?, false).await
}
