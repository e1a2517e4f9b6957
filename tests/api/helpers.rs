//! `spawn_app`: the real server on port 0 with a fresh SQLite file, and a
//! client to talk to it as an agent would.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tame::app::{AppState, Application};
use tame::config::Settings;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped default policy.
pub fn default_policy() -> PathBuf {
    repo().join("policies/default.yaml")
}

/// Settings for a fresh app in `dir`: port 0, its own database, no file watching.
pub fn settings(dir: &Path, policy: &Path, overrides: Value) -> Settings {
    let mut base = json!({
        "bind": "127.0.0.1:0",
        "database_url": format!("sqlite://{}", dir.join("tame.db").display()),
        "policy_path": policy,
        "watch_policy": false,
    });
    if let (Value::Object(b), Value::Object(o)) = (&mut base, overrides) {
        b.extend(o);
    }
    Settings::from_overrides(base).expect("test settings")
}

/// Start the server with the default policy and `overrides` over the test settings.
pub async fn spawn_app_with(policy: &Path, overrides: Value) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary folder");
    spawn_in(dir, policy, overrides).await
}

pub async fn spawn_in(dir: tempfile::TempDir, policy: &Path, overrides: Value) -> TestApp {
    let app = Application::build(settings(dir.path(), policy, overrides))
        .await
        .expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        dir,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&default_policy(), json!({})).await
}

/// Write `text` as a policy file in a fresh folder and return its path (the folder lives as long as the file is needed).
pub fn policy_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).expect("write the policy");
    path
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("the request is sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the request is sent")
    }

    /// POST /api/v1/enforce and return the JSON, asserting 200.
    pub async fn enforce(&self, body: Value) -> Value {
        let r = self.post("/api/v1/enforce", &body).await;
        let status = r.status();
        let json: Value = r.json().await.expect("JSON");
        assert_eq!(status, 200, "{json}");
        json
    }

    /// Stop the server the way SIGTERM does: drain requests, flush the audit log.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
        drop(self.state);
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

/// The error body every failure has: `{"error": {"code", "message"}}`.
pub async fn error_of(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("an error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"))
        .to_string();
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.message in {body}"))
        .to_string();
    (status, code, message)
}
