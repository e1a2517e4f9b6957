//! Who may ask what: API keys (from the settings and from `tame keys`), JWTs,
//! roles, session ownership, and the refusal to serve open off loopback.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tame::app::Application;
use tame::config::Settings;

use crate::helpers::*;

const AGENT: &str = "agent-key-0123456789abcdef";
const OTHER_AGENT: &str = "agent-key-fedcba9876543210";
const APPROVER: &str = "approver-key-0123456789ab";
const ADMIN: &str = "admin-key-0123456789abcdef";

/// Settings overrides giving one key per role, and a second agent key.
fn keyed() -> Value {
    json!({"api_keys": format!(
        "agent:{AGENT},agent:{OTHER_AGENT},approver:{APPROVER},admin:{ADMIN}"
    )})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Agent,
    Approver,
    Admin,
}

const ROLES: [Role; 3] = [Role::Agent, Role::Approver, Role::Admin];

impl Role {
    fn key(self) -> &'static str {
        match self {
            Role::Agent => AGENT,
            Role::Approver => APPROVER,
            Role::Admin => ADMIN,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

/// How a request presents itself.
#[derive(Debug, Clone, Copy)]
enum Cred<'a> {
    Nothing,
    Bearer(&'a str),
    ApiKey(&'a str),
    /// A raw `Authorization` header value.
    Authorization(&'a str),
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&Value>,
    cred: Cred<'_>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
    let mut request = app.client.request(method, app.url(path));
    request = match cred {
        Cred::Nothing => request,
        Cred::Bearer(key) => request.bearer_auth(key),
        Cred::ApiKey(key) => request.header("X-API-Key", key),
        Cred::Authorization(value) => request.header("Authorization", value),
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("the request is sent")
}

async fn get_as(app: &TestApp, path: &str, key: &str) -> reqwest::Response {
    send(app, "GET", path, None, Cred::Bearer(key)).await
}

async fn post_as(app: &TestApp, path: &str, body: &Value, key: &str) -> reqwest::Response {
    send(app, "POST", path, Some(body), Cred::Bearer(key)).await
}

/// Ask as the agent for a call the default policy sends to a human; return the approval's id.
async fn pending_approval(app: &TestApp) -> String {
    let r = post_as(
        app,
        "/api/v1/enforce",
        &json!({"tool_name": "write_file", "tool_args": {"path": "/srv/a.txt"}, "metadata": {"sensitive": true}, "session_id": "matrix-agent"}),
        AGENT,
    )
    .await;
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["decision"], "approve", "{body}");
    body["approval_id"]
        .as_str()
        .unwrap_or_else(|| panic!("an approval id: {body}"))
        .to_string()
}

/// Enforce as `key` and return the JSON, asserting 200.
async fn enforce_as(app: &TestApp, key: &str, session: &str) -> Value {
    let r = post_as(
        app,
        "/api/v1/enforce",
        &json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a.txt"}, "session_id": session}),
        key,
    )
    .await;
    let status = r.status();
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(status, 200, "enforce in {session}: {body}");
    body
}

/// Assert a 401 as clients see it and return its message.
async fn assert_unauthorized(r: reqwest::Response, what: &str) -> String {
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let (status, code, message) = error_of(r).await;
    assert_eq!(status, 401, "{what}: {message}");
    assert_eq!(code, "unauthorized", "{what}: {message}");
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer"),
        "{what}: a 401 carries WWW-Authenticate: Bearer"
    );
    assert!(!message.is_empty(), "{what}: a 401 says why");
    message
}

/// One endpoint of the router: the route as the router (and /openapi.json)
/// spells it, a query, a body (`{session}` is filled in), and the roles that
/// may use it. `roles: None` means no credentials are needed. An endpoint
/// that `resolves` an approval gets a fresh pending one for each request.
struct Endpoint {
    method: &'static str,
    route: &'static str,
    query: &'static str,
    body: Option<&'static str>,
    roles: Option<&'static [Role]>,
    resolves: bool,
}

const ALL: &[Role] = &[Role::Agent, Role::Approver, Role::Admin];
const DECIDERS: &[Role] = &[Role::Agent, Role::Admin];
const READERS: &[Role] = &[Role::Approver, Role::Admin];
const ADMINS: &[Role] = &[Role::Admin];

const ENFORCE_BODY: &str =
    r#"{"tool_name": "read_file", "tool_args": {"path": "/tmp/a.txt"}, "session_id": "{session}"}"#;

#[rustfmt::skip]
const ENDPOINTS: &[Endpoint] = &[
    Endpoint { method: "POST", route: "/api/v1/enforce", query: "", body: Some(ENFORCE_BODY), roles: Some(DECIDERS), resolves: false },
    Endpoint { method: "POST", route: "/enforce", query: "", body: Some(ENFORCE_BODY), roles: Some(DECIDERS), resolves: false },
    Endpoint { method: "POST", route: "/api/v1/enforce/{session_id}/result", query: "?log_id={log}", body: Some(r#"{"status": "success", "execution_time_ms": 3}"#), roles: Some(DECIDERS), resolves: false },
    Endpoint { method: "POST", route: "/api/v1/policy/test", query: "", body: Some(ENFORCE_BODY), roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/policy/test", query: "?tool_name=read_file&tool_args=%7B%7D", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/policy/current", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "POST", route: "/api/v1/policy/validate", query: "", body: Some(r#"{"content": "version: \"1\"\ndefault_action: deny\nrules: []\n"}"#), roles: Some(ALL), resolves: false },
    Endpoint { method: "POST", route: "/api/v1/policy/reload", query: "", body: None, roles: Some(ADMINS), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/policy/versions", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/policy/versions/{hash}", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/sessions", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/sessions/{id}", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/sessions/{id}/summary", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/logs", query: "", body: None, roles: Some(READERS), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/logs/export", query: "", body: None, roles: Some(READERS), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/approvals", query: "?status=pending", body: None, roles: Some(READERS), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/approvals/{id}", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "POST", route: "/api/v1/approvals/{id}/approve", query: "", body: Some(r#"{"comment": "fine"}"#), roles: Some(READERS), resolves: true },
    Endpoint { method: "POST", route: "/api/v1/approvals/{id}/deny", query: "", body: Some(r#"{"comment": "no"}"#), roles: Some(READERS), resolves: true },
    Endpoint { method: "GET", route: "/api/v1/events", query: "", body: None, roles: Some(READERS), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/compliance/integrity/verify", query: "", body: None, roles: Some(READERS), resolves: false },
    Endpoint { method: "GET", route: "/api/v1/status", query: "", body: None, roles: Some(ALL), resolves: false },
    Endpoint { method: "GET", route: "/metrics", query: "", body: None, roles: Some(ADMINS), resolves: false },
    Endpoint { method: "GET", route: "/health", query: "", body: None, roles: None, resolves: false },
    Endpoint { method: "GET", route: "/ready", query: "", body: None, roles: None, resolves: false },
    Endpoint { method: "GET", route: "/openapi.json", query: "", body: None, roles: None, resolves: false },
];

/// What a role's requests refer to: a session and log it may use, the
/// policy's hash, and an approval the agent asked for.
#[derive(Clone)]
struct Fixture {
    session: String,
    log: String,
    hash: String,
    approval: String,
}

impl Endpoint {
    fn path(&self, f: &Fixture) -> String {
        let id = if self.route.starts_with("/api/v1/approvals/") {
            &f.approval
        } else {
            &f.session
        };
        format!("{}{}", self.route, self.query)
            .replace("{session_id}", &f.session)
            .replace("{id}", id)
            .replace("{hash}", &f.hash)
            .replace("{log}", &f.log)
    }
    fn body(&self, f: &Fixture) -> Option<Value> {
        self.body.map(|text| {
            serde_json::from_str(&text.replace("{session}", &f.session)).expect("a JSON body")
        })
    }
    fn what(&self) -> String {
        format!("{} {}", self.method, self.route)
    }
}

#[tokio::test]
async fn every_endpoint_admits_exactly_the_roles_it_names_and_refuses_everyone_else() {
    let app = spawn_app_with(&default_policy(), keyed()).await;

    // Each role acts in a session of its own; approvers cannot open sessions, so they read the admin's.
    let hash = get_as(&app, "/api/v1/policy/current", ADMIN)
        .await
        .json::<Value>()
        .await
        .unwrap()["hash"]
        .as_str()
        .expect("the policy's hash")
        .to_string();
    let agent_log = enforce_as(&app, AGENT, "matrix-agent").await["log_id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_log = enforce_as(&app, ADMIN, "matrix-admin").await["log_id"]
        .as_str()
        .unwrap()
        .to_string();
    let approval = pending_approval(&app).await;
    let fixture = |role: Role| match role {
        Role::Agent => Fixture {
            session: "matrix-agent".into(),
            log: agent_log.clone(),
            hash: hash.clone(),
            approval: approval.clone(),
        },
        Role::Approver | Role::Admin => Fixture {
            session: "matrix-admin".into(),
            log: admin_log.clone(),
            hash: hash.clone(),
            approval: approval.clone(),
        },
    };

    // Each status seen below must be one /openapi.json lists for its endpoint.
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let listed = |endpoint: &Endpoint, status: u16| {
        if endpoint.route != "/openapi.json" {
            assert!(
                documented_statuses(&doc, endpoint.method, endpoint.route).contains(&status),
                "{}: {status} is not in /openapi.json",
                endpoint.what()
            );
        }
    };
    for endpoint in ENDPOINTS {
        let what = endpoint.what();
        let f = fixture(Role::Admin);
        let (path, body) = (endpoint.path(&f), endpoint.body(&f));
        listed(endpoint, 200);
        if endpoint.roles.is_some() {
            listed(endpoint, 401);
            listed(endpoint, 403);
        }

        let Some(roles) = endpoint.roles else {
            let r = send(&app, endpoint.method, &path, body.as_ref(), Cred::Nothing).await;
            assert_eq!(r.status(), 200, "{what} needs no credentials");
            continue;
        };

        let r = send(&app, endpoint.method, &path, body.as_ref(), Cred::Nothing).await;
        let message = assert_unauthorized(r, &format!("{what} without credentials")).await;
        assert!(
            message.contains("Authorization: Bearer") && message.contains("X-API-Key"),
            "{what}: the 401 says how to send a key: {message}"
        );
        for bad in [
            Cred::Bearer("not-a-key-anyone-was-given"),
            Cred::ApiKey("not-a-key-anyone-was-given"),
        ] {
            let r = send(&app, endpoint.method, &path, body.as_ref(), bad).await;
            let message = assert_unauthorized(r, &format!("{what} with {bad:?}")).await;
            assert!(
                message.contains("invalid API key"),
                "{what} with {bad:?}: {message}"
            );
        }

        for role in ROLES {
            for cred in [Cred::Bearer(role.key()), Cred::ApiKey(role.key())] {
                let mut f = fixture(role);
                if endpoint.resolves {
                    f.approval = pending_approval(&app).await;
                }
                let (path, body) = (endpoint.path(&f), endpoint.body(&f));
                let r = send(&app, endpoint.method, &path, body.as_ref(), cred).await;
                let status = r.status();
                if roles.contains(&role) {
                    // Success bodies are not read: /events streams for ever.
                    let text = if status.is_success() {
                        String::new()
                    } else {
                        r.text().await.unwrap_or_default()
                    };
                    assert!(
                        status.is_success(),
                        "{what} as {} ({cred:?}) is allowed, got {status}: {text}",
                        role.name()
                    );
                } else {
                    let (status, code, message) = error_of(r).await;
                    assert_eq!(status, 403, "{what} as {}: {message}", role.name());
                    assert_eq!(code, "forbidden", "{what} as {}", role.name());
                    for needed in roles {
                        assert!(
                            message.contains(needed.name()),
                            "{what} as {}: the 403 names the role needed ({}): {message}",
                            role.name(),
                            needed.name()
                        );
                    }
                    assert!(
                        message.contains(&format!("has the {} role", role.name())),
                        "{what} as {}: the 403 names the caller's role: {message}",
                        role.name()
                    );
                }
            }
        }
    }

    // The table covers every documented endpoint, so a new one cannot skip this test.
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths in /openapi.json")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let tabled: BTreeSet<(String, String)> = ENDPOINTS
        .iter()
        .map(|e| (e.method.to_string(), e.route.to_string()))
        .collect();
    let missing: Vec<_> = documented.difference(&tabled).collect();
    assert!(
        missing.is_empty(),
        "endpoints in /openapi.json that the auth matrix does not test: {missing:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_authorization_header_that_is_not_bearer_is_refused_with_how_to_send_a_key() {
    let app = spawn_app_with(&default_policy(), keyed()).await;
    let r = send(
        &app,
        "GET",
        "/api/v1/status",
        None,
        Cred::Authorization(&format!("Basic {ADMIN}")),
    )
    .await;
    let message = assert_unauthorized(r, "Basic auth").await;
    assert!(message.contains("Bearer <key>"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn an_agent_sees_and_acts_only_in_the_sessions_its_key_opened() {
    let app = spawn_app_with(&default_policy(), keyed()).await;
    enforce_as(&app, AGENT, "mine").await;
    let theirs = enforce_as(&app, OTHER_AGENT, "theirs").await;

    let ids = |v: &Value| -> BTreeSet<String> {
        v["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["session_id"].as_str().unwrap().to_string())
            .collect()
    };
    let listed: Value = get_as(&app, "/api/v1/sessions", AGENT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&listed), BTreeSet::from(["mine".to_string()]));
    assert_eq!(listed["total_count"], 1, "{listed}");
    let listed: Value = get_as(&app, "/api/v1/sessions", OTHER_AGENT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&listed), BTreeSet::from(["theirs".to_string()]));
    for key in [ADMIN, APPROVER] {
        let listed: Value = get_as(&app, "/api/v1/sessions", key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            ids(&listed),
            BTreeSet::from(["mine".to_string(), "theirs".to_string()]),
            "admins and approvers see every session"
        );
    }

    // Another key's session does not exist, as far as an agent can tell.
    for path in ["/api/v1/sessions/theirs", "/api/v1/sessions/theirs/summary"] {
        let (status, code, message) = error_of(get_as(&app, path, AGENT).await).await;
        assert_eq!(
            (status, code.as_str()),
            (404, "not_found"),
            "{path}: {message}"
        );
        assert!(message.contains("theirs"), "{message}");
        let r = get_as(&app, path, ADMIN).await;
        assert_eq!(r.status(), 200, "an admin reads {path}");
    }
    assert_eq!(
        get_as(&app, "/api/v1/sessions/mine", AGENT).await.status(),
        200
    );

    // Nor can it decide or report in one.
    let r = post_as(
        &app,
        "/api/v1/enforce",
        &json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a.txt"}, "session_id": "theirs"}),
        AGENT,
    )
    .await;
    let (status, code, message) = error_of(r).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{message}");
    assert!(message.contains("another key"), "{message}");
    let r = post_as(
        &app,
        &format!(
            "/api/v1/enforce/theirs/result?log_id={}",
            theirs["log_id"].as_str().unwrap()
        ),
        &json!({"status": "success"}),
        AGENT,
    )
    .await;
    let (status, code, message) = error_of(r).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{message}");

    // Nor read the approvals another key asked for.
    let r = post_as(
        &app,
        "/api/v1/enforce",
        &json!({"tool_name": "write_file", "tool_args": {"path": "/srv/a"}, "metadata": {"sensitive": true}, "session_id": "theirs"}),
        OTHER_AGENT,
    )
    .await;
    let asked: Value = r.json().await.unwrap();
    let approval = asked["approval_id"]
        .as_str()
        .unwrap_or_else(|| panic!("an approval: {asked}"));
    let path = format!("/api/v1/approvals/{approval}");
    let (status, code, message) = error_of(get_as(&app, &path, AGENT).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"), "{message}");
    assert_eq!(get_as(&app, &path, OTHER_AGENT).await.status(), 200);

    // An admin can, and the session still belongs to the key that opened it.
    let d = enforce_as(&app, ADMIN, "theirs").await;
    assert_eq!(d["session_id"], "theirs");
    enforce_as(&app, OTHER_AGENT, "theirs").await;
    let summary: Value = get_as(&app, "/api/v1/sessions/theirs/summary", OTHER_AGENT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["total_calls"], 4, "{summary}");
    app.stop().await;
}

/// Run `tame keys ARGS` against the database in `dir`; return stdout and stderr, asserting success.
fn keys_cli(dir: &Path, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tame"))
        .arg("keys")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TAME_DATABASE_URL", database_url(dir))
        .output()
        .expect("run tame keys");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "tame keys {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn a_key_label_with_control_characters_is_refused_and_no_key_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tame"))
        .args([
            "keys",
            "create",
            "--role",
            "admin",
            "--label",
            "bot\u{1b}[2J",
        ])
        .current_dir(dir.path())
        .env_clear()
        .env("TAME_DATABASE_URL", database_url(dir.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no key printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a label must not contain control characters"),
        "{stderr}"
    );
    let (made, _) = keys_cli(dir.path(), &["create", "--role", "agent", "--label", "ok"]);
    assert_eq!(made.lines().count(), 1);
    let (list, _) = keys_cli(dir.path(), &["list"]);
    assert_eq!(
        list.lines().count(),
        2,
        "a header and the one key made: {list}"
    );
}

/// Poll `/api/v1/status` with `key` until it answers `want`, for at most ten seconds.
async fn wait_for_status(app: &TestApp, key: &str, want: u16, why: &str) {
    let mut last = 0;
    for _ in 0..100 {
        last = get_as(app, "/api/v1/status", key).await.status().as_u16();
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{why}: the server still answers {last}, not {want}, after 10 s");
}

#[tokio::test]
async fn keys_made_by_the_cli_work_on_a_running_server_until_revoked_and_are_stored_hashed() {
    let app = spawn_app_with(
        &default_policy(),
        json!({"api_keys": format!("admin:{ADMIN}")}),
    )
    .await;
    let dir = app.dir.path().to_path_buf();

    let (stdout, stderr) = keys_cli(&dir, &["create", "--role", "agent", "--label", "ci-bot"]);
    let key = stdout.trim().to_string();
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout is the key alone, for scripts: {stdout:?}"
    );
    assert!(key.len() >= 32, "a long random key: {key:?}");
    assert!(
        !stderr.contains(&key),
        "the key is printed once, on stdout: {stderr}"
    );

    wait_for_status(&app, &key, 200, "a new key is accepted within seconds").await;
    // It has the role it was made with.
    let r = post_as(
        &app,
        "/api/v1/enforce",
        &json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/x"}}),
        &key,
    )
    .await;
    assert_eq!(r.status(), 200);
    let (status, code, _) = error_of(get_as(&app, "/api/v1/logs", &key).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));

    let (list, _) = keys_cli(&dir, &["list"]);
    assert!(
        !list.contains(&key),
        "tame keys list never shows a key: {list}"
    );
    let row = list
        .lines()
        .find(|l| l.contains("ci-bot"))
        .unwrap_or_else(|| panic!("the key is listed with its label: {list}"));
    let id = row.split_whitespace().next().unwrap().to_string();
    assert!(row.contains("agent"), "{row}");
    assert!(stderr.contains(&id), "create said the key's id: {stderr}");
    assert!(row.trim_end().ends_with('-'), "not revoked yet: {row}");

    // Only the hash is stored: no column of any key holds the key itself.
    let hash = tame::http::auth::hash_key(&key);
    let touch = |cond: String| format!("UPDATE api_keys SET label = label WHERE {cond}");
    assert_eq!(execute(&dir, &touch(format!("hash = '{hash}'"))).await, 1);
    let anywhere = format!("id || hash || role || COALESCE(label, '') LIKE '%{key}%'");
    assert_eq!(
        execute(&dir, &touch(anywhere)).await,
        0,
        "the key itself is stored"
    );
    // On SQLite, neither the database file nor its write-ahead log holds it either.
    let mut disk = Vec::new();
    for name in ["tame.db", "tame.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            disk.extend(bytes);
        }
    }
    let contains = |needle: &[u8]| disk.windows(needle.len()).any(|w| w == needle);
    assert!(
        backend() != "sqlite" || contains(hash.as_bytes()),
        "the key's hash is in the database files (so this check looks in the right place)"
    );
    assert!(
        !contains(key.as_bytes()),
        "the key itself is in the database files"
    );

    let (out, _) = keys_cli(&dir, &["revoke", &id]);
    assert!(out.contains(&id), "{out}");
    wait_for_status(&app, &key, 401, "a revoked key is refused within seconds").await;
    let message = assert_unauthorized(get_as(&app, "/api/v1/status", &key).await, "revoked").await;
    assert!(message.contains("invalid API key"), "{message}");
    let (list, _) = keys_cli(&dir, &["list"]);
    let row = list.lines().find(|l| l.contains(&id)).unwrap();
    assert!(!row.trim_end().ends_with('-'), "revoked: {row}");
    // The configured admin key is untouched by the refresh.
    assert_eq!(get_as(&app, "/api/v1/status", ADMIN).await.status(), 200);
    app.stop().await;
}

const JWT_SECRET: &str = "a-jwt-secret-of-some-length-0123456789";
const ISSUER: &str = "https://sso.example.com";
const AUDIENCE: &str = "tame";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(role: &str) -> Value {
    json!({"sub": "dana@example.com", "role": role, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600})
}

fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a token")
}

#[tokio::test]
async fn a_jwt_with_the_configured_issuer_and_audience_carries_its_role() {
    let app = spawn_app_with(
        &default_policy(),
        json!({"jwt": {"hs256_secret": JWT_SECRET, "issuer": ISSUER, "audience": AUDIENCE}}),
    )
    .await;
    let admin = hs256(&claims("admin"), JWT_SECRET);
    let r = send(
        &app,
        "POST",
        "/api/v1/policy/reload",
        None,
        Cred::Bearer(&admin),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(get_as(&app, "/metrics", &admin).await.status(), 200);
    let r = send(&app, "GET", "/api/v1/status", None, Cred::ApiKey(&admin)).await;
    assert_eq!(r.status(), 200, "a JWT also works as X-API-Key");

    let agent = hs256(&claims("agent"), JWT_SECRET);
    let (status, code, message) = error_of(get_as(&app, "/metrics", &agent).await).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"), "{message}");
    assert!(message.contains("has the agent role"), "{message}");

    // Without credentials, a JWT-only server is closed.
    assert_unauthorized(app.get("/api/v1/status").await, "no token").await;
    app.stop().await;
}

#[tokio::test]
async fn a_jwt_that_is_wrong_in_any_way_is_refused_with_a_reason() {
    let app = spawn_app_with(
        &default_policy(),
        json!({"jwt": {"hs256_secret": JWT_SECRET, "issuer": ISSUER, "audience": AUDIENCE}}),
    )
    .await;
    let with = |key: &str, value: Value| {
        let mut c = claims("admin");
        c[key] = value;
        c
    };
    let mut no_exp = claims("admin");
    no_exp.as_object_mut().unwrap().remove("exp");
    let cases = [
        (
            "wrong issuer",
            hs256(&with("iss", json!("https://evil.example.com")), JWT_SECRET),
            "issuer",
        ),
        (
            "wrong audience",
            hs256(&with("aud", json!("someone-else")), JWT_SECRET),
            "audience",
        ),
        (
            "expired an hour ago",
            hs256(&with("exp", json!(now() - 3600)), JWT_SECRET),
            "expired",
        ),
        (
            "signed with another secret",
            hs256(&claims("admin"), "another-secret-entirely-0123456789"),
            "signature",
        ),
        ("without exp", hs256(&no_exp, JWT_SECRET), "exp"),
        (
            "not valid until tomorrow",
            hs256(&with("nbf", json!(now() + 86_400)), JWT_SECRET),
            "not valid yet (nbf)",
        ),
        (
            "with an unknown role",
            hs256(&claims("superuser"), JWT_SECRET),
            "superuser",
        ),
        ("that is not a JWT", "a.b.c".to_string(), "invalid token"),
        // Every such token would share one principal (and its sessions).
        (
            "with an empty subject",
            hs256(&with("sub", json!(" ")), JWT_SECRET),
            "sub (subject) is empty",
        ),
        (
            "expired longer ago than the minute allowed for clocks",
            hs256(&with("exp", json!(now() - 90)), JWT_SECRET),
            "expired",
        ),
    ];
    for (what, token, says) in cases {
        let message = assert_unauthorized(
            get_as(&app, "/api/v1/status", &token).await,
            &format!("a token {what}"),
        )
        .await;
        assert!(
            message.to_lowercase().contains(says),
            "a token {what}: the message says {says:?}: {message}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn rs256_tokens_are_checked_against_the_configured_public_key() {
    let keys = tempfile::tempdir().unwrap();
    let private = keys.path().join("private.pem");
    let public = keys.path().join("public.pem");
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private.to_str().unwrap(),
    ]) || !openssl(&[
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]) {
        eprintln!(
            "skipped: the openssl CLI is missing or failed, so no RSA key pair to test RS256 with"
        );
        return;
    }
    let private_pem = std::fs::read(&private).unwrap();
    // The setting takes the PEM text or a path to it; the path is given here.
    let app = spawn_app_with(
        &default_policy(),
        json!({"jwt": {"rs256_public_key": public.to_str().unwrap(), "issuer": ISSUER, "audience": AUDIENCE}}),
    )
    .await;
    let rs256 = |claims: &Value, pem: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(pem).expect("an RSA private key"),
        )
        .expect("a token")
    };
    let good = rs256(&claims("approver"), &private_pem);
    assert_eq!(get_as(&app, "/api/v1/logs", &good).await.status(), 200);

    // An HS256 token, even one signed with the public key's bytes, is refused.
    let public_pem = std::fs::read_to_string(&public).unwrap();
    for (what, token) in [
        ("HS256 with a secret", hs256(&claims("admin"), JWT_SECRET)),
        (
            "HS256 keyed with the public key",
            hs256(&claims("admin"), &public_pem),
        ),
    ] {
        assert_unauthorized(get_as(&app, "/api/v1/status", &token).await, what).await;
    }
    let mut expired = claims("admin");
    expired["exp"] = json!(now() - 3600);
    let message = assert_unauthorized(
        get_as(&app, "/api/v1/status", &rs256(&expired, &private_pem)).await,
        "expired RS256",
    )
    .await;
    assert!(message.to_lowercase().contains("expired"), "{message}");
    app.stop().await;
}

#[tokio::test]
async fn off_loopback_the_server_refuses_to_start_without_keys_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let open = settings(dir.path(), &default_policy(), json!({"bind": "0.0.0.0:0"}));
    let message = match Application::build(open).await {
        Ok(_) => panic!("an open server on 0.0.0.0 started"),
        Err(e) => e,
    };
    for hint in [
        "0.0.0.0:0",
        "tame keys create",
        "TAME_API_KEYS",
        "TAME_AUTH_DISABLED",
    ] {
        assert!(
            message.contains(hint),
            "the refusal mentions {hint:?}: {message}"
        );
    }

    let disabled = settings(
        dir.path(),
        &default_policy(),
        json!({"bind": "0.0.0.0:0", "auth_disabled": true}),
    );
    assert!(
        Application::build(disabled).await.is_ok(),
        "auth_disabled: true lets it serve open on purpose"
    );
    let with_keys = settings(
        dir.path(),
        &default_policy(),
        json!({"bind": "0.0.0.0:0", "api_keys": format!("admin:{ADMIN}")}),
    );
    assert!(
        Application::build(with_keys).await.is_ok(),
        "keys make it safe to start"
    );
}

#[tokio::test]
async fn keys_that_are_short_or_have_an_unknown_role_stop_the_start_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (keys, says) in [
        ("admin:short", "at least 16 characters"),
        ("root:0123456789abcdef0123", "unknown role"),
        ("0123456789abcdef0123", "role:key"),
    ] {
        let s = settings(dir.path(), &default_policy(), json!({"api_keys": keys}));
        match Application::build(s).await {
            Ok(_) => panic!("the app started with api_keys {keys:?}"),
            Err(e) => {
                assert!(e.contains(says), "{keys:?}: {e}");
                assert!(
                    !e.contains("0123456789abcdef"),
                    "the refusal does not echo the key: {e}"
                );
            }
        }
    }
}

#[tokio::test]
async fn on_loopback_without_keys_the_server_runs_open_and_says_so() {
    let app = spawn_app().await;
    let r = app.get("/api/v1/status").await;
    assert_eq!(r.status(), 200);
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["auth"], "open", "{status}");
    // Everyone is an admin in open mode.
    let r = app.post("/api/v1/policy/reload", &json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/metrics").await.status(), 200);
    app.stop().await;

    let app = spawn_app_with(&default_policy(), keyed()).await;
    let status: Value = get_as(&app, "/api/v1/status", AGENT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["auth"], "required", "{status}");
    app.stop().await;
}

#[test]
fn configured_secrets_never_show_in_the_settings_debug_output() {
    let secrets = [
        "agent-secret-key-aaaaaaaaaaaa",
        "admin-secret-key-bbbbbbbbbbbb",
        "jwt-secret-cccccccccccccccccc",
        "audit-secret-dddddddddddddddd",
    ];
    let settings = Settings::from_overrides(json!({
        "api_keys": format!("agent:{},admin:{}", secrets[0], secrets[1]),
        "jwt": {"hs256_secret": secrets[2], "issuer": ISSUER, "audience": AUDIENCE},
        "audit_secret": secrets[3],
    }))
    .expect("settings");
    let shown = format!("{settings:?}");
    assert!(shown.contains(ISSUER), "Debug shows the settings: {shown}");
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} is in {shown}");
    }
    let pretty = format!("{settings:#?}");
    for secret in secrets {
        assert!(!pretty.contains(secret), "{secret} is in {pretty}");
    }
}

#[tokio::test]
async fn configured_secrets_and_presented_keys_never_reach_the_server_log() {
    let dir = tempfile::tempdir().unwrap();
    let audit_secret = "audit-secret-eeeeeeeeeeeeeeeeeeee";
    let jwt_secret = "jwt-secret-ffffffffffffffffffffffff";
    let stranger = "someone-elses-key-gggggggggggggggg";
    let keys = format!("agent:{AGENT},admin:{ADMIN}");
    let server = ServerProcess::start(
        dir.path(),
        &default_policy(),
        &[
            ("TAME_API_KEYS", keys.as_str()),
            ("TAME_AUDIT_SECRET", audit_secret),
            ("TAME_JWT__HS256_SECRET", jwt_secret),
            ("TAME_JWT__ISSUER", ISSUER),
            ("TAME_JWT__AUDIENCE", AUDIENCE),
        ],
    );
    let client = client();
    let token = hs256(&claims("admin"), jwt_secret);
    for (key, want) in [
        (AGENT, 200),
        (ADMIN, 200),
        (token.as_str(), 200),
        (stranger, 401),
    ] {
        let r = client
            .post(server.url("/api/v1/enforce"))
            .bearer_auth(key)
            .json(&json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a.txt"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
    }
    server.signal("TERM");
    server.wait_for_log("stopped").await;
    let log = server.log.lock().unwrap().clone();
    for secret in [
        AGENT,
        ADMIN,
        audit_secret,
        jwt_secret,
        stranger,
        token.as_str(),
    ] {
        assert!(
            !log.contains(secret),
            "{secret} is in the server's log:\n{log}"
        );
    }
}

#[tokio::test]
async fn revoking_the_last_key_locks_the_server_instead_of_opening_it() {
    // Off loopback the server starts only because the database holds a key.
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = keys_cli(dir.path(), &["create", "--role", "admin"]);
    let key = stdout.trim().to_string();
    let id = stderr
        .split_whitespace()
        .find(|w| w.len() == 36 && w.matches('-').count() == 4)
        .unwrap_or_else(|| panic!("create names the key's id: {stderr}"))
        .to_string();
    let app = spawn_in(dir, &default_policy(), json!({"bind": "0.0.0.0:0"})).await;
    assert_unauthorized(app.get("/api/v1/status").await, "no credentials").await;
    assert_eq!(get_as(&app, "/api/v1/status", &key).await.status(), 200);

    keys_cli(app.dir.path(), &["revoke", &id]);
    wait_for_status(&app, &key, 401, "a revoked key is refused").await;
    // With no key left, nobody gets in: the server does not fall back to open mode.
    assert_unauthorized(
        app.get("/api/v1/status").await,
        "no credentials, no keys left",
    )
    .await;
    let r = app.post("/api/v1/policy/reload", &json!({})).await;
    assert_eq!(r.status(), 401, "an anonymous caller is not an admin");

    // A new key lets the operator back in without a restart.
    let (stdout, _) = keys_cli(app.dir.path(), &["create", "--role", "admin"]);
    wait_for_status(&app, stdout.trim(), 200, "a new key is accepted").await;
    app.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let app = spawn_app_with(&default_policy(), keyed()).await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = app
            .client
            .get(app.url("/api/v1/status"))
            .header("authorization", format!("{scheme} {ADMIN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn guessing_keys_is_rate_limited_per_address() {
    let mut overrides = keyed();
    overrides["limits"] = serde_json::json!({"open": {"per_second": 1, "burst": 3}});
    let app = spawn_app_with(&default_policy(), overrides).await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        let r = app
            .client
            .get(app.url("/api/v1/status"))
            .bearer_auth(format!("guess-number-{n:010}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // Failed guesses have their own bucket: a real key from the same address is still served.
    assert_eq!(
        app.client
            .get(app.url("/api/v1/status"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_server_started_with_a_log_filter_in_tame_log_starts() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &default_policy(), &[("TAME_LOG", "debug")]);
    let r = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_agent_cannot_test_the_policy_against_another_keys_session() {
    let app = spawn_app_with(&default_policy(), keyed()).await;
    enforce_as(&app, AGENT, "owned-by-agent").await;
    let body = serde_json::json!({"tool_name": "read_file", "session_id": "owned-by-agent"});
    assert_eq!(
        post_as(&app, "/api/v1/policy/test", &body, OTHER_AGENT)
            .await
            .status(),
        403
    );
    assert_eq!(
        post_as(&app, "/api/v1/policy/test", &body, AGENT)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_key_from_the_environment_is_named_by_its_hash_not_its_place_in_the_list() {
    let app = spawn_app_with(&default_policy(), keyed()).await;
    let d = enforce_as(&app, AGENT, "named").await;
    let logs: Vec<Value> = get_as(&app, "/api/v1/logs?session_id=named", ADMIN)
        .await
        .json::<Value>()
        .await
        .unwrap()["logs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(logs[0]["id"], d["log_id"]);
    let status: Value = get_as(&app, &format!("/api/v1/sessions/named/summary"), AGENT)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["session_id"], "named");
    let expected = format!("env:{}", &tame::http::auth::hash_key(AGENT)[..12]);
    let approvals_principal = app
        .state
        .store
        .session("named")
        .await
        .unwrap()
        .unwrap()
        .principal
        .unwrap();
    assert_eq!(approvals_principal, expected);
}
