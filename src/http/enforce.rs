//! `POST /api/v1/enforce` (and `/enforce`): decide a tool call, record it,
//! answer once the record is committed. `POST /api/v1/enforce/{session}/result`:
//! record what the tool did. `POST|GET /api/v1/policy/test`: decide without
//! recording anything.

use super::params::Params;
use axum::Json;
use axum::extract::{Path, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::auth::{Principal, Role};
use super::error::{ApiError, ErrorBody};
use super::json::Body;
use crate::app::AppState;
use crate::approvals;
use crate::audit::{Event, Kind};
use crate::policy::{Action, Decision, Request};
use crate::store::{ApprovalOp, ApprovalRow, Reservation, StoreError, Write};
use crate::timefmt;

/// Longest id or name accepted in a request.
const MAX_ID: usize = 256;

/// Run `work` with a deadline. A deadline of zero has passed already: the
/// work is not started (the timer's own granularity would otherwise let
/// quick work through).
async fn within<T>(
    deadline: std::time::Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, tokio::time::error::Elapsed> {
    if deadline.is_zero() {
        // An Elapsed error can only be made by a timeout that ran out.
        return tokio::time::timeout(deadline, std::future::pending()).await;
    }
    tokio::time::timeout(deadline, work).await
}

/// The fields of an enforce (or test) request, validated.
pub struct Call {
    pub request: Request,
    /// The session id was given (not generated).
    pub approval_id: Option<String>,
}

fn text_field(
    body: &Map<String, Value>,
    key: &str,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(ApiError::Invalid(format!(
            "{key} is required: the name of the tool the agent wants to run"
        ))),
        Some(Value::String(s)) => {
            if s.is_empty() && required {
                return Err(ApiError::Invalid(format!("{key} must not be empty")));
            }
            if s.chars().count() > MAX_ID {
                return Err(ApiError::Invalid(format!(
                    "{key} is longer than {MAX_ID} characters"
                )));
            }
            if s.chars().any(char::is_control) {
                return Err(ApiError::Invalid(format!(
                    "{key} must not contain control characters"
                )));
            }
            Ok(Some(s.clone()))
        }
        Some(other) => Err(ApiError::Invalid(format!(
            "{key} must be a string, not {}",
            json_type(other)
        ))),
    }
}

/// Take an object field out of the body (no copy); absent or null is `{}`.
fn object_field(body: &mut Map<String, Value>, key: &str) -> Result<Value, ApiError> {
    match body.remove(key) {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(obj @ Value::Object(_)) => Ok(obj),
        Some(other) => Err(ApiError::Invalid(format!(
            "{key} must be a JSON object, not {}",
            json_type(&other)
        ))),
    }
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validate an enforce body into the request the policy sees.
pub fn call(body: Value) -> Result<Call, ApiError> {
    let Value::Object(mut body) = body else {
        return Err(ApiError::Invalid(format!(
            "the body must be a JSON object, not {}",
            json_type(&body)
        )));
    };
    let tool_name = text_field(&body, "tool_name", true)?.unwrap_or_default();
    let session_id = match text_field(&body, "session_id", false)? {
        Some(s) if s.is_empty() => {
            return Err(ApiError::Invalid(
                "session_id must not be empty (leave it out to get a new session)".into(),
            ));
        }
        // Its later URLs (/sessions/{id}, /enforce/{id}/result) could not
        // name it: clients fold these path segments away.
        Some(s) if s == "." || s == ".." => {
            return Err(ApiError::Invalid(format!(
                "session_id must not be {s:?}: it could not be named in a URL path"
            )));
        }
        Some(s) => s,
        None => uuid::Uuid::now_v7().to_string(),
    };
    let (agent_id, user_id, approval_id) = (
        text_field(&body, "agent_id", false)?,
        text_field(&body, "user_id", false)?,
        text_field(&body, "approval_id", false)?,
    );
    let request = Request {
        tool_name,
        tool_args: object_field(&mut body, "tool_args")?,
        agent_id,
        user_id,
        metadata: object_field(&mut body, "metadata")?,
        session_id,
    };
    Ok(Call {
        request,
        approval_id,
    })
}

/// The **compat** request of `/enforce` (documentation of the body `call` validates).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EnforceRequest {
    /// The tool the agent wants to run.
    tool_name: String,
    /// Its arguments; default `{}`.
    #[schema(value_type = Option<Object>)]
    tool_args: Option<Value>,
    /// The session; a new one is made when absent and returned.
    session_id: Option<String>,
    agent_id: Option<String>,
    user_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// An approved approval for exactly this call.
    approval_id: Option<String>,
}

/// The **compat** response of `/enforce`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnforceResponse {
    pub session_id: String,
    pub decision: Action,
    pub rule_name: Option<String>,
    pub reason: String,
    pub policy_version: String,
    pub policy_hash: String,
    pub log_id: String,
    pub timestamp: String,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub approval_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/enforce", tag = "decisions", request_body = EnforceRequest, responses((status = 200, description = "The decision, committed to the audit log", body = EnforceResponse), (status = 400, description = "Unreadable JSON", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 422, description = "Wrong fields", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody), (status = 413, description = "Body over the limit", body = ErrorBody), (status = 404, description = "approval_id names no approval", body = ErrorBody), (status = 409, description = "approval_id names one that is pending, denied, expired or used", body = ErrorBody), (status = 503, description = "Storage unavailable: nothing was decided", body = ErrorBody)))]
pub async fn enforce(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body,
) -> Result<Json<EnforceResponse>, ApiError> {
    principal.require(&[Role::Agent, Role::Admin], "asking for a decision")?;
    let started = std::time::Instant::now();
    let Call {
        request,
        approval_id,
    } = call(body)?;
    let loaded = state.policy.current();
    let policy = &loaded.policy;
    // Until its write is queued nothing is decided; past this deadline the
    // caller gets 503 and may safely retry. Once queued, it is answered when committed.
    let deadline = std::time::Duration::from_secs(state.settings.limits.request_timeout_secs);
    let prepared = within(deadline, async {
        // An approval is checked before the session's place is taken, so an unusable one counts for nothing.
        let approval = match &approval_id {
            Some(id) => Some(usable_approval(&state, id, &request, &principal, &policy.hash).await?),
            None => None,
        };
        let reservation = Reservation {
            session_id: request.session_id.clone(),
            tool_name: request.tool_name.clone(),
            at: Utc::now(),
            agent_id: request.agent_id.clone(),
            user_id: request.user_id.clone(),
            principal: principal.id.clone(),
            admin: principal.role == Role::Admin,
        };
        let Some(mut turn) = state.sessions.begin(reservation).await? else {
            return Err(ApiError::Forbidden(format!(
                "session {:?} belongs to another key",
                request.session_id
            )));
        };
        // Taken once the session's place is ours, so a session's log is in time order too.
        let now = turn.now();
        let log_id = uuid::Uuid::now_v7().to_string();
        let timestamp = timefmt::format(now);
        let mut approval_ops = Vec::new();
        let mut created = None;
        // Either the policy decides, or an approved approval for exactly this call allows it, once.
        let (decision, approval_ref, body) = match (&approval_id, approval) {
            (Some(id), Some(approval)) => {
                // The policy still runs: an approval turns its `approve` into `allow`,
                // but never overrides a deny that applies now (a session limit, say).
                let now_decided = policy.decide(&request, turn.view(), now);
                if now_decided.action == Action::Deny {
                    (now_decided, None, json!({"approval_id": id, "consumed": false, "denied_despite_approval": true}))
                } else {
                    approval_ops.push(ApprovalOp::Consume { id: id.clone(), log_id: log_id.clone(), at: timestamp.clone() });
                    let by = approval.resolved_by.clone().unwrap_or_default();
                    let reason = match &approval.comment {
                        Some(c) => format!("Approved by {by}: {c}"),
                        None => format!("Approved by {by}"),
                    };
                    let decision = Decision {
                        action: Action::Allow,
                        rule_name: approval.rule_name.clone(),
                        reason,
                        policy_version: approval.policy_version.clone(),
                        policy_hash: approval.policy_hash.clone(),
                        trace: now_decided.trace,
                        approval_ttl: None,
                    };
                    (decision, Some(id.clone()), json!({"approval_id": id, "consumed": true}))
                }
            }
            _ => {
                let decision = policy.decide(&request, turn.view(), now);
                let errors: Vec<Value> = decision
                    .errors()
                    .map(|(rule, error)| json!({"rule": rule, "error": error}))
                    .collect();
                let mut body = json!({"rules_tried": decision.trace.len(), "errors": errors});
                let mut approval_ref = None;
                if decision.action == Action::Approve {
                    let ttl = decision
                        .approval_ttl
                        .unwrap_or(state.settings.approvals.ttl_secs)
                        .max(1);
                    let row = ApprovalRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        log_id: log_id.clone(),
                        session_id: request.session_id.clone(),
                        tool_name: request.tool_name.clone(),
                        tool_args: request.tool_args.to_string(),
                        args_digest: approvals::args_digest(&request.tool_args),
                        rule_name: decision.rule_name.clone(),
                        reason: decision.reason.clone(),
                        policy_version: decision.policy_version.clone(),
                        policy_hash: decision.policy_hash.clone(),
                        requested_by: principal.id.clone(),
                        status: "pending".into(),
                        created_at: timestamp.clone(),
                        expires_at: timefmt::format(
                            now + chrono::Duration::seconds(
                                i64::try_from(ttl).unwrap_or(i64::MAX / 2),
                            ),
                        ),
                        ..Default::default()
                    };
                    body["approval_id"] = json!(row.id);
                    approval_ref = Some(row.id.clone());
                    approval_ops.push(ApprovalOp::Create(row.clone()));
                    created = Some(row);
                }
                (decision, approval_ref, body)
            }
        };
        let consumes = approval_ops.iter().any(|op| matches!(op, ApprovalOp::Consume { .. }));
        let change = turn.count(decision.action, now, consumes);
        let event = Event {
            id: log_id.clone(),
            kind: Kind::Decision.as_str().into(),
            ref_id: approval_ref.clone(),
            session_id: request.session_id.clone(),
            ts: timestamp.clone(),
            tool_name: Some(request.tool_name.clone()),
            tool_args: Some(request.tool_args.to_string()),
            agent_id: request.agent_id.clone(),
            user_id: request.user_id.clone(),
            metadata: Some(request.metadata.to_string()),
            decision: Some(decision.action.as_str().into()),
            rule_name: decision.rule_name.clone(),
            reason: Some(decision.reason.clone()),
            policy_version: Some(decision.policy_version.clone()),
            policy_hash: Some(decision.policy_hash.clone()),
            principal: Some(principal.id.clone()),
            body: body.to_string(),
        };
        // Queued while the turn is open: on SQLite it holds the session, so the
        // session's writes stay in count order.
        let pending = state
            .writer
            .submit(Write {
                events: vec![event],
                sessions: vec![change],
                approvals: approval_ops,
            })
            .await?;
        // If a write that uses an approval is refused, the turn is taken back,
        // so refused uses count for nothing.
        Ok::<_, ApiError>((pending, turn.queued(), decision, approval_ref, created, log_id, timestamp))
    })
    .await;
    let (pending, guard, decision, approval_ref, created, log_id, timestamp) = match prepared {
        Ok(prepared) => prepared?,
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "no decision within {} s (the session or storage is busy); nothing was decided or recorded, so it is safe to retry",
                deadline.as_secs()
            )));
        }
    };
    // Seen through even if the caller goes away (on SQLite the session is
    // held until the write commits); the turn is taken back if it is refused.
    match pending.see_through(guard).await {
        Err(StoreError::Conflict(_)) => {
            let id = approval_id.unwrap_or_default();
            return Err(ApiError::Conflict(format!(
                "approval {id:?} was used, or expired, while this call was being decided"
            )));
        }
        other => other?,
    }
    if let Some(row) = &created {
        crate::webhook::notify(&state, "approval.requested", row);
        metrics::counter!("tame_approvals_requested_total").increment(1);
    }
    let action = decision.action.as_str();
    metrics::counter!("tame_decisions_total", "decision" => action, "rule" => decision.rule_name.clone().unwrap_or_else(|| "(default)".into())).increment(1);
    metrics::histogram!("tame_decision_seconds").record(started.elapsed().as_secs_f64());
    let response = EnforceResponse {
        session_id: request.session_id.clone(),
        decision: decision.action,
        rule_name: decision.rule_name,
        reason: decision.reason,
        policy_version: decision.policy_version,
        policy_hash: decision.policy_hash,
        log_id,
        timestamp,
        metadata: json!({}),
        approval_id: approval_ref,
    };
    // Built only when someone follows the events.
    if state.events.receiver_count() > 0 {
        let _ = state.events.send(std::sync::Arc::new(json!({
        "type": "decision", "session_id": response.session_id, "log_id": response.log_id, "tool_name": request.tool_name,
        "decision": action, "rule_name": response.rule_name, "timestamp": response.timestamp, "approval_id": response.approval_id,
        })));
    }
    Ok(Json(response))
}

