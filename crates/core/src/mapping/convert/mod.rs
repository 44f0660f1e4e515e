//! Row conversion: a source row (the text the server printed, per column) into Tablestore
//! values, exactly per design §4. The one place that knows both value systems.
//!
//! # Input
//!
//! A [`SourceRow`] holds one entry per mapped column **in source order** (ascending
//! `ORDINAL_POSITION`, key and attribute columns together: the order of
//! [`TableMapping::source_columns`] and of [`select_list`]), each the bytes the text protocol
//! delivered (`None` = NULL). Character data arrives in the session charset utf8mb4 (columns of
//! other charsets, latin1 included, are converted by the server); binary data, BIT and
//! GEOMETRY arrive raw.
//!
//! # Rules (by destination type)
//!
//! - INTEGER: integer text (also YEAR and ZEROFILL text); BIT(n) big-endian bytes. A value
//!   above 2^63-1 (BIGINT UNSIGNED, BIT(64)) is dirty data, never wrapped negative.
//! - BOOLEAN (override of an integer or BIT column): 0 → false, 1 → true, anything else dirty.
//! - DOUBLE: the printed number parsed to the nearest f64. FLOAT and DOUBLE columns are selected
//!   as `col * 1e0` ([`select_expr`]): the server prints a DOUBLE expression as its shortest
//!   round-trip text (checked on MariaDB 10.11 with 1.7976931348623157e308, 5e-324,
//!   2.2250738585072014e-308, 0.1+0.2), so DOUBLE arrives bit for bit and FLOAT as its exact
//!   single-precision value widened (the plain FLOAT text, `0.1`, has only 6 digits; `0.1 * 1e0`
//!   prints `0.10000000149011612`, which is `0.1f32 as f64`). Multiplying by one is exact and
//!   keeps the sign of zero. With `float_precision` set, the column is selected as
//!   `ROUND(col, n)` instead (the seed's option; off by default).
//! - STRING: the text as the server printed it, which must be valid UTF-8 (else dirty): DECIMAL
//!   with its scale digits, ENUM label, SET labels comma-joined, JSON as the server renders it
//!   (MariaDB: as stored), DATE/TIME/DATETIME/TIMESTAMP with the column's fraction digits
//!   (TIMESTAMP in UTC: reading sessions run with `time_zone='+00:00'`), zero dates kept as
//!   text. BIT as STRING is its unsigned decimal value.
//! - BINARY: the bytes as delivered (raw for binary/BIT/GEOMETRY columns, the UTF-8 text for
//!   character and temporal columns).
//! - EpochMicros (override of DATE/DATETIME/TIMESTAMP): INTEGER microseconds since
//!   1970-01-01 00:00:00 UTC, a DATE at midnight UTC, a DATETIME read as UTC. Zero dates
//!   (`0000-00-00`, zero month or day) are dirty data.
//! - Size: a key STRING/BINARY over 1 KB, an attribute over 2 MB is dirty data.
//! - Keys: INTEGER/EpochMicros → `PkValue::Integer`, STRING, BINARY; a NULL key is dirty data.
//!
//! Errors ([`ConvertError`]) name the column and the reason, never the value: no row data goes
//! into errors or logs.
//!
//! The unit tests are in `convert/tests.rs`.

use md5::{Digest, Md5};

use super::table::{ColumnMapping, TableMapping, MAX_ATTR_VALUE_BYTES, MAX_PK_VALUE_BYTES};
use super::types::Family;
use crate::config::{ColumnType, FloatPrecision, WriteMode};
use crate::mysql::chunk_reader::SourceRow;
use crate::mysql::quote_ident;
use std::borrow::Cow;

use tablestore::encoded::EncodedChange;
use tablestore::plainbuffer::ChangeBuilder;
use tablestore::{Cell, CellOp, PkColumn, PkValue, PrimaryKey, Row, RowChange, Value, ValueRef};

/// A value that cannot be migrated (dirty data). `column` is the source column name; the
/// reason never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column `{column}`: {reason}")]
pub struct ConvertError {
    pub column: String,
    pub reason: String,
}

impl ConvertError {
    fn new(col: &ColumnMapping, reason: impl Into<String>) -> Self {
        ConvertError {
            column: col.source.name.clone(),
            reason: reason.into(),
        }
    }
}

