//! Evaluation never fails open. A condition that fails while running (a type
//! error, the operation limit) makes a deny or approve rule count as matched
//! and an allow rule as not matched, under both strategies, and the failure
//! is recorded in the trace (and, where the failing rule decides, the reason).

use serde_json::{Value, json};
use tame::policy::lang::runtime::MAX_OPERATIONS;
use tame::policy::{Action, Decision, Policy};

use crate::helpers::{decide, load};

/// The ways a condition can fail at run time, with the error each records.
struct Failure {
    name: &'static str,
    condition: String,
    error: String,
}

fn failures() -> Vec<Failure> {
    vec![
        Failure {
            name: "type error",
            condition: "tool_args.x < 1".into(),
            error: "cannot order a string against a number".into(),
        },
        Failure {
            name: "operation limit",
            // 3,000 items exceed the limit (hostile.rs: 1,500 do not).
            condition: crate::hostile::many_field_reads(3_000),
            error: format!("condition exceeded its limit of {MAX_OPERATIONS} operations"),
        },
        Failure {
            name: "not a boolean",
            condition: "tool_args.x".into(),
            error: "the condition produced a string, not true or false".into(),
        },
    ]
}

/// What every request in this file sends: `x` is a string, `ok` is true.
fn args() -> Value {
    json!({ "x": "a", "ok": true })
}

/// A policy of `rules`, each `(name, action, condition)`; `None` is no condition.
fn policy(strategy: &str, default: &str, rules: &[(&str, &str, Option<&str>)]) -> Policy {
    let mut text =
        format!("version: \"1\"\nstrategy: {strategy}\ndefault_action: {default}\nrules:\n");
    for (name, action, condition) in rules {
        text.push_str(&format!("  - name: {name}\n    action: {action}\n"));
        if let Some(c) = condition {
            text.push_str(&format!("    condition: |-\n      {c}\n"));
        }
    }
    load(&text)
}

fn action(name: &str) -> Action {
    match name {
        "allow" => Action::Allow,
        "deny" => Action::Deny,
        _ => Action::Approve,
    }
}

/// The trace as (rule, matched, error), for comparing whole traces.
fn trace(d: &Decision) -> Vec<(&str, bool, Option<&str>)> {
    d.trace
        .iter()
        .map(|s| (s.rule.as_str(), s.matched, s.error.as_deref()))
        .collect()
}

const STRATEGIES: [&str; 2] = ["first_match", "deny_overrides"];

#[test]
fn a_failing_deny_or_approve_rule_counts_as_matched_and_decides_with_the_error_in_its_reason() {
    for strategy in STRATEGIES {
        for rule_action in ["deny", "approve"] {
            for f in failures() {
                let case = format!("{strategy}, failing {rule_action} rule, {}", f.name);
                // The default is allow, so a decision of deny or approve can only
                // come from the failing rule.
                let p = policy(
                    strategy,
                    "allow",
                    &[("failing", rule_action, Some(&f.condition))],
                );
                let d = decide(&p, "tool", args());
                assert_eq!(d.action, action(rule_action), "{case}: {d:#?}");
                assert_eq!(d.rule_name.as_deref(), Some("failing"), "{case}");
                assert_eq!(
                    d.reason,
                    format!(
                        "Matched rule: failing (condition failed: {}; a failing {rule_action} rule counts as matched)",
                        f.error
                    ),
                    "{case}"
                );
                assert_eq!(
                    trace(&d),
                    [("failing", true, Some(f.error.as_str()))],
                    "{case}"
                );
                assert_eq!(
                    d.errors().collect::<Vec<_>>(),
                    [("failing", f.error.as_str())],
                    "{case}"
                );
            }
        }
    }
}

#[test]
fn a_failing_allow_rule_counts_as_not_matched_and_the_default_decides() {
    for strategy in STRATEGIES {
        for f in failures() {
            let case = format!("{strategy}, failing allow rule, {}", f.name);
            let p = policy(
                strategy,
                "deny",
                &[("failing", "allow", Some(&f.condition))],
            );
            let d = decide(&p, "tool", args());
            assert_eq!(d.action, Action::Deny, "{case}: {d:#?}");
            assert_eq!(d.rule_name, None, "{case}");
            // The reason names the rule that was passed over and why.
            assert_eq!(
                d.reason,
                format!(
                    "No rule matched; the policy's default is deny; rule \"failing\" failed ({}) and counted as not matched",
                    f.error
                ),
                "{case}"
            );
            assert_eq!(
                trace(&d),
                [("failing", false, Some(f.error.as_str()))],
                "{case}"
            );
        }
    }
}

