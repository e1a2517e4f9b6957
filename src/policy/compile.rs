//! A policy file in, an immutable [`Policy`] out, or every error found.
//!
//! The YAML tree is checked key by key (unknown keys get a "did you mean"),
//! conditions are compiled, tool globs built, the rule index made, and the
//! warnings of `tame check` collected. Nothing downstream re-checks: a
//! `Policy` that exists is valid.

use std::collections::HashMap;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest, Sha256};

use super::diagnostic::{Diagnostic, LoadError, Severity};
use super::index::RuleIndex;
use super::lang::{self, Patterns, syntax::did_you_mean};
use super::yaml::{self, Kind, Node, Pos, Style};
use super::{Action, Matcher, Policy, Rule, Strategy, Structured};

const TOP_KEYS: [&str; 7] = [
    "version",
    "description",
    "default_action",
    "strategy",
    "timezone",
    "rules",
    "tests",
];
const RULE_KEYS: [&str; 9] = [
    "name",
    "description",
    "tools",
    "condition",
    "conditions",
    "action",
    "reason",
    "enabled",
    "approval_ttl",
];
const STRUCTURED_KEYS: [&str; 3] = ["arg_contains", "arg_not_contains", "session_context"];

/// Longest `approval_ttl` accepted: thirty days.
const MAX_APPROVAL_TTL: u64 = 30 * 24 * 3600;

