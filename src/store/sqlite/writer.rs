//! SQLite's write path: one thread that owns a connection of its own.
//!
//! Each batch of the group commit is applied in one transaction, with
//! prepared statements kept between batches: a batch is handed over once and
//! answered once, however many statements it takes. That transaction writes
//! only at the end of the log (and to approvals).
//!
//! The session tables (`sessions`, and `session_events`, the log's index by
//! session) are filled in behind it: the thread gathers what they lack and,
//! at most a second later (sooner when much has gathered), writes it in key
//! order, a chunk per transaction between batches. A reader first has them
//! brought up to date ([`Writer::settle`]). The log is the record; those
//! tables are what it implies, up to `sessions_state.applied_seq`, and each
//! row says up to which event it counts (`log_seq`). At start the events
//! after `applied_seq` are counted again where a row lacks them, so nothing
//! a crash interrupted is missing or counted twice.
//!
//! A commit returns once its pages are written to the WAL; a thread of its
//! own then syncs the WAL to disk, and only after that are the batch's
//! callers answered. The writer meanwhile applies the next batch, so the
//! disk's wait and the next batch's work overlap, and one sync covers every
//! batch committed while the last one ran. (The writer's own connection
//! keeps the WAL open, so SQLite never removes the file under it.)
//!
//! A second thread, with a connection of its own, copies the WAL into the
//! database file every [`CHECKPOINT_EVERY`] (a passive checkpoint: it waits
//! for no one, and no one waits for it). The writer's own checkpoints, which
//! let the WAL start over, then find little left to copy and sync.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{INSERT_EVENT, UPSERT_SESSION};
use crate::audit::{self, ChainState, Event};
use crate::session;
use crate::store::queries;
use crate::store::rows::{self, Get};
use crate::store::{
    Appended, ApprovalOp, EVENT_COLUMNS, SessionChange, SessionRow, StoreError, Write,
};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The longest the session tables lag behind the log.
const SETTLE_AFTER: Duration = Duration::from_secs(1);
/// Events gathered before the session tables are filled in anyway.
const SETTLE_EVENTS: usize = 50_000;
/// WAL pages after which the writer's commit itself checkpoints what the
/// checkpointer has not copied yet (little, while it keeps up), so that the
/// WAL can start over: under steady writes the checkpointer's passive
/// checkpoints seldom find the WAL fully copied, which a restart needs.
const CHECKPOINT_PAGES: u32 = 16_384;
/// How often the checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

enum Job {
    Append {
        secret: Vec<u8>,
        writes: Vec<Write>,
        done: oneshot::Sender<Appended>,
    },
    Settle(oneshot::Sender<Result<(), StoreError>>),
    /// Make the thread fail as a bug in it would.
    #[cfg(test)]
    Crash,
}

/// The handle to the writing thread. Once it is dropped, the thread fills
/// in the session tables and ends; what a stop cuts short there is counted
/// at the next start.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    thread: std::thread::JoinHandle<()>,
    /// Set once a sync of the WAL has failed: no further batch is written.
    sync_failed: Arc<AtomicBool>,
    #[cfg(test)]
    hooks: Arc<SyncHooks>,
}

/// A batch's callers, to be answered once the WAL holding it is on disk.
struct Answer {
    done: oneshot::Sender<Appended>,
    outcome: Appended,
}

/// Ways for tests to hold or fail the syncs of the WAL.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct SyncHooks {
    /// Set, every sync waits until it is cleared.
    pub(crate) hold: AtomicBool,
    /// Set, the next sync fails.
    pub(crate) fail: AtomicBool,
    /// The file the syncer syncs.
    pub(crate) wal: Option<std::path::PathBuf>,
}

/// What appends get once a sync of the WAL has failed.
fn unsynced(why: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "the audit log could not be synced to disk ({why}); restart the server"
    ))
}

pub(super) fn stopped() -> StoreError {
    StoreError::Unavailable(
        "the SQLite writer stopped (the server's log says why); restart the server".into(),
    )
}

