//! Durable storage of the local server: one redb file (table metadata, and per Tablestore table
//! one redb table indexing its rows by primary key) plus a value log that makes writes durable
//! and holds the bytes of all but small rows (see [`Store`] for why).
//!
//! Keys are the primary key in an order-preserving byte encoding, so redb's bytewise key order is
//! the service's PK order (§3.9) and range bounds with INF_MIN/INF_MAX in any column are plain
//! byte bounds. Per column: a tag (0x00 INF_MIN, 0x01 value, 0x02 INF_MAX), then for a value an
//! INTEGER as 8 bytes big-endian with the sign bit flipped, a STRING/BINARY as its bytes with
//! 0x00 escaped as 0x00 0xFF and terminated by 0x00 0x00 (the terminator sorts below any
//! continuation, so a prefix sorts first and the next column never leaks into the comparison).
//!
//! Rows are a compact binary encoding of every attribute column with all its versions.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, TableError, WriteTransaction,
};

use tablestore::error::ServiceError;
use tablestore::row::{PkColumn, PrimaryKey};
use tablestore::schema::{DefinedColumnType, PkSchema, TableDef, TableOptions};
use tablestore::value::{PkType, PkValue, Value};

/// The database file inside the data directory.
pub const DB_FILE: &str = "tablestore.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// redb name of a Tablestore table's data (table names are `[A-Za-z0-9_]`, so no clash with
/// "meta").
fn data_table_name(table: &str) -> String {
    format!("t/{table}")
}

/// A storage failure (I/O, corruption). The engine answers it with OTSInternalServerError.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::internal(format!("storage error: {}", e.0))
    }
}

macro_rules! store_err_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(e.to_string())
            }
        }
    )*};
}
store_err_from!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

// ------------------------------------------------------------------ key encoding

const TAG_INF_MIN: u8 = 0x00;
const TAG_VALUE: u8 = 0x01;
const TAG_INF_MAX: u8 = 0x02;
/// Never stored: the engine resolves placeholders before encoding. Sorts above everything.
const TAG_AUTO_INCREMENT: u8 = 0x03;

/// Encodes a primary key (or range bound) so that byte order equals PK order.
pub fn encode_key(pk: &PrimaryKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(pk.0.iter().map(|c| c.value.data_size() + 3).sum());
    for c in &pk.0 {
        encode_pk_value(&c.value, &mut out);
    }
    out
}