/// The SELECT expression that reads a mapped column for [`convert_value`] (see the module
/// doc): `ROUND(col, n)` for FLOAT/DOUBLE with a configured precision, `col * 1e0` for
/// FLOAT/DOUBLE going to DOUBLE, the plain quoted column otherwise.
pub fn select_expr(col: &ColumnMapping, fp: &FloatPrecision) -> String {
    let name = quote_ident(&col.source.name);
    let precision = match col.family {
        Family::Float => fp.float,
        Family::Double => fp.double,
        _ => None,
    };
    match (col.family, precision, col.target_type) {
        (Family::Float | Family::Double, Some(n), _) => format!("ROUND({name}, {n})"),
        (Family::Float | Family::Double, None, ColumnType::Double) => format!("{name} * 1e0"),
        _ => name,
    }
}

/// The select list of a table in source order (what [`RowConverter`] expects).
pub fn select_list(mapping: &TableMapping, fp: &FloatPrecision) -> Vec<String> {
    source_order(mapping)
        .into_iter()
        .map(|c| select_expr(c, fp))
        .collect()
}

fn source_order(mapping: &TableMapping) -> Vec<&ColumnMapping> {
    let mut cols: Vec<&ColumnMapping> = mapping.columns().collect();
    cols.sort_by_key(|c| c.source.ordinal);
    cols
}

fn utf8<'a>(col: &ColumnMapping, b: &'a [u8]) -> Result<&'a str, ConvertError> {
    std::str::from_utf8(b).map_err(|_| {
        ConvertError::new(
            col,
            "the value is not valid UTF-8, so it cannot be a Tablestore STRING; override the \
             column to binary",
        )
    })
}

/// BIT(n) bytes (big-endian) as an unsigned integer.
fn bit_value(col: &ColumnMapping, b: &[u8]) -> Result<u64, ConvertError> {
    if b.len() > 8 {
        return Err(ConvertError::new(col, "a BIT value longer than 8 bytes"));
    }
    Ok(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
}

fn too_big(col: &ColumnMapping) -> ConvertError {
    ConvertError::new(
        col,
        "the value is above 2^63-1, the largest Tablestore INTEGER; override the column to \
         string to keep the full range",
    )
}

/// An integer-family value as i64 (text for integers/YEAR, bytes for BIT).
fn integer_of(col: &ColumnMapping, b: &[u8]) -> Result<i64, ConvertError> {
    match col.family {
        Family::Bit => {
            let v = bit_value(col, b)?;
            i64::try_from(v).map_err(|_| too_big(col))
        }
        Family::Integer | Family::Year => {
            let t = utf8(col, b)?;
            if t.starts_with('-') {
                t.parse::<i64>()
                    .map_err(|_| ConvertError::new(col, "the value is not an integer"))
            } else {
                let u = t
                    .parse::<u64>()
                    .map_err(|_| ConvertError::new(col, "the value is not an integer"))?;
                i64::try_from(u).map_err(|_| too_big(col))
            }
        }
        _ => Err(cannot(col)),
    }
}

fn cannot(col: &ColumnMapping) -> ConvertError {
    ConvertError::new(
        col,
        format!(
            "type '{}' cannot be stored as {}",
            col.source.column_type,
            col.target_type.as_str()
        ),
    )
}

/// Microseconds since the epoch of a DATE / DATETIME / TIMESTAMP text, read as UTC.
fn epoch_micros(text: &str) -> Result<i64, &'static str> {
    const MALFORMED: &str = "the value is not a date or datetime";
    let (date, time) = match text.split_once(' ') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let num = |s: &str| -> Result<u32, &'static str> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MALFORMED);
        }
        s.parse().map_err(|_| MALFORMED)
    };
    let mut dp = date.split('-');
    let (y, m, d) = match (dp.next(), dp.next(), dp.next(), dp.next()) {
        (Some(y), Some(m), Some(d), None) => (num(y)?, num(m)?, num(d)?),
        _ => return Err(MALFORMED),
    };
    if y == 0 || m == 0 || d == 0 {
        return Err(
            "a zero date ('0000-00-00' or a zero month or day) has no epoch time; override the \
             column to string to keep it as text",
        );
    }
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or(MALFORMED)?;
    let day = u8::try_from(d).map_err(|_| MALFORMED)?;
    let year = i32::try_from(y).map_err(|_| MALFORMED)?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| MALFORMED)?;
    let days = i64::from(date.to_julian_day()) - 2_440_588;
    let mut micros_of_day: i64 = 0;
    if let Some(t) = time {
        let (hms, frac) = match t.split_once('.') {
            Some((h, f)) => (h, Some(f)),
            None => (t, None),
        };
        let mut tp = hms.split(':');
        let (h, mi, s) = match (tp.next(), tp.next(), tp.next(), tp.next()) {
            (Some(h), Some(mi), Some(s), None) => (num(h)?, num(mi)?, num(s)?),
            _ => return Err(MALFORMED),
        };
        if h > 23 || mi > 59 || s > 59 {
            return Err(MALFORMED);
        }
        let mut us: i64 = 0;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 6 {
                return Err(MALFORMED);
            }
            us = i64::from(num(f)?) * 10i64.pow(6 - f.len() as u32);
        }
        micros_of_day = (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)) * 1_000_000 + us;
    }
    Ok(days * 86_400_000_000 + micros_of_day)
}

