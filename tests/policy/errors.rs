//! Every class of load error, as its author reads it: the file, the line and
//! column in the YAML text, the rule, and what was expected instead.
//!
//! Most tests compare the whole printed diagnostic,
//! `test.yaml:line:col rule "name": message`, so that a change to any part of
//! it (position, rule, wording) shows up here.

use tame::policy::{Diagnostic, Policy, Severity};

use crate::helpers::{load, refuse};

/// The errors of a refused policy, printed one per entry.
fn errors(source: &str) -> Vec<String> {
    refuse(source)
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The single error of a refused policy, printed.
fn error(source: &str) -> String {
    let all = errors(source);
    assert_eq!(all.len(), 1, "expected exactly one error, got {all:#?}");
    all.into_iter().next().unwrap()
}

/// A policy whose only rule, `r`, has `condition: ` followed by `yaml` as
/// written. The condition key is on line 5, and `    condition: ` is 15
/// characters, so a plain value starts at column 16 and a quoted one at 17
/// (its quote is at 16).
fn with_condition(yaml: &str) -> String {
    format!("version: \"1\"\nrules:\n  - name: r\n    action: deny\n    condition: {yaml}\n")
}

/// The printed error of `condition` written as a plain scalar on line 5.
fn plain_condition_error(condition: &str) -> String {
    error(&with_condition(condition))
}

fn warnings(policy: &Policy) -> Vec<String> {
    policy.warnings.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------- the YAML

#[test]
fn invalid_yaml_is_refused_at_the_position_the_yaml_reader_stopped() {
    // Line 5 is indented three spaces: neither a key of the rule (four) nor a
    // new list item (two). The reader gives up at the `:` after `bad`
    // (three spaces, `bad`: column 7).
    let source = "\
version: \"1\"
rules:
  - name: a
    action: deny
   bad: x
";
    assert_eq!(
        error(source),
        "test.yaml:5:7: invalid YAML: while parsing a block collection, did not find expected '-' indicator"
    );
}

#[test]
fn an_unterminated_quoted_yaml_string_is_refused_where_the_string_starts() {
    let source = "version: \"1\"\nrules:\n  - name: \"a\n";
    // `  - name: ` is ten characters: the opening quote is at column 11.
    assert_eq!(
        error(source),
        "test.yaml:3:11: invalid YAML: while scanning a quoted scalar, found unexpected end of stream"
    );
}

#[test]
fn a_top_level_that_is_not_a_mapping_is_refused() {
    assert_eq!(
        error("- name: a\n  action: deny\n"),
        "test.yaml:1:1: the policy must be a mapping, not a list"
    );
    assert_eq!(
        error("just some text\n"),
        "test.yaml:1:1: the policy must be a mapping, not a string"
    );
}

#[test]
fn an_unknown_top_level_key_is_refused_with_a_suggestion() {
    let source = "version: \"1\"\nstrategey: first_match\nrules: []\n";
    assert_eq!(
        error(source),
        "test.yaml:2:1: unknown key \"strategey\" in the policy (did you mean \"strategy\"?)"
    );
}

#[test]
fn an_unknown_top_level_key_with_no_near_miss_lists_the_keys_allowed() {
    let source = "version: \"1\"\nowner: ops\nrules: []\n";
    assert_eq!(
        error(source),
        "test.yaml:2:1: unknown key \"owner\" in the policy (expected one of: version, description, default_action, strategy, timezone, rules, tests)"
    );
}

#[test]
fn a_missing_version_is_refused_at_the_start_of_the_policy() {
    assert_eq!(
        error("rules: []\n"),
        "test.yaml:1:1: missing \"version\": every policy needs one, e.g. version: \"1.0\""
    );
}

#[test]
fn a_version_that_is_not_a_string_is_refused() {
    // `version: ` is nine characters: the list starts at column 10.
    assert_eq!(
        error("version: [1]\nrules: []\n"),
        "test.yaml:1:10: version must be a string, not a list"
    );
}

#[test]
fn missing_rules_are_refused_with_how_to_write_an_empty_list() {
    assert_eq!(
        error("version: \"1\"\n"),
        "test.yaml:1:1: missing \"rules\": a policy needs a list of rules (it may be empty: rules: [])"
    );
}

#[test]
fn an_empty_file_is_missing_both_version_and_rules() {
    assert_eq!(
        errors(""),
        [
            "test.yaml:1:1: missing \"version\": every policy needs one, e.g. version: \"1.0\"",
            "test.yaml:1:1: missing \"rules\": a policy needs a list of rules (it may be empty: rules: [])",
        ]
    );
}

#[test]
fn rules_that_are_not_a_list_are_refused() {
    // `rules: ` is seven characters: the value starts at column 8.
    assert_eq!(
        error("version: \"1\"\nrules: \"none\"\n"),
        "test.yaml:2:8: rules must be a list, not a string"
    );
    // A flow mapping is placed at its first key, one past the brace.
    assert_eq!(
        error("version: \"1\"\nrules: {a: 1}\n"),
        "test.yaml:2:9: rules must be a list, not a mapping"
    );
}

#[test]
fn a_rule_that_is_not_a_mapping_is_refused() {
    // `  - ` is four characters: the item starts at column 5.
    assert_eq!(
        error("version: \"1\"\nrules:\n  - deny everything\n"),
        "test.yaml:3:5: a rule must be a mapping, not a string"
    );
}

#[test]
fn a_rule_without_a_name_is_refused_where_the_rule_starts() {
    let source = "version: \"1\"\nrules:\n  - action: deny\n    reason: no\n";
    assert_eq!(error(source), "test.yaml:3:5: rule has no \"name\"");
}

#[test]
fn a_rule_name_that_is_not_a_string_is_refused() {
    let source = "version: \"1\"\nrules:\n  - name: [a, b]\n    action: deny\n";
    // `  - name: ` is ten characters: the list starts at column 11.
    assert_eq!(
        error(source),
        "test.yaml:3:11: name must be a string, not a list"
    );
}

#[test]
fn a_duplicate_rule_name_is_refused_at_the_second_and_names_the_first() {
    let source = "\
version: \"1\"
rules:
  - name: no_secrets
    action: deny
  - name: other
    action: allow
  - name: no_secrets
    action: allow
";
    let refused = refuse(source);
    assert_eq!(refused.errors.len(), 1, "{refused}");
    let d = &refused.errors[0];
    assert_eq!((d.line, d.column), (7, 5), "at the second definition");
    assert_eq!(d.rule.as_deref(), Some("no_secrets"));
    assert_eq!(d.message, "duplicate rule name (first defined at line 3)");
}

#[test]
fn an_unknown_rule_key_is_refused_with_a_suggestion_and_the_rule_named() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    reson: \"no\"
";
    assert_eq!(
        error(source),
        "test.yaml:5:5 rule \"r\": unknown key \"reson\" in a rule (did you mean \"reason\"?)"
    );
}

#[test]
fn a_misspelled_action_key_reports_both_the_unknown_key_and_the_missing_action() {
    let source = "version: \"1\"\nrules:\n  - name: r\n    acton: deny\n";
    assert_eq!(
        errors(source),
        [
            "test.yaml:3:5 rule \"r\": rule has no \"action\" (allow, deny or approve)",
            "test.yaml:4:5 rule \"r\": unknown key \"acton\" in a rule (did you mean \"action\"?)",
        ]
    );
}

#[test]
fn a_missing_action_is_refused_where_the_rule_starts() {
    let source = "version: \"1\"\nrules:\n  - name: r\n    tools: [read_file]\n";
    assert_eq!(
        error(source),
        "test.yaml:3:5 rule \"r\": rule has no \"action\" (allow, deny or approve)"
    );
}

#[test]
fn an_invalid_action_is_refused_with_a_suggestion() {
    // `    action: ` is twelve characters: the value starts at column 13.
    let source = "version: \"1\"\nrules:\n  - name: r\n    action: alow\n";
    assert_eq!(
        error(source),
        "test.yaml:4:13 rule \"r\": action must be allow, deny or approve, not \"alow\" (did you mean \"allow\"?)"
    );
}

#[test]
fn an_action_that_is_not_a_string_is_refused() {
    let source = "version: \"1\"\nrules:\n  - name: r\n    action: [deny]\n";
    assert_eq!(
        error(source),
        "test.yaml:4:13 rule \"r\": action must be a string, not a list"
    );
}

#[test]
fn an_invalid_default_action_is_refused_with_or_without_a_suggestion() {
    // `default_action: ` is sixteen characters: the value starts at column 17.
    assert_eq!(
        error("version: \"1\"\ndefault_action: denny\nrules: []\n"),
        "test.yaml:2:17: default_action must be allow, deny or approve, not \"denny\" (did you mean \"deny\"?)"
    );
    assert_eq!(
        error("version: \"1\"\ndefault_action: permit\nrules: []\n"),
        "test.yaml:2:17: default_action must be allow, deny or approve, not \"permit\""
    );
}

#[test]
fn an_invalid_strategy_is_refused_with_or_without_a_suggestion() {
    // `strategy: ` is ten characters: the value starts at column 11.
    assert_eq!(
        error("version: \"1\"\nstrategy: deny_override\nrules: []\n"),
        "test.yaml:2:11: strategy must be first_match or deny_overrides, not \"deny_override\" (did you mean \"deny_overrides\"?)"
    );
    assert_eq!(
        error("version: \"1\"\nstrategy: random\nrules: []\n"),
        "test.yaml:2:11: strategy must be first_match or deny_overrides, not \"random\""
    );
}

#[test]
fn an_unknown_timezone_is_refused_with_a_suggestion_and_an_example() {
    // `timezone: ` is ten characters: the value starts at column 11.
    assert_eq!(
        error("version: \"1\"\ntimezone: Europe/Berln\nrules: []\n"),
        "test.yaml:2:11: unknown timezone \"Europe/Berln\" (did you mean \"Europe/Berlin\"?); use an IANA name such as \"Europe/Berlin\""
    );
    assert_eq!(
        error("version: \"1\"\ntimezone: Mars/Olympus\nrules: []\n"),
        "test.yaml:2:11: unknown timezone \"Mars/Olympus\"; use an IANA name such as \"Europe/Berlin\""
    );
}

#[test]
fn tools_that_are_not_a_list_are_refused() {
    // `    tools: ` is eleven characters: the value starts at column 12.
    let source = "version: \"1\"\nrules:\n  - name: r\n    action: deny\n    tools: read_file\n";
    assert_eq!(
        error(source),
        "test.yaml:5:12 rule \"r\": tools must be a list of tool names or globs, not a string"
    );
}

#[test]
fn an_invalid_tool_glob_is_refused_at_the_pattern_with_the_reason() {
    // `    tools: [` is twelve characters: the second pattern's quote is at
    // column 13 + len("\"ok\", ") = 19.
    let source = "version: \"1\"\nrules:\n  - name: r\n    action: deny\n    tools: [\"ok\", \"read_[file\"]\n";
    assert_eq!(
        error(source),
        "test.yaml:5:19 rule \"r\": invalid tool glob \"read_[file\": unclosed character class; missing ']'"
    );
}

#[test]
fn enabled_must_be_a_plain_boolean() {
    // `    enabled: ` is thirteen characters: the value starts at column 14.
    // YAML 1.2 reads `yes` as a string, and a quoted "true" is a string too.
    for value in ["yes", "\"true\""] {
        let source = format!(
            "version: \"1\"\nrules:\n  - name: r\n    action: deny\n    enabled: {value}\n"
        );
        assert_eq!(
            error(&source),
            "test.yaml:5:14 rule \"r\": enabled must be true or false, not a string",
            "enabled: {value}"
        );
    }
}

#[test]
fn an_invalid_approval_ttl_is_refused_with_examples_and_the_limit() {
    // `    approval_ttl: ` is eighteen characters: the value starts at column 19.
    for value in ["15x", "31d", "0", "soon"] {
        let source = format!(
            "version: \"1\"\nrules:\n  - name: r\n    action: approve\n    approval_ttl: {value}\n"
        );
        assert_eq!(
            error(&source),
            format!(
                "test.yaml:5:19 rule \"r\": approval_ttl must be a duration such as 900, \"90s\", \"15m\" or \"2h\" (at most 30 days), not \"{value}\""
            ),
            "approval_ttl: {value}"
        );
    }
    // The accepted forms, for contrast.
    for value in ["900", "90s", "15m", "2h", "30d"] {
        let source = format!(
            "version: \"1\"\nrules:\n  - name: r\n    action: approve\n    approval_ttl: {value}\n"
        );
        load(&source);
    }
}

#[test]
fn a_rule_with_both_condition_and_conditions_is_refused_at_conditions() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: \"true\"
    conditions:
      arg_contains: {path: \"*\"}
";
    // A block mapping is placed at its first key: line 7, column 7.
    assert_eq!(
        error(source),
        "test.yaml:7:7 rule \"r\": a rule has either \"condition\" or \"conditions\", not both"
    );
}

#[test]
fn an_unknown_structured_conditions_key_is_refused_with_a_suggestion() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    conditions:
      arg_contain: {path: \"*\"}
";
    assert_eq!(
        error(source),
        "test.yaml:6:7 rule \"r\": unknown key \"arg_contain\" in conditions (did you mean \"arg_contains\"?)"
    );
}

#[test]
fn a_structured_condition_value_that_is_not_a_mapping_is_refused() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    conditions:
      arg_contains: [path]
";
    // `      arg_contains: ` is twenty characters: the list starts at column 21.
    assert_eq!(
        error(source),
        "test.yaml:6:21 rule \"r\": conditions.arg_contains must be a mapping of argument names to values (\"*\" for any), not a list"
    );
}

