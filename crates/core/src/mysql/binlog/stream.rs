//! One bounded batch over the replication protocol: connect as a replica with the migration's
//! server_id, ask for the log from the checkpoint with BINLOG_DUMP_NON_BLOCK (the server ends
//! the stream at the end of its log, so a short-lived function leaves no dump thread behind),
//! decode until a bound is reached at a transaction boundary, close.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use mysql_async::binlog::events::{Event, TransactionPayloadEvent};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest};

use super::decoder::{DecodeError, Decoder, Fed, TableFilter, Transaction};
use super::events::code;
use super::file;
use super::payload;
use super::Position;
use crate::mysql::connect::{close, connect, ConnectOptions};
use crate::mysql::error::SourceError;

/// When a batch stops. Bounds are checked at transaction boundaries: a transaction is always
/// read whole (it may take the batch past them), up to `max_transaction_bytes`.
#[derive(Debug, Clone)]
pub struct Bounds {
    /// Events read (every event counts, rows of skipped tables too).
    pub max_events: u64,
    /// Bytes of events read.
    pub max_bytes: u64,
    /// Time since the batch started.
    pub max_duration: Duration,
    /// One transaction larger than this stops the migration with an error instead of
    /// exhausting memory (its decoded rows are held until its commit).
    pub max_transaction_bytes: u64,
    /// A hard stop even inside a transaction (the invocation's deadline): what is committed
    /// is returned, the open transaction is read again next time.
    pub deadline: Option<Instant>,
}

/// Why a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The end of the source's log: caught up.
    EndOfLog,
    MaxEvents,
    MaxBytes,
    MaxDuration,
    Deadline,
}

/// One batch's result.
#[derive(Debug)]
pub struct Batch {
    /// Committed transactions, in log order.
    pub transactions: Vec<Transaction>,
    /// Where the batch started and where the next one starts.
    pub start: Position,
    pub end: Position,
    /// The GTID position at `end`, when the source logs GTIDs.
    pub gtid: Option<String>,
    pub events: u64,
    pub bytes: u64,
    pub stop: Stop,
}

/// Reads one batch from `start`, all of it. `server_id` must be unique among the source's
/// replicas. (A migration applies transactions as they come: [`BatchReader`].)
pub async fn read_batch(
    opts: &ConnectOptions,
    server_id: u32,
    start: &Position,
    bounds: &Bounds,
    filter: TableFilter,
) -> Result<Batch, SourceError> {
    let mut reader = BatchReader::open(opts, server_id, start, bounds.clone(), filter).await?;
    let mut transactions = Vec::new();
    while let Some(tx) = reader.next().await? {
        transactions.push(tx);
    }
    let mut batch = reader.close().await;
    batch.transactions = transactions;
    Ok(batch)
}

/// One batch, read as it is consumed: each committed transaction is handed out as soon as its
/// commit is read, so memory holds one transaction (plus what the caller keeps), not the batch.
pub struct BatchReader {
    stream: BinlogStream,
    decoder: Decoder,
    ready: VecDeque<Transaction>,
    inner_left: usize,
    bounds: Bounds,
    started: Instant,
    server_id: u32,
    start: Position,
    stop: Option<Stop>,
}

