//! The batch writer: turns a stream of row changes into BatchWriteRow (or BulkImport)
//! requests of at most 200 rows / 4 MB, with bounded concurrency and per-key order.
//!
//! Rows are routed to lanes by a hash of (table, primary key). A lane keeps up to `lane_depth`
//! requests in flight, but never two holding the same key: a batch with a key still in flight
//! waits until the lane's requests have landed, so changes to one key apply in order (a full
//! copy, whose keys are distinct, keeps the lane's pipeline full). Within a request a key
//! appears once: a second change to a key already in the open batch closes that batch first.
//! Requests in flight across the lanes adapt (see `Depth`): from `concurrency`, one more
//! while requests wait for a slot and the service keeps up, halved when it throttles; so a
//! distant service (tens of ms per request) gets enough requests in flight by itself.
//! Rows that fail retriably are re-sent (only those rows) before the lane moves on; rows that
//! fail permanently are handed back in the flush report for the dirty-data policy.
//! `mark` acknowledges a prefix of the rows without stopping the lanes: a copy writes page
//! k+1 while page k's requests are still out, and moves its cursor when page k's mark
//! resolves (marks resolve in order, each after every request before it has landed). A request
//! the service rejects as a whole (a 4xx) is split in halves until the offending rows are
//! isolated, so one bad row never fails its neighbours.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::encoding::encoded_len_varint;
use prost::Message;
use tokio::sync::{mpsc, oneshot, Semaphore, SemaphorePermit, TryAcquireError};
use tokio::task::{JoinHandle, JoinSet};

use super::client::{BatchRow, Client, RetryPolicy, RowResult};
use super::convert;
use super::error::{Error, Replay, ServiceError};
use super::row::RowExistence;

/// Which multi-row API carries the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteApi {
    #[default]
    BatchWriteRow,
    /// One table per request, no conditions; the service's bulk-load path.
    BulkImport,
}

#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub api: WriteApi,
    /// Lanes (DTS "bucket count"): per-key ordering domains.
    pub lanes: usize,
    /// Requests in flight at first, across the lanes.
    pub concurrency: usize,
    /// Ceiling the requests in flight may grow to while requests wait for a slot and the
    /// service does not throttle; None: 4 × `concurrency`. Some(concurrency) fixes the depth.
    pub max_concurrency: Option<usize>,
    /// Requests one lane keeps in flight at most (1: one after another).
    pub lane_depth: usize,
    /// Rows buffered per lane before `write` waits.
    pub queue_size: usize,
    pub max_rows: usize,
    pub max_bytes: usize,
    /// Re-sends of rows that failed retriably, and their backoff.
    pub row_retry: RetryPolicy,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            api: WriteApi::BatchWriteRow,
            lanes: 8,
            concurrency: 8,
            max_concurrency: None,
            lane_depth: 4,
            queue_size: 1024,
            max_rows: crate::limits::MAX_BATCH_WRITE_ROWS,
            max_bytes: crate::limits::MAX_BATCH_WRITE_BYTES,
            row_retry: RetryPolicy::default(),
        }
    }
}

/// A row the destination refused for good.
#[derive(Debug, Clone)]
pub struct FailedRow {
    pub row: BatchRow,
    pub error: ServiceError,
}

/// What a flush acknowledges.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// Rows acknowledged by the destination since the last flush.
    pub rows_written: u64,
    /// Request bytes sent for them.
    pub bytes_written: u64,
    pub requests: u64,
    pub failed: Vec<FailedRow>,
}

impl FlushReport {
    fn absorb(&mut self, o: FlushReport) {
        self.rows_written += o.rows_written;
        self.bytes_written += o.bytes_written;
        self.requests += o.requests;
        self.failed.extend(o.failed);
    }
}

enum LaneMsg {
    /// A row and its `key_hash`.
    Row(BatchRow, u64),
    /// Rows and their `key_hash`es, in order.
    Rows(Vec<(BatchRow, u64)>),
    /// Acknowledge every row queued before this message (see `BatchWriter::mark`).
    Mark(oneshot::Sender<Result<FlushReport, Error>>),
}

/// Resolves when every row written before its `BatchWriter::mark` call is acknowledged.
pub struct Ack {
    waits: Vec<oneshot::Receiver<Result<FlushReport, Error>>>,
}

