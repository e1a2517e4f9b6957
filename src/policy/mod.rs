//! The policy engine: YAML rules in, decisions out. No HTTP, no storage.
//!
//! A policy file is parsed into raw serde types (`model`), checked and
//! compiled into an immutable [`Policy`] (`compile`), and evaluated against a
//! request, the session's counters and the clock (`eval`). Conditions are
//! written in a small Python-like language that `lang` translates into Rhai
//! once, at load time. A policy with any error is refused whole.

pub mod lang;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a policy can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