fn encode_pk_value(v: &PkValue, out: &mut Vec<u8>) {
    match v {
        PkValue::InfMin => out.push(TAG_INF_MIN),
        PkValue::InfMax => out.push(TAG_INF_MAX),
        PkValue::AutoIncrement => out.push(TAG_AUTO_INCREMENT),
        PkValue::Integer(i) => {
            out.push(TAG_VALUE);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        PkValue::String(s) => {
            out.push(TAG_VALUE);
            escape_bytes(s.as_bytes(), out);
        }
        PkValue::Binary(b) => {
            out.push(TAG_VALUE);
            escape_bytes(b, out);
        }
    }
}

fn escape_bytes(b: &[u8], out: &mut Vec<u8>) {
    for &x in b {
        out.push(x);
        if x == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Decodes a key written by [`encode_key`] with the table's PK schema.
pub fn decode_key(mut b: &[u8], schema: &[PkSchema]) -> Result<PrimaryKey, StoreError> {
    let bad = || StoreError("corrupt primary key in storage".to_owned());
    let mut cols = Vec::with_capacity(schema.len());
    for s in schema {
        let (&tag, rest) = b.split_first().ok_or_else(bad)?;
        b = rest;
        let value = match tag {
            TAG_INF_MIN => PkValue::InfMin,
            TAG_INF_MAX => PkValue::InfMax,
            TAG_AUTO_INCREMENT => PkValue::AutoIncrement,
            TAG_VALUE => match s.pk_type {
                PkType::Integer => {
                    let (n, rest) = b.split_first_chunk::<8>().ok_or_else(bad)?;
                    b = rest;
                    PkValue::Integer((u64::from_be_bytes(*n) ^ (1 << 63)) as i64)
                }
                PkType::String | PkType::Binary => {
                    let mut raw = Vec::new();
                    loop {
                        match b {
                            [0, 0, rest @ ..] => {
                                b = rest;
                                break;
                            }
                            [0, 0xFF, rest @ ..] => {
                                raw.push(0);
                                b = rest;
                            }
                            [x, rest @ ..] if *x != 0 => {
                                raw.push(*x);
                                b = rest;
                            }
                            _ => return Err(bad()),
                        }
                    }
                    if s.pk_type == PkType::String {
                        PkValue::String(String::from_utf8(raw).map_err(|_| bad())?)
                    } else {
                        PkValue::Binary(raw)
                    }
                }
            },
            _ => return Err(bad()),
        };
        cols.push(PkColumn {
            name: s.name.clone(),
            value,
        });
    }
    if !b.is_empty() {
        return Err(bad());
    }
    Ok(PrimaryKey(cols))
}

// ------------------------------------------------------------------ row encoding

/// One attribute column with its versions, newest first (timestamps unique).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredColumn {
    pub name: String,
    pub versions: Vec<(i64, Value)>,
}

/// A stored row's attribute columns, sorted by name. A row with no columns does not exist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoredRow {
    pub columns: Vec<StoredColumn>,
}

impl StoredRow {
    pub fn column(&self, name: &str) -> Option<&StoredColumn> {
        self.columns
            .binary_search_by(|c| c.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.columns[i])
    }

    /// The column, created empty (in name order) when absent.
    pub fn column_mut(&mut self, name: &str) -> &mut StoredColumn {
        let i = match self.columns.binary_search_by(|c| c.name.as_str().cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                self.columns.insert(
                    i,
                    StoredColumn {
                        name: name.to_owned(),
                        versions: Vec::new(),
                    },
                );
                i
            }
        };
        &mut self.columns[i]
    }

    pub fn remove_column(&mut self, name: &str) {
        if let Ok(i) = self.columns.binary_search_by(|c| c.name.as_str().cmp(name)) {
            self.columns.remove(i);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

impl StoredColumn {
    /// Adds a version, replacing one with the same timestamp, keeping newest-first order.
    pub fn put_version(&mut self, ts: i64, value: Value) {
        match self.versions.binary_search_by(|(t, _)| ts.cmp(t)) {
            Ok(i) => self.versions[i].1 = value,
            Err(i) => self.versions.insert(i, (ts, value)),
        }
    }

    pub fn delete_version(&mut self, ts: i64) {
        if let Ok(i) = self.versions.binary_search_by(|(t, _)| ts.cmp(t)) {
            self.versions.remove(i);
        }
    }
}

const ROW_FORMAT: u8 = 1;
const VT_INTEGER: u8 = 0;
const VT_DOUBLE: u8 = 1;
const VT_BOOLEAN: u8 = 2;
const VT_STRING: u8 = 3;
const VT_BINARY: u8 = 4;

pub fn encode_row(row: &StoredRow) -> Vec<u8> {
    let size: usize = row
        .columns
        .iter()
        .map(|c| {
            c.name.len()
                + 4
                + c.versions
                    .iter()
                    .map(|(_, v)| v.data_size() + 14)
                    .sum::<usize>()
        })
        .sum();
    let mut out = Vec::with_capacity(size + 4);
    out.push(ROW_FORMAT);
    put_varint(&mut out, row.columns.len() as u64);
    for c in &row.columns {
        put_bytes(&mut out, c.name.as_bytes());
        put_varint(&mut out, c.versions.len() as u64);
        for (ts, v) in &c.versions {
            out.extend_from_slice(&ts.to_le_bytes());
            put_value(&mut out, v);
        }
    }
    out
}

/// `encode_row` of a row whose columns hold one version each, given as (name, timestamp,
/// value) sorted by name with no name repeated: a PUT's cells encoded without building the
/// `StoredRow` first.
pub fn encode_single_versions(cols: &[(&str, i64, &Value)]) -> Vec<u8> {
    let size: usize = cols
        .iter()
        .map(|(n, _, v)| n.len() + 4 + v.data_size() + 14)
        .sum();
    let mut out = Vec::with_capacity(size + 4);
    out.push(ROW_FORMAT);
    put_varint(&mut out, cols.len() as u64);
    for (name, ts, v) in cols {
        put_bytes(&mut out, name.as_bytes());
        put_varint(&mut out, 1);
        out.extend_from_slice(&ts.to_le_bytes());
        put_value(&mut out, v);
    }
    out
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Integer(i) => {
            out.push(VT_INTEGER);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Double(d) => {
            out.push(VT_DOUBLE);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Boolean(b) => {
            out.push(VT_BOOLEAN);
            out.push(u8::from(*b));
        }
        Value::String(s) => {
            out.push(VT_STRING);
            put_bytes(out, s.as_bytes());
        }
        Value::Binary(b) => {
            out.push(VT_BINARY);
            put_bytes(out, b);
        }
    }
}

pub fn decode_row(b: &[u8]) -> Result<StoredRow, StoreError> {
    let mut r = Reader::new(b);
    if r.u8()? != ROW_FORMAT {
        return Err(StoreError("unknown row format in storage".to_owned()));
    }
    let n = r.len()?;
    let mut columns = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let name = r.string()?;
        let nv = r.len()?;
        let mut versions = Vec::with_capacity(nv.min(4096));
        for _ in 0..nv {
            let ts = r.i64()?;
            let v = match r.u8()? {
                VT_INTEGER => Value::Integer(r.i64()?),
                VT_DOUBLE => Value::Double(f64::from_bits(r.i64()? as u64)),
                VT_BOOLEAN => Value::Boolean(r.u8()? != 0),
                VT_STRING => Value::String(r.string()?),
                VT_BINARY => Value::Binary(r.bytes()?.to_vec()),
                _ => return Err(r.corrupt()),
            };
            versions.push((ts, v));
        }
        columns.push(StoredColumn { name, versions });
    }
    r.finish()?;
    Ok(StoredRow { columns })
}

// ------------------------------------------------------------------ table metadata

/// What the metadata table keeps per Tablestore table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRecord {
    pub def: TableDef,
    /// Unix seconds.
    pub creation_time: i64,
    /// Last auto-increment value handed out (0 = none yet).
    pub auto_increment: i64,
}

const META_FORMAT: u8 = 1;

fn pk_type_code(t: PkType) -> u8 {
    match t {
        PkType::Integer => 0,
        PkType::String => 1,
        PkType::Binary => 2,
    }
}

fn defined_type_code(t: DefinedColumnType) -> u8 {
    match t {
        DefinedColumnType::Integer => 0,
        DefinedColumnType::Double => 1,
        DefinedColumnType::Boolean => 2,
        DefinedColumnType::String => 3,
        DefinedColumnType::Blob => 4,
    }
}

pub fn encode_record(rec: &TableRecord) -> Vec<u8> {
    let mut out = vec![META_FORMAT];
    let d = &rec.def;
    put_bytes(&mut out, d.name.as_bytes());
    put_varint(&mut out, d.primary_key.len() as u64);
    for pk in &d.primary_key {
        put_bytes(&mut out, pk.name.as_bytes());
        out.push(pk_type_code(pk.pk_type));
        out.push(u8::from(pk.auto_increment));
    }
    put_varint(&mut out, d.defined_columns.len() as u64);
    for (name, t) in &d.defined_columns {
        put_bytes(&mut out, name.as_bytes());
        out.push(defined_type_code(*t));
    }
    let o = &d.options;
    out.extend_from_slice(&i64::from(o.time_to_live).to_le_bytes());
    out.extend_from_slice(&i64::from(o.max_versions).to_le_bytes());
    out.extend_from_slice(&o.deviation_cell_version_in_sec.to_le_bytes());
    out.push(u8::from(o.allow_update));
    out.extend_from_slice(&rec.creation_time.to_le_bytes());
    out.extend_from_slice(&rec.auto_increment.to_le_bytes());
    out
}

pub fn decode_record(b: &[u8]) -> Result<TableRecord, StoreError> {
    let mut r = Reader::new(b);
    if r.u8()? != META_FORMAT {
        return Err(StoreError(
            "unknown table metadata format in storage".to_owned(),
        ));
    }
    let name = r.string()?;
    let npk = r.len()?;
    let mut primary_key = Vec::with_capacity(npk.min(16));
    for _ in 0..npk {
        let name = r.string()?;
        let pk_type = match r.u8()? {
            0 => PkType::Integer,
            1 => PkType::String,
            2 => PkType::Binary,
            _ => return Err(r.corrupt()),
        };
        let auto_increment = r.u8()? != 0;
        primary_key.push(PkSchema {
            name,
            pk_type,
            auto_increment,
        });
    }
    let nd = r.len()?;
    let mut defined_columns = Vec::with_capacity(nd.min(64));
    for _ in 0..nd {
        let name = r.string()?;
        let t = match r.u8()? {
            0 => DefinedColumnType::Integer,
            1 => DefinedColumnType::Double,
            2 => DefinedColumnType::Boolean,
            3 => DefinedColumnType::String,
            4 => DefinedColumnType::Blob,
            _ => return Err(r.corrupt()),
        };
        defined_columns.push((name, t));
    }
    let options = TableOptions {
        time_to_live: r.i64()? as i32,
        max_versions: r.i64()? as i32,
        deviation_cell_version_in_sec: r.i64()?,
        allow_update: r.u8()? != 0,
    };
    let creation_time = r.i64()?;
    let auto_increment = r.i64()?;
    r.finish()?;
    Ok(TableRecord {
        def: TableDef {
            name,
            primary_key,
            defined_columns,
            options,
        },
        creation_time,
        auto_increment,
    })
}

// ------------------------------------------------------------------ byte helpers

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b }
    }

    fn corrupt(&self) -> StoreError {
        StoreError("corrupt record in storage".to_owned())
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        let (&x, rest) = self.b.split_first().ok_or_else(|| self.corrupt())?;
        self.b = rest;
        Ok(x)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let (n, rest) = self
            .b
            .split_first_chunk::<4>()
            .ok_or_else(|| self.corrupt())?;
        self.b = rest;
        Ok(u32::from_le_bytes(*n))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        let (n, rest) = self
            .b
            .split_first_chunk::<8>()
            .ok_or_else(|| self.corrupt())?;
        self.b = rest;
        Ok(i64::from_le_bytes(*n))
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let x = self.u8()?;
            v |= u64::from(x & 0x7F) << shift;
            if x & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.corrupt())
    }

    /// A length that must fit in the remaining input (guards allocations on corrupt data).
    fn len(&mut self) -> Result<usize, StoreError> {
        let n = self.varint()?;
        if n > self.b.len() as u64 {
            return Err(self.corrupt());
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.len()?;
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.corrupt())
    }

    fn finish(&self) -> Result<(), StoreError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt())
        }
    }
}

