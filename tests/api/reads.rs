//! Every read endpoint as a client sees it: results reported after a
//! decision, policy tests, sessions and their summaries, the audit log
//! (filters, keyset pagination, export), the policy and its versions, and the
//! operational endpoints, with the errors each gives for bad queries.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{Value, json};

use crate::helpers::*;

/// `path` with the query `pairs`, percent-encoded (a `+00:00` offset must not become a space).
fn url_with(app: &TestApp, path: &str, pairs: &[(&str, &str)]) -> reqwest::Url {
    let mut url = reqwest::Url::parse(&app.url(path)).expect("a valid URL");
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    url
}

async fn get_with(app: &TestApp, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .get(url_with(app, path, pairs))
        .send()
        .await
        .expect("the request is sent")
}

/// The body of a response that must be a `200` with JSON.
async fn ok_json(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("a body");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn get_ok(app: &TestApp, path: &str, pairs: &[(&str, &str)]) -> Value {
    ok_json(get_with(app, path, pairs).await).await
}

/// `POST /api/v1/enforce/{session}/result?log_id=…`.
async fn report(app: &TestApp, session: &str, log_id: &str, body: Value) -> reqwest::Response {
    app.client
        .post(url_with(
            app,
            &format!("/api/v1/enforce/{session}/result"),
            &[("log_id", log_id)],
        ))
        .json(&body)
        .send()
        .await
        .expect("the request is sent")
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// The `id`s of a list of log entries, in order.
fn ids(entries: &Value) -> Vec<String> {
    entries
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {entries}"))
        .iter()
        .map(|e| text(&e["id"]))
        .collect()
}

/// The log ids of `decisions`, newest first.
fn newest_first(decisions: &[&Value]) -> Vec<String> {
    decisions.iter().rev().map(|d| text(&d["log_id"])).collect()
}

const TIMESTAMP: &str = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00$";

fn assert_timestamp(v: &Value) {
    let re = regex::Regex::new(TIMESTAMP).unwrap();
    let t = text(v);
    assert!(
        re.is_match(&t),
        "{t:?} is not YYYY-MM-DDTHH:MM:SS.ffffff+00:00"
    );
}

async fn policy_with(text: &str) -> (tempfile::TempDir, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(dir.path(), text);
    let app = spawn_app_with(&path, json!({})).await;
    (dir, app)
}

// ---- results ---------------------------------------------------------------

#[tokio::test]
async fn a_reported_result_is_acknowledged_and_shows_in_the_sessions_entries() {
    let app = spawn_app().await;
    let mut d = Vec::new();
    for path in ["/tmp/a", "/tmp/b", "/tmp/c", "/tmp/d"] {
        d.push(
            app.enforce(
                json!({"tool_name": "read_file", "tool_args": {"path": path}, "session_id": "r-1"}),
            )
            .await,
        );
    }
    let id = |i: usize| text(&d[i]["log_id"]);

    let r = report(
        &app,
        "r-1",
        &id(0),
        json!({"status": "success", "execution_time_ms": 12.5, "result": {"lines": 3}}),
    )
    .await;
    assert_eq!(
        ok_json(r).await,
        json!({"status": "updated", "log_id": id(0)})
    );
    let r = report(
        &app,
        "r-1",
        &id(1),
        json!({"status": "error", "duration_ms": 7, "error": "disk full", "result": null}),
    )
    .await;
    assert_eq!(
        ok_json(r).await,
        json!({"status": "updated", "log_id": id(1)})
    );
    let r = report(
        &app,
        "r-1",
        &id(2),
        json!({"status": "blocked", "error_message": "sandbox refused", "result": "partial"}),
    )
    .await;
    assert_eq!(
        ok_json(r).await,
        json!({"status": "updated", "log_id": id(2)})
    );

    let entries = get_ok(&app, "/api/v1/sessions/r-1", &[]).await;
    let view = |i: usize| {
        let e = &entries[i];
        (
            e["id"].clone(),
            e["tool_result"].clone(),
            e["execution_status"].clone(),
            e["execution_duration_ms"].clone(),
            e["error_message"].clone(),
        )
    };
    assert_eq!(
        view(0),
        (
            json!(id(0)),
            json!({"lines": 3}),
            json!("success"),
            json!(12.5),
            Value::Null
        )
    );
    assert_eq!(
        view(1),
        (
            json!(id(1)),
            Value::Null,
            json!("error"),
            json!(7),
            json!("disk full")
        )
    );
    assert_eq!(
        view(2),
        (
            json!(id(2)),
            json!("partial"),
            json!("blocked"),
            Value::Null,
            json!("sandbox refused")
        )
    );
    // No result reported: every result field is null.
    assert_eq!(
        view(3),
        (
            json!(id(3)),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null
        )
    );
}

#[tokio::test]
async fn reported_costs_add_up_in_the_summary_and_a_later_rule_sees_them() {
    let (_dir, app) = policy_with(
        r#"version: "budget"
default_action: allow
rules:
  - name: over_budget
    condition: session.estimated_cost > 1.0
    action: deny
    reason: "The session has spent its budget"
"#,
    )
    .await;
    let call = json!({"tool_name": "api_call", "session_id": "b-1"});
    let summary = || async { get_ok(&app, "/api/v1/sessions/b-1/summary", &[]).await };

    let first = app.enforce(call.clone()).await;
    assert_eq!(first["decision"], "allow");
    ok_json(report(&app, "b-1", &text(&first["log_id"]), json!({"cost": 0.75})).await).await;
    assert_eq!(summary().await["estimated_cost"], json!(0.75));

    let second = app.enforce(call.clone()).await;
    assert_eq!(
        second["decision"], "allow",
        "0.75 is not over 1.0: {second}"
    );
    ok_json(
        report(
            &app,
            "b-1",
            &text(&second["log_id"]),
            json!({"status": "success", "cost": 0.5}),
        )
        .await,
    )
    .await;
    // A result without a cost leaves it as it is.
    ok_json(
        report(
            &app,
            "b-1",
            &text(&second["log_id"]),
            json!({"status": "success"}),
        )
        .await,
    )
    .await;
    assert_eq!(summary().await["estimated_cost"], json!(1.25));

    let third = app.enforce(call.clone()).await;
    assert_eq!(
        (
            third["decision"].clone(),
            third["rule_name"].clone(),
            third["reason"].clone()
        ),
        (
            json!("deny"),
            json!("over_budget"),
            json!("The session has spent its budget")
        )
    );
    let s = summary().await;
    assert_eq!(
        (
            s["estimated_cost"].clone(),
            s["total_calls"].clone(),
            s["denied_calls"].clone()
        ),
        (json!(1.25), json!(3), json!(1))
    );
}

#[tokio::test]
async fn a_result_for_a_log_that_is_not_in_that_session_is_404_and_records_nothing() {
    let app = spawn_app().await;
    let d = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "mine"}))
        .await;
    let log_id = text(&d["log_id"]);

    let (status, code, message) = error_of(
        report(
            &app,
            "someone-else",
            &log_id,
            json!({"status": "success", "cost": 3}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert_eq!(
        message,
        format!("no log {log_id:?} in session \"someone-else\"")
    );

    let (status, code, message) = error_of(
        report(
            &app,
            "mine",
            "0190aaaa-0000-7000-8000-000000000000",
            json!({"status": "success"}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert_eq!(
        message,
        "no log \"0190aaaa-0000-7000-8000-000000000000\" in session \"mine\""
    );

    let (status, ..) = error_of(app.get("/api/v1/sessions/someone-else").await).await;
    assert_eq!(status, 404, "a rejected result must not create a session");
    let entries = get_ok(&app, "/api/v1/sessions/mine", &[]).await;
    assert_eq!(entries[0]["execution_status"], Value::Null);
    let s = get_ok(&app, "/api/v1/sessions/mine/summary", &[]).await;
    assert_eq!(s["estimated_cost"], json!(0.0));
}

#[tokio::test]
async fn a_result_without_log_id_or_with_a_bad_body_or_cost_is_422() {
    let app = spawn_app().await;
    let d = app
        .enforce(
            json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "r-2"}),
        )
        .await;
    let log_id = text(&d["log_id"]);

    let no_log_id = app
        .post("/api/v1/enforce/r-2/result", &json!({"status": "success"}))
        .await;
    assert_eq!(
        error_of(no_log_id).await,
        (
            422,
            "invalid_request".into(),
            "log_id is required: ?log_id=<the log_id /enforce returned>".into()
        )
    );
    let empty_log_id = app
        .post(
            "/api/v1/enforce/r-2/result?log_id=",
            &json!({"status": "success"}),
        )
        .await;
    assert_eq!(error_of(empty_log_id).await.0, 422);

    for (body, message) in [
        (
            json!(["success"]),
            "the body must be a JSON object describing what the tool did, not an array",
        ),
        (
            json!("success"),
            "the body must be a JSON object describing what the tool did, not a string",
        ),
        (
            json!({"cost": "cheap"}),
            "cost must be a number, not a string",
        ),
        (json!({"cost": -1}), "cost must be a number of 0 or more"),
        (
            json!({"execution_time_ms": "fast"}),
            "execution_time_ms must be a number, not a string",
        ),
    ] {
        assert_eq!(
            error_of(report(&app, "r-2", &log_id, body.clone()).await).await,
            (422, "invalid_request".into(), message.into()),
            "for {body}"
        );
    }

    let entries = get_ok(&app, "/api/v1/sessions/r-2", &[]).await;
    assert_eq!(
        (
            entries[0]["execution_status"].clone(),
            entries[0]["tool_result"].clone()
        ),
        (Value::Null, Value::Null)
    );
    let s = get_ok(&app, "/api/v1/sessions/r-2/summary", &[]).await;
    assert_eq!(s["estimated_cost"], json!(0.0));
}

// ---- policy test -------------------------------------------------------------

#[tokio::test]
async fn policy_test_by_post_and_get_decides_with_a_trace_and_records_nothing() {
    let app = spawn_app().await;
    app.enforce(
        json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "t-1"}),
    )
    .await;
    let current = get_ok(&app, "/api/v1/policy/current", &[]).await;

    let posted = ok_json(
        app.post(
            "/api/v1/policy/test",
            &json!({"tool_name": "read_file", "tool_args": {"path": "/etc/passwd"}, "session_id": "t-1"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        posted,
        json!({
            "decision": "deny",
            "reason": "System files are not accessible",
            "rule_name": "deny_system_files",
            "policy_version": "1.1",
            "policy_hash": current["hash"],
            "trace": [
                {"rule": "session_action_limit", "matched": false, "error": null},
                {"rule": "deny_system_files", "matched": true, "error": null},
            ],
        })
    );

    let got = get_ok(
        &app,
        "/api/v1/policy/test",
        &[
            ("tool_name", "read_file"),
            ("tool_args", r#"{"path": "/tmp/x"}"#),
            ("session_id", "t-new"),
        ],
    )
    .await;
    assert_eq!(
        (
            got["decision"].clone(),
            got["rule_name"].clone(),
            got["reason"].clone(),
            got["policy_version"].clone()
        ),
        (
            json!("allow"),
            json!("allow_temp_files"),
            json!("Temporary files are open to agents"),
            json!("1.1")
        )
    );
    let tried: Vec<(String, bool)> = got["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (text(&s["rule"]), s["matched"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        tried,
        [
            ("session_action_limit", false),
            ("deny_system_files", false),
            ("deny_unclear_paths", false),
            ("deny_secrets", false),
            ("approve_sensitive", false),
            ("allow_temp_files", true),
        ]
        .map(|(r, m)| (r.to_string(), m))
    );

    let (status, code, message) = error_of(
        get_with(
            &app,
            "/api/v1/policy/test",
            &[("tool_name", "read_file"), ("tool_args", "{path")],
        )
        .await,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "bad_request"));
    assert!(message.starts_with("tool_args must be JSON"), "{message}");

    // Nothing was recorded or counted.
    let status = get_ok(&app, "/api/v1/status", &[]).await;
    assert_eq!(status["counts"]["decisions"], 1);
    assert_eq!(
        ids(&get_ok(&app, "/api/v1/sessions/t-1", &[]).await).len(),
        1
    );
    assert_eq!(
        get_ok(&app, "/api/v1/sessions/t-1/summary", &[]).await["total_calls"],
        1
    );
    assert_eq!(
        error_of(app.get("/api/v1/sessions/t-new").await).await.0,
        404
    );
    assert_eq!(
        get_ok(&app, "/api/v1/sessions", &[]).await["total_count"],
        1
    );
}

#[tokio::test]
async fn the_policy_test_trace_shows_a_condition_that_could_not_be_evaluated() {
    let (_dir, app) = policy_with(
        r#"version: "trace"
default_action: allow
rules:
  - name: small_x
    condition: tool_args.x < 1
    action: allow
  - name: otherwise
    action: deny
"#,
    )
    .await;
    let r = ok_json(
        app.post(
            "/api/v1/policy/test",
            &json!({"tool_name": "t", "tool_args": {"x": "a"}}),
        )
        .await,
    )
    .await;
    assert_eq!(r["decision"], "deny");
    assert_eq!(r["rule_name"], "otherwise");
    assert_eq!(
        r["trace"],
        json!([
            {"rule": "small_x", "matched": false, "error": "cannot order a string against a number"},
            {"rule": "otherwise", "matched": true, "error": null},
        ])
    );
}

// ---- sessions ----------------------------------------------------------------

#[tokio::test]
async fn sessions_are_listed_in_pages_and_filtered_by_agent_and_user() {
    let app = spawn_app().await;
    for (session, agent, user) in [("s-1", "a", "u1"), ("s-2", "a", "u2"), ("s-3", "b", "u1")] {
        app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/x"}, "session_id": session, "agent_id": agent, "user_id": user})).await;
    }
    let listed = |v: &Value| -> Vec<String> {
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| text(&s["session_id"]))
            .collect()
    };

    let all = get_ok(&app, "/api/v1/sessions", &[]).await;
    assert_eq!(
        keys(&all),
        BTreeSet::from(["sessions", "total_count", "page", "page_size"])
    );
    assert_eq!(
        (
            all["total_count"].clone(),
            all["page"].clone(),
            all["page_size"].clone()
        ),
        (json!(3), json!(1), json!(50))
    );
    // Most recently active first.
    assert_eq!(listed(&all), ["s-3", "s-2", "s-1"]);
    assert_eq!(
        all["sessions"][0],
        get_ok(&app, "/api/v1/sessions/s-3/summary", &[]).await,
        "a listed session is its summary"
    );

    let p1 = get_ok(
        &app,
        "/api/v1/sessions",
        &[("page", "1"), ("page_size", "2")],
    )
    .await;
    assert_eq!(
        (
            listed(&p1),
            p1["total_count"].clone(),
            p1["page"].clone(),
            p1["page_size"].clone()
        ),
        (
            vec!["s-3".to_string(), "s-2".into()],
            json!(3),
            json!(1),
            json!(2)
        )
    );
    let p2 = get_ok(
        &app,
        "/api/v1/sessions",
        &[("page", "2"), ("page_size", "2")],
    )
    .await;
    assert_eq!(
        (listed(&p2), p2["page"].clone()),
        (vec!["s-1".to_string()], json!(2))
    );
    let p3 = get_ok(
        &app,
        "/api/v1/sessions",
        &[("page", "3"), ("page_size", "2")],
    )
    .await;
    assert_eq!(
        (listed(&p3), p3["total_count"].clone()),
        (Vec::<String>::new(), json!(3))
    );

    let by_agent = get_ok(&app, "/api/v1/sessions", &[("agent_id", "a")]).await;
    assert_eq!(
        (listed(&by_agent), by_agent["total_count"].clone()),
        (vec!["s-2".to_string(), "s-1".into()], json!(2))
    );
    let by_user = get_ok(&app, "/api/v1/sessions", &[("user_id", "u1")]).await;
    assert_eq!(
        (listed(&by_user), by_user["total_count"].clone()),
        (vec!["s-3".to_string(), "s-1".into()], json!(2))
    );
    let both = get_ok(
        &app,
        "/api/v1/sessions",
        &[("agent_id", "a"), ("user_id", "u1")],
    )
    .await;
    assert_eq!(
        (listed(&both), both["total_count"].clone()),
        (vec!["s-1".to_string()], json!(1))
    );
    let nobody = get_ok(&app, "/api/v1/sessions", &[("agent_id", "nobody")]).await;
    assert_eq!(
        (listed(&nobody), nobody["total_count"].clone()),
        (Vec::<String>::new(), json!(0))
    );
}

#[tokio::test]
async fn a_session_list_with_page_zero_or_a_non_numeric_page_size_is_422() {
    let app = spawn_app().await;
    assert_eq!(
        error_of(get_with(&app, "/api/v1/sessions", &[("page", "0")]).await).await,
        (
            422,
            "invalid_request".into(),
            "page must be a whole number from 1 to 1000000, not \"0\"".into()
        )
    );
    assert_eq!(
        error_of(get_with(&app, "/api/v1/sessions", &[("page_size", "abc")]).await).await,
        (
            422,
            "invalid_request".into(),
            "page_size must be a whole number from 1 to 1000, not \"abc\"".into()
        )
    );
}

#[tokio::test]
async fn a_sessions_entries_come_oldest_first_with_every_compat_field() {
    let app = spawn_app().await;
    let calls = [
        json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "d-1", "agent_id": "agent-7", "user_id": "u-3", "metadata": {"trace": "x1"}}),
        json!({"tool_name": "read_file", "tool_args": {"path": "/etc/shadow"}, "session_id": "d-1", "agent_id": "agent-7", "user_id": "u-3"}),
        json!({"tool_name": "mystery_tool", "session_id": "d-1"}),
    ];
    let mut decisions = Vec::new();
    for c in &calls {
        decisions.push(app.enforce(c.clone()).await);
    }
    let entries = get_ok(&app, "/api/v1/sessions/d-1", &[]).await;
    let entries = entries.as_array().expect("the entries are a JSON array");
    assert_eq!(entries.len(), 3);
    let compat = [
        "id",
        "session_id",
        "timestamp",
        "tool_name",
        "tool_args",
        "tool_result",
        "policy_version",
        "policy_decision",
        "policy_rule",
        "reason",
        "execution_status",
        "execution_duration_ms",
        "error_message",
        "agent_id",
        "user_id",
        "metadata",
    ];
    for e in entries {
        let mut expected = BTreeSet::from(compat);
        expected.insert("policy_hash");
        assert_eq!(keys(e), expected);
    }
    let expected = [
        (
            "read_file",
            json!({"path": "/tmp/a"}),
            "allow",
            json!("allow_temp_files"),
            "Temporary files are open to agents",
            json!("agent-7"),
            json!("u-3"),
            json!({"trace": "x1"}),
        ),
        (
            "read_file",
            json!({"path": "/etc/shadow"}),
            "deny",
            json!("deny_system_files"),
            "System files are not accessible",
            json!("agent-7"),
            json!("u-3"),
            json!({}),
        ),
        (
            "mystery_tool",
            json!({}),
            "deny",
            Value::Null,
            "No rule matched; the policy's default is deny",
            Value::Null,
            Value::Null,
            json!({}),
        ),
    ];
    for ((e, d), (tool, args, decision, rule, reason, agent, user, metadata)) in
        entries.iter().zip(&decisions).zip(expected)
    {
        assert_eq!(
            json!({
                "id": e["id"], "session_id": e["session_id"], "timestamp": e["timestamp"],
                "tool_name": e["tool_name"], "tool_args": e["tool_args"], "tool_result": e["tool_result"],
                "policy_version": e["policy_version"], "policy_decision": e["policy_decision"],
                "policy_rule": e["policy_rule"], "reason": e["reason"],
                "execution_status": e["execution_status"], "execution_duration_ms": e["execution_duration_ms"],
                "error_message": e["error_message"], "agent_id": e["agent_id"], "user_id": e["user_id"],
                "metadata": e["metadata"], "policy_hash": e["policy_hash"],
            }),
            json!({
                "id": d["log_id"], "session_id": "d-1", "timestamp": d["timestamp"],
                "tool_name": tool, "tool_args": args, "tool_result": null,
                "policy_version": "1.1", "policy_decision": decision,
                "policy_rule": rule, "reason": reason,
                "execution_status": null, "execution_duration_ms": null,
                "error_message": null, "agent_id": agent, "user_id": user,
                "metadata": metadata, "policy_hash": d["policy_hash"],
            })
        );
    }
}

#[tokio::test]
async fn a_sessions_summary_has_every_compat_field() {
    let app = spawn_app().await;
    let mut decisions = Vec::new();
    for (tool, path) in [
        ("read_file", "/tmp/a"),
        ("read_file", "/etc/passwd"),
        ("write_file", "/home/me/notes"),
        ("list_files", "/tmp/"),
    ] {
        decisions.push(app.enforce(json!({"tool_name": tool, "tool_args": {"path": path}, "session_id": "sum-1", "agent_id": "agent-7", "user_id": "u-3"})).await);
    }
    assert_eq!(
        decisions
            .iter()
            .map(|d| text(&d["decision"]))
            .collect::<Vec<_>>(),
        ["allow", "deny", "approve", "allow"]
    );
    let s = get_ok(&app, "/api/v1/sessions/sum-1/summary", &[]).await;
    assert_eq!(
        s,
        json!({
            "session_id": "sum-1",
            "start_time": decisions[0]["timestamp"],
            "end_time": decisions[3]["timestamp"],
            "total_calls": 4,
            "allowed_calls": 2,
            "denied_calls": 1,
            "approved_calls": 1,
            "agent_id": "agent-7",
            "user_id": "u-3",
            "action_count": 4,
            "estimated_cost": 0.0,
            "tool_counts": {"read_file": 2, "write_file": 1, "list_files": 1},
        })
    );
}

#[tokio::test]
async fn an_unknown_session_is_404_for_its_entries_and_its_summary() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/sessions/no-such-session",
        "/api/v1/sessions/no-such-session/summary",
    ] {
        assert_eq!(
            error_of(app.get(path).await).await,
            (
                404,
                "not_found".into(),
                "no session \"no-such-session\"".into()
            ),
            "{path}"
        );
    }
}

