//! Group commit: one task owns the write path; concurrent decisions queue
//! their events and session updates, and whatever has queued while the last
//! transaction committed goes into the next one, together.
//!
//! The queue is bounded. When storage is slow it fills, and a decision then
//! waits for room (up to a limit, then fails with 503): back-pressure, never
//! a dropped record. A decision is answered only after its transaction
//! committed and reached the disk, so every `log_id` a client holds is
//! durable. A store that can take the next batch before the last is on disk
//! ([`Store::hand_over`]) gets it, so that its writing and the disk's wait
//! overlap.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::session::Guard;
use crate::store::{Appended, Store, StoreError, Write};

/// Work for one caller: applied together, acknowledged together.
struct Job {
    write: Write,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    /// How long a caller may wait for room in the queue.
    enqueue_timeout: Duration,
}

/// What a write gets once the writer task has ended.
pub fn stopped() -> StoreError {
    StoreError::Unavailable(
        "the audit writer stopped (the server's log says why); restart the server".into(),
    )
}

/// A queued append; await it to learn whether it committed.
pub struct Pending(oneshot::Receiver<Result<(), StoreError>>);

impl Pending {
    pub async fn committed(mut self) -> Result<(), StoreError> {
        self.wait().await
    }

    /// Wait for the commit; cancelled, it can be waited for again.
    async fn wait(&mut self) -> Result<(), StoreError> {
        (&mut self.0).await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Wait for the commit while `guard` holds what the write needs, then
    /// let it go; a refused write's turn is taken back. If the caller goes
    /// away first, the wait goes on in a task of its own, so the session
    /// stays held until the write is committed and a refused write still
    /// counts for nothing.
    pub async fn see_through(self, guard: Guard) -> Result<(), StoreError> {
        let mut wait = SeeThrough {
            pending: self,
            guard: Some(guard),
        };
        let result = wait.pending.wait().await;
        let guard = wait.guard.take().expect("held until the commit");
        if let Err(StoreError::Conflict(_)) = &result {
            // In a task, so that going away now does not cut the undo short.
            match tokio::spawn(guard.undo()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "a refused write still counts in its session");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a refused write may still count in its session");
                }
            }
        }
        result
    }
}

/// A commit wait under way (see [`Pending::see_through`]).
struct SeeThrough {
    pending: Pending,
    /// Taken once the commit is known.
    guard: Option<Guard>,
}

impl Drop for SeeThrough {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                "a write's commit was not waited for (no runtime); its session is let go before it commits"
            );
            return;
        };
        // Dropped mid-wait: the same receiver, awaited by a task of its own.
        let pending = Pending(std::mem::replace(&mut self.pending.0, oneshot::channel().1));
        runtime.spawn(pending.see_through(guard));
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
        let task = tokio::spawn(async move {
            use futures::FutureExt as _;
            let ran = std::panic::AssertUnwindSafe(run(rx, store, secret, max_batch))
                .catch_unwind()
                .await;
            if let Err(panic) = ran {
                tracing::error!(
                    cause = crate::audit::panic_message(&*panic),
                    "the audit writer failed and stopped: decisions are refused (503) and the server shuts down, to be restarted"
                );
            }
        });
        (
            Writer {
                queue,
                enqueue_timeout,
            },
            task,
        )
    }

    /// Queue a write. Queue order is commit order, so a caller that queues
    /// while holding a session's lock keeps that session's updates in order.
    pub async fn submit(&self, write: Write) -> Result<Pending, StoreError> {
        let (done, rx) = oneshot::channel();
        let job = Job { write, done };
        match tokio::time::timeout(self.enqueue_timeout, self.queue.send(job)).await {
            Ok(Ok(())) => Ok(Pending(rx)),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(StoreError::Busy),
        }
    }

    /// Whether the writer task still takes writes (it ends only when every
    /// handle is dropped, or when it fails).
    pub fn running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// Jobs waiting for the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Batches a store that takes them without waiting ([`Store::hand_over`])
/// may hold at once: one being written while the one before it reaches the
/// disk.
const UNDER_WAY: usize = 2;

/// A batch handed over, with its callers.
struct Batch {
    answer: oneshot::Receiver<Appended>,
    waiters: Vec<oneshot::Sender<Result<(), StoreError>>>,
    started: Instant,
}

