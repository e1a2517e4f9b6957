//! `tame check` and `tame test` run as commands: output and exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn tame(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tame"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tame")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

const POLICY: &str = r#"version: "1"
rules:
  - name: allow_tmp
    condition: tool_args.path.startswith("/tmp/")
    action: allow
  - name: deny_etc
    condition: tool_args.path.startswith("/etc/")
    action: deny
"#;

#[test]
fn check_accepts_the_shipped_policies() {
    let o = tame(
        &["check", "--deny-warnings", "policies"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(
        stdout(&o).ends_with("5 checked: 5 ok, 0 refused, 0 with warnings\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_prints_each_error_with_file_line_column_and_rule_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prod.yaml",
        &POLICY.replace("startswith(\"/etc/\")", "startwith(\"/etc/\")"),
    );
    let o = tame(&["check", "prod.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    // Line 7 is `    condition: tool_args.path.startwith(...)`: the value starts at column 16, the method 15 characters later.
    assert!(
        out.starts_with("prod.yaml:7:31 rule \"deny_etc\": unknown method \"startwith\" (did you mean \"startswith\"?)\n"),
        "{out}"
    );
    assert!(out.contains("prod.yaml: refused: 1 error\n"), "{out}");
}

#[test]
fn check_exits_0_on_warnings_unless_told_to_deny_them() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "p.yaml",
        "version: '1'\ndefault_action: allow\nrules:\n  - name: all\n    action: deny\n",
    );
    let o = tame(&["check", "p.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("p.yaml:2:1: warning: default_action is never used"),
        "{}",
        stdout(&o)
    );
    let o = tame(&["check", "--deny-warnings", "p.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn check_of_a_missing_path_says_so_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = tame(&["check", "nope.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "tame check: nope.yaml: no such file or folder\n"
    );
}

#[test]
fn test_runs_the_sibling_tests_and_prints_one_line_per_failure_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yaml", POLICY);
    write(
        dir.path(),
        "p.tests.yaml",
        r#"tests:
  - name: tmp is readable
    request: {tool_name: read_file, tool_args: {path: /tmp/a}}
    expect: {decision: allow, rule_name: allow_tmp}
  - name: wrong on purpose
    request: {tool_name: read_file, tool_args: {path: /etc/passwd}}
    expect: {decision: allow}
"#,
    );
    let o = tame(&["test", "p.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "p.tests.yaml:5:5 test \"wrong on purpose\": got decision deny (expected allow)\n1 passed, 1 failed\n"
    );
}

#[test]
fn test_passes_with_exit_0_and_reports_uncovered_rules() {
    let dir = tempfile::tempdir().unwrap();
    let with_tests = format!(
        "{POLICY}tests:\n  - name: tmp\n    request: {{tool_name: read_file, tool_args: {{path: /tmp/a}}}}\n    expect: {{decision: allow}}\n"
    );
    write(dir.path(), "p.yaml", &with_tests);
    let o = tame(&["test", "p.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        stdout(&o),
        "p.yaml: no test is decided by: deny_etc\n1 passed, 0 failed\n"
    );
    let o = tame(&["test", "--require-coverage", "p.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn test_fails_when_the_policy_does_not_load_or_there_are_no_tests() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.yaml", "version: '1'\nrules: 3\n");
    let o = tame(&["test", "bad.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).starts_with("bad.yaml:2:8: rules must be a list, not a number\n"),
        "{}",
        stdout(&o)
    );
    write(dir.path(), "p.yaml", POLICY);
    let o = tame(&["test", "p.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).ends_with("no tests found\n"), "{}", stdout(&o));
}

#[test]
fn test_reports_bad_fixtures_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yaml", POLICY);
    write(
        dir.path(),
        "p.tests.yaml",
        "tests:\n  - name: t\n    request: {tool_name: x}\n    now: yesterday\n    expect: {decision: allow}\n",
    );
    let o = tame(&["test", "p.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).starts_with("p.tests.yaml:4:10: test \"t\": now must be an RFC 3339 time such as \"2026-03-01T23:30:00Z\", not \"yesterday\"\n"),
        "{}",
        stdout(&o)
    );
}