impl Writer {
    /// Open the database file at `path` (already created and migrated),
    /// bring its session tables up to the log, and start the thread that
    /// writes to it.
    pub(super) async fn start(path: &Path, busy_timeout: Duration) -> Result<Writer, StoreError> {
        let mut conn = open(path, busy_timeout, "for writing")?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
        // Commits leave the WAL's sync to the syncer (see the module's
        // documentation); without a WAL file (a database in memory) there
        // is nothing to sync, and commits keep their own.
        let wal = if mode.eq_ignore_ascii_case("wal") {
            let wal = open_wal(&conn)?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Some(wal)
        } else {
            None
        };
        let sync_failed = Arc::new(AtomicBool::new(false));
        #[cfg(test)]
        let hooks = Arc::new(SyncHooks {
            wal: wal.as_ref().map(|(_, path)| path.clone()),
            ..Default::default()
        });
        let syncer = start_syncer(
            wal.map(|(file, _)| file),
            sync_failed.clone(),
            #[cfg(test)]
            hooks.clone(),
        )?;
        let checkpointer = start_checkpointer(path, busy_timeout, CHECKPOINT_EVERY)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let refusing = sync_failed.clone();
        let (ready, started) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("tame-sqlite-writer".into())
            .spawn(move || {
                let caught_up = catch_up(&mut conn);
                let failed = caught_up.is_err();
                let _ = ready.send(caught_up);
                if failed {
                    syncer.stop();
                } else {
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run(conn, rx, syncer, &refusing, Behind::default());
                    }));
                    if let Err(panic) = ran {
                        tracing::error!(
                            cause = audit::panic_message(&*panic),
                            "the SQLite writer failed and stopped: decisions are refused (503) and the server shuts down, to be restarted; what it had committed is kept, and the session tables are brought up to the log at the next start"
                        );
                    }
                }
                // The checkpointer ends with the writer.
                drop(checkpointer);
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        started.await.map_err(|_| stopped())??;
        Ok(Writer {
            jobs,
            thread,
            sync_failed,
            #[cfg(test)]
            hooks,
        })
    }

    /// Whether the thread still takes writes (it ends only with this
    /// handle, or when it fails) and the WAL still syncs; else why not.
    pub(super) fn state(&self) -> Result<(), StoreError> {
        if self.sync_failed.load(Ordering::Acquire) {
            Err(unsynced("the server's log says why"))
        } else if self.thread.is_finished() {
            Err(stopped())
        } else {
            Ok(())
        }
    }

    #[cfg(test)]
    pub(super) fn hooks(&self) -> &SyncHooks {
        &self.hooks
    }

    /// Make the thread fail as a bug in it would.
    #[cfg(test)]
    pub(super) fn crash(&self) {
        let _ = self.jobs.send(Job::Crash);
    }

    /// Apply `writes` in one transaction, after those handed over before;
    /// see [`crate::store::Store::append`]. The receiver gets the outcome
    /// once the transaction is on disk.
    pub(super) fn hand_over(
        &self,
        secret: &[u8],
        writes: Vec<Write>,
    ) -> oneshot::Receiver<Appended> {
        let (done, answer) = oneshot::channel();
        let job = Job::Append {
            secret: secret.to_vec(),
            writes,
            done,
        };
        if let Err(mpsc::SendError(Job::Append { done, .. })) = self.jobs.send(job) {
            let _ = done.send(Err(stopped()));
        }
        answer
    }

    /// Fill in the session tables with everything committed so far.
    pub(super) async fn settle(&self) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs.send(Job::Settle(done)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A connection of this module's own to the database file at `path`, whose
/// commits and checkpoints are synced to disk before they return (the
/// writer's own commits then leave that to the syncer).
fn open(path: &Path, busy_timeout: Duration, purpose: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        StoreError::Unavailable(format!("cannot open {} {purpose}: {e}", path.display()))
    })?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// Open the WAL of `conn`'s database (SQLite's own name for it, after any
