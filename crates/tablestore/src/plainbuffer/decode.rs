//! Decoding: PlainBuffer bytes to rows. The row grammar (value, cell, row, each checksum
//! verified) on top of the `wire` cursor, the public decode functions, and the conversions of a
//! decoded [`WireRow`] into the crate's [`Row`] / [`RowChange`]. Never panics on any input.

use std::borrow::Cow;

use super::wire::{
    CellOpType, Cursor, OperationKind, PlainBufferError, Result, WireCellRef, WireRow, WireRowRef,
    TAG_CELL, TAG_CELL_CHECKSUM, TAG_CELL_NAME, TAG_CELL_TIMESTAMP, TAG_CELL_TYPE, TAG_CELL_VALUE,
    TAG_DELETE_ROW_MARKER, TAG_EXTENSION, TAG_ROW_CHECKSUM, TAG_ROW_DATA, TAG_ROW_PK,
    VT_AUTO_INCREMENT, VT_BLOB, VT_BOOLEAN, VT_DOUBLE, VT_INF_MAX, VT_INF_MIN, VT_INTEGER, VT_NULL,
    VT_STRING,
};
use crate::crc8::{crc8_byte, crc8_update};
use crate::row::{Cell, PkColumn, PrimaryKey, Row, RowChange};
use crate::row_ref::{CellOpRef, CellRef, RowChangeRef};
use crate::value::{PkValue, Value, ValueRef};

