//! Hostile inputs, each with its documented outcome: megabyte strings,
//! 10,000-element arrays and deeply nested `tool_args` are evaluated (or fail
//! closed) without crashing; conditions and YAML nested past their limits are
//! refused with a message; huge conditions and policies load and decide.
//!
//! Most tests use one rule, `hostile`, that denies when its condition holds,
//! in a policy whose default is allow: a deny shows that the condition held
//! (or failed, which for a deny rule counts as holding), an allow that it did not.

use serde_json::{Value, json};
use tame::policy::lang::runtime::{MAX_OPERATIONS, MAX_STRING};
use tame::policy::lang::syntax::MAX_LEN;
use tame::policy::yaml::MAX_DEPTH as YAML_MAX_DEPTH;
use tame::policy::{Action, Decision, Policy};

use crate::helpers::{decide, load, refuse};

const MIB: usize = 1 << 20;

/// A policy whose rule `hostile` (action `action`) has `condition` as a
/// `|-` block: the condition's text starts at line 7, column 7.
fn source_with(action: &str, condition: &str) -> String {
    format!(
        "version: \"1\"\ndefault_action: {}\nrules:\n  - name: hostile\n    action: {action}\n    condition: |-\n      {condition}\n",
        if action == "allow" { "deny" } else { "allow" }
    )
}

fn deny_if(condition: &str) -> Policy {
    load(&source_with("deny", condition))
}

/// Whether the rule's condition held, checking that it ran without error.
fn holds(policy: &Policy, args: &Value) -> bool {
    let d = decide(policy, "tool", args.clone());
    assert_eq!(d.trace.len(), 1, "{d:#?}");
    assert_eq!(d.trace[0].error, None, "the condition failed: {d:#?}");
    let expected = if d.trace[0].matched {
        Action::Deny
    } else {
        Action::Allow
    };
    assert_eq!(d.action, expected, "{d:#?}");
    d.trace[0].matched
}

/// The run-time error of the deny rule, checking that it failed closed.
fn fails_closed(policy: &Policy, args: &Value) -> String {
    let d = decide(policy, "tool", args.clone());
    assert_eq!(d.action, Action::Deny, "{d:#?}");
    assert_eq!(d.rule_name.as_deref(), Some("hostile"));
    let error = d.trace[0]
        .error
        .clone()
        .unwrap_or_else(|| panic!("the condition did not fail: {d:#?}"));
    assert!(
        d.reason.contains(&format!("condition failed: {error}")),
        "{}",
        d.reason
    );
    error
}

/// The error of a condition refused at load time, printed.
fn refused(condition: &str) -> String {
    let e = refuse(&source_with("deny", condition));
    assert_eq!(e.errors.len(), 1, "{e}");
    e.errors[0].to_string()
}

// ------------------------------------------------------------ big strings

/// A 1 MiB string: `x` repeated, ending in `tail`.
fn mebibyte() -> String {
    let mut s = "x".repeat(MIB - 4);
    s.push_str("tail");
    assert_eq!(s.len(), MIB);
    s
}

#[test]
fn a_one_mebibyte_string_is_searched_measured_and_lowered_like_any_other() {
    let args = json!({ "s": mebibyte(), "upper": mebibyte().to_uppercase() });
    for (condition, expected) in [
        ("tool_args.s.startswith('xxx')", true),
        ("tool_args.s.startswith(['nope', 'xtail'])", false),
        ("tool_args.s.endswith('xtail')", true),
        ("'xtail' in tool_args.s", true),
        ("'nope' in tool_args.s", false),
        ("tool_args.s.contains('xxtail')", true),
        ("len(tool_args.s) == 1048576", true),
        ("tool_args.upper.lower() == tool_args.s", true),
        ("tool_args.s.upper().endswith('XTAIL')", true),
        ("tool_args.s.matches('x+tail$')", true),
        ("tool_args.s.glob('*tail')", true),
    ] {
        assert_eq!(holds(&deny_if(condition), &args), expected, "{condition}");
    }
}

