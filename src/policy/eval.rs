//! Deciding: a request, the session's state and the clock in; a [`Decision`]
//! with its reasons out.
//!
//! Evaluation never fails open. A condition that fails while running counts
//! as matched for a deny or approve rule and as not matched for an allow rule,
//! and the failure is named in the decision's reason and trace.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::lang::{self, Env, Input, Root, Value};
use super::{Action, Matcher, Policy, Request, Rule, SessionView, Strategy, Structured};

/// One rule tried while deciding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    pub rule: String,
    pub matched: bool,
    /// Why the condition could not be evaluated, if it could not.
    pub error: Option<String>,
}

/// A policy's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub action: Action,
    /// The deciding rule; `None` when no rule matched and the default applied.
    pub rule_name: Option<String>,
    pub reason: String,
    pub policy_version: String,
    pub policy_hash: String,
    /// The rules tried, in the order they were tried.
    pub trace: Vec<TraceStep>,
    /// For approve decisions, the deciding rule's `approval_ttl` in seconds.
    pub approval_ttl: Option<u64>,
}

impl Decision {
    /// The errors met while deciding, as `rule: error`.
    pub fn errors(&self) -> impl Iterator<Item = (&str, &str)> {
        self.trace
            .iter()
            .filter_map(|s| s.error.as_deref().map(|e| (s.rule.as_str(), e)))
    }
}

/// Outcome of trying one rule.
struct Tried {
    matched: bool,
    error: Option<String>,
}

impl Policy {
    /// Decide `request` given the session's state before it and the time.
    pub fn decide(&self, request: &Request, session: &SessionView, now: DateTime<Utc>) -> Decision {
        let mut env: Option<Env> = None;
        let mut trace = Vec::new();
        // (position, error) of the first matching rule of each action.
        let mut first: [Option<(u32, Option<String>)>; 3] = [None, None, None];
        for at in self.index.candidates(&request.tool_name) {
            let rule = &self.rules[at as usize];
            if self.index.is_unpinned(at) && !rule.applies_to(&request.tool_name) {
                continue;
            }
            let tried = self.try_rule(rule, request, session, now, &mut env);
            trace.push(TraceStep {
                rule: rule.name.clone(),
                matched: tried.matched,
                error: tried.error.clone(),
            });
            if !tried.matched {
                continue;
            }
            let slot = &mut first[rule.action as usize];
            if slot.is_none() {
                *slot = Some((at, tried.error));
            }
            // first_match stops at the first match; deny_overrides at the first deny, which nothing outranks.
            if self.strategy == Strategy::FirstMatch || rule.action == Action::Deny {
                break;
            }
        }
        let winner = [Action::Deny, Action::Approve, Action::Allow]
            .into_iter()
            .find_map(|a| first[a as usize].take());
        // Allow rules whose conditions failed were passed over; the reason says so.
        let passed_over: Vec<String> = trace
            .iter()
            .filter(|t| !t.matched)
            .filter_map(|t| {
                t.error.as_ref().map(|e| {
                    format!(
                        "rule \"{}\" failed ({e}) and counted as not matched",
                        t.rule
                    )
                })
            })
            .collect();
        let with_passed_over = |reason: String| {
            if passed_over.is_empty() {
                reason
            } else {
                format!("{reason}; {}", passed_over.join("; "))
            }
        };
        match winner {
            Some((at, error)) => {
                let rule = &self.rules[at as usize];
                let stated = rule
                    .reason
                    .clone()
                    .unwrap_or_else(|| format!("Matched rule: {}", rule.name));
                let reason = match error {
                    Some(e) => format!(
                        "{stated} (condition failed: {e}; a failing {} rule counts as matched)",
                        rule.action
                    ),
                    None => stated,
                };
                Decision {
                    action: rule.action,
                    rule_name: Some(rule.name.clone()),
                    reason: with_passed_over(reason),
                    policy_version: self.version.clone(),
                    policy_hash: self.hash.clone(),
                    trace,
                    approval_ttl: rule.approval_ttl.filter(|_| rule.action == Action::Approve),
                }
            }
            None => Decision {
                action: self.default_action,
                rule_name: None,
                reason: with_passed_over(format!(
                    "No rule matched; the policy's default is {}",
                    self.default_action
                )),
                policy_version: self.version.clone(),
                policy_hash: self.hash.clone(),
                trace,
                approval_ttl: None,
            },
        }
    }

    fn try_rule(
        &self,
        rule: &Rule,
        request: &Request,
        session: &SessionView,
        now: DateTime<Utc>,
        env: &mut Option<Env>,
    ) -> Tried {
        let result = match &rule.matcher {
            Matcher::Always => Ok(true),
            Matcher::Structured(s) => Ok(s.matches(request)),
            Matcher::Expr(cond) => {
                // Built on first use: a request whose rules need no condition never pays for it.
                let env = env.get_or_insert_with(|| self.env(request, session, now));
                cond.eval(env)
            }
        };
        match result {
            Ok(matched) => Tried {
                matched,
                error: None,
            },
            // The restrictive side: deny and approve match, allow does not.
            Err(e) => Tried {
                matched: rule.action != Action::Allow,
                error: Some(e),
            },
        }
    }

    fn env(&self, request: &Request, session: &SessionView, now: DateTime<Utc>) -> Env {
        // Only what some condition reads is converted.
        let read = |roots: &[Root], json| match roots.iter().any(|r| self.reads.contains(*r)) {
            true => Value::from_json(json),
            false => Value::Null,
        };
        let input = Input {
            tool_name: &request.tool_name,
            tool_args: read(&[Root::ToolArgs], &request.tool_args),
            agent_id: request.agent_id.as_deref(),
            user_id: request.user_id.as_deref(),
            metadata: read(&[Root::Metadata, Root::Context], &request.metadata),
            session,
            now: now.with_timezone(&self.timezone),
        };
        Env::new(input, &self.patterns, self.roots, &self.fields)
    }
}

impl Structured {
    fn matches(&self, request: &Request) -> bool {
        let args = request.tool_args.as_object();
        let arg = |k: &str| args.and_then(|a| a.get(k));
        let context = |k: &str| -> Option<serde_json::Value> {
            match k {
                "session_id" => Some(request.session_id.clone().into()),
                "agent_id" => request.agent_id.clone().map(Into::into),
                "user_id" => request.user_id.clone().map(Into::into),
                _ => request.metadata.get(k).cloned(),
            }
        };
        let holds =
            |actual: Option<&serde_json::Value>, expected: &Option<serde_json::Value>| match (
                actual, expected,
            ) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(a), Some(e)) => {
                    lang::runtime::equal(&Value::from_json(a), &Value::from_json(e))
                }
            };
        self.arg_contains.iter().all(|(k, e)| holds(arg(k), e))
            && self.arg_not_contains.iter().all(|(k, e)| !holds(arg(k), e))
            && self
                .session_context
                .iter()
                .all(|(k, e)| holds(context(k).as_ref(), e))
    }
}
