//! Sessions and their exact counters, kept one of two ways.
//!
//! **In this process** (SQLite: one server per database file). Each active
//! session has a slot in memory, loaded from storage on first use. A decision
//! holds its session's slot while it reads the counters, decides, advances
//! them and queues the write; concurrent decisions in one session therefore
//! see distinct, consecutive counts, and their writes reach the queue (and so
//! the database) in the order they were counted. The slot is released before
//! the commit is awaited, so a busy session still has many decisions in one
//! group commit.
//!
//! **In the database** (PostgreSQL: any number of replicas). A decision first
//! reserves its place with one atomic update of the session's row, which
//! advances `action_count` and the tool's count and returns the row: what the
//! rules see. Its outcome (allowed, denied, approval) is added to the row in
//! the transaction that records the decision. Action and tool counts are
//! therefore exact across replicas; outcome counts and cost include the
//! decisions already committed.
//!
//! Either way a decision whose write then fails keeps its place in the count:
//! counts may run ahead of what was recorded, never behind, so limits err on
//! the strict side.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::audit::Event;
use crate::policy::{Action, SessionView};
use crate::store::{Reservation, SessionChange, SessionRow, Store, StoreError};
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

/// Session `event.session_id`'s row once `event` is counted, the way the
/// server counted it when the event was recorded: how rows are rebuilt from
/// the log. `None` when the event changes nothing.
pub fn replay(row: Option<SessionRow>, event: &Event) -> Option<SessionRow> {
    let mut slot = view_of(&event.session_id, row);
    match event.kind.as_str() {
        "decision" => {
            let action = match event.decision.as_deref()? {
                "allow" => Action::Allow,
                "deny" => Action::Deny,
                "approve" => Action::Approve,
                _ => return None,
            };
            let now = DateTime::parse_from_rfc3339(&event.ts)
                .ok()?
                .with_timezone(&Utc);
            Some(slot.count(
                action,
                event.tool_name.as_deref().unwrap_or_default(),
                now,
                event.agent_id.as_deref(),
                event.user_id.as_deref(),
                event.principal.as_deref().unwrap_or_default(),
            ))
        }
        "result" => {
            let body: serde_json::Value = serde_json::from_str(&event.body).ok()?;
            let cost = body.get("cost")?.as_f64().filter(|c| *c > 0.0)?;
            slot.add_cost(cost)
        }
        _ => None,
    }
}

/// A view of a stored row, as rules see it.
fn view_of(id: &str, row: Option<SessionRow>) -> Slot {
    let mut slot = Slot::default();
    slot.load(id, row);
    slot
}

/// The sessions: counted in this process, or in the database.
pub enum Sessions {
    Local(Local),
    Shared(Arc<dyn Store>),
}

/// Sessions counted in memory, one slot each.
pub struct Local {
    store: Arc<dyn Store>,
    slots: Mutex<HashMap<String, Arc<AsyncMutex<Slot>>>>,
    /// Past this many slots, idle ones are dropped (they reload on next use).
    max_slots: usize,
    /// Hashes of the ids of every session that may be stored: those stored
    /// at start and every one locked since. An id not among them has no row,
    /// so a new session costs no read.
    known: Mutex<HashSet<u64>>,
}

fn id_hash(id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(id, &mut h);
    std::hash::Hasher::finish(&h)
}

/// A held slot. Keep `hold` until the write is committed, so the slot is not
/// dropped from memory while its newest counts are still only in the queue.
struct Held {
    slot: OwnedMutexGuard<Slot>,
    hold: Arc<AsyncMutex<Slot>>,
}

impl Local {
    /// Lock session `id`, loading it from storage on first use.
    async fn lock(&self, id: &str) -> Result<Held, StoreError> {
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
            let new = {
                let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                known.insert(id_hash(id))
            };
            let row = if new {
                None
            } else {
                self.store.session(id).await?
            };
            slot.load(id, row);
        }
        Ok(Held { slot, hold })
    }
}

/// One decision's (or result's) turn in a session, from reading its
/// counters until its write is queued.
pub struct Turn {
    call: Reservation,
    state: TurnState,
    /// What rules see.
    view: SessionView,
}

enum TurnState {
    Local {
        held: Held,
        /// The slot before this turn counted, kept when the write may be refused.
        before: Option<Slot>,
    },
    /// A reservation in the database, taken back if the turn ends unqueued.
    Shared(Arc<dyn Store>),
    /// Queued, or nothing to take back.
    Done,
}

