//! Nothing acknowledged is lost: a server killed with SIGKILL while clients
//! send decisions still has, after a restart, every decision any client got
//! a `log_id` for, and its audit chain verifies. A SIGTERM drains instead.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_under_load_keeps_every_acknowledged_decision() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &default_policy(), &[]);
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let client = crate::helpers::client();
    let mut clients = Vec::new();
    for c in 0..16 {
        let (client, url, acked) = (
            client.clone(),
            server.url("/api/v1/enforce"),
            acknowledged.clone(),
        );
        clients.push(tokio::spawn(async move {
            for n in 0.. {
                let session = format!("s-{c}-{}", n % 3);
                let body = json!({"tool_name": "read_file", "tool_args": {"path": format!("/tmp/{n}")}, "session_id": session});
                let Ok(r) = client.post(&url).json(&body).send().await else { break };
                let Ok(d) = r.json::<Value>().await else { break };
                if let Some(log_id) = d["log_id"].as_str() {
                    acked.lock().unwrap().push((session, log_id.to_string()));
                }
            }
        }));
    }
    // Let a good number of decisions through, then kill without warning.
    for _ in 0..200 {
        if acknowledged.lock().unwrap().len() >= 300 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} decisions were acknowledged before the kill",
        acked.len()
    );
    drop(server);

    let server = ServerProcess::start(dir.path(), &default_policy(), &[]);
    let sessions: BTreeSet<&String> = acked.iter().map(|(s, _)| s).collect();
    let mut present = BTreeSet::new();
    for s in sessions {
        let logs: Vec<Value> = client
            .get(server.url(&format!("/api/v1/sessions/{s}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        present.extend(logs.iter().map(|l| l["id"].as_str().unwrap().to_string()));
    }
    let missing: Vec<&String> = acked
        .iter()
        .map(|(_, id)| id)
        .filter(|id| !present.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged decisions are gone: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    // Each session counts the decisions its log holds: exactly on SQLite; on
    // PostgreSQL a decision in flight at the kill may count without being
    // recorded (each session had at most one in flight).
    for s in acked.iter().map(|(s, _)| s).collect::<BTreeSet<_>>() {
        let logs = server
            .get_json(&client, &format!("/api/v1/sessions/{s}"))
            .await;
        let summary = server
            .get_json(&client, &format!("/api/v1/sessions/{s}/summary"))
            .await;
        let recorded = logs.as_array().unwrap().len() as u64;
        let counted = summary["total_calls"].as_u64().unwrap();
        let ahead = if backend() == "sqlite" { 0 } else { 1 };
        assert!(
            (recorded..=recorded + ahead).contains(&counted),
            "{s}: {recorded} recorded; {summary}"
        );
        assert_eq!(
            summary["tool_counts"]["read_file"], counted,
            "{s}: {summary}"
        );
    }
    let v: Value = client
        .get(server.url("/api/v1/compliance/integrity/verify"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["checked"].as_u64().unwrap() >= acked.len() as u64);
}

#[tokio::test]
async fn a_graceful_stop_answers_in_flight_requests_and_flushes_the_log() {
    let app = spawn_app().await;
    let mut calls = Vec::new();
    for i in 0..50 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/enforce"));
        calls.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"tool_name": "read_file", "session_id": format!("g-{}", i % 5)}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut ok = 0;
    for c in calls {
        if let Ok(Ok(200)) = c.await {
            ok += 1;
        }
    }
    let dir = app.stop().await;
    let app = spawn_in(dir, &default_policy(), json!({})).await;
    let status: Value = app.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(status["counts"]["decisions"], ok);
    assert_eq!(ok, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_and_exits_cleanly_with_every_decision_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &default_policy(), &[]);
    let client = crate::helpers::client();
    let mut ids = Vec::new();
    for i in 0..20 {
        let d: Value = client
            .post(server.url("/api/v1/enforce"))
            .json(&json!({"tool_name": "read_file", "session_id": format!("t-{}", i % 2)}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(d["log_id"].as_str().unwrap().to_string());
    }
    server.signal("TERM");
    let status = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        (s, server)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}", status.0);
    // The last lines it wrote may still be on their way from the pipe.
    status.1.wait_for_log("stopped").await;
    drop(status);
    let server = ServerProcess::start(dir.path(), &default_policy(), &[]);
    let logs: Value = client
        .get(server.url("/api/v1/logs?limit=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept: BTreeSet<String> = logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, ids.into_iter().collect::<BTreeSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_storage_stalls_decisions_fail_closed_with_503_and_resume_afterwards() {
    // A tiny queue and a short wait for room, so a stalled database shows at once.
    let app = spawn_app_with(&default_policy(), json!({"audit": {"queue_capacity": 1, "max_batch": 1, "enqueue_timeout_ms": 200, "retention_days": null}})).await;
    let first = app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "stall"})).await;
    // Another connection holds what the writer needs: it waits.
    let blocker = Blocker::hold(app.dir.path()).await;
    let mut calls = Vec::new();
    for i in 0..8 {
        let (client, url) = (app.client.clone(), app.url("/api/v1/enforce"));
        calls.push(tokio::spawn(async move {
            let r = client.post(url).json(&json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/b"}, "session_id": format!("stall-{i}")})).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    // While the lock is held no decision can be answered allow: some wait, the rest fail with 503.
    let mut refused = 0;
    let mut pending = Vec::new();
    for c in calls {
        match tokio::time::timeout(std::time::Duration::from_secs(3), c).await {
            Ok(done) => {
                let (status, body) = done.unwrap();
                assert_eq!(status, 503, "{body}");
                assert_eq!(body["error"]["code"], "unavailable");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("not keeping up"),
                    "{body}"
                );
                refused += 1;
            }
            Err(_) => pending.push(()),
        }
    }
    assert!(
        refused >= 1,
        "no decision was refused while storage stalled"
    );
    blocker.release().await;
    let after = app.enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/c"}, "session_id": "stall"})).await;
    assert_eq!(after["decision"], "allow");
    let logs: Vec<Value> = app
        .get("/api/v1/sessions/stall")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = logs.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert!(
        ids.contains(&first["log_id"].as_str().unwrap())
            && ids.contains(&after["log_id"].as_str().unwrap())
    );
    let v: Value = app
        .get("/api/v1/compliance/integrity/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_that_times_out_is_a_503_with_nothing_recorded() {
    // A one-place queue and a one-second request timeout; another connection
    // holds the database's write lock, so the writer waits and the queue fills.
    let limits = json!({"request_timeout_secs": 1});
    let audit = json!({"queue_capacity": 1, "max_batch": 1, "enqueue_timeout_ms": 5000});
    let app = spawn_app_with(&default_policy(), json!({"limits": limits, "audit": audit})).await;
    let blocker = Blocker::hold(app.dir.path()).await;
    let send = |session: &str| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/enforce"));
        let body = json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": session});
        tokio::spawn(async move {
            let r = client.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        })
    };
    // The writer takes the first batch and waits on the lock; on SQLite it
    // also takes a second, to write while the first one's sync runs. The
    // next decision fills the queue.
    let taken = if backend() == "sqlite" { 2 } else { 1 };
    let mut queued = Vec::new();
    for i in 0..=taken {
        queued.push(send(&format!("queued-{i}")));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // The next finds no room within the request timeout.
    let (status, body) = send("refused").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was decided or recorded, so it is safe to retry"),
        "{body}"
    );
    blocker.release().await;
    // Queued before the deadline, the others are answered once committed, however long that took.
    for q in queued {
        assert_eq!(q.await.unwrap().0, 200);
    }
    // Nothing of it is kept (on PostgreSQL its reservation is taken back
    // just after the 503, so look a few times).
    let mut status = 0;
    for _ in 0..50 {
        status = app.get("/api/v1/sessions/refused").await.status().as_u16();
        if status == 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 404, "the timed-out decision was recorded");
    let v: Value = app
        .get("/api/v1/compliance/integrity/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (v["valid"].as_bool(), v["checked"].as_u64()),
        (Some(true), Some(taken as u64 + 1)),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_before_its_session_tables_caught_up_counts_from_the_log() {
    // Decisions and a reported cost, then SIGKILL at once: the server had no
    // time to bring its session tables up to the log. The restarted server
    // counts the sessions from the log.
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &default_policy(), &[]);
    let client = crate::helpers::client();
    let mut first = None;
    for path in ["/tmp/a", "/tmp/b", "/tmp/c", "/etc/passwd"] {
        let body =
            json!({"tool_name": "read_file", "tool_args": {"path": path}, "session_id": "k"});
        let (status, d) = server.post_json(&client, "/api/v1/enforce", &body).await;
        assert_eq!(status, 200, "{d}");
        first.get_or_insert(d["log_id"].as_str().unwrap().to_string());
    }
    let other = json!({"tool_name": "list_files", "session_id": "k2", "agent_id": "a1"});
    assert_eq!(
        server.post_json(&client, "/api/v1/enforce", &other).await.0,
        200
    );
    let result = format!("/api/v1/enforce/k/result?log_id={}", first.unwrap());
    let cost = json!({"status": "success", "cost": 0.25});
    assert_eq!(server.post_json(&client, &result, &cost).await.0, 200);
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    drop(server);

    let server = ServerProcess::start(dir.path(), &default_policy(), &[]);
    let k = server.get_json(&client, "/api/v1/sessions/k/summary").await;
    assert_eq!(
        (
            &k["total_calls"],
            &k["allowed_calls"],
            &k["denied_calls"],
            &k["estimated_cost"],
        ),
        (&json!(4), &json!(3), &json!(1), &json!(0.25)),
        "{k}"
    );
    assert_eq!(k["tool_counts"], json!({"read_file": 4}), "{k}");
    let logs = server.get_json(&client, "/api/v1/sessions/k").await;
    assert_eq!(logs.as_array().map(Vec::len), Some(4), "{logs}");
    let listed = server
        .get_json(&client, "/api/v1/sessions?agent_id=a1")
        .await;
    assert_eq!(listed["total_count"], 1, "{listed}");
    assert_eq!(listed["sessions"][0]["session_id"], "k2", "{listed}");
    // Counting goes on from there.
    let next =
        json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/d"}, "session_id": "k"});
    assert_eq!(
        server.post_json(&client, "/api/v1/enforce", &next).await.0,
        200
    );
    let k = server.get_json(&client, "/api/v1/sessions/k/summary").await;
    assert_eq!(k["total_calls"], 5, "{k}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_read_that_fails_while_storage_is_locked_loses_nothing() {
    if backend() != "sqlite" {
        eprintln!("SKIPPED: only SQLite fills its session tables in behind the log");
        return;
    }
    let app = spawn_app().await;
    for path in ["/tmp/a", "/tmp/b", "/tmp/c"] {
        app.enforce(
            json!({"tool_name": "read_file", "tool_args": {"path": path}, "session_id": "locked"}),
        )
        .await;
    }
    // Another connection holds the write lock longer than the server waits
    // for it: the session tables cannot be brought up to date, and the read
    // that needed them fails.
    let blocker = Blocker::hold(app.dir.path()).await;
    let r = app.get("/api/v1/sessions/locked/summary").await;
    assert_eq!(r.status(), 503);
    blocker.release().await;
    // Work in another session moves the tables on; the first session's
    // decisions are counted all the same.
    app.enforce(
        json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/d"}, "session_id": "later"}),
    )
    .await;
    let summary: Value = app.get_json("/api/v1/sessions/locked/summary").await;
    assert_eq!(summary["total_calls"], 3, "{summary}");
    let logs: Vec<Value> = app.get_json("/api/v1/sessions/locked").await;
    assert_eq!(logs.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_caller_that_hangs_up_while_its_decision_commits_still_has_it_recorded_and_counted() {
    let app = spawn_app().await;
    // The writer waits for another connection, so the decision below is
    // queued but not committed when its caller gives up and hangs up.
    let blocker = Blocker::hold(app.dir.path()).await;
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(app.url("/api/v1/enforce"))
        .json(&json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/a"}, "session_id": "hangup"}))
        .send()
        .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    drop(impatient);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    blocker.release().await;
    // The hung-up decision is committed and counted before the next one.
    let next = app
        .enforce(json!({"tool_name": "read_file", "tool_args": {"path": "/tmp/b"}, "session_id": "hangup"}))
        .await;
    assert_eq!(next["decision"], "allow", "{next}");
    let summary: Value = app.get_json("/api/v1/sessions/hangup/summary").await;
    assert_eq!(summary["total_calls"], 2, "{summary}");
    let logs: Vec<Value> = app.get_json("/api/v1/sessions/hangup").await;
    let paths: Vec<&str> = logs
        .iter()
        .map(|l| l["tool_args"]["path"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(paths.len(), 2, "{logs:?}");
    assert!(
        paths.contains(&"/tmp/a") && paths.contains(&"/tmp/b"),
        "{paths:?}"
    );
    let v: Value = app.get_json("/api/v1/compliance/integrity/verify").await;
    assert_eq!(v["valid"], true, "{v}");
}
