//! Atomic policy changes: a bad policy on disk is refused with its error
//! logged while decisions keep coming from the old one; a good one takes over
//! under load with no failed request. Reload by SIGHUP, by the API and by the
//! file changing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::helpers::*;

const V1: &str = "version: \"v1\"\nrules:\n  - name: allow_all\n    action: allow\n";
const V2: &str = "version: \"v2\"\nrules:\n  - name: deny_all\n    action: deny\n";
const BROKEN: &str = "version: \"v3\"\nrules:\n  - name: oops\n    condition: tool_args.path.startwith('/')\n    action: deny\n";

async fn decide(client: &reqwest::Client, url: &str) -> Value {
    let r = client
        .post(url)
        .json(&json!({"tool_name": "x", "session_id": "reload"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_refuses_a_bad_policy_with_its_error_logged_and_a_good_one_takes_over_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), V1);
    let server = ServerProcess::start(dir.path(), &policy, &[("TAME_WATCH_POLICY", "false")]);
    let client = crate::helpers::client();
    let url = server.url("/api/v1/enforce");
    assert_eq!(decide(&client, &url).await["policy_version"], "v1");

    std::fs::write(&policy, BROKEN).unwrap();
    server.signal("HUP");
    server.wait_for_log("policy reload refused").await;
    assert!(
        server
            .log
            .lock()
            .unwrap()
            .contains("unknown method \\\"startwith\\\" (did you mean \\\"startswith\\\"?)"),
        "{}",
        server.log.lock().unwrap()
    );
    let d = decide(&client, &url).await;
    assert_eq!(
        (d["policy_version"].as_str(), d["decision"].as_str()),
        (Some("v1"), Some("allow"))
    );

    // Load: clients keep deciding while the good policy replaces the old one.
    let stop = Arc::new(AtomicBool::new(false));
    let (failed, total) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for c in 0..8 {
        let (client, url, stop, failed, total) = (
            client.clone(),
            url.clone(),
            stop.clone(),
            failed.clone(),
            total.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(&url)
                    .json(&json!({"tool_name": "x", "session_id": format!("load-{c}")}))
                    .send()
                    .await;
                total.fetch_add(1, Ordering::Relaxed);
                match r {
                    Ok(r) if r.status() == 200 => versions.push(
                        r.json::<Value>().await.unwrap()["policy_version"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ),
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            versions
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    std::fs::write(&policy, V2).unwrap();
    server.signal("HUP");
    server.wait_for_log("\"version\":\"v2\"").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for l in load {
        all.push(l.await.unwrap());
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "of {} requests",
        total.load(Ordering::Relaxed)
    );
    for versions in &all {
        // Each client sees v1 then v2, never back: the swap is atomic.
        let first_v2 = versions
            .iter()
            .position(|v| v == "v2")
            .unwrap_or(versions.len());
        assert!(
            versions[..first_v2].iter().all(|v| v == "v1")
                && versions[first_v2..].iter().all(|v| v == "v2"),
            "{versions:?}"
        );
    }
    assert!(
        all.iter().any(|v| v.contains(&"v1".to_string()))
            && all
                .iter()
                .all(|v| v.last().map(String::as_str) == Some("v2"))
    );
    assert_eq!(decide(&client, &url).await["decision"], "deny");
}

#[tokio::test]
async fn the_reload_endpoint_refuses_a_bad_policy_and_keeps_every_text_it_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), V1);
    let app = spawn_app_with(&policy, json!({})).await;
    std::fs::write(&policy, BROKEN).unwrap();
    let (status, code, message) =
        error_of(app.post("/api/v1/policy/reload", &json!({})).await).await;
    assert_eq!((status, code.as_str()), (422, "invalid_request"));
    assert!(
        message.contains("refused and the current one stays in force")
            && message.contains("policy.yaml:4:31 rule \"oops\": unknown method \"startwith\""),
        "{message}"
    );
    assert_eq!(
        app.enforce(json!({"tool_name": "x"})).await["policy_version"],
        "v1"
    );

    std::fs::write(&policy, V2).unwrap();
    let r: Value = app
        .post("/api/v1/policy/reload", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (r["status"].as_str(), r["version"].as_str()),
        (Some("reloaded"), Some("v2"))
    );
    assert_eq!(
        app.enforce(json!({"tool_name": "x"})).await["decision"],
        "deny"
    );
    let versions: Value = app
        .get("/api/v1/policy/versions")
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["v2", "v1"]);
    let hash = versions["versions"][1]["hash"].as_str().unwrap();
    let old: Value = app
        .get(&format!("/api/v1/policy/versions/{hash}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(old["content"], V1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_policy_file_is_picked_up_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), V1);
    let app = spawn_app_with(&policy, json!({"watch_policy": true})).await;
    assert_eq!(
        app.enforce(json!({"tool_name": "x"})).await["policy_version"],
        "v1"
    );
    // As deploy tools do: write a new file beside it and rename it over the old one.
    let tmp = dir.path().join("policy.yaml.new");
    std::fs::write(&tmp, V2).unwrap();
    std::fs::rename(&tmp, &policy).unwrap();
    wait_for_version(&app, "v2", "after a rename over the file").await;
}

/// Decide on `app` until its policy is `version`, for at most 10 s.
async fn wait_for_version(app: &TestApp, version: &str, why: &str) {
    for _ in 0..100 {
        if app.enforce(json!({"tool_name": "x"})).await["policy_version"] == version {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{why}: policy {version} was not picked up within 10 s");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_reached_through_links_is_picked_up_when_what_they_lead_to_changes() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    // As Kubernetes mounts a ConfigMap: policy.yaml -> ..data/policy.yaml and
    // ..data -> a folder per version, swapped by renaming a new link over it.
    let cm = dir.path().join("cm");
    std::fs::create_dir_all(cm.join("v1")).unwrap();
    std::fs::write(cm.join("v1/policy.yaml"), V1).unwrap();
    symlink("v1", cm.join("..data")).unwrap();
    symlink("..data/policy.yaml", cm.join("policy.yaml")).unwrap();
    let app = spawn_app_with(&cm.join("policy.yaml"), json!({"watch_policy": true})).await;
    wait_for_version(&app, "v1", "at start").await;
    std::fs::create_dir(cm.join("v2")).unwrap();
    std::fs::write(cm.join("v2/policy.yaml"), V2).unwrap();
    symlink("v2", cm.join("..data_tmp")).unwrap();
    std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).unwrap();
    wait_for_version(&app, "v2", "after the ConfigMap's swap").await;
    // And the folder it leads to now is the one watched: an edit there counts.
    std::fs::write(cm.join("v2/policy.yaml"), V1).unwrap();
    wait_for_version(&app, "v1", "after an edit in the new folder").await;

    // A link to a file in another folder, the file edited in place.
    let real = dir.path().join("real");
    let links = dir.path().join("links");
    std::fs::create_dir(&real).unwrap();
    std::fs::create_dir(&links).unwrap();
    std::fs::write(real.join("p.yaml"), V1).unwrap();
    symlink(real.join("p.yaml"), links.join("policy.yaml")).unwrap();
    let app = spawn_app_with(&links.join("policy.yaml"), json!({"watch_policy": true})).await;
    wait_for_version(&app, "v1", "at start").await;
    std::fs::write(real.join("p.yaml"), V2).unwrap();
    wait_for_version(&app, "v2", "after the linked file was edited").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_policy_file_does_not_reload_it() {
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(dir.path(), V1);
    let server = ServerProcess::start(dir.path(), &policy, &[("TAME_WATCH_POLICY", "true")]);
    let reloads = || {
        server
            .log
            .lock()
            .unwrap()
            .matches("policy file changed")
            .count()
    };
    // The watcher is running once a change is picked up (it starts beside
    // the server, so the first writes may come before it does).
    for _ in 0..100 {
        std::fs::write(&policy, V2).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if reloads() > 0 {
            break;
        }
    }
    server.wait_for_log("\"version\":\"v2\"").await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let after_the_change = reloads();
    // Reading the file (as the reload itself does, or `cat`, a backup,
    // `tame check`) is not a change: no reload follows, now or later.
    for _ in 0..3 {
        assert_eq!(std::fs::read_to_string(&policy).unwrap(), V2);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let log = server.log.lock().unwrap().clone();
    assert_eq!(
        reloads(),
        after_the_change,
        "reloads without a change; the log:\n{log}"
    );
}
