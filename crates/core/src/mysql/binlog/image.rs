//! Row images read straight from a row event's bytes with the table map decoded once per table
//! (no per-row mysql_common `BinlogRow`: no `Column` per value, no metadata re-read per row).
//! Decoding only finds where each value lies (null bitmap, present-columns bitmap, each type's
//! width or length prefix); [`super::text`] turns a value into the full copy's text when the
//! applier asks for it. All reads are checked: short or corrupt input is an error, never a
//! panic.
//!
//! A row event's body after its bitmaps is a sequence of rows; each row is one image (WRITE:
//! after, DELETE: before) or two (UPDATE: before then after). An image is a null bitmap of one
//! bit per column present in the image, then the values of the present non-NULL columns.

use std::fmt;
use std::sync::Arc;

use mysql_async::consts::ColumnType;

use super::table::ColumnMeta;

/// Where one column sits in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The image leaves the column out (MINIMAL row image, a functional index's hidden column).
    Absent,
    Null,
    /// The value's bytes (without a length prefix) in the event's row data.
    At(u32, u32),
}

/// One row image: a value (or NULL) per column of the table map, or nothing where the image
/// leaves the column out. The bytes are the event's, shared by all of its images.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    data: Arc<[u8]>,
    slots: Box<[Slot]>,
}

/// One column of an image, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    /// The binary value as the row event holds it (a length prefix removed): read it with the
    /// column's type and metadata ([`super::text::render`]).
    Bytes(&'a [u8]),
}

impl Image {
    /// Columns of the table map (present or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Column `i`'s value, `None` when the image leaves it out (or `i` is past the table map).
    pub fn get(&self, i: usize) -> Option<Value<'_>> {
        match self.slots.get(i)? {
            Slot::Absent => None,
            Slot::Null => Some(Value::Null),
            Slot::At(start, end) => self
                .data
                .get(*start as usize..*end as usize)
                .map(Value::Bytes),
        }
    }

    /// Every column in table-map order.
    pub fn iter(&self) -> impl Iterator<Item = Option<Value<'_>>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: row data stays out of logs.
        f.debug_list()
            .entries(self.iter().map(|v| match v {
                None => "absent".to_owned(),
                Some(Value::Null) => "NULL".to_owned(),
                Some(Value::Bytes(b)) => format!("{} bytes", b.len()),
            }))
            .finish()
    }
}

/// How a column's value is laid out in a row image, worked out once per table map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Always this many bytes.
    Fixed(usize),
    /// A little-endian length of this many bytes (1–4), then that many bytes.
    Prefixed(usize),
    /// A type whose width the reader does not know: a row with a value in it is an error.
    Unknown,
}

impl Layout {
    pub(super) fn of(col: &ColumnMeta) -> Layout {
        use ColumnType::*;
        let m = col.metadata.as_slice();
        let m0 = m.first().copied().map(usize::from);
        let m1 = m.get(1).copied().map(usize::from);
        match col.column_type {
            MYSQL_TYPE_TINY | MYSQL_TYPE_YEAR => Layout::Fixed(1),
            MYSQL_TYPE_SHORT => Layout::Fixed(2),
            MYSQL_TYPE_INT24 | MYSQL_TYPE_NEWDATE | MYSQL_TYPE_TIME => Layout::Fixed(3),
            MYSQL_TYPE_LONG | MYSQL_TYPE_FLOAT | MYSQL_TYPE_TIMESTAMP => Layout::Fixed(4),
            MYSQL_TYPE_LONGLONG | MYSQL_TYPE_DOUBLE | MYSQL_TYPE_DATETIME => Layout::Fixed(8),
            MYSQL_TYPE_TIMESTAMP2 => Layout::Fixed(4 + frac_bytes(m0.unwrap_or(0))),
            MYSQL_TYPE_DATETIME2 => Layout::Fixed(5 + frac_bytes(m0.unwrap_or(0))),
            MYSQL_TYPE_TIME2 => Layout::Fixed(3 + frac_bytes(m0.unwrap_or(0))),
            MYSQL_TYPE_NEWDECIMAL => match (m0, m1) {
                (Some(p), Some(s)) if s <= p && p <= 65 => Layout::Fixed(decimal_bytes(p, s)),
                _ => Layout::Unknown,
            },
            MYSQL_TYPE_BIT => match (m0, m1) {
                (Some(bits), Some(bytes)) => Layout::Fixed((bytes * 8 + bits).div_ceil(8)),
                _ => Layout::Unknown,
            },
            MYSQL_TYPE_ENUM | MYSQL_TYPE_SET => match m1 {
                Some(n @ 1..=8) if col.column_type == MYSQL_TYPE_SET || n <= 2 => Layout::Fixed(n),
                _ => Layout::Unknown,
            },
            MYSQL_TYPE_STRING => prefix_for(string_width(m)),
            MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => match (m0, m1) {
                (Some(lo), Some(hi)) => prefix_for(lo | hi << 8),
                _ => Layout::Unknown,
            },
            MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_GEOMETRY
            | MYSQL_TYPE_JSON
            | MYSQL_TYPE_VECTOR => match m0 {
                Some(n @ 1..=4) => Layout::Prefixed(n),
                _ => Layout::Unknown,
            },
            _ => Layout::Unknown,
        }
    }
}