#[test]
fn the_length_of_a_big_string_counts_characters_not_bytes() {
    // 512 Ki two-byte characters: one MiB of UTF-8.
    let args = json!({ "s": "é".repeat(MIB / 2) });
    assert!(holds(&deny_if("len(tool_args.s) == 524288"), &args));
}

#[test]
fn concatenating_big_strings_works_up_to_the_four_mebibyte_limit() {
    assert_eq!(MAX_STRING, 4 * MIB);
    let args = json!({ "s": mebibyte() });
    assert!(holds(
        &deny_if("len(tool_args.s + tool_args.s) == 2097152"),
        &args
    ));
    assert!(holds(
        // `+` binds tighter than `in`: `tailxxx` occurs only where the copies meet.
        &deny_if("'tailxxx' in tool_args.s + tool_args.s"),
        &args
    ));
    // Exactly 4 MiB is still within the limit.
    assert!(holds(
        &deny_if("len(tool_args.s + tool_args.s + tool_args.s + tool_args.s) == 4194304"),
        &args
    ));
}

#[test]
fn a_condition_building_a_string_past_the_limit_fails_closed() {
    let args = json!({ "s": mebibyte() });
    let five = "len(tool_args.s + tool_args.s + tool_args.s + tool_args.s + tool_args.s) > 0";
    assert_eq!(
        fails_closed(&deny_if(five), &args),
        "string longer than 4194304 bytes"
    );
    // The same condition in an allow rule does not match: the default (deny) applies.
    let allow = load(&source_with("allow", five));
    let d = decide(&allow, "tool", args);
    assert_eq!((d.action, d.rule_name.as_deref()), (Action::Deny, None));
    assert_eq!(
        d.trace[0].error.as_deref(),
        Some("string longer than 4194304 bytes")
    );
}

#[test]
fn str_of_values_past_the_string_limit_fails_closed() {
    // MAX_STRING is "the longest string an operation in a condition may
    // build", yet str() of five 1 MiB strings builds one of 5 MiB.
    let args = json!({ "s": mebibyte() });
    let condition =
        "len(str([tool_args.s, tool_args.s, tool_args.s, tool_args.s, tool_args.s])) > 0";
    assert_eq!(
        fails_closed(&deny_if(condition), &args),
        "string longer than 4194304 bytes"
    );
}

// ------------------------------------------------------------- big arrays

#[test]
fn a_ten_thousand_element_array_is_searched_counted_and_indexed() {
    let items: Vec<i64> = (0..10_000).collect();
    let mut flags = vec![false; 10_000];
    flags[9_999] = true;
    let paths: Vec<String> = (0..10_000).map(|i| format!("/data/{i}")).collect();
    let args = json!({
        "items": items,
        "flags": flags,
        "none": vec![false; 10_000],
        "paths": paths,
    });
    for (condition, expected) in [
        ("9999 in tool_args.items", true),
        ("10000 in tool_args.items", false),
        ("10000 not in tool_args.items", true),
        ("'/data/5000' in tool_args.paths", true),
        ("tool_args.paths.contains('/data/10000')", false),
        ("len(tool_args.items) == 10000", true),
        ("any(tool_args.flags)", true),
        ("any(tool_args.none)", false),
        ("all(tool_args.items)", false),
        ("tool_args.items[-1] == 9999", true),
        ("tool_args.items[10000] is None", true),
        ("str(tool_args.items).endswith(', 9998, 9999]')", true),
    ] {
        assert_eq!(holds(&deny_if(condition), &args), expected, "{condition}");
    }
}

// ----------------------------------------------------------- deep nesting

/// `{"a": {"a": ... {"a": "leaf"} ... }}`: `levels` objects, as JSON text.
fn nested_objects(levels: usize) -> String {
    format!(
        "{}\"leaf\"{}",
        "{\"a\": ".repeat(levels),
        "}".repeat(levels)
    )
}