/// Converts one non-NULL value of a column to its Tablestore value (size limits not checked).
pub fn convert_value(col: &ColumnMapping, b: &[u8]) -> Result<Value, ConvertError> {
    convert_value_ref(col, b).map(ValueRef::into_owned)
}

/// [`convert_value`] borrowing text and bytes from the source row where it can.
pub fn convert_value_ref<'a>(
    col: &ColumnMapping,
    b: &'a [u8],
) -> Result<ValueRef<'a>, ConvertError> {
    Ok(match col.target_type {
        ColumnType::Integer => ValueRef::Integer(integer_of(col, b)?),
        ColumnType::Boolean => {
            let v = match col.family {
                Family::Bit => bit_value(col, b)?,
                // anything but plain digits (e.g. a negative number) is not 0 or 1
                Family::Integer => utf8(col, b)?.parse::<u64>().unwrap_or(u64::MAX),
                _ => return Err(cannot(col)),
            };
            match v {
                0 => ValueRef::Boolean(false),
                1 => ValueRef::Boolean(true),
                _ => {
                    return Err(ConvertError::new(
                        col,
                        "a BOOLEAN column takes only 0 and 1; override the column to integer",
                    ))
                }
            }
        }
        ColumnType::Double => {
            let f = match col.family {
                Family::Integer
                | Family::Year
                | Family::Decimal
                | Family::Float
                | Family::Double => utf8(col, b)?
                    .parse::<f64>()
                    .map_err(|_| ConvertError::new(col, "the value is not a number"))?,
                Family::Bit => bit_value(col, b)? as f64,
                _ => return Err(cannot(col)),
            };
            if !f.is_finite() {
                return Err(ConvertError::new(col, "the value is not a finite number"));
            }
            ValueRef::Double(f)
        }
        ColumnType::String => match col.family {
            Family::Bit => ValueRef::String(Cow::Owned(bit_value(col, b)?.to_string())),
            _ => ValueRef::String(Cow::Borrowed(utf8(col, b)?)),
        },
        ColumnType::Binary => ValueRef::Binary(Cow::Borrowed(b)),
        ColumnType::EpochMicros => match col.family {
            Family::Date | Family::DateTime | Family::Timestamp => {
                let t = utf8(col, b)?;
                ValueRef::Integer(epoch_micros(t).map_err(|r| ConvertError::new(col, r))?)
            }
            _ => return Err(cannot(col)),
        },
    })
}

/// Converts one attribute value, checking Tablestore's 2 MB value limit.
pub fn convert_attribute(col: &ColumnMapping, b: &[u8]) -> Result<Value, ConvertError> {
    convert_attribute_ref(col, b).map(ValueRef::into_owned)
}

/// [`convert_attribute`] borrowing text and bytes from the source row where it can.
pub fn convert_attribute_ref<'a>(
    col: &ColumnMapping,
    b: &'a [u8],
) -> Result<ValueRef<'a>, ConvertError> {
    let v = convert_value_ref(col, b)?;
    if v.data_size() as u64 > MAX_ATTR_VALUE_BYTES {
        return Err(ConvertError::new(
            col,
            format!(
                "the value is {} bytes, more than Tablestore's {MAX_ATTR_VALUE_BYTES}-byte limit \
                 for an attribute",
                v.data_size()
            ),
        ));
    }
    Ok(v)
}

/// Converts one primary-key value (NULL and values over 1 KB are dirty data).
pub fn convert_pk_value(col: &ColumnMapping, b: Option<&[u8]>) -> Result<PkValue, ConvertError> {
    let b = b.ok_or_else(|| {
        ConvertError::new(
            col,
            "a primary-key column is NULL; Tablestore keys cannot be NULL",
        )
    })?;
    let v = match convert_value(col, b)? {
        Value::Integer(i) => PkValue::Integer(i),
        Value::String(s) => PkValue::String(s),
        Value::Binary(b) => PkValue::Binary(b),
        Value::Double(_) | Value::Boolean(_) => {
            return Err(ConvertError::new(
                col,
                format!(
                    "a primary-key column cannot be {} in Tablestore",
                    col.target_type.as_str()
                ),
            ))
        }
    };
    if v.data_size() as u64 > MAX_PK_VALUE_BYTES {
        return Err(ConvertError::new(
            col,
            format!(
                "the key value is {} bytes, more than Tablestore's {MAX_PK_VALUE_BYTES}-byte \
                 primary-key limit",
                v.data_size()
            ),
        ));
    }
    Ok(v)
}

