//! The PlainBuffer wire vocabulary and its lowest layer: the header, tags and value-type bytes,
//! the error type, the wire-level row types, and the primitives both directions share (writing
//! one typed value or one cell with its CRC-8, reading bytes with a bounds-checked cursor).
//! `encode` and `decode` build on these; nothing here knows rows as the rest of the crate does.

use crate::crc8::{crc8_byte, crc8_update};
use crate::row::PrimaryKey;
use crate::value::{Value, ValueRef};

/// The int32 every buffer starts with.
pub const HEADER: u32 = 0x75;

pub(super) const TAG_ROW_PK: u8 = 0x01;
pub(super) const TAG_ROW_DATA: u8 = 0x02;
pub(super) const TAG_CELL: u8 = 0x03;
pub(super) const TAG_CELL_NAME: u8 = 0x04;
pub(super) const TAG_CELL_VALUE: u8 = 0x05;
pub(super) const TAG_CELL_TYPE: u8 = 0x06;
pub(super) const TAG_CELL_TIMESTAMP: u8 = 0x07;
pub(super) const TAG_DELETE_ROW_MARKER: u8 = 0x08;
pub(super) const TAG_ROW_CHECKSUM: u8 = 0x09;
pub(super) const TAG_CELL_CHECKSUM: u8 = 0x0A;
pub(super) const TAG_EXTENSION: u8 = 0x0B;

pub(super) const VT_INTEGER: u8 = 0x00;
pub(super) const VT_DOUBLE: u8 = 0x01;
pub(super) const VT_BOOLEAN: u8 = 0x02;
pub(super) const VT_STRING: u8 = 0x03;
pub(super) const VT_NULL: u8 = 0x06;
pub(super) const VT_BLOB: u8 = 0x07;
pub(super) const VT_INF_MIN: u8 = 0x09;
pub(super) const VT_INF_MAX: u8 = 0x0A;
pub(super) const VT_AUTO_INCREMENT: u8 = 0x0B;

/// Why a PlainBuffer could not be decoded or converted. Offsets are byte offsets into the
/// buffer passed to the decode function.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PlainBufferError {
    #[error("PlainBuffer truncated at offset {offset}: {needed} more byte(s) needed")]
    Truncated { offset: usize, needed: usize },
    #[error("PlainBuffer header is {found:#x}, expected 0x75")]
    BadHeader { found: u32 },
    #[error("PlainBuffer: unexpected tag {found:#04x} at offset {offset}, expected {expected}")]
    BadTag {
        offset: usize,
        found: u8,
        expected: &'static str,
    },
    #[error("PlainBuffer: unknown value type {vt:#04x} at offset {offset}")]
    UnknownValueType { offset: usize, vt: u8 },
    #[error("PlainBuffer: unknown cell op type {op:#04x} at offset {offset}")]
    UnknownCellOp { offset: usize, op: u8 },
    #[error("PlainBuffer: invalid boolean byte {byte:#04x} at offset {offset}")]
    BadBoolean { offset: usize, byte: u8 },
    #[error("PlainBuffer: {what} length {length} at offset {offset} is out of range")]
    LengthOutOfRange {
        offset: usize,
        length: i64,
        what: &'static str,
    },
    #[error("PlainBuffer: invalid UTF-8 in {what} at offset {offset}")]
    InvalidUtf8 { offset: usize, what: &'static str },
    #[error("PlainBuffer: {type_name} not allowed in {context} (cell at offset {offset})")]
    TypeNotAllowed {
        offset: usize,
        type_name: &'static str,
        context: &'static str,
    },
    #[error("PlainBuffer: {what} not allowed in a primary-key cell (cell at offset {offset})")]
    PkCellField { offset: usize, what: &'static str },
    #[error("PlainBuffer: primary-key cell at offset {offset} has no value")]
    PkCellWithoutValue { offset: usize },
    #[error("PlainBuffer cell checksum mismatch for cell {name:?} at offset {offset}: stored {stored:#04x}, computed {computed:#04x}")]
    CellChecksum {
        offset: usize,
        name: String,
        stored: u8,
        computed: u8,
    },
    #[error("PlainBuffer row checksum mismatch for the row at offset {offset}: stored {stored:#04x}, computed {computed:#04x}")]
    RowChecksum {
        offset: usize,
        stored: u8,
        computed: u8,
    },
    #[error("PlainBuffer: expected exactly one row, found none")]
    NoRow,
    #[error("PlainBuffer: expected exactly one row, but more data follows at offset {offset}")]
    TrailingData { offset: usize },
    #[error("PlainBuffer: a primary-key buffer must not carry {what}")]
    NotPkOnly { what: &'static str },
    #[error("PlainBuffer: row has a delete marker where none is allowed ({context})")]
    UnexpectedDeleteMarker { context: &'static str },
    #[error("PlainBuffer: cell {name:?} is invalid in {context}: {reason}")]
    InvalidCell {
        name: String,
        context: &'static str,
        reason: &'static str,
    },
}

pub(super) type Result<T> = std::result::Result<T, PlainBufferError>;

/// Op type of an attribute cell in an UpdateRow-style change (TAG_CELL_TYPE byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellOpType {
    DeleteAllVersions = 1,
    DeleteOneVersion = 3,
    Increment = 4,
}

impl CellOpType {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(CellOpType::DeleteAllVersions),
            3 => Some(CellOpType::DeleteOneVersion),
            4 => Some(CellOpType::Increment),
            _ => None,
        }
    }

    pub fn as_byte(self) -> u8 {
        self as u8
    }
}

