//! Approvals: a human says yes before a risky call runs, bound to that exact call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

const AGENT: &str = "agent-key-0123456789";
const OTHER_AGENT: &str = "agent-key-other-0123456789";
const APPROVER: &str = "approver-key-0123456789";
const ADMIN: &str = "admin-key-0123456789";

fn keys() -> Value {
    json!({"api_keys": format!("agent:{AGENT},agent:{OTHER_AGENT},approver:{APPROVER},admin:{ADMIN}")})
}

const POLICY: &str = r#"version: "approvals"
default_action: deny
rules:
  - name: mail_needs_a_human
    tools: [send_email]
    action: approve
    reason: "Mail needs a human"
  - name: quick_expiry
    tools: [deploy]
    action: approve
    approval_ttl: 1
  - name: reads
    tools: [read_file]
    action: allow
"#;

async fn app_with(overrides: Value) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), POLICY);
    let mut all = keys();
    if let (Value::Object(a), Value::Object(o)) = (&mut all, overrides) {
        a.extend(o);
    }
    (spawn_app_with(&policy, all).await, dir)
}

async fn call(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut r = app.client.request(method, app.url(path)).bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// `GET path` (an approval, maybe with `?wait=`) as `key`: the answer's JSON.
async fn show(app: &TestApp, key: &str, path: &str) -> Value {
    call(app, key, reqwest::Method::GET, path, None)
        .await
        .json()
        .await
        .unwrap()
}

async fn enforce(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    call(
        app,
        key,
        reqwest::Method::POST,
        "/api/v1/enforce",
        Some(body),
    )
    .await
}

fn mail(to: &str) -> Value {
    json!({"tool_name": "send_email", "tool_args": {"to": to, "subject": "hi"}, "session_id": "s-mail"})
}

/// Ask for an approval as AGENT; returns its id.
async fn ask(app: &TestApp, body: Value) -> String {
    let d: Value = enforce(app, AGENT, body).await.json().await.unwrap();
    assert_eq!(d["decision"], "approve", "{d}");
    d["approval_id"]
        .as_str()
        .expect("an approve decision names its approval")
        .to_string()
}

async fn resolve(
    app: &TestApp,
    key: &str,
    id: &str,
    verb: &str,
    comment: &str,
) -> reqwest::Response {
    call(
        app,
        key,
        reqwest::Method::POST,
        &format!("/api/v1/approvals/{id}/{verb}"),
        Some(json!({"comment": comment})),
    )
    .await
}

#[tokio::test]
async fn an_approve_decision_creates_a_pending_approval_that_only_approvers_list_and_resolve() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    let (status, code, _) =
        error_of(call(&app, AGENT, reqwest::Method::GET, "/api/v1/approvals", None).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    let (status, _, message) = error_of(resolve(&app, AGENT, &id, "approve", "me").await).await;
    assert_eq!(status, 403, "{message}");
    let list: Value = call(
        &app,
        APPROVER,
        reqwest::Method::GET,
        "/api/v1/approvals?status=pending",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let pending = list["approvals"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0]["id"].as_str(),
            pending[0]["tool_name"].as_str(),
            pending[0]["status"].as_str()
        ),
        (Some(id.as_str()), Some("send_email"), Some("pending"))
    );
    assert_eq!(
        pending[0]["tool_args"],
        json!({"to": "a@example.com", "subject": "hi"})
    );
    let done: Value = resolve(&app, APPROVER, &id, "approve", "looks fine")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (done["status"].as_str(), done["comment"].as_str()),
        (Some("approved"), Some("looks fine"))
    );
    assert!(done["resolved_by"].as_str().unwrap().starts_with("env:"));
}