#[tokio::test]
async fn every_timestamp_read_back_parses_with_python_fromisoformat() {
    let app = spawn_app().await;
    let d = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "ts-1"}))
        .await;
    app.enforce(
        json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/b"}, "session_id": "ts-1"}),
    )
    .await;
    let entries = get_ok(&app, "/api/v1/sessions/ts-1", &[]).await;
    let summary = get_ok(&app, "/api/v1/sessions/ts-1/summary", &[]).await;
    let listed = get_ok(&app, "/api/v1/sessions", &[]).await;
    let logs = get_ok(&app, "/api/v1/logs", &[]).await;
    let current = get_ok(&app, "/api/v1/policy/current", &[]).await;
    let versions = get_ok(&app, "/api/v1/policy/versions", &[]).await;
    let status = get_ok(&app, "/api/v1/status", &[]).await;
    let stamps = [
        &d["timestamp"],
        &entries[0]["timestamp"],
        &entries[1]["timestamp"],
        &summary["start_time"],
        &summary["end_time"],
        &listed["sessions"][0]["start_time"],
        &listed["sessions"][0]["end_time"],
        &logs["logs"][0]["timestamp"],
        &current["last_updated"],
        &versions["versions"][0]["loaded_at"],
        &status["policy"]["loaded_at"],
    ];
    for t in stamps {
        assert_timestamp(t);
    }
    // Python 3.9's fromisoformat takes exactly this shape (not `Z`, not nanoseconds).
    let script = "import sys, datetime\n\
                  for t in sys.argv[1:]:\n    \
                      d = datetime.datetime.fromisoformat(t[:-1] + '+00:00' if t.endswith('Z') else t)\n    \
                      assert d.utcoffset() == datetime.timedelta(0), t\n    \
                      print(d.isoformat(timespec='microseconds'))";
    let texts: Vec<String> = stamps.iter().map(|t| text(t)).collect();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&texts)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python rejected a timestamp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(parsed, texts, "each parses back to the same instant");
}