/// A CHAR/BINARY column's maximum byte length: its table map metadata is the real type and
/// the length, with the length's two high bits folded into the type byte (MySQL bug #37426).
pub(super) fn string_width(m: &[u8]) -> usize {
    match m {
        [b0, b1, ..] => {
            let (b0, b1) = (usize::from(*b0), usize::from(*b1));
            if b0 & 0x30 != 0x30 {
                b1 | (((b0 & 0x30) ^ 0x30) << 4)
            } else {
                b1
            }
        }
        _ => 0,
    }
}

fn prefix_for(max_len: usize) -> Layout {
    Layout::Prefixed(if max_len < 256 { 1 } else { 2 })
}

/// Bytes of a temporal value's fraction for `fsp` fraction digits.
pub(super) fn frac_bytes(fsp: usize) -> usize {
    fsp.min(6).div_ceil(2)
}

/// Bytes of a group of fewer than nine decimal digits.
pub(super) const DIGIT_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Bytes of a DECIMAL(precision, scale) value: nine digits per four bytes, each side of the
/// point on its own.
pub(super) fn decimal_bytes(precision: usize, scale: usize) -> usize {
    let int = precision - scale;
    int / 9 * 4 + DIGIT_BYTES[int % 9] + scale / 9 * 4 + DIGIT_BYTES[scale % 9]
}

/// A row event's rows as images, against the table map's columns.
pub(super) struct RowsReader<'a> {
    data: &'a [u8],
    at: usize,
    layouts: &'a [Layout],
    shared: Arc<[u8]>,
}

impl<'a> RowsReader<'a> {
    pub(super) fn new(data: &'a [u8], layouts: &'a [Layout]) -> RowsReader<'a> {
        RowsReader {
            data,
            at: 0,
            layouts,
            shared: Arc::from(data),
        }
    }

    /// Whether every row has been read.
    pub(super) fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    /// The next image, whose columns are those of `present` (column indexes, ascending).
    pub(super) fn image(&mut self, present: &[usize]) -> Result<Image, String> {
        let n = present.len();
        let nulls = self.take(n.div_ceil(8), "null bitmap")?;
        let mut slots = vec![Slot::Absent; self.layouts.len()].into_boxed_slice();
        for (j, &i) in present.iter().enumerate() {
            let slot = slots
                .get_mut(i)
                .ok_or_else(|| format!("column {i} is outside the table map"))?;
            if nulls.get(j / 8).is_some_and(|b| b & (1 << (j % 8)) != 0) {
                *slot = Slot::Null;
                continue;
            }
            let len = match self.layouts.get(i).copied().unwrap_or(Layout::Unknown) {
                Layout::Fixed(n) => n,
                Layout::Prefixed(k) => {
                    let raw = self.take(k, "length")?;
                    raw.iter()
                        .rev()
                        .fold(0usize, |acc, b| acc << 8 | usize::from(*b))
                }
                Layout::Unknown => {
                    return Err(format!(
                        "column {i} has a type or metadata the reader cannot read"
                    ))
                }
            };
            let start = self.at;
            self.take(len, "value")?;
            // Event bodies are below 4 GiB (the header's size is a u32).
            let (s, e) = (u32::try_from(start), u32::try_from(self.at));
            let (Ok(s), Ok(e)) = (s, e) else {
                return Err("a row event over 4 GiB".into());
            };
            *slot = Slot::At(s, e);
        }
        Ok(Image {
            data: self.shared.clone(),
            slots,
        })
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len());
        let Some(end) = end else {
            return Err(format!(
                "the row data ends inside a {what} ({n} bytes at {} of {})",
                self.at,
                self.data.len()
            ));
        };
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
