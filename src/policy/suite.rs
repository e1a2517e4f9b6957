//! Policy tests: requests with the decision they must get, run by `tame test`.
//!
//! Tests live in the policy file under `tests:` or in a sibling
//! `NAME.tests.yaml`. Each gives a request, optionally the session's state
//! and the time, and the expected decision (and, optionally, rule and
//! reason). Running them also tells which enabled rules no test saw decide.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::compile::Reader;
use super::lang::Root;
use super::yaml::{self, Kind, Node, Pos};
use super::{Action, Diagnostic, Policy, Request, SessionView, Severity};

const TEST_KEYS: [&str; 5] = ["name", "request", "session", "now", "expect"];
const REQUEST_KEYS: [&str; 6] = [
    "tool_name",
    "tool_args",
    "agent_id",
    "user_id",
    "metadata",
    "session_id",
];
const EXPECT_KEYS: [&str; 3] = ["decision", "rule_name", "reason"];

/// What a test expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    pub decision: Action,
    /// `Some(None)` expects the default (no rule); `None` does not check.
    pub rule_name: Option<Option<String>>,
    /// Text the reason must contain.
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PolicyTest {
    pub name: String,
    /// Where the test is written.
    pub file: String,
    pub pos: Pos,
    pub request: Request,
    pub session: SessionView,
    /// The time the policy sees; the real clock when absent.
    pub now: Option<DateTime<Utc>>,
    pub expect: Expect,
}

/// The outcome of one policy file's tests.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    /// One line per failing test.
    pub failures: Vec<String>,
    /// Enabled rules that decided no test.
    pub uncovered: Vec<String>,
}

/// `policy.yaml` -> `policy.tests.yaml`.
pub fn sibling_tests(policy: &Path) -> PathBuf {
    let stem = policy
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    policy.with_file_name(format!("{stem}.tests.yaml"))
}

/// Read the tests of a policy: its own `tests:` and its sibling file's.
pub fn load(policy_path: &Path, policy_source: &str) -> Result<Vec<PolicyTest>, Vec<Diagnostic>> {
    let mut tests = Vec::new();
    let mut errors = Vec::new();
    let file = policy_path.display().to_string();
    read_tests(&file, policy_source, &mut tests, &mut errors);
    let sibling = sibling_tests(policy_path);
    if sibling.exists() {
        let sibling_file = sibling.display().to_string();
        match super::read_text(&sibling) {
            Ok(text) => read_tests(&sibling_file, &text, &mut tests, &mut errors),
            Err(message) => errors.push(Diagnostic {
                file: sibling_file,
                line: 0,
                column: 0,
                rule: None,
                message,
                severity: Severity::Error,
            }),
        }
    }
    if errors.is_empty() {
        Ok(tests)
    } else {
        Err(errors)
    }
}

fn read_tests(file: &str, source: &str, out: &mut Vec<PolicyTest>, errors: &mut Vec<Diagnostic>) {
    let mut r = Reader::new(file, source);
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            r.error(e.pos, None, format!("invalid YAML: {}", e.message));
            errors.append(&mut r.found);
            return;
        }
    };
    let Kind::Map(entries) = &root.kind else {
        r.error(
            root.pos,
            None,
            "a tests file must be a mapping with a \"tests\" list",
        );
        errors.append(&mut r.found);
        return;
    };
    let Some((_, list)) = entries.iter().find(|(k, _)| k.as_str() == Some("tests")) else {
        return;
    };
    match &list.kind {
        Kind::Seq(items) => {
            for item in items {
                if let Some(t) = read_test(&mut r, item) {
                    out.push(t);
                }
            }
        }
        _ if list.is_null() => {}
        _ => r.error(
            list.pos,
            None,
            format!("tests must be a list, not {}", list.type_name()),
        ),
    }
    errors.extend(
        r.found
            .into_iter()
            .filter(|d| d.severity == Severity::Error),
    );
}