impl Ack {
    /// The rows acknowledged between the previous mark (or flush) and this one; Err as
    /// `BatchWriter::flush`.
    pub async fn wait(self) -> Result<FlushReport, Error> {
        let mut total = FlushReport::default();
        let mut first_err = None;
        for w in self.waits {
            match w.await {
                Ok(Ok(r)) => total.absorb(r),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(stopped());
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

fn stopped() -> Error {
    Error::InvalidRequest("batch writer lane stopped".into())
}

/// See the module docs. Cloning is not offered: one writer feeds one set of lanes.
pub struct BatchWriter {
    lanes: Vec<mpsc::Sender<LaneMsg>>,
    tasks: Vec<JoinHandle<()>>,
    api: WriteApi,
}

impl BatchWriter {
    pub fn new(client: Client, opts: BatchOptions) -> Self {
        let lanes_n = opts.lanes.max(1);
        let start = opts.concurrency.max(1);
        let max = opts.max_concurrency.unwrap_or(start * 4).max(start);
        let permits = Arc::new(Depth::new(start, max));
        let per_lane = (opts.queue_size / lanes_n).max(1);
        let mut lanes = Vec::with_capacity(lanes_n);
        let mut tasks = Vec::with_capacity(lanes_n);
        for _ in 0..lanes_n {
            let (tx, rx) = mpsc::channel(per_lane);
            let lane = Lane {
                client: client.clone(),
                opts: opts.clone(),
                permits: permits.clone(),
                batch: Vec::new(),
                tables: Vec::new(),
                batch_bytes: 0,
                keys: HashSet::default(),
                inflight: JoinSet::new(),
                inflight_keys: HashSet::default(),
                epochs: VecDeque::from([Epoch::default()]),
                broken: false,
                poisoned: false,
            };
            tasks.push(tokio::spawn(lane.run(rx)));
            lanes.push(tx);
        }
        BatchWriter {
            lanes,
            tasks,
            api: opts.api,
        }
    }

    /// Queues one change; waits when the lane's queue is full (backpressure).
    pub async fn write(&self, row: BatchRow) -> Result<(), Error> {
        let (lane, hash) = self.route(&row)?;
        self.send(lane, LaneMsg::Row(row, hash)).await
    }

    /// Queues many changes, in order: one message per lane rather than one per row (a page
    /// of a copy costs a few channel sends).
    pub async fn write_all(&self, rows: Vec<BatchRow>) -> Result<(), Error> {
        let mut per_lane: Vec<Vec<(BatchRow, u64)>> = vec![Vec::new(); self.lanes.len()];
        for row in rows {
            let (lane, hash) = self.route(&row)?;
            per_lane[lane].push((row, hash));
        }
        for (lane, rows) in per_lane.into_iter().enumerate() {
            if !rows.is_empty() {
                self.send(lane, LaneMsg::Rows(rows)).await?;
            }
        }
        Ok(())
    }

    /// The lane and `key_hash` of a row; refuses conditions BulkImport cannot carry.
    fn route(&self, row: &BatchRow) -> Result<(usize, u64), Error> {
        if self.api == WriteApi::BulkImport
            && (row.condition.row_existence != RowExistence::Ignore
                || row.condition.column_condition.is_some())
        {
            return Err(Error::InvalidRequest(
                "BulkImport carries no conditions; use BatchWriteRow for conditional writes".into(),
            ));
        }
        let hash = key_hash(&row.table, row.change.key_bytes());
        Ok(((hash % self.lanes.len() as u64) as usize, hash))
    }

    async fn send(&self, lane: usize, msg: LaneMsg) -> Result<(), Error> {
        match self.lanes.get(lane) {
            Some(l) => l
                .send(msg)
                .await
                .map_err(|_| Error::InvalidRequest("batch writer lane stopped".into())),
            None => Err(Error::InvalidRequest(
                "batch writer has no such lane".into(),
            )),
        }
    }

    /// Sends everything queued and waits for every answer. After Ok, every row written before
    /// the call is acknowledged or listed in `failed`. Err means some rows' fate is unknown:
    /// do not checkpoint past them.
    pub async fn flush(&self) -> Result<FlushReport, Error> {
        self.mark().await?.wait().await
    }

    /// Closes the open batches and returns an [`Ack`] for every row written so far, without
    /// waiting: rows written after the mark are sent meanwhile. Reports of successive marks
    /// do not overlap; a failed request fails its mark and every later one.
    pub async fn mark(&self) -> Result<Ack, Error> {
        let mut waits = Vec::with_capacity(self.lanes.len());
        for l in &self.lanes {
            let (tx, rx) = oneshot::channel();
            l.send(LaneMsg::Mark(tx)).await.map_err(|_| stopped())?;
            waits.push(rx);
        }
        Ok(Ack { waits })
    }

    /// Flushes and stops the lanes.
    pub async fn close(self) -> Result<FlushReport, Error> {
        let r = self.flush().await;
        drop(self.lanes);
        for t in self.tasks {
            let _ = t.await;
        }
        r
    }
}

/// Hash of (table, primary key): picks the lane and stands for the key in a lane's batch (a
/// collision only closes a batch early). Fixed seed: the same key always takes the same lane.
fn key_hash(table: &str, key: &[u8]) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x7473_6d69_6772_6174).build_hasher();
    table.hash(&mut h);
    key.hash(&mut h);
    h.finish()
}

/// Exact bytes one row adds to a BatchWriteRowRequest / BulkImportRequest table entry.
pub fn encoded_row_len(row: &BatchRow, api: WriteApi) -> usize {
    let change_len = 4 + row.change.len();
    let mut len = 2 + 1 + encoded_len_varint(change_len as u64) + change_len;
    if api == WriteApi::BatchWriteRow {
        let c = convert::condition_to_pb(&row.condition).encoded_len();
        len += 1 + encoded_len_varint(c as u64) + c;
    }
    1 + encoded_len_varint(len as u64) + len
}

/// Bytes a table entry adds besides its rows (upper bound for the length varint).
fn table_overhead(table: &str) -> usize {
    1 + 5 + 1 + encoded_len_varint(table.len() as u64) + table.len()
}

struct Lane {
    client: Client,
    opts: BatchOptions,
    permits: Arc<Depth>,
    batch: Vec<BatchRow>,
    /// Distinct tables in `batch`.
    tables: Vec<Arc<str>>,
    batch_bytes: usize,
    /// `key_hash` of each row in `batch`.
    keys: HashSet<u64, foldhash::fast::RandomState>,
    /// Requests sent and not yet answered (with their retries), tagged with their epoch.
    inflight: JoinSet<(u64, Sent)>,
    /// `key_hash`es of the rows sent since the lane last had nothing in flight.
    inflight_keys: HashSet<u64, foldhash::fast::RandomState>,
    /// The rows between two marks, oldest first, numbered in a row; the last one is open
    /// (no mark yet). Answered marks leave the front.
    epochs: VecDeque<Epoch>,
    /// A request failed: rows sent after it are dropped (their fate would not be reported
    /// in order) and their epoch fails. Cleared at the next mark.
    broken: bool,
    /// A request task panicked: which epoch it belonged to is lost, so every mark fails.
    poisoned: bool,
}

/// What the requests of one epoch (the rows between two marks) came to.
#[derive(Default)]
struct Epoch {
    /// Epoch number (marks seen before it).
    id: u64,
    outstanding: usize,
    report: FlushReport,
    /// A request-level failure, or rows dropped after one: some rows' fate unknown.
    fatal: Option<Error>,
    /// The mark that closed it; None while it is open.
    reply: Option<oneshot::Sender<Result<FlushReport, Error>>>,
}

impl Lane {
    async fn run(mut self, mut rx: mpsc::Receiver<LaneMsg>) {
        loop {
            tokio::select! {
                // Answers first, so marks resolve as soon as their requests land.
                biased;
                Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    self.absorb(done);
                }
                msg = rx.recv() => match msg {
                    Some(LaneMsg::Row(row, hash)) => self.push(row, hash).await,
                    Some(LaneMsg::Rows(rows)) => {
                        for (row, hash) in rows {
                            self.push(row, hash).await;
                        }
                    }
                    Some(LaneMsg::Mark(reply)) => {
                        self.send_batch().await;
                        self.close_epoch(reply);
                    }
                    None => break,
                },
            }
        }
        self.send_batch().await;
        self.drain().await;
    }

    async fn push(&mut self, row: BatchRow, key: u64) {
        let len = encoded_row_len(&row, self.opts.api);
        let overhead = table_overhead(&row.table);
        if len + overhead > self.opts.max_bytes {
            let error = ServiceError::parameter_invalid(format!(
                "The row is {len} bytes encoded, over the {} byte request limit.",
                self.opts.max_bytes
            ));
            self.open_epoch()
                .report
                .failed
                .push(FailedRow { row, error });
            return;
        }
        let new_table = !self.tables.contains(&row.table);
        let table_change = self.opts.api == WriteApi::BulkImport
            && self.tables.first().is_some_and(|t| *t != row.table);
        let extra = len + if new_table { overhead } else { 0 };
        if self.batch.len() >= self.opts.max_rows
            || self.batch_bytes + extra > self.opts.max_bytes
            || self.keys.contains(&key)
            || table_change
        {
            self.send_batch().await;
        }
        let extra = len
            + if self.tables.contains(&row.table) {
                0
            } else {
                self.tables.push(row.table.clone());
                overhead
            };
        self.batch_bytes += extra;
        self.keys.insert(key);
        self.batch.push(row);
        if self.batch.len() >= self.opts.max_rows {
            self.send_batch().await;
        }
    }

    /// The epoch rows are written into now (there is always one).
    fn open_epoch(&mut self) -> &mut Epoch {
        if self.epochs.is_empty() {
            self.epochs.push_back(Epoch::default());
        }
        let last = self.epochs.len() - 1;
        &mut self.epochs[last]
    }

    /// A mark: the open epoch is closed and a new one opened.
    fn close_epoch(&mut self, reply: oneshot::Sender<Result<FlushReport, Error>>) {
        let open = self.open_epoch();
        open.reply = Some(reply);
        let id = open.id + 1;
        self.epochs.push_back(Epoch {
            id,
            ..Epoch::default()
        });
        self.broken = false;
        self.resolve();
    }

    /// Answers the marks whose requests, and every earlier one, have all landed.
    fn resolve(&mut self) {
        while let Some(front) = self.epochs.front() {
            let done = front.reply.is_some() && (front.outstanding == 0 || self.poisoned);
            if !done {
                break;
            }
            let Some(e) = self.epochs.pop_front() else {
                break;
            };
            let answer = match (e.fatal, self.poisoned) {
                (Some(err), _) => Err(err),
                (None, true) => Err(Error::InvalidRequest(
                    "batch writer request task failed".into(),
                )),
                (None, false) => Ok(e.report),
            };
            if let Some(reply) = e.reply {
                let _ = reply.send(answer);
            }
        }
    }

    async fn send_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let bytes = self.batch_bytes as u64;
        self.batch_bytes = 0;
        let keys = std::mem::take(&mut self.keys);
        self.tables.clear();
        // A key still in flight must land before its next change is sent.
        if keys.iter().any(|k| self.inflight_keys.contains(k)) {
            self.drain().await;
        }
        while self.inflight.len() >= self.opts.lane_depth.max(1) {
            self.join_one().await;
        }
        if self.broken {
            // Fate of earlier rows unknown: this epoch fails; drop instead of reordering.
            let open = self.open_epoch();
            open.fatal.get_or_insert(Error::InvalidRequest(
                "rows not sent: an earlier batch request failed".into(),
            ));
            return;
        }
        self.inflight_keys.extend(keys);
        let open = self.open_epoch();
        open.report.bytes_written += bytes;
        open.outstanding += 1;
        let epoch = open.id;
        let (client, opts, permits) =
            (self.client.clone(), self.opts.clone(), self.permits.clone());
        self.inflight
            .spawn(async move { (epoch, send_rows(&client, &opts, &permits, batch).await) });
    }