#[test]
fn structured_conditions_that_are_not_a_mapping_are_refused() {
    let source = "version: \"1\"\nrules:\n  - name: r\n    action: deny\n    conditions: [path]\n";
    // `    conditions: ` is sixteen characters: the list starts at column 17.
    assert_eq!(
        error(source),
        "test.yaml:5:17 rule \"r\": conditions must be a mapping, not a list"
    );
}

#[test]
fn a_yaml_anchor_is_refused_at_the_anchored_node() {
    let source = "\
version: \"1\"
rules:
  - name: a
    tools: &reads [read_file]
    action: deny
  - name: b
    tools: *reads
    action: allow
";
    // `    tools: &reads ` is eighteen characters: the anchored list is at column 19.
    assert_eq!(
        error(source),
        "test.yaml:4:19: invalid YAML: YAML anchors (&name) are not allowed"
    );
}

#[test]
fn a_yaml_alias_without_an_anchor_is_refused_too() {
    // No anchor is ever accepted, so an alias can only name an unknown one.
    let source = "version: \"1\"\nrules:\n  - name: a\n    action: *deny\n";
    assert_eq!(
        error(source),
        "test.yaml:4:13: invalid YAML: while parsing node, found unknown anchor"
    );
}

#[test]
fn a_duplicate_yaml_key_is_refused_at_the_second_and_names_the_first() {
    assert_eq!(
        error("version: \"1\"\nrules: []\nrules: []\n"),
        "test.yaml:3:1: invalid YAML: duplicate key \"rules\" (first at line 2)"
    );
    let in_a_rule = "version: \"1\"\nrules:\n  - name: r\n    action: allow\n    action: deny\n";
    assert_eq!(
        error(in_a_rule),
        "test.yaml:5:5: invalid YAML: duplicate key \"action\" (first at line 4)"
    );
}