/// symbolic link), to sync it, and sync the folder that holds it, so that
/// the file itself is there after a power cut.
fn open_wal(conn: &Connection) -> Result<(File, std::path::PathBuf), StoreError> {
    // A read opens the WAL, if no other connection has yet.
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let db = conn
        .path()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| StoreError::Unavailable("the database file has no name".into()))?;
    let path = std::path::PathBuf::from(format!("{db}-wal"));
    let cannot = |what: &str, p: &Path, e: std::io::Error| {
        StoreError::Unavailable(format!("cannot {what} {}: {e}", p.display()))
    };
    let file = File::options()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| cannot("open, to sync it,", &path, e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| cannot("sync the folder", dir, e))?;
    }
    Ok((file, path))
}

/// The thread that syncs the WAL and answers what it covers.
struct Syncer {
    answers: mpsc::Sender<Answer>,
    thread: std::thread::JoinHandle<()>,
}

impl Syncer {
    /// Let it answer what it holds, and wait for it to end.
    fn stop(self) {
        drop(self.answers);
        let _ = self.thread.join();
    }
}

/// Start the thread that answers each batch once the WAL holding it is on
/// disk: it takes every answer waiting, syncs `wal` once for all of them,
/// and sends them. A sync that fails sets `failed`, answers 503 to what it
/// held and ends: whether a failed sync's pages reached the disk cannot be
/// known, so no further batch is written (the server shuts down, and
/// SQLite's recovery at the next start keeps what the disk holds; a
/// refused batch may be among it). Ends, after answering what it holds,
/// once it is stopped.
fn start_syncer(
    wal: Option<File>,
    failed: Arc<AtomicBool>,
    #[cfg(test)] hooks: Arc<SyncHooks>,
) -> Result<Syncer, StoreError> {
    let (answers, waiting) = mpsc::channel::<Answer>();
    let thread = std::thread::Builder::new()
        .name("tame-sqlite-sync".into())
        .spawn(move || {
            while let Ok(first) = waiting.recv() {
                let mut batch = vec![first];
                batch.extend(waiting.try_iter());
                #[cfg(test)]
                while hooks.hold.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                #[cfg(test)]
                let synced = match hooks.fail.swap(false, Ordering::AcqRel) {
                    true => Err(std::io::Error::other("made to fail")),
                    false => wal.as_ref().map_or(Ok(()), File::sync_data),
                };
                #[cfg(not(test))]
                let synced = wal.as_ref().map_or(Ok(()), File::sync_data);
                if let Err(e) = synced {
                    failed.store(true, Ordering::Release);
                    tracing::error!(error = %e, "the audit log could not be synced to disk: decisions are refused (503) and the server shuts down, to be restarted");
                    let refused = unsynced(&e.to_string());
                    for a in batch.into_iter().chain(waiting.try_iter()) {
                        let _ = a.done.send(Err(refused.clone()));
                    }
                    return;
                }
                for a in batch {
                    let _ = a.done.send(a.outcome);
                }
            }
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start the syncer: {e}")))?;
    Ok(Syncer { answers, thread })
}

/// Start a thread that, every `every`, copies what the WAL holds into the
/// database file and syncs it, on a connection of its own, until the
/// returned sender is dropped. It never waits for the writer, nor the
/// writer for it (a passive checkpoint), so the writer's own checkpoints,
/// after which the WAL starts over, find little left to copy and sync, and
/// decisions do not wait for them.
fn start_checkpointer(
    path: &Path,
    busy_timeout: Duration,
    every: Duration,
) -> Result<mpsc::Sender<()>, StoreError> {
    let conn = open(path, busy_timeout, "to checkpoint")?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("tame-sqlite-checkpoint".into())
        .spawn(move || {
            let mut failing = false;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                // (busy, pages in the WAL, pages copied): busy only when
                // another checkpoint runs, which does the same work.
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0)) {
                    Ok(_) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "could not copy the WAL into the database file; the writer's own checkpoints still do");
                    }
                    Err(_) => {}
                }
            }
        })
        .map_err(|e| StoreError::Unavailable(format!("cannot start the checkpointer: {e}")))?;
    Ok(stop)
}

