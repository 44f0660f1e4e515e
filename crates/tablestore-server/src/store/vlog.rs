//! The value log: on-disk format (frames of records, segment files, the redb index entries
//! that point into it, the checkpoint state) and its writer side, [`Journal`]. Kept together
//! because the format and the code that appends, rotates and frees segments must agree.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::Instant;

use redb::TableDefinition;

use super::codec::{put_bytes, put_varint, Reader};
use super::{Store, StoreError};

/// Log segments rotate at this size; sealed segments are compacted when half garbage.
pub(super) const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Rows up to this size live inline in redb; larger ones stay in the log and redb points at them.
pub(super) const INLINE_MAX: usize = 128;
const FRAME_MAGIC: u32 = 0x5453_4C31;
/// magic u32, payload length u32, payload hash u64.
pub(super) const FRAME_HEADER: usize = 16;
const REC_PUT: u8 = 1;
const REC_DELETE: u8 = 2;
const REC_COUNTER: u8 = 3;
/// A compacted segment is unlinked this long after the checkpoint that stopped referencing it,
/// so reads on older snapshots still find it.
pub(super) const UNLINK_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

const ENTRY_INLINE: u8 = 0;
const ENTRY_POINTER: u8 = 1;

/// A place in the log: segment number and byte offset (ordered by segment, then offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u32,
    pub offset: u64,
}

/// Where a row's bytes sit in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ValuePtr {
    pub(super) segment: u32,
    pub(super) offset: u64,
    pub(super) len: u32,
}

/// A redb value: the row inline, or a pointer into the log.
pub(super) enum Entry<'a> {
    Inline(&'a [u8]),
    Pointer(ValuePtr),
}

pub(super) fn encode_pointer(p: ValuePtr) -> [u8; 17] {
    let mut b = [0u8; 17];
    b[0] = ENTRY_POINTER;
    b[1..5].copy_from_slice(&p.segment.to_le_bytes());
    b[5..13].copy_from_slice(&p.offset.to_le_bytes());
    b[13..17].copy_from_slice(&p.len.to_le_bytes());
    b
}

pub(super) fn encode_inline(row: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(row.len() + 1);
    b.push(ENTRY_INLINE);
    b.extend_from_slice(row);
    b
}

pub(super) fn decode_entry(b: &[u8]) -> Result<Entry<'_>, StoreError> {
    match b.split_first() {
        Some((&ENTRY_INLINE, row)) => Ok(Entry::Inline(row)),
        Some((&ENTRY_POINTER, rest)) if rest.len() == 16 => {
            let mut r = Reader::new(rest);
            let segment = r.u32()?;
            let offset = r.i64()? as u64;
            let len = r.u32()?;
            Ok(Entry::Pointer(ValuePtr {
                segment,
                offset,
                len,
            }))
        }
        _ => Err(StoreError("corrupt index entry in storage".to_owned())),
    }
}

pub(super) fn pointer_of(b: &[u8]) -> Option<ValuePtr> {
    match decode_entry(b) {
        Ok(Entry::Pointer(p)) => Some(p),
        _ => None,
    }
}

/// Checksum of a frame payload (detects torn writes, not adversaries).
fn frame_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = (b.len() as u64).wrapping_mul(K) ^ 0x2545_F491_4F6C_DD1D;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    for &x in chunks.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(K).rotate_left(29);
    }
    h ^ (h >> 31)
}

pub(super) fn segment_file_name(segment: u32) -> String {
    format!("vlog-{segment:010}.log")
}

pub(super) fn parse_segment_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("vlog-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

/// One record of a log frame.
pub(super) enum Record<'a> {
    /// `value_offset` is the value's offset within the frame payload.
    Put {
        table: &'a str,
        key: &'a [u8],
        value: &'a [u8],
        value_offset: usize,
    },
    Delete {
        table: &'a str,
        key: &'a [u8],
    },
    Counter {
        table: &'a str,
        value: i64,
    },
}

pub(super) fn parse_records(payload: &[u8]) -> Result<Vec<Record<'_>>, StoreError> {
    let mut r = Reader::new(payload);
    let mut out = Vec::new();
    while !r.b.is_empty() {
        let kind = r.u8()?;
        let table_bytes = r.bytes()?;
        let table = std::str::from_utf8(table_bytes).map_err(|_| r.corrupt())?;
        out.push(match kind {
            REC_PUT => {
                let key = r.bytes()?;
                let value = r.bytes()?;
                let value_offset = payload.len() - r.b.len() - value.len();
                Record::Put {
                    table,
                    key,
                    value,
                    value_offset,
                }
            }
            REC_DELETE => Record::Delete {
                table,
                key: r.bytes()?,
            },
            REC_COUNTER => Record::Counter {
                table,
                value: r.i64()?,
            },
            _ => return Err(r.corrupt()),
        });
    }
    Ok(out)
}