#[test]
fn after_a_failing_rule_the_next_rule_is_tried_only_if_the_failing_one_did_not_decide() {
    // Each failing rule is followed by `next`, an approve rule whose own
    // condition holds: it shows that evaluation goes on normally after a failure.
    // (strategy, failing rule's action, expected action, deciding rule, rules tried)
    let table = [
        ("first_match", "deny", Action::Deny, "failing", 1),
        ("first_match", "approve", Action::Approve, "failing", 1),
        ("first_match", "allow", Action::Approve, "next", 2),
        // deny_overrides stops at the first matching deny: nothing outranks it.
        ("deny_overrides", "deny", Action::Deny, "failing", 1),
        // Both approve; the first in file order names the decision.
        ("deny_overrides", "approve", Action::Approve, "failing", 2),
        ("deny_overrides", "allow", Action::Approve, "next", 2),
    ];
    for (strategy, rule_action, expected, decider, tried) in table {
        for f in failures() {
            let case = format!(
                "{strategy}, failing {rule_action} rule then an approve rule, {}",
                f.name
            );
            let p = policy(
                strategy,
                "allow",
                &[
                    ("failing", rule_action, Some(&f.condition)),
                    ("next", "approve", Some("tool_args.ok == true")),
                ],
            );
            let d = decide(&p, "tool", args());
            assert_eq!(d.action, expected, "{case}: {d:#?}");
            assert_eq!(d.rule_name.as_deref(), Some(decider), "{case}");
            let failing_step = ("failing", rule_action != "allow", Some(f.error.as_str()));
            let mut expected_trace = vec![failing_step];
            if tried == 2 {
                expected_trace.push(("next", true, None));
            }
            assert_eq!(trace(&d), expected_trace, "{case}");
            if decider == "next" {
                assert_eq!(
                    d.reason,
                    format!(
                        "Matched rule: next; rule \"failing\" failed ({}) and counted as not matched",
                        f.error
                    ),
                    "{case}"
                );
            } else {
                assert!(d.reason.contains(&f.error), "{case}: {}", d.reason);
            }
        }
    }
}

#[test]
fn under_deny_overrides_a_failing_deny_rule_after_a_matching_allow_rule_still_denies() {
    for f in failures() {
        let p = policy(
            "deny_overrides",
            "allow",
            &[
                ("allowed", "allow", None),
                ("failing", "deny", Some(&f.condition)),
            ],
        );
        let d = decide(&p, "tool", args());
        assert_eq!(
            (d.action, d.rule_name.as_deref()),
            (Action::Deny, Some("failing")),
            "{}: {d:#?}",
            f.name
        );
        assert_eq!(
            trace(&d),
            [
                ("allowed", true, None),
                ("failing", true, Some(f.error.as_str()))
            ],
            "{}",
            f.name
        );
    }
}

#[test]
fn under_deny_overrides_a_failing_approve_rule_outranks_a_matching_allow_rule() {
    for f in failures() {
        let p = policy(
            "deny_overrides",
            "deny",
            &[
                ("allowed", "allow", None),
                ("failing", "approve", Some(&f.condition)),
            ],
        );
        let d = decide(&p, "tool", args());
        assert_eq!(
            (d.action, d.rule_name.as_deref()),
            (Action::Approve, Some("failing")),
            "{}: {d:#?}",
            f.name
        );
    }
}

#[test]
fn under_first_match_an_allow_rule_that_matches_first_decides_before_a_failing_deny_rule_runs() {
    // The failing rule is never tried, so nothing fails: first_match as documented.
    let p = policy(
        "first_match",
        "deny",
        &[
            ("allowed", "allow", None),
            ("failing", "deny", Some("tool_args.x < 1")),
        ],
    );
    let d = decide(&p, "tool", args());
    assert_eq!(
        (d.action, d.rule_name.as_deref()),
        (Action::Allow, Some("allowed"))
    );
    assert_eq!(trace(&d), [("allowed", true, None)]);
}