    /// Takes in the outcome of one request.
    fn absorb(&mut self, done: Result<(u64, Sent), tokio::task::JoinError>) {
        match done {
            Ok((epoch, sent)) => {
                if sent.fatal.is_some() {
                    self.broken = true;
                }
                let front = self.epochs.front().map_or(0, |e| e.id);
                let at = epoch.checked_sub(front).map(|i| i as usize);
                match at.and_then(|i| self.epochs.get_mut(i)) {
                    Some(e) => {
                        e.outstanding = e.outstanding.saturating_sub(1);
                        e.report.absorb(sent.report);
                        if let Some(err) = sent.fatal {
                            e.fatal.get_or_insert(err);
                        }
                    }
                    // An epoch resolves only once its requests are in: unreachable.
                    None => self.poisoned = true,
                }
            }
            Err(_) => {
                self.broken = true;
                self.poisoned = true;
            }
        }
        if self.inflight.is_empty() {
            self.inflight_keys.clear();
        }
        self.resolve();
    }

    /// Waits for one request in flight and takes in its outcome.
    async fn join_one(&mut self) {
        if let Some(done) = self.inflight.join_next().await {
            self.absorb(done);
        }
    }

    /// Waits until nothing is in flight.
    async fn drain(&mut self) {
        while !self.inflight.is_empty() {
            self.join_one().await;
        }
        self.inflight_keys.clear();
    }
}