fn run(
    mut conn: Connection,
    jobs: mpsc::Receiver<Job>,
    syncer: Syncer,
    sync_failed: &AtomicBool,
    mut behind: Behind,
) {
    // The session tables are filled in by rounds, a chunk at a time between
    // batches, so that decisions never wait for a whole round.
    let mut round: Option<Round> = None;
    loop {
        let job = if round.is_some() {
            match jobs.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        } else if let Some(since) = behind.since {
            match jobs.recv_timeout(SETTLE_AFTER.saturating_sub(since.elapsed())) {
                Ok(job) => Some(job),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match jobs.recv() {
                Ok(job) => Some(job),
                Err(mpsc::RecvError) => break,
            }
        };
        match job {
            Some(Job::Append {
                secret,
                writes,
                done,
            }) => {
                if sync_failed.load(Ordering::Acquire) {
                    let _ = done.send(Err(unsynced("the server's log says why")));
                    continue;
                }
                let outcome = append(&mut conn, &secret, writes, &mut behind);
                if let Err(mpsc::SendError(a)) = syncer.answers.send(Answer { done, outcome }) {
                    let _ = a.done.send(Err(stopped()));
                }
            }
            Some(Job::Settle(done)) => {
                let _ = done.send(settle(&mut conn, &mut round, &mut behind));
                continue;
            }
            #[cfg(test)]
            Some(Job::Crash) => panic!("the writer was made to fail"),
            None => {}
        }
        if round.is_none() && behind.due() {
            round = Some(behind.take());
        }
        if let Some(r) = &mut round {
            match r.step(&mut conn, CHUNK) {
                Ok(true) => behind.recycle(round.take().expect("a round under way")),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the session tables could not be brought up to the audit log; trying again");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    if let Err(e) = settle(&mut conn, &mut round, &mut behind) {
        tracing::warn!(error = %e, "the session tables were left behind the audit log; they are brought up to it at the next start");
    }
    // The last answers go out while this connection still holds the WAL open.
    syncer.stop();
}

/// Finish the round under way, then fill in everything else. A round that
/// fails stays where it stopped, to be finished by the next try.
fn settle(
    conn: &mut Connection,
    round: &mut Option<Round>,
    behind: &mut Behind,
) -> Result<(), StoreError> {
    loop {
        let r = match round {
            Some(r) => r,
            None if behind.since.is_some() => round.insert(behind.take()),
            None => return Ok(()),
        };
        r.step(conn, usize::MAX)?;
        behind.recycle(round.take().expect("a round under way"));
    }
}

/// Rows and index entries written per transaction of a round.
const CHUNK: usize = 2_000;

/// What the session tables lack of the log.
#[derive(Default)]
struct Behind {
    /// Session rows in commit order, with the seq of the last event each
    /// counts; a session's newest row is the one that counts.
    rows: Vec<(SessionRow, i64)>,
    /// (session, seq) of each event.
    events: Vec<(String, i64)>,
    /// The log's last seq these come from.
    through: i64,
    /// When the oldest of them was committed.
    since: Option<Instant>,
}

impl Behind {
    fn add(&mut self, events: Vec<(String, i64)>, rows: Vec<(SessionRow, i64)>, through: i64) {
        self.events.extend(events);
        self.rows.extend(rows);
        self.through = through;
        self.since.get_or_insert_with(Instant::now);
    }

    fn due(&self) -> bool {
        self.since
            .is_some_and(|t| t.elapsed() >= SETTLE_AFTER || self.events.len() >= SETTLE_EVENTS)
    }

    /// Everything gathered, as a round to write, in key order so that
    /// neighbouring keys share the pages they change.
    fn take(&mut self) -> Round {
        let taken = std::mem::take(self);
        let mut rows = taken.rows;
        // Each session's newest row: the first of its run once sorted (a
        // write changes one session and appends to the log, so no two rows
        // share a session and a seq).
        rows.sort_unstable_by(|a, b| a.0.id.cmp(&b.0.id).then(b.1.cmp(&a.1)));
        rows.dedup_by(|later, kept| later.0.id == kept.0.id);
        let mut events = taken.events;
        events.sort_unstable();
        Round {
            rows,
            events,
            through: taken.through,
            rows_done: 0,
            events_done: 0,
        }
    }

    /// Keep the buffers of a written round for what gathers next: growing
    /// new ones each second would take fresh (zeroed) memory each time.
    fn recycle(&mut self, round: Round) {
        fn reuse<T>(mut spare: Vec<T>, current: &mut Vec<T>) {
            if spare.capacity() > current.capacity() {
                spare.clear();
                spare.append(current);
                *current = spare;
            }
        }
        reuse(round.rows, &mut self.rows);
        reuse(round.events, &mut self.events);
    }
}

/// Rows and index entries on their way to the session tables. Each row
/// carries the seq it counts through, so a round cut short by a crash is
/// finished by the catch-up at start without counting anything twice.
struct Round {
    rows: Vec<(SessionRow, i64)>,
    events: Vec<(String, i64)>,
    through: i64,
    rows_done: usize,
    events_done: usize,
}

impl Round {
    /// Write up to `budget` more rows and entries in one transaction;
    /// `true` once the whole round is written.
    fn step(&mut self, conn: &mut Connection, budget: usize) -> Result<bool, StoreError> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows_end = self.rows.len().min(self.rows_done.saturating_add(budget));
        for (row, seq) in &self.rows[self.rows_done..rows_end] {
            upsert_session(&tx, row, *seq)?;
        }
        let left = budget - (rows_end - self.rows_done);
        let events_end = self.events.len().min(self.events_done.saturating_add(left));
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO session_events (session_id, seq) VALUES (?, ?)",
            )?;
            for (id, seq) in &self.events[self.events_done..events_end] {
                insert.execute(params![id, seq])?;
            }
        }
        let done = rows_end == self.rows.len() && events_end == self.events.len();
        if done {
            tx.prepare_cached(
                "UPDATE sessions_state SET applied_seq = ? WHERE id = 1 AND applied_seq < ?",
            )?
            .execute(params![self.through, self.through])?;
        }
        tx.commit()?;
        (self.rows_done, self.events_done) = (rows_end, events_end);
        Ok(done)
    }
}

