//! `spawn_app`: the real server on port 0 with a fresh database, and a
//! client to talk to it as an agent would.
//!
//! The database is a SQLite file in the test's folder, or, with
//! `TAME_TEST_BACKEND=postgres`, a new database on the PostgreSQL server of
//! `TAME_TEST_DATABASE_URL` (`scripts/test` runs these tests both ways).

use std::collections::BTreeSet;
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

/// An HTTP client for tests (TLS set up as the server sets it up).
pub fn client() -> reqwest::Client {
    tame::tls::install_provider();
    reqwest::Client::new()
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped default policy.
pub fn default_policy() -> PathBuf {
    repo().join("policies/default.yaml")
}

/// The backend these tests run on: `sqlite` or `postgres`.
pub fn backend() -> &'static str {
    match std::env::var("TAME_TEST_BACKEND").as_deref() {
        Ok("postgres") => "postgres",
        Ok("sqlite") | Err(_) => "sqlite",
        Ok(other) => panic!("TAME_TEST_BACKEND={other:?}: use sqlite or postgres"),
    }
}

/// The PostgreSQL server tests may use, if one is configured.
pub fn postgres_server() -> Option<String> {
    std::env::var("TAME_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Create a new, empty PostgreSQL database and return its URL.
pub fn new_postgres_database() -> String {
    let server = postgres_server().expect(
        "TAME_TEST_DATABASE_URL is not set: PostgreSQL tests need postgres://USER@HOST:PORT/DATABASE",
    );
    let name = format!("tame_t_{}", uuid::Uuid::new_v4().simple());
    let create = format!("CREATE DATABASE {name}");
    let admin = server.clone();
    // On a thread of its own, so that both sync and async callers may use it.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to TAME_TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(&mut conn)
                .await
                .expect("create a test database");
        });
    })
    .join()
    .unwrap();
    // Same server, credentials and parameters, the new database.
    let (base, params) = server.split_at(server.find('?').unwrap_or(server.len()));
    let cut = base
        .rfind('/')
        .expect("a database in TAME_TEST_DATABASE_URL");
    format!("{}/{name}{params}", &base[..cut])
}

/// The database of the test folder `dir`: made on first use, the same one after.
pub fn database_url(dir: &Path) -> String {
    if backend() == "sqlite" {
        return format!("sqlite://{}", dir.join("tame.db").display());
    }
    let file = dir.join("database_url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    let url = new_postgres_database();
    std::fs::write(&file, &url).expect("remember the test database");
    url
}

/// Run one statement on the database of `dir` behind the server's back;
/// return the rows it changed.
pub async fn execute(dir: &Path, sql: &str) -> u64 {
    use sqlx::Connection;
    let url = database_url(dir);
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let done = sqlx::query(sql).execute(&mut db).await.unwrap();
        db.close().await.unwrap();
        done.rows_affected()
    } else {
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        let done = sqlx::query(sql).execute(&mut db).await.unwrap();
        db.close().await.unwrap();
        done.rows_affected()
    }
}

/// Another connection that keeps the server's writer waiting: on SQLite it
/// holds the database's write lock, on PostgreSQL the audit chain's lock.
pub enum Blocker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// The advisory lock the server's appends take on PostgreSQL.
const CHAIN_LOCK: i64 = 0x7461_6d65;

impl Blocker {
    pub async fn hold(dir: &Path) -> Blocker {
        use sqlx::Connection;
        let url = database_url(dir);
        if url.starts_with("sqlite:") {
            let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut db)
                .await
                .unwrap();
            Blocker::Sqlite(db)
        } else {
            let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(CHAIN_LOCK)
                .execute(&mut db)
                .await
                .unwrap();
            Blocker::Postgres(db)
        }
    }

    pub async fn release(self) {
        use sqlx::Connection;
        match self {
            Blocker::Sqlite(mut db) => {
                sqlx::query("ROLLBACK").execute(&mut db).await.unwrap();
                db.close().await.unwrap();
            }
            Blocker::Postgres(db) => db.close().await.unwrap(),
        }
    }
}

/// Settings for a fresh app in `dir`: port 0, its own database, no file watching.
pub fn settings(dir: &Path, policy: &Path, overrides: Value) -> Settings {
    let mut base = json!({
        "bind": "127.0.0.1:0",
        "database_url": database_url(dir),
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
        client: client(),
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

    /// GET `path` and read its JSON body.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).await.json().await.expect("JSON")
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
    pub async fn stop(self) -> tempfile::TempDir {
        let TestApp {
            dir,
            state,
            stop,
            task,
            ..
        } = self;
        // The audit writer finishes once no handle to the app is left.
        drop(state);
        if let Some(s) = stop {
            let _ = s.send(());
        }
        if let Some(t) = task {
            t.await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
        dir
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

/// The server as a separate process (`tame serve`), for what only a process
/// can show: being killed, signals, its log.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub address: String,
    /// Everything it has written to stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProcess {
    /// Start `tame serve` on port 0 with the database in `dir`, JSON logs, and `env` on top.
    pub fn start(dir: &Path, policy: &Path, env: &[(&str, &str)]) -> ServerProcess {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tame"));
        cmd.arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TAME_BIND", "127.0.0.1:0")
            .env("TAME_DATABASE_URL", database_url(dir))
            .env("TAME_POLICY_PATH", policy)
            .env("TAME_LOG_FORMAT", "json")
            .env("TAME_LIMITS__OPEN__PER_SECOND", "100000")
            .env("TAME_LIMITS__OPEN__BURST", "100000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tame serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("tame is serving") {
                    let v: Value = serde_json::from_str(&line).unwrap_or_default();
                    let _ = tx.send(
                        v["fields"]["address"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let address = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(a) => format!("http://{a}"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "tame serve did not start; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        ServerProcess {
            child,
            address,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// GET `path` and read the JSON body.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> Value {
        let r = client
            .get(self.url(path))
            .send()
            .await
            .expect("the request is sent");
        r.json().await.expect("a JSON body")
    }

    /// POST `body` to `path`: the status and the JSON body.
    pub async fn post_json(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let r = client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("the request is sent");
        let status = r.status().as_u16();
        (status, r.json().await.expect("a JSON body"))
    }

    /// Send a signal by name (`HUP`, `TERM`, `KILL`).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{name} failed");
    }

    /// Wait (bounded) until the log contains `text`.
    pub async fn wait_for_log(&self, text: &str) {
        for _ in 0..300 {
            if self.log.lock().unwrap().contains(text) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the log never said {text:?}; it has:\n{}",
            self.log.lock().unwrap()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The statuses `/openapi.json` (the document `doc`) lists for `method route`.
pub fn documented_statuses(doc: &Value, method: &str, route: &str) -> BTreeSet<u16> {
    doc["paths"][route][method.to_lowercase()]["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {route} is not in /openapi.json"))
        .keys()
        .map(|code| code.parse().expect("a status code"))
        .collect()
}
