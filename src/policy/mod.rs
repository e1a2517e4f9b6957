//! The policy engine: YAML rules in, decisions out. No HTTP, no storage.
//!
//! A policy file is parsed into raw serde types (`model`), checked and
//! compiled into an immutable [`Policy`] (`compile`), and evaluated against a
//! request, the session's counters and the clock (`eval`). Conditions are
//! written in a small Python-like language that `lang` translates into Rhai
//! once, at load time. A policy with any error is refused whole.

pub mod compile;
pub mod diagnostic;
pub mod eval;
pub mod index;
pub mod lang;
pub mod suite;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use diagnostic::{Diagnostic, LoadError, Severity};
pub use eval::{Decision, TraceStep};

/// How rules combine into a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Rules are tried in file order; the first that matches decides.
    FirstMatch,
    /// Every rule is tried; a matching deny wins, then approve, then allow.
    DenyOverrides,
}

/// A loaded policy: immutable, shared by every request that uses it.
#[derive(Debug)]
pub struct Policy {
    pub version: String,
    pub description: Option<String>,
    /// SHA-256 of the file's bytes, hex.
    pub hash: String,
    /// Where it was read from, as given.
    pub file: String,
    pub default_action: Action,
    pub strategy: Strategy,
    pub timezone: chrono_tz::Tz,
    /// Every rule in file order, disabled ones included (they are listed, never tried).
    pub rules: Vec<Rule>,
    index: index::RuleIndex,
    /// The compiled `matches()` / `glob()` patterns of all conditions.
    patterns: lang::Patterns,
    /// The names its conditions read whole.
    roots: lang::Roots,
    /// The fields its conditions read by a fixed path (see [`lang::Shared`]).
    fields: Vec<lang::Field>,
    /// The names its conditions read at all, whole or by a path.
    reads: lang::Roots,
    /// What `tame check` would warn about.
    pub warnings: Vec<Diagnostic>,
}

impl Policy {
    /// Compile policy text; `file` names it in messages.
    pub fn from_source(file: &str, source: &str) -> Result<Policy, LoadError> {
        compile::compile(file, source)
    }

    /// Read and compile a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, LoadError> {
        let file = path.display().to_string();
        let source = read_text(path).map_err(|message| LoadError {
            errors: vec![Diagnostic {
                file: file.clone(),
                line: 0,
                column: 0,
                rule: None,
                message,
                severity: Severity::Error,
            }],
        })?;
        Policy::from_source(&file, &source)
    }

    /// The enabled rules.
    pub fn active_rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.enabled)
    }
}

/// Largest policy or test file read, in bytes.
pub const MAX_FILE: u64 = 16 * 1024 * 1024;

/// A file's text, with a message that says what went wrong.
pub fn read_text(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_FILE {
        return Err(format!(
            "{} is {} bytes; the limit is {MAX_FILE}",
            path.display(),
            meta.len()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// One rule, compiled.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    pub action: Action,
    /// The `tools` patterns as written; `None` means every tool.
    pub tools: Option<Vec<String>>,
    tool_set: Option<globset::GlobSet>,
    /// The condition as written, if any.
    pub condition: Option<String>,
    pub reason: Option<String>,
    pub enabled: bool,
    /// How long an approval this rule asks for stays open, in seconds.
    pub approval_ttl: Option<u64>,
    matcher: Matcher,
    /// Where the rule starts in the file.
    pub pos: yaml::Pos,
}

impl Rule {
    /// Whether the rule's `tools` admit `tool`.
    pub fn applies_to(&self, tool: &str) -> bool {
        self.tool_set.as_ref().is_none_or(|set| set.is_match(tool))
    }

    fn covers_every_tool(&self) -> bool {
        match &self.tools {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p == "*" || p == "**"),
        }
    }

    /// The `tools` entries, if every one is a plain name (no glob characters).
    fn literal_tools(&self) -> Option<Vec<String>> {
        let tools = self.tools.as_ref()?;
        let plain = |t: &String| !t.contains(['*', '?', '[', ']', '{', '}', '\\']);
        tools.iter().all(plain).then(|| tools.clone())
    }
}

/// What decides whether a rule matches, beyond its tools.
#[derive(Debug)]
enum Matcher {
    /// No condition, or the literal `true`.
    Always,
    Expr(Box<lang::Condition>),
    Structured(Structured),
}

/// The older format's `conditions`: each list holds (key, expected value),
/// where `None` means "present with any value".
#[derive(Debug, Default)]
struct Structured {
    arg_contains: Vec<(String, Option<serde_json::Value>)>,
    arg_not_contains: Vec<(String, Option<serde_json::Value>)>,
    session_context: Vec<(String, Option<serde_json::Value>)>,
}

/// What a policy can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    /// A human must say yes before the call runs.
    Approve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Approve => "approve",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The call an agent wants to make, as the policy sees it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub tool_name: String,
    /// Always a JSON object.
    pub tool_args: serde_json::Value,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    /// Always a JSON object.
    pub metadata: serde_json::Value,
    pub session_id: String,
}

/// The session's state before this decision: what rules may look at.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub id: String,
    /// Decisions already made in this session, before this one.
    pub action_count: u64,
    pub allowed_count: u64,
    pub denied_count: u64,
    pub approval_count: u64,
    /// Tool name -> decisions for it so far.
    pub tool_counts: BTreeMap<String, u64>,
    /// Sum of the costs reported with results.
    pub estimated_cost: f64,
    /// Unix seconds of the session's first decision.
    pub started_at: i64,
}
