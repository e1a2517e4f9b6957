//! Several servers on one PostgreSQL database, and PostgreSQL going away.
//! These run in the PostgreSQL pass (`TAME_TEST_BACKEND=postgres` with
//! `TAME_TEST_DATABASE_URL`); otherwise they skip and say so.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

/// A fresh PostgreSQL database, or `None` (with a note) when none is configured.
fn postgres(test: &str) -> Option<String> {
    if postgres_server().is_none() || backend() != "postgres" {
        eprintln!(
            "SKIPPED {test}: PostgreSQL only; run with TAME_TEST_BACKEND=postgres and TAME_TEST_DATABASE_URL=postgres://…"
        );
        return None;
    }
    Some(new_postgres_database())
}

/// A policy whose rule c<i> matches when the session has i decisions before
/// this one: the deciding rule tells which count each decision saw.
fn counting_policy(dir: &std::path::Path, total: usize, allowed: usize) -> std::path::PathBuf {
    let mut text = String::from(
        "version: \"limit\"\ndefault_action: deny\nrules:\n  - name: ask\n    condition: tool_name == 'deploy'\n    action: approve\n",
    );
    for i in 0..total {
        let action = if i < allowed { "allow" } else { "deny" };
        text.push_str(&format!(
            "  - name: c{i}\n    condition: session.action_count == {i}\n    action: {action}\n"
        ));
    }
    policy_file(dir, &text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_database_count_one_session_exactly_and_share_approvals() {
    let Some(url) = postgres("two_servers_on_one_database…") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let policy = counting_policy(dir.path(), 400, 100);
    let env = [("TAME_DATABASE_URL", url.as_str())];
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ServerProcess::start(a_dir.path(), &policy, &env);
    let b = ServerProcess::start(b_dir.path(), &policy, &env);
    let client = client();

    // 400 decisions in one session at once, every other one through each server.
    let mut calls = Vec::new();
    for i in 0..400 {
        let url = if i % 2 == 0 {
            a.url("/api/v1/enforce")
        } else {
            b.url("/api/v1/enforce")
        };
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"tool_name": "t", "session_id": "shared"}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            assert_eq!(status, 200, "{body}");
            body
        }));
    }
    let (mut allowed, mut seen, mut log_ids) = (0, BTreeSet::new(), BTreeSet::new());
    for c in calls {
        let d = c.await.unwrap();
        allowed += usize::from(d["decision"] == "allow");
        let rule = d["rule_name"].as_str().expect("every count has its rule");
        assert!(seen.insert(rule.to_string()), "count {rule} seen twice");
        log_ids.insert(d["log_id"].as_str().unwrap().to_string());
    }
    assert_eq!(allowed, 100, "a limit of 100 admits exactly 100");
    assert_eq!(
        seen,
        (0..400).map(|i| format!("c{i}")).collect::<BTreeSet<_>>()
    );
    // Both servers see the same session and the same log, and it verifies.
    for server in [&a, &b] {
        let summary = server
            .get_json(&client, "/api/v1/sessions/shared/summary")
            .await;
        assert_eq!(
            (
                summary["total_calls"].as_i64(),
                summary["allowed_calls"].as_i64(),
                summary["denied_calls"].as_i64()
            ),
            (Some(400), Some(100), Some(300)),
            "{summary}"
        );
        let v = server
            .get_json(&client, "/api/v1/compliance/integrity/verify")
            .await;
        assert_eq!(
            (v["valid"].as_bool(), v["checked"].as_u64()),
            (Some(true), Some(400)),
            "{v}"
        );
    }
    let logs = b.get_json(&client, "/api/v1/sessions/shared").await;
    let kept: BTreeSet<String> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, log_ids);

    // An approval asked for through A, waited on at A, resolved through B.
    let (_, asked) = a
        .post_json(
            &client,
            "/api/v1/enforce",
            &json!({"tool_name": "deploy", "session_id": "release"}),
        )
        .await;
    assert_eq!(asked["decision"], "approve", "{asked}");
    let id = asked["approval_id"].as_str().unwrap().to_string();
    // The wait (300 s) outlasts the test's patience (30 s): it ends in time only
    // if B's resolution wakes it.
    let waiter = {
        let (client, url) = (
            client.clone(),
            a.url(&format!("/api/v1/approvals/{id}?wait=300")),
        );
        tokio::spawn(async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    // The waiter is registered before B resolves (A answers nothing until then).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiter.is_finished(),
        "the wait ended before anyone resolved the approval"
    );
    let (resolved, _) = b
        .post_json(
            &client,
            &format!("/api/v1/approvals/{id}/approve"),
            &json!({"comment": "ship it"}),
        )
        .await;
    assert_eq!(resolved, 200);
    let waited = tokio::time::timeout(std::time::Duration::from_secs(30), waiter)
        .await
        .expect("the waiter at A was not woken by the resolution at B")
        .unwrap();
    assert_eq!(waited["status"], "approved", "{waited}");
    assert_eq!(waited["comment"], "ship it");
    // And the approval is used, once, through A.
    let (_, used) = a
        .post_json(
            &client,
            "/api/v1/enforce",
            &json!({"tool_name": "deploy", "session_id": "release", "approval_id": id}),
        )
        .await;
    assert_eq!(used["decision"], "allow", "{used}");
    let (again, _) = b
        .post_json(
            &client,
            "/api/v1/enforce",
            &json!({"tool_name": "deploy", "session_id": "release", "approval_id": id}),
        )
        .await;
    assert_eq!(again, 409);
}

