//! The writer thread and the syncer thread: batches queued commands into one transaction
//! (group commit), commits it, and hands the answers to the syncer, which fsyncs the log once
//! for the whole group before replying. Also the idle work: checkpoints, segment compaction.
//! What a single command does to the tables is in `apply`; this file is only the loop.

use std::collections::HashSet;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use tablestore::error::ServiceError;
use tablestore::schema::{TableDef, TableOptions};

use super::apply::Tables;
use super::prepare::PreparedOp;
use super::{writer_gone, TableOptionsUpdate, WriteOutcome};
use crate::store::{Journal, Store, StoreError};

/// Upper bound of row operations and bytes folded into one transaction (bounds memory).
const MAX_OPS_PER_COMMIT: usize = 8192;
const MAX_BYTES_PER_COMMIT: usize = 32 * 1024 * 1024;
/// Durable redb checkpoints: after this much log, this much time, on idle, on table changes.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
const IDLE_TICK: Duration = Duration::from_secs(1);

pub(super) enum AdminOp {
    Create(TableDef),
    Delete(String),
    Update(String, TableOptionsUpdate),
}

pub(super) enum AdminReply {
    Done,
    Options(TableOptions),
}

type WriteResults = Vec<Result<WriteOutcome, ServiceError>>;

pub(super) enum Command {
    Write {
        ops: Vec<Result<PreparedOp, ServiceError>>,
        reply: oneshot::Sender<WriteResults>,
    },
    Admin {
        op: AdminOp,
        reply: mpsc::Sender<Result<AdminReply, ServiceError>>,
    },
}

impl Command {
    /// (operations, approximate bytes) for batching limits.
    fn weight(&self) -> (usize, usize) {
        match self {
            Command::Write { ops, .. } => (
                ops.len(),
                ops.iter()
                    .map(|p| match p {
                        Ok(PreparedOp {
                            put: Some((Some(v), _)),
                            ..
                        }) => v.len(),
                        _ => 64,
                    })
                    .sum(),
            ),
            Command::Admin { .. } => (1, 0),
        }
    }
}

/// A processed command whose answer waits until its log frame is durable.
enum Done {
    Write {
        reply: oneshot::Sender<WriteResults>,
        results: WriteResults,
        n: usize,
    },
    Admin {
        reply: mpsc::Sender<Result<AdminReply, ServiceError>>,
        result: Result<AdminReply, ServiceError>,
    },
}

impl Done {
    fn send(self) {
        // A caller that gave up (dropped its future) is no error.
        match self {
            Done::Write { reply, results, .. } => {
                let _ = reply.send(results);
            }
            Done::Admin { reply, result } => {
                let _ = reply.send(result);
            }
        }
    }

