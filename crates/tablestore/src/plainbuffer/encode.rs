//! Encoding: rows and changes to PlainBuffer bytes, written straight into a caller's `Vec<u8>`
//! with the CRCs computed on the way, the exact-length functions that size those buffers, the
//! [`ChangeBuilder`] of the copy path, and the "SQLVariant" values of filters and bounds.

use super::wire::{
    cell_len, write_cell, write_typed, CellOpType, Payload, WireRow, HEADER, TAG_DELETE_ROW_MARKER,
    TAG_ROW_CHECKSUM, TAG_ROW_DATA, TAG_ROW_PK, VT_AUTO_INCREMENT, VT_BLOB, VT_BOOLEAN, VT_DOUBLE,
    VT_INF_MAX, VT_INF_MIN, VT_INTEGER, VT_STRING,
};
use crate::crc8::crc8_byte;
use crate::row::{CellOp, PrimaryKey, Row, RowChange};
use crate::value::{PkValue, Value, ValueRef};

#[inline]
fn attr_parts(v: &Value) -> (u8, Payload<'_>) {
    match v {
        Value::Integer(i) => (VT_INTEGER, Payload::Fixed(i.to_le_bytes())),
        Value::Double(d) => (VT_DOUBLE, Payload::Fixed(d.to_bits().to_le_bytes())),
        Value::Boolean(b) => (VT_BOOLEAN, Payload::Bool(*b)),
        Value::String(s) => (VT_STRING, Payload::Bytes(s.as_bytes())),
        Value::Binary(b) => (VT_BLOB, Payload::Bytes(b)),
    }
}

#[inline]
fn pk_parts(v: &PkValue) -> (u8, Payload<'_>) {
    match v {
        PkValue::Integer(i) => (VT_INTEGER, Payload::Fixed(i.to_le_bytes())),
        PkValue::String(s) => (VT_STRING, Payload::Bytes(s.as_bytes())),
        PkValue::Binary(b) => (VT_BLOB, Payload::Bytes(b)),
        PkValue::InfMin => (VT_INF_MIN, Payload::Empty),
        PkValue::InfMax => (VT_INF_MAX, Payload::Empty),
        PkValue::AutoIncrement => (VT_AUTO_INCREMENT, Payload::Empty),
    }
}

/// Writes the PK cell list and returns the running row CRC.
#[inline]
fn write_pk_cells(out: &mut Vec<u8>, pk: &PrimaryKey) -> u8 {
    out.push(TAG_ROW_PK);
    let mut row_crc = 0;
    for c in &pk.0 {
        let crc = write_cell(out, &c.name, Some(pk_parts(&c.value)), None, None);
        row_crc = crc8_byte(row_crc, crc);
    }
    row_crc
}

#[inline]
fn finish_row(out: &mut Vec<u8>, row_crc: u8, delete_marker: bool) {
    if delete_marker {
        out.push(TAG_DELETE_ROW_MARKER);
    }
    let crc = crc8_byte(row_crc, delete_marker as u8);
    out.extend_from_slice(&[TAG_ROW_CHECKSUM, crc]);
}

fn pk_len(pk: &PrimaryKey) -> usize {
    1 + pk
        .0
        .iter()
        .map(|c| cell_len(&c.name, Some(pk_parts(&c.value).1), false, false))
        .sum::<usize>()
}

/// The fields of one attribute cell to encode.
struct CellParts<'a> {
    name: &'a str,
    value: Option<(u8, Payload<'a>)>,
    op: Option<u8>,
    ts: Option<i64>,
}

impl CellParts<'_> {
    #[inline]
    fn write(&self, out: &mut Vec<u8>) -> u8 {
        write_cell(out, self.name, self.value, self.op, self.ts)
    }

    #[inline]
    fn len(&self) -> usize {
        cell_len(
            self.name,
            self.value.map(|v| v.1),
            self.op.is_some(),
            self.ts.is_some(),
        )
    }
}

/// Cell fields of one update op (§3.5).
#[inline]
fn op_parts(op: &CellOp) -> CellParts<'_> {
    let (name, value, op, ts) = match op {
        CellOp::Put(c) => (
            c.name.as_str(),
            Some(attr_parts(&c.value)),
            None,
            c.timestamp,
        ),
        CellOp::DeleteOneVersion { name, timestamp } => (
            name.as_str(),
            None,
            Some(CellOpType::DeleteOneVersion.as_byte()),
            Some(*timestamp),
        ),
        CellOp::DeleteAllVersions { name } => (
            name.as_str(),
            None,
            Some(CellOpType::DeleteAllVersions.as_byte()),
            None,
        ),
        CellOp::Increment { name, delta } => (
            name.as_str(),
            Some((VT_INTEGER, Payload::Fixed(delta.to_le_bytes()))),
            Some(CellOpType::Increment.as_byte()),
            None,
        ),
    };
    CellParts {
        name,
        value,
        op,
        ts,
    }
}