// ---- logs --------------------------------------------------------------------

#[tokio::test]
async fn logs_come_newest_first_and_each_filter_narrows_them() {
    let app = spawn_app().await;
    let calls = [
        json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/1"}, "session_id": "L1", "agent_id": "a1", "user_id": "u1"}),
        json!({"tool_name": "read_file", "tool_args": {"path": "/etc/passwd"}, "session_id": "L1", "agent_id": "a1", "user_id": "u1"}),
        json!({"tool_name": "list_files", "tool_args": {"path": "/tmp/"}, "session_id": "L2", "agent_id": "a2", "user_id": "u1"}),
        json!({"tool_name": "write_file", "tool_args": {"path": "/home/x"}, "session_id": "L2", "agent_id": "a2", "user_id": "u2"}),
        json!({"tool_name": "search_web", "tool_args": {"q": "rust"}, "session_id": "L3", "agent_id": "a1", "user_id": "u2"}),
    ];
    let mut d = Vec::new();
    for c in calls {
        d.push(app.enforce(c).await);
    }
    assert_eq!(
        d.iter().map(|x| text(&x["decision"])).collect::<Vec<_>>(),
        ["allow", "deny", "allow", "approve", "allow"]
    );
    let pick = |n: &[usize]| newest_first(&n.iter().map(|i| &d[*i - 1]).collect::<Vec<_>>());
    let ts = |i: usize| text(&d[i - 1]["timestamp"]);

    let all = get_ok(&app, "/api/v1/logs", &[]).await;
    assert_eq!(keys(&all), BTreeSet::from(["logs", "next_cursor"]));
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(ids(&all["logs"]), pick(&[1, 2, 3, 4, 5]));
    assert_eq!(
        all["logs"][0],
        get_ok(&app, "/api/v1/sessions/L3", &[]).await[0],
        "a log entry is the session entry"
    );

    let (t2, t3, t4) = (ts(2), ts(3), ts(4));
    let t3_z = t3.replace("+00:00", "Z");
    let (t2, t3, t4, t3_z) = (t2.as_str(), t3.as_str(), t4.as_str(), t3_z.as_str());
    let cases: Vec<(Vec<(&str, &str)>, Vec<usize>)> = vec![
        (vec![("session_id", "L1")], vec![1, 2]),
        (vec![("agent_id", "a1")], vec![1, 2, 5]),
        (vec![("user_id", "u2")], vec![4, 5]),
        (vec![("tool_name", "read_file")], vec![1, 2]),
        (vec![("decision", "deny")], vec![2]),
        (vec![("decision", "approve")], vec![4]),
        (vec![("decision", "allow")], vec![1, 3, 5]),
        (vec![("since", t3)], vec![3, 4, 5]),
        (vec![("since", t3_z)], vec![3, 4, 5]),
        (vec![("until", t3)], vec![1, 2]),
        (vec![("since", t2), ("until", t4)], vec![2, 3]),
        (vec![("agent_id", "a1"), ("decision", "allow")], vec![1, 5]),
        (vec![("session_id", "nowhere")], vec![]),
    ];
    for (query, expected) in cases {
        let got = get_ok(&app, "/api/v1/logs", &query).await;
        assert_eq!(ids(&got["logs"]), pick(&expected), "for {query:?}");
    }
}