/// A TCP relay to PostgreSQL that can be cut: while cut, it drops every
/// connection it carries and refuses new ones, as a database that went away.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    /// Bumped on every cut; connections of an older generation close.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = tokio::sync::watch::Sender::new(0u64);
        let (flag, gens) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                // Subscribed before the check, so a cut in between still closes it.
                let mut cut = gens.subscribe();
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay {
            port,
            up,
            generation,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_postgres_goes_away_decisions_fail_closed_and_resume_when_it_is_back() {
    let Some(url) = postgres("when_postgres_goes_away…") else {
        return;
    };
    // The server reaches PostgreSQL through a relay the test can cut.
    let rest = url.split_once("://").unwrap().1;
    let (credentials, after_host) = rest.split_once('@').unwrap();
    let (host, database) = after_host.split_once('/').unwrap();
    let relay = Relay::start(host.to_string()).await;
    let relayed = format!(
        "postgres://{credentials}@127.0.0.1:{}/{database}",
        relay.port
    );
    let app = spawn_app_with(
        &default_policy(),
        json!({"database_url": relayed, "database_timeout_secs": 1, "limits": {"request_timeout_secs": 5}}),
    )
    .await;

    // Clients keep sending decisions throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (client, url, stop) = (app.client.clone(), app.url("/api/v1/enforce"), stop.clone());
        clients.push(tokio::spawn(async move {
            let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let r = client
                    .post(&url)
                    .json(&json!({"tool_name": "read_file", "tool_args": {"path": format!("/tmp/{c}-{i}")}, "session_id": format!("load-{c}")}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                match status {
                    200 => {
                        assert_eq!(body["decision"], "allow", "{body}");
                        acknowledged.push(body["log_id"].as_str().unwrap().to_string());
                    }
                    503 => refused.push(body),
                    other => panic!("unexpected {other}: {body}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            (acknowledged, refused)
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    relay.cut();

    // While it is away, /ready says so and a decision is refused with a clear 503.
    let mut not_ready = None;
    for _ in 0..100 {
        let r = app.get("/ready").await;
        if r.status() == 503 {
            not_ready = Some(r.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let not_ready = not_ready.expect("/ready never reported the database gone");
    assert_eq!(not_ready["ready"], false, "{not_ready}");
    let r = app
        .post("/api/v1/enforce", &json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/x"}, "session_id": "while-away"}))
        .await;
    let (status, code, message) = error_of(r).await;
    assert_eq!((status, code.as_str()), (503, "unavailable"), "{message}");
    assert!(message.contains("storage"), "{message}");

    // Back: decisions resume by themselves.
    relay.restore();
    let mut resumed = None;
    for _ in 0..100 {
        let r = app
            .post("/api/v1/enforce", &json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/y"}, "session_id": "after"}))
            .await;
        if r.status() == 200 {
            resumed = Some(r.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resumed = resumed.expect("decisions never resumed after PostgreSQL came back");
    assert_eq!(app.get("/ready").await.status(), 200);
    stop.store(true, Ordering::SeqCst);
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    for c in clients {
        let (a, r) = c.await.unwrap();
        acknowledged.extend(a);
        for body in &r {
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
        }
        refused += r.len();
    }
    assert!(
        refused > 0,
        "no decision under load was refused while PostgreSQL was away"
    );
    acknowledged.push(resumed["log_id"].as_str().unwrap().to_string());

    // Nothing acknowledged is lost, and the chain verifies.
    let mut kept = BTreeSet::new();
    for s in ["load-0", "load-1", "load-2", "load-3", "after"] {
        let logs: Vec<Value> = app
            .get(&format!("/api/v1/sessions/{s}"))
            .await
            .json()
            .await
            .unwrap();
        kept.extend(logs.iter().map(|l| l["id"].as_str().unwrap().to_string()));
    }
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !kept.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the log: {missing:?}"
    );
    let v: Value = app
        .get("/api/v1/compliance/integrity/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
}

/// Connections to the database at `url`, other than the one asking.
async fn connections_to(url: &str) -> i64 {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_opens_no_more_connections_than_tame_database_connections() {
    let Some(url) = postgres("a_server_opens_no_more_connections…") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TAME_DATABASE_URL", url.as_str()),
        ("TAME_DATABASE_CONNECTIONS", "4"),
    ];
    let server = ServerProcess::start(dir.path(), &default_policy(), &env);
    let client = client();

    // 64 decisions at once, each in a session of its own, with reads beside
    // them: left to itself the server would open a connection for many of them.
    let mut calls = Vec::new();
    for i in 0..64 {
        let (client, enforce, sessions) = (
            client.clone(),
            server.url("/api/v1/enforce"),
            server.url("/api/v1/sessions?limit=5"),
        );
        calls.push(tokio::spawn(async move {
            let body = json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": format!("pool-{i}")});
            let decided = client.post(enforce).json(&body).send().await.unwrap();
            let read = client.get(sessions).send().await.unwrap();
            (decided.status().as_u16(), read.status().as_u16())
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap(), (200, 200));
    }
    let open = connections_to(&url).await;
    assert!(
        (1..=4).contains(&open),
        "the server holds {open} connections to its database; TAME_DATABASE_CONNECTIONS is 4"
    );
    let status = server.get_json(&client, "/api/v1/status").await;
    assert_eq!(status["counts"]["decisions"], json!(64));

    // Fewer than PostgreSQL needs: refused at start, saying what to set.
    let mut too_few = std::process::Command::new(env!("CARGO_BIN_EXE_tame"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("TAME_BIND", "127.0.0.1:0")
        .env("TAME_DATABASE_URL", &url)
        .env("TAME_DATABASE_CONNECTIONS", "2")
        .env("TAME_POLICY_PATH", default_policy())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while too_few.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = too_few.kill();
            panic!("tame serve started with TAME_DATABASE_CONNECTIONS=2 on PostgreSQL");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let too_few = too_few.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&too_few.stderr);
    assert!(!too_few.status.success());
    assert!(
        said.contains("TAME_DATABASE_CONNECTIONS") && said.contains("at least 3"),
        "{said}"
    );
}
