//! `/enforce`: the compat shapes, exact session counters under concurrency.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::{self, *};

#[tokio::test]
async fn enforce_answers_in_the_compat_shape_and_records_the_decision() {
    let app = spawn_app().await;
    let d = app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a.txt"}, "session_id": "s-1", "agent_id": "agent-7", "user_id": "u-3"})).await;
    let keys: BTreeSet<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "session_id",
            "decision",
            "rule_name",
            "reason",
            "policy_version",
            "policy_hash",
            "log_id",
            "timestamp",
            "metadata",
            "approval_id"
        ])
    );
    assert_eq!(d["session_id"], "s-1");
    assert_eq!(d["decision"], "allow");
    assert_eq!(d["rule_name"], "allow_temp_files");
    assert_eq!(d["policy_version"], "1.1");
    assert_eq!(d["policy_hash"].as_str().unwrap().len(), 64);
    assert_eq!(d["approval_id"], Value::Null);
    let ts = d["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with("+00:00") && ts.len() == "2026-11-23T21:01:13.123456+00:00".len(),
        "{ts}"
    );
    let logs: Value = app.get("/api/v1/sessions/s-1").await.json().await.unwrap();
    assert_eq!(logs[0]["id"], d["log_id"]);
    assert_eq!(logs[0]["policy_decision"], "allow");
    assert_eq!(logs[0]["tool_args"], json!({"path": "/tmp/a.txt"}));
}

#[tokio::test]
async fn a_missing_session_id_gets_a_fresh_one() {
    let app = spawn_app().await;
    let a = app.enforce(json!({"tool_name": "read_file"})).await;
    let b = app.enforce(json!({"tool_name": "read_file"})).await;
    assert!(!a["session_id"].as_str().unwrap().is_empty());
    assert_ne!(a["session_id"], b["session_id"]);
}

