//! The shipped policies: the seed's two examples byte for byte, the default
//! policy and the structured sample, each with tests that every rule decides.

use std::path::{Path, PathBuf};

use tame::policy::{Policy, read_text, suite};

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// The YAML blocks of the first SDK's README, when `../shared` is beside the project.
fn seed_yaml_blocks() -> Option<Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seed");
    let readme = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "txt"))?;
    let text = std::fs::read_to_string(readme).ok()?;
    Some(
        text.split("```yaml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn the_seed_example_policies_are_shipped_unchanged() {
    let Some(blocks) = seed_yaml_blocks() else {
        eprintln!(
            "skipped: ../shared/seed is not beside the project, so the shipped copies cannot be compared"
        );
        return;
    };
    for (shipped, marker) in [
        ("examples/file-access.yaml", "File access control policy"),
        (
            "examples/agent-control.yaml",
            "Comprehensive agent control policy",
        ),
    ] {
        let block = blocks
            .iter()
            .find(|b| b.contains(marker))
            .unwrap_or_else(|| panic!("no seed block with {marker:?}"));
        let text = std::fs::read_to_string(policies().join(shipped)).unwrap();
        assert_eq!(
            &text, block,
            "{shipped} differs from the seed README's block"
        );
    }
}

#[test]
fn every_shipped_policy_loads_without_warnings_and_passes_its_tests_covering_every_rule() {
    let mut files = Vec::new();
    for dir in [policies(), policies().join("examples")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".yaml") && !name.ends_with(".tests.yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    for file in files {
        let source = read_text(&file).unwrap();
        let policy = Policy::from_source(&file.display().to_string(), &source)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            policy.warnings.is_empty(),
            "{}: {:?}",
            file.display(),
            policy.warnings
        );
        let tests = suite::load(&file, &source).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            tests.len() >= policy.rules.len(),
            "{} has {} tests",
            file.display(),
            tests.len()
        );
        let report = suite::run(&policy, &tests);
        assert!(
            report.failures.is_empty(),
            "{}:\n{}",
            file.display(),
            report.failures.join("\n")
        );
        assert!(
            report.uncovered.is_empty(),
            "{}: no test is decided by {:?}",
            file.display(),
            report.uncovered
        );
    }
}

#[test]
fn the_structured_format_loads_with_first_match_and_a_default_of_deny() {
    let policy = Policy::from_file(&policies().join("examples/structured.yaml")).unwrap();
    assert_eq!(policy.version, "v1.0.0");
    assert_eq!(policy.strategy, tame::policy::Strategy::FirstMatch);
    assert_eq!(policy.default_action, tame::policy::Action::Deny);
}

#[test]
fn the_seed_policies_decide_at_the_documented_boundaries() {
    use super::helpers::{load, request};
    use chrono::{TimeZone, Utc};
    use tame::policy::{Action, SessionView};
    let agent =
        load(&std::fs::read_to_string(policies().join("examples/agent-control.yaml")).unwrap());
    let berlin = load(
        &std::fs::read_to_string(policies().join("examples/agent-control-berlin.yaml")).unwrap(),
    );
    let at = |h, m| Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap();
    let sensitive = request("deploy", serde_json::json!({"sensitive": true}));
    let fresh = SessionView::default();
    // Berlin is UTC+1 in January: 07:59Z is 08:59 there.
    for (policy, hour_shift) in [(&agent, 0), (&berlin, 1)] {
        for (h, m, want) in [
            (8, 59, Action::Approve),
            (9, 0, Action::Deny),
            (17, 59, Action::Deny),
            (18, 0, Action::Approve),
        ] {
            let d = policy.decide(&sensitive, &fresh, at(h - hour_shift, m));
            assert_eq!(d.action, want, "{}:{:02} local, shift {hour_shift}", h, m);
        }
    }
    let api = request("api_search", serde_json::json!({}));
    for (count, rule) in [(100, None), (101, Some("rate_limit_api_calls"))] {
        let d = agent.decide(
            &api,
            &SessionView {
                action_count: count,
                ..Default::default()
            },
            at(12, 0),
        );
        assert_eq!(
            (d.action, d.rule_name.as_deref()),
            (Action::Deny, rule),
            "count {count}"
        );
    }
    let gpt4 = request("openai_completion", serde_json::json!({"model": "gpt-4"}));
    for (cost, want) in [(10.0, Action::Deny), (10.01, Action::Approve)] {
        let d = agent.decide(
            &gpt4,
            &SessionView {
                estimated_cost: cost,
                ..Default::default()
            },
            at(12, 0),
        );
        assert_eq!(d.action, want, "cost {cost}");
    }
}
