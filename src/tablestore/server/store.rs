//! Durable storage of the local server: one redb file holding a metadata table and one redb
//! table per Tablestore table.
//!
//! Keys are the primary key in an order-preserving byte encoding, so redb's bytewise key order is
//! the service's PK order (§3.9) and range bounds with INF_MIN/INF_MAX in any column are plain
//! byte bounds. Per column: a tag (0x00 INF_MIN, 0x01 value, 0x02 INF_MAX), then for a value an
//! INTEGER as 8 bytes big-endian with the sign bit flipped, a STRING/BINARY as its bytes with
//! 0x00 escaped as 0x00 0xFF and terminated by 0x00 0x00 (the terminator sorts below any
//! continuation, so a prefix sorts first and the next column never leaks into the comparison).
//!
//! Values are a compact binary encoding of every attribute column with all its versions.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, TableError, WriteTransaction,
};

use crate::tablestore::error::ServiceError;
use crate::tablestore::row::{PkColumn, PrimaryKey};
use crate::tablestore::schema::{DefinedColumnType, PkSchema, TableDef, TableOptions};
use crate::tablestore::value::{PkType, PkValue, Value};

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

// ------------------------------------------------------------------ the database

/// The redb database of one data directory.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) `<dir>/tablestore.redb` with a bounded page cache.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<Store, ServiceError> {
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
        let store = Store { db, path };
        // Make sure the metadata table exists so readers can always open it.
        let txn = store.begin_write()?;
        txn.txn.open_table(META).map_err(StoreError::from)?;
        txn.commit()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    /// A write transaction. Commits are durable (redb's default `Durability::Immediate`: the
    /// data is fsynced before `commit` returns), which is what lets the engine acknowledge.
    pub fn begin_write(&self) -> Result<WriteTxn, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(WriteTxn { txn })
    }

    /// A consistent snapshot for reads (does not block writers).
    pub fn begin_read(&self) -> Result<ReadTxn, StoreError> {
        Ok(ReadTxn {
            txn: self.db.begin_read()?,
        })
    }
}

type DataTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

pub struct WriteTxn {
    txn: WriteTransaction,
}

impl WriteTxn {
    /// Table access within this transaction; drop it before `commit`.
    pub fn session(&self) -> WriteSession<'_> {
        WriteSession {
            txn: &self.txn,
            open: HashMap::new(),
            meta: None,
        }
    }

    pub fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit()?)
    }
}

/// Keeps the tables touched by a transaction open (opening costs a lookup per call).
pub struct WriteSession<'t> {
    txn: &'t WriteTransaction,
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
        match self.table(table)?.get(key)? {
            Some(v) => Ok(Some(decode_row(v.value())?)),
            None => Ok(None),
        }
    }

    pub fn insert(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.table(table)?.insert(key, value)?;
        Ok(())
    }

    pub fn remove(&mut self, table: &str, key: &[u8]) -> Result<(), StoreError> {
        self.table(table)?.remove(key)?;
        Ok(())
    }

    pub fn put_record(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        let v = encode_record(rec);
        self.meta()?.insert(rec.def.name.as_str(), v.as_slice())?;
        Ok(())
    }

    /// Creates the table's (empty) data table and records its metadata.
    pub fn create_table(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        let name = data_table_name(&rec.def.name);
        // A leftover data table (should not happen) must not leak rows into the new table.
        self.open.remove(&rec.def.name);
        self.txn
            .delete_table(TableDefinition::<&[u8], &[u8]>::new(&name))?;
        self.table(&rec.def.name)?;
        self.put_record(rec)
    }

    /// Drops the table's data and metadata.
    pub fn delete_table(&mut self, table: &str) -> Result<(), StoreError> {
        self.open.remove(table);
        let name = data_table_name(table);
        self.txn
            .delete_table(TableDefinition::<&[u8], &[u8]>::new(&name))?;
        self.meta()?.remove(table)?;
        Ok(())
    }
}

pub struct ReadTxn {
    txn: ReadTransaction,
}

impl ReadTxn {
    /// The table's data, or None when it does not exist in this snapshot.
    pub fn table(&self, table: &str) -> Result<Option<ReadTable>, StoreError> {
        let name = data_table_name(table);
        match self
            .txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
        {
            Ok(t) => Ok(Some(ReadTable { t })),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

pub struct ReadTable {
    t: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl ReadTable {
    pub fn get_row(&self, key: &[u8]) -> Result<Option<StoredRow>, StoreError> {
        match self.t.get(key)? {
            Some(v) => Ok(Some(decode_row(v.value())?)),
            None => Ok(None),
        }
    }

    /// Visits `(key, value)` pairs within the bounds in key order (descending when `reverse`)
    /// until `f` returns false.
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
            f(k.value(), v.value())
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
