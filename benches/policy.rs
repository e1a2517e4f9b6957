//! The policy engine's costs: compiling policies of 10 to 10,000 rules, and
//! deciding one request against them, with the rule index helping (every
//! rule pinned to a tool) and without it (no rule pinned, so a request that
//! matches nothing tries them all). `parallel` decides the same batch on one
//! and on two threads, to show evaluation scales across cores.
//!
//! `decide_default_policy` is the shipped policy deciding the load
//! benchmark's request.
//!
//! Run: `cargo bench --bench policy`.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tame::policy::{Policy, Request, SessionView};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// A policy of `n` rules. Indexed: rule i pins `tool_i`. Unindexed: rule i
/// tests an argument, so every rule applies to every tool.
fn policy_text(n: usize, indexed: bool) -> String {
    let mut text = String::from("version: \"bench\"\ndefault_action: deny\nrules:\n");
    for i in 0..n {
        let condition = if indexed {
            format!(
                "tool_name == \"tool_{i}\" and tool_args.count > {i} and tool_args.path.startswith(\"/tmp/\")"
            )
        } else {
            format!(
                "tool_args.kind == \"kind_{i}\" and tool_args.count > {i} and tool_args.path.startswith(\"/tmp/\")"
            )
        };
        text.push_str(&format!(
            "  - name: rule_{i}\n    condition: '{condition}'\n    action: allow\n"
        ));
    }
    text
}

fn request(tool: &str) -> Request {
    Request {
        tool_name: tool.into(),
        tool_args: serde_json::json!({"path": "/tmp/a.txt", "count": 1_000_000, "kind": "none"}),
        session_id: "s".into(),
        metadata: serde_json::json!({}),
        ..Default::default()
    }
}

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    for n in SIZES {
        let text = policy_text(n, true);
        g.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| Policy::from_source("bench.yaml", black_box(text)).unwrap())
        });
    }
    g.finish();
}

fn evaluate(c: &mut Criterion) {
    let session = SessionView::default();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
    for indexed in [true, false] {
        let mut g = c.benchmark_group(if indexed {
            "decide_indexed"
        } else {
            "decide_unindexed"
        });
        for n in SIZES {
            if !indexed && n == 10_000 {
                g.sample_size(20);
            }
            let policy = Policy::from_source("bench.yaml", &policy_text(n, indexed)).unwrap();
            // Indexed: the tool of the last rule, which matches. Unindexed: nothing matches.
            let req = request(&format!("tool_{}", n - 1));
            let d = policy.decide(&req, &session, now);
            assert_eq!(
                d.action,
                if indexed {
                    tame::policy::Action::Allow
                } else {
                    tame::policy::Action::Deny
                }
            );
            g.bench_with_input(BenchmarkId::from_parameter(n), &req, |b, req| {
                b.iter(|| policy.decide(black_box(req), &session, now))
            });
        }
        g.finish();
    }
}

fn parallel(c: &mut Criterion) {
    const BATCH: usize = 20_000;
    let policy = Policy::from_source("bench.yaml", &policy_text(1_000, true)).unwrap();
    let session = SessionView::default();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
    let requests: Vec<Request> = (0..64)
        .map(|i| request(&format!("tool_{}", i * 15)))
        .collect();
    let mut g = c.benchmark_group("parallel_20000_decisions");
    g.sample_size(10);
    for threads in [1usize, 2] {
        g.bench_function(
            BenchmarkId::from_parameter(format!("{threads}_threads")),
            |b| {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for t in 0..threads {
                            let (policy, requests, session) = (&policy, &requests, &session);
                            s.spawn(move || {
                                for k in (t..BATCH).step_by(threads) {
                                    black_box(policy.decide(
                                        &requests[k % requests.len()],
                                        session,
                                        now,
                                    ));
                                }
                            });
                        }
                    })
                })
            },
        );
    }
    g.finish();
}

/// The shipped default policy deciding the load benchmark's request (a read
/// under /tmp: five conditions are tried before a rule allows it).
fn default_policy(c: &mut Criterion) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/default.yaml"
    ))
    .unwrap();
    let policy = Policy::from_source("default.yaml", &text).unwrap();
    let session = SessionView::default();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
    let req = Request {
        tool_name: "read_file".into(),
        tool_args: serde_json::json!({"path": "/tmp/a.txt"}),
        session_id: "s".into(),
        metadata: serde_json::json!({}),
        ..Default::default()
    };
    let d = policy.decide(&req, &session, now);
    assert_eq!(d.rule_name.as_deref(), Some("allow_temp_files"));
    c.bench_function("decide_default_policy", |b| {
        b.iter(|| policy.decide(black_box(&req), &session, now))
    });
}

criterion_group!(benches, compile, evaluate, parallel, default_policy);
criterion_main!(benches);