/// Converts rows of one table; build it once per table (it precomputes the positions of the
/// key and attribute columns in the source-ordered row).
#[derive(Debug, Clone)]
pub struct RowConverter<'a> {
    mapping: &'a TableMapping,
    key_pos: Vec<usize>,
    attr_pos: Vec<usize>,
    width: usize,
}

impl<'a> RowConverter<'a> {
    pub fn new(mapping: &'a TableMapping) -> Self {
        let order = source_order(mapping);
        let pos = |c: &ColumnMapping| {
            order
                .iter()
                .position(|o| std::ptr::eq(*o, c))
                .unwrap_or(usize::MAX)
        };
        RowConverter {
            mapping,
            key_pos: mapping.key.iter().map(pos).collect(),
            attr_pos: mapping.attributes.iter().map(pos).collect(),
            width: order.len(),
        }
    }

    pub fn mapping(&self) -> &TableMapping {
        self.mapping
    }

    fn check_width(&self, row: &SourceRow) -> Result<(), ConvertError> {
        if row.len() != self.width {
            return Err(ConvertError {
                column: String::new(),
                reason: format!(
                    "the row has {} values but table `{}` maps {} columns",
                    row.len(),
                    self.mapping.source_name,
                    self.width
                ),
            });
        }
        Ok(())
    }

