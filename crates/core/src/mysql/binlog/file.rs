//! Binlog files read from bytes: the recorded MySQL and MariaDB fixtures (server versions this
//! machine cannot run), fuzzing, and offline inspection. Every event's frame is checked before
//! mysql_common parses it (its parser unwraps a short read and panics), so a truncated or
//! corrupt file is an error, never a panic or a silent end.

use mysql_async::binlog::events::{Event, TransactionPayloadEvent};
use mysql_async::binlog::BinlogVersion;
use mysql_common::binlog::EventStreamReader;

use super::decoder::{DecodeError, Decoder, TableFilter, Transaction};
use super::events::{code, Kind};
use super::payload;
use super::Position;

const MAGIC: [u8; 4] = [0xfe, b'b', b'i', b'n'];
const HEADER_LEN: usize = 19;

/// Everything a file decoded to, up to the first event that stopped it.
#[derive(Debug)]
pub struct FileBatch {
    /// The transactions committed before `error`, if any.
    pub transactions: Vec<Transaction>,
    /// The position after the last complete transaction.
    pub end: Position,
    pub events: u64,
    /// Why decoding stopped before the end of the file (`file:offset: reason`).
    pub error: Option<String>,
}

impl FileBatch {
    /// The batch, or its error.
    pub fn complete(self) -> Result<FileBatch, String> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

/// Decodes a binlog file named `name` (the name positions are reported in) up to its end or
/// the first event that cannot be read; `Err` only when the bytes are not a binlog file.
pub fn decode_file(name: &str, bytes: &[u8], filter: TableFilter) -> Result<FileBatch, String> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(format!("{name} does not start with the binlog magic bytes"));
    }
    let mut decoder = Decoder::new(
        Position {
            file: name.to_owned(),
            pos: 4,
        },
        filter,
    );
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut at = 4usize;
    let mut error = None;
    while at < bytes.len() {
        // Every mysql_common parse of this event (and of a payload's events) under one guard.
        let step = guard(|| {
            read_framed(&mut reader, bytes, at).and_then(|event| {
                feed(&mut decoder, &mut reader, &event)?;
                Ok(event.header().event_size() as usize)
            })
        })
        .and_then(|r| r);
        match step {
            Ok(size) => at += size,
            Err(e) => {
                error = Some(format!("{name}:{at}: {e}"));
                break;
            }
        }
    }
    Ok(FileBatch {
        end: decoder.position().clone(),
        events: decoder.events,
        transactions: decoder.take(),
        error,
    })
}

/// Feeds one event and, for a transaction payload, the events inside it.
fn feed(
    decoder: &mut Decoder,
    reader: &mut EventStreamReader,
    event: &Event,
) -> Result<(), String> {
    decoder.feed(event, false).map_err(describe)?;
    if event.header().event_type_raw() != code::TRANSACTION_PAYLOAD {
        return Ok(());
    }
    let payload = event
        .read_event::<TransactionPayloadEvent>()
        .map_err(|e| format!("transaction payload: {e}"))?;
    let inner = payload::decompress(&payload)?;
    let mut at = 0usize;
    while at < inner.len() {
        // Events inside a payload carry no checksum.
        let ev = checked_frame(&inner, at, false)
            .and_then(|len| {
                reader
                    .read_decompressed(&inner[at..at + len])
                    .map_err(|e| e.to_string())
                    .and_then(|e| e.ok_or_else(|| "an empty event".to_owned()))
            })
            .map_err(|e| format!("inside the transaction payload at {at}: {e}"))?;
        at += ev.header().event_size() as usize;
        decoder.feed(&ev, true).map_err(describe)?;
    }
    Ok(())
}

/// One event at `at`, its frame checked first.
fn read_framed(reader: &mut EventStreamReader, bytes: &[u8], at: usize) -> Result<Event, String> {
    let checksum = reader.get_fde().footer().get_checksum_enabled();
    let len = checked_frame(bytes, at, checksum)?;
    reader
        .read(&bytes[at..at + len])
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "an empty event".to_owned())
}

/// The length of the event framed at `at`, if the bytes hold all of it.
pub(super) fn checked_frame(bytes: &[u8], at: usize, checksum: bool) -> Result<usize, String> {
    let header = bytes
        .get(at..at + HEADER_LEN)
        .ok_or_else(|| format!("truncated event header ({} bytes left)", bytes.len() - at))?;
    let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
    // A FORMAT_DESCRIPTION always carries its checksum algorithm and checksum.
    let min = HEADER_LEN
        + if header[4] == code::FORMAT_DESCRIPTION {
            5
        } else if checksum {
            4
        } else {
            0
        };
    if size < min {
        return Err(format!("event size {size} is below the minimum {min}"));
    }
    if bytes.len() - at < size {
        return Err(format!(
            "truncated event: {size} bytes announced, {} left",
            bytes.len() - at
        ));
    }
    if let Kind::Refused(r) = Kind::of(header[4]) {
        return Err(r.explain());
    }
    Ok(size)
}

/// Runs a mysql_common parse, turning a panic into an error.
pub(super) fn guard<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|_| "the event does not decode (parser panicked)".to_owned())
}

fn describe(e: DecodeError) -> String {
    match e {
        DecodeError::Unsupported(m) | DecodeError::Corrupt(m) => m,
    }
}
