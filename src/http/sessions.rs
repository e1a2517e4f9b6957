//! Sessions and the audit log as agents and operators read them:
//! `GET /api/v1/sessions`, `/sessions/{id}`, `/sessions/{id}/summary`,
//! `/logs` (keyset-paginated) and `/logs/export` (streamed).

use super::params::Params;
use axum::Json;
use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Principal, Role};
use super::error::{ApiError, ErrorBody};
use crate::app::AppState;
use crate::store::{Entry, LogFilter, SessionFilter, SessionRow};
use crate::timefmt;

fn parse_json(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// A decision as the **compat** log entry, with its latest result merged in.
pub fn entry_json(e: &Entry) -> Value {
    let d = &e.decision;
    let result = parse_json(e.result.as_deref());
    let pick = |keys: &[&str]| {
        keys.iter()
            .map(|k| result.get(*k).cloned().unwrap_or(Value::Null))
            .find(|v| !v.is_null())
            .unwrap_or(Value::Null)
    };
    let tool_result = match result.get("result") {
        Some(r) => r.clone(),
        None => result.clone(),
    };
    json!({
        "id": d.id,
        "session_id": d.session_id,
        "timestamp": d.ts,
        "tool_name": d.tool_name,
        "tool_args": parse_json(d.tool_args.as_deref()),
        "tool_result": tool_result,
        "policy_version": d.policy_version,
        "policy_decision": d.decision,
        "policy_rule": d.rule_name,
        "reason": d.reason,
        "execution_status": pick(&["status"]),
        "execution_duration_ms": pick(&["execution_time_ms", "duration_ms"]),
        "error_message": pick(&["error_message", "error"]),
        "agent_id": d.agent_id,
        "user_id": d.user_id,
        "metadata": parse_json(d.metadata.as_deref()),
        "policy_hash": d.policy_hash,
    })
}

/// A session as the **compat** summary.
pub fn summary_json(s: &SessionRow) -> Value {
    json!({
        "session_id": s.id,
        "start_time": s.started_at,
        "end_time": s.last_at,
        "total_calls": s.action_count,
        "allowed_calls": s.allowed_count,
        "denied_calls": s.denied_count,
        "approved_calls": s.approval_count,
        "agent_id": s.agent_id,
        "user_id": s.user_id,
        "action_count": s.action_count,
        "estimated_cost": s.estimated_cost,
        "tool_counts": crate::session::tool_counts(&s.tool_counts),
    })
}

/// **compat**: names it does not know are let through, as tamesdk 1.0
/// agents may send them.
#[derive(Debug, Deserialize)]
pub struct SessionsQuery {
    page: Option<String>,
    page_size: Option<String>,
    agent_id: Option<String>,
    user_id: Option<String>,
}

fn positive(name: &str, value: Option<&str>, default: i64, max: i64) -> Result<i64, ApiError> {
    match value {
        None | Some("") => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::Invalid(format!(
                "{name} must be a whole number from 1 to {max}, not {text:?}"
            ))),
        },
    }
}

/// Agents see only the sessions their key opened.
fn own(principal: &Principal) -> Option<String> {
    (principal.role == Role::Agent).then(|| principal.id.clone())
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", params(("page" = Option<i64>, Query), ("page_size" = Option<i64>, Query), ("agent_id" = Option<String>, Query), ("user_id" = Option<String>, Query)), responses((status = 200, description = "{sessions: [summary], total_count, page, page_size}", body = serde_json::Value), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Params(q): Params<SessionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = positive("page", q.page.as_deref(), 1, 1_000_000)?;
    let page_size = positive("page_size", q.page_size.as_deref(), 50, 1000)?;
    let filter = SessionFilter {
        agent_id: q.agent_id.filter(|s| !s.is_empty()),
        user_id: q.user_id.filter(|s| !s.is_empty()),
        principal: own(&principal),
    };
    let (rows, total) = state
        .store
        .sessions(&filter, (page - 1) * page_size, page_size)
        .await?;
    Ok(Json(json!({
        "sessions": rows.iter().map(summary_json).collect::<Vec<_>>(),
        "total_count": total,
        "page": page,
        "page_size": page_size,
    })))
}

async fn readable(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<SessionRow, ApiError> {
    let row = state.store.session(id).await?;
    match row {
        Some(r) if own(principal).is_none_or(|p| r.principal.as_deref() == Some(p.as_str())) => {
            Ok(r)
        }
        _ => Err(ApiError::NotFound(format!("no session {id:?}"))),
    }
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)), responses((status = 200, description = "The session's decisions, oldest first, with results", body = serde_json::Value), (status = 404, description = "No such session", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn logs_of(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    readable(&state, &principal, &id).await?;
    let entries = state.store.session_entries(&id).await?;
    Ok(Json(Value::Array(entries.iter().map(entry_json).collect())))
}

#[utoipa::path(get, path = "/api/v1/sessions/{id}/summary", tag = "sessions", params(("id" = String, Path)), responses((status = 200, description = "Counts, tool_counts, estimated_cost", body = serde_json::Value), (status = 404, description = "No such session", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = readable(&state, &principal, &id).await?;
    Ok(Json(summary_json(&row)))
}

/// The parameters of `/logs` and `/logs/export`; each refuses the others'.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LogsQuery {
    session_id: Option<String>,
    agent_id: Option<String>,
    user_id: Option<String>,
    tool_name: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    format: Option<String>,
}