/// Collects diagnostics while reading one file.
pub(crate) struct Reader<'a> {
    pub file: &'a str,
    pub source: &'a str,
    pub found: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a str, source: &'a str) -> Self {
        Reader {
            file,
            source,
            found: Vec::new(),
        }
    }

    pub fn at(
        &mut self,
        severity: Severity,
        pos: Pos,
        rule: Option<&str>,
        message: impl Into<String>,
    ) {
        self.found.push(Diagnostic {
            file: self.file.to_string(),
            line: pos.line,
            column: pos.column,
            rule: rule.map(str::to_string),
            message: message.into(),
            severity,
        });
    }

    pub fn error(&mut self, pos: Pos, rule: Option<&str>, message: impl Into<String>) {
        self.at(Severity::Error, pos, rule, message);
    }

    pub fn has_errors(&self) -> bool {
        self.found.iter().any(|d| d.severity == Severity::Error)
    }

    /// The entries of a mapping; unknown keys are reported with a suggestion.
    pub fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
        rule: Option<&str>,
    ) -> Option<&'n [(Node, Node)]> {
        let Kind::Map(entries) = &node.kind else {
            self.error(
                node.pos,
                rule,
                format!("{what} must be a mapping, not {}", node.type_name()),
            );
            return None;
        };
        for (key, _) in entries {
            let k = key.as_str().unwrap_or_default();
            if !known.contains(&k) {
                let hint = did_you_mean(k, known.iter().copied())
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_else(|| format!(" (expected one of: {})", known.join(", ")));
                self.error(
                    key.pos,
                    rule,
                    format!("unknown key \"{k}\" in {what}{hint}"),
                );
            }
        }
        Some(entries)
    }

    /// A scalar that must be a string (numbers are taken as written).
    pub fn string(&mut self, node: &Node, what: &str, rule: Option<&str>) -> Option<String> {
        match &node.kind {
            Kind::Scalar(s, _) if !node.is_null() => Some(s.clone()),
            _ => {
                self.error(
                    node.pos,
                    rule,
                    format!("{what} must be a string, not {}", node.type_name()),
                );
                None
            }
        }
    }

    pub fn action(&mut self, node: &Node, what: &str, rule: Option<&str>) -> Option<Action> {
        let text = self.string(node, what, rule)?;
        match text.as_str() {
            "allow" => Some(Action::Allow),
            "deny" => Some(Action::Deny),
            "approve" => Some(Action::Approve),
            other => {
                let hint = did_you_mean(other, ["allow", "deny", "approve"])
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                self.error(
                    node.pos,
                    rule,
                    format!("{what} must be allow, deny or approve, not \"{other}\"{hint}"),
                );
                None
            }
        }
    }

    /// Where byte `offset` of a scalar's value stands in the file.
    pub fn locate(&self, node: &Node, offset: usize) -> Pos {
        let Kind::Scalar(value, style) = &node.kind else {
            return node.pos;
        };
        let offset = offset.min(value.len());
        let before = &value[..offset];
        match style {
            Style::Literal => {
                // Each line of the value is a line of the file, indented by the node's column.
                let leading_blank = value.len() - value.trim_start_matches('\n').len();
                let line_index = before.matches('\n').count();
                let line_start = before.rfind('\n').map_or(0, |k| k + 1);
                let first_line = node.pos.line.saturating_sub(leading_blank);
                let column = node.pos.column + before[line_start..].chars().count();
                Pos {
                    line: first_line + line_index,
                    column,
                }
            }
            _ if !value.contains('\n') && self.written_as_is(node, value) => {
                let quote = usize::from(matches!(style, Style::SingleQuoted | Style::DoubleQuoted));
                Pos {
                    line: node.pos.line,
                    column: node.pos.column + quote + before.chars().count(),
                }
            }
            _ => self.search(node, value, offset),
        }
    }

    /// The scalar's text stands in the file exactly as its value (no escapes or folding).
    fn written_as_is(&self, node: &Node, value: &str) -> bool {
        let line = self
            .source
            .lines()
            .nth(node.pos.line.saturating_sub(1))
            .unwrap_or("");
        let from: String = line
            .chars()
            .skip(node.pos.column.saturating_sub(1))
            .collect();
        let from = from.trim_start_matches(['\'', '"']);
        from.starts_with(value)
    }

    /// For folded or escaped scalars: find the word at `offset` in the file
    /// after the node's start, skipping as many earlier copies of it as the
    /// value has before `offset`; fall back to the node itself.
    fn search(&self, node: &Node, value: &str, offset: usize) -> Pos {
        let rest = &value[offset..];
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A word, or else the one character there (an operator, a quote).
        let word = if ident.is_empty() {
            rest.chars().next().map(String::from).unwrap_or_default()
        } else {
            ident
        };
        let line_start = self
            .source
            .lines()
            .take(node.pos.line.saturating_sub(1))
            .map(|l| l.len() + 1)
            .sum::<usize>();
        let Some(line) = self.source.get(line_start..) else {
            return node.pos;
        };
        // The column counts characters; find the byte where that character starts.
        let start = line_start
            + line
                .char_indices()
                .nth(node.pos.column.saturating_sub(1))
                .map_or(line.len(), |(b, _)| b);
        if word.is_empty() || start > self.source.len() {
            return node.pos;
        }
        let earlier = value[..offset].matches(word.as_str()).count();
        match self.source[start..]
            .match_indices(word.as_str())
            .nth(earlier)
        {
            Some((k, _)) => {
                let at = start + k;
                let line = self.source[..at].matches('\n').count() + 1;
                let line_start = self.source[..at].rfind('\n').map_or(0, |p| p + 1);
                Pos {
                    line,
                    column: self.source[line_start..at].chars().count() + 1,
                }
            }
            None => node.pos,
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Read and compile a policy. `file` names it in messages.
pub fn compile(file: &str, source: &str) -> Result<Policy, LoadError> {
    let mut r = Reader::new(file, source);
    let policy = read_policy(&mut r, source);
    match policy {
        Some(mut p) if !r.has_errors() => {
            p.warnings = r.found;
            p.warnings.sort_by_key(|d| (d.line, d.column));
            Ok(p)
        }
        _ => {
            let mut errors: Vec<Diagnostic> = r
                .found
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .collect();
            errors.sort_by_key(|d| (d.line, d.column));
            Err(LoadError { errors })
        }
    }
}

fn read_policy(r: &mut Reader<'_>, source: &str) -> Option<Policy> {
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            r.error(e.pos, None, format!("invalid YAML: {}", e.message));
            return None;
        }
    };
    let entries = r.mapping(&root, "the policy", &TOP_KEYS, None)?;
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    };

    let version = match get("version") {
        Some((_, v)) => r.string(v, "version", None).unwrap_or_default(),
        None => {
            r.error(
                root.pos,
                None,
                "missing \"version\": every policy needs one, e.g. version: \"1.0\"",
            );
            String::new()
        }
    };
    let description = get("description").and_then(|(_, v)| r.string(v, "description", None));
    let (default_action, default_pos) = match get("default_action") {
        Some((k, v)) => (
            r.action(v, "default_action", None).unwrap_or(Action::Deny),
            Some(k.pos),
        ),
        None => (Action::Deny, None),
    };
    let strategy =
        match get("strategy").and_then(|(_, v)| Some((v, r.string(v, "strategy", None)?))) {
            None => Strategy::FirstMatch,
            Some((_, s)) if s == "first_match" => Strategy::FirstMatch,
            Some((_, s)) if s == "deny_overrides" => Strategy::DenyOverrides,
            Some((v, s)) => {
                let hint = did_you_mean(&s, ["first_match", "deny_overrides"])
                    .map(|h| format!(" (did you mean \"{h}\"?)"))
                    .unwrap_or_default();
                r.error(
                    v.pos,
                    None,
                    format!("strategy must be first_match or deny_overrides, not \"{s}\"{hint}"),
                );
                Strategy::FirstMatch
            }
        };
    let timezone = match get("timezone")
        .and_then(|(_, v)| Some((v, r.string(v, "timezone", None)?)))
    {
        None => chrono_tz::UTC,
        Some((v, name)) => match name.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                let hint = did_you_mean(&name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
                    .map(|h| format!(" (did you mean \"{h}\"?)"))
                    .unwrap_or_default();
                r.error(v.pos, None, format!("unknown timezone \"{name}\"{hint}; use an IANA name such as \"Europe/Berlin\""));
                chrono_tz::UTC
            }
        },
    };

    let mut shared = lang::Shared::default();
    let mut rules = Vec::new();
    match get("rules") {
        None => r.error(
            root.pos,
            None,
            "missing \"rules\": a policy needs a list of rules (it may be empty: rules: [])",
        ),
        Some((_, node)) => match &node.kind {
            Kind::Seq(items) => {
                let mut seen: HashMap<String, Pos> = HashMap::new();
                for item in items {
                    if let Kind::Map(entries) = &item.kind {
                        let name = entries
                            .iter()
                            .find(|(k, _)| k.as_str() == Some("name"))
                            .and_then(|(_, v)| v.as_str());
                        if let Some(name) = name {
                            match seen.get(name) {
                                Some(first) => {
                                    let msg = format!(
                                        "duplicate rule name (first defined at line {})",
                                        first.line
                                    );
                                    r.error(item.pos, Some(name), msg);
                                }
                                None => {
                                    seen.insert(name.to_string(), item.pos);
                                }
                            }
                        }
                    }
                    if let Some(rule) = read_rule(r, item, &mut shared) {
                        rules.push(rule);
                    }
                }
            }
            _ if node.is_null() => {}
            _ => r.error(
                node.pos,
                None,
                format!("rules must be a list, not {}", node.type_name()),
            ),
        },
    }
    if r.has_errors() {
        return None;
    }
    let roots = rules
        .iter()
        .filter_map(|rule| match &rule.matcher {
            Matcher::Expr(condition) => Some(condition.roots),
            _ => None,
        })
        .fold(lang::Roots::default(), lang::Roots::union);
    let mut reads = roots;
    for field in &shared.fields {
        reads.insert(field.root());
    }
    let policy = Policy {
        version,
        description,
        hash: hex_sha256(source.as_bytes()),
        file: r.file.to_string(),
        default_action,
        strategy,
        timezone,
        index: RuleIndex::build(&rules),
        roots,
        reads,
        rules,
        patterns: Patterns(Arc::new(shared.patterns)),
        fields: shared.fields,
        warnings: Vec::new(),
    };
    warn_about_reachability(r, &policy, default_pos);
    Some(policy)
}