/// A decoded value still borrowing its bytes from the buffer.
enum Raw<'a> {
    Integer(i64),
    Double(f64),
    Boolean(bool),
    String(&'a str),
    Blob(&'a [u8]),
    InfMin,
    InfMax,
    AutoIncrement,
}

fn raw_type_name(r: &Raw<'_>) -> &'static str {
    match r {
        Raw::Integer(_) => "INTEGER",
        Raw::Double(_) => "DOUBLE",
        Raw::Boolean(_) => "BOOLEAN",
        Raw::String(_) => "STRING",
        Raw::Blob(_) => "BINARY",
        Raw::InfMin => "INF_MIN",
        Raw::InfMax => "INF_MAX",
        Raw::AutoIncrement => "AUTO_INCREMENT",
    }
}

fn raw_to_value<'a>(r: Raw<'a>, offset: usize, context: &'static str) -> Result<ValueRef<'a>> {
    Ok(match r {
        Raw::Integer(i) => ValueRef::Integer(i),
        Raw::Double(d) => ValueRef::Double(d),
        Raw::Boolean(b) => ValueRef::Boolean(b),
        Raw::String(s) => ValueRef::String(Cow::Borrowed(s)),
        Raw::Blob(b) => ValueRef::Binary(Cow::Borrowed(b)),
        other => {
            return Err(PlainBufferError::TypeNotAllowed {
                offset,
                type_name: raw_type_name(&other),
                context,
            })
        }
    })
}

fn raw_to_pk_value(r: Raw<'_>, offset: usize, context: &'static str) -> Result<PkValue> {
    Ok(match r {
        Raw::Integer(i) => PkValue::Integer(i),
        Raw::String(s) => PkValue::String(s.to_owned()),
        Raw::Blob(b) => PkValue::Binary(b.to_vec()),
        Raw::InfMin => PkValue::InfMin,
        Raw::InfMax => PkValue::InfMax,
        Raw::AutoIncrement => PkValue::AutoIncrement,
        other => {
            return Err(PlainBufferError::TypeNotAllowed {
                offset,
                type_name: raw_type_name(&other),
                context,
            })
        }
    })
}

/// A decoded cell before conversion; `offset` is where its TAG_CELL was.
struct RawCell<'a> {
    offset: usize,
    name: &'a str,
    value: Option<Raw<'a>>,
    value_offset: usize,
    op: Option<CellOpType>,
    timestamp: Option<i64>,
    /// The verified cell checksum, fed into the row checksum.
    crc: u8,
}

impl<'a> Cursor<'a> {
    /// Reads `int32 total_len, type, payload` and feeds type + payload into `crc`.
    fn value(&mut self, crc: &mut u8) -> Result<Raw<'a>> {
        let offset = self.pos;
        let total = self.len("cell value")?;
        let body = self.take(total)?;
        let bad_len = || PlainBufferError::LengthOutOfRange {
            offset,
            length: total as i64,
            what: "cell value",
        };
        let (&vt, payload) = body.split_first().ok_or_else(bad_len)?;
        let (raw, used) = parse_typed(vt, payload, offset + 4)?;
        if used != payload.len() {
            return Err(bad_len());
        }
        *crc = crc8_update(crc8_byte(*crc, vt), payload);
        Ok(raw)
    }

    fn cell(&mut self) -> Result<RawCell<'a>> {
        let offset = self.pos;
        self.expect_tag(TAG_CELL, "TAG_CELL (0x03)")?;
        self.expect_tag(TAG_CELL_NAME, "TAG_CELL_NAME (0x04)")?;
        let name_len = self.len("cell name")?;
        let name_offset = self.pos;
        let name_bytes = self.take(name_len)?;
        let name = std::str::from_utf8(name_bytes).map_err(|_| PlainBufferError::InvalidUtf8 {
            offset: name_offset,
            what: "cell name",
        })?;
        let mut crc = crc8_update(0, name_bytes);
        let value_offset = self.pos;
        let value = if self.eat(TAG_CELL_VALUE) {
            Some(self.value(&mut crc)?)
        } else {
            None
        };
        let op = if self.eat(TAG_CELL_TYPE) {
            let op_offset = self.pos;
            let b = self.u8()?;
            Some(
                CellOpType::from_byte(b).ok_or(PlainBufferError::UnknownCellOp {
                    offset: op_offset,
                    op: b,
                })?,
            )
        } else {
            None
        };
        let timestamp = if self.eat(TAG_CELL_TIMESTAMP) {
            let ts = self.i64()?;
            crc = crc8_update(crc, &ts.to_le_bytes());
            Some(ts)
        } else {
            None
        };
        if let Some(op) = op {
            crc = crc8_byte(crc, op.as_byte());
        }
        self.expect_tag(TAG_CELL_CHECKSUM, "TAG_CELL_CHECKSUM (0x0A)")?;
        let stored = self.u8()?;
        if stored != crc {
            return Err(PlainBufferError::CellChecksum {
                offset,
                name: name.to_owned(),
                stored,
                computed: crc,
            });
        }
        Ok(RawCell {
            offset,
            name,
            value,
            value_offset,
            op,
            timestamp,
            crc,
        })
    }

    fn row(&mut self) -> Result<WireRowRef<'a>> {
        let row_offset = self.pos;
        self.expect_tag(TAG_ROW_PK, "TAG_ROW_PK (0x01)")?;
        let mut row_crc = 0u8;
        // Sized for the usual key and row, so pushes do not regrow.
        let mut pk = Vec::with_capacity(2);
        while self.peek() == Some(TAG_CELL) {
            let c = self.cell()?;
            row_crc = crc8_byte(row_crc, c.crc);
            pk.push(pk_column(c)?);
        }
        let mut cells = Vec::new();
        if self.eat(TAG_ROW_DATA) {
            cells.reserve(8);
            while self.peek() == Some(TAG_CELL) {
                let c = self.cell()?;
                row_crc = crc8_byte(row_crc, c.crc);
                cells.push(wire_cell(c)?);
            }
        }
        let delete_marker = self.eat(TAG_DELETE_ROW_MARKER);
        if self.eat(TAG_EXTENSION) {
            // Stream/tunnel metadata: not part of the row CRC and not needed here.
            let n = self.len("extension")?;
            self.take(n)?;
        }
        row_crc = crc8_byte(row_crc, delete_marker as u8);
        self.expect_tag(TAG_ROW_CHECKSUM, "TAG_ROW_CHECKSUM (0x09)")?;
        let stored = self.u8()?;
        if stored != row_crc {
            return Err(PlainBufferError::RowChecksum {
                offset: row_offset,
                stored,
                computed: row_crc,
            });
        }
        Ok(WireRowRef {
            primary_key: PrimaryKey(pk),
            cells,
            delete_marker,
        })
    }
}