#[test]
fn serde_json_refuses_more_than_127_levels_so_127_is_the_deepest_request() {
    assert!(serde_json::from_str::<Value>(&nested_objects(127)).is_ok());
    for levels in [128, 129, 1000] {
        let e = serde_json::from_str::<Value>(&nested_objects(levels))
            .expect_err("serde_json's recursion limit");
        assert!(
            e.to_string().starts_with("recursion limit exceeded"),
            "{levels} levels: {e}"
        );
    }
    let arrays = format!("{}{}", "[".repeat(128), "]".repeat(128));
    assert!(serde_json::from_str::<Value>(&arrays).is_err());
}

#[test]
fn tool_args_nested_127_levels_deep_are_evaluated() {
    let args: Value = serde_json::from_str(&nested_objects(127)).unwrap();
    let leaf_end = format!("{{'a': 'leaf'}}{}", "}".repeat(126));
    let sixty_three = format!("tool_args{}", ".a".repeat(63));
    for (condition, expected) in [
        (
            "tool_args.a.a.a.a.a.a.a.a.a.a is not None".to_string(),
            true,
        ),
        ("tool_args.a.a.b.a is None".to_string(), true),
        // The longest chain of fields a condition may write reaches level 64.
        (format!("{sixty_three} != None"), true),
        (format!("'a' in {sixty_three}"), true),
        // The leaf, 127 levels down, through str(): 127 × `{'a': ` and `}` plus `'leaf'`.
        (format!("str(tool_args).endswith(\"{leaf_end}\")"), true),
        ("len(str(tool_args)) == 895".to_string(), true),
        ("'leaf' in str(tool_args)".to_string(), true),
    ] {
        assert_eq!(holds(&deny_if(&condition), &args), expected, "{condition}");
    }
}

#[test]
fn deeply_nested_arrays_in_tool_args_are_evaluated() {
    // One object around 126 arrays: 127 levels.
    let text = format!("{{\"a\": {}\"leaf\"{}}}", "[".repeat(126), "]".repeat(126));
    let args: Value = serde_json::from_str(&text).unwrap();
    // Each index is two levels of a condition's nesting: 25 of them fit.
    let deep = format!("tool_args.a{}", "[0]".repeat(25));
    for (condition, expected) in [
        (format!("len({deep}) == 1"), true),
        (format!("{deep}[1] is None"), true),
        (
            format!("str(tool_args.a).endswith(\"['leaf'{}\")", "]".repeat(126)),
            true,
        ),
    ] {
        assert_eq!(holds(&deny_if(&condition), &args), expected, "{condition}");
    }
}

#[test]
fn a_chain_of_sixty_four_fields_is_refused_with_the_nesting_message() {
    let condition = format!("tool_args{} != None", ".a".repeat(64));
    assert_eq!(
        refused(&condition),
        "test.yaml:7:7 rule \"hostile\": condition nests deeper than 64 levels"
    );
}

// ------------------------------------------------------- huge conditions

/// `tool_args.k == 't0' or tool_args.k == 't1' or ...`: not pinned to a
/// tool, so a miss evaluates every term.
fn or_chain(terms: usize) -> String {
    (0..terms)
        .map(|i| format!("tool_args.k == 't{i}'"))
        .collect::<Vec<_>>()
        .join(" or ")
}

#[test]
fn a_condition_of_a_thousand_or_terms_decides_on_the_first_middle_and_last_term() {
    let policy = deny_if(&or_chain(1_000));
    for (k, expected) in [
        ("t0", true),
        ("t500", true),
        ("t999", true),
        ("t1000", false),
    ] {
        assert_eq!(holds(&policy, &json!({ "k": k })), expected, "k = {k}");
    }
}

#[test]
fn a_condition_of_ten_thousand_or_terms_loads_and_decides_on_the_first_middle_and_last_term() {
    let condition = or_chain(10_000);
    assert!(condition.len() < MAX_LEN);
    let policy = deny_if(&condition);
    for (k, expected) in [
        ("t0", true),
        ("t5000", true),
        ("t9999", true),
        ("t10000", false),
    ] {
        assert_eq!(holds(&policy, &json!({ "k": k })), expected, "k = {k}");
    }
}

