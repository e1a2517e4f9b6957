//! Rate limits: a token bucket per key (per client address when the server
//! runs open); past it, 429 with `Retry-After`, and the bucket refills.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

const AGENT: &str = "limits-agent-key-0123456789";
const OTHER_AGENT: &str = "limits-agent-key-9876543210";
const ADMIN: &str = "limits-admin-key-0123456789";

/// Keys for two agents and an admin; agents get 3 requests at once, then 1 a second.
fn tiny_agent_bucket() -> Value {
    json!({
        "api_keys": format!("agent:{AGENT},agent:{OTHER_AGENT},admin:{ADMIN}"),
        "limits": {"agent": {"per_second": 1, "burst": 3}},
    })
}

async fn get_as(app: &TestApp, path: &str, key: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("the request is sent")
}

/// Assert a 429 as clients see it and return its Retry-After, in whole seconds.
async fn assert_rate_limited(r: reqwest::Response, what: &str) -> u64 {
    let retry_after = r
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{what}: a 429 carries Retry-After"))
        .to_str()
        .unwrap()
        .to_string();
    // Refused before its body was read, the connection is closed after it:
    // the client is told, rather than finding out on its next request.
    assert_eq!(
        r.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "{what}: a 429 says the connection closes"
    );
    let (status, code, message) = error_of(r).await;
    assert_eq!(status, 429, "{what}: {message}");
    assert_eq!(code, "rate_limited", "{what}: {message}");
    let seconds: u64 = retry_after
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After is whole seconds, not {retry_after:?}"));
    assert!(
        seconds >= 1,
        "{what}: Retry-After is at least 1, not {seconds}"
    );
    assert!(
        message.contains(&format!("retry after {seconds} second")),
        "{what}: the message says when to retry, as the header does: {message}"
    );
    seconds
}

#[tokio::test]
async fn a_key_past_its_burst_gets_429_with_retry_after_and_other_keys_are_not_affected() {
    let app = spawn_app_with(&default_policy(), tiny_agent_bucket()).await;
    for n in 1..=3 {
        let r = get_as(&app, "/api/v1/policy/current", AGENT).await;
        assert_eq!(r.status(), 200, "request {n} of a burst of 3");
    }
    let r = get_as(&app, "/api/v1/policy/current", AGENT).await;
    assert_rate_limited(r, "the 4th quick request").await;

    // The limit is the key's alone.
    for n in 1..=3 {
        let r = get_as(&app, "/api/v1/policy/current", OTHER_AGENT).await;
        assert_eq!(r.status(), 200, "another agent key, request {n}");
    }
    let r = get_as(&app, "/api/v1/policy/current", ADMIN).await;
    assert_eq!(r.status(), 200, "an admin key has its own bucket");
    assert_eq!(
        app.get("/health").await.status(),
        200,
        "health checks are never limited"
    );
    // Unauthenticated requests are refused as such, not as limited.
    let r = get_as(&app, "/api/v1/policy/current", "no-such-key-0123456789").await;
    assert_eq!(r.status(), 401);

    // Decisions are limited like any other request.
    let r = app
        .client
        .post(app.url("/api/v1/enforce"))
        .bearer_auth(AGENT)
        .json(&json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}}))
        .send()
        .await
        .unwrap();
    assert_rate_limited(r, "an enforce past the limit").await;
    app.stop().await;
}

#[tokio::test]
async fn a_limited_key_is_served_again_after_waiting_retry_after() {
    let app = spawn_app_with(&default_policy(), tiny_agent_bucket()).await;
    let mut retry_after = None;
    for _ in 0..4 {
        let r = get_as(&app, "/api/v1/status", AGENT).await;
        if r.status() == 429 {
            retry_after = Some(assert_rate_limited(r, "past the burst").await);
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let seconds = retry_after.expect("the 4th quick request is limited");
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let r = get_as(&app, "/api/v1/status", AGENT).await;
    assert_eq!(
        r.status(),
        200,
        "after waiting Retry-After ({seconds} s) the key is served again"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_open_server_limits_each_client_address_on_its_own() {
    let app = spawn_app_with(
        &default_policy(),
        json!({"limits": {"open": {"per_second": 1, "burst": 2}}}),
    )
    .await;
    for n in 1..=2 {
        assert_eq!(app.get("/api/v1/status").await.status(), 200, "request {n}");
    }
    let r = app.get("/api/v1/status").await;
    assert_rate_limited(r, "the 3rd quick request from 127.0.0.1").await;
    // Credentials do not buy a way round the limit of an open server.
    let r = get_as(&app, "/api/v1/status", "whatever-key-0123456789").await;
    assert_rate_limited(r, "a request from 127.0.0.1 with a key").await;

    // Another client address (any 127.x.y.z reaches a loopback listener) has its own bucket.
    tame::tls::install_provider();
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    match other.get(app.url("/api/v1/status")).send().await {
        Ok(r) => assert_eq!(r.status(), 200, "a request from 127.0.0.2"),
        Err(e) => eprintln!("skipped the second address: cannot send from 127.0.0.2: {e}"),
    }
    app.stop().await;
}