#[tokio::test]
async fn resolving_twice_is_a_conflict() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    assert_eq!(
        resolve(&app, APPROVER, &id, "deny", "no").await.status(),
        200
    );
    let (status, code, message) = error_of(resolve(&app, ADMIN, &id, "approve", "yes").await).await;
    assert_eq!((status, code.as_str()), (409, "conflict"));
    assert_eq!(message, format!("approval \"{id}\" is already denied"));
    let (status, _, _) = error_of(resolve(&app, APPROVER, "no-such-id", "approve", "").await).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_resolution_with_a_body_other_than_a_comment_is_422_and_changes_nothing() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    let path = format!("/api/v1/approvals/{id}/approve");
    for (body, says) in [
        (
            json!([1, 2]),
            "the body must be a JSON object ({\"comment\": \"...\"}) or nothing, not an array",
        ),
        (
            json!("deny this"),
            "the body must be a JSON object ({\"comment\": \"...\"}) or nothing, not a string",
        ),
        (
            json!({"reason": "looks risky, deny"}),
            "unknown field \"reason\": the body is {\"comment\": \"...\"} or nothing",
        ),
        (
            json!({"comment": "ok", "decision": "deny"}),
            "unknown field \"decision\"",
        ),
    ] {
        let r = call(
            &app,
            APPROVER,
            reqwest::Method::POST,
            &path,
            Some(body.clone()),
        )
        .await;
        let (status, code, message) = error_of(r).await;
        assert_eq!((status, code.as_str()), (422, "invalid_request"), "{body}");
        assert!(message.starts_with(says), "{body}: {message}");
    }
    let shown: Value = show(&app, APPROVER, &format!("/api/v1/approvals/{id}")).await;
    assert_eq!(shown["status"], "pending");
    // No body, `{}` and a comment alone are what a resolution takes.
    let r = call(
        &app,
        APPROVER,
        reqwest::Method::POST,
        &path,
        Some(json!({})),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_says_whether_it_can_still_be_used() {
    let (app, _dir) = app_with(json!({})).await;
    let call = json!({"tool_name": "send_email", "tool_args": {"to": "u@example.com"}, "session_id": "s-mail"});
    let id = ask(&app, call.clone()).await;
    let path = format!("/api/v1/approvals/{id}");
    assert_eq!(
        show(&app, APPROVER, &path).await["usable"],
        false,
        "pending"
    );
    resolve(&app, APPROVER, &id, "approve", "ok").await;
    assert_eq!(
        show(&app, APPROVER, &path).await["usable"],
        true,
        "approved"
    );
    let mut used = call.clone();
    used["approval_id"] = json!(id);
    assert_eq!(enforce(&app, AGENT, used).await.status(), 200);
    let shown = show(&app, APPROVER, &path).await;
    assert_eq!(
        (shown["status"].clone(), shown["usable"].clone()),
        (json!("approved"), json!(false))
    );
    let (_, out, _) = cli(&app, &["show", &id]).await;
    assert!(out.contains("approved (used)"), "{out}");

    // Approved in time but not used in time (the rule's approval_ttl is one second).
    let quick = ask(
        &app,
        json!({"tool_name": "deploy", "tool_args": {"v": 3}, "session_id": "s-deploy"}),
    )
    .await;
    resolve(&app, APPROVER, &quick, "approve", "ok").await;
    let path = format!("/api/v1/approvals/{quick}");
    let mut shown = show(&app, APPROVER, &path).await;
    for _ in 0..100 {
        if shown["usable"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        shown = show(&app, APPROVER, &path).await;
    }
    assert_eq!(
        (shown["status"].clone(), shown["usable"].clone()),
        (json!("approved"), json!(false))
    );
    let (_, out, _) = cli(&app, &["show", &quick]).await;
    assert!(out.contains("approved (expired unused)"), "{out}");
}

#[tokio::test]
async fn the_key_that_asked_cannot_resolve_its_own_approval_even_as_admin() {
    let (app, _dir) = app_with(json!({})).await;
    let d: Value = enforce(&app, ADMIN, mail("x@example.com"))
        .await
        .json()
        .await
        .unwrap();
    let id = d["approval_id"].as_str().unwrap();
    let (status, _, message) = error_of(resolve(&app, ADMIN, id, "approve", "self").await).await;
    assert_eq!(
        (status, message.as_str()),
        (
            403,
            "an approval cannot be resolved by the key that asked for it"
        )
    );
}

#[tokio::test]
async fn a_waiter_wakes_within_a_second_of_the_resolution() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    let (client, url) = (
        app.client.clone(),
        app.url(&format!("/api/v1/approvals/{id}?wait=30")),
    );
    let waiter = tokio::spawn(async move {
        client
            .get(url)
            .bearer_auth(AGENT)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "the long poll returned before anyone resolved the approval"
    );
    assert_eq!(
        resolve(&app, APPROVER, &id, "approve", "go").await.status(),
        200
    );
    let woke = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("the waiter was not woken within a second")
        .unwrap();
    assert_eq!(woke["status"], "approved");
}

#[tokio::test]
async fn an_approved_call_runs_once_and_only_with_the_same_tool_arguments_and_session() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    let (status, _, message) = error_of(enforce(&app, AGENT, json!({"tool_name": "send_email", "tool_args": {"to": "a@example.com", "subject": "hi"}, "session_id": "s-mail", "approval_id": id})).await).await;
    assert_eq!(status, 409, "presenting a pending approval: {message}");
    assert!(message.contains("still pending"), "{message}");
    resolve(&app, APPROVER, &id, "approve", "ok").await;

    // Approve one email, send another: refused.
    let mut other = mail("b@example.com");
    other["approval_id"] = json!(id);
    let (status, code, message) = error_of(enforce(&app, AGENT, other).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_request"));
    assert_eq!(
        message,
        format!("approval \"{id}\" was given for other arguments, not for this call")
    );
    let mut elsewhere = mail("a@example.com");
    elsewhere["session_id"] = json!("s-other");
    elsewhere["approval_id"] = json!(id);
    let (status, _, message) = error_of(enforce(&app, AGENT, elsewhere).await).await;
    assert_eq!(status, 422);
    assert!(message.contains("session \"s-mail\""), "{message}");
    let mut not_mine = mail("a@example.com");
    not_mine["approval_id"] = json!(id);
    assert_eq!(
        enforce(&app, OTHER_AGENT, not_mine.clone()).await.status(),
        403
    );

    // The exact call: allowed, once.
    let d: Value = enforce(&app, AGENT, not_mine.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            d["decision"].as_str(),
            d["approval_id"].as_str(),
            d["rule_name"].as_str()
        ),
        (Some("allow"), Some(id.as_str()), Some("mail_needs_a_human"))
    );
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("Approved by env:"),
        "{d}"
    );
    let (status, _, message) = error_of(enforce(&app, AGENT, not_mine).await).await;
    assert_eq!(
        (status, message),
        (
            409,
            format!("approval \"{id}\" has already been used; an approval allows one call")
        )
    );
}