/// Parses type byte + payload from `payload` (the bytes after the type); returns the value and
/// how many payload bytes it used. `offset` is the position of the type byte, for errors.
fn parse_typed(vt: u8, payload: &[u8], offset: usize) -> Result<(Raw<'_>, usize)> {
    let fixed8 = |p: &[u8]| -> Result<[u8; 8]> {
        p.get(..8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .ok_or(PlainBufferError::Truncated {
                offset: offset + 1 + p.len(),
                needed: 8 - p.len().min(8),
            })
    };
    Ok(match vt {
        VT_INTEGER => (Raw::Integer(i64::from_le_bytes(fixed8(payload)?)), 8),
        VT_DOUBLE => (
            Raw::Double(f64::from_bits(u64::from_le_bytes(fixed8(payload)?))),
            8,
        ),
        VT_BOOLEAN => match payload.first() {
            Some(0) => (Raw::Boolean(false), 1),
            Some(1) => (Raw::Boolean(true), 1),
            Some(&byte) => {
                return Err(PlainBufferError::BadBoolean {
                    offset: offset + 1,
                    byte,
                })
            }
            None => {
                return Err(PlainBufferError::Truncated {
                    offset: offset + 1,
                    needed: 1,
                })
            }
        },
        VT_STRING | VT_BLOB => {
            let len_bytes: [u8; 4] = payload
                .get(..4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .ok_or(PlainBufferError::Truncated {
                    offset: offset + 1 + payload.len(),
                    needed: 4 - payload.len().min(4),
                })?;
            let l = i32::from_le_bytes(len_bytes);
            let what = if vt == VT_STRING { "string" } else { "binary" };
            let n = usize::try_from(l).map_err(|_| PlainBufferError::LengthOutOfRange {
                offset: offset + 1,
                length: l.into(),
                what,
            })?;
            let bytes = payload
                .get(4..)
                .and_then(|rest| rest.get(..n))
                .ok_or_else(|| PlainBufferError::Truncated {
                    offset: offset + 1 + payload.len(),
                    needed: n.saturating_sub(payload.len() - 4),
                })?;
            let raw = if vt == VT_STRING {
                Raw::String(std::str::from_utf8(bytes).map_err(|_| {
                    PlainBufferError::InvalidUtf8 {
                        offset: offset + 5,
                        what: "string value",
                    }
                })?)
            } else {
                Raw::Blob(bytes)
            };
            (raw, 4 + n)
        }
        VT_INF_MIN => (Raw::InfMin, 0),
        VT_INF_MAX => (Raw::InfMax, 0),
        VT_AUTO_INCREMENT => (Raw::AutoIncrement, 0),
        VT_NULL => {
            return Err(PlainBufferError::TypeNotAllowed {
                offset,
                type_name: "NULL",
                context: "a row or variant value",
            })
        }
        _ => return Err(PlainBufferError::UnknownValueType { offset, vt }),
    })
}

fn pk_column(c: RawCell<'_>) -> Result<PkColumn> {
    if c.op.is_some() {
        return Err(PlainBufferError::PkCellField {
            offset: c.offset,
            what: "an op type",
        });
    }
    if c.timestamp.is_some() {
        return Err(PlainBufferError::PkCellField {
            offset: c.offset,
            what: "a timestamp",
        });
    }
    let raw = c
        .value
        .ok_or(PlainBufferError::PkCellWithoutValue { offset: c.offset })?;
    Ok(PkColumn {
        name: c.name.to_owned(),
        value: raw_to_pk_value(raw, c.value_offset, "a primary-key cell")?,
    })
}

fn wire_cell(c: RawCell<'_>) -> Result<WireCellRef<'_>> {
    let value = match c.value {
        Some(raw) => Some(raw_to_value(raw, c.value_offset, "an attribute cell")?),
        None => None,
    };
    Ok(WireCellRef {
        name: c.name,
        value,
        op: c.op,
        timestamp: c.timestamp,
    })
}

/// Decodes header + 0..N rows; an empty slice is zero rows.
pub fn decode_rows(buf: &[u8]) -> Result<Vec<WireRow>> {
    let mut rows = Vec::new();
    if buf.is_empty() {
        return Ok(rows);
    }
    let mut cur = Cursor::new(buf);
    cur.header()?;
    while !cur.at_end() {
        rows.push(cur.row()?.into_owned());
    }
    Ok(rows)
}

/// Decodes a buffer holding exactly one row.
pub fn decode_single_row(buf: &[u8]) -> Result<WireRow> {
    single_row(buf, false).map(WireRowRef::into_owned)
}

/// Decodes one row of a request as the service reads it: the row, then nothing but zero bytes.
///
/// The official Node.js SDK (npm `tablestore`, through 5.6.5) sizes each buffer before writing it
/// and sends the whole allocation, zero-filled: it counts one byte too many per INF_MIN /
/// INF_MAX / AUTO_INCREMENT key cell and five per delete-one-version cell, so a GetRange from
/// INF_MIN or an UpdateRow deleting a version arrives with zero bytes after the row checksum. The
/// service answers these requests (the SDK's own range test and update sample run against it);
/// every SDK reader treats tag 0 as "no more tags", so zeros cannot start a second row. Any
/// non-zero byte after the row is still [`PlainBufferError::TrailingData`]. Responses keep the
/// strict [`decode_single_row`].
pub fn decode_request_row(buf: &[u8]) -> Result<WireRow> {
    decode_request_row_ref(buf).map(WireRowRef::into_owned)
}

/// [`decode_request_row`] without copying the attribute cells' names and values.
pub fn decode_request_row_ref(buf: &[u8]) -> Result<WireRowRef<'_>> {
    single_row(buf, true)
}

/// [`decode_request_row_ref`] read as the change `op` (see [`WireRowRef::into_change`]).
pub fn decode_request_change(buf: &[u8], op: OperationKind) -> Result<RowChangeRef<'_>> {
    decode_request_row_ref(buf)?.into_change(op)
}

fn single_row(buf: &[u8], zero_padding: bool) -> Result<WireRowRef<'_>> {
    let mut cur = Cursor::new(buf);
    if buf.is_empty() {
        return Err(PlainBufferError::NoRow);
    }
    cur.header()?;
    if cur.at_end() {
        return Err(PlainBufferError::NoRow);
    }
    let row = cur.row()?;
    let rest = buf.get(cur.pos..).unwrap_or_default();
    let padding_only = zero_padding && rest.iter().all(|&b| b == 0);
    if !rest.is_empty() && !padding_only {
        return Err(PlainBufferError::TrailingData { offset: cur.pos });
    }
    Ok(row)
}