// ------------------------------------------------------------------ the value log

/// Log segments rotate at this size; sealed segments are compacted when half garbage.
const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Rows up to this size live inline in redb; larger ones stay in the log and redb points at them.
const INLINE_MAX: usize = 128;
const FRAME_MAGIC: u32 = 0x5453_4C31;
/// magic u32, payload length u32, payload hash u64.
const FRAME_HEADER: usize = 16;
const REC_PUT: u8 = 1;
const REC_DELETE: u8 = 2;
const REC_COUNTER: u8 = 3;
/// A compacted segment is unlinked this long after the checkpoint that stopped referencing it,
/// so reads on older snapshots still find it.
const UNLINK_DELAY: std::time::Duration = std::time::Duration::from_secs(30);

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
struct ValuePtr {
    segment: u32,
    offset: u64,
    len: u32,
}

/// A redb value: the row inline, or a pointer into the log.
enum Entry<'a> {
    Inline(&'a [u8]),
    Pointer(ValuePtr),
}

fn encode_pointer(p: ValuePtr) -> [u8; 17] {
    let mut b = [0u8; 17];
    b[0] = ENTRY_POINTER;
    b[1..5].copy_from_slice(&p.segment.to_le_bytes());
    b[5..13].copy_from_slice(&p.offset.to_le_bytes());
    b[13..17].copy_from_slice(&p.len.to_le_bytes());
    b
}

fn encode_inline(row: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(row.len() + 1);
    b.push(ENTRY_INLINE);
    b.extend_from_slice(row);
    b
}

fn decode_entry(b: &[u8]) -> Result<Entry<'_>, StoreError> {
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