fn read_test(r: &mut Reader<'_>, node: &Node) -> Option<PolicyTest> {
    let entries = r.mapping(node, "a test", &TEST_KEYS, None)?;
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    let Some(name) = get("name").and_then(|v| r.string(v, "test name", None)) else {
        r.error(node.pos, None, "test has no \"name\"");
        return None;
    };
    let label = format!("test \"{name}\"");
    let fail =
        |r: &mut Reader<'_>, pos: Pos, msg: String| r.error(pos, None, format!("{label}: {msg}"));

    let Some(req) = get("request") else {
        fail(r, node.pos, "has no \"request\"".into());
        return None;
    };
    let req_entries = r.mapping(req, "a test's request", &REQUEST_KEYS, None)?;
    let req_get = |key: &str| {
        req_entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    let Some(tool_name) = req_get("tool_name").and_then(|v| v.as_str().map(str::to_string)) else {
        fail(r, req.pos, "request has no \"tool_name\"".into());
        return None;
    };
    let object = |r: &mut Reader<'_>, key: &str| -> Option<serde_json::Value> {
        match req_get(key) {
            None => Some(serde_json::json!({})),
            Some(v) => match v.to_json() {
                obj @ serde_json::Value::Object(_) => Some(obj),
                _ => {
                    r.error(
                        v.pos,
                        None,
                        format!("{label}: {key} must be a mapping, not {}", v.type_name()),
                    );
                    None
                }
            },
        }
    };
    let tool_args = object(r, "tool_args")?;
    let metadata = object(r, "metadata")?;
    let opt = |key: &str| {
        req_get(key)
            .filter(|v| !v.is_null())
            .and_then(|v| v.as_str().map(str::to_string))
    };
    let session_id = opt("session_id").unwrap_or_else(|| "test-session".to_string());
    let request = Request {
        tool_name,
        tool_args,
        agent_id: opt("agent_id"),
        user_id: opt("user_id"),
        metadata,
        session_id: session_id.clone(),
    };

    let now = match get("now") {
        None => None,
        Some(v) => match v.as_str().map(DateTime::parse_from_rfc3339) {
            Some(Ok(t)) => Some(t.with_timezone(&Utc)),
            _ => {
                fail(
                    r,
                    v.pos,
                    format!(
                        "now must be an RFC 3339 time such as \"2026-03-01T23:30:00Z\", not {:?}",
                        v.as_str().unwrap_or("")
                    ),
                );
                return None;
            }
        },
    };

    let mut session = SessionView {
        id: session_id,
        ..Default::default()
    };
    if let Some(s) = get("session") {
        let session_keys = Root::Session.fields().unwrap_or_default();
        let s_entries = r.mapping(s, "a test's session", session_keys, None)?;
        for (key, value) in s_entries {
            let json = value.to_json();
            let count = json.as_u64();
            let ok = match key.as_str().unwrap_or_default() {
                "id" => json.as_str().map(|v| session.id = v.to_string()).is_some(),
                "action_count" => count.map(|n| session.action_count = n).is_some(),
                "allowed_count" => count.map(|n| session.allowed_count = n).is_some(),
                "denied_count" => count.map(|n| session.denied_count = n).is_some(),
                "approval_count" => count.map(|n| session.approval_count = n).is_some(),
                "estimated_cost" => json.as_f64().map(|n| session.estimated_cost = n).is_some(),
                "started_at" => json.as_i64().map(|n| session.started_at = n).is_some(),
                "tool_counts" => match json.as_object() {
                    Some(m) if m.values().all(|v| v.as_u64().is_some()) => {
                        session.tool_counts = m
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                            .collect();
                        true
                    }
                    _ => false,
                },
                _ => true,
            };
            if !ok {
                let k = key.as_str().unwrap_or_default();
                let want = match k {
                    "id" => "a string",
                    "estimated_cost" => "a number",
                    "started_at" => "unix seconds",
                    "tool_counts" => "a mapping of tool names to counts",
                    _ => "a count (a whole number, 0 or more)",
                };
                fail(r, value.pos, format!("session.{k} must be {want}"));
                return None;
            }
        }
    }

    let Some(exp) = get("expect") else {
        fail(r, node.pos, "has no \"expect\"".into());
        return None;
    };
    let exp_entries = r.mapping(exp, "a test's expect", &EXPECT_KEYS, None)?;
    let exp_get = |key: &str| {
        exp_entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };
    let Some(decision) = exp_get("decision").and_then(|v| r.action(v, "expect.decision", None))
    else {
        if exp_get("decision").is_none() {
            fail(
                r,
                exp.pos,
                "expect has no \"decision\" (allow, deny or approve)".into(),
            );
        }
        return None;
    };
    let rule_name = exp_get("rule_name").map(|v| {
        if v.is_null() {
            None
        } else {
            v.as_str().map(str::to_string)
        }
    });
    let reason = exp_get("reason").and_then(|v| v.as_str().map(str::to_string));
    Some(PolicyTest {
        name,
        file: r.file.to_string(),
        pos: node.pos,
        request,
        session,
        now,
        expect: Expect {
            decision,
            rule_name,
            reason,
        },
    })
}

/// Run `tests` against `policy`.
pub fn run(policy: &Policy, tests: &[PolicyTest]) -> Report {
    let mut report = Report::default();
    let mut deciding: BTreeSet<&str> = BTreeSet::new();
    for t in tests {
        let d = policy.decide(&t.request, &t.session, t.now.unwrap_or_else(Utc::now));
        if let Some(rule) = &d.rule_name {
            deciding.insert(
                policy
                    .rules
                    .iter()
                    .find(|r| &r.name == rule)
                    .map_or("", |r| r.name.as_str()),
            );
        }
        let mut wrong = Vec::new();
        if d.action != t.expect.decision {
            wrong.push(format!(
                "decision {} (expected {})",
                d.action, t.expect.decision
            ));
        }
        if let Some(want) = &t.expect.rule_name {
            if &d.rule_name != want {
                let show = |r: &Option<String>| {
                    r.as_deref()
                        .map_or("none (the default)".to_string(), |s| format!("\"{s}\""))
                };
                wrong.push(format!(
                    "rule {} (expected {})",
                    show(&d.rule_name),
                    show(want)
                ));
            }
        }
        if let Some(want) = &t.expect.reason {
            if !d.reason.contains(want.as_str()) {
                wrong.push(format!(
                    "reason {:?} (expected it to contain {want:?})",
                    d.reason
                ));
            }
        }
        if wrong.is_empty() {
            report.passed += 1;
        } else {
            let errors: Vec<String> = d
                .errors()
                .map(|(r, e)| format!("rule \"{r}\" failed: {e}"))
                .collect();
            let extra = if errors.is_empty() {
                String::new()
            } else {
                format!(" [{}]", errors.join("; "))
            };
            report.failures.push(format!(
                "{}:{}:{} test \"{}\": got {}{extra}",
                t.file,
                t.pos.line,
                t.pos.column,
                t.name,
                wrong.join(", ")
            ));
        }
    }
    report.uncovered = policy
        .active_rules()
        .map(|r| r.name.clone())
        .filter(|n| !deciding.contains(n.as_str()))
        .collect();
    report
}