fn read_rule(r: &mut Reader<'_>, node: &Node, shared: &mut lang::Shared) -> Option<Rule> {
    // Find the name first so that every other message can carry it.
    let name = match &node.kind {
        Kind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some("name"))
            .map(|(_, v)| v),
        _ => None,
    };
    let name = match name {
        Some(v) => r.string(v, "name", None),
        None => {
            if matches!(node.kind, Kind::Map(_)) {
                r.error(node.pos, None, "rule has no \"name\"");
            }
            None
        }
    };
    let label = name.clone();
    let label = label.as_deref();
    let entries = r.mapping(node, "a rule", &RULE_KEYS, label)?;
    let name = name?;
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    };

    let action = match get("action") {
        Some(v) => r.action(v, "action", label),
        None => {
            r.error(
                node.pos,
                label,
                "rule has no \"action\" (allow, deny or approve)",
            );
            None
        }
    };
    let description = get("description").and_then(|v| r.string(v, "description", label));
    let reason = get("reason").and_then(|v| r.string(v, "reason", label));
    let enabled = match get("enabled") {
        None => true,
        Some(v) => match (&v.kind, v.as_str().and_then(yaml::plain_bool)) {
            (Kind::Scalar(_, Style::Plain), Some(b)) => b,
            _ => {
                r.error(
                    v.pos,
                    label,
                    format!("enabled must be true or false, not {}", v.type_name()),
                );
                true
            }
        },
    };
    let approval_ttl = get("approval_ttl").and_then(|v| {
        let text = v.as_str().unwrap_or_default();
        match parse_duration(text) {
            Some(secs) if secs > 0 && secs <= MAX_APPROVAL_TTL => Some(secs),
            _ => {
                r.error(v.pos, label, format!("approval_ttl must be a duration such as 900, \"90s\", \"15m\" or \"2h\" (at most 30 days), not \"{text}\""));
                None
            }
        }
    });
    let (tools, tool_set) = match get("tools") {
        None => (None, None),
        Some(v) => read_tools(r, v, label)?,
    };
    let matcher = match (get("condition"), get("conditions")) {
        (Some(c), Some(cs)) => {
            let _ = c;
            r.error(
                cs.pos,
                label,
                "a rule has either \"condition\" or \"conditions\", not both",
            );
            return None;
        }
        (Some(c), None) => {
            let text = r.string(c, "condition", label)?;
            match lang::compile(&text, shared) {
                Ok(cond) => {
                    for w in &cond.warnings {
                        let pos = r.locate(c, w.offset);
                        r.at(Severity::Warning, pos, label, w.message.clone());
                    }
                    if cond.always_true {
                        Matcher::Always
                    } else {
                        Matcher::Expr(Box::new(cond))
                    }
                }
                Err(e) => {
                    let pos = r.locate(c, e.offset);
                    r.error(pos, label, e.message);
                    return None;
                }
            }
        }
        (None, Some(cs)) => Matcher::Structured(read_structured(r, cs, label)?),
        (None, None) => Matcher::Always,
    };
    Some(Rule {
        name,
        description,
        action: action?,
        tools,
        tool_set,
        condition: get("condition")
            .and_then(|c| c.as_str())
            .map(str::to_string),
        reason,
        enabled,
        approval_ttl,
        matcher,
        pos: node.pos,
    })
}