/// The approval `id`, if it is approved, unused, unexpired, asked for by
/// this key, and bound to exactly this call under the current policy.
async fn usable_approval(
    state: &AppState,
    id: &str,
    request: &Request,
    principal: &Principal,
    policy_hash: &str,
) -> Result<ApprovalRow, ApiError> {
    let Some(a) = state.store.approval(id).await? else {
        return Err(ApiError::NotFound(format!(
            "approval_id {id:?}: no such approval"
        )));
    };
    if a.requested_by != principal.id && principal.role != Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "approval {id:?} was asked for by another key"
        )));
    }
    let expired =
        chrono::DateTime::parse_from_rfc3339(&a.expires_at).is_ok_and(|t| t <= Utc::now());
    match a.status.as_str() {
        "approved" if a.consumed_at.is_some() => {
            return Err(ApiError::Conflict(format!(
                "approval {id:?} has already been used; an approval allows one call"
            )));
        }
        "approved" if expired => {
            return Err(ApiError::Conflict(format!(
                "approval {id:?} expired at {}",
                a.expires_at
            )));
        }
        "approved" => {}
        "pending" if expired => {
            return Err(ApiError::Conflict(format!(
                "approval {id:?} expired at {} without an answer; expired counts as denied",
                a.expires_at
            )));
        }
        "pending" => {
            return Err(ApiError::Conflict(format!(
                "approval {id:?} is still pending: wait for it (GET /api/v1/approvals/{id}?wait=30)"
            )));
        }
        other => return Err(ApiError::Conflict(format!("approval {id:?} was {other}"))),
    }
    let mut mismatches = Vec::new();
    if a.session_id != request.session_id {
        mismatches.push(format!("session {:?}", a.session_id));
    }
    if a.tool_name != request.tool_name {
        mismatches.push(format!("tool {:?}", a.tool_name));
    }
    if a.args_digest != approvals::args_digest(&request.tool_args) {
        mismatches.push("other arguments".to_string());
    }
    if a.policy_hash != policy_hash {
        mismatches.push(format!(
            "policy {} (the policy has changed since; ask again)",
            a.policy_version
        ));
    }
    if !mismatches.is_empty() {
        return Err(ApiError::Invalid(format!(
            "approval {id:?} was given for {}, not for this call",
            mismatches.join(", ")
        )));
    }
    Ok(a)
}