/// What one sent batch came to, retries included.
struct Sent {
    report: FlushReport,
    /// A request-level failure: some rows' fate unknown.
    fatal: Option<Error>,
}

/// Sends rows, re-sending retriable row failures and isolating rejected requests.
async fn send_rows(
    client: &Client,
    opts: &BatchOptions,
    depth: &Depth,
    rows: Vec<BatchRow>,
) -> Sent {
    let mut report = FlushReport::default();
    let mut pending = vec![rows];
    let mut retry_round = 0u32;
    while let Some(rows) = pending.pop() {
        report.requests += 1;
        let result = request(client, opts, depth, &rows).await;
        match result {
            Ok(results) => {
                let mut again = Vec::new();
                for (row, r) in rows.into_iter().zip(results) {
                    match r {
                        Ok(()) => report.rows_written += 1,
                        Err(e)
                            if e.is_retriable(Replay::Safe)
                                && retry_round < opts.row_retry.max_retries =>
                        {
                            again.push(row);
                        }
                        Err(error) => report.failed.push(FailedRow { row, error }),
                    }
                }
                if !again.is_empty() {
                    // Row-level retriable codes are throttling or busy signals.
                    tokio::time::sleep(opts.row_retry.delay(retry_round, true)).await;
                    retry_round += 1;
                    pending.push(again);
                }
            }
            Err(Error::Service(e))
                if !e.is_retriable(Replay::Safe) && (400..500).contains(&e.http_status) =>
            {
                if rows.len() == 1 {
                    let row = rows.into_iter().next();
                    if let Some(row) = row {
                        report.failed.push(FailedRow { row, error: e });
                    }
                } else {
                    // Isolate the offending rows; second half pushed first so the first
                    // half is sent first (per-key order is unaffected: keys are unique).
                    let mut first = rows;
                    let second = first.split_off(first.len() / 2);
                    pending.push(second);
                    pending.push(first);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, rows = rows.len(), "batch request failed");
                return Sent {
                    report,
                    fatal: Some(e),
                };
            }
        }
    }
    Sent {
        report,
        fatal: None,
    }
}