impl Drop for Turn {
    fn drop(&mut self) {
        // Ended before its write was queued (refused, timed out, or the caller
        // went away): nothing is recorded, so the reservation is taken back.
        if let TurnState::Shared(store) = std::mem::replace(&mut self.state, TurnState::Done) {
            let (id, tool) = (self.call.session_id.clone(), self.call.tool_name.clone());
            if tool.is_empty() {
                return;
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::warn!(session = %id, "a decision that was not made still counts in its session (no runtime to take it back)");
                return;
            };
            runtime.spawn(async move {
                if let Err(e) = store.release(&id, &tool).await {
                    tracing::warn!(error = %e, session = %id, "a decision that was not made still counts in its session");
                }
            });
        }
    }
}

/// Keeps what a queued write needs until it is committed.
pub struct Guard(GuardState);

enum GuardState {
    Local {
        _hold: Arc<AsyncMutex<Slot>>,
        /// Still held, with the slot as it was: the write may be refused.
        kept: Option<(OwnedMutexGuard<Slot>, Slot)>,
    },
    Shared {
        store: Arc<dyn Store>,
        id: String,
        tool_name: String,
    },
    Done,
}

impl Guard {
    /// The write was refused: the turn counts for nothing.
    pub async fn undo(self) -> Result<(), StoreError> {
        match self.0 {
            GuardState::Local { kept, .. } => {
                if let Some((mut slot, before)) = kept {
                    *slot = before;
                }
                Ok(())
            }
            GuardState::Shared {
                store,
                id,
                tool_name,
            } => store.release(&id, &tool_name).await,
            GuardState::Done => Ok(()),
        }
    }
}

impl Sessions {
    /// The sessions of `store`; counted in memory, they start from the ids it holds.
    pub async fn open(store: Arc<dyn Store>, max_slots: usize) -> Result<Sessions, StoreError> {
        if store.shared_sessions() {
            return Ok(Sessions::Shared(store));
        }
        let mut known = HashSet::new();
        store
            .each_session_id(&mut |id| {
                known.insert(id_hash(id));
            })
            .await?;
        Ok(Sessions::Local(Local {
            store,
            slots: Mutex::new(HashMap::new()),
            max_slots,
            known: Mutex::new(known),
        }))
    }

    /// Begin a decision: take the session's next place in the count.
    /// `None` when the session belongs to another key (and `call.admin` is
    /// false); nothing is counted then.
    /// On PostgreSQL the reservation runs in a task of its own: if the caller
    /// is dropped meanwhile, the turn still ends in that task, which gives the
    /// place back.
    pub async fn begin(&self, call: Reservation) -> Result<Option<Turn>, StoreError> {
        match self {
            Sessions::Local(local) => {
                let held = local.lock(&call.session_id).await?;
                if let Some(owner) = held.slot.principal.as_deref() {
                    if owner != call.principal && !call.admin {
                        return Ok(None);
                    }
                }
                let view = held.slot.view_at(call.at);
                Ok(Some(Turn {
                    call,
                    view,
                    state: TurnState::Local { held, before: None },
                }))
            }
            Sessions::Shared(store) => {
                let store = store.clone();
                tokio::spawn(Self::reserve(store, call))
                    .await
                    .map_err(|e| {
                        StoreError::Unavailable(format!("the session could not be read: {e}"))
                    })?
            }
        }
    }