/// Reads the frame at `pos` of `file`: its payload, or None when there is no complete, intact
/// frame there (end of log or torn write).
pub(super) fn read_frame(
    file: &File,
    pos: u64,
    file_len: u64,
) -> Result<Option<Vec<u8>>, std::io::Error> {
    if pos + FRAME_HEADER as u64 > file_len {
        return Ok(None);
    }
    let mut h = [0u8; FRAME_HEADER];
    file.read_exact_at(&mut h, pos)?;
    let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let len = u64::from(u32::from_le_bytes([h[4], h[5], h[6], h[7]]));
    let mut hash = [0u8; 8];
    hash.copy_from_slice(&h[8..16]);
    if magic != FRAME_MAGIC || pos + FRAME_HEADER as u64 + len > file_len {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, pos + FRAME_HEADER as u64)?;
    if frame_hash(&payload) != u64::from_le_bytes(hash) {
        return Ok(None);
    }
    Ok(Some(payload))
}

/// The log's writer side; owned by the engine's writer thread.
pub struct Journal {
    pub(super) active: u32,
    pub(super) file: Arc<File>,
    /// Bytes of the active segment written so far.
    pub(super) end: u64,
    /// The frame being built for the current transaction (header placeholder + records).
    pub(super) frame: Vec<u8>,
    /// Bytes of live (pointed-to) values per segment.
    pub(super) live: BTreeMap<u32, u64>,
    pub(super) since_checkpoint: u64,
    pub(super) last_checkpoint: Instant,
    /// Rotation size and unlink delay (fields so tests can shrink them).
    pub(super) segment_bytes: u64,
    pub(super) unlink_delay: std::time::Duration,
    /// Compacted segments, free once the next checkpoint is durable.
    pub(super) emptied: Vec<u32>,
    /// Free segments waiting to be unlinked.
    pub(super) doomed: Vec<(u32, Instant)>,
}

pub(super) const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
pub(super) const STATE_POSITION: &str = "position";
pub(super) const STATE_LIVE: &str = "live";

pub(super) fn encode_live(live: &BTreeMap<u32, u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(live.len() * 12 + 4);
    put_varint(&mut out, live.len() as u64);
    for (s, n) in live {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
    }
    out
}

pub(super) fn decode_live(b: &[u8]) -> Result<BTreeMap<u32, u64>, StoreError> {
    let mut r = Reader::new(b);
    let n = r.varint()?;
    let mut live = BTreeMap::new();
    for _ in 0..n {
        let s = r.u32()?;
        live.insert(s, r.i64()? as u64);
    }
    r.finish()?;
    Ok(live)
}

pub(super) fn encode_position(p: Position) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&p.segment.to_le_bytes());
    b[4..].copy_from_slice(&p.offset.to_le_bytes());
    b
}

pub(super) fn decode_position(b: &[u8]) -> Result<Position, StoreError> {
    let mut r = Reader::new(b);
    let p = Position {
        segment: r.u32()?,
        offset: r.i64()? as u64,
    };
    r.finish()?;
    Ok(p)
}

pub(super) fn release(live: &mut BTreeMap<u32, u64>, old_entry: &[u8]) {
    if let Some(p) = pointer_of(old_entry) {
        if let Some(n) = live.get_mut(&p.segment) {
            *n = n.saturating_sub(u64::from(p.len));
        }
    }
}

impl Journal {
    /// Where the next frame goes (everything before it is in the log).
    pub fn position(&self) -> Position {
        Position {
            segment: self.active,
            offset: self.end,
        }
    }

    /// Log bytes written since the last durable checkpoint.
    pub fn since_checkpoint(&self) -> u64 {
        self.since_checkpoint
    }

    pub fn last_checkpoint(&self) -> Instant {
        self.last_checkpoint
    }

    /// Forgets the frame of a transaction that was not committed.
    pub fn discard_frame(&mut self) {
        self.frame.clear();
    }

    /// Whether anything awaits a checkpoint (log data or segments to free).
    pub fn dirty(&self) -> bool {
        self.since_checkpoint > 0 || !self.emptied.is_empty() || !self.frame.is_empty()
    }

