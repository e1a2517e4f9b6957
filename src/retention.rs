//! Audit retention: entries older than the configured number of days are
//! removed, oldest first, and the removal is itself appended to the chain,
//! with the chain's new starting point sealed, so verification still passes.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::app::AppState;
use crate::audit::{Event, Kind};
use crate::timefmt;

/// Apply retention once: remove entries older than `days`. Returns how many went.
pub async fn apply(state: &AppState, days: u32) -> Result<u64, crate::store::StoreError> {
    let now = Utc::now();
    let cutoff = timefmt::format(now - chrono::Duration::days(i64::from(days)));
    let event = Event {
        id: uuid::Uuid::now_v7().to_string(),
        kind: Kind::Retention.as_str().into(),
        session_id: String::new(),
        ts: timefmt::format(now),
        body: json!({"removed_before": cutoff, "retention_days": days}).to_string(),
        ..Default::default()
    };
    state
        .store
        .remove_before(&state.secret, &cutoff, event)
        .await
}

pub async fn run(state: AppState, days: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match apply(&state, days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, days, "audit retention removed old entries"),
            Err(e) => {
                tracing::warn!(error = %e, "audit retention failed; it will try again in an hour")
            }
        }
    }
}