    /// Reserve the next place of `call`'s session in the database.
    async fn reserve(store: Arc<dyn Store>, call: Reservation) -> Result<Option<Turn>, StoreError> {
        let Some(row) = store.reserve(&call).await? else {
            return Ok(None);
        };
        // The row counts this decision already; rules see the session before it.
        let mut slot = view_of(&call.session_id, Some(row));
        let view = &mut slot.view;
        view.action_count = view.action_count.saturating_sub(1);
        let key = if view.tool_counts.contains_key(&call.tool_name) {
            call.tool_name.as_str()
        } else {
            OTHER_TOOLS
        };
        if let Some(n) = view.tool_counts.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                view.tool_counts.remove(key);
            }
        }
        if view.action_count == 0 {
            view.started_at = call.at.timestamp();
        }
        Ok(Some(Turn {
            view: slot.view,
            call,
            state: TurnState::Shared(store),
        }))
    }

    /// The session as it stands, for deciding without counting; `None` when
    /// it has no decision yet.
    pub async fn peek(
        &self,
        id: &str,
    ) -> Result<Option<(Option<String>, SessionView)>, StoreError> {
        let slot = match self {
            Sessions::Local(local) => {
                // Only a session that exists is loaded, so that probing ids fills no memory.
                if local.store.session(id).await?.is_none() {
                    return Ok(None);
                }
                local.lock(id).await?.slot.clone()
            }
            Sessions::Shared(store) => view_of(id, store.session(id).await?),
        };
        Ok(slot
            .exists
            .then(|| (slot.principal.clone(), slot.view_at(Utc::now()))))
    }

    /// Add a reported cost to session `id`. Returns the change to write (none
    /// for a cost of zero) and the turn to keep until it is queued; `Ok(None)`
    /// when the total would no longer be a finite number.
    pub async fn add_cost(
        &self,
        id: &str,
        cost: f64,
    ) -> Result<Option<(Option<SessionChange>, Turn)>, StoreError> {
        let call = Reservation {
            session_id: id.to_string(),
            ..Default::default()
        };
        match self {
            Sessions::Local(local) => {
                let mut held = local.lock(id).await?;
                let change = if cost > 0.0 {
                    match held.slot.add_cost(cost) {
                        Some(row) => Some(SessionChange::Row(row)),
                        None => return Ok(None),
                    }
                } else {
                    None
                };
                let view = held.slot.view.clone();
                Ok(Some((
                    change,
                    Turn {
                        call,
                        view,
                        state: TurnState::Local { held, before: None },
                    },
                )))
            }
            Sessions::Shared(store) => {
                let current = store.session(id).await?.map_or(0.0, |r| r.estimated_cost);
                if !(current + cost).is_finite() {
                    return Ok(None);
                }
                let change = (cost > 0.0).then(|| SessionChange::Cost {
                    id: id.to_string(),
                    amount: cost,
                });
                Ok(Some((
                    change,
                    Turn {
                        call,
                        view: SessionView::default(),
                        state: TurnState::Done,
                    },
                )))
            }
        }
    }
}

impl Turn {
    /// When this turn's decision is made: now, on SQLite (the session is
    /// held); on PostgreSQL, the time its reservation recorded as `last_at`.
    pub fn now(&self) -> DateTime<Utc> {
        match self.state {
            TurnState::Shared(_) => self.call.at,
            _ => Utc::now(),
        }
    }

    /// What rules see: the session before this decision.
    pub fn view(&self) -> &SessionView {
        &self.view
    }

    /// Count this decision's outcome; returns the change to write with it.
    /// With `undoable`, the turn can be taken back if the write is refused.
    pub fn count(&mut self, action: Action, now: DateTime<Utc>, undoable: bool) -> SessionChange {
        let c = &self.call;
        match &mut self.state {
            TurnState::Local { held, before } => {
                if undoable {
                    *before = Some(held.slot.clone());
                }
                SessionChange::Row(held.slot.count(
                    action,
                    &c.tool_name,
                    now,
                    c.agent_id.as_deref(),
                    c.user_id.as_deref(),
                    &c.principal,
                ))
            }
            TurnState::Shared(_) | TurnState::Done => SessionChange::Outcome {
                id: c.session_id.clone(),
                action,
            },
        }
    }

    /// The write is queued: let other turns in, and keep what the commit
    /// needs. A turn that counted with `undoable` holds the session (in this
    /// process) until the commit, so a second use of the same approval waits
    /// and then finds it used.
    pub fn queued(mut self) -> Guard {
        Guard(match std::mem::replace(&mut self.state, TurnState::Done) {
            TurnState::Local { held, before } => GuardState::Local {
                _hold: held.hold,
                kept: before.map(|b| (held.slot, b)),
            },
            TurnState::Shared(store) => GuardState::Shared {
                store,
                id: std::mem::take(&mut self.call.session_id),
                tool_name: std::mem::take(&mut self.call.tool_name),
            },
            TurnState::Done => GuardState::Done,
        })
    }
}

/// Tool name -> count, as the API shows it.
pub fn tool_counts(json: &str) -> BTreeMap<String, u64> {
    serde_json::from_str(json).unwrap_or_default()
}
