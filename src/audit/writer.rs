//! Group commit: one task owns the write path; concurrent decisions queue
//! their events and session updates, and whatever has queued while the last
//! transaction committed goes into the next one, together.
//!
//! The queue is bounded. When storage is slow it fills, and a decision then
//! waits for room (up to a limit, then fails with 503): back-pressure, never
//! a dropped record. A decision is answered only after its transaction
//! committed, so every `log_id` a client holds is durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::Event;
use crate::store::{SessionRow, Store, StoreError};

/// Work for one caller: appended together, acknowledged together.
struct Job {
    events: Vec<Event>,
    sessions: Vec<SessionRow>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    /// How long a caller may wait for room in the queue.
    enqueue_timeout: Duration,
}

/// A queued append; await it to learn whether it committed.
pub struct Pending(oneshot::Receiver<Result<(), StoreError>>);

impl Pending {
    pub async fn committed(self) -> Result<(), StoreError> {
        self.0
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the audit writer stopped".into())))
    }
}

impl Writer {
    /// Start the writer task. It ends when every `Writer` handle is dropped,
    /// after committing what is queued.
    pub fn start(
        store: Arc<dyn Store>,
        secret: Arc<[u8]>,
        capacity: usize,
        max_batch: usize,
        enqueue_timeout: Duration,
    ) -> (Writer, tokio::task::JoinHandle<()>) {
        let (queue, rx) = mpsc::channel(capacity);
        let task = tokio::spawn(run(rx, store, secret, max_batch));
        (
            Writer {
                queue,
                enqueue_timeout,
            },
            task,
        )
    }

    /// Queue events and session updates. Queue order is commit order, so a
    /// caller that queues while holding a session's lock keeps that
    /// session's updates in order.
    pub async fn submit(
        &self,
        events: Vec<Event>,
        sessions: Vec<SessionRow>,
    ) -> Result<Pending, StoreError> {
        let (done, rx) = oneshot::channel();
        let job = Job {
            events,
            sessions,
            done,
        };
        match tokio::time::timeout(self.enqueue_timeout, self.queue.send(job)).await {
            Ok(Ok(())) => Ok(Pending(rx)),
            Ok(Err(_)) => Err(StoreError::Unavailable("the audit writer stopped".into())),
            Err(_) => Err(StoreError::Busy),
        }
    }

    /// Jobs waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    secret: Arc<[u8]>,
    max_batch: usize,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let started = Instant::now();
        let mut events = Vec::new();
        let mut sessions: Vec<SessionRow> = Vec::new();
        for job in &mut jobs {
            events.append(&mut job.events);
            for s in job.sessions.drain(..) {
                // Later updates of a session in the batch supersede earlier ones.
                match sessions.iter_mut().find(|x| x.id == s.id) {
                    Some(slot) => *slot = s,
                    None => sessions.push(s),
                }
            }
        }
        let count = events.len();
        let result = store.append(&secret, events, sessions).await;
        metrics::histogram!("tame_audit_batch_size").record(jobs.len() as f64);
        metrics::histogram!("tame_audit_commit_seconds").record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::error!(error = %e, events = count, "audit commit failed; the decisions in it are answered 503");
        }
        for job in jobs.drain(..) {
            let _ = job.done.send(result.clone());
        }
    }
}