/// Send each caller in a batch its result.
fn answer(
    waiters: Vec<oneshot::Sender<Result<(), StoreError>>>,
    started: Instant,
    results: Appended,
) {
    let count = waiters.len();
    metrics::histogram!("tame_audit_batch_size").record(count as f64);
    // From hand-over to answer: the commit, its sync, and any wait behind
    // the batch before it.
    metrics::histogram!("tame_audit_commit_seconds").record(started.elapsed().as_secs_f64());
    match results {
        Ok(results) => {
            for (done, result) in waiters.into_iter().zip(results) {
                let _ = done.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = count, "audit commit failed; the decisions in it are answered 503");
            for done in waiters {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

/// The outcome of the oldest batch under way; never, when there is none.
async fn oldest(under_way: &mut VecDeque<Batch>) -> Appended {
    match under_way.front_mut() {
        Some(batch) => (&mut batch.answer).await.unwrap_or_else(|_| Err(stopped())),
        None => std::future::pending().await,
    }
}

async fn run(
    mut rx: mpsc::Receiver<Job>,
    store: Arc<dyn Store>,
    secret: Arc<[u8]>,
    max_batch: usize,
) {
    let mut jobs = Vec::with_capacity(max_batch);
    let mut under_way = VecDeque::with_capacity(UNDER_WAY);
    let mut open = true;
    while open || !under_way.is_empty() {
        let room = open && under_way.len() < UNDER_WAY;
        tokio::select! {
            biased;
            results = oldest(&mut under_way) => {
                let batch = under_way.pop_front().expect("a batch under way");
                answer(batch.waiters, batch.started, results);
                continue;
            }
            received = rx.recv_many(&mut jobs, max_batch), if room => {
                if received == 0 {
                    open = false;
                    continue;
                }
            }
        }
        // Let the requests that are ready run first: those that reach their
        // write join this batch rather than wait for the next commit. More
        // to a commit means fewer commits, each of which rewrites the log's
        // last pages and waits for a sync.
        loop {
            tokio::task::yield_now().await;
            let before = jobs.len();
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            if jobs.len() == before || jobs.len() >= max_batch {
                break;
            }
        }
        let started = Instant::now();
        let (writes, waiters): (Vec<Write>, Vec<_>) =
            jobs.drain(..).map(|j| (j.write, j.done)).unzip();
        match store.hand_over(&secret, writes) {
            Ok(answer) => under_way.push_back(Batch {
                answer,
                waiters,
                started,
            }),
            // A store that takes one batch at a time: this one, now.
            Err(writes) => {
                let results = store.append(&secret, writes).await;
                answer(waiters, started, results);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Action;
    use crate::session::Sessions;
    use crate::store::Reservation;

    fn call(session: &str) -> Reservation {
        Reservation {
            session_id: session.into(),
            tool_name: "read_file".into(),
            at: chrono::Utc::now(),
            agent_id: None,
            user_id: None,
            principal: "agent".into(),
            admin: false,
        }
    }

    /// A store on a new SQLite file, and the folder that holds it.
    async fn fresh_store() -> (tempfile::TempDir, Arc<dyn crate::store::Store>) {
        let (dir, store) = crate::store::sqlite::SqliteStore::temporary().await;
        (dir, Arc::new(store))
    }

    #[tokio::test]
    async fn a_refused_write_whose_caller_went_away_is_still_taken_back() {
        let (_dir, store) = fresh_store().await;
        let sessions = Sessions::open(store, 100).await.unwrap();
        // A turn that may be refused (it uses an approval): counted, queued.
        let mut turn = sessions.begin(call("s")).await.unwrap().unwrap();
        let now = turn.now();
        turn.count(Action::Allow, now, true);
        let (done, commit) = oneshot::channel();
        let waiting = tokio::spawn(Pending(commit).see_through(turn.queued()));
        tokio::task::yield_now().await;
        // The caller goes away while the commit is awaited; then the write
        // is refused.
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        let _ = done.send(Err(StoreError::Conflict("refused".into())));
        // The session's next turn waits for the refused one, which counts
        // for nothing.
        let next = tokio::time::timeout(Duration::from_secs(5), sessions.begin(call("s")))
            .await
            .expect("the session is let go")
            .unwrap()
            .unwrap();
        assert_eq!(next.view().action_count, 0);
    }

    #[tokio::test]
    async fn a_batch_is_written_while_the_one_before_waits_for_the_disk() {
        let (_dir, sqlite) = crate::store::sqlite::SqliteStore::temporary().await;
        let sqlite = Arc::new(sqlite);
        let store: Arc<dyn Store> = sqlite.clone();
        let secret: Arc<[u8]> = Arc::from(&b"secret"[..]);
        let (writer, _task) = Writer::start(store.clone(), secret, 16, 16, Duration::from_secs(1));
        let hold = |on: bool| {
            let hooks = sqlite.sync_hooks();
            hooks.hold.store(on, std::sync::atomic::Ordering::Release);
        };
        hold(true);
        let first = writer.submit(Write::decision("a")).await.unwrap();
        sqlite.wait_for_decisions(1).await;
        // Fails (times out) with one batch at a time: the second would wait
        // for the first's answer, held with its sync.
        let second = writer.submit(Write::decision("b")).await.unwrap();
        sqlite.wait_for_decisions(2).await;
        hold(false);
        for pending in [first, second] {
            tokio::time::timeout(Duration::from_secs(10), pending.committed())
                .await
                .expect("answered once synced")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_writer_task_that_ended_is_reported_and_refuses_writes() {
        let (_dir, store) = fresh_store().await;
        let secret: Arc<[u8]> = Arc::from(&b"secret"[..]);
        let (writer, task) = Writer::start(store, secret, 16, 16, Duration::from_secs(1));
        assert!(writer.running());
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(!writer.running());
        let refused = writer.submit(Write::default()).await.err();
        assert!(
            matches!(&refused, Some(StoreError::Unavailable(m)) if m.contains("writer stopped")),
            "{refused:?}"
        );
    }
}