#[test]
fn a_second_yaml_document_is_refused() {
    let source = "version: \"1\"\nrules: []\n---\nversion: \"2\"\nrules: []\n";
    // The second document starts at its `---` marker, line 3.
    assert_eq!(
        error(source),
        "test.yaml:3:1: invalid YAML: only one YAML document is allowed per file"
    );
}

// ------------------------------------------------- conditions: syntax errors

#[test]
fn an_unterminated_string_in_a_condition_is_refused_where_it_starts() {
    // The quote is at offset 18 of the condition: column 16 + 18 = 34.
    assert_eq!(
        plain_condition_error("tool_args.path == 'abc"),
        "test.yaml:5:34 rule \"r\": unterminated string"
    );
}

#[test]
fn an_unexpected_token_in_a_condition_is_refused_at_the_token() {
    // The second `==` is at offset 18: column 34.
    assert_eq!(
        plain_condition_error("tool_args.path == == 1"),
        "test.yaml:5:34 rule \"r\": expected a value, found \"==\""
    );
    // A keyword where a value belongs: the second `or` is at offset 20: column 36.
    assert_eq!(
        plain_condition_error("tool_args.a == 1 or or tool_args.b"),
        "test.yaml:5:36 rule \"r\": expected a value, found the keyword \"or\""
    );
    // Two expressions side by side: `tool_args.b` is at offset 17: column 33.
    assert_eq!(
        plain_condition_error("tool_args.a == 1 tool_args.b"),
        "test.yaml:5:33 rule \"r\": unexpected \"tool_args\" after the end of the expression"
    );
}

