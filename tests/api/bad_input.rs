//! Bad input to `/enforce` (malformed JSON, wrong types, a missing
//! `tool_name`, a body over the limit, deep nesting, bytes that are not
//! UTF-8) and reads of unknown session and log ids: each gets its documented
//! 4xx with a message that says what to fix, and changes nothing. Hostile but
//! valid input gets a decision.

use serde_json::{Value, json};

use crate::helpers::*;

/// Both paths an agent may post decisions to.
const ENFORCE: [&str; 2] = ["/api/v1/enforce", "/enforce"];

async fn post_bytes(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the request is sent")
}

async fn json_of(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.expect("a body");
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).expect("JSON")
}

/// No decision, no session and no audit row exists.
async fn assert_nothing_recorded(app: &TestApp) {
    let status = json_of(app.get("/api/v1/status").await).await;
    assert_eq!(status["counts"]["decisions"], 0, "{status}");
    let sessions = json_of(app.get("/api/v1/sessions").await).await;
    assert_eq!(
        (
            sessions["total_count"].clone(),
            sessions["sessions"].clone()
        ),
        (json!(0), json!([]))
    );
    let logs = json_of(app.get("/api/v1/logs").await).await;
    assert_eq!(logs["logs"], json!([]));
    let verified = json_of(app.get("/api/v1/compliance/integrity/verify").await).await;
    assert_eq!(
        (verified["valid"].clone(), verified["checked"].clone()),
        (json!(true), json!(0)),
        "{verified}"
    );
}

/// `{"tool_name": "read_file", "tool_args": {"a": {"a": … 1 …}}}`, `depth` objects deep.
fn nested(depth: usize) -> Vec<u8> {
    format!(
        "{{\"tool_name\": \"read_file\", \"tool_args\": {}1{}}}",
        "{\"a\": ".repeat(depth),
        "}".repeat(depth)
    )
    .into_bytes()
}

#[tokio::test]
async fn unreadable_bodies_are_400_with_a_message_that_says_what_is_wrong_and_change_nothing() {
    let app = spawn_app().await;
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "malformed JSON",
            br#"{"tool_name": "read_file","#.to_vec(),
            "malformed JSON: EOF while parsing a value at line 1 column 26",
        ),
        (
            "bytes that are not UTF-8",
            b"{\"tool_name\": \"\xff\xfe\"}".to_vec(),
            "the request body is not UTF-8 (invalid byte at offset 15)",
        ),
        (
            "an empty body",
            Vec::new(),
            "the request body is empty; send a JSON object",
        ),
        (
            "a body of whitespace",
            b" \n\t ".to_vec(),
            "the request body is empty; send a JSON object",
        ),
        (
            "nesting deeper than the JSON parser recurses",
            nested(200),
            "malformed JSON: recursion limit exceeded",
        ),
    ];
    for path in ENFORCE {
        for (what, body, message) in &cases {
            let (status, code, said) = error_of(post_bytes(&app, path, body.clone()).await).await;
            assert_eq!(
                (status, code.as_str()),
                (400, "bad_request"),
                "{what} to {path}: {said}"
            );
            assert!(
                said.starts_with(message),
                "{what} to {path}: {said:?} should start with {message:?}"
            );
        }
    }
    assert_nothing_recorded(&app).await;
}

#[tokio::test]
async fn nesting_within_the_parsers_limit_is_read_and_decided() {
    let app = spawn_app().await;
    let r = post_bytes(&app, "/api/v1/enforce", nested(100)).await;
    assert_eq!(json_of(r).await["decision"], "allow");
}

#[tokio::test]
async fn a_two_mebibyte_body_is_413_and_changes_nothing() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(&json!({
        "tool_name": "read_file",
        "tool_args": {"path": "/tmp/big", "blob": "x".repeat(2 * 1024 * 1024)},
    }))
    .unwrap();
    for path in ENFORCE {
        let (status, code, message) = error_of(post_bytes(&app, path, body.clone()).await).await;
        assert_eq!(
            (status, code.as_str()),
            (413, "payload_too_large"),
            "{path}"
        );
        assert_eq!(
            message,
            "the request body is larger than the server accepts (TAME_LIMITS__BODY_BYTES)"
        );
    }
    assert_nothing_recorded(&app).await;
}