impl BatchReader {
    /// Connects as a replica and asks for the log from `start`.
    pub async fn open(
        opts: &ConnectOptions,
        server_id: u32,
        start: &Position,
        bounds: Bounds,
        filter: TableFilter,
    ) -> Result<BatchReader, SourceError> {
        let started = Instant::now();
        let mut conn = connect(opts).await?;
        // MariaDB: send GTID, GTID_LIST and BINLOG_CHECKPOINT events as they are instead of
        // rewriting them into BEGIN and dummy queries (a user variable, harmless on MySQL).
        if let Err(e) = conn.query_drop("SET @mariadb_slave_capability=4").await {
            close(conn).await;
            return Err(SourceError::from_mysql(
                "preparing the binlog connection",
                e,
            ));
        }
        let request = BinlogStreamRequest::new(server_id)
            .with_filename(start.file.as_bytes())
            .with_pos(start.pos)
            .with_non_blocking();
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| stream_error(e, start, server_id))?;
        Ok(BatchReader {
            stream,
            decoder: Decoder::new(start.clone(), filter),
            ready: VecDeque::new(),
            inner_left: 0,
            bounds,
            started,
            server_id,
            start: start.clone(),
            stop: None,
        })
    }

    /// The next committed transaction, or `None` once a bound or the end of the log is reached
    /// (always right after a transaction boundary).
    pub async fn next(&mut self) -> Result<Option<Transaction>, SourceError> {
        loop {
            if let Some(tx) = self.ready.pop_front() {
                return Ok(Some(tx));
            }
            if self.stop.is_some() {
                return Ok(None);
            }
            self.step().await?;
        }
    }

    /// Reads one event.
    async fn step(&mut self) -> Result<(), SourceError> {
        let next = AssertUnwindSafe(self.stream.next()).catch_unwind();
        let item = match self.bounds.deadline {
            Some(d) => match tokio::time::timeout_at(d.into(), next).await {
                Ok(item) => item,
                Err(_) => {
                    self.stop = Some(Stop::Deadline);
                    return Ok(());
                }
            },
            None => next.await,
        };
        let decoder = &mut self.decoder;
        let event = match item {
            Err(_) => {
                return Err(corrupt(
                    decoder,
                    "the event does not decode (parser panicked)",
                ))
            }
            Ok(None) => {
                self.stop = Some(Stop::EndOfLog);
                return Ok(());
            }
            Ok(Some(Err(e))) => return Err(stream_error(e, decoder.position(), self.server_id)),
            Ok(Some(Ok(event))) => event,
        };
        let inner = self.inner_left > 0;
        self.inner_left = self.inner_left.saturating_sub(1);
        let fed = match file::guard(|| decoder.feed(&event, inner)) {
            Ok(fed) => fed.map_err(|e| decode_error(decoder, e))?,
            Err(panic) => return Err(corrupt(decoder, &panic)),
        };
        if !inner && event.header().event_type_raw() == code::TRANSACTION_PAYLOAD {
            self.inner_left = payload_event_count(&event).map_err(|e| corrupt(decoder, &e))?;
        }
        let bounds = &self.bounds;
        if decoder.open_bytes() > bounds.max_transaction_bytes {
            return Err(SourceError::BinlogUnsupported {
                position: decoder.position().to_string(),
                reason: format!(
                    "a transaction larger than {} bytes; raise incremental.max_bytes (memory \
                     grows with it) or split such transactions on the source",
                    bounds.max_transaction_bytes
                ),
            });
        }
        self.ready.extend(decoder.take());
        if fed == Fed::Boundary && self.inner_left == 0 {
            if decoder.events >= bounds.max_events {
                self.stop = Some(Stop::MaxEvents);
            } else if decoder.bytes >= bounds.max_bytes {
                self.stop = Some(Stop::MaxBytes);
            } else if self.started.elapsed() >= bounds.max_duration {
                self.stop = Some(Stop::MaxDuration);
            }
        }
        Ok(())
    }

    /// Closes the stream; the batch's end (after the last transaction handed out), its GTID
    /// position and counts. Transactions not yet taken with [`BatchReader::next`] are dropped
    /// and the end does not cover them only if the caller stopped early: call `next` until
    /// `None` first.
    pub async fn close(self) -> Batch {
        if let Err(e) = self.stream.close().await {
            tracing::debug!(error = %e, "closing the binlog stream failed");
        }
        Batch {
            start: self.start,
            end: self.decoder.position().clone(),
            gtid: self.decoder.gtid_position(),
            events: self.decoder.events,
            bytes: self.decoder.bytes,
            transactions: Vec::new(),
            stop: self.stop.unwrap_or(Stop::Deadline),
        }
    }
}

/// How many events a transaction payload holds (mysql_async yields them right after it).
/// Decompressing here too proves the payload is whole: mysql_async drops a payload it cannot
/// decompress without a word, which would lose the transaction.
fn payload_event_count(event: &Event) -> Result<usize, String> {
    let tpe = event
        .read_event::<TransactionPayloadEvent>()
        .map_err(|e| format!("transaction payload: {e}"))?;
    let inner = payload::decompress(&tpe)?;
    payload::count_events(&inner)
}

fn decode_error(decoder: &Decoder, e: DecodeError) -> SourceError {
    match e {
        DecodeError::Unsupported(reason) => SourceError::BinlogUnsupported {
            position: decoder.position().to_string(),
            reason,
        },
        DecodeError::Corrupt(detail) => corrupt(decoder, &detail),
    }
}

fn corrupt(decoder: &Decoder, detail: &str) -> SourceError {
    SourceError::BinlogCorrupt {
        position: decoder.position().to_string(),
        detail: detail.to_owned(),
    }
}

/// MySQL error 1236 (the dump thread cannot read the log) is a purged or unknown position,
/// unless it is about a replica with the same server_id; MariaDB kicks the older replica of a
/// server_id with 4052.
fn stream_error(e: mysql_async::Error, at: &Position, server_id: u32) -> SourceError {
    if let mysql_async::Error::Server(s) = &e {
        let clash = s.message.contains("same server_uuid") || s.message.contains("same server_id");
        if s.code == 4052 || (s.code == 1236 && clash) {
            return SourceError::ServerIdClash {
                server_id,
                detail: s.message.clone(),
            };
        }
        if s.code == 1236 {
            return SourceError::BinlogPurged {
                position: at.to_string(),
                detail: s.message.clone(),
            };
        }
    }
    SourceError::from_mysql("reading the binlog", e)
}