#[test]
fn a_missing_operand_is_refused_at_the_end_of_the_condition() {
    // `tool_args.count >` is 17 bytes: the end is column 16 + 17 = 33.
    assert_eq!(
        plain_condition_error("tool_args.count >"),
        "test.yaml:5:33 rule \"r\": unexpected end of condition; an operand is missing"
    );
    // `tool_args.a == 1 and` is 20 bytes: column 36.
    assert_eq!(
        plain_condition_error("tool_args.a == 1 and"),
        "test.yaml:5:36 rule \"r\": unexpected end of condition; an operand is missing"
    );
}

#[test]
fn an_unclosed_parenthesis_is_refused_at_the_end_of_the_condition() {
    // 38 bytes: the end is column 16 + 38 = 54.
    assert_eq!(
        plain_condition_error("(tool_args.a == 1 and tool_args.b == 2"),
        "test.yaml:5:54 rule \"r\": expected \")\" to close the parenthesis, found end of condition"
    );
}

#[test]
fn rust_style_and_and_not_are_refused_with_the_python_spelling() {
    // `&&` is at offset 17: column 33.
    assert_eq!(
        plain_condition_error("tool_args.a == 1 && tool_args.b == 2"),
        "test.yaml:5:33 rule \"r\": unexpected \"&&\"; write `and` / `or`"
    );
    assert_eq!(
        plain_condition_error("tool_args.a == 1 || tool_args.b == 2"),
        "test.yaml:5:33 rule \"r\": unexpected \"||\"; write `and` / `or`"
    );
    // A plain `!` would be a YAML tag, so it is quoted: column 17 is the `!`.
    assert_eq!(
        plain_condition_error("'!tool_args.flag'"),
        "test.yaml:5:17 rule \"r\": unexpected \"!\"; write `not`"
    );
}

#[test]
fn floor_division_and_power_are_refused_as_not_part_of_the_language() {
    // `//` is at offset 12: column 28.
    assert_eq!(
        plain_condition_error("tool_args.n // 2 == 1"),
        "test.yaml:5:28 rule \"r\": `//` (floor division) is not part of the language; use int(a / b)"
    );
    assert_eq!(
        plain_condition_error("tool_args.n ** 2 == 1"),
        "test.yaml:5:28 rule \"r\": `**` (power) is not part of the language"
    );
}

#[test]
fn is_with_anything_but_none_is_refused_at_the_is() {
    // `is` is at offset 15: column 31.
    for condition in ["tool_args.path is 'x'", "tool_args.path is not 3"] {
        assert_eq!(
            plain_condition_error(condition),
            "test.yaml:5:31 rule \"r\": `is` can only test for None: write `x is None` or `x is not None` (use == to compare values)",
            "{condition}"
        );
    }
    load(&with_condition("tool_args.path is not None"));
}