fn pointer_of(b: &[u8]) -> Option<ValuePtr> {
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

fn segment_file_name(segment: u32) -> String {
    format!("vlog-{segment:010}.log")
}

fn parse_segment_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("vlog-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("{what} {}: {e}", path.display()))
}

/// One record of a log frame.
enum Record<'a> {
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

fn parse_records(payload: &[u8]) -> Result<Vec<Record<'_>>, StoreError> {
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
fn read_frame(file: &File, pos: u64, file_len: u64) -> Result<Option<Vec<u8>>, std::io::Error> {
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

// ------------------------------------------------------------------ the database

/// Storage of one data directory: `tablestore.redb` (table metadata, and per table an index
/// from encoded PK to the row, inline when small or as a pointer into the value log) plus the
/// value log `vlog-*.log`.
///
/// Why a log: with rows of ~1 KB stored in redb's 4 KiB B-tree pages, every commit rewrites
/// about a page per row and tops out far below the throughput the server needs. Instead each
/// group commit appends one frame (all rows it wrote) to the log and fsyncs it: that append
/// is what makes a write durable. redb then commits without fsync, and every so often (or on a
/// table change, or on shutdown) durably, recording the log position it has absorbed (the
/// checkpoint). Opening replays the frames after the checkpoint. Sealed segments that are
/// mostly garbage are compacted by moving their live rows to the end of the log.
pub struct Store {
    db: Database,
    path: PathBuf,
    dir: PathBuf,
    segments: RwLock<BTreeMap<u32, Arc<File>>>,
}

/// The log's writer side; owned by the engine's writer thread.
pub struct Journal {
    active: u32,
    file: Arc<File>,
    /// Bytes of the active segment written so far.
    end: u64,
    /// The frame being built for the current transaction (header placeholder + records).
    frame: Vec<u8>,
    /// Bytes of live (pointed-to) values per segment.
    live: BTreeMap<u32, u64>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// Rotation size and unlink delay (fields so tests can shrink them).
    segment_bytes: u64,
    unlink_delay: std::time::Duration,
    /// Compacted segments, free once the next checkpoint is durable.
    emptied: Vec<u32>,
    /// Free segments waiting to be unlinked.
    doomed: Vec<(u32, Instant)>,
}

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const STATE_POSITION: &str = "position";
const STATE_LIVE: &str = "live";

fn encode_live(live: &BTreeMap<u32, u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(live.len() * 12 + 4);
    put_varint(&mut out, live.len() as u64);
    for (s, n) in live {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
    }
    out
}

fn decode_live(b: &[u8]) -> Result<BTreeMap<u32, u64>, StoreError> {
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

fn encode_position(p: Position) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&p.segment.to_le_bytes());
    b[4..].copy_from_slice(&p.offset.to_le_bytes());
    b
}

fn decode_position(b: &[u8]) -> Result<Position, StoreError> {
    let mut r = Reader::new(b);
    let p = Position {
        segment: r.u32()?,
        offset: r.i64()? as u64,
    };
    r.finish()?;
    Ok(p)
}

impl Store {
    /// Opens (or creates) the store in `dir` with a bounded redb page cache, replaying the log
    /// written since the last checkpoint. Returns the store and the log's writer side.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<(Arc<Store>, Journal), ServiceError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            ServiceError::internal(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| {
                ServiceError::internal(format!("cannot open database {}: {e}", path.display()))
            })?;
        let store = Arc::new(Store {
            db,
            path,
            dir: dir.to_owned(),
            segments: RwLock::new(BTreeMap::new()),
        });
        let journal = store.recover().map_err(|e| {
            ServiceError::internal(format!(
                "cannot recover the store in {}: {e}",
                dir.display()
            ))
        })?;
        Ok((store, journal))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn segment_path(&self, segment: u32) -> PathBuf {
        self.dir.join(segment_file_name(segment))
    }

    fn segment(&self, segment: u32) -> Result<Arc<File>, StoreError> {
        let map = self
            .segments
            .read()
            .map_err(|_| StoreError("segment map lock poisoned".to_owned()))?;
        map.get(&segment)
            .cloned()
            .ok_or_else(|| StoreError(format!("value log segment {segment} is missing")))
    }

    fn register(&self, segment: u32, file: Arc<File>) {
        let mut map = self.segments.write().unwrap_or_else(|p| p.into_inner());
        map.insert(segment, file);
    }

    fn unregister(&self, segment: u32) {
        let mut map = self.segments.write().unwrap_or_else(|p| p.into_inner());
        map.remove(&segment);
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync directory", &self.dir, e))
    }

    fn create_segment(&self, segment: u32) -> Result<Arc<File>, StoreError> {
        let path = self.segment_path(segment);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err("cannot create log segment", &path, e))?;
        // The new file's directory entry must be durable before anything in it is acknowledged.
        self.sync_dir()?;
        let file = Arc::new(file);
        self.register(segment, file.clone());
        Ok(file)
    }

    fn read_value(&self, p: ValuePtr) -> Result<Vec<u8>, StoreError> {
        let file = self.segment(p.segment)?;
        let mut buf = vec![0u8; p.len as usize];
        file.read_exact_at(&mut buf, p.offset).map_err(|e| {
            StoreError(format!(
                "cannot read value log segment {} at {}: {e}",
                p.segment, p.offset
            ))
        })?;
        Ok(buf)
    }

    /// The row bytes behind a redb entry.
    fn entry_row<'a>(&self, entry: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, StoreError> {
        match decode_entry(entry)? {
            Entry::Inline(row) => Ok(std::borrow::Cow::Borrowed(row)),
            Entry::Pointer(p) => Ok(std::borrow::Cow::Owned(self.read_value(p)?)),
        }
    }

    /// Replays the log after the checkpoint into redb, starts a fresh segment, checkpoints
    /// durably and drops segments nothing refers to any more.
    fn recover(&self) -> Result<Journal, StoreError> {
        let (checkpoint, mut live) = {
            let txn = self.db.begin_write()?;
            let cp;
            let live;
            {
                txn.open_table(META)?;
                let state = txn.open_table(STATE)?;
                cp = match state.get(STATE_POSITION)? {
                    Some(v) => Some(decode_position(v.value())?),
                    None => None,
                };
                live = match state.get(STATE_LIVE)? {
                    Some(v) => decode_live(v.value())?,
                    None => BTreeMap::new(),
                };
            }
            txn.commit()?;
            (cp, live)
        };
        let mut ids = Vec::new();
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| io_err("cannot list", &self.dir, e))?;
        for e in entries {
            let e = e.map_err(|e| io_err("cannot list", &self.dir, e))?;
            if let Some(id) = e.file_name().to_str().and_then(parse_segment_file_name) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        for &id in &ids {
            let path = self.segment_path(id);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_err("cannot open log segment", &path, e))?;
            self.register(id, Arc::new(f));
        }
        let from = checkpoint.unwrap_or(Position {
            segment: ids.first().copied().unwrap_or(0),
            offset: 0,
        });
        let replayed = self.replay(from, &ids, &mut live)?;
        if replayed > 0 {
            tracing::info!(
                frames = replayed,
                "replayed the value log after the last checkpoint"
            );
        }
        // New writes always go to a fresh segment: never after a possibly torn tail, and
        // always after the checkpoint recorded below.
        let active = ids
            .last()
            .map_or(0, |l| l + 1)
            .max(checkpoint.map_or(0, |c| c.segment + 1));
        let file = self.create_segment(active)?;
        // Sealed segments that hold no live value are garbage once this checkpoint is durable.
        let garbage: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|id| live.get(id).copied().unwrap_or(0) == 0)
            .collect();
        for id in &garbage {
            live.remove(id);
        }
        let mut journal = Journal {
            active,
            file,
            end: 0,
            frame: Vec::new(),
            live,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            segment_bytes: SEGMENT_BYTES,
            unlink_delay: UNLINK_DELAY,
            emptied: Vec::new(),
            doomed: Vec::new(),
        };
        let txn = self.begin_write()?;
        txn.finish(self, &mut journal, true)?;
        for id in garbage {
            self.unregister(id);
            let path = self.segment_path(id);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove unused log segment");
            }
        }
        Ok(journal)
    }

    /// Applies every intact frame from `from` on; truncates a torn tail. Returns frames applied.
    fn replay(
        &self,
        from: Position,
        ids: &[u32],
        live: &mut BTreeMap<u32, u64>,
    ) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let mut frames = 0;
        {
            let mut meta = txn.open_table(META)?;
            let mut tables: HashMap<String, DataTable<'_>> = HashMap::new();
            let mut torn = false;
            for &id in ids.iter().filter(|&&id| id >= from.segment) {
                let path = self.segment_path(id);
                let file = self.segment(id)?;
                if torn {
                    // Nothing after a torn frame was ever acknowledged.
                    file.set_len(0)
                        .and_then(|_| file.sync_all())
                        .map_err(|e| io_err("cannot truncate", &path, e))?;
                    continue;
                }
                let len = file
                    .metadata()
                    .map_err(|e| io_err("cannot stat", &path, e))?
                    .len();
                let mut pos = if id == from.segment { from.offset } else { 0 };
                while pos < len {
                    let Some(payload) =
                        read_frame(&file, pos, len).map_err(|e| io_err("cannot read", &path, e))?
                    else {
                        tracing::warn!(
                            segment = id,
                            offset = pos,
                            "truncating a torn value log tail"
                        );
                        file.set_len(pos)
                            .and_then(|_| file.sync_all())
                            .map_err(|e| io_err("cannot truncate", &path, e))?;
                        torn = true;
                        break;
                    };
                    let base = pos + FRAME_HEADER as u64;
                    for rec in parse_records(&payload)? {
                        match rec {
                            Record::Put {
                                table,
                                key,
                                value,
                                value_offset,
                            } => {
                                let Some(t) = replay_table(&txn, &meta, &mut tables, table)? else {
                                    continue;
                                };
                                let entry = if value.len() <= INLINE_MAX {
                                    encode_inline(value)
                                } else {
                                    let p = ValuePtr {
                                        segment: id,
                                        offset: base + value_offset as u64,
                                        len: value.len() as u32,
                                    };
                                    *live.entry(id).or_default() += u64::from(p.len);
                                    encode_pointer(p).to_vec()
                                };
                                if let Some(old) = t.insert(key, entry.as_slice())? {
                                    release(live, old.value());
                                }
                            }
                            Record::Delete { table, key } => {
                                let Some(t) = replay_table(&txn, &meta, &mut tables, table)? else {
                                    continue;
                                };
                                if let Some(old) = t.remove(key)? {
                                    release(live, old.value());
                                }
                            }
                            Record::Counter { table, value } => {
                                let rec = match meta.get(table)? {
                                    Some(v) => Some(decode_record(v.value())?),
                                    None => None,
                                };
                                if let Some(mut rec) = rec {
                                    if value > rec.auto_increment {
                                        rec.auto_increment = value;
                                        meta.insert(table, encode_record(&rec).as_slice())?;
                                    }
                                }
                            }
                        }
                    }
                    frames += 1;
                    pos = base + payload.len() as u64;
                }
            }
        }
        txn.commit()?;
        Ok(frames)
    }

    /// Every table's metadata.
    pub fn load_tables(&self) -> Result<Vec<TableRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let mut out = Vec::new();
        for item in meta.iter()? {
            let (_, v) = item?;
            out.push(decode_record(v.value())?);
        }
        Ok(out)
    }

    /// A write transaction; [`WriteTxn::finish`] makes it durable (or not) and commits.
    pub fn begin_write(&self) -> Result<WriteTxn, StoreError> {
        Ok(WriteTxn {
            txn: self.db.begin_write()?,
        })
    }

    /// A consistent snapshot for reads (does not block writers).
    pub fn begin_read(&self) -> Result<ReadTxn<'_>, StoreError> {
        Ok(ReadTxn {
            txn: self.db.begin_read()?,
            store: self,
        })
    }
}

