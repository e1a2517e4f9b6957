//! Shared helpers: load a policy from text, decide a request at a fixed time.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use tame::policy::{Decision, LoadError, Policy, Request, SessionView};

/// Compile policy text named `test.yaml`, panicking with the errors if it is refused.
pub fn load(source: &str) -> Policy {
    Policy::from_source("test.yaml", source).unwrap_or_else(|e| panic!("policy refused:\n{e}"))
}

/// Compile policy text that must be refused; returns the errors.
pub fn refuse(source: &str) -> LoadError {
    match Policy::from_source("test.yaml", source) {
        Ok(_) => panic!("policy was accepted:\n{source}"),
        Err(e) => e,
    }
}

pub fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
}

pub fn request(tool: &str, args: Value) -> Request {
    Request {
        tool_name: tool.into(),
        tool_args: args,
        session_id: "s-1".into(),
        metadata: serde_json::json!({}),
        ..Default::default()
    }
}

/// Decide `tool(args)` in a fresh session at noon UTC.
pub fn decide(policy: &Policy, tool: &str, args: Value) -> Decision {
    policy.decide(
        &request(tool, args),
        &SessionView {
            id: "s-1".into(),
            ..Default::default()
        },
        noon(),
    )
}