fn instant(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map(|t| Some(timefmt::format(t.with_timezone(&Utc))))
            .map_err(|_| {
                ApiError::Invalid(format!(
                    "{name} must be an RFC 3339 time such as 2026-11-23T21:01:13Z, not {text:?}"
                ))
            }),
    }
}

fn log_filter(q: &mut LogsQuery) -> Result<LogFilter, ApiError> {
    let decision = q.decision.take().filter(|s| !s.is_empty());
    if let Some(d) = &decision {
        if !matches!(d.as_str(), "allow" | "deny" | "approve") {
            return Err(ApiError::Invalid(format!(
                "decision must be allow, deny or approve, not {d:?}"
            )));
        }
    }
    Ok(LogFilter {
        session_id: q.session_id.take().filter(|s| !s.is_empty()),
        agent_id: q.agent_id.take().filter(|s| !s.is_empty()),
        user_id: q.user_id.take().filter(|s| !s.is_empty()),
        tool_name: q.tool_name.take().filter(|s| !s.is_empty()),
        decision,
        since: instant("since", q.since.take())?,
        until: instant("until", q.until.take())?,
    })
}

#[utoipa::path(get, path = "/api/v1/logs", tag = "logs", params(("session_id" = Option<String>, Query), ("agent_id" = Option<String>, Query), ("user_id" = Option<String>, Query), ("tool_name" = Option<String>, Query), ("decision" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)), responses((status = 200, description = "{logs: [entry], next_cursor}, newest first", body = serde_json::Value), (status = 422, description = "Bad filter", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    principal: Principal,
    Params(mut q): Params<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    principal.require(&[Role::Approver, Role::Admin], "reading the audit log")?;
    if q.format.is_some() {
        return Err(ApiError::Invalid(
            "format is a parameter of /api/v1/logs/export; /api/v1/logs answers JSON".into(),
        ));
    }
    let filter = log_filter(&mut q)?;
    let limit = positive("limit", q.limit.as_deref(), 100, 1000)?;
    let before = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::Invalid(format!("cursor {c:?} is not one this server gave out"))
        })?),
    };
    let entries = state.store.entries(&filter, before, limit).await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(
        json!({"logs": entries.iter().map(entry_json).collect::<Vec<_>>(), "next_cursor": next}),
    ))
}

const CSV_COLUMNS: [&str; 14] = [
    "id",
    "session_id",
    "timestamp",
    "tool_name",
    "tool_args",
    "policy_decision",
    "policy_rule",
    "reason",
    "policy_version",
    "execution_status",
    "execution_duration_ms",
    "error_message",
    "agent_id",
    "user_id",
];

/// A CSV field: quoted where needed, and with a `'` before text a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, carriage
/// return). Numbers are written as they are: `-5` is no formula.
fn csv_field(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{s}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Streamed newest first, a page at a time, so any size exports in constant memory.
#[utoipa::path(get, path = "/api/v1/logs/export", tag = "logs", params(("format" = Option<String>, Query, description = "jsonl (default) or csv"), ("session_id" = Option<String>, Query), ("agent_id" = Option<String>, Query), ("user_id" = Option<String>, Query), ("tool_name" = Option<String>, Query), ("decision" = Option<String>, Query), ("since" = Option<String>, Query), ("until" = Option<String>, Query)), responses((status = 200, description = "Streamed JSON lines or CSV", content_type = "application/x-ndjson"), (status = 422, description = "Bad filter", body = ErrorBody), (status = 401, description = "Missing or bad credentials", body = ErrorBody), (status = 403, description = "The key lacks the role", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    Params(mut q): Params<LogsQuery>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Approver, Role::Admin], "exporting the audit log")?;
    if let Some(name) = [("limit", &q.limit), ("cursor", &q.cursor)]
        .into_iter()
        .find_map(|(name, v)| v.is_some().then_some(name))
    {
        return Err(ApiError::Invalid(format!(
            "{name} is a parameter of /api/v1/logs; an export streams every entry that matches its filters"
        )));
    }
    let csv = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => false,
        "csv" => true,
        other => {
            return Err(ApiError::Invalid(format!(
                "format must be jsonl or csv, not {other:?}"
            )));
        }
    };
    let filter = log_filter(&mut q)?;
    let stream = async_stream(state, filter, csv);
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        HttpBody::from_stream(stream),
    )
        .into_response())
}

fn async_stream(
    state: AppState,
    filter: LogFilter,
    csv: bool,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> {
    let header = csv.then(|| format!("{}\n", CSV_COLUMNS.join(",")));
    let pages = futures::stream::unfold(Some(None::<i64>), move |cursor| {
        let (state, filter) = (state.clone(), filter.clone());
        async move {
            let before = cursor?;
            match state.store.entries(&filter, before, 500).await {
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
                Ok(entries) if entries.is_empty() => None,
                Ok(entries) => {
                    let next = entries.last().map(|e| Some(e.seq));
                    let mut chunk = String::new();
                    for e in &entries {
                        let j = entry_json(e);
                        if csv {
                            let row: Vec<String> =
                                CSV_COLUMNS.iter().map(|c| csv_field(&j[*c])).collect();
                            chunk.push_str(&row.join(","));
                        } else {
                            chunk.push_str(&j.to_string());
                        }
                        chunk.push('\n');
                    }
                    Some((Ok(chunk), next))
                }
            }
        }
    });
    futures::stream::iter(header.map(Ok)).chain(pages)
}

use futures::StreamExt as _;