#[inline]
fn ref_parts<'a>(v: &'a ValueRef<'_>) -> (u8, Payload<'a>) {
    match v {
        ValueRef::Integer(i) => (VT_INTEGER, Payload::Fixed(i.to_le_bytes())),
        ValueRef::Double(d) => (VT_DOUBLE, Payload::Fixed(d.to_bits().to_le_bytes())),
        ValueRef::Boolean(b) => (VT_BOOLEAN, Payload::Bool(*b)),
        ValueRef::String(s) => (VT_STRING, Payload::Bytes(s.as_bytes())),
        ValueRef::Binary(b) => (VT_BLOB, Payload::Bytes(b)),
    }
}

/// Encodes one PUT or UPDATE change cell by cell from borrowed values (no header): the copy
/// path's encoder, which never builds a [`RowChange`] (no per-cell names or values to allocate
/// and drop). Produces the same bytes as [`encode_change`] of the equivalent change.
pub struct ChangeBuilder {
    out: Vec<u8>,
    row_crc: u8,
    pk_end: usize,
    cells: usize,
    puts: usize,
}

impl ChangeBuilder {
    /// Starts a change of `pk`; `capacity` is a guess of the encoded size.
    pub fn new(pk: &PrimaryKey, capacity: usize) -> Self {
        let mut b = ChangeBuilder::start(capacity);
        for c in &pk.0 {
            b.key(&c.name, &c.value);
        }
        b
    }

    /// Starts a change whose key columns follow one by one through [`ChangeBuilder::key`] (a
    /// caller that converts each key value needs no [`PrimaryKey`] to hold them).
    pub fn start(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity);
        out.push(TAG_ROW_PK);
        ChangeBuilder {
            pk_end: out.len(),
            out,
            row_crc: 0,
            cells: 0,
            puts: 0,
        }
    }

    /// The next key column, in the table's key order; every key column comes before the
    /// first attribute cell (a key column after one is a caller bug: debug builds stop).
    pub fn key(&mut self, name: &str, value: &PkValue) {
        debug_assert_eq!(self.cells, 0, "key column after an attribute cell");
        let crc = write_cell(&mut self.out, name, Some(pk_parts(value)), None, None);
        self.row_crc = crc8_byte(self.row_crc, crc);
        self.pk_end = self.out.len();
    }

    #[inline]
    fn cell(&mut self, name: &str, value: Option<(u8, Payload<'_>)>, op: Option<u8>) {
        if self.cells == 0 {
            self.out.push(TAG_ROW_DATA);
        }
        self.cells += 1;
        let crc = write_cell(&mut self.out, name, value, op, None);
        self.row_crc = crc8_byte(self.row_crc, crc);
    }

    /// A cell with a value (no timestamp: the service stamps it).
    pub fn put(&mut self, name: &str, value: &ValueRef<'_>) {
        self.puts += 1;
        self.cell(name, Some(ref_parts(value)), None);
    }

    /// An UpdateRow delete of every version of a column.
    pub fn delete_all(&mut self, name: &str) {
        self.cell(name, None, Some(CellOpType::DeleteAllVersions.as_byte()));
    }

    /// Cells with a value so far.
    pub fn puts(&self) -> usize {
        self.puts
    }

    /// The encoded change and the length of its key part (see [`encoded_key_len`]).
    pub fn finish(mut self) -> (Vec<u8>, usize) {
        finish_row(&mut self.out, self.row_crc, false);
        (self.out, self.pk_end)
    }
}

/// Bytes of the key part that every encoded change of `pk` starts with (TAG_ROW_PK and the key
/// cells). The encoding is canonical, so two changes have equal keys iff these bytes are equal.
pub fn encoded_key_len(pk: &PrimaryKey) -> usize {
    pk_len(pk)
}

/// Appends the 4-byte buffer header.
pub fn write_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&HEADER.to_le_bytes());
}