/// `n` concurrent uses of approval `id` for the mail it was given for; their statuses' tasks.
fn use_at_once(app: &TestApp, id: &str, n: usize) -> Vec<tokio::task::JoinHandle<u16>> {
    let mut body = mail("a@example.com");
    body["approval_id"] = json!(id);
    (0..n)
        .map(|_| {
            let (client, url, body) =
                (app.client.clone(), app.url("/api/v1/enforce"), body.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(AGENT)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect()
}

#[tokio::test]
async fn concurrent_uses_of_one_approval_allow_exactly_one_call() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    resolve(&app, APPROVER, &id, "approve", "ok").await;
    let calls = use_at_once(&app, &id, 10);
    let mut statuses = Vec::new();
    for c in calls {
        statuses.push(c.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
}

#[tokio::test]
async fn an_approval_nobody_answers_expires_and_counts_as_denied() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(
        &app,
        json!({"tool_name": "deploy", "tool_args": {"v": 2}, "session_id": "s-deploy"}),
    )
    .await;
    // The waiter is woken by the expiry (the rule's approval_ttl is one second).
    let woke: Value = show(&app, AGENT, &format!("/api/v1/approvals/{id}?wait=20")).await;
    assert_eq!(woke["status"], "expired");
    let (status, _, message) = error_of(enforce(&app, AGENT, json!({"tool_name": "deploy", "tool_args": {"v": 2}, "session_id": "s-deploy", "approval_id": id})).await).await;
    assert_eq!(status, 409);
    assert!(message.contains("was expired"), "{message}");
    let (status, _, message) =
        error_of(resolve(&app, APPROVER, &id, "approve", "late").await).await;
    assert_eq!(
        (status, message),
        (409, format!("approval \"{id}\" is already expired"))
    );
    let story: Value = show(&app, APPROVER, &format!("/api/v1/approvals/{id}")).await;
    let steps: Vec<(&str, &str)> = story["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["kind"].as_str().unwrap(), h["decision"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("decision", "approve"), ("approval", "expired")]);
}

#[tokio::test]
async fn the_audit_log_tells_the_whole_story_and_still_verifies() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    resolve(&app, APPROVER, &id, "approve", "fine by me").await;
    let mut body = mail("a@example.com");
    body["approval_id"] = json!(id);
    let used: Value = enforce(&app, AGENT, body).await.json().await.unwrap();
    let story: Value = show(&app, APPROVER, &format!("/api/v1/approvals/{id}")).await;
    let history = story["history"].as_array().unwrap();
    let steps: Vec<(&str, &str)> = history
        .iter()
        .map(|h| (h["kind"].as_str().unwrap(), h["decision"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("decision", "approve"),
            ("approval", "approved"),
            ("decision", "allow")
        ]
    );
    assert_eq!(history[1]["detail"]["comment"], "fine by me");
    assert!(
        history[1]["principal"]
            .as_str()
            .unwrap()
            .starts_with("env:")
    );
    assert_eq!(history[2]["log_id"], used["log_id"]);
    assert_eq!(story["consumed_log_id"], used["log_id"]);
    let v: Value = call(
        &app,
        ADMIN,
        reqwest::Method::GET,
        "/api/v1/compliance/integrity/verify",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test]
async fn pending_approvals_survive_a_restart_and_their_waiters_can_wait_again() {
    let (app, policy_dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    let (client, url) = (
        app.client.clone(),
        app.url(&format!("/api/v1/approvals/{id}?wait=30")),
    );
    let waiter = tokio::spawn(async move {
        client
            .get(url)
            .bearer_auth(AGENT)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dir = app.stop().await;
    // Stopping answers the waiter with the approval as it is (pending); it may wait again.
    let answered = waiter.await.unwrap();
    assert_eq!(
        answered.ok(),
        Some(200),
        "a long poll is answered (still pending) when the server stops"
    );
    let app = spawn_in(dir, &policy_dir.path().join("policy.yaml"), keys()).await;
    let list: Value = call(
        &app,
        APPROVER,
        reqwest::Method::GET,
        "/api/v1/approvals?status=pending",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["approvals"][0]["id"], id.as_str());
    let (client, url) = (
        app.client.clone(),
        app.url(&format!("/api/v1/approvals/{id}?wait=30")),
    );
    let waiter = tokio::spawn(async move {
        client
            .get(url)
            .bearer_auth(AGENT)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    resolve(&app, APPROVER, &id, "approve", "after the restart").await;
    let woke = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiter after the restart was not woken")
        .unwrap();
    assert_eq!(woke["status"], "approved");
}

/// A local receiver that fails its first delivery with 500 and records what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String, String)>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let got: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let mut seen = seen.lock().unwrap();
                seen.push((header("x-tame-event"), header("x-tame-signature"), body));
                if seen.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

#[tokio::test]
async fn a_webhook_receiver_gets_signed_deliveries_and_a_retry_after_it_first_fails() {
    let (url, got) = receiver().await;
    let secret = "webhook-secret-for-tests";
    let (app, _dir) = app_with(json!({"approvals": {"ttl_secs": 3600, "webhook_url": url, "webhook_secret": secret, "webhook_attempts": 3, "webhook_backoff_ms": 50}})).await;
    let id = ask(&app, mail("a@example.com")).await;
    resolve(&app, APPROVER, &id, "deny", "not today").await;
    let mut deliveries = Vec::new();
    for _ in 0..100 {
        deliveries = app.state.store.deliveries(&id).await.unwrap();
        if deliveries.iter().filter(|d| d.error.is_none()).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The first attempt failed and was retried; each attempt is recorded.
    let attempts: Vec<(String, i64, Option<i64>)> = deliveries
        .iter()
        .map(|d| (d.event.clone(), d.attempt, d.status_code))
        .collect();
    assert!(
        attempts.contains(&("approval.requested".into(), 1, Some(500)))
            || attempts.contains(&("approval.resolved".into(), 1, Some(500))),
        "{attempts:?}"
    );
    assert!(
        attempts
            .iter()
            .any(|(_, attempt, status)| *attempt == 2 && *status == Some(200)),
        "{attempts:?}"
    );
    // The record names the receiver by host and port: a path or query may
    // carry the receiver's token.
    let host = url.trim_end_matches("/hook");
    for d in &deliveries {
        assert_eq!(d.url, format!("{host}/…"));
    }
    let got = got.lock().unwrap().clone();
    assert!(got.len() >= 3, "{got:?}");
    for (event, signature, body) in &got {
        assert_eq!(
            signature,
            &tame::webhook::signature(secret, body),
            "the signature must be the HMAC of the body"
        );
        let b: Value = serde_json::from_str(body).unwrap();
        assert_eq!(&b["event"], event.as_str());
        assert_eq!(b["approval"]["id"], id.as_str());
    }
    let resolved: Vec<&Value> = got
        .iter()
        .map(|(_, _, b)| b)
        .filter(|b| b.contains("approval.resolved"))
        .map(|_| &Value::Null)
        .collect();
    assert!(!resolved.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_a_stop_cut_short_is_sent_again_at_the_next_start() {
    // Nothing listens here, and the retry would come a minute later: the
    // server stops while the notification of a new approval waits for it.
    let dead = json!({"approvals": {"ttl_secs": 3600, "webhook_url": "http://127.0.0.1:9/hook",
        "webhook_secret": "webhook-secret-for-tests", "webhook_attempts": 5, "webhook_backoff_ms": 60000}});
    let (app, policy_dir) = app_with(dead).await;
    let id = ask(&app, mail("a@example.com")).await;
    let resolved = ask(&app, mail("b@example.com")).await;
    resolve(&app, APPROVER, &resolved, "deny", "no").await;
    for _ in 0..100 {
        let tried = app.state.store.deliveries(&id).await.unwrap().len()
            + app.state.store.deliveries(&resolved).await.unwrap().len();
        if tried >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = app.stop().await;
    let (url, got) = receiver().await;
    let mut live = keys();
    live["approvals"] = json!({"ttl_secs": 3600, "webhook_url": url, "webhook_secret": "webhook-secret-for-tests",
        "webhook_attempts": 3, "webhook_backoff_ms": 50});
    let app = spawn_in(dir, &policy_dir.path().join("policy.yaml"), live).await;
    let delivered = |d: &[tame::store::Delivery], event: &str| {
        d.iter().any(|d| d.event == event && d.error.is_none())
    };
    for _ in 0..100 {
        let (a, b) = (
            app.state.store.deliveries(&id).await.unwrap(),
            app.state.store.deliveries(&resolved).await.unwrap(),
        );
        if delivered(&a, "approval.requested") && delivered(&b, "approval.resolved") {
            let got = got.lock().unwrap();
            assert!(
                got.iter()
                    .any(|(e, _, body)| e == "approval.requested" && body.contains(&id))
            );
            assert!(
                got.iter()
                    .any(|(e, _, body)| e == "approval.resolved" && body.contains(&resolved))
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the notifications cut short were not sent after the restart");
}

#[tokio::test]
async fn a_failing_webhook_never_blocks_or_changes_a_decision() {
    // Nothing listens at this address: every delivery fails.
    let (app, _dir) = app_with(json!({"approvals": {"ttl_secs": 3600, "webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": "s3cret-s3cret", "webhook_attempts": 5, "webhook_backoff_ms": 1000}})).await;
    let d: Value = tokio::time::timeout(
        Duration::from_secs(5),
        enforce(&app, AGENT, mail("a@example.com")),
    )
    .await
    .expect("the decision was held up by the webhook")
    .json()
    .await
    .unwrap();
    assert_eq!(d["decision"], "approve");
}

/// `tame approvals …` against the test server: (exit code, stdout, stderr).
async fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tame"));
    cmd.arg("approvals")
        .args(args)
        .env("TAME_API_URL", &app.address)
        .env("TAME_API_KEY", APPROVER);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvers_list_show_and_resolve_from_the_command_line() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("cli@example.com")).await;
    let (code, out, _) = cli(&app, &["list"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("{id}  pending   send_email")),
        "{out}"
    );
    let (code, out, _) = cli(&app, &["show", &id]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("rule mail_needs_a_human: Mail needs a human"),
        "{out}"
    );
    let (code, out, _) = cli(&app, &["approve", &id, "--comment", "from the shell"]).await;
    assert_eq!((code, out), (0, format!("{id} approved\n")));
    let (code, _, err) = cli(&app, &["deny", &id]).await;
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!("tame approvals: 409 Conflict: approval \"{id}\" is already approved\n")
    );
    let (code, out, _) = cli(&app, &["list", "--status", "approved", "--json"]).await;
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["approvals"][0]["comment"], "from the shell");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_on_the_command_line_names_one_approval_and_nothing_else() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("one@example.com")).await;
    // Pasted into the URL as it is, these would name this approval (or
    // another endpoint) by way of `..`, `?` and `#`.
    for given in [
        format!("x/../{id}"),
        format!("{id}?wait=1"),
        format!("{id}#"),
    ] {
        let (code, _, err) = cli(&app, &["approve", &given]).await;
        assert_eq!(code, 1, "{given}");
        assert!(err.contains("404 Not Found: no approval"), "{given}: {err}");
        let (code, _, err) = cli(&app, &["show", &given]).await;
        assert_eq!(code, 1, "{given}");
        assert!(err.contains("404 Not Found"), "{given}: {err}");
    }
    let (code, out, _) = cli(&app, &["list"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("{id}  pending")),
        "still pending: {out}"
    );

    // A list cut short by its limit says so.
    let newer = ask(&app, mail("two@example.com")).await;
    let (code, out, err) = cli(&app, &["list", "--limit", "1"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(&newer), "newest first: {out}");
    assert!(
        err.contains("the newest 1 shown; older ones may be left out"),
        "{err}"
    );
    let (_, out, err) = cli(&app, &["list", "--limit", "2"]).await;
    assert_eq!((out.lines().count(), err.as_str()), (2, ""), "{out}");
    let (_, out, _) = cli(&app, &["list", "--limit", "1", "--json"]).await;
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["approvals"].as_array().unwrap().len(), 1, "{out}");
}

#[tokio::test]
async fn refused_replays_of_a_used_approval_count_for_nothing_in_the_session() {
    let (app, _dir) = app_with(json!({})).await;
    let id = ask(&app, mail("a@example.com")).await;
    resolve(&app, APPROVER, &id, "approve", "ok").await;
    let calls = use_at_once(&app, &id, 16);
    let mut allowed = 0;
    for c in calls {
        if c.await.unwrap() == 200 {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 1);
    // The ask and the one use: the refused replays left no trace in the counts.
    let summary: Value = call(
        &app,
        AGENT,
        reqwest::Method::GET,
        "/api/v1/sessions/s-mail/summary",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (
            summary["total_calls"].as_i64(),
            summary["allowed_calls"].as_i64(),
            summary["approved_calls"].as_i64()
        ),
        (Some(2), Some(1), Some(1)),
        "{summary}"
    );
    let logs: Vec<Value> = call(
        &app,
        AGENT,
        reqwest::Method::GET,
        "/api/v1/sessions/s-mail",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(logs.len(), 2);
}

#[tokio::test]
async fn an_approval_never_overrides_a_deny_that_applies_when_it_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(
        dir.path(),
        "version: \"limit\"\nrules:\n  - name: limit\n    condition: session.action_count >= 3\n    action: deny\n  - name: mail\n    tools: [send_email]\n    action: approve\n  - name: reads\n    tools: [read_file]\n    action: allow\n",
    );
    let app = spawn_app_with(&policy, keys()).await;
    let id = ask(&app, mail("a@example.com")).await;
    resolve(&app, APPROVER, &id, "approve", "ok").await;
    for _ in 0..2 {
        enforce(
            &app,
            AGENT,
            json!({"tool_name": "read_file", "session_id": "s-mail"}),
        )
        .await;
    }
    // Three decisions so far: the session limit now denies, approval or not.
    let mut body = mail("a@example.com");
    body["approval_id"] = json!(id);
    let d: Value = enforce(&app, AGENT, body).await.json().await.unwrap();
    assert_eq!(
        (d["decision"].as_str(), d["rule_name"].as_str()),
        (Some("deny"), Some("limit")),
        "{d}"
    );
    let a: Value = show(&app, APPROVER, &format!("/api/v1/approvals/{id}")).await;
    assert_eq!(
        a["consumed_at"],
        Value::Null,
        "a denied call does not use up the approval"
    );
}