/// Count the events after `applied_seq` into the session tables: those a
/// stop left out. A row that counts an event already is not counted again.
fn catch_up(conn: &mut Connection) -> Result<(), StoreError> {
    let applied: i64 = conn.query_row(
        "SELECT applied_seq FROM sessions_state WHERE id = 1",
        [],
        |r| r.get(0),
    )?;
    let mut events: Vec<(i64, Event)> = Vec::new();
    {
        let mut select = conn.prepare(&format!(
            "SELECT seq, {EVENT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq"
        ))?;
        let mut found = select.query([applied])?;
        while let Some(r) = found.next()? {
            events.push((r.int("seq")?, rows::event(r)?));
        }
    }
    let Some(&(last, _)) = events.last() else {
        return Ok(());
    };
    // Each session's row as it stands, and the seq it counts through.
    let mut rows: HashMap<String, (Option<SessionRow>, i64)> = HashMap::new();
    let mut seqs = Vec::with_capacity(events.len());
    for (seq, e) in &events {
        if e.session_id.is_empty() {
            continue;
        }
        seqs.push((e.session_id.clone(), *seq));
        let (row, counted) = match rows.remove(&e.session_id) {
            Some(known) => known,
            None => stored_session(conn, &e.session_id)?,
        };
        let row = if *seq > counted {
            session::replay(row.clone(), e).or(row)
        } else {
            row
        };
        rows.insert(e.session_id.clone(), (row, counted.max(*seq)));
    }
    let mut behind = Behind::default();
    let rows = rows
        .into_values()
        .filter_map(|(row, seq)| row.map(|row| (row, seq)));
    behind.add(seqs, rows.collect(), last);
    behind.take().step(conn, usize::MAX)?;
    tracing::info!(
        events = events.len(),
        "counted the audit log's latest events into the session tables"
    );
    Ok(())
}