fn release(live: &mut BTreeMap<u32, u64>, old_entry: &[u8]) {
    if let Some(p) = pointer_of(old_entry) {
        if let Some(n) = live.get_mut(&p.segment) {
            *n = n.saturating_sub(u64::from(p.len));
        }
    }
}

/// The data table of `name` during replay, or None when the table no longer exists.
fn replay_table<'a, 't>(
    txn: &'t WriteTransaction,
    meta: &Table<'t, &'static str, &'static [u8]>,
    tables: &'a mut HashMap<String, DataTable<'t>>,
    name: &str,
) -> Result<Option<&'a mut DataTable<'t>>, StoreError> {
    if !tables.contains_key(name) {
        if meta.get(name)?.is_none() {
            return Ok(None);
        }
        let t = txn.open_table(TableDefinition::<&[u8], &[u8]>::new(&data_table_name(name)))?;
        tables.insert(name.to_owned(), t);
    }
    Ok(tables.get_mut(name))
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
    fn append_put(&mut self, table: &str, key: &[u8], value: &[u8]) -> ValuePtr {
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

    fn append_delete(&mut self, table: &str, key: &[u8]) {
        self.begin_record(REC_DELETE, table);
        put_bytes(&mut self.frame, key);
    }

    fn append_counter(&mut self, table: &str, value: i64) {
        self.begin_record(REC_COUNTER, table);
        self.frame.extend_from_slice(&value.to_le_bytes());
    }

    fn hold(&mut self, p: ValuePtr) {
        *self.live.entry(p.segment).or_default() += u64::from(p.len);
    }

    fn release(&mut self, p: ValuePtr) {
        if let Some(n) = self.live.get_mut(&p.segment) {
            *n = n.saturating_sub(u64::from(p.len));
        }
    }

    /// A value, also one appended to the frame not yet written.
    fn read_value(&self, store: &Store, p: ValuePtr) -> Result<Vec<u8>, StoreError> {
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
    fn write_frame(&mut self) -> Result<Option<Arc<File>>, StoreError> {
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
    fn rotate_if_full(&mut self, store: &Store) -> Result<(), StoreError> {
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

type DataTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

pub struct WriteTxn {
    txn: WriteTransaction,
}

impl WriteTxn {
    /// Table access within this transaction; drop it before `finish`.
    pub fn session<'t>(&'t self, store: &'t Store, journal: &'t mut Journal) -> WriteSession<'t> {
        WriteSession {
            txn: &self.txn,
            store,
            journal,
            open: HashMap::new(),
            meta: None,
        }
    }

    /// Writes the transaction's log frame and commits. With `checkpoint`, the log is fsynced
    /// and redb commits durably, recording the log position it now contains; otherwise redb
    /// commits without fsync and the caller must fsync the returned file before acknowledging.
    pub fn finish(
        self,
        store: &Store,
        journal: &mut Journal,
        checkpoint: bool,
    ) -> Result<Option<Arc<File>>, StoreError> {
        let written = journal.write_frame()?;
        let mut txn = self.txn;
        if checkpoint {
            journal
                .file
                .sync_data()
                .map_err(|e| StoreError(format!("cannot sync the value log: {e}")))?;
            for id in &journal.emptied {
                journal.live.remove(id);
            }
        }
        // Every commit records the log position it contains and the live bytes: redb also
        // makes pending non-durable commits durable when it closes, and whichever commit ends
        // up durable must say where replay starts.
        let mut state = txn.open_table(STATE)?;
        state.insert(
            STATE_POSITION,
            encode_position(journal.position()).as_slice(),
        )?;
        state.insert(STATE_LIVE, encode_live(&journal.live).as_slice())?;
        drop(state);
        txn.set_durability(if checkpoint {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| StoreError(e.to_string()))?;
        txn.commit()?;
        if checkpoint {
            journal.since_checkpoint = 0;
            journal.last_checkpoint = Instant::now();
            let now = Instant::now();
            let emptied = std::mem::take(&mut journal.emptied);
            journal
                .doomed
                .extend(emptied.into_iter().map(|id| (id, now)));
        }
        journal.rotate_if_full(store)?;
        Ok(written)
    }
}

/// A redb entry being written (see [`WriteSession::logged_entry`]).
enum EntryBuf {
    Inline(Vec<u8>),
    Pointer([u8; 17]),
}

impl EntryBuf {
    fn as_slice(&self) -> &[u8] {
        match self {
            EntryBuf::Inline(b) => b,
            EntryBuf::Pointer(p) => p,
        }
    }
}

/// Keeps the tables touched by a transaction open (opening costs a lookup per call).
pub struct WriteSession<'t> {
    txn: &'t WriteTransaction,
    store: &'t Store,
    journal: &'t mut Journal,
    open: HashMap<String, DataTable<'t>>,
    meta: Option<Table<'t, &'static str, &'static [u8]>>,
}

impl<'t> WriteSession<'t> {
    fn table(&mut self, table: &str) -> Result<&mut DataTable<'t>, StoreError> {
        if !self.open.contains_key(table) {
            let name = data_table_name(table);
            let t = self
                .txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))?;
            self.open.insert(table.to_owned(), t);
        }
        self.open
            .get_mut(table)
            .ok_or_else(|| StoreError("table handle vanished".to_owned()))
    }

    fn meta(&mut self) -> Result<&mut Table<'t, &'static str, &'static [u8]>, StoreError> {
        if self.meta.is_none() {
            self.meta = Some(self.txn.open_table(META)?);
        }
        self.meta
            .as_mut()
            .ok_or_else(|| StoreError("metadata handle vanished".to_owned()))
    }

    pub fn get_row(&mut self, table: &str, key: &[u8]) -> Result<Option<StoredRow>, StoreError> {
        let entry = match self.table(table)?.get(key)? {
            Some(v) => v.value().to_vec(),
            None => return Ok(None),
        };
        let row = match decode_entry(&entry)? {
            Entry::Inline(row) => decode_row(row)?,
            Entry::Pointer(p) => decode_row(&self.journal.read_value(self.store, p)?)?,
        };
        Ok(Some(row))
    }

    /// Logs an encoded row and returns the redb entry for it: the row itself when small, else
    /// a pointer into the log (held until the entry is replaced).
    fn logged_entry(&mut self, table: &str, key: &[u8], row: &[u8]) -> EntryBuf {
        let p = self.journal.append_put(table, key, row);
        if row.len() <= INLINE_MAX {
            EntryBuf::Inline(encode_inline(row))
        } else {
            self.journal.hold(p);
            EntryBuf::Pointer(encode_pointer(p))
        }
    }

    /// Stores an encoded row (logged; inline in redb when small).
    pub fn insert(&mut self, table: &str, key: &[u8], row: &[u8]) -> Result<(), StoreError> {
        let entry = self.logged_entry(table, key, row);
        let old = self
            .table(table)?
            .insert(key, entry.as_slice())?
            .and_then(|v| pointer_of(v.value()));
        if let Some(old) = old {
            self.journal.release(old);
        }
        Ok(())
    }

    /// `insert`, returning the row it replaced (decoded, and its encoded bytes to put it
    /// back), if any: one tree walk where `get_row` then `insert` take two.
    pub fn replace(
        &mut self,
        table: &str,
        key: &[u8],
        row: &[u8],
    ) -> Result<Option<(StoredRow, Vec<u8>)>, StoreError> {
        let entry = self.logged_entry(table, key, row);
        let old = match self.table(table)?.insert(key, entry.as_slice())? {
            Some(v) => v.value().to_vec(),
            None => return Ok(None),
        };
        let bytes = match decode_entry(&old)? {
            Entry::Inline(row) => row.to_vec(),
            Entry::Pointer(p) => {
                // Read before releasing: the release may let compaction drop the bytes.
                let bytes = self.journal.read_value(self.store, p)?;
                self.journal.release(p);
                bytes
            }
        };
        Ok(Some((decode_row(&bytes)?, bytes)))
    }

    pub fn remove(&mut self, table: &str, key: &[u8]) -> Result<(), StoreError> {
        let old = self
            .table(table)?
            .remove(key)?
            .map(|v| pointer_of(v.value()));
        if let Some(old) = old {
            self.journal.append_delete(table, key);
            if let Some(p) = old {
                self.journal.release(p);
            }
        }
        Ok(())
    }

    /// Records a table's auto-increment counter (metadata and log, so replay restores it).
    pub fn put_counter(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        self.journal
            .append_counter(&rec.def.name, rec.auto_increment);
        self.put_record(rec)
    }

    pub fn put_record(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        let v = encode_record(rec);
        self.meta()?.insert(rec.def.name.as_str(), v.as_slice())?;
        Ok(())
    }

    /// Creates the table's (empty) data table and records its metadata.
    pub fn create_table(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        // A leftover data table (should not happen) must not leak rows into the new table.
        self.drop_data(&rec.def.name)?;
        self.table(&rec.def.name)?;
        self.put_record(rec)
    }

    /// Drops the table's data and metadata.
    pub fn delete_table(&mut self, table: &str) -> Result<(), StoreError> {
        self.drop_data(table)?;
        self.meta()?.remove(table)?;
        Ok(())
    }

    fn drop_data(&mut self, table: &str) -> Result<(), StoreError> {
        self.open.remove(table);
        let name = data_table_name(table);
        let def = TableDefinition::<&[u8], &[u8]>::new(&name);
        match self.txn.open_table(def) {
            Ok(t) => {
                for item in t.iter()? {
                    let (_, v) = item?;
                    release(&mut self.journal.live, v.value());
                }
            }
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.txn.delete_table(def)?;
        Ok(())
    }

    /// Moves the live values of sealed segment `segment` to the end of the log, so the segment
    /// can be freed after the next checkpoint. `exists` says whether a table still exists.
    pub fn compact_segment(
        &mut self,
        segment: u32,
        exists: impl Fn(&str) -> bool,
    ) -> Result<usize, StoreError> {
        let file = self.store.segment(segment)?;
        let path = self.store.segment_path(segment);
        let len = file
            .metadata()
            .map_err(|e| io_err("cannot stat", &path, e))?
            .len();
        let mut pos = 0u64;
        let mut moved = 0;
        while pos < len {
            let Some(payload) =
                read_frame(&file, pos, len).map_err(|e| io_err("cannot read", &path, e))?
            else {
                return Err(StoreError(format!(
                    "corrupt frame in sealed log segment {segment} at {pos}"
                )));
            };
            let base = pos + FRAME_HEADER as u64;
            for rec in parse_records(&payload)? {
                let Record::Put {
                    table,
                    key,
                    value,
                    value_offset,
                } = rec
                else {
                    continue;
                };
                if value.len() <= INLINE_MAX || !exists(table) {
                    continue;
                }
                let here = ValuePtr {
                    segment,
                    offset: base + value_offset as u64,
                    len: value.len() as u32,
                };
                let current = self.table(table)?.get(key)?.map(|v| v.value().to_vec());
                if current.as_deref().and_then(pointer_of) == Some(here) {
                    self.insert(table, key, value)?;
                    moved += 1;
                }
            }
            pos = base + payload.len() as u64;
        }
        self.journal.emptied.push(segment);
        Ok(moved)
    }
}