/// Decodes a buffer holding exactly one PK-only row (no attribute cells, no delete marker).
pub fn decode_pk(buf: &[u8]) -> Result<PrimaryKey> {
    pk_only(single_row(buf, false)?)
}

/// [`decode_pk`] for a request's key: zero bytes may follow the row, see [`decode_request_row`].
pub fn decode_request_pk(buf: &[u8]) -> Result<PrimaryKey> {
    pk_only(decode_request_row_ref(buf)?)
}

fn pk_only(row: WireRowRef<'_>) -> Result<PrimaryKey> {
    if !row.cells.is_empty() {
        return Err(PlainBufferError::NotPkOnly {
            what: "attribute cells",
        });
    }
    if row.delete_marker {
        return Err(PlainBufferError::NotPkOnly {
            what: "a delete marker",
        });
    }
    Ok(row.primary_key)
}

fn decode_variant_raw(buf: &[u8]) -> Result<Raw<'_>> {
    let (&vt, payload) = buf.split_first().ok_or(PlainBufferError::Truncated {
        offset: 0,
        needed: 1,
    })?;
    let (raw, used) = parse_typed(vt, payload, 0)?;
    if used != payload.len() {
        return Err(PlainBufferError::TrailingData { offset: 1 + used });
    }
    Ok(raw)
}

/// Decodes an attribute value encoded as "SQLVariant" (the whole slice must be consumed).
pub fn decode_variant(buf: &[u8]) -> Result<Value> {
    raw_to_value(decode_variant_raw(buf)?, 0, "an attribute value").map(ValueRef::into_owned)
}