    fn fail(self, e: &ServiceError) {
        match self {
            Done::Write { reply, n, .. } => {
                let _ = reply.send(vec![Err(e.clone()); n]);
            }
            Done::Admin { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// A command that was not applied because its batch failed.
fn pending(cmd: Command) -> Done {
    match cmd {
        Command::Write { ops, reply } => Done::Write {
            reply,
            n: ops.len(),
            results: Vec::new(),
        },
        Command::Admin { reply, .. } => Done::Admin {
            reply,
            result: Err(writer_gone()),
        },
    }
}

fn storage_failed() -> ServiceError {
    ServiceError::internal(
        "The storage failed earlier and refuses writes; restart the server (see its log).",
    )
}

/// Answers to send once `file` (the log segment written) is fsynced.
pub(super) struct SyncJob {
    file: Option<Arc<File>>,
    done: Vec<Done>,
    /// Freed by the syncer rather than the writer.
    trash: Vec<Vec<u8>>,
}

/// Group fsync: syncs the log once for every job queued meanwhile, then answers them. A failed
/// fsync fails its jobs and every later one (after a failed fsync the page cache can no longer
/// be trusted to reach the disk).
pub(super) fn run_syncer(rx: mpsc::Receiver<SyncJob>, failed: Arc<AtomicBool>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        let mut synced: Vec<&Arc<File>> = Vec::new();
        let mut ok = !failed.load(Ordering::Acquire);
        for f in jobs.iter().filter_map(|j| j.file.as_ref()) {
            if !ok || synced.iter().any(|s| Arc::ptr_eq(s, f)) {
                continue;
            }
            if let Err(e) = f.sync_data() {
                tracing::error!(error = %e, "cannot fsync the value log; refusing further writes");
                failed.store(true, Ordering::Release);
                ok = false;
            }
            synced.push(f);
        }
        for j in jobs {
            for d in j.done {
                if ok {
                    d.send();
                } else {
                    d.fail(&storage_failed());
                }
            }
            drop(j.trash);
        }
    }
}

/// Owns all metadata changes and write transactions (runs on its own thread).
pub(super) struct Writer {
    pub(super) store: Arc<Store>,
    pub(super) journal: Journal,
    pub(super) state: Tables,
    pub(super) sync_tx: Option<mpsc::Sender<SyncJob>>,
    pub(super) syncer: Option<JoinHandle<()>>,
    pub(super) failed: Arc<AtomicBool>,
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            match rx.recv_timeout(IDLE_TICK) {
                Ok(first) => {
                    let (mut ops, mut bytes) = first.weight();
                    let mut cmds = vec![first];
                    while ops < MAX_OPS_PER_COMMIT && bytes < MAX_BYTES_PER_COMMIT {
                        match rx.try_recv() {
                            Ok(c) => {
                                let (o, b) = c.weight();
                                ops += o;
                                bytes += b;
                                cmds.push(c);
                            }
                            Err(_) => break,
                        }
                    }
                    if self.run_batch(cmds) {
                        self.compact_one();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.maintain(),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Shutting down: a last checkpoint makes the next open fast.
        if !self.is_failed() && self.journal.dirty() {
            self.checkpoint();
        }
        self.sync_tx.take();
        if let Some(h) = self.syncer.take() {
            if h.join().is_err() {
                tracing::error!("tablestore log syncer thread panicked");
            }
        }
        tracing::debug!("tablestore storage writer stopped");
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Storage errors are not retried here: the writer stops accepting writes (reads go on)
    /// and a restart recovers from the log.
    fn fail(&mut self, e: &StoreError) {
        tracing::error!(error = %e, "tablestore storage write failed; refusing further writes");
        self.failed.store(true, Ordering::Release);
        self.journal.discard_frame();
    }

    /// Idle work: checkpoint, compact a segment, unlink freed segments.
    fn maintain(&mut self) {
        if self.is_failed() {
            return;
        }
        if self.journal.dirty() {
            self.checkpoint();
        }
        self.compact_one();
        self.journal.unlink_doomed(&self.store);
    }

    fn checkpoint(&mut self) {
        let r = self
            .store
            .begin_write()
            .and_then(|txn| txn.finish(&self.store, &mut self.journal, true));
        if let Err(e) = r {
            self.fail(&e);
        }
    }

    /// Compacts one mostly-garbage segment, if any, and checkpoints so it can be freed.
    fn compact_one(&mut self) {
        if self.is_failed() {
            return;
        }
        let Some(segment) = self.journal.gc_candidate(&self.store) else {
            return;
        };
        let started = Instant::now();
        let tables = &self.state.tables;
        let r = self.store.begin_write().and_then(|txn| {
            let moved = {
                let mut s = txn.session(&self.store, &mut self.journal);
                s.compact_segment(segment, |t| tables.contains_key(t))?
            };
            txn.finish(&self.store, &mut self.journal, true)?;
            Ok(moved)
        });
        match r {
            Ok(moved) => tracing::info!(
                segment,
                moved,
                ms = started.elapsed().as_millis() as u64,
                "compacted a value log segment"
            ),
            Err(e) => self.fail(&e),
        }
    }

    /// Applies a batch; returns whether it checkpointed.
    fn run_batch(&mut self, cmds: Vec<Command>) -> bool {
        if self.is_failed() {
            let err = storage_failed();
            cmds.into_iter().for_each(|c| pending(c).fail(&err));
            return false;
        }
        let checkpoint = cmds.iter().any(|c| matches!(c, Command::Admin { .. }))
            || self.journal.since_checkpoint() >= CHECKPOINT_BYTES
            || self.journal.last_checkpoint().elapsed() >= CHECKPOINT_INTERVAL;
        let mut done = Vec::with_capacity(cmds.len());
        let mut trash = Vec::new();
        match self.apply_batch(cmds, &mut done, &mut trash, checkpoint) {
            Ok((catalog_changed, file)) => {
                if catalog_changed {
                    self.state.publish();
                }
                let job = SyncJob { file, done, trash };
                if let Some(tx) = &self.sync_tx {
                    if let Err(mpsc::SendError(job)) = tx.send(job) {
                        job.done.into_iter().for_each(|d| d.fail(&writer_gone()));
                    }
                }
                checkpoint
            }
            Err(e) => {
                self.fail(&e);
                // Metadata changed in memory during the failed batch: show what is durable.
                if let Ok(records) = self.store.load_tables() {
                    self.state.install(records);
                }
                let err = ServiceError::from(e);
                done.into_iter().for_each(|d| d.fail(&err));
                false
            }
        }
    }

    /// Applies every command in one transaction and commits it. On a storage error every
    /// command still gets a `Done` (answered with the error by the caller of this fn).
    fn apply_batch(
        &mut self,
        cmds: Vec<Command>,
        done: &mut Vec<Done>,
        trash: &mut Vec<Vec<u8>>,
        checkpoint: bool,
    ) -> Result<(bool, Option<Arc<File>>), StoreError> {
        let txn = match self.store.begin_write() {
            Ok(t) => t,
            Err(e) => {
                done.extend(cmds.into_iter().map(pending));
                return Err(e);
            }
        };
        let mut failed: Option<StoreError> = None;
        let mut catalog_changed = false;
        let mut dirty: HashSet<String> = HashSet::new();
        let state = &mut self.state;
        {
            let mut s = txn.session(&self.store, &mut self.journal);
            for cmd in cmds {
                if failed.is_some() {
                    done.push(pending(cmd));
                    continue;
                }
                match cmd {
                    Command::Write { ops, reply } => {
                        let n = ops.len();
                        let mut results = Vec::with_capacity(n);
                        for op in ops {
                            let r = match op {
                                Err(e) => Err(e),
                                Ok(p) => match state.apply_write(&mut s, p, &mut dirty, trash) {
                                    Ok(r) => r,
                                    Err(e) => {
                                        failed = Some(e);
                                        break;
                                    }
                                },
                            };
                            results.push(r);
                        }
                        done.push(Done::Write { reply, results, n });
                    }
                    Command::Admin { op, reply } => match state.apply_admin(&mut s, op) {
                        Ok(result) => {
                            catalog_changed |= result.is_ok();
                            done.push(Done::Admin { reply, result });
                        }
                        Err(e) => {
                            failed = Some(e);
                            done.push(Done::Admin {
                                reply,
                                result: Err(writer_gone()),
                            });
                        }
                    },
                }
            }
            if failed.is_none() {
                for name in &dirty {
                    if let Some(t) = state.tables.get(name) {
                        if let Err(e) = s.put_counter(&state.record(t)) {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        if let Some(e) = failed {
            return Err(e); // dropping `txn` aborts it
        }
        let file = txn.finish(&self.store, &mut self.journal, checkpoint)?;
        Ok((catalog_changed, file))
    }
}
