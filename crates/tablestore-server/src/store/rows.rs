//! The stored row: every attribute column with all its versions, newest first, and its
//! compact binary encoding (the bytes the log and the index hold). Separate from the log and
//! the index because the engine builds and inspects rows without touching either.

use tablestore::value::{Value, ValueRef};

use super::codec::{put_bytes, put_varint, Reader};
use super::StoreError;

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

pub(super) const ROW_FORMAT: u8 = 1;
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
            put_value(&mut out, &v.as_value_ref());
        }
    }
    out
}

/// `encode_row` of a row whose columns hold one version each, given as (name, timestamp,
/// value) sorted by name with no name repeated: a PUT's cells encoded without building the
/// `StoredRow` first.
pub fn encode_single_versions(cols: &[(&str, i64, ValueRef<'_>)]) -> Vec<u8> {
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

fn put_value(out: &mut Vec<u8>, v: &ValueRef<'_>) {
    match v {
        ValueRef::Integer(i) => {
            out.push(VT_INTEGER);
            out.extend_from_slice(&i.to_le_bytes());
        }
        ValueRef::Double(d) => {
            out.push(VT_DOUBLE);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        ValueRef::Boolean(b) => {
            out.push(VT_BOOLEAN);
            out.push(u8::from(*b));
        }
        ValueRef::String(s) => {
            out.push(VT_STRING);
            put_bytes(out, s.as_bytes());
        }
        ValueRef::Binary(b) => {
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