/// One attribute cell as on the wire (value absent for deletes).
#[derive(Debug, Clone, PartialEq)]
pub struct WireCell {
    pub name: String,
    pub value: Option<Value>,
    pub op: Option<CellOpType>,
    pub timestamp: Option<i64>,
}

/// One row as on the wire.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WireRow {
    pub primary_key: PrimaryKey,
    pub cells: Vec<WireCell>,
    pub delete_marker: bool,
}

/// [`WireCell`] with its name and value borrowed from the decoded buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct WireCellRef<'a> {
    pub name: &'a str,
    pub value: Option<ValueRef<'a>>,
    pub op: Option<CellOpType>,
    pub timestamp: Option<i64>,
}

/// [`WireRow`] with its attribute cells borrowed from the decoded buffer (the key is owned).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WireRowRef<'a> {
    pub primary_key: PrimaryKey,
    pub cells: Vec<WireCellRef<'a>>,
    pub delete_marker: bool,
}

impl WireCell {
    pub fn as_wire_ref(&self) -> WireCellRef<'_> {
        WireCellRef {
            name: &self.name,
            value: self.value.as_ref().map(Value::as_value_ref),
            op: self.op,
            timestamp: self.timestamp,
        }
    }
}

impl WireCellRef<'_> {
    pub fn into_owned(self) -> WireCell {
        WireCell {
            name: self.name.to_owned(),
            value: self.value.map(ValueRef::into_owned),
            op: self.op,
            timestamp: self.timestamp,
        }
    }
}

impl WireRowRef<'_> {
    pub fn into_owned(self) -> WireRow {
        WireRow {
            primary_key: self.primary_key,
            cells: self
                .cells
                .into_iter()
                .map(WireCellRef::into_owned)
                .collect(),
            delete_marker: self.delete_marker,
        }
    }
}

/// Which BatchWriteRow operation a decoded row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Put,
    Update,
    Delete,
}

// ---------------------------------------------------------------------------------------------
// Writing primitives
// ---------------------------------------------------------------------------------------------

/// A value's payload after its type byte, borrowed from the value.
#[derive(Clone, Copy)]
pub(super) enum Payload<'a> {
    /// INF_MIN / INF_MAX / AUTO_INCREMENT: the type byte alone.
    Empty,
    /// INTEGER / DOUBLE: 8 LE bytes.
    Fixed([u8; 8]),
    Bool(bool),
    /// STRING / BLOB: int32 length + bytes.
    Bytes(&'a [u8]),
}

impl Payload<'_> {
    #[inline]
    pub(super) fn len(self) -> usize {
        match self {
            Payload::Empty => 0,
            Payload::Fixed(_) => 8,
            Payload::Bool(_) => 1,
            Payload::Bytes(b) => 4 + b.len(),
        }
    }
}

/// int32 LE length. Lengths past i32::MAX are far beyond every service limit (2 MB cells), so
/// they are a caller bug; they are written truncated rather than panicking.
#[inline]
fn len_le(n: usize) -> [u8; 4] {
    debug_assert!(
        n <= i32::MAX as usize,
        "PlainBuffer length {n} exceeds int32"
    );
    (n as u32).to_le_bytes()
}