#[tokio::test]
async fn two_hundred_concurrent_decisions_in_one_session_admit_exactly_one_hundred_each_seeing_a_distinct_count()
 {
    // Rule c<i> matches when the session has i decisions before this one, so
    // the deciding rule tells which count each decision saw.
    let mut text = String::from("version: \"limit\"\ndefault_action: deny\nrules:\n");
    for i in 0..200 {
        let action = if i < 100 { "allow" } else { "deny" };
        text.push_str(&format!(
            "  - name: c{i}\n    condition: session.action_count == {i}\n    action: {action}\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), &text);
    let app = spawn_app_with(&policy, json!({})).await;
    let mut calls = Vec::new();
    for _ in 0..200 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/enforce"));
        calls.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"tool_name": "t", "session_id": "hot"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut allowed = 0;
    let mut seen = BTreeSet::new();
    for c in calls {
        let d = c.await.unwrap();
        if d["decision"] == "allow" {
            allowed += 1;
        }
        let rule = d["rule_name"]
            .as_str()
            .expect("every count has its rule")
            .to_string();
        assert!(seen.insert(rule.clone()), "count {rule} seen twice");
    }
    assert_eq!(allowed, 100);
    assert_eq!(
        seen,
        (0..200).map(|i| format!("c{i}")).collect::<BTreeSet<_>>()
    );
    let summary: Value = app
        .get("/api/v1/sessions/hot/summary")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            summary["total_calls"].as_i64(),
            summary["allowed_calls"].as_i64(),
            summary["denied_calls"].as_i64()
        ),
        (Some(200), Some(100), Some(100))
    );
    // The audit log holds every one of them. On SQLite (one server) they are
    // in the order they were counted; on PostgreSQL, in the order they were
    // committed, which with several servers need not be the same.
    let logs: Vec<Value> = app.get("/api/v1/sessions/hot").await.json().await.unwrap();
    let mut order: Vec<String> = logs
        .iter()
        .map(|l| l["policy_rule"].as_str().unwrap().to_string())
        .collect();
    if backend() != "sqlite" {
        order.sort_by_key(|rule| rule[1..].parse::<u32>().unwrap());
    }
    assert_eq!(order, (0..200).map(|i| format!("c{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = BTreeSet::from([
        "/api/v1/enforce",
        "/api/v1/enforce/{session_id}/result",
        "/api/v1/policy/test",
        "/api/v1/policy/current",
        "/api/v1/policy/validate",
        "/api/v1/policy/reload",
        "/api/v1/policy/versions",
        "/api/v1/policy/versions/{hash}",
        "/api/v1/sessions",
        "/api/v1/sessions/{id}",
        "/api/v1/sessions/{id}/summary",
        "/api/v1/logs",
        "/api/v1/logs/export",
        "/api/v1/status",
        "/api/v1/events",
        "/api/v1/compliance/integrity/verify",
        "/health",
        "/ready",
        "/metrics",
        "/api/v1/approvals",
        "/api/v1/approvals/{id}",
        "/api/v1/approvals/{id}/approve",
        "/api/v1/approvals/{id}/deny",
        "/enforce",
    ]);
    assert_eq!(paths, expected);
    // What the server answers to each kind of mistake is among what the
    // document lists for that endpoint.
    let send = |method: reqwest::Method, path: &str, content_type: &str, body: &str| {
        app.client
            .request(method, app.url(path))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
    };
    let json = "application/json";
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    for (method, route, path, content_type, body, status) in [
        (&post, "/api/v1/enforce", "/api/v1/enforce", json, "{", 400),
        (
            &post,
            "/api/v1/enforce",
            "/api/v1/enforce",
            json,
            r#"{"tool_name": 5}"#,
            422,
        ),
        (
            &post,
            "/api/v1/enforce",
            "/api/v1/enforce",
            json,
            r#"{"tool_name": "x", "approval_id": "none"}"#,
            404,
        ),
        (
            &post,
            "/api/v1/enforce",
            "/api/v1/enforce",
            "text/plain",
            r#"{"tool_name": "x"}"#,
            415,
        ),
        (
            &post,
            "/enforce",
            "/enforce",
            json,
            r#"{"tool_name": "x"}"#,
            200,
        ),
        (
            &post,
            "/api/v1/approvals/{id}/approve",
            "/api/v1/approvals/x/approve",
            json,
            "[1]",
            422,
        ),
        (
            &post,
            "/api/v1/approvals/{id}/deny",
            "/api/v1/approvals/x/deny",
            json,
            "{}",
            404,
        ),
        (
            &get,
            "/api/v1/approvals/{id}",
            "/api/v1/approvals/x?wait=999",
            json,
            "",
            422,
        ),
        (
            &get,
            "/api/v1/logs",
            "/api/v1/logs?decsion=deny",
            json,
            "",
            422,
        ),
        (
            &get,
            "/api/v1/logs/export",
            "/api/v1/logs/export?tool_name=x",
            json,
            "",
            200,
        ),
        (
            &get,
            "/api/v1/sessions/{id}",
            "/api/v1/sessions/none",
            json,
            "",
            404,
        ),
        (
            &post,
            "/api/v1/policy/reload",
            "/api/v1/policy/reload",
            "text/plain",
            "",
            415,
        ),
        (
            &post,
            "/api/v1/policy/validate",
            "/api/v1/policy/validate",
            json,
            "[]",
            422,
        ),
    ] {
        let r = send(method.clone(), path, content_type, body)
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path} {body}");
        assert!(
            documented_statuses(&doc, method.as_str(), route).contains(&status),
            "{method} {route}: {status} is not in /openapi.json"
        );
    }
    // Health and readiness take no credentials, and say so.
    for route in ["/health", "/ready"] {
        assert_eq!(
            doc["paths"][route]["get"]["security"],
            json!([{}]),
            "{route}"
        );
    }
    // A wrong method gets the JSON error body too.
    let r = app
        .client
        .put(app.url("/api/v1/enforce"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
    // A wrong method gets the JSON error body too.
    let r = app
        .client
        .put(app.url("/api/v1/enforce"))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
    let enforce = &doc["paths"]["/api/v1/enforce"]["post"];
    assert!(enforce["responses"]["200"].is_object() && enforce["responses"]["503"].is_object());
    let response_fields: BTreeSet<&str> =
        doc["components"]["schemas"]["EnforceResponse"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
    assert!(
        response_fields.contains("log_id") && response_fields.contains("policy_hash"),
        "{response_fields:?}"
    );
}

#[tokio::test]
async fn the_seed_file_access_policy_decides_end_to_end() {
    let app = spawn_app_with(
        &repo().join("policies/examples/file-access.yaml"),
        json!({}),
    )
    .await;
    let decide = |tool: &str, path: &str| json!({"tool_name": tool, "tool_args": {"path": path}, "session_id": "seed-files"});
    let d = app.enforce(decide("read_file", "/tmp/safe_file.txt")).await;
    assert_eq!(
        (d["decision"].as_str(), d["rule_name"].as_str()),
        (Some("allow"), Some("allow_temp_files"))
    );
    let d = app.enforce(decide("read_file", "/etc/passwd")).await;
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (Some("deny"), Some("System files are not accessible"))
    );
    let d = app
        .enforce(decide("delete_file", "/home/user/document.txt"))
        .await;
    assert_eq!(
        (d["decision"].as_str(), d["reason"].as_str()),
        (
            Some("approve"),
            Some("Deleting user files requires manual approval")
        )
    );
    assert!(d["approval_id"].is_string());
    let d = app
        .enforce(decide("read_file", "/home/user/notes.txt"))
        .await;
    assert_eq!(
        (d["decision"].as_str(), d["rule_name"].as_str()),
        (Some("deny"), None)
    );
}

#[tokio::test]
async fn the_seed_agent_control_policy_sees_real_session_counts_and_reported_costs() {
    let app = spawn_app_with(
        &repo().join("policies/examples/agent-control.yaml"),
        json!({}),
    )
    .await;
    // rate_limit_api_calls: `session.action_count > 100`, counted by the server itself.
    for n in 0..101 {
        let d = app
            .enforce(json!({"tool_name": "api_search", "session_id": "seed-rate"}))
            .await;
        assert_eq!(
            d["rule_name"],
            Value::Null,
            "call {n} saw {} earlier calls",
            n
        );
    }
    let d = app
        .enforce(json!({"tool_name": "api_search", "session_id": "seed-rate"}))
        .await;
    assert_eq!(
        (d["decision"].as_str(), d["rule_name"].as_str()),
        (Some("deny"), Some("rate_limit_api_calls"))
    );

    // cost_control: `session.estimated_cost > 10.0`, fed by the costs results report.
    let gpt4 = json!({"tool_name": "openai_completion", "tool_args": {"model": "gpt-4"}, "session_id": "seed-cost"});
    let first = app.enforce(gpt4.clone()).await;
    let log_id = first["log_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/enforce/seed-cost/result?log_id={log_id}"),
            &json!({"status": "success", "cost": 10.0}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.enforce(gpt4.clone()).await["rule_name"],
        Value::Null,
        "a cost of exactly 10.0 is not over the line"
    );
    let r = app
        .post(
            &format!("/api/v1/enforce/seed-cost/result?log_id={log_id}"),
            &json!({"status": "success", "cost": 0.01}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let d = app.enforce(gpt4).await;
    assert_eq!(
        (d["decision"].as_str(), d["rule_name"].as_str()),
        (Some("approve"), Some("cost_control"))
    );
}

#[tokio::test]
async fn a_session_counts_at_most_a_thousand_tool_names_one_by_one() {
    let app = spawn_app().await;
    for i in 0..1005 {
        app.enforce(json!({"tool_name": format!("tool_{i:04}"), "session_id": "many-tools"}))
            .await;
    }
    let summary: Value = app
        .get("/api/v1/sessions/many-tools/summary")
        .await
        .json()
        .await
        .unwrap();
    let counts = summary["tool_counts"].as_object().unwrap();
    assert_eq!(counts.len(), 1001);
    assert_eq!(counts["(other tools)"], 5);
    assert_eq!(summary["total_calls"], 1005);
}

#[tokio::test]
async fn a_limit_on_one_tool_still_holds_once_a_session_counts_names_together() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(
        dir.path(),
        "version: \"t\"\ndefault_action: allow\nrules:\n  - name: three_mails\n    condition: session.tool_counts[\"send_email\"] >= 3\n    action: deny\n",
    );
    let app = spawn_app_with(&policy, json!({})).await;
    // A thousand other names first: send_email is then counted with the rest.
    for i in 0..1000 {
        app.enforce(json!({"tool_name": format!("junk_{i:04}"), "session_id": "flood"}))
            .await;
    }
    let decisions: Vec<Value> = futures::future::join_all(
        (0..5).map(|_| app.enforce(json!({"tool_name": "send_email", "session_id": "flood"}))),
    )
    .await;
    let denied = decisions.iter().filter(|d| d["decision"] == "deny").count();
    assert_eq!((5 - denied, denied), (3, 2), "{decisions:?}");
}

/// GET `path` with the given Host header.
async fn get_with_host(app: &TestApp, path: &str, host: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn with_auth_off_only_local_json_requests_are_served() {
    let app = spawn_app().await;
    let (status, _, message) =
        error_of(get_with_host(&app, "/api/v1/status", "evil.example:8000").await).await;
    assert_eq!(status, 403);
    assert!(
        message.contains("only answers requests addressed to localhost"),
        "{message}"
    );
    let r = app
        .client
        .post(app.url("/api/v1/enforce"))
        .header("content-type", "text/plain")
        .body(r#"{"tool_name": "read_file"}"#)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(r).await;
    assert_eq!((status, code.as_str()), (415, "unsupported_media_type"));
    for host in [
        "localhost:8000",
        "LocalHost:8000",
        "127.0.0.1:8000",
        "[::1]:8000",
    ] {
        let r = get_with_host(&app, "/api/v1/status", host).await;
        assert_eq!(r.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn with_auth_disabled_on_purpose_off_loopback_ip_addresses_are_served_names_are_not() {
    let app = spawn_app_with(
        &default_policy(),
        json!({"bind": "0.0.0.0:0", "auth_disabled": true}),
    )
    .await;
    let enforce = |host: &'static str| {
        app.client
            .post(app.url("/api/v1/enforce"))
            .header("host", host)
            .json(&json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}}))
            .send()
    };
    for host in ["10.1.2.3:8000", "[fd00::7]:8000", "localhost:8000"] {
        assert_eq!(enforce(host).await.unwrap().status(), 200, "{host}");
    }
    // A name could be one a web page points at this server (DNS rebinding).
    let (status, _, message) = error_of(enforce("tame.internal:8000").await.unwrap()).await;
    assert_eq!(status, 403);
    assert!(
        message.contains("addressed to localhost or an IP address, not \"tame.internal:8000\""),
        "{message}"
    );
    // Disabled on a loopback address, only loopback is answered, as when open.
    let app = spawn_app_with(&default_policy(), json!({"auth_disabled": true})).await;
    let r = get_with_host(&app, "/api/v1/status", "10.1.2.3:8000").await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn with_auth_off_a_change_without_a_json_content_type_is_refused() {
    let app = spawn_app().await;
    // As a web page can send across sites without asking: no body and no
    // content type, or a body typed as something else.
    for (path, content_type, body) in [
        ("/api/v1/policy/reload", None, ""),
        ("/api/v1/enforce", None, r#"{"tool_name": "read_file"}"#),
        (
            "/api/v1/enforce",
            Some("application/octet-stream"),
            r#"{"tool_name": "read_file"}"#,
        ),
    ] {
        let mut r = app.client.post(app.url(path)).body(body);
        if let Some(t) = content_type {
            r = r.header("content-type", t);
        }
        let (status, code, message) = error_of(r.send().await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (415, "unsupported_media_type"),
            "{path}: {message}"
        );
    }
    // Reads need none; JSON with a charset is JSON.
    assert_eq!(app.get("/api/v1/status").await.status(), 200);
    let r = app
        .client
        .post(app.url("/api/v1/enforce"))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Why the server refuses to start in `dir` with `overrides` over the test settings.
async fn refusal(dir: &tempfile::TempDir, overrides: Value) -> String {
    let s = helpers::settings(dir.path(), &default_policy(), overrides.clone());
    tame::app::Application::build(s)
        .await
        .err()
        .unwrap_or_else(|| panic!("{overrides} was accepted"))
}

#[tokio::test]
async fn settings_that_would_refuse_everything_or_lose_the_log_stop_the_start() {
    let cases = [
        (
            json!({"bind": "nonsense"}),
            "bind (TAME_BIND) is \"nonsense\": give HOST:PORT",
        ),
        (
            json!({"bind": "127.0.0.1:99999"}),
            "bind (TAME_BIND) is \"127.0.0.1:99999\"",
        ),
        (
            json!({"limits": {"body_bytes": 0}}),
            "limits.body_bytes (TAME_LIMITS__BODY_BYTES) is 0; it must be at least 1024",
        ),
        (
            json!({"limits": {"agent": {"per_second": 0, "burst": 2}}}),
            "limits.agent.per_second (TAME_LIMITS__AGENT__PER_SECOND) is 0; it must be at least 1 (to lift the limit, set it high)",
        ),
        (
            json!({"limits": {"open": {"per_second": 5, "burst": 0}}}),
            "limits.open.burst (TAME_LIMITS__OPEN__BURST) is 0",
        ),
        (
            json!({"audit": {"retention_days": 0}}),
            "audit.retention_days (TAME_AUDIT__RETENTION_DAYS) is 0; it must be at least 1; leave it unset to keep the log for good",
        ),
        (
            json!({"jwt": {"hs256_secret": "a", "issuer": "i", "audience": "a"}}),
            "the length of jwt.hs256_secret (TAME_JWT__HS256_SECRET) is 1; it must be at least 32 bytes",
        ),
        (
            json!({"approvals": {"webhook_attempts": 0}}),
            "approvals.webhook_attempts (TAME_APPROVALS__WEBHOOK_ATTEMPTS) is 0; it must be at least 1",
        ),
        // A signature keyed by nothing is one anybody can make.
        (
            json!({"approvals": {"webhook_url": "http://127.0.0.1:9/h", "webhook_secret": " "}}),
            "approvals.webhook_secret (TAME_APPROVALS__WEBHOOK_SECRET) is empty",
        ),
        // Said without the URL itself, which may hold a password or token.
        (
            json!({"approvals": {"webhook_url": "ftp://user:pw@example.com/", "webhook_secret": "0123456789abcdef"}}),
            "approvals.webhook_url (TAME_APPROVALS__WEBHOOK_URL) must be an http:// or https:// URL with a host",
        ),
    ];
    for (overrides, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let e = refusal(&dir, overrides.clone()).await;
        assert!(e.starts_with(says), "{overrides}: {e}");
        // Refused before anything was written (on PostgreSQL the folder
        // holds only the test's note of its database's URL).
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name() != "database_url")
                .count(),
            0,
            "{overrides}"
        );
    }
}

/// Start `tame serve` with TAME_LOG=`filter`; it must stop with exit code 2.
/// What it said on stderr.
fn refused_log_filter(filter: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tame"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("TAME_BIND", "127.0.0.1:0")
        .env("TAME_LOG", filter)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that started anyway is stopped and fails the test.
    let mut status = None;
    for _ in 0..300 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("tame serve started with TAME_LOG={filter}");
    }
    assert_eq!(status.unwrap().code(), Some(2), "TAME_LOG={filter}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    stderr
}

#[test]
fn an_unreadable_log_level_stops_the_start() {
    let stderr = refused_log_filter("notalevel[");
    assert!(
        stderr.starts_with("tame serve: TAME_LOG=\"notalevel[\" cannot be read"),
        "{stderr}"
    );
    // Read as a module's name, it would show that module's logs and none of the server's.
    let stderr = refused_log_filter("warning");
    assert!(
        stderr.starts_with(
            "tame serve: TAME_LOG=\"warning\": \"warning\" is not a level here (it would show only a module of that name); write warn"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn settings_that_cannot_work_stop_the_start_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let e = refusal(
        &dir,
        json!({"approvals": {"ttl_secs": 99999999999u64, "webhook_url": null, "webhook_attempts": 5, "webhook_backoff_ms": 1000}}),
    )
    .await;
    assert_eq!(
        e,
        "approvals.ttl_secs is 99999999999; at most 2592000 is accepted"
    );
}

#[tokio::test]
async fn a_sessions_counts_carry_over_a_restart() {
    // Rule c<i> matches when the session has i decisions before this one.
    let mut text = String::from("version: \"limit\"\ndefault_action: deny\nrules:\n");
    for i in 0..5 {
        text.push_str(&format!(
            "  - name: c{i}\n    condition: session.action_count == {i}\n    action: allow\n"
        ));
    }
    let policy_dir = tempfile::tempdir().unwrap();
    let policy = policy_file(policy_dir.path(), &text);
    let app = spawn_app_with(&policy, json!({})).await;
    for i in 0..3 {
        let d = app
            .enforce(json!({"tool_name": "t", "session_id": "kept"}))
            .await;
        assert_eq!(d["rule_name"], format!("c{i}"));
    }
    let dir = app.stop().await;
    // A new server on the same database goes on counting where the session was,
    // and a session it has never seen starts at zero.
    let app = spawn_in(dir, &policy, json!({})).await;
    let d = app
        .enforce(json!({"tool_name": "t", "session_id": "kept"}))
        .await;
    assert_eq!(d["rule_name"], "c3", "{d}");
    let fresh = app
        .enforce(json!({"tool_name": "t", "session_id": "fresh"}))
        .await;
    assert_eq!(fresh["rule_name"], "c0", "{fresh}");
}