#[test]
fn an_empty_condition_is_refused() {
    assert_eq!(
        plain_condition_error("\"\""),
        "test.yaml:5:17 rule \"r\": condition is empty"
    );
}

#[test]
fn a_condition_that_is_not_a_string_is_refused() {
    assert_eq!(
        plain_condition_error("[a, b]"),
        "test.yaml:5:16 rule \"r\": condition must be a string, not a list"
    );
}

// ------------------------------------------- conditions: names and methods

#[test]
fn an_unknown_name_is_refused_with_a_suggestion() {
    assert_eq!(
        plain_condition_error("tool_arg.path == 1"),
        "test.yaml:5:16 rule \"r\": unknown name \"tool_arg\" (did you mean \"tool_args\"?)"
    );
    assert_eq!(
        plain_condition_error("lenn(tool_args.x) > 1"),
        "test.yaml:5:16 rule \"r\": unknown name \"lenn\" (did you mean \"len\"?)"
    );
    // Nothing close: no suggestion. `tool_args.a == 1 and ` is 21 bytes: column 37.
    assert_eq!(
        plain_condition_error("tool_args.a == 1 and foo == 1"),
        "test.yaml:5:37 rule \"r\": unknown name \"foo\""
    );
}

#[test]
fn a_misspelled_method_is_refused_with_a_suggestion() {
    // `startwith` is at offset 15: column 31.
    assert_eq!(
        plain_condition_error("tool_args.path.startwith('/tmp')"),
        "test.yaml:5:31 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_unknown_session_field_is_refused_with_a_suggestion() {
    // `action_cont` is at offset 8: column 24.
    assert_eq!(
        plain_condition_error("session.action_cont > 1"),
        "test.yaml:5:24 rule \"r\": session has no field \"action_cont\" (did you mean \"action_count\"?)"
    );
}

#[test]
fn an_unknown_datetime_field_is_refused_with_a_suggestion() {
    // `hours` is at offset 9: column 25.
    assert_eq!(
        plain_condition_error("datetime.hours > 17"),
        "test.yaml:5:25 rule \"r\": datetime has no field \"hours\" (did you mean \"hour\"?)"
    );
}

#[test]
fn calling_something_that_is_not_a_function_is_refused() {
    // The `(` is at offset 9: column 25.
    assert_eq!(
        plain_condition_error("tool_name() == 'x'"),
        "test.yaml:5:25 rule \"r\": only the functions len, int, float, str, any and all and string methods can be called"
    );
    assert_eq!(
        plain_condition_error("len > 1"),
        "test.yaml:5:16 rule \"r\": len is a function: call it as len(...)"
    );
}

#[test]
fn a_wrong_number_of_method_arguments_is_refused_at_the_method() {
    // The method name is at offset 15: column 31.
    for (condition, message) in [
        (
            "tool_args.path.startswith()",
            "startswith() takes 1 argument, got 0",
        ),
        (
            "tool_args.path.startswith('a', 'b')",
            "startswith() takes 1 argument, got 2",
        ),
        (
            "tool_args.path.lower('x') == 'a'",
            "lower() takes 0 arguments, got 1",
        ),
    ] {
        assert_eq!(
            plain_condition_error(condition),
            format!("test.yaml:5:31 rule \"r\": {message}"),
            "{condition}"
        );
    }
    // Functions too, at the function's name.
    assert_eq!(
        plain_condition_error("len(tool_args.a, tool_args.b) > 1"),
        "test.yaml:5:16 rule \"r\": len() takes 1 argument, got 2"
    );
}

#[test]
fn an_invalid_regex_is_refused_with_the_column_of_the_pattern() {
    // `tool_args.path.matches(` is 23 bytes: the pattern's quote is at column 39.
    assert_eq!(
        plain_condition_error("tool_args.path.matches('[a-')"),
        "test.yaml:5:39 rule \"r\": invalid regular expression: unclosed character class"
    );
    assert_eq!(
        plain_condition_error("tool_args.path.matches('(unclosed')"),
        "test.yaml:5:39 rule \"r\": invalid regular expression: unclosed group"
    );
}

#[test]
fn a_pattern_that_is_not_a_string_literal_is_refused() {
    // `tool_args.path.glob(` is 20 bytes: the argument is at column 36.
    assert_eq!(
        plain_condition_error("tool_args.path.glob(tool_args.pattern)"),
        "test.yaml:5:36 rule \"r\": glob() takes a pattern written as a string literal"
    );
    assert_eq!(
        plain_condition_error("tool_args.path.matches(tool_args.re)"),
        "test.yaml:5:39 rule \"r\": matches() takes a pattern written as a string literal"
    );
}

// --------------------------------------------------- conditions: static types

#[test]
fn a_condition_that_is_statically_a_string_or_number_is_refused() {
    // Quoted in YAML so that the condition itself is the string literal "text".
    assert_eq!(
        plain_condition_error("'\"text\"'"),
        "test.yaml:5:17 rule \"r\": a condition must be true or false, but this is a string"
    );
    assert_eq!(
        plain_condition_error("session.action_count"),
        "test.yaml:5:16 rule \"r\": a condition must be true or false, but this is a number"
    );
    assert_eq!(
        plain_condition_error("tool_name.lower()"),
        "test.yaml:5:16 rule \"r\": a condition must be true or false, but this is a string"
    );
}

#[test]
fn arithmetic_on_a_request_field_is_statically_not_a_boolean() {
    // `+` yields a number or a string, never true or false: this can be seen
    // at load time, and the spec makes what can be seen statically a load error.
    assert_eq!(
        plain_condition_error("tool_args.count + 1"),
        "test.yaml:5:16 rule \"r\": a condition must be true or false, but this is a number or a string"
    );
}

#[test]
fn ordering_statically_incompatible_types_is_refused() {
    // Quoted in YAML because a plain scalar cannot start with `"`.
    assert_eq!(
        plain_condition_error("'\"a\" < 1'"),
        "test.yaml:5:17 rule \"r\": cannot order a string against a number"
    );
    // The left operand names the position: `session.action_count` at column 16.
    assert_eq!(
        plain_condition_error("session.action_count >= 'ten'"),
        "test.yaml:5:16 rule \"r\": cannot order a number against a string"
    );
}

#[test]
fn other_static_type_errors_are_refused_at_the_operand() {
    for (condition, column, message) in [
        (
            "1 + 'a' == 2",
            16,
            "unsupported operand types for +: a number and a string",
        ),
        // `len(` is four bytes: the argument is at column 20.
        ("len(3) > 1", 20, "len() cannot take a number (3)"),
        // `tool_args.x in ` is 15 bytes: column 31.
        (
            "tool_args.x in 3",
            31,
            "'in' needs a string, list or mapping on the right, not a number",
        ),
        (
            "1 in 'abc'",
            16,
            "'in <string>' needs a string on the left, not a number",
        ),
        (
            "session.action_count.startswith('1')",
            16,
            "startswith() needs a string, but session.action_count is a number",
        ),
        // `tool_args.a[` is 12 bytes: the index is at column 28.
        (
            "tool_args.a[true] == 1",
            28,
            "an index must be an integer or a string, not a boolean",
        ),
    ] {
        assert_eq!(
            plain_condition_error(condition),
            format!("test.yaml:5:{column} rule \"r\": {message}"),
            "{condition}"
        );
    }
}

// ------------------------------------- conditions: positions in every style

#[test]
fn an_error_in_a_block_condition_is_placed_on_its_own_line_and_column() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: |
      tool_name == \"x\" and
      tool_args.path.startwith(\"/etc\")
";
    // Line 7 is `      tool_args.path.startwith(...)`: six spaces, then
    // `tool_args.path.` (15 characters), so `startwith` is at column 22.
    assert_eq!(
        error(source),
        "test.yaml:7:22 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_on_a_more_indented_block_line_counts_the_extra_indent() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: |
      tool_name == \"x\" and
        tool_args.path.startwith(\"/etc\")
";
    // Eight spaces on line 7: `startwith` is at column 24.
    assert_eq!(
        error(source),
        "test.yaml:7:24 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_in_a_block_condition_after_blank_lines_and_comments_keeps_its_line() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: |

      tool_args.a == 1  # the common case
      and not tool_args.b.startwith('x')
";
    // Line 8: six spaces, `and not ` (8), `tool_args.b.` (12): column 27.
    assert_eq!(
        error(source),
        "test.yaml:8:27 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: |
      tool_args.a == 'é' and tool_args.b.startwith('x')
";
    // `      tool_args.a == 'é' and tool_args.b.` is 41 characters (42 bytes):
    // `startwith` is at column 42.
    assert_eq!(
        error(source),
        "test.yaml:6:42 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_in_a_folded_or_stripped_block_condition_is_placed_on_its_line() {
    for indicator in [">", "|-", ">-"] {
        let source = format!(
            "version: \"1\"\nrules:\n  - name: r\n    action: deny\n    condition: {indicator}\n      tool_name == \"x\" and\n      tool_args.path.startwith(\"/etc\")\n"
        );
        assert_eq!(
            error(&source),
            "test.yaml:7:22 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)",
            "condition: {indicator}"
        );
    }
}

#[test]
fn an_error_in_a_double_quoted_condition_counts_the_quote() {
    // The quote is at column 16, the condition starts at 17: `startwith`
    // (offset 15) is at column 32.
    assert_eq!(
        plain_condition_error("\"tool_args.path.startwith('/tmp')\""),
        "test.yaml:5:32 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_in_a_single_quoted_condition_counts_the_quote() {
    assert_eq!(
        plain_condition_error("'tool_args.path.startwith(\"/tmp\")'"),
        "test.yaml:5:32 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_after_escapes_in_a_quoted_condition_is_placed_in_the_text_as_written() {
    // Line 5 as written:
    //   `    condition: "tool_args.path == \"x\" and tool_args.p.startwith('/')"`
    // Four spaces, `condition:` (5-14), a space, the quote (16),
    // `tool_args.path` (17-30), ` == ` (31-34), `\"x\"` (35-39), ` and ` (40-44),
    // `tool_args.p.` (45-56): `startwith` is at column 57, though it is at
    // offset 38 of the unescaped condition.
    let escaped = "\"tool_args.path == \\\"x\\\" and tool_args.p.startwith('/')\"";
    assert_eq!(
        plain_condition_error(escaped),
        "test.yaml:5:57 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
    // YAML's doubled single quote is an escape too: `''x''` is five
    // characters as written, like `\"x\"`.
    let doubled = "'tool_args.path == ''x'' and tool_args.p.startwith(\"/\")'";
    assert_eq!(
        plain_condition_error(doubled),
        "test.yaml:5:57 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
    // A `\u` escape is one character in the condition, six in the file.
    let unicode = "\"tool_args.a == '\\u00e9' and tool_args.b.startwith('x')\"";
    // `'\u00e9'` spans 32-39, ` and ` 40-44, `tool_args.b.` 45-56: column 57.
    assert_eq!(
        plain_condition_error(unicode),
        "test.yaml:5:57 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_whose_own_text_is_escaped_in_a_quoted_condition_is_placed_at_that_text() {
    // As above, but the failing call's argument is written `(\"/\")`: the
    // unescaped text `startwith("/")` is not in the file, and the error is
    // reported at column 16 (the opening quote) instead of 57.
    let escaped = "\"tool_args.path == \\\"x\\\" and tool_args.p.startwith(\\\"/\\\")\"";
    assert_eq!(
        plain_condition_error(escaped),
        "test.yaml:5:57 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_in_a_plain_condition_continued_on_the_next_line_is_placed_there() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: tool_name == \"x\" and
      tool_args.path.startwith(\"/etc\")
";
    assert_eq!(
        error(source),
        "test.yaml:6:22 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn an_error_in_a_multi_line_plain_condition_is_placed_at_the_offending_occurrence() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: (tool_args.n == 3) and
      len(3) > 1
";
    // The bad argument is the `3` of `len(3)` on line 6: six spaces, `len(`,
    // column 11. The locator searches the file for `3)` and finds the valid
    // `3)` on line 5 (column 32) first.
    assert_eq!(
        error(source),
        "test.yaml:6:11 rule \"r\": len() cannot take a number (3)"
    );
}

#[test]
fn the_same_condition_in_a_literal_block_is_placed_correctly() {
    // The literal-block counterpart of the test above: here lines map one to one.
    let source = "\
version: \"1\"
rules:
  - name: r
    action: deny
    condition: |
      (tool_args.n == 3) and
      len(3) > 1
";
    assert_eq!(
        error(source),
        "test.yaml:7:11 rule \"r\": len() cannot take a number (3)"
    );
}

// ------------------------------------------------- several errors, warnings

#[test]
fn a_diagnostic_carries_file_line_column_rule_and_message_as_fields() {
    let refused = Policy::from_source(
        "policies/prod.yaml",
        &with_condition("tool_args.path.startwith('/')"),
    )
    .expect_err("a misspelled method is refused");
    assert_eq!(
        refused.errors,
        [Diagnostic {
            file: "policies/prod.yaml".into(),
            line: 5,
            column: 31,
            rule: Some("r".into()),
            message: "unknown method \"startwith\" (did you mean \"startswith\"?)".into(),
            severity: Severity::Error,
        }]
    );
    assert_eq!(
        refused.to_string(),
        "policies/prod.yaml:5:31 rule \"r\": unknown method \"startwith\" (did you mean \"startswith\"?)"
    );
}

#[test]
fn a_file_with_several_errors_reports_all_of_them_sorted_by_line() {
    // The unknown top-level key on line 12 is found first (the top level is
    // checked before the rules), yet it is listed last.
    let source = "\
version: \"1\"
timezone: Europe/Berln
rules:
  - name: a
    action: alow
  - name: b
    action: deny
    condition: tool_args.x.startwith('y')
  - name: a
    action: deny
    reson: duplicate
descripton: several mistakes
";
    let refused = refuse(source);
    let printed: Vec<String> = refused.errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        printed,
        [
            "test.yaml:2:11: unknown timezone \"Europe/Berln\" (did you mean \"Europe/Berlin\"?); use an IANA name such as \"Europe/Berlin\"",
            "test.yaml:5:13 rule \"a\": action must be allow, deny or approve, not \"alow\" (did you mean \"allow\"?)",
            // `    condition: tool_args.x.` is 27 characters: column 28.
            "test.yaml:8:28 rule \"b\": unknown method \"startwith\" (did you mean \"startswith\"?)",
            "test.yaml:9:5 rule \"a\": duplicate rule name (first defined at line 4)",
            "test.yaml:11:5 rule \"a\": unknown key \"reson\" in a rule (did you mean \"reason\"?)",
            "test.yaml:12:1: unknown key \"descripton\" in the policy (did you mean \"description\"?)",
        ]
    );
    assert!(
        refused.errors.iter().all(|d| d.severity == Severity::Error),
        "a refused policy lists only errors"
    );
    // The whole LoadError prints one diagnostic per line, in the same order.
    assert_eq!(refused.to_string(), printed.join("\n"));
}

#[test]
fn a_shadowed_rule_is_a_warning_and_the_policy_still_loads() {
    let source = "\
version: \"1\"
rules:
  - name: reads
    tools: [\"read_*\"]
    action: allow
  - name: no_passwd
    tools: [read_file]
    action: deny
  - name: writes
    tools: [write_file]
    action: deny
";
    let policy = load(source);
    assert_eq!(
        warnings(&policy),
        [
            "test.yaml:6:5 rule \"no_passwd\": warning: never decides: rule \"reads\" (line 3) matches every request it could see first"
        ]
    );
    assert_eq!(policy.warnings[0].severity, Severity::Warning);
    assert_eq!(policy.rules.len(), 3);
}

#[test]
fn an_unguarded_not_is_a_warning_at_the_not() {
    let source = "\
version: \"1\"
rules:
  - name: r
    action: allow
    condition: |
      tool_name == 'read_file' and
      not tool_args.path.endswith('.env')
";
    let policy = load(source);
    // The `not` opens line 7 after six spaces: column 7.
    assert_eq!(
        warnings(&policy),
        [
            "test.yaml:7:7 rule \"r\": warning: \"not\" covers tool_args.path, which is null when the request lacks it, so this matches such requests; test for it first (\"path\" in tool_args)"
        ]
    );
}

#[test]
fn each_unguarded_not_is_warned_about_with_its_own_field() {
    let policy = load(&with_condition("not tool_args.a.b == 1 and not metadata.x"));
    // The second `not` is at offset 27: column 16 + 27 = 43.
    assert_eq!(
        warnings(&policy),
        [
            "test.yaml:5:16 rule \"r\": warning: \"not\" covers tool_args.a.b, which is null when the request lacks it, so this matches such requests; test for it first (\"b\" in tool_args.a)",
            "test.yaml:5:43 rule \"r\": warning: \"not\" covers metadata.x, which is null when the request lacks it, so this matches such requests; test for it first (\"x\" in metadata)",
        ]
    );
}

#[test]
fn a_presence_guard_silences_the_not_warning() {
    for guard in [
        "\"path\" in tool_args",
        "tool_args.path != None",
        "tool_args.path is not None",
    ] {
        let source = format!(
            "version: \"1\"\nrules:\n  - name: r\n    action: allow\n    condition: |\n      {guard} and not tool_args.path.endswith('.env')\n"
        );
        let policy = load(&source);
        assert_eq!(warnings(&policy), Vec::<String>::new(), "guard: {guard}");
    }
}

#[test]
fn an_unreachable_default_action_is_a_warning_at_the_key() {
    let source = "\
version: \"1\"
default_action: allow
rules:
  - name: everything
    action: deny
";
    let policy = load(source);
    assert_eq!(
        warnings(&policy),
        [
            "test.yaml:2:1: warning: default_action is never used: rule \"everything\" (line 4) matches every request"
        ]
    );
    let deny_overrides = "\
version: \"1\"
strategy: deny_overrides
default_action: approve
rules:
  - name: anything
    tools: ['*']
    action: allow
";
    assert_eq!(
        warnings(&load(deny_overrides)),
        [
            "test.yaml:3:1: warning: default_action is never used: rule \"anything\" (line 5) matches every request"
        ]
    );
}

#[test]
fn a_disabled_catch_all_makes_no_warning() {
    let source = "\
version: \"1\"
default_action: approve
rules:
  - name: anything
    action: allow
    enabled: false
  - name: reads
    tools: [read_file]
    action: allow
";
    assert_eq!(warnings(&load(source)), Vec::<String>::new());
}

#[test]
fn warnings_of_every_kind_are_listed_together_sorted_by_line() {
    let source = "\
version: \"1\"
default_action: approve
rules:
  - name: guard
    action: deny
    condition: not tool_args.path.startswith('/tmp/')
  - name: everything
    action: allow
  - name: never
    tools: [read_file]
    action: deny
";
    let policy = load(source);
    assert_eq!(
        warnings(&policy),
        [
            "test.yaml:2:1: warning: default_action is never used: rule \"everything\" (line 7) matches every request",
            "test.yaml:6:16 rule \"guard\": warning: \"not\" covers tool_args.path, which is null when the request lacks it, so this matches such requests; test for it first (\"path\" in tool_args)",
            "test.yaml:9:5 rule \"never\": warning: never decides: rule \"everything\" (line 7) matches every request it could see first",
        ]
    );
}