/// Writes type byte + payload (no prefix) and returns the CRC fed with them.
#[inline]
pub(super) fn write_typed(out: &mut Vec<u8>, mut crc: u8, vt: u8, p: Payload<'_>) -> u8 {
    out.push(vt);
    crc = crc8_byte(crc, vt);
    match p {
        Payload::Empty => {}
        Payload::Fixed(b) => {
            out.extend_from_slice(&b);
            crc = crc8_update(crc, &b);
        }
        Payload::Bool(b) => {
            out.push(b as u8);
            crc = crc8_byte(crc, b as u8);
        }
        Payload::Bytes(b) => {
            let l = len_le(b.len());
            out.extend_from_slice(&l);
            out.extend_from_slice(b);
            crc = crc8_update(crc8_update(crc, &l), b);
        }
    }
    crc
}

/// Writes one cell and returns its checksum (wire order name, value, op, timestamp; CRC order
/// name, value, timestamp, op).
#[inline]
pub(super) fn write_cell(
    out: &mut Vec<u8>,
    name: &str,
    value: Option<(u8, Payload<'_>)>,
    op: Option<u8>,
    ts: Option<i64>,
) -> u8 {
    let n = len_le(name.len());
    out.extend_from_slice(&[TAG_CELL, TAG_CELL_NAME, n[0], n[1], n[2], n[3]]);
    out.extend_from_slice(name.as_bytes());
    let mut crc = crc8_update(0, name.as_bytes());
    if let Some((vt, p)) = value {
        let t = len_le(1 + p.len());
        out.extend_from_slice(&[TAG_CELL_VALUE, t[0], t[1], t[2], t[3]]);
        crc = write_typed(out, crc, vt, p);
    }
    if let Some(op) = op {
        out.extend_from_slice(&[TAG_CELL_TYPE, op]);
    }
    if let Some(ts) = ts {
        let b = ts.to_le_bytes();
        out.push(TAG_CELL_TIMESTAMP);
        out.extend_from_slice(&b);
        crc = crc8_update(crc, &b);
    }
    if let Some(op) = op {
        crc = crc8_byte(crc, op);
    }
    out.extend_from_slice(&[TAG_CELL_CHECKSUM, crc]);
    crc
}

#[inline]
pub(super) fn cell_len(name: &str, value: Option<Payload<'_>>, op: bool, ts: bool) -> usize {
    // TAG_CELL + TAG_CELL_NAME + len + name + TAG_CELL_CHECKSUM + crc
    let mut n = 1 + 1 + 4 + name.len() + 2;
    if let Some(p) = value {
        n += 1 + 4 + 1 + p.len();
    }
    if op {
        n += 2;
    }
    if ts {
        n += 9;
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Reading primitives (the row grammar on top of them is in `decode`)
// ---------------------------------------------------------------------------------------------

pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    #[inline]
    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes the next byte if it equals `tag`.
    #[inline]
    pub(super) fn eat(&mut self, tag: u8) -> bool {
        if self.peek() == Some(tag) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        match rest.get(..n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(PlainBufferError::Truncated {
                offset: self.pos,
                needed: n - rest.len(),
            }),
        }
    }

    #[inline]
    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    #[inline]
    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    #[inline]
    pub(super) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    #[inline]
    pub(super) fn expect_tag(&mut self, tag: u8, expected: &'static str) -> Result<()> {
        let offset = self.pos;
        let found = self.u8()?;
        if found == tag {
            Ok(())
        } else {
            Err(PlainBufferError::BadTag {
                offset,
                found,
                expected,
            })
        }
    }

    /// An int32 length that must be non-negative; the bytes it announces are checked by `take`.
    #[inline]
    pub(super) fn len(&mut self, what: &'static str) -> Result<usize> {
        let offset = self.pos;
        let l = i32::from_le_bytes(self.array()?);
        usize::try_from(l).map_err(|_| PlainBufferError::LengthOutOfRange {
            offset,
            length: l.into(),
            what,
        })
    }

    pub(super) fn header(&mut self) -> Result<()> {
        let found = u32::from_le_bytes(self.array()?);
        if found == HEADER {
            Ok(())
        } else {
            Err(PlainBufferError::BadHeader { found })
        }
    }
}