/// Session `id`'s stored row and the seq it counts through (0: no row).
fn stored_session(conn: &Connection, id: &str) -> Result<(Option<SessionRow>, i64), StoreError> {
    let mut select = conn.prepare_cached(&format!("{} WHERE id = ?", super::SESSIONS))?;
    let mut found = select.query([id])?;
    Ok(match found.next()? {
        Some(r) => (Some(rows::session(r)?), r.int("log_seq")?),
        None => (None, 0),
    })
}

/// Append the batch `writes` to the log in one transaction; once it is
/// committed, hand what the session tables lack of it to `behind`.
fn append(
    conn: &mut Connection,
    secret: &[u8],
    writes: Vec<Write>,
    behind: &mut Behind,
) -> Appended {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut at = read_chain(&tx)?.unwrap_or_else(ChainState::empty);
    let mut results = Vec::with_capacity(writes.len());
    let mut seqs = Vec::new();
    let mut rows = Vec::new();
    for w in writes {
        // Sessions are counted in memory here: every change is a whole row,
        // counting through the write's last event.
        let changed = rows_of(w.sessions)?;
        if w.approvals.is_empty() {
            append_events(&tx, secret, &mut at, &w.events, &mut seqs)?;
            rows.extend(changed.into_iter().map(|row| (row, at.head_seq)));
            results.push(Ok(()));
            continue;
        }
        // A conditional write: all of it, or none of it.
        let sp = tx.savepoint()?;
        let mut applied = true;
        for op in &w.approvals {
            if !apply_approval(&sp, op)? {
                applied = false;
                break;
            }
        }
        if applied {
            let mut moved = at.clone();
            let mut added = Vec::new();
            append_events(&sp, secret, &mut moved, &w.events, &mut added)?;
            sp.commit()?;
            at = moved;
            seqs.extend(added);
            rows.extend(changed.into_iter().map(|row| (row, at.head_seq)));
            results.push(Ok(()));
        } else {
            // Dropping the savepoint rolls it back.
            drop(sp);
            results.push(Err(StoreError::Conflict(
                "the approval was resolved, used or expired meanwhile".into(),
            )));
        }
    }
    seal(&tx, secret, &at)?;
    tx.commit()?;
    behind.add(seqs, rows, at.head_seq);
    Ok(results)
}

/// The whole rows among `changes`; this store counts no other way.
fn rows_of(changes: Vec<SessionChange>) -> Result<Vec<SessionRow>, StoreError> {
    changes
        .into_iter()
        .map(|c| match c {
            SessionChange::Row(row) => Ok(row),
            other => Err(StoreError::Invalid(format!(
                "SQLite keeps session counters in the server, not as {other:?}"
            ))),
        })
        .collect()
}

fn read_chain(conn: &Connection) -> Result<Option<ChainState>, StoreError> {
    let mut select = conn.prepare_cached(queries::READ_CHAIN)?;
    let mut found = select.query([])?;
    Ok(found.next()?.map(rows::chain_state).transpose()?)
}

fn seal(conn: &Connection, secret: &[u8], s: &ChainState) -> Result<(), StoreError> {
    let mac = audit::state_mac(
        secret,
        s.anchor_seq,
        &s.anchor_hash,
        s.head_seq,
        &s.head_hash,
    );
    conn.prepare_cached(queries::SEAL)?.execute(params![
        s.anchor_seq,
        s.anchor_hash,
        s.head_seq,
        s.head_hash,
        mac
    ])?;
    Ok(())
}

/// Append `events` after the head of `at`, advancing it; note each one's
/// (session, seq) in `seqs`.
fn append_events(
    conn: &Connection,
    secret: &[u8],
    at: &mut ChainState,
    events: &[Event],
    seqs: &mut Vec<(String, i64)>,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(INSERT_EVENT)?;
    for e in events {
        let seq = at.head_seq + 1;
        let hash = audit::row_hash(secret, seq, e, &at.head_hash);
        insert.execute(params![
            seq,
            e.id,
            e.kind,
            e.ref_id,
            e.session_id,
            e.ts,
            e.tool_name,
            e.tool_args,
            e.agent_id,
            e.user_id,
            e.metadata,
            e.decision,
            e.rule_name,
            e.reason,
            e.policy_version,
            e.policy_hash,
            e.principal,
            e.body,
            at.head_hash,
            hash
        ])?;
        if !e.session_id.is_empty() {
            seqs.push((e.session_id.clone(), seq));
        }
        at.head_seq = seq;
        at.head_hash = hash;
    }
    Ok(())
}