pub struct ReadTxn<'s> {
    txn: ReadTransaction,
    store: &'s Store,
}

impl<'s> ReadTxn<'s> {
    /// The table's data, or None when it does not exist in this snapshot.
    pub fn table(&self, table: &str) -> Result<Option<ReadTable<'s>>, StoreError> {
        let name = data_table_name(table);
        match self
            .txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
        {
            Ok(t) => Ok(Some(ReadTable {
                t,
                store: self.store,
            })),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

pub struct ReadTable<'s> {
    t: ReadOnlyTable<&'static [u8], &'static [u8]>,
    store: &'s Store,
}

impl ReadTable<'_> {
    pub fn get_row(&self, key: &[u8]) -> Result<Option<StoredRow>, StoreError> {
        match self.t.get(key)? {
            Some(v) => Ok(Some(decode_row(&self.store.entry_row(v.value())?)?)),
            None => Ok(None),
        }
    }

    /// Visits `(key, encoded row)` pairs within the bounds in key order (descending when
    /// `reverse`) until `f` returns false.
    pub fn scan<E: From<StoreError>>(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let range = self.t.range::<&[u8]>((lo, hi)).map_err(StoreError::from)?;
        let mut visit = |item: Result<_, redb::StorageError>| -> Result<bool, E> {
            let (k, v): (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>) =
                item.map_err(StoreError::from)?;
            let row = self.store.entry_row(v.value())?;
            f(k.value(), &row)
        };
        if reverse {
            for item in range.rev() {
                if !visit(item)? {
                    break;
                }
            }
        } else {
            for item in range {
                if !visit(item)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn schema(types: &[PkType]) -> Vec<PkSchema> {
        types
            .iter()
            .enumerate()
            .map(|(i, t)| PkSchema::new(format!("pk{i}"), *t))
            .collect()
    }

    fn pk_value(t: PkType) -> BoxedStrategy<PkValue> {
        // Bytes biased towards 0x00 / 0xFF, the escaping edge cases.
        let byte = prop_oneof![Just(0u8), Just(0xFFu8), Just(1u8), any::<u8>()];
        let real: BoxedStrategy<PkValue> = match t {
            PkType::Integer => prop_oneof![
                Just(i64::MIN),
                Just(i64::MAX),
                Just(0i64),
                Just(-1i64),
                any::<i64>(),
                -3i64..3
            ]
            .prop_map(PkValue::Integer)
            .boxed(),
            PkType::String => prop::collection::vec(
                prop_oneof![Just('\0'), Just('a'), Just('\u{ff}'), any::<char>()],
                0..5,
            )
            .prop_map(|c| PkValue::String(c.into_iter().collect()))
            .boxed(),
            PkType::Binary => prop::collection::vec(byte, 0..5)
                .prop_map(PkValue::Binary)
                .boxed(),
        };
        prop_oneof![
            8 => real,
            1 => Just(PkValue::InfMin),
            1 => Just(PkValue::InfMax),
        ]
        .boxed()
    }

    fn key_pair() -> impl Strategy<Value = (Vec<PkType>, Vec<PkValue>, Vec<PkValue>)> {
        let t = prop_oneof![
            Just(PkType::Integer),
            Just(PkType::String),
            Just(PkType::Binary)
        ];
        prop::collection::vec(t, 1..=4).prop_flat_map(|types| {
            let vals: Vec<_> = types.iter().map(|t| pk_value(*t)).collect();
            (Just(types), vals.clone(), vals)
        })
    }

    fn pk(types: &[PkType], vals: &[PkValue]) -> PrimaryKey {
        PrimaryKey(
            types
                .iter()
                .zip(vals)
                .enumerate()
                .map(|(i, (_, v))| PkColumn {
                    name: format!("pk{i}"),
                    value: v.clone(),
                })
                .collect(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn key_encoding_preserves_pk_order((types, a, b) in key_pair()) {
            let (ka, kb) = (encode_key(&pk(&types, &a)), encode_key(&pk(&types, &b)));
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let sch = schema(&types);
            prop_assert_eq!(decode_key(&ka, &sch).ok(), Some(pk(&types, &a)));
        }
    }

    #[test]
    fn key_encoding_edge_cases() {
        let s = |x: &str| encode_key(&PrimaryKey::new().with("a", x).with("b", 0i64));
        assert!(s("a") < s("a\0"));
        assert!(s("a\0") < s("a\0\0"));
        assert!(s("a\0") < s("a\u{1}"));
        assert!(s("") < s("\0"));
        let i = |x: i64| encode_key(&PrimaryKey::new().with("a", x));
        assert!(i(i64::MIN) < i(-1) && i(-1) < i(0) && i(0) < i(i64::MAX));
        let min = encode_key(&PrimaryKey(vec![PkColumn {
            name: "a".into(),
            value: PkValue::InfMin,
        }]));
        assert!(min < i(i64::MIN));
    }

    fn record(name: &str) -> TableRecord {
        TableRecord {
            def: TableDef::new(name, vec![PkSchema::new("id", PkType::Integer)]),
            creation_time: 1,
            auto_increment: 0,
        }
    }

    fn k(i: i64) -> Vec<u8> {
        encode_key(&PrimaryKey::new().with("id", i))
    }

    /// A row whose column `n` is `tag`, padded to about `size` bytes.
    fn row(tag: i64, size: usize) -> Vec<u8> {
        encode_row(&StoredRow {
            columns: vec![
                StoredColumn {
                    name: "n".into(),
                    versions: vec![(1, Value::Integer(tag))],
                },
                StoredColumn {
                    name: "p".into(),
                    versions: vec![(1, Value::Binary(vec![tag as u8; size]))],
                },
            ],
        })
    }

    fn open(dir: &Path) -> (Arc<Store>, Journal) {
        Store::open(dir, 1 << 20).expect("open store")
    }

    /// One transaction; acknowledged like the engine does (log fsynced).
    fn batch(
        store: &Store,
        j: &mut Journal,
        checkpoint: bool,
        f: impl FnOnce(&mut WriteSession<'_>) -> Result<(), StoreError>,
    ) {
        let txn = store.begin_write().expect("begin");
        {
            let mut s = txn.session(store, j);
            f(&mut s).expect("apply");
        }
        if let Some(file) = txn.finish(store, j, checkpoint).expect("finish") {
            file.sync_data().expect("fsync");
        }
    }

    fn tag(store: &Store, table: &str, i: i64) -> Option<i64> {
        let txn = store.begin_read().expect("read");
        let t = txn.table(table).expect("table")?;
        let r = t.get_row(&k(i)).expect("get")?;
        match r.column("n")?.versions.first()? {
            (_, Value::Integer(n)) => Some(*n),
            _ => None,
        }
    }

    fn segments(dir: &Path) -> Vec<u32> {
        let mut ids: Vec<u32> = std::fs::read_dir(dir)
            .expect("ls")
            .filter_map(|e| parse_segment_file_name(e.ok()?.file_name().to_str()?))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Copies the directory while the store is open: the image a crash at this moment leaves
    /// (redb holds only its last durable checkpoint; the log holds everything acknowledged).
    fn crash_image(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("ls") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }

    #[test]
    fn replays_the_log_after_a_crash() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        let (store, mut j) = open(&a);
        batch(&store, &mut j, true, |s| s.create_table(&record("t")));
        for round in 0..5i64 {
            batch(&store, &mut j, false, |s| {
                for i in 0..40 {
                    // Small rows stay inline, big ones live in the log.
                    let size = if i % 2 == 0 { 10 } else { 1000 };
                    s.insert("t", &k(i), &row(round * 100 + i, size))?;
                }
                s.remove("t", &k(39 - round))?;
                let mut rec = record("t");
                rec.auto_increment = 10 + round;
                s.put_counter(&rec)
            });
        }
        crash_image(&a, &b);
        batch(&store, &mut j, false, |s| {
            s.insert("t", &k(1000), &row(7, 2000))
        });
        batch(&store, &mut j, false, |s| {
            s.insert("t", &k(1001), &row(8, 2000))
        });
        crash_image(&a, &c);
        drop(store);
        drop(j);

        let check = |store: &Store| {
            for i in 0..40 {
                let want = if i == 35 { None } else { Some(400 + i) };
                assert_eq!(tag(store, "t", i), want, "key {i}");
            }
            assert_eq!(store.load_tables().expect("tables")[0].auto_increment, 14);
        };
        let (store, mut j) = open(&b);
        check(&store);
        assert_eq!(tag(&store, "t", 1000), None);
        // Writes after recovery survive another crash.
        batch(&store, &mut j, false, |s| {
            s.insert("t", &k(2000), &row(9, 1500))
        });
        let b2 = dir.path().join("b2");
        crash_image(&b, &b2);
        drop((store, j));
        let (store, _j) = open(&b2);
        check(&store);
        assert_eq!(tag(&store, "t", 2000), Some(9));
        drop((store, _j));

        // A torn last frame: the rows it held are gone, the rest stays, new writes work.
        let last = *segments(&c).last().expect("segment");
        let path = c.join(segment_file_name(last));
        let len = std::fs::metadata(&path).expect("stat").len();
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.set_len(len - 100).expect("truncate");
        drop(f);
        let (store, mut j) = open(&c);
        check(&store);
        assert_eq!(tag(&store, "t", 1000), Some(7));
        assert_eq!(tag(&store, "t", 1001), None);
        batch(&store, &mut j, false, |s| {
            s.insert("t", &k(1001), &row(10, 1500))
        });
        drop((store, j));
        let (store, _j) = open(&c);
        assert_eq!(tag(&store, "t", 1001), Some(10));
    }

    #[test]
    fn compaction_frees_garbage_segments() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let (store, mut j) = open(dir.path());
        j.segment_bytes = 32 * 1024;
        j.unlink_delay = std::time::Duration::ZERO;
        batch(&store, &mut j, true, |s| {
            s.create_table(&record("t"))?;
            s.create_table(&record("gone"))
        });
        // Overwrite 20 rows of ~1 KB many times: early segments become garbage.
        for round in 0..30i64 {
            batch(&store, &mut j, false, |s| {
                for i in 0..20 {
                    s.insert("t", &k(i), &row(round * 100 + i, 1000))?;
                }
                s.insert("gone", &k(round), &row(round, 1000))
            });
        }
        batch(&store, &mut j, true, |s| s.delete_table("gone"));
        let before = segments(dir.path()).len();
        assert!(before > 10, "{before} segments");
        let mut compacted = 0;
        while let Some(seg) = j.gc_candidate(&store) {
            batch(&store, &mut j, true, |s| {
                s.compact_segment(seg, |t| t == "t").map(|_| ())
            });
            // Reads on a fresh snapshot still work after each step.
            assert_eq!(tag(&store, "t", 3), Some(2903));
            j.unlink_doomed(&store);
            compacted += 1;
        }
        let after = segments(dir.path()).len();
        assert!(compacted > 0 && after < before / 2, "{before} -> {after}");
        for i in 0..20 {
            assert_eq!(tag(&store, "t", i), Some(2900 + i));
        }
        drop((store, j));
        let (store, _j) = open(dir.path());
        for i in 0..20 {
            assert_eq!(tag(&store, "t", i), Some(2900 + i));
        }
        assert_eq!(tag(&store, "gone", 1), None);
    }

    #[test]
    fn row_and_record_round_trip() {
        let row = StoredRow {
            columns: vec![
                StoredColumn {
                    name: "a".into(),
                    versions: vec![(5, Value::Integer(-3)), (1, Value::Double(1.5))],
                },
                StoredColumn {
                    name: "b".into(),
                    versions: vec![
                        (7, Value::Boolean(true)),
                        (6, Value::String("héllo".into())),
                        (2, Value::Binary(vec![0, 1, 255])),
                    ],
                },
            ],
        };
        let enc = encode_row(&row);
        assert_eq!(decode_row(&enc).ok(), Some(row));
        assert!(decode_row(&enc[..enc.len() - 1]).is_err());
        assert!(decode_row(&[ROW_FORMAT, 0xFF, 0xFF, 0xFF]).is_err());

        let mut def = TableDef::new(
            "t1",
            vec![PkSchema::new("a", PkType::String), {
                let mut p = PkSchema::new("b", PkType::Integer);
                p.auto_increment = true;
                p
            }],
        );
        def.defined_columns = vec![("c".into(), DefinedColumnType::Blob)];
        def.options.time_to_live = 86400;
        def.options.allow_update = false;
        let rec = TableRecord {
            def,
            creation_time: 1_700_000_000,
            auto_increment: 42,
        };
        assert_eq!(decode_record(&encode_record(&rec)).ok(), Some(rec));
    }
}