#[test]
fn five_thousand_nested_parentheses_are_refused_at_the_sixty_fifth_level() {
    // Each `(` counts twice (the parenthesis and the expression inside it),
    // after one for the whole condition: the 65th level is the expression
    // inside the 32nd `(`, at offset 32, column 7 + 32 = 39.
    let condition = format!("{}true{}", "(".repeat(5_000), ")".repeat(5_000));
    assert_eq!(
        refused(&condition),
        "test.yaml:7:39 rule \"hostile\": condition nests deeper than 64 levels"
    );
}

#[test]
fn five_thousand_chained_nots_are_refused_at_the_sixty_fourth_not() {
    // The whole condition is level 1 and the n-th `not` level n + 1: the
    // 64th `not` (offset 63 × 4 = 252, column 7 + 252 = 259) is level 65.
    let condition = format!("{}true", "not ".repeat(5_000));
    assert_eq!(
        refused(&condition),
        "test.yaml:7:259 rule \"hostile\": condition nests deeper than 64 levels"
    );
}

#[test]
fn a_five_thousand_term_sum_is_refused_at_its_start() {
    // `1 + 1 + ...` nests to the left: each `+` is a level, and the error
    // points where the too-deep sum starts, at the first term.
    let condition = format!("1{} > 0", " + 1".repeat(5_000));
    assert_eq!(
        refused(&condition),
        "test.yaml:7:7 rule \"hostile\": condition nests deeper than 64 levels"
    );
}

#[test]
fn a_condition_over_the_size_limit_is_refused_and_one_at_the_limit_loads() {
    assert_eq!(MAX_LEN, 256 * 1024);
    // `tool_args.k == '` is 16 bytes and the closing quote 1.
    let at_limit = format!("tool_args.k == '{}'", "p".repeat(MAX_LEN - 17));
    assert_eq!(at_limit.len(), MAX_LEN);
    assert!(!holds(&deny_if(&at_limit), &json!({ "k": "p" })));

    let over = format!("tool_args.k == '{}'", "p".repeat(MAX_LEN - 16));
    assert_eq!(
        refused(&over),
        "test.yaml:7:7 rule \"hostile\": condition is 262145 bytes long; the limit is 262144"
    );
}

#[test]
fn yaml_nested_past_its_limit_is_refused_with_a_message() {
    assert_eq!(YAML_MAX_DEPTH, 128);
    // The top-level mapping is the first level: 127 lists fit beneath it.
    let fits = format!(
        "version: \"1\"\nrules: []\ndescription: {}{}\n",
        "[".repeat(127),
        "]".repeat(127)
    );
    assert_eq!(
        refuse(&fits).to_string(),
        "test.yaml:3:14: description must be a string, not a list"
    );
    // The 128th list is refused where it opens: `description: ` is 13
    // characters, so the first `[` is at column 14 and the 128th at 141.
    let too_deep = format!(
        "version: \"1\"\nrules: []\ndescription: {}{}\n",
        "[".repeat(128),
        "]".repeat(128)
    );
    assert_eq!(
        refuse(&too_deep).to_string(),
        "test.yaml:3:141: invalid YAML: nesting deeper than 128 levels"
    );
    // Far deeper is refused without exhausting the stack, by the YAML
    // scanner itself: it reads ahead of the parser and stops at 256 open
    // brackets (column 14 + 255 = 269), before the tree reaches 128 levels.
    let hostile = format!(
        "version: \"1\"\nrules: []\ndescription: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        refuse(&hostile).to_string(),
        "test.yaml:3:269: invalid YAML: recursion limit exceeded"
    );
}

// ------------------------------------------------------ the operation limit

/// `len([[tool_args][0].a.a…, ...]) > 0` with `items` items. Each item is
/// thirty nested field reads below an indexed list, so that none is a fixed
/// path read up front (measured: 2,106 items are the fewest that exceed the
/// limit); a list literal, unlike an `and` chain, nests no deeper however
/// long it is.
pub(crate) fn many_field_reads(items: usize) -> String {
    let item = format!("[tool_args][0]{}", ".a".repeat(30));
    format!("len([{}]) > 0", vec![item; items].join(", "))
}