/// Every page of `/api/v1/logs` with `pairs`, following `next_cursor`: the ids and each page's size.
async fn walk(app: &TestApp, pairs: &[(&str, &str)]) -> (Vec<String>, Vec<usize>) {
    let (mut all, mut sizes) = (Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query = pairs.to_vec();
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let page = get_ok(app, "/api/v1/logs", &query).await;
        let page_ids = ids(&page["logs"]);
        sizes.push(page_ids.len());
        all.extend(page_ids);
        match &page["next_cursor"] {
            Value::Null => return (all, sizes),
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor is {other}"),
        }
    }
    panic!("the cursor never ran out");
}

#[tokio::test]
async fn logs_pages_follow_next_cursor_to_the_end_without_gaps_or_repeats() {
    let app = spawn_app().await;
    let mut d = Vec::new();
    for i in 0..7 {
        d.push(
            app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": format!("/tmp/{i}")}, "session_id": format!("p-{}", i % 2)}))
                .await,
        );
    }
    let everything = newest_first(&d.iter().collect::<Vec<_>>());

    let (walked, sizes) = walk(&app, &[("limit", "3")]).await;
    assert_eq!(walked, everything);
    assert_eq!(sizes, [3, 3, 1]);

    let (walked, _) = walk(&app, &[("limit", "7")]).await;
    assert_eq!(walked, everything, "a last page that is exactly full");

    let (walked, _) = walk(&app, &[("limit", "1")]).await;
    assert_eq!(walked, everything);

    let evens: Vec<&Value> = d.iter().step_by(2).collect();
    let (walked, sizes) = walk(&app, &[("limit", "2"), ("session_id", "p-0")]).await;
    assert_eq!(walked, newest_first(&evens));
    assert!(sizes.iter().all(|n| *n <= 2), "{sizes:?}");
}

