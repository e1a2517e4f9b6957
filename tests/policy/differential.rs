//! The condition language against Python 3 itself: `tests/differential/gen.py`
//! generates thousands of conditions in the language's Python subset, with
//! the data each runs on and what Python's own `eval` made of it. The engine
//! must agree on every case where Python gives a result; where Python raises,
//! the engine must still answer (a result or an error), never crash.

use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;
use tame::policy::SessionView;
use tame::policy::lang::{self, Input, Value};

/// Cases per seed, and the seeds: fixed, so a failure reproduces.
/// `TAME_DIFFERENTIAL_SEEDS=3,4,5` explores others.
const COUNT: usize = 2_500;
const SEEDS: [u64; 2] = [1, 20261124];

fn seeds() -> Vec<u64> {
    match std::env::var("TAME_DIFFERENTIAL_SEEDS") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("TAME_DIFFERENTIAL_SEEDS: numbers separated by commas")
            })
            .collect(),
        Err(_) => SEEDS.to_vec(),
    }
}

fn generate(seed: u64) -> Vec<Json> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential/gen.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--seed", &seed.to_string(), "--count", &COUNT.to_string()])
        .output()
        .expect("the differential test needs python3 on the path");
    assert!(
        out.status.success(),
        "gen.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("gen.py prints UTF-8")
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line from gen.py ({e}): {l}"))
        })
        .collect()
}

fn session(json: &Json) -> SessionView {
    let n = |k: &str| json[k].as_u64().unwrap_or(0);
    SessionView {
        id: json["id"].as_str().unwrap_or("").into(),
        action_count: n("action_count"),
        allowed_count: n("allowed_count"),
        denied_count: n("denied_count"),
        approval_count: n("approval_count"),
        tool_counts: json["tool_counts"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default(),
        estimated_cost: json["estimated_cost"].as_f64().unwrap_or(0.0),
        started_at: json["started_at"].as_i64().unwrap_or(0),
    }
}

#[test]
fn generated_conditions_agree_with_python() {
    let mut checked = 0;
    let mut raised = 0;
    let mut mismatches = Vec::new();
    let seeds = seeds();
    for &seed in &seeds {
        let cases = generate(seed);
        assert_eq!(cases.len(), COUNT, "seed {seed}");
        for case in &cases {
            let condition = case["condition"].as_str().expect("condition");
            let input = &case["input"];
            let s = session(&input["session"]);
            let data = Input {
                tool_name: input["tool_name"].as_str().unwrap_or(""),
                tool_args: Value::from_json(&input["tool_args"]),
                agent_id: input["agent_id"].as_str(),
                user_id: input["user_id"].as_str(),
                metadata: Value::from_json(&input["metadata"]),
                session: &s,
                now: lang::utc(chrono::Utc::now()),
            };
            let ours = lang::eval_once(condition, data);
            match (&case["expected"], ours) {
                (Json::Bool(want), Ok(Ok(got))) if *want == got => checked += 1,
                (Json::Bool(want), got) => mismatches.push(format!(
                    "seed {seed} case {}: {condition}\n  python: {want}\n  engine: {got:?}\n  input: {input}",
                    case["id"]
                )),
                // Python raised: the language may define a result, or fail; it must not crash.
                (_, _) => raised += 1,
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases disagree with Python; the first ones:\n{}",
        mismatches.len(),
        checked + raised + mismatches.len(),
        mismatches
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        checked >= seeds.len() * COUNT * 3 / 4,
        "only {checked} cases had a Python result"
    );
    eprintln!(
        "{checked} conditions agree with Python; {raised} raised in Python and ran without a crash"
    );
}