/// One request, holding one of the writer's in-flight slots.
async fn request(
    client: &Client,
    opts: &BatchOptions,
    depth: &Depth,
    rows: &[BatchRow],
) -> Result<Vec<RowResult>, Error> {
    let (permit, waited) = depth.acquire().await?;
    let result = match opts.api {
        WriteApi::BatchWriteRow => client.batch_write_row(rows).await,
        WriteApi::BulkImport => {
            let table = rows.first().map(|r| &*r.table).unwrap_or_default();
            let changes: Vec<_> = rows.iter().map(|r| &r.change).collect();
            client.bulk_import_encoded(table, &changes).await
        }
    };
    let throttled = match &result {
        Ok(rows) => rows
            .iter()
            .any(|r| r.as_ref().is_err_and(ServiceError::is_throttling)),
        Err(e) => e.service().is_some_and(ServiceError::is_throttling),
    };
    depth.release(permit, waited, throttled);
    result
}

/// The writer's requests in flight: an AIMD window over a semaphore. A request that had to
/// wait for a slot and came back unthrottled adds a slot (up to `max`): the lanes have more
/// to send than the window lets out, typically because each request spends its time on the
/// network. A throttled answer (OTSServerBusy and kin, whole request or single rows) halves
/// the window, at most once per `CUT_INTERVAL` so one burst of busy answers counts once;
/// the window then grows back by one slot per window of requests.
struct Depth {
    slots: Semaphore,
    max: usize,
    state: Mutex<DepthState>,
}