#[test]
fn a_failing_allow_rule_with_default_allow_gets_the_default_since_the_rule_did_not_match() {
    // Documented: an allow rule whose condition fails counts as not matched,
    // so the default applies; here it is allow. The rule itself never allows,
    // and the failure stays visible in the trace.
    for strategy in STRATEGIES {
        for f in failures() {
            let case = format!("{strategy}, {}", f.name);
            let p = policy(
                strategy,
                "allow",
                &[("failing", "allow", Some(&f.condition))],
            );
            let d = decide(&p, "tool", args());
            assert_eq!(
                (d.action, d.rule_name.as_deref()),
                (Action::Allow, None),
                "{case}"
            );
            assert_eq!(
                d.reason,
                format!(
                    "No rule matched; the policy's default is allow; rule \"failing\" failed ({}) and counted as not matched",
                    f.error
                ),
                "{case}"
            );
            assert_eq!(
                trace(&d),
                [("failing", false, Some(f.error.as_str()))],
                "{case}"
            );
        }
    }
}

#[test]
fn every_kind_of_run_time_error_fails_closed_in_deny_and_allow_rules() {
    let args = json!({
        "s": "text",
        "n": 7,
        "zero": 0,
        "big": i64::MAX,
        "list": [1, 2],
        "map": {"k": 1},
        "word": "seven",
    });
    for (condition, error) in [
        ("tool_args.s < 1", "cannot order a string against a number"),
        (
            "tool_args.list > tool_args.map",
            "cannot order a list against a mapping",
        ),
        ("tool_args.n / tool_args.zero > 1", "division by zero"),
        ("tool_args.n % tool_args.zero > 1", "modulo by zero"),
        ("tool_args.big + 1 > 0", "integer overflow in +"),
        (
            "int(tool_args.word) > 1",
            "int() cannot read \"seven\" as an integer",
        ),
        (
            "float(tool_args.word) > 1",
            "float() cannot read \"seven\" as a number",
        ),
        (
            "tool_args.n.startswith('7')",
            "startswith() needs a string, not a number",
        ),
        (
            "tool_args.n in tool_args.s",
            "'in <string>' needs a string on the left, not a number",
        ),
        (
            "'a' in tool_args.n",
            "'in' needs a string, list or mapping on the right, not a number",
        ),
        ("len(tool_args.n) > 0", "len() of a number is undefined"),
        (
            "tool_args.list[1.5] == 1",
            "an index must be an integer, not a number",
        ),
        (
            "tool_args.s + tool_args.n == 'x'",
            "unsupported operand types for +: string and number",
        ),
        (
            "tool_args.map",
            "the condition produced a mapping, not true or false",
        ),
    ] {
        for strategy in STRATEGIES {
            let deny = policy(strategy, "allow", &[("failing", "deny", Some(condition))]);
            let d = decide(&deny, "tool", args.clone());
            assert_eq!(
                (d.action, d.rule_name.as_deref()),
                (Action::Deny, Some("failing")),
                "{strategy}, deny rule, {condition}: {d:#?}"
            );
            assert_eq!(
                d.trace[0].error.as_deref(),
                Some(error),
                "{strategy}, deny rule, {condition}"
            );

            let allow = policy(strategy, "deny", &[("failing", "allow", Some(condition))]);
            let d = decide(&allow, "tool", args.clone());
            assert_eq!(
                (d.action, d.rule_name.as_deref()),
                (Action::Deny, None),
                "{strategy}, allow rule, {condition}: {d:#?}"
            );
            assert_eq!(
                d.trace[0].error.as_deref(),
                Some(error),
                "{strategy}, allow rule, {condition}"
            );
        }
    }
}

#[test]
fn a_failing_approve_rule_keeps_its_approval_ttl() {
    let text = "\
version: \"1\"
rules:
  - name: failing
    action: approve
    approval_ttl: 15m
    condition: tool_args.x < 1
";
    let d = decide(&load(text), "tool", args());
    assert_eq!((d.action, d.approval_ttl), (Action::Approve, Some(900)));
}

#[test]
fn a_short_circuited_failing_term_does_not_fail_the_condition() {
    // `and` and `or` short-circuit as in Python: a term that would fail but is
    // never reached causes no error, and the rule decides on what was evaluated.
    let p = policy(
        "first_match",
        "deny",
        &[(
            "guarded",
            "allow",
            Some("tool_args.ok == false and tool_args.x < 1"),
        )],
    );
    let d = decide(&p, "tool", args());
    assert_eq!(trace(&d), [("guarded", false, None)]);
    let p = policy(
        "first_match",
        "allow",
        &[(
            "guarded",
            "deny",
            Some("tool_args.ok == true or tool_args.x < 1"),
        )],
    );
    let d = decide(&p, "tool", args());
    assert_eq!(trace(&d), [("guarded", true, None)]);
    assert_eq!(d.reason, "Matched rule: guarded");
}