    fn begin_record(&mut self, kind: u8, table: &str) {
        if self.frame.is_empty() {
            self.frame.resize(FRAME_HEADER, 0);
        }
        self.frame.push(kind);
        put_bytes(&mut self.frame, table.as_bytes());
    }

    /// Appends a PUT record; returns where its value will be once the frame is written.
    pub(super) fn append_put(&mut self, table: &str, key: &[u8], value: &[u8]) -> ValuePtr {
        self.begin_record(REC_PUT, table);
        put_bytes(&mut self.frame, key);
        put_varint(&mut self.frame, value.len() as u64);
        let offset = self.end + self.frame.len() as u64;
        self.frame.extend_from_slice(value);
        ValuePtr {
            segment: self.active,
            offset,
            len: value.len() as u32,
        }
    }

    pub(super) fn append_delete(&mut self, table: &str, key: &[u8]) {
        self.begin_record(REC_DELETE, table);
        put_bytes(&mut self.frame, key);
    }

    pub(super) fn append_counter(&mut self, table: &str, value: i64) {
        self.begin_record(REC_COUNTER, table);
        self.frame.extend_from_slice(&value.to_le_bytes());
    }

    pub(super) fn hold(&mut self, p: ValuePtr) {
        *self.live.entry(p.segment).or_default() += u64::from(p.len);
    }

    pub(super) fn release(&mut self, p: ValuePtr) {
        if let Some(n) = self.live.get_mut(&p.segment) {
            *n = n.saturating_sub(u64::from(p.len));
        }
    }

    /// A value, also one appended to the frame not yet written.
    pub(super) fn read_value(&self, store: &Store, p: ValuePtr) -> Result<Vec<u8>, StoreError> {
        if p.segment == self.active && p.offset >= self.end {
            let start = (p.offset - self.end) as usize;
            return self
                .frame
                .get(start..start + p.len as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| StoreError("pending value out of range".to_owned()));
        }
        store.read_value(p)
    }

    /// Writes the pending frame (no fsync). Returns the file written, if any.
    pub(super) fn write_frame(&mut self) -> Result<Option<Arc<File>>, StoreError> {
        if self.frame.is_empty() {
            return Ok(None);
        }
        let payload_len = self.frame.len() - FRAME_HEADER;
        let len = u32::try_from(payload_len)
            .map_err(|_| StoreError("log frame larger than 4 GiB".to_owned()))?;
        let hash = frame_hash(&self.frame[FRAME_HEADER..]);
        self.frame[..4].copy_from_slice(&FRAME_MAGIC.to_le_bytes());
        self.frame[4..8].copy_from_slice(&len.to_le_bytes());
        self.frame[8..16].copy_from_slice(&hash.to_le_bytes());
        self.file
            .write_all_at(&self.frame, self.end)
            .map_err(|e| StoreError(format!("cannot write the value log: {e}")))?;
        self.end += self.frame.len() as u64;
        self.since_checkpoint += self.frame.len() as u64;
        if self.frame.capacity() > 8 * 1024 * 1024 {
            self.frame = Vec::new();
        } else {
            self.frame.clear();
        }
        Ok(Some(self.file.clone()))
    }

    /// Starts a new segment once the active one is full (the full one is fsynced first, so
    /// later fsyncs of the new segment cover everything before).
    pub(super) fn rotate_if_full(&mut self, store: &Store) -> Result<(), StoreError> {
        if self.end < self.segment_bytes {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| StoreError(format!("cannot sync the value log: {e}")))?;
        let next = self.active + 1;
        self.file = store.create_segment(next)?;
        self.active = next;
        self.end = 0;
        Ok(())
    }

    /// A sealed segment worth compacting: at least half garbage.
    pub fn gc_candidate(&self, store: &Store) -> Option<u32> {
        let map = store.segments.read().ok()?;
        map.iter()
            .filter(|(id, _)| **id < self.active && !self.emptied.contains(id))
            .filter(|(id, _)| !self.doomed.iter().any(|(d, _)| d == *id))
            .find_map(|(id, f)| {
                let size = f.metadata().ok()?.len();
                let live = self.live.get(id).copied().unwrap_or(0);
                (live.saturating_mul(2) < size || live == 0).then_some(*id)
            })
    }

    /// Unlinks freed segments whose delay has passed.
    pub fn unlink_doomed(&mut self, store: &Store) {
        let now = Instant::now();
        let delay = self.unlink_delay;
        self.doomed.retain(|(id, at)| {
            if now.duration_since(*at) < delay {
                return true;
            }
            store.unregister(*id);
            let path = store.segment_path(*id);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove log segment");
            }
            false
        });
    }
}