/// **compat**: names it does not know are let through, as tamesdk 1.0
/// agents may send them.
#[derive(Debug, Deserialize)]
pub struct ResultQuery {
    log_id: Option<String>,
}

/// Recognised result keys: the whole body is kept; these feed the log views and the session's cost.
#[utoipa::path(post, path = "/api/v1/enforce/{session_id}/result", tag = "decisions", params(("session_id" = String, Path, description = "The session"), ("log_id" = String, Query, description = "The log_id /enforce returned")), request_body(content = serde_json::Value, description = "What the tool did: status, execution_time_ms or duration_ms, error or error_message, cost, result; the whole body is kept"), responses((status = 200, description = "Recorded: {\"status\": \"updated\", \"log_id\"}", body = serde_json::Value), (status = 404, description = "No such log in that session", body = ErrorBody), (status = 400, description = "Unreadable JSON", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 422, description = "Wrong fields", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn report_result(
    State(state): State<AppState>,
    principal: Principal,
    Path(session_id): Path<String>,
    Params(q): Params<ResultQuery>,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[Role::Agent, Role::Admin], "reporting a result")?;
    let Some(log_id) = q.log_id.filter(|l| !l.is_empty()) else {
        return Err(ApiError::Invalid(
            "log_id is required: ?log_id=<the log_id /enforce returned>".into(),
        ));
    };
    let Value::Object(fields) = &body else {
        return Err(ApiError::Invalid(format!(
            "the body must be a JSON object describing what the tool did, not {}",
            json_type(&body)
        )));
    };
    let cost = match fields.get("cost") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(c) if c.is_finite() && c >= 0.0 => Some(c),
            _ => {
                return Err(ApiError::Invalid(
                    "cost must be a number of 0 or more".into(),
                ));
            }
        },
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "cost must be a number, not {}",
                json_type(other)
            )));
        }
    };
    for key in ["execution_time_ms", "duration_ms"] {
        if let Some(v) = fields.get(key) {
            if !v.is_null() && !v.is_number() {
                return Err(ApiError::Invalid(format!(
                    "{key} must be a number, not {}",
                    json_type(v)
                )));
            }
        }
    }
    let entry = state.store.entry(&log_id).await?;
    let Some(entry) = entry.filter(|e| e.decision.session_id == session_id) else {
        return Err(ApiError::NotFound(format!(
            "no log {log_id:?} in session {session_id:?}"
        )));
    };
    if principal.role != Role::Admin
        && entry.decision.principal.as_deref() != Some(principal.id.as_str())
    {
        return Err(ApiError::Forbidden(format!(
            "log {log_id:?} was recorded for another key"
        )));
    }
    let deadline = std::time::Duration::from_secs(state.settings.limits.request_timeout_secs);
    let prepared = within(deadline, async {
        let Some((change, turn)) = state
            .sessions
            .add_cost(&session_id, cost.unwrap_or(0.0))
            .await?
        else {
            return Err(ApiError::Invalid(format!(
                "cost {} would make the session's estimated_cost larger than a number can hold",
                cost.unwrap_or(0.0)
            )));
        };
        let now = Utc::now();
        let event = Event {
            id: uuid::Uuid::now_v7().to_string(),
            kind: Kind::Result.as_str().into(),
            ref_id: Some(log_id.clone()),
            session_id: session_id.clone(),
            ts: timefmt::format(now),
            principal: Some(principal.id.clone()),
            body: body.to_string(),
            ..Default::default()
        };
        let pending = state
            .writer
            .submit(Write {
                events: vec![event],
                sessions: change.into_iter().collect(),
                approvals: Vec::new(),
            })
            .await?;
        Ok::<_, ApiError>((pending, turn.queued()))
    })
    .await;
    let (pending, guard) = match prepared {
        Ok(prepared) => prepared?,
        Err(_) => {
            return Err(ApiError::Unavailable(format!(
                "the result was not recorded within {} s (the session or storage is busy); it is safe to send it again",
                deadline.as_secs()
            )));
        }
    };
    // Seen through as a decision's is: the session stays held until the
    // write commits even if the caller goes away.
    pending.see_through(guard).await?;
    if state.events.receiver_count() > 0 {
        let _ = state.events.send(std::sync::Arc::new(
            json!({"type": "result", "session_id": session_id, "log_id": log_id, "result": body}),
        ));
    }
    Ok(Json(json!({"status": "updated", "log_id": log_id})))
}