type Tools = (Option<Vec<String>>, Option<GlobSet>);

fn read_tools(r: &mut Reader<'_>, node: &Node, rule: Option<&str>) -> Option<Tools> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => {
            r.error(
                node.pos,
                rule,
                format!(
                    "tools must be a list of tool names or globs, not {}",
                    node.type_name()
                ),
            );
            return None;
        }
    };
    let mut names = Vec::new();
    let mut set = GlobSetBuilder::new();
    for item in items {
        let pattern = r.string(item, "a tool pattern", rule)?;
        match Glob::new(&pattern) {
            Ok(g) => {
                set.add(g);
                names.push(pattern);
            }
            Err(e) => {
                r.error(
                    item.pos,
                    rule,
                    format!("invalid tool glob \"{pattern}\": {}", e.kind()),
                );
                return None;
            }
        }
    }
    match set.build() {
        Ok(set) => Some((Some(names), Some(set))),
        Err(e) => {
            r.error(node.pos, rule, format!("invalid tool globs: {e}"));
            None
        }
    }
}

fn read_structured(r: &mut Reader<'_>, node: &Node, rule: Option<&str>) -> Option<Structured> {
    let entries = r.mapping(node, "conditions", &STRUCTURED_KEYS, rule)?;
    let mut out = Structured::default();
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default();
        let Kind::Map(pairs) = &value.kind else {
            r.error(value.pos, rule, format!("conditions.{name} must be a mapping of argument names to values (\"*\" for any), not {}", value.type_name()));
            continue;
        };
        let list: Vec<(String, Option<serde_json::Value>)> = pairs
            .iter()
            .map(|(k, v)| {
                let expected = match &v.kind {
                    Kind::Scalar(s, Style::Plain | Style::SingleQuoted | Style::DoubleQuoted)
                        if s == "*" =>
                    {
                        None
                    }
                    _ => Some(v.to_json()),
                };
                (k.as_str().unwrap_or_default().to_string(), expected)
            })
            .collect();
        match key.as_str() {
            Some("arg_contains") => out.arg_contains = list,
            Some("arg_not_contains") => out.arg_not_contains = list,
            Some("session_context") => out.session_context = list,
            _ => {}
        }
    }
    Some(out)
}

