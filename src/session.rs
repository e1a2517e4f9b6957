//! Sessions and their exact counters.
//!
//! Each active session has a slot in memory, loaded from storage on first
//! use. A decision holds its session's slot while it reads the counters,
//! decides, advances them and queues the write; concurrent decisions in one
//! session therefore see distinct, consecutive counts, and their writes reach
//! the queue (and so the database) in the order they were counted. The slot
//! is released before the commit is awaited, so a busy session still has many
//! decisions in one group commit.
//!
//! A decision whose write then fails keeps its place in the count: counts may
//! run ahead of what was recorded, never behind, so limits err on the strict side.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::policy::{Action, SessionView};
use crate::store::{SessionRow, Store, StoreError};
use crate::timefmt;

/// Distinct tool names counted one by one in a session.
pub const MAX_TOOLS: usize = 1000;
/// Where the tools past [`MAX_TOOLS`] are counted.
pub const OTHER_TOOLS: &str = "(other tools)";

/// A session's state in memory.
#[derive(Debug, Default, Clone)]
pub struct Slot {
    /// Read from storage yet.
    loaded: bool,
    /// Whether the session has any decision.
    exists: bool,
    pub view: SessionView,
    pub agent_id: Option<String>,
    pub user_id: Option<String>,
    pub principal: Option<String>,
    started_at: String,
    /// When the session's latest decision was made.
    last_at: String,
}

impl Slot {
    fn load(&mut self, id: &str, row: Option<SessionRow>) {
        self.loaded = true;
        self.view.id = id.to_string();
        let Some(row) = row else { return };
        self.exists = true;
        self.view.action_count = row.action_count.max(0) as u64;
        self.view.allowed_count = row.allowed_count.max(0) as u64;
        self.view.denied_count = row.denied_count.max(0) as u64;
        self.view.approval_count = row.approval_count.max(0) as u64;
        self.view.tool_counts = serde_json::from_str(&row.tool_counts).unwrap_or_default();
        self.view.estimated_cost = row.estimated_cost;
        self.view.started_at =
            DateTime::parse_from_rfc3339(&row.started_at).map_or(0, |t| t.timestamp());
        self.started_at = row.started_at;
        self.last_at = row.last_at;
        self.agent_id = row.agent_id;
        self.user_id = row.user_id;
        self.principal = row.principal;
    }

    /// Whether the session has recorded anything.
    pub fn exists(&self) -> bool {
        self.exists
    }

    /// What rules see for a decision made `now`.
    pub fn view_at(&self, now: DateTime<Utc>) -> SessionView {
        let mut view = self.view.clone();
        if !self.exists {
            view.started_at = now.timestamp();
        }
        view
    }

    /// Count one decision and return the row to write.
    pub fn count(
        &mut self,
        action: Action,
        tool: &str,
        now: DateTime<Utc>,
        agent_id: Option<&str>,
        user_id: Option<&str>,
        principal: &str,
    ) -> SessionRow {
        if !self.exists {
            self.exists = true;
            self.started_at = timefmt::format(now);
            self.view.started_at = now.timestamp();
            self.principal = Some(principal.to_string());
        }
        if self.agent_id.is_none() {
            self.agent_id = agent_id.map(str::to_string);
        }
        if self.user_id.is_none() {
            self.user_id = user_id.map(str::to_string);
        }
        let v = &mut self.view;
        v.action_count += 1;
        match action {
            Action::Allow => v.allowed_count += 1,
            Action::Deny => v.denied_count += 1,
            Action::Approve => v.approval_count += 1,
        }
        // Past MAX_TOOLS distinct names, the rest are counted together: a
        // session's state stays bounded whatever names an agent sends.
        let key = if v.tool_counts.len() < MAX_TOOLS || v.tool_counts.contains_key(tool) {
            tool
        } else {
            OTHER_TOOLS
        };
        *v.tool_counts.entry(key.to_string()).or_insert(0) += 1;
        self.last_at = timefmt::format(now);
        self.row()
    }

    /// Add a reported cost and return the row to write; `None` if the total
    /// would no longer be a finite number.
    pub fn add_cost(&mut self, cost: f64) -> Option<SessionRow> {
        let total = self.view.estimated_cost + cost;
        if !total.is_finite() {
            return None;
        }
        self.view.estimated_cost = total;
        Some(self.row())
    }

    fn row(&self) -> SessionRow {
        let v = &self.view;
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        SessionRow {
            id: v.id.clone(),
            agent_id: self.agent_id.clone(),
            user_id: self.user_id.clone(),
            started_at: self.started_at.clone(),
            last_at: self.last_at.clone(),
            action_count: clamp(v.action_count),
            allowed_count: clamp(v.allowed_count),
            denied_count: clamp(v.denied_count),
            approval_count: clamp(v.approval_count),
            tool_counts: serde_json::to_string(&v.tool_counts).unwrap_or_else(|_| "{}".into()),
            estimated_cost: v.estimated_cost,
            principal: self.principal.clone(),
        }
    }
}

/// The sessions in memory.
pub struct Sessions {
    store: Arc<dyn Store>,
    slots: Mutex<HashMap<String, Arc<AsyncMutex<Slot>>>>,
    /// Past this many slots, idle ones are dropped (they reload on next use).
    max_slots: usize,
}

/// A held slot. Keep `_hold` until the write is committed, so the slot is not
/// dropped from memory while its newest counts are still only in the queue.
pub struct Held {
    pub slot: OwnedMutexGuard<Slot>,
    pub hold: Arc<AsyncMutex<Slot>>,
}

impl Sessions {
    pub fn new(store: Arc<dyn Store>, max_slots: usize) -> Sessions {
        Sessions {
            store,
            slots: Mutex::new(HashMap::new()),
            max_slots,
        }
    }

    /// Lock session `id`, loading it from storage on first use.
    pub async fn lock(&self, id: &str) -> Result<Held, StoreError> {
        let hold = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if slots.len() >= self.max_slots && !slots.contains_key(id) {
                // Idle slots: nobody holds them, so nothing of theirs is in flight.
                slots.retain(|_, s| Arc::strong_count(s) > 1);
            }
            slots.entry(id.to_string()).or_default().clone()
        };
        let mut slot = hold.clone().lock_owned().await;
        if !slot.loaded {
            let row = self.store.session(id).await?;
            slot.load(id, row);
        }
        Ok(Held { slot, hold })
    }
}

/// Tool name -> count, as the API shows it.
pub fn tool_counts(json: &str) -> BTreeMap<String, u64> {
    serde_json::from_str(json).unwrap_or_default()
}