#[tokio::test]
async fn logs_with_an_unknown_decision_a_bad_time_a_zero_limit_or_a_foreign_cursor_are_422() {
    let app = spawn_app().await;
    for (query, message) in [
        (
            ("decision", "maybe"),
            "decision must be allow, deny or approve, not \"maybe\"",
        ),
        (
            ("since", "yesterday"),
            "since must be an RFC 3339 time such as 2026-11-23T21:01:13Z, not \"yesterday\"",
        ),
        (
            ("until", "2026-13-45"),
            "until must be an RFC 3339 time such as 2026-11-23T21:01:13Z, not \"2026-13-45\"",
        ),
        (
            ("limit", "0"),
            "limit must be a whole number from 1 to 1000, not \"0\"",
        ),
        (
            ("cursor", "abc"),
            "cursor \"abc\" is not one this server gave out",
        ),
    ] {
        assert_eq!(
            error_of(get_with(&app, "/api/v1/logs", &[query]).await).await,
            (422, "invalid_request".into(), message.into()),
            "for {query:?}"
        );
    }
}

#[tokio::test]
async fn a_mistyped_misplaced_or_repeated_query_parameter_is_422_and_compat_ones_pass_unknown_names()
 {
    let app = spawn_app().await;
    let decided = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/etc/passwd"}}))
        .await;
    assert_eq!(decided["decision"], "deny");
    for (path, pairs, message) in [
        // A filter dropped for its typo would return every entry.
        (
            "/api/v1/logs",
            &[("decsion", "deny")][..],
            "unknown field `decsion`, expected one of `session_id`",
        ),
        (
            "/api/v1/logs",
            &[("decision", "deny"), ("decision", "allow")][..],
            "duplicate field `decision`",
        ),
        (
            "/api/v1/logs",
            &[("format", "csv")][..],
            "format is a parameter of /api/v1/logs/export",
        ),
        (
            "/api/v1/logs/export",
            &[("sesion_id", "s")][..],
            "unknown field `sesion_id`",
        ),
        (
            "/api/v1/logs/export",
            &[("limit", "10")][..],
            "limit is a parameter of /api/v1/logs; an export streams",
        ),
        (
            "/api/v1/logs/export",
            &[("cursor", "5")][..],
            "cursor is a parameter of /api/v1/logs",
        ),
        (
            "/api/v1/approvals",
            &[("stauts", "pending")][..],
            "unknown field `stauts`",
        ),
        (
            "/api/v1/approvals/none",
            &[("wiat", "30")][..],
            "unknown field `wiat`",
        ),
        (
            "/api/v1/events",
            &[("session", "s")][..],
            "unknown field `session`",
        ),
        // **compat** endpoints let unknown names through, but not a repeated one.
        (
            "/api/v1/sessions",
            &[("page", "1"), ("page", "2")][..],
            "duplicate field `page`",
        ),
    ] {
        let (status, code, text) = error_of(get_with(&app, path, pairs).await).await;
        assert_eq!(
            (status, code.as_str()),
            (422, "invalid_request"),
            "{path} {pairs:?}: {text}"
        );
        assert!(text.contains(message), "{path} {pairs:?}: {text}");
    }
    let listed = get_ok(
        &app,
        "/api/v1/sessions",
        &[("page", "1"), ("sort", "newest")],
    )
    .await;
    assert_eq!(listed["total_count"], 1);
    let logs = get_ok(&app, "/api/v1/logs", &[("decision", "deny")]).await;
    assert_eq!(
        ids(&logs["logs"]),
        vec![decided["log_id"].as_str().unwrap().to_string()]
    );
}

/// The whole log exported in `format`.
async fn export_of(app: &TestApp, format: &str) -> String {
    get_with(app, "/api/v1/logs/export", &[("format", format)])
        .await
        .text()
        .await
        .unwrap()
}

/// Split CSV text (RFC 4180: quoted fields may hold commas, doubled quotes and newlines) into records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => (quoted, was_quoted) = (true, true),
            '"' => panic!("a bare quote in an unquoted field, after {field:?}"),
            ',' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                was_quoted = false;
            }
            _ if was_quoted => panic!("text after a closing quote: {c:?}"),
            other => field.push(other),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "the CSV ends inside a record"
    );
    records
}