/// `900`, `"90s"`, `"15m"`, `"2h"`, `"1d"` -> seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(k) => text.split_at(k),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Warnings about rules that can never decide and a default that can never apply.
fn warn_about_reachability(r: &mut Reader<'_>, policy: &Policy, default_pos: Option<Pos>) {
    let active: Vec<&Rule> = policy.rules.iter().filter(|x| x.enabled).collect();
    let catch_all =
        |rule: &Rule| matches!(rule.matcher, Matcher::Always) && rule.covers_every_tool();
    if policy.strategy == Strategy::FirstMatch {
        // Earlier rules with no condition: the first that covers every tool,
        // the first for each plain tool name, and those with other globs.
        let mut every: Option<&Rule> = None;
        let mut by_name: HashMap<&str, &Rule> = HashMap::new();
        let mut by_glob: Vec<&Rule> = Vec::new();
        for later in &active {
            let shadow = every.or_else(|| {
                let names = later.literal_tools().filter(|n| !n.is_empty())?;
                let coverers: Option<Vec<&Rule>> = names
                    .iter()
                    .map(|n| {
                        by_name
                            .get(n.as_str())
                            .copied()
                            .or_else(|| by_glob.iter().copied().find(|g| g.applies_to(n)))
                    })
                    .collect();
                coverers?.into_iter().min_by_key(|r| r.pos.line)
            });
            if let Some(earlier) = shadow {
                r.at(
                    Severity::Warning,
                    later.pos,
                    Some(&later.name),
                    format!("never decides: rule \"{}\" (line {}) matches every request it could see first", earlier.name, earlier.pos.line),
                );
            }
            if matches!(later.matcher, Matcher::Always) {
                if later.covers_every_tool() {
                    every = every.or(Some(later));
                } else if later.literal_tools().is_some() {
                    for n in later.tools.iter().flatten() {
                        by_name.entry(n.as_str()).or_insert(later);
                    }
                } else {
                    by_glob.push(later);
                }
            }
        }
    }
    let unreachable_by = match policy.strategy {
        Strategy::FirstMatch => active.iter().find(|x| catch_all(x)),
        // Under deny_overrides any matching rule decides; the default applies only when none matches.
        Strategy::DenyOverrides => active.iter().find(|x| catch_all(x)),
    };
    if let (Some(pos), Some(rule)) = (default_pos, unreachable_by) {
        r.at(
            Severity::Warning,
            pos,
            None,
            format!(
                "default_action is never used: rule \"{}\" (line {}) matches every request",
                rule.name, rule.pos.line
            ),
        );
    }
}
