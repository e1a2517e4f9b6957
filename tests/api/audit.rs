//! Tamper evidence: altering, removing or appending a row behind the server's
//! back makes verification name the row, through the API and `tame audit verify`.
//! Retention removes old rows and records that it did, and the chain still verifies.

use serde_json::{Value, json};

use crate::helpers::*;

/// A server with `n` decisions in it, stopped; returns its folder.
async fn log_with(n: usize) -> tempfile::TempDir {
    let app = spawn_app().await;
    for i in 0..n {
        app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": format!("/tmp/{i}")}, "session_id": "s"})).await;
    }
    app.stop().await
}

async fn tamper(dir: &tempfile::TempDir, sql: &'static str) {
    assert_eq!(execute(dir.path(), sql).await, 1, "{sql}");
}

/// `tame audit verify` on the folder's database: (exit code, stdout).
fn cli_verify(dir: &tempfile::TempDir) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(["audit", "verify"])
        .current_dir(dir.path())
        .env("TAME_DATABASE_URL", database_url(dir.path()))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn api_verify(dir: tempfile::TempDir) -> Value {
    let app = spawn_in(dir, &default_policy(), json!({})).await;
    app.get("/api/v1/compliance/integrity/verify")
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let dir = log_with(5).await;
    assert_eq!(
        cli_verify(&dir),
        (0, "ok: 5 entries verified (seq 1 to 5)\n".to_string())
    );
    let v = api_verify(dir).await;
    assert_eq!(
        v,
        json!({"valid": true, "checked": 5, "first_seq": 1, "last_seq": 5, "broken": null})
    );
}

#[tokio::test]
async fn altering_a_row_names_that_row() {
    let dir = log_with(5).await;
    tamper(&dir, "UPDATE audit_log SET decision = 'deny' WHERE seq = 3").await;
    let (code, out) = cli_verify(&dir);
    assert_eq!(code, 1);
    assert!(out.starts_with("broken at seq 3 (id "), "{out}");
    assert!(
        out.ends_with("its contents do not match its hash (the row was altered)\n"),
        "{out}"
    );
    let v = api_verify(dir).await;
    assert_eq!(v["valid"], false);
    assert_eq!(v["broken"]["seq"], 3);
}

#[tokio::test]
async fn deleting_a_row_names_the_gap() {
    let dir = log_with(5).await;
    tamper(&dir, "DELETE FROM audit_log WHERE seq = 2").await;
    let (code, out) = cli_verify(&dir);
    assert_eq!(
        (code, out.as_str()),
        (1, "broken at seq 2: row 2 is missing (the next row is 3)\n")
    );
}

#[tokio::test]
async fn cutting_off_the_newest_row_is_noticed() {
    let dir = log_with(5).await;
    tamper(&dir, "DELETE FROM audit_log WHERE seq = 5").await;
    let (code, out) = cli_verify(&dir);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "broken at seq 5: rows 5 to 5 are missing from the end of the log\n"
        )
    );
}

#[tokio::test]
async fn rewriting_a_rows_hash_breaks_the_next_link() {
    let dir = log_with(5).await;
    tamper(
        &dir,
        "UPDATE audit_log SET reason = 'edited', hash = 'f00d' WHERE seq = 2",
    )
    .await;
    let (code, out) = cli_verify(&dir);
    assert_eq!(code, 1);
    assert!(out.starts_with("broken at seq 2 "), "{out}");
}

#[tokio::test]
async fn removing_the_chains_recorded_ends_is_noticed_and_the_server_will_not_append() {
    let dir = log_with(3).await;
    tamper(
        &dir,
        "UPDATE audit_log SET decision = 'allow' WHERE seq = 1",
    )
    .await;
    tamper(&dir, "DELETE FROM chain_state").await;
    let (code, out) = cli_verify(&dir);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "broken at seq 1: the record of the chain's ends (the chain_state table) is missing, yet the log holds rows: it was removed outside the server\n"
        )
    );
    // Appending would start a new chain over the old rows.
    let refused = tame::app::Application::build(settings(dir.path(), &default_policy(), json!({})))
        .await
        .err()
        .expect("the server refuses to start");
    assert!(
        refused.contains("chain_state table) is missing"),
        "{refused}"
    );
    assert!(refused.contains("tame audit verify"), "{refused}");
}