#[tokio::test]
async fn logs_export_as_json_lines_and_as_csv_with_awkward_fields_quoted() {
    let (_dir, app) = policy_with(
        r#"version: "export"
default_action: allow
rules:
  - name: refuse_quotes
    tools: ["quote_tool"]
    action: deny
    reason: "no, \"never\"\nnot today"
"#,
    )
    .await;
    let d1 = app
        .enforce(json!({"tool_name": "quote_tool", "tool_args": {"q": "a,b \"c\""}, "session_id": "e-1", "agent_id": "agent, the first"}))
        .await;
    let d2 = app
        .enforce(json!({"tool_name": "plain_tool", "tool_args": {"n": 1}, "session_id": "e-1"}))
        .await;
    let d3 = app
        .enforce(json!({"tool_name": "plain_tool", "session_id": "e-2", "user_id": "u-9"}))
        .await;
    ok_json(
        report(
            &app,
            "e-2",
            &text(&d3["log_id"]),
            json!({"status": "error", "duration_ms": 5, "error": "line one\nline \"two\", end"}),
        )
        .await,
    )
    .await;
    let order = newest_first(&[&d1, &d2, &d3]);

    let r = get_with(&app, "/api/v1/logs/export", &[("format", "jsonl")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.text().await.unwrap();
    assert!(body.ends_with('\n'), "{body:?}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(ids(&Value::Array(lines.clone())), order);
    assert_eq!(
        Value::Array(lines),
        get_ok(&app, "/api/v1/logs", &[]).await["logs"],
        "a line is the log entry"
    );
    // Without a format, JSON lines.
    let default = get_with(&app, "/api/v1/logs/export", &[]).await;
    assert_eq!(default.text().await.unwrap(), body);

    let r = get_with(&app, "/api/v1/logs/export", &[("format", "csv")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let header = "id,session_id,timestamp,tool_name,tool_args,policy_decision,policy_rule,reason,policy_version,execution_status,execution_duration_ms,error_message,agent_id,user_id";
    assert!(csv.starts_with(&format!("{header}\n")), "{csv}");
    assert!(
        csv.contains("\"no, \"\"never\"\"\nnot today\""),
        "the reason is quoted with its quotes doubled: {csv}"
    );
    let records = parse_csv(&csv);
    let columns: Vec<&str> = header.split(',').collect();
    assert_eq!(records[0], columns);
    assert_eq!(records.len(), 4, "{records:?}");
    let row = |r: &Vec<String>| -> Value {
        Value::Object(
            columns
                .iter()
                .zip(r)
                .map(|(c, v)| (c.to_string(), json!(v)))
                .collect(),
        )
    };
    assert_eq!(
        records[1..]
            .iter()
            .map(|r| r[0].clone())
            .collect::<Vec<_>>(),
        order
    );
    assert_eq!(
        row(&records[1]),
        json!({
            "id": d3["log_id"], "session_id": "e-2", "timestamp": d3["timestamp"],
            "tool_name": "plain_tool", "tool_args": "{}", "policy_decision": "allow",
            "policy_rule": "", "reason": "No rule matched; the policy's default is allow",
            "policy_version": "export", "execution_status": "error", "execution_duration_ms": "5",
            "error_message": "line one\nline \"two\", end", "agent_id": "", "user_id": "u-9",
        })
    );
    assert_eq!(
        row(&records[3]),
        json!({
            "id": d1["log_id"], "session_id": "e-1", "timestamp": d1["timestamp"],
            "tool_name": "quote_tool", "tool_args": "{\"q\":\"a,b \\\"c\\\"\"}", "policy_decision": "deny",
            "policy_rule": "refuse_quotes", "reason": "no, \"never\"\nnot today",
            "policy_version": "export", "execution_status": "", "execution_duration_ms": "",
            "error_message": "", "agent_id": "agent, the first", "user_id": "",
        })
    );

    // The filters apply to exports too.
    let only = get_with(
        &app,
        "/api/v1/logs/export",
        &[("format", "jsonl"), ("session_id", "e-1")],
    )
    .await;
    assert_eq!(only.text().await.unwrap().lines().count(), 2);
}

#[tokio::test]
async fn a_csv_export_defuses_text_a_spreadsheet_would_run_as_a_formula() {
    let app = spawn_app().await;
    let cases = [
        ("-2+3+cmd|' /C calc'!A0", "=HYPERLINK(\"http://x\")"),
        ("+1", "@SUM(A1)"),
        ("plain", "-1+1"),
    ];
    for (session, agent) in cases {
        app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": session, "agent_id": agent}))
            .await;
    }
    let csv = export_of(&app, "csv").await;
    let records = parse_csv(&csv);
    let (session_at, agent_at) = (1, 12);
    assert_eq!(
        (
            records[0][session_at].as_str(),
            records[0][agent_at].as_str()
        ),
        ("session_id", "agent_id")
    );
    let mut shown: Vec<(String, String)> = records[1..]
        .iter()
        .map(|r| (r[session_at].clone(), r[agent_at].clone()))
        .collect();
    shown.sort();
    let mut expected: Vec<(String, String)> = [
        ("'-2+3+cmd|' /C calc'!A0", "'=HYPERLINK(\"http://x\")"),
        ("'+1", "'@SUM(A1)"),
        ("plain", "'-1+1"),
    ]
    .map(|(s, a)| (s.to_string(), a.to_string()))
    .to_vec();
    expected.sort();
    assert_eq!(shown, expected);
}

#[tokio::test]
async fn an_export_past_one_page_of_storage_reads_has_every_decision_exactly_once() {
    let app = spawn_app().await;
    let mut expected = BTreeSet::new();
    for batch in 0..4 {
        let calls = (0..130).map(|i| {
            app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": format!("/tmp/{batch}-{i}")}, "session_id": format!("x-{}", i % 5)}))
        });
        for d in futures::future::join_all(calls).await {
            expected.insert(text(&d["log_id"]));
        }
    }
    assert_eq!(expected.len(), 520);

    let jsonl = export_of(&app, "jsonl").await;
    let exported: Vec<String> = jsonl
        .lines()
        .map(|l| text(&serde_json::from_str::<Value>(l).unwrap()["id"]))
        .collect();
    assert_eq!(exported.len(), 520, "no decision twice");
    assert_eq!(exported.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let (walked, _) = walk(&app, &[("limit", "1000")]).await;
    assert_eq!(exported, walked, "newest first, as /logs has them");

    let csv = export_of(&app, "csv").await;
    let records = parse_csv(&csv);
    assert_eq!(records.len(), 521, "a header and one record per decision");
    assert_eq!(
        records[1..]
            .iter()
            .map(|r| r[0].clone())
            .collect::<Vec<_>>(),
        exported
    );
}

#[tokio::test]
async fn an_export_in_an_unknown_format_is_422() {
    let app = spawn_app().await;
    assert_eq!(
        error_of(get_with(&app, "/api/v1/logs/export", &[("format", "xml")]).await).await,
        (
            422,
            "invalid_request".into(),
            "format must be jsonl or csv, not \"xml\"".into()
        )
    );
    let (status, _, message) = error_of(
        get_with(
            &app,
            "/api/v1/logs/export",
            &[("format", "csv"), ("decision", "maybe")],
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (
            422,
            "decision must be allow, deny or approve, not \"maybe\""
        )
    );
}

// ---- policy ------------------------------------------------------------------

#[tokio::test]
async fn the_current_policy_has_every_compat_field_and_its_rules() {
    use sha2::Digest as _;
    let app = spawn_app().await;
    let p = get_ok(&app, "/api/v1/policy/current", &[]).await;
    for key in [
        "version",
        "description",
        "rules_count",
        "last_updated",
        "hash",
        "active",
        "rules",
    ] {
        assert!(keys(&p).contains(key), "no {key} in {p}");
    }
    let file = std::fs::read(default_policy()).unwrap();
    assert_eq!(p["version"], "1.1");
    assert_eq!(
        p["description"],
        "Default policy: safe reads allowed, system files and secrets denied, changes approved by a human"
    );
    assert_eq!(p["rules_count"], 8);
    assert_timestamp(&p["last_updated"]);
    assert_eq!(p["hash"], hex::encode(sha2::Sha256::digest(&file)));
    assert_eq!(p["active"], true);
    let d = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}}))
        .await;
    assert_eq!(p["hash"], d["policy_hash"]);

    let rules = p["rules"].as_array().unwrap();
    assert_eq!(
        rules.iter().map(|r| text(&r["name"])).collect::<Vec<_>>(),
        [
            "session_action_limit",
            "deny_system_files",
            "deny_unclear_paths",
            "deny_secrets",
            "approve_sensitive",
            "allow_temp_files",
            "approve_changes",
            "allow_read_only"
        ]
    );
    for r in rules {
        for key in ["name", "description", "action", "tools", "condition"] {
            assert!(keys(r).contains(key), "no {key} in {r}");
        }
    }
    let compat = |r: &Value| json!({"name": r["name"], "description": r["description"], "action": r["action"], "tools": r["tools"], "condition": r["condition"]});
    assert_eq!(
        compat(&rules[0]),
        json!({"name": "session_action_limit", "description": "Stop a runaway agent after 1000 decisions in one session",
               "action": "deny", "tools": null, "condition": "session.action_count >= 1000"})
    );
    assert_eq!(
        compat(&rules[5]),
        json!({"name": "allow_temp_files", "description": "Temporary files are the agent's scratch space",
               "action": "allow", "tools": ["read_file", "write_file", "list_files", "delete_file"],
               "condition": "tool_args.path.startswith(\"/tmp/\")"})
    );
    assert_eq!(
        compat(&rules[6])["condition"],
        Value::Null,
        "a rule without a condition"
    );
}

#[tokio::test]
async fn validate_accepts_a_good_policy_with_its_warnings_and_locates_the_errors_of_a_bad_one() {
    let app = spawn_app().await;
    let good = "version: \"2.0\"\ndefault_action: deny\nrules:\n  - name: everything\n    action: allow\n  - name: never_reached\n    tools: [\"delete_file\"]\n    action: deny\n";
    let v = ok_json(
        app.post("/api/v1/policy/validate", &json!({"content": good}))
            .await,
    )
    .await;
    assert_eq!(
        (
            v["valid"].clone(),
            v["errors"].clone(),
            v["rules_count"].clone()
        ),
        (json!(true), json!([]), json!(2))
    );
    let warnings = v["warnings"].as_array().expect("warnings are a list");
    let shadowed = warnings
        .iter()
        .find(|w| w["rule"] == "never_reached")
        .unwrap_or_else(|| panic!("no warning about never_reached: {warnings:?}"));
    assert_eq!(
        keys(shadowed),
        BTreeSet::from(["message", "line", "column", "rule"])
    );
    assert!(
        text(&shadowed["message"]).starts_with("never decides: rule \"everything\""),
        "{shadowed}"
    );
    assert_eq!(shadowed["line"], 6);

    let bad = "version: \"2.0\"\ndefault_action: deny\nrules:\n  - name: shouty\n    condition: tool_name.lower()\n    action: allow\n";
    let v = ok_json(
        app.post("/api/v1/policy/validate", &json!({"content": bad}))
            .await,
    )
    .await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["rules_count"], 0);
    assert_eq!(
        v["errors"],
        json!([{"message": "a condition must be true or false, but this is a string", "line": 5, "column": 16, "rule": "shouty"}])
    );

    let unparsable = "version: \"2.0\"\nrules: [\n";
    let v = ok_json(
        app.post("/api/v1/policy/validate", &json!({"content": unparsable}))
            .await,
    )
    .await;
    assert_eq!(v["valid"], false);
    let errors = v["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(
        errors[0]["line"].as_u64().unwrap() >= 2,
        "the error is located: {errors:?}"
    );
    assert_eq!(errors[0]["rule"], Value::Null);

    // Validating never replaces the policy in force.
    assert_eq!(
        get_ok(&app, "/api/v1/policy/current", &[]).await["version"],
        "1.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validations_at_once_are_each_answered_in_turn() {
    let app = Arc::new(spawn_app().await);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let text =
                    format!("version: \"v{i}\"\nrules:\n  - name: r{i}\n    action: allow\n");
                ok_json(
                    app.post("/api/v1/policy/validate", &json!({"content": text}))
                        .await,
                )
                .await
            })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        let v = call.await.unwrap();
        assert_eq!(
            (v["valid"].clone(), v["version"].clone()),
            (json!(true), json!(format!("v{i}")))
        );
    }
}