struct DepthState {
    limit: usize,
    /// Slots to take out of circulation as requests finish (after a cut).
    debt: usize,
    last_cut: Option<Instant>,
    /// Unthrottled waited requests since the last added slot.
    credit: usize,
}

impl DepthState {
    /// Until the first throttle, every waited request earns a slot (a quick ramp to a
    /// distant service's depth); after one, a window's worth of them do.
    fn earned_slot(&mut self) -> bool {
        self.credit += 1;
        let needed = if self.last_cut.is_none() {
            1
        } else {
            self.limit
        };
        if self.credit >= needed {
            self.credit = 0;
            true
        } else {
            false
        }
    }
}

const CUT_INTERVAL: Duration = Duration::from_millis(200);

impl Depth {
    fn new(start: usize, max: usize) -> Self {
        Depth {
            slots: Semaphore::new(start),
            max,
            state: Mutex::new(DepthState {
                limit: start,
                debt: 0,
                last_cut: None,
                credit: 0,
            }),
        }
    }

    async fn acquire(&self) -> Result<(SemaphorePermit<'_>, bool), Error> {
        let closed = || Error::InvalidRequest("batch writer closed".into());
        match self.slots.try_acquire() {
            Ok(p) => Ok((p, false)),
            Err(TryAcquireError::NoPermits) => self
                .slots
                .acquire()
                .await
                .map(|p| (p, true))
                .map_err(|_| closed()),
            Err(TryAcquireError::Closed) => Err(closed()),
        }
    }

    fn release(&self, permit: SemaphorePermit<'_>, waited: bool, throttled: bool) {
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        if throttled {
            let now = Instant::now();
            if s.last_cut
                .is_none_or(|t| now.duration_since(t) >= CUT_INTERVAL)
            {
                let new = (s.limit / 2).max(1);
                s.debt += s.limit - new;
                s.limit = new;
                s.last_cut = Some(now);
            }
        } else if waited && s.limit < self.max && s.earned_slot() {
            if s.debt > 0 {
                s.debt -= 1;
            } else {
                self.slots.add_permits(1);
            }
            s.limit += 1;
        }
        if s.debt > 0 {
            s.debt -= 1;
            permit.forget();
        }
    }

    #[cfg(test)]
    fn limit(&self) -> usize {
        self.state.lock().map(|s| s.limit).unwrap_or(0)
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    fn cycle(d: &Depth, waited: bool, throttled: bool) {
        let (p, _) = take_slot(d);
        d.release(p, waited, throttled);
    }

    fn take_slot(d: &Depth) -> (SemaphorePermit<'_>, bool) {
        (d.slots.try_acquire().expect("a free slot"), false)
    }

    #[test]
    fn grows_while_requests_wait_and_halves_on_throttling() {
        let d = Depth::new(8, 32);
        cycle(&d, false, false);
        assert_eq!(d.limit(), 8, "no wait: no growth");
        for _ in 0..100 {
            cycle(&d, true, false);
        }
        assert_eq!(d.limit(), 32, "capped at max");
        assert_eq!(d.slots.available_permits(), 32);
        cycle(&d, false, true);
        assert_eq!(d.limit(), 16);
        // A second busy answer right away is the same burst.
        cycle(&d, false, true);
        assert_eq!(d.limit(), 16);
        // The freed slots were taken out of circulation one release at a time.
        while d.state.lock().unwrap().debt > 0 {
            cycle(&d, false, false);
        }
        assert_eq!(d.slots.available_permits(), 16);
        // After a cut, a whole window of waited requests earns one slot.
        for _ in 0..15 {
            cycle(&d, true, false);
        }
        assert_eq!(d.limit(), 16);
        cycle(&d, true, false);
        assert_eq!(d.limit(), 17);
        assert_eq!(d.slots.available_permits(), 17);
    }

    #[test]
    fn never_below_one_slot() {
        let d = Depth::new(1, 4);
        let p = d.slots.try_acquire().unwrap();
        d.release(p, false, true);
        assert_eq!(d.limit(), 1);
        assert_eq!(d.slots.available_permits(), 1);
    }
}