#[tokio::test]
async fn an_empty_log_without_recorded_ends_verifies() {
    let dir = spawn_app().await.stop().await;
    assert_eq!(cli_verify(&dir).0, 0);
}

#[tokio::test]
async fn moving_the_chains_recorded_end_is_noticed() {
    let dir = log_with(3).await;
    tamper(&dir, "UPDATE chain_state SET head_seq = 2").await;
    let (code, out) = cli_verify(&dir);
    assert_eq!(
        (code, out.as_str()),
        (
            1,
            "broken at seq 2: the chain's recorded ends were altered\n"
        )
    );
}

#[tokio::test]
async fn retention_removes_old_entries_records_it_and_the_chain_still_verifies() {
    let app = spawn_app_with(&default_policy(), json!({"audit": {"queue_capacity": 64, "max_batch": 64, "enqueue_timeout_ms": 5000, "retention_days": 1}})).await;
    for i in 0..4 {
        app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": format!("/tmp/{i}")}, "session_id": "r"})).await;
    }
    let dir = app.stop().await;
    // Age the first two decisions by three days, as if they were old.
    execute(
        dir.path(),
        "UPDATE audit_log SET ts = '2020-01-01T00:00:00.000000+00:00' WHERE seq <= 2",
    )
    .await;
    let app = spawn_in(dir, &default_policy(), json!({})).await;
    // Changing ts broke rows 1-2 (that is the point of the chain); retention removes exactly them.
    let before: Value = app
        .get("/api/v1/compliance/integrity/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["broken"]["seq"], 1);
    let removed = tame::retention::apply(&app.state, 1).await.unwrap();
    assert_eq!(removed, 2);
    let after: Value = app
        .get("/api/v1/compliance/integrity/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["valid"], true, "{after}");
    assert_eq!(
        (
            after["first_seq"].as_i64(),
            after["last_seq"].as_i64(),
            after["checked"].as_i64()
        ),
        (Some(3), Some(5), Some(3))
    );
    let logs: Vec<Value> = app.get("/api/v1/sessions/r").await.json().await.unwrap();
    assert_eq!(logs.len(), 2);
    // Nothing more is old: a second pass removes nothing and records nothing.
    assert_eq!(tame::retention::apply(&app.state, 1).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verification_while_decisions_are_being_written_finds_the_chain_intact() {
    let app = spawn_app().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, url, stop) = (app.client.clone(), app.url("/api/v1/enforce"), stop.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                client
                    .post(&url)
                    .json(&json!({"tool_name": "read_file", "session_id": format!("v-{w}")}))
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for _ in 0..10 {
        let v: Value = app
            .get("/api/v1/compliance/integrity/verify")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["valid"], true, "{v}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
}

#[test]
fn commands_that_read_the_database_do_not_make_one_at_a_mistyped_path() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("typo/tame.db").display());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tame"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TAME_DATABASE_URL", &url)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    for args in [
        &["audit", "verify"][..],
        &["keys", "list"],
        &["keys", "revoke", "some-id"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("there is no database at ") && stderr.contains("typo/tame.db"),
            "{args:?}: {stderr}"
        );
        assert!(
            !dir.path().join("typo").exists(),
            "{args:?} made the database"
        );
    }
    // A key may be made before the server ever ran: that makes the database.
    let (code, stderr) = run(&["keys", "create", "--role", "admin"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dir.path().join("typo/tame.db").exists());
    assert_eq!(run(&["keys", "list"]).0, Some(0));
}