#[test]
fn a_condition_exceeding_the_operation_limit_fails_closed_with_the_limit_named() {
    assert_eq!(MAX_OPERATIONS, 200_000);
    let condition = many_field_reads(3_000);
    assert!(condition.len() < MAX_LEN, "{} bytes", condition.len());
    assert_eq!(
        fails_closed(&deny_if(&condition), &json!({})),
        format!("condition exceeded its limit of {MAX_OPERATIONS} operations")
    );
}

#[test]
fn the_same_condition_at_half_the_size_stays_within_the_operation_limit() {
    assert!(holds(&deny_if(&many_field_reads(1_500)), &json!({})));
}

// ------------------------------------------------------- huge policies

/// A policy of `count` rules `rule_<i>`, alternately deny and allow, each
/// with `pin(i)` as its line after the action.
fn many_rules(strategy: &str, count: usize, pin: impl Fn(usize) -> String) -> String {
    let mut text = format!("version: \"1\"\nstrategy: {strategy}\nrules:\n");
    for i in 0..count {
        let action = if i % 2 == 0 { "deny" } else { "allow" };
        text.push_str(&format!(
            "  - name: rule_{i}\n    action: {action}\n    {}\n",
            pin(i)
        ));
    }
    text
}

fn decided(d: &Decision) -> (Action, Option<&str>, usize) {
    (d.action, d.rule_name.as_deref(), d.trace.len())
}

#[test]
fn ten_thousand_rules_pinned_by_condition_load_and_a_request_tries_only_its_own() {
    let policy = load(&many_rules("first_match", 10_000, |i| {
        format!("condition: tool_name == 'tool_{i}'")
    }));
    assert_eq!(policy.rules.len(), 10_000);
    let d = decide(&policy, "tool_9998", json!({}));
    assert_eq!(decided(&d), (Action::Deny, Some("rule_9998"), 1));
    let d = decide(&policy, "tool_9999", json!({}));
    assert_eq!(decided(&d), (Action::Allow, Some("rule_9999"), 1));
    // A tool no rule names tries none and gets the default.
    let d = decide(&policy, "tool_10000", json!({}));
    assert_eq!(decided(&d), (Action::Deny, None, 0));
}

#[test]
fn ten_thousand_rules_pinned_by_tools_load_and_a_request_tries_only_its_own() {
    // deny_overrides: see the ignored test below for first_match.
    let policy = load(&many_rules("deny_overrides", 10_000, |i| {
        format!("tools: [tool_{i}]")
    }));
    let d = decide(&policy, "tool_9998", json!({}));
    assert_eq!(decided(&d), (Action::Deny, Some("rule_9998"), 1));
    let d = decide(&policy, "tool_9999", json!({}));
    assert_eq!(decided(&d), (Action::Allow, Some("rule_9999"), 1));
}

#[test]
fn ten_thousand_rules_pinned_by_tools_load_in_seconds_under_first_match() {
    let text = many_rules("first_match", 10_000, |i| format!("tools: [tool_{i}]"));
    let started = std::time::Instant::now();
    let policy = load(&text);
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "loading took {took:?}"
    );
    let d = decide(&policy, "tool_9998", json!({}));
    assert_eq!(decided(&d), (Action::Deny, Some("rule_9998"), 1));
}

#[test]
fn ten_thousand_unpinned_rules_load_and_the_right_one_decides() {
    let policy = load(&many_rules("first_match", 10_000, |i| {
        format!("condition: tool_args.n == {i}")
    }));
    // Every rule applies to every tool: the request tries them in order.
    let d = decide(&policy, "any_tool", json!({ "n": 9_998 }));
    assert_eq!(decided(&d), (Action::Deny, Some("rule_9998"), 9_999));
    assert!(
        d.trace[..9_998]
            .iter()
            .all(|s| !s.matched && s.error.is_none())
    );
    let d = decide(&policy, "any_tool", json!({ "n": -1 }));
    assert_eq!(decided(&d), (Action::Deny, None, 10_000));
    assert_eq!(d.reason, "No rule matched; the policy's default is deny");
}