    /// The destination primary key of a row.
    pub fn primary_key(&self, row: &SourceRow) -> Result<PrimaryKey, ConvertError> {
        self.key_values(row)?
            .map(|kv| {
                kv.map(|(name, value)| PkColumn {
                    name: name.to_owned(),
                    value,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(PrimaryKey)
    }

    /// Each destination key column's name and converted value, in key order (the row's
    /// width checked first).
    fn key_values<'r>(
        &'r self,
        row: &'r SourceRow,
    ) -> Result<impl Iterator<Item = Result<(&'r str, PkValue), ConvertError>> + 'r, ConvertError>
    {
        self.check_width(row)?;
        Ok(self.mapping.key.iter().zip(&self.key_pos).map(|(c, &p)| {
            Ok((
                c.target_name.as_str(),
                convert_pk_value(c, row[p].as_deref())?,
            ))
        }))
    }

    /// The row for PutRow (write_mode overwrite_row): NULL columns are absent.
    pub fn to_put_row(&self, row: &SourceRow) -> Result<Row, ConvertError> {
        let primary_key = self.primary_key(row)?;
        let mut cells = Vec::with_capacity(self.attr_pos.len());
        for (c, &p) in self.mapping.attributes.iter().zip(&self.attr_pos) {
            if let Some(b) = &row[p] {
                cells.push(Cell::new(c.target_name.clone(), convert_attribute(c, b)?));
            }
        }
        Ok(Row { primary_key, cells })
    }

    /// The key and column operations for UpdateRow (write_mode update_row): a value is put,
    /// a NULL deletes every version of the column.
    pub fn to_update_ops(
        &self,
        row: &SourceRow,
    ) -> Result<(PrimaryKey, Vec<CellOp>), ConvertError> {
        let primary_key = self.primary_key(row)?;
        let mut ops = Vec::with_capacity(self.attr_pos.len());
        for (c, &p) in self.mapping.attributes.iter().zip(&self.attr_pos) {
            ops.push(match &row[p] {
                Some(b) => CellOp::Put(Cell::new(c.target_name.clone(), convert_attribute(c, b)?)),
                None => CellOp::DeleteAllVersions {
                    name: c.target_name.clone(),
                },
            });
        }
        Ok((primary_key, ops))
    }

    /// The write for a row under `mode`.
    pub fn to_change(&self, row: &SourceRow, mode: WriteMode) -> Result<RowChange, ConvertError> {
        Ok(match mode {
            WriteMode::OverwriteRow => RowChange::Put(self.to_put_row(row)?),
            WriteMode::UpdateRow => {
                let (primary_key, ops) = self.to_update_ops(row)?;
                if ops.iter().any(|op| matches!(op, CellOp::Put(_))) {
                    RowChange::Update { primary_key, ops }
                } else {
                    // Every mapped attribute is NULL (or there are none). An UpdateRow of
                    // deletes leaves no row behind in Tablestore (a row needs a column unless
                    // PutRow made it), so the source row would be lost: write the key alone.
                    RowChange::Put(Row {
                        primary_key,
                        cells: Vec::new(),
                    })
                }
            }
        })
    }
}

impl RowConverter<'_> {
    /// [`RowConverter::to_change`] encoded straight into its wire form, borrowing each value
    /// from the source row: the full copy's path (same bytes as encoding `to_change`).
    pub fn encode_change(
        &self,
        row: &SourceRow,
        mode: WriteMode,
    ) -> Result<EncodedChange, ConvertError> {
        // Key values go straight into the encoding: no PrimaryKey (names, vector) per row.
        let mut b = ChangeBuilder::start(self.encoded_guess(row));
        for kv in self.key_values(row)? {
            let (name, value) = kv?;
            b.key(name, &value);
        }
        for (c, &p) in self.mapping.attributes.iter().zip(&self.attr_pos) {
            match (&row[p], mode) {
                (Some(v), _) => b.put(&c.target_name, &convert_attribute_ref(c, v)?),
                (None, WriteMode::UpdateRow) => b.delete_all(&c.target_name),
                (None, WriteMode::OverwriteRow) => {}
            }
        }
        Ok(match mode {
            WriteMode::OverwriteRow => EncodedChange::put(b),
            WriteMode::UpdateRow if b.puts() > 0 => EncodedChange::update(b),
            // Every mapped attribute is NULL: the key alone, as in `to_change`.
            WriteMode::UpdateRow => {
                EncodedChange::put(ChangeBuilder::new(&self.primary_key(row)?, 0))
            }
        })
    }

    /// Encoded size of a row, about: values plus per-cell framing and names.
    fn encoded_guess(&self, row: &SourceRow) -> usize {
        let values: usize = row.iter().flatten().map(Vec::len).sum();
        values + self.width * 32 + 16
    }
}

/// [`RowConverter::to_put_row`] for a single row.
pub fn to_put_row(mapping: &TableMapping, row: &SourceRow) -> Result<Row, ConvertError> {
    RowConverter::new(mapping).to_put_row(row)
}

/// [`RowConverter::to_update_ops`] for a single row.
pub fn to_update_ops(
    mapping: &TableMapping,
    row: &SourceRow,
) -> Result<(PrimaryKey, Vec<CellOp>), ConvertError> {
    RowConverter::new(mapping).to_update_ops(row)
}

/// [`RowConverter::primary_key`] for a single row.
pub fn primary_key(mapping: &TableMapping, row: &SourceRow) -> Result<PrimaryKey, ConvertError> {
    RowConverter::new(mapping).primary_key(row)
}

/// A row's fingerprint for verification: MD5 over the primary key (in key order) and the
/// cells sorted by name (only the first, newest cell of a name; versions' timestamps
/// ignored), each as name, type tag and value bytes with length prefixes. A source row
/// converted with [`RowConverter::to_put_row`] and the same row read back from Tablestore
/// hash equally; any difference in a value, its type or a column's presence changes it.
pub fn row_hash(row: &Row) -> [u8; 16] {
    let mut h = Md5::new();
    let mut put = |tag: u8, bytes: &[u8]| {
        h.update([tag]);
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    put(b'K', &(row.primary_key.0.len() as u64).to_be_bytes());
    for c in &row.primary_key.0 {
        put(b'n', c.name.as_bytes());
        match &c.value {
            PkValue::Integer(i) => put(b'i', &i.to_be_bytes()),
            PkValue::String(s) => put(b's', s.as_bytes()),
            PkValue::Binary(b) => put(b'b', b),
            PkValue::InfMin => put(b'<', &[]),
            PkValue::InfMax => put(b'>', &[]),
            PkValue::AutoIncrement => put(b'a', &[]),
        }
    }
    let mut cells: Vec<&Cell> = Vec::with_capacity(row.cells.len());
    for c in &row.cells {
        if !cells.iter().any(|x| x.name == c.name) {
            cells.push(c);
        }
    }
    cells.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    put(b'C', &(cells.len() as u64).to_be_bytes());
    for c in cells {
        put(b'n', c.name.as_bytes());
        match &c.value {
            Value::Integer(i) => put(b'i', &i.to_be_bytes()),
            Value::Double(d) => put(b'd', &d.to_bits().to_be_bytes()),
            Value::Boolean(v) => put(b'o', &[u8::from(*v)]),
            Value::String(s) => put(b's', s.as_bytes()),
            Value::Binary(b) => put(b'b', b),
        }
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests;