/// `POST /api/v1/policy/test`: the same body as enforce; nothing is recorded or counted.
#[utoipa::path(post, path = "/api/v1/policy/test", tag = "decisions", request_body = EnforceRequest, responses((status = 200, description = "decision, reason, rule_name, policy_version, policy_hash, trace [{rule, matched, error}]; nothing is recorded", body = serde_json::Value), (status = 400, description = "Unreadable JSON", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 422, description = "Wrong fields", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn test_post(
    State(state): State<AppState>,
    principal: Principal,
    Body(body): Body,
) -> Result<Json<Value>, ApiError> {
    test(&state, &principal, body).await
}

/// `GET /api/v1/policy/test?tool_name=…&tool_args={json}&…`.
#[utoipa::path(get, path = "/api/v1/policy/test", tag = "decisions", params(("tool_name" = String, Query), ("tool_args" = Option<String>, Query, description = "JSON object"), ("session_id" = Option<String>, Query), ("agent_id" = Option<String>, Query), ("user_id" = Option<String>, Query), ("metadata" = Option<String>, Query, description = "JSON object")), responses((status = 200, description = "As POST", body = serde_json::Value), (status = 400, description = "Unreadable JSON", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 422, description = "Wrong fields", body = ErrorBody), (status = 429, description = "Rate limited; see Retry-After", body = ErrorBody)))]
pub async fn test_get(
    State(state): State<AppState>,
    principal: Principal,
    Params(q): Params<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut body = Map::new();
    for (k, v) in q {
        let value = match k.as_str() {
            "tool_args" | "metadata" => serde_json::from_str(&v)
                .map_err(|e| ApiError::BadRequest(format!("{k} must be JSON: {e}")))?,
            _ => Value::String(v),
        };
        body.insert(k, value);
    }
    test(&state, &principal, Value::Object(body)).await
}

async fn test(
    state: &AppState,
    principal: &Principal,
    body: Value,
) -> Result<Json<Value>, ApiError> {
    principal.require(
        &[Role::Agent, Role::Approver, Role::Admin],
        "testing the policy",
    )?;
    let Call { request, .. } = call(body)?;
    let loaded = state.policy.current();
    // The session's state as it is now, without reserving anything; only an
    // existing session is looked at, and only by the key that owns it.
    let view = match state.sessions.peek(&request.session_id).await? {
        Some((owner, view)) => {
            if owner.is_some_and(|owner| owner != principal.id) && principal.role == Role::Agent {
                return Err(ApiError::Forbidden(format!(
                    "session {:?} belongs to another key",
                    request.session_id
                )));
            }
            view
        }
        None => crate::policy::SessionView {
            id: request.session_id.clone(),
            started_at: Utc::now().timestamp(),
            ..Default::default()
        },
    };
    let d = loaded.policy.decide(&request, &view, Utc::now());
    Ok(Json(json!({
        "decision": d.action,
        "reason": d.reason,
        "rule_name": d.rule_name,
        "policy_version": d.policy_version,
        "policy_hash": d.policy_hash,
        "trace": d.trace,
    })))
}