fn upsert_session(conn: &Connection, s: &SessionRow, log_seq: i64) -> Result<(), StoreError> {
    conn.prepare_cached(UPSERT_SESSION)?.execute(params![
        s.id,
        s.agent_id,
        s.user_id,
        s.started_at,
        s.last_at,
        s.action_count,
        s.allowed_count,
        s.denied_count,
        s.approval_count,
        s.tool_counts,
        s.estimated_cost,
        s.principal,
        log_seq
    ])?;
    Ok(())
}

/// Apply one approval change; `false` when its expected state is not there.
fn apply_approval(conn: &Connection, op: &ApprovalOp) -> Result<bool, StoreError> {
    let changed = match op {
        ApprovalOp::Create(a) => {
            conn.prepare_cached(queries::APPROVAL_CREATE)?
                .execute(params![
                    a.id,
                    a.log_id,
                    a.session_id,
                    a.tool_name,
                    a.tool_args,
                    a.args_digest,
                    a.rule_name,
                    a.reason,
                    a.policy_version,
                    a.policy_hash,
                    a.requested_by,
                    a.status,
                    a.created_at,
                    a.expires_at
                ])?
        }
        ApprovalOp::Resolve {
            id,
            status,
            by,
            comment,
            at,
        } => conn
            .prepare_cached(queries::APPROVAL_RESOLVE)?
            .execute(params![status, by, comment, at, id, at])?,
        ApprovalOp::Consume { id, log_id, at } => conn
            .prepare_cached(queries::APPROVAL_CONSUME)?
            .execute(params![at, log_id, id, at])?,
        ApprovalOp::Expire { id, at } => conn
            .prepare_cached(queries::APPROVAL_EXPIRE)?
            .execute(params![at, id, at])?,
    };
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Queries, Store};

    #[tokio::test]
    async fn the_checkpointer_copies_the_log_into_the_database_file_between_the_writers_own() {
        let (dir, store) = crate::store::sqlite::SqliteStore::temporary().await;
        let db = dir.path().join("tame.db");
        let before = std::fs::metadata(&db).unwrap().len();
        // About 2 MB of log: far fewer pages than the writer's own
        // checkpoints wait for, so only the checkpointer copies them.
        for batch in 0..20 {
            let events = (0..50)
                .map(|i| Event {
                    id: format!("{batch}-{i}"),
                    kind: "decision".into(),
                    ts: "2026-01-01T00:00:00.000000+00:00".into(),
                    body: "x".repeat(2_000),
                    ..Default::default()
                })
                .collect();
            let write = Write {
                events,
                ..Default::default()
            };
            let results = store.append(b"secret", vec![write]).await.unwrap();
            assert!(results.iter().all(Result::is_ok));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let size = std::fs::metadata(&db).unwrap().len();
            if size > before + 1_000_000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the database file stayed at {size} bytes (from {before}): nothing was checkpointed"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_writer_that_fails_is_seen_to_have_stopped_and_refuses_appends() {
        let (_dir, store) = crate::store::sqlite::SqliteStore::temporary().await;
        store
            .append(b"secret", vec![Write::decision("s")])
            .await
            .unwrap();
        assert!(store.writing().is_ok());

        store.writer.crash();
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.writing().is_ok() {
            assert!(
                Instant::now() < deadline,
                "the writer's failure went unseen"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let refused = store
            .append(b"secret", vec![Write::decision("s")])
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, StoreError::Unavailable(m) if m.contains("writer stopped") && m.contains("restart")),
            "{refused:?}"
        );
        // The database itself still answers, and keeps what was committed.
        store.ping().await.unwrap();
        assert_eq!(store.count_decisions().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn batches_are_answered_only_once_the_wal_is_synced_and_the_writer_goes_on_meanwhile() {
        let (_dir, store) = crate::store::sqlite::SqliteStore::temporary().await;
        store.sync_hooks().hold.store(true, Ordering::Release);
        let mut first = store
            .writer
            .hand_over(b"secret", vec![Write::decision("a")]);
        let mut second = store
            .writer
            .hand_over(b"secret", vec![Write::decision("b")]);
        // Both are committed while the sync of the first waits...
        store.wait_for_decisions(2).await;
        // ...and neither is answered until it is done.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for answer in [&mut first, &mut second] {
            assert!(
                matches!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
                "a batch was answered before the WAL holding it was synced"
            );
        }
        store.sync_hooks().hold.store(false, Ordering::Release);
        for answer in [first, second] {
            let results = tokio::time::timeout(Duration::from_secs(10), answer)
                .await
                .expect("answered once synced")
                .unwrap()
                .unwrap();
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        }
        assert!(store.writing().is_ok());
    }

    #[tokio::test]
    async fn a_failed_sync_refuses_the_batches_it_covers_and_stops_the_writer() {
        let (_dir, store) = crate::store::sqlite::SqliteStore::temporary().await;
        store
            .append(b"secret", vec![Write::decision("s")])
            .await
            .unwrap();
        // Two batches committed while a sync waits; then it fails.
        let hooks = store.sync_hooks();
        hooks.hold.store(true, Ordering::Release);
        let first = store
            .writer
            .hand_over(b"secret", vec![Write::decision("a")]);
        let second = store
            .writer
            .hand_over(b"secret", vec![Write::decision("b")]);
        store.wait_for_decisions(3).await;
        hooks.fail.store(true, Ordering::Release);
        hooks.hold.store(false, Ordering::Release);
        for answer in [first, second] {
            let refused = tokio::time::timeout(Duration::from_secs(10), answer)
                .await
                .expect("answered")
                .unwrap()
                .unwrap_err();
            assert!(
                matches!(&refused, StoreError::Unavailable(m) if m.contains("could not be synced") && m.contains("made to fail") && m.contains("restart")),
                "{refused:?}"
            );
        }
        // Seen at once, so that the server shuts down; no further batch is
        // written, since what reached the disk is no longer known.
        let state = store.writing().unwrap_err();
        assert!(
            matches!(&state, StoreError::Unavailable(m) if m.contains("could not be synced")),
            "{state:?}"
        );
        let next = store
            .append(b"secret", vec![Write::decision("s")])
            .await
            .unwrap_err();
        assert!(
            matches!(&next, StoreError::Unavailable(m) if m.contains("could not be synced")),
            "{next:?}"
        );
        // The refused batches were committed before their sync failed; the
        // one after them was not.
        assert_eq!(store.count_decisions().await.unwrap(), 3);
    }

    /// SQLite keeps the WAL beside the file a symbolic link points to; that
    /// is the file to sync.
    #[tokio::test]
    async fn the_wal_synced_is_sqlites_own_when_the_database_path_is_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let link = dir.path().join("tame.db");
        std::os::unix::fs::symlink(dir.path().join("real/tame.db"), &link).unwrap();
        let url = format!("sqlite://{}", link.display());
        let store = crate::store::sqlite::SqliteStore::open(&url, Duration::from_secs(5), 8)
            .await
            .unwrap();
        store
            .append(b"secret", vec![Write::decision("s")])
            .await
            .unwrap();
        let wal = dir.path().join("real/tame.db-wal");
        assert!(wal.exists(), "SQLite's WAL is not beside the link's target");
        let synced = store.sync_hooks().wal.clone().expect("a WAL to sync");
        assert_eq!(
            std::fs::canonicalize(&synced).unwrap(),
            std::fs::canonicalize(&wal).unwrap()
        );
        assert!(!dir.path().join("tame.db-wal").exists());
    }
}