/// Appends one row as given (no header).
pub fn encode_wire_row(row: &WireRow, out: &mut Vec<u8>) {
    let mut row_crc = write_pk_cells(out, &row.primary_key);
    if !row.cells.is_empty() {
        out.push(TAG_ROW_DATA);
        for c in &row.cells {
            let crc = write_cell(
                out,
                &c.name,
                c.value.as_ref().map(attr_parts),
                c.op.map(CellOpType::as_byte),
                c.timestamp,
            );
            row_crc = crc8_byte(row_crc, crc);
        }
    }
    finish_row(out, row_crc, row.delete_marker);
}

/// Appends a PutRow-style row: PK + cells with their timestamps, no op types (no header).
pub fn encode_row(row: &Row, out: &mut Vec<u8>) {
    let mut row_crc = write_pk_cells(out, &row.primary_key);
    if !row.cells.is_empty() {
        out.push(TAG_ROW_DATA);
        for c in &row.cells {
            let crc = write_cell(out, &c.name, Some(attr_parts(&c.value)), None, c.timestamp);
            row_crc = crc8_byte(row_crc, crc);
        }
    }
    finish_row(out, row_crc, false);
}

/// Appends one change as BatchWriteRow sends it (no header).
pub fn encode_change(change: &RowChange, out: &mut Vec<u8>) {
    match change {
        RowChange::Put(row) => encode_row(row, out),
        RowChange::Update { primary_key, ops } => {
            let mut row_crc = write_pk_cells(out, primary_key);
            if !ops.is_empty() {
                out.push(TAG_ROW_DATA);
                for op in ops {
                    let crc = op_parts(op).write(out);
                    row_crc = crc8_byte(row_crc, crc);
                }
            }
            finish_row(out, row_crc, false);
        }
        RowChange::Delete(pk) => {
            let row_crc = write_pk_cells(out, pk);
            finish_row(out, row_crc, true);
        }
    }
}

/// Appends a PK-only row (no header, no delete marker).
pub fn encode_pk(pk: &PrimaryKey, out: &mut Vec<u8>) {
    let row_crc = write_pk_cells(out, pk);
    finish_row(out, row_crc, false);
}

/// Header + PK-only row: GetRow key, range bounds, next_start_primary_key.
pub fn pk_buffer(pk: &PrimaryKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + pk_len(pk) + 2);
    write_header(&mut out);
    encode_pk(pk, &mut out);
    out
}

/// Header + one change: PutRow row, UpdateRow row_change, DeleteRow primary_key.
pub fn change_buffer(change: &RowChange) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + encoded_change_len(change));
    write_header(&mut out);
    encode_change(change, &mut out);
    out
}

/// Header + N rows (GetRange response).
pub fn rows_buffer(rows: &[Row]) -> Vec<u8> {
    let len = 4 + rows.iter().map(encoded_row_len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    write_header(&mut out);
    for r in rows {
        encode_row(r, &mut out);
    }
    out
}

/// Exact number of bytes `encode_row` appends, computed without encoding.
pub fn encoded_row_len(row: &Row) -> usize {
    let mut n = pk_len(&row.primary_key) + 2;
    if !row.cells.is_empty() {
        n += 1 + row
            .cells
            .iter()
            .map(|c| {
                cell_len(
                    &c.name,
                    Some(attr_parts(&c.value).1),
                    false,
                    c.timestamp.is_some(),
                )
            })
            .sum::<usize>();
    }
    n
}

/// Exact number of bytes `encode_change` appends (no header), computed without encoding.
pub fn encoded_change_len(change: &RowChange) -> usize {
    match change {
        RowChange::Put(row) => encoded_row_len(row),
        RowChange::Update { primary_key, ops } => {
            let mut n = pk_len(primary_key) + 2;
            if !ops.is_empty() {
                n += 1 + ops.iter().map(|op| op_parts(op).len()).sum::<usize>();
            }
            n
        }
        RowChange::Delete(pk) => pk_len(pk) + 1 + 2,
    }
}

/// A value as "SQLVariant": type byte + payload, no length prefix (filters, partition bounds).
pub fn encode_variant(value: &Value) -> Vec<u8> {
    let (vt, p) = attr_parts(value);
    let mut out = Vec::with_capacity(1 + p.len());
    write_typed(&mut out, 0, vt, p);
    out
}

/// A primary-key value as "SQLVariant" (INF_MIN/INF_MAX/AUTO_INCREMENT are the type byte alone).
pub fn encode_pk_variant(value: &PkValue) -> Vec<u8> {
    let (vt, p) = pk_parts(value);
    let mut out = Vec::with_capacity(1 + p.len());
    write_typed(&mut out, 0, vt, p);
    out
}