#[tokio::test]
async fn validate_without_content_is_422() {
    let app = spawn_app().await;
    assert_eq!(
        error_of(app.post("/api/v1/policy/validate", &json!({})).await).await,
        (
            422,
            "invalid_request".into(),
            "content is required: {\"content\": \"<policy YAML>\"}".into()
        )
    );
    assert_eq!(
        error_of(
            app.post("/api/v1/policy/validate", &json!({"content": 5}))
                .await
        )
        .await,
        (
            422,
            "invalid_request".into(),
            "content must be the policy's YAML text as a string, not a number".into()
        )
    );
}

#[tokio::test]
async fn policy_versions_list_every_policy_loaded_newest_first_with_its_text() {
    let first = "version: \"v1\"\ndefault_action: deny\nrules:\n  - name: reads\n    tools: [\"read_*\"]\n    action: allow\n";
    let second = "version: \"v2\"\n# a comment, kept\ndefault_action: allow\nrules: []\n";
    let dir = tempfile::tempdir().unwrap();
    let path = policy_file(dir.path(), first);
    let app = spawn_app_with(&path, json!({})).await;
    let current = get_ok(&app, "/api/v1/policy/current", &[]).await;

    let listed = get_ok(&app, "/api/v1/policy/versions", &[]).await;
    let versions = listed["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    for key in ["version", "hash", "loaded_at", "rules_count"] {
        assert!(keys(&versions[0]).contains(key), "no {key} in {versions:?}");
    }
    assert_eq!(
        (
            versions[0]["version"].clone(),
            versions[0]["hash"].clone(),
            versions[0]["rules_count"].clone()
        ),
        (json!("v1"), current["hash"].clone(), json!(1))
    );
    let v1_hash = text(&current["hash"]);
    let one = get_ok(&app, &format!("/api/v1/policy/versions/{v1_hash}"), &[]).await;
    assert_eq!(one["content"], first);
    assert_eq!(one["version"], "v1");

    std::fs::write(&path, second).unwrap();
    ok_json(app.post("/api/v1/policy/reload", &json!({})).await).await;
    let listed = get_ok(&app, "/api/v1/policy/versions", &[]).await;
    let versions = listed["versions"].as_array().unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| text(&v["version"]))
            .collect::<Vec<_>>(),
        ["v2", "v1"]
    );
    let v2 = get_ok(
        &app,
        &format!("/api/v1/policy/versions/{}", text(&versions[0]["hash"])),
        &[],
    )
    .await;
    assert_eq!(v2["content"], second);
    let v1 = get_ok(&app, &format!("/api/v1/policy/versions/{v1_hash}"), &[]).await;
    assert_eq!(v1["content"], first, "an older text stays readable");

    assert_eq!(
        error_of(app.get("/api/v1/policy/versions/deadbeef").await).await,
        (
            404,
            "not_found".into(),
            "no policy with hash \"deadbeef\" was ever loaded".into()
        )
    );
}

// ---- operations --------------------------------------------------------------

#[tokio::test]
async fn health_answers_without_credentials_even_when_keys_are_required() {
    let app = spawn_app_with(
        &default_policy(),
        json!({"api_keys": "admin:reads-test-admin-key-0123456789"}),
    )
    .await;
    let health = get_ok(&app, "/health", &[]).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let (status, code, _) = error_of(app.get("/api/v1/status").await).await;
    assert_eq!(
        (status, code.as_str()),
        (401, "unauthorized"),
        "the API itself is closed"
    );
}