#[tokio::test]
async fn mistyped_or_missing_fields_are_422_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"tool_name": 5}),
            "tool_name must be a string, not a number",
        ),
        (
            json!({"tool_name": "read_file", "tool_args": "x"}),
            "tool_args must be a JSON object, not a string",
        ),
        (
            json!({"tool_name": "read_file", "metadata": [1]}),
            "metadata must be a JSON object, not an array",
        ),
        (
            json!({"tool_name": "read_file", "session_id": ""}),
            "session_id must not be empty (leave it out to get a new session)",
        ),
        (
            json!({"tool_name": "read_file", "session_id": ".."}),
            "session_id must not be \"..\": it could not be named in a URL path",
        ),
        (
            json!({"tool_name": "read_file", "session_id": "."}),
            "session_id must not be \".\": it could not be named in a URL path",
        ),
        (
            json!({"tool_name": "read_file", "agent_id": {}}),
            "agent_id must be a string, not an object",
        ),
        (
            json!({"tool_name": "read_file", "user_id": 7}),
            "user_id must be a string, not a number",
        ),
        (
            json!({"tool_args": {"path": "/tmp/a"}}),
            "tool_name is required: the name of the tool the agent wants to run",
        ),
        (
            json!({"tool_name": null}),
            "tool_name is required: the name of the tool the agent wants to run",
        ),
        (json!({"tool_name": ""}), "tool_name must not be empty"),
        (
            json!({"tool_name": "read\nfile"}),
            "tool_name must not contain control characters",
        ),
        (
            json!({"tool_name": "t".repeat(257)}),
            "tool_name is longer than 256 characters",
        ),
        (
            json!([{"tool_name": "read_file"}]),
            "the body must be a JSON object, not an array",
        ),
        (
            json!("read_file"),
            "the body must be a JSON object, not a string",
        ),
    ];
    for path in ENFORCE {
        for (body, message) in &cases {
            assert_eq!(
                error_of(app.post(path, body).await).await,
                (422, "invalid_request".to_string(), message.to_string()),
                "{body} to {path}"
            );
        }
    }
    assert_nothing_recorded(&app).await;
}

#[tokio::test]
async fn unknown_session_and_log_ids_are_404_and_create_nothing() {
    let app = spawn_app().await;
    for path in ["/api/v1/sessions/ghost", "/api/v1/sessions/ghost/summary"] {
        assert_eq!(
            error_of(app.get(path).await).await,
            (404, "not_found".into(), "no session \"ghost\"".into()),
            "{path}"
        );
    }
    let r = app
        .post(
            "/api/v1/enforce/ghost/result?log_id=no-such-log",
            &json!({"status": "success", "cost": 5}),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (
            404,
            "not_found".into(),
            "no log \"no-such-log\" in session \"ghost\"".into()
        )
    );
    assert_nothing_recorded(&app).await;
}

#[tokio::test]
async fn hostile_but_valid_input_gets_a_decision_and_the_server_keeps_answering() {
    let app = spawn_app().await;
    let blob = "x".repeat(900 * 1024);
    let big = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/big", "blob": blob}, "session_id": "hostile"}))
        .await;
    assert_eq!(big["decision"], "allow");
    let items: Vec<u32> = (0..10_000).collect();
    let many = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/many", "items": items}, "session_id": "hostile"}))
        .await;
    assert_eq!(many["decision"], "allow");

    // Recorded whole.
    let entries = json_of(app.get("/api/v1/sessions/hostile").await).await;
    assert_eq!(
        entries[0]["tool_args"]["blob"].as_str().map(str::len),
        Some(900 * 1024)
    );
    assert_eq!(entries[1]["tool_args"]["items"], json!(items));

    // And the server still answers everything else.
    let after = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/etc/passwd"}, "session_id": "hostile"}))
        .await;
    assert_eq!(after["decision"], "deny");
    assert_eq!(json_of(app.get("/health").await).await["status"], "ok");
    let status = json_of(app.get("/api/v1/status").await).await;
    assert_eq!(status["counts"]["decisions"], 3);
    let verified = json_of(app.get("/api/v1/compliance/integrity/verify").await).await;
    assert_eq!(
        (verified["valid"].clone(), verified["checked"].clone()),
        (json!(true), json!(3))
    );
}