/// Decodes a primary-key value encoded as "SQLVariant" (partition bounds may be INF_MIN/INF_MAX).
pub fn decode_pk_variant(buf: &[u8]) -> Result<PkValue> {
    raw_to_pk_value(decode_variant_raw(buf)?, 0, "a primary-key value")
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

fn invalid(name: String, context: &'static str, reason: &'static str) -> PlainBufferError {
    PlainBufferError::InvalidCell {
        name,
        context,
        reason,
    }
}

/// A cell of a row or PUT: a value and no op type.
fn plain_cell<N: AsRef<str>, V>(
    name: N,
    value: Option<V>,
    op: Option<CellOpType>,
    context: &'static str,
) -> Result<(N, V)> {
    if op.is_some() {
        return Err(invalid(
            name.as_ref().to_owned(),
            context,
            "op type not allowed",
        ));
    }
    match value {
        Some(v) => Ok((name, v)),
        None => Err(invalid(
            name.as_ref().to_owned(),
            context,
            "cell has no value",
        )),
    }
}

fn update_op(c: WireCellRef<'_>) -> Result<CellOpRef<'_>> {
    const CTX: &str = "an update";
    let bad = |reason| Err(invalid(c.name.to_owned(), CTX, reason));
    let name = c.name;
    match (c.value, c.op, c.timestamp) {
        (Some(value), None, timestamp) => Ok(CellOpRef::Put(CellRef {
            name,
            value,
            timestamp,
        })),
        (None, Some(CellOpType::DeleteOneVersion), Some(timestamp)) => {
            Ok(CellOpRef::DeleteOneVersion { name, timestamp })
        }
        (None, Some(CellOpType::DeleteOneVersion), None) => {
            bad("DELETE_ONE_VERSION requires a timestamp")
        }
        (None, Some(CellOpType::DeleteAllVersions), None) => {
            Ok(CellOpRef::DeleteAllVersions { name })
        }
        (None, Some(CellOpType::DeleteAllVersions), Some(_)) => {
            bad("DELETE_ALL_VERSIONS must not carry a timestamp")
        }
        (Some(_), Some(CellOpType::DeleteOneVersion | CellOpType::DeleteAllVersions), _) => {
            bad("a delete must not carry a value")
        }
        (Some(ValueRef::Integer(delta)), Some(CellOpType::Increment), None) => {
            Ok(CellOpRef::Increment { name, delta })
        }
        (Some(ValueRef::Integer(_)), Some(CellOpType::Increment), Some(_)) => {
            bad("INCREMENT must not carry a timestamp")
        }
        (Some(_), Some(CellOpType::Increment), _) => bad("INCREMENT requires an INTEGER value"),
        (None, Some(CellOpType::Increment), _) => bad("INCREMENT requires a value"),
        (None, None, _) => bad("cell has neither value nor op type"),
    }
}

impl WireRow {
    /// A read response / PutRow row: every cell needs a value and no op type; no delete marker.
    pub fn into_row(self) -> Result<Row> {
        if self.delete_marker {
            return Err(PlainBufferError::UnexpectedDeleteMarker { context: "a row" });
        }
        let cells = self
            .cells
            .into_iter()
            .map(|c| {
                let timestamp = c.timestamp;
                plain_cell(c.name, c.value, c.op, "a row").map(|(name, value)| Cell {
                    name,
                    value,
                    timestamp,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Row {
            primary_key: self.primary_key,
            cells,
        })
    }

    /// [`WireRowRef::into_change`], owned.
    pub fn into_change(self, op: OperationKind) -> Result<RowChange> {
        let WireRow {
            primary_key,
            cells,
            delete_marker,
        } = self;
        let row = WireRowRef {
            primary_key,
            cells: cells.iter().map(|c| c.as_wire_ref()).collect(),
            delete_marker,
        };
        row.into_change(op).map(RowChangeRef::into_owned)
    }
}

impl<'a> WireRowRef<'a> {
    /// A BatchWriteRow/PutRow/UpdateRow/DeleteRow row as the given operation. Delete accepts a
    /// PK-only row without the marker too (lenient, as the marker carries no information here).
    pub fn into_change(self, op: OperationKind) -> Result<RowChangeRef<'a>> {
        match op {
            OperationKind::Put => {
                if self.delete_marker {
                    return Err(PlainBufferError::UnexpectedDeleteMarker { context: "a PUT" });
                }
                let cells = self
                    .cells
                    .into_iter()
                    .map(|c| {
                        let timestamp = c.timestamp;
                        plain_cell(c.name, c.value, c.op, "a PUT").map(|(name, value)| CellRef {
                            name,
                            value,
                            timestamp,
                        })
                    })
                    .collect::<Result<_>>()?;
                Ok(RowChangeRef::Put {
                    primary_key: self.primary_key,
                    cells,
                })
            }
            OperationKind::Update => {
                if self.delete_marker {
                    return Err(PlainBufferError::UnexpectedDeleteMarker {
                        context: "an UPDATE",
                    });
                }
                Ok(RowChangeRef::Update {
                    primary_key: self.primary_key,
                    ops: self
                        .cells
                        .into_iter()
                        .map(update_op)
                        .collect::<Result<_>>()?,
                })
            }
            OperationKind::Delete => match self.cells.into_iter().next() {
                Some(c) => Err(invalid(
                    c.name.to_owned(),
                    "a DELETE",
                    "a DELETE carries no cells",
                )),
                None => Ok(RowChangeRef::Delete(self.primary_key)),
            },
        }
    }
}