#[tokio::test]
async fn ready_and_status_report_the_database_the_policy_and_the_decision_count() {
    let app = spawn_app().await;
    let current = get_ok(&app, "/api/v1/policy/current", &[]).await;
    let ready = get_ok(&app, "/ready", &[]).await;
    assert_eq!(
        (
            ready["ready"].clone(),
            ready["database"].clone(),
            ready["audit"].clone(),
            ready["policy"]["hash"].clone()
        ),
        (
            json!(true),
            json!("ok"),
            json!("ok"),
            current["hash"].clone()
        )
    );

    let before = get_ok(&app, "/api/v1/status", &[]).await;
    assert_eq!(before["counts"]["decisions"], 0);
    for path in ["/tmp/a", "/etc/passwd", "/tmp/b"] {
        app.enforce(
            json!({"tool_name": "read_file", "tool_args": {"path": path}, "session_id": "st-1"}),
        )
        .await;
    }
    let logs = get_ok(&app, "/api/v1/logs", &[]).await;
    ok_json(
        report(
            &app,
            "st-1",
            &text(&logs["logs"][0]["id"]),
            json!({"status": "success"}),
        )
        .await,
    )
    .await;

    let status = get_ok(&app, "/api/v1/status", &[]).await;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        status["uptime_seconds"].is_u64(),
        "uptime_seconds: {status}"
    );
    assert_eq!(status["policy"]["version"], "1.1");
    assert_eq!(status["policy"]["hash"], current["hash"]);
    assert_eq!(status["storage"], backend());
    assert_eq!(
        status["counts"]["decisions"], 3,
        "three decisions; a result is not a decision"
    );
}

#[tokio::test]
async fn metrics_count_a_decision_by_outcome_and_rule() {
    let (_dir, app) = policy_with(
        "version: \"metrics\"\ndefault_action: deny\nrules:\n  - name: reads_metrics_probe\n    tools: [\"probe\"]\n    action: allow\n",
    )
    .await;
    app.enforce(json!({"tool_name": "probe"})).await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{:?}",
        r.headers()
    );
    let body = r.text().await.unwrap();
    // The recorder is shared by every app in this process; the rule name is this test's own.
    assert!(
        body.lines()
            .any(|l| l == "tame_decisions_total{decision=\"allow\",rule=\"reads_metrics_probe\"} 1"),
        "{body}"
    );
}

#[tokio::test]
async fn metrics_show_the_approvals_waiting_for_a_human_from_the_start() {
    let app = spawn_app().await;
    let pending = || async {
        let body = app.get("/metrics").await.text().await.unwrap();
        body.lines()
            .find_map(|l| l.strip_prefix("tame_approvals_pending "))
            .unwrap_or_else(|| panic!("no tame_approvals_pending in {body}"))
            .to_string()
    };
    assert_eq!(pending().await, "0");
    for path in ["/home/u/a", "/home/u/b"] {
        let d = app
            .enforce(json!({"tool_name": "write_file", "tool_args": {"path": path}}))
            .await;
        assert_eq!(d["decision"], "approve", "{d}");
    }
    assert_eq!(pending().await, "2");
}

/// The events of a server-sent event stream, as (event, data as JSON), until `n` have come.
async fn next_events(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut Vec<u8>,
    n: usize,
) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    while events.len() < n {
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let block = String::from_utf8(buffer.drain(..end + 2).collect()).unwrap();
            let (mut kind, mut data) = (String::from("message"), String::new());
            for line in block.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = k.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if !data.is_empty() {
                events.push((kind, serde_json::from_str(&data).expect("data is JSON")));
            }
        }
        if events.len() >= n {
            break;
        }
        let chunk = stream
            .next()
            .await
            .expect("the stream stays open")
            .expect("the stream reads");
        buffer.extend_from_slice(&chunk);
    }
    events
}

#[tokio::test]
async fn the_event_stream_for_a_session_carries_exactly_that_sessions_decisions_and_results() {
    let app = spawn_app().await;
    let r = get_with(&app, "/api/v1/events", &[("session_id", "watched")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let mut buffer = Vec::new();

    // The other session's decision is sent first: a stream that let it through would show it first.
    app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "elsewhere"}))
        .await;
    let d = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/b"}, "session_id": "watched"}))
        .await;
    let log_id = text(&d["log_id"]);
    let other = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/c"}, "session_id": "elsewhere"}))
        .await;
    ok_json(
        report(
            &app,
            "elsewhere",
            &text(&other["log_id"]),
            json!({"status": "success"}),
        )
        .await,
    )
    .await;
    ok_json(report(&app, "watched", &log_id, json!({"status": "success"})).await).await;

    let events = tokio::time::timeout(
        Duration::from_secs(10),
        next_events(&mut stream, &mut buffer, 2),
    )
    .await
    .expect("two events within 10 seconds");
    assert_eq!(events[0].0, "decision");
    assert_eq!(
        (
            events[0].1["session_id"].clone(),
            events[0].1["log_id"].clone(),
            events[0].1["decision"].clone()
        ),
        (json!("watched"), json!(log_id), json!("allow"))
    );
    assert_eq!(events[1].0, "result");
    assert_eq!(
        (
            events[1].1["session_id"].clone(),
            events[1].1["log_id"].clone()
        ),
        (json!("watched"), json!(log_id))
    );
}

#[tokio::test]
async fn an_unknown_path_is_404_with_the_json_error_body() {
    let app = spawn_app().await;
    for path in ["/api/v1/nothing-here", "/nothing-here"] {
        assert_eq!(
            error_of(app.get(path).await).await,
            (
                404,
                "not_found".into(),
                "no such endpoint; the API is under /api/v1 (see /openapi.json)".into()
            ),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_fewest_database_connections_still_serve_decisions_and_reads_at_once() {
    // None is refused, saying which setting.
    let dir = tempfile::tempdir().unwrap();
    let refused = tame::app::Application::build(settings(
        dir.path(),
        &default_policy(),
        json!({"database_connections": 0}),
    ))
    .await
    .err()
    .expect("no connections at all is refused");
    assert!(
        refused.contains("database_connections (TAME_DATABASE_CONNECTIONS) must be at least 1"),
        "{refused}"
    );

    // One reader on SQLite (its writer has its own); three on PostgreSQL.
    let fewest = if backend() == "sqlite" { 1 } else { 3 };
    let app = spawn_app_with(&default_policy(), json!({"database_connections": fewest})).await;
    let calls = (0..40).map(|i| {
        let app = &app;
        async move {
            let body = json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": format!("few-{}", i % 4)});
            let decided = app.post("/api/v1/enforce", &body).await.status().as_u16();
            let listed = app.get("/api/v1/sessions").await.status().as_u16();
            let logs = app.get(&format!("/api/v1/sessions/few-{}", i % 4)).await.status().as_u16();
            (decided, listed, logs)
        }
    });
    for seen in futures::future::join_all(calls).await {
        assert_eq!(seen, (200, 200, 200));
    }
    let summary = get_ok(&app, "/api/v1/sessions/few-0/summary", &[]).await;
    assert_eq!(summary["total_calls"], json!(10));
}
