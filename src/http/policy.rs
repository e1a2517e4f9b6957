//! The policy as the API shows it: `GET /api/v1/policy/current`,
//! `POST /api/v1/policy/validate`, `POST /api/v1/policy/reload`,
//! `GET /api/v1/policy/versions` and `/versions/{hash}`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::auth::{Principal, Role};
use super::error::{ApiError, ErrorBody};
use super::json::Body;
use crate::app::AppState;
use crate::policy::{Diagnostic, Policy};
use crate::reload::ReloadError;

#[utoipa::path(get, path = "/api/v1/policy/current", tag = "policy", responses((status = 200, description = "version, description, rules_count, last_updated, hash, active, rules", body = serde_json::Value), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn current(State(state): State<AppState>, _principal: Principal) -> Json<Value> {
    let loaded = state.policy.current();
    let p = &loaded.policy;
    Json(json!({
        "version": p.version,
        "description": p.description,
        "rules_count": p.rules.len(),
        "last_updated": loaded.loaded_at,
        "hash": p.hash,
        "active": true,
        "file": p.file,
        "strategy": p.strategy,
        "default_action": p.default_action,
        "timezone": p.timezone.name(),
        "rules": p.rules.iter().map(|r| json!({
            "name": r.name,
            "description": r.description,
            "action": r.action,
            "tools": r.tools,
            "condition": r.condition,
            "enabled": r.enabled,
        })).collect::<Vec<_>>(),
    }))
}

#[utoipa::path(post, path = "/api/v1/policy/validate", tag = "policy", request_body(content = serde_json::Value, description = "{\"content\": \"<policy YAML>\"}"), responses((status = 200, description = "{valid, errors: [{message, line, column, rule}], warnings, rules_count}", body = serde_json::Value), (status = 400, description = "Unreadable JSON", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 422, description = "Wrong fields", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn validate(_principal: Principal, Body(body): Body) -> Result<Json<Value>, ApiError> {
    let content = match body.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "content must be the policy's YAML text as a string, not {}",
                super::enforce::json_type(other)
            )));
        }
        None => {
            return Err(ApiError::Invalid(
                "content is required: {\"content\": \"<policy YAML>\"}".into(),
            ));
        }
    };
    // One validation compiles at a time (a big policy takes a core for a
    // while): callers queue rather than take every core from decisions. The
    // permit goes with the work, so one cut off by the request timeout
    // still holds it until it ends.
    static COMPILING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    let permit = COMPILING
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("validation queue closed: {e}")))?;
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        Policy::from_source("policy.yaml", &content)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("validation panicked: {e}")))?;
    let list = |ds: &[Diagnostic]| {
        ds.iter().map(|d| json!({"message": d.message, "line": d.line, "column": d.column, "rule": d.rule})).collect::<Vec<_>>()
    };
    Ok(Json(match result {
        Ok(p) => {
            json!({"valid": true, "errors": [], "warnings": list(&p.warnings), "rules_count": p.rules.len(), "version": p.version, "hash": p.hash})
        }
        Err(e) => {
            json!({"valid": false, "errors": list(&e.errors), "warnings": [], "rules_count": 0})
        }
    }))
}

#[utoipa::path(post, path = "/api/v1/policy/reload", tag = "policy", responses((status = 200, description = "Reloaded: status, version, hash, rules_count, loaded_at", body = serde_json::Value), (status = 422, description = "The file was refused; the current policy stays", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn reload(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[Role::Admin], "reloading the policy")?;
    match state.policy.reload().await {
        Ok(l) => Ok(Json(json!({
            "status": "reloaded",
            "version": l.policy.version,
            "hash": l.policy.hash,
            "rules_count": l.policy.rules.len(),
            "loaded_at": l.loaded_at,
        }))),
        Err(ReloadError::Policy(e)) => Err(ApiError::Invalid(format!(
            "the policy on disk was refused and the current one stays in force:\n{e}"
        ))),
        Err(ReloadError::Store(e)) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/policy/versions", tag = "policy", responses((status = 200, description = "{versions: [{version, hash, loaded_at, rules_count, file}]}, newest first", body = serde_json::Value), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let list = state.store.policy_versions().await?;
    Ok(Json(json!({"versions": list})))
}

#[utoipa::path(get, path = "/api/v1/policy/versions/{hash}", tag = "policy", params(("hash" = String, Path)), responses((status = 200, description = "The version with its full text (content)", body = serde_json::Value), (status = 404, description = "Never loaded", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    _principal: Principal,
    Path(hash): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.store.policy_version(&hash).await? {
        Some(v) => Ok(Json(json!({
            "hash": v.hash, "version": v.version, "file": v.file, "rules_count": v.rules_count,
            "loaded_at": v.loaded_at, "content": v.source,
        }))),
        None => Err(ApiError::NotFound(format!(
            "no policy with hash {hash:?} was ever loaded"
        ))),
    }
}
