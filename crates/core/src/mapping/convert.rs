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
        self.check_width(row)?;
        self.mapping
            .key
            .iter()
            .zip(&self.key_pos)
            .map(|(c, &p)| {
                Ok(PkColumn {
                    name: c.target_name.clone(),
                    value: convert_pk_value(c, row[p].as_deref())?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(PrimaryKey)
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
        let primary_key = self.primary_key(row)?;
        let mut b = ChangeBuilder::new(&primary_key, self.encoded_guess(row));
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
            WriteMode::UpdateRow => EncodedChange::put(ChangeBuilder::new(&primary_key, 0)),
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
mod tests {
    use super::*;
    use crate::mysql::ColumnInfo;

    fn info(name: &str, ordinal: u32, data_type: &str, column_type: &str) -> ColumnInfo {
        ColumnInfo::of_type(name, ordinal, data_type, column_type)
    }

    fn cm(data_type: &str, column_type: &str, target: Option<ColumnType>) -> ColumnMapping {
        let source = info("c", 1, data_type, column_type);
        let family = crate::mapping::types::family(&source).unwrap();
        ColumnMapping {
            source,
            family,
            target_name: "c".into(),
            target_type: target.unwrap_or_else(|| crate::mapping::types::default_type(family)),
        }
    }

    fn conv(
        data_type: &str,
        column_type: &str,
        target: Option<ColumnType>,
        b: &[u8],
    ) -> Result<Value, ConvertError> {
        convert_value(&cm(data_type, column_type, target), b)
    }

    fn ok(data_type: &str, column_type: &str, target: Option<ColumnType>, b: &[u8]) -> Value {
        conv(data_type, column_type, target, b).unwrap()
    }

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn integers() {
        assert_eq!(
            ok("int", "int(11)", None, b"-2147483648"),
            Value::Integer(-2147483648)
        );
        assert_eq!(
            ok("tinyint", "tinyint(4)", None, b"127"),
            Value::Integer(127)
        );
        assert_eq!(
            ok("bigint", "bigint(20)", None, b"-9223372036854775808"),
            Value::Integer(i64::MIN)
        );
        assert_eq!(
            ok(
                "bigint",
                "bigint(20) unsigned",
                None,
                b"9223372036854775807"
            ),
            Value::Integer(i64::MAX)
        );
        // 2^63: dirty, never wrapped
        let e = conv(
            "bigint",
            "bigint(20) unsigned",
            None,
            b"9223372036854775808",
        )
        .unwrap_err();
        assert_eq!(e.column, "c");
        assert!(
            e.reason.contains("2^63-1") && e.reason.contains("string"),
            "{e}"
        );
        assert!(!e.to_string().contains("9223372036854775808"), "{e}");
        let e = conv(
            "bigint",
            "bigint(20) unsigned",
            None,
            b"18446744073709551615",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("column `c`:"), "{e}");
        // zerofill text
        assert_eq!(
            ok("int", "int(5) unsigned zerofill", None, b"00042"),
            Value::Integer(42)
        );
        assert_eq!(
            ok(
                "int",
                "int(5) unsigned zerofill",
                Some(ColumnType::String),
                b"00042"
            ),
            s("00042")
        );
        // overrides
        assert_eq!(
            ok(
                "bigint",
                "bigint(20) unsigned",
                Some(ColumnType::String),
                b"18446744073709551615"
            ),
            s("18446744073709551615")
        );
        assert_eq!(
            ok("int", "int", Some(ColumnType::Double), b"-7"),
            Value::Double(-7.0)
        );
        assert_eq!(
            ok("int", "int", Some(ColumnType::Binary), b"-7"),
            Value::Binary(b"-7".to_vec())
        );
        assert!(conv("int", "int", None, b"abc").is_err());
        assert!(conv("int", "int", None, b"").is_err());
    }

    #[test]
    fn booleans() {
        let b = Some(ColumnType::Boolean);
        assert_eq!(ok("tinyint", "tinyint(1)", b, b"0"), Value::Boolean(false));
        assert_eq!(ok("tinyint", "tinyint(1)", b, b"1"), Value::Boolean(true));
        for bad in [&b"2"[..], b"-1", b"x", b"127"] {
            let e = conv("tinyint", "tinyint(1)", b, bad).unwrap_err();
            assert!(e.reason.contains("0 and 1"), "{e}");
        }
        assert_eq!(ok("bit", "bit(1)", b, &[1]), Value::Boolean(true));
        assert_eq!(ok("bit", "bit(1)", b, &[0]), Value::Boolean(false));
        assert!(conv("bit", "bit(2)", b, &[2]).is_err());
    }

    #[test]
    fn year_and_bit() {
        assert_eq!(ok("year", "year(4)", None, b"2024"), Value::Integer(2024));
        assert_eq!(ok("year", "year(4)", None, b"0000"), Value::Integer(0));
        assert_eq!(
            ok("year", "year(4)", Some(ColumnType::String), b"2024"),
            s("2024")
        );
        // BIT(5) b'10101' arrives as one byte 0x15
        assert_eq!(ok("bit", "bit(5)", None, &[0b10101]), Value::Integer(21));
        assert_eq!(
            ok("bit", "bit(5)", Some(ColumnType::String), &[0b10101]),
            s("21")
        );
        assert_eq!(
            ok("bit", "bit(5)", Some(ColumnType::Binary), &[0b10101]),
            Value::Binary(vec![0x15])
        );
        assert_eq!(
            ok("bit", "bit(12)", None, &[0x0A, 0xBC]),
            Value::Integer(0xABC)
        );
        assert_eq!(
            ok(
                "bit",
                "bit(64)",
                None,
                &[0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
            ),
            Value::Integer(i64::MAX)
        );
        assert!(conv("bit", "bit(64)", None, &[0x80, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(
            ok("bit", "bit(64)", Some(ColumnType::String), &[0xFF; 8]),
            s("18446744073709551615")
        );
    }

    #[test]
    fn decimals_keep_their_text() {
        let d65 = "-12345678901234567890123456789012345.123456789012345678901234567890";
        assert_eq!(
            ok("decimal", "decimal(65,30)", None, d65.as_bytes()),
            s(d65)
        );
        assert_eq!(ok("decimal", "decimal(10,2)", None, b"1.50"), s("1.50"));
        assert_eq!(ok("decimal", "decimal(10,0)", None, b"0"), s("0"));
        assert_eq!(
            ok(
                "decimal",
                "decimal(10,2)",
                Some(ColumnType::Double),
                b"1.50"
            ),
            Value::Double(1.5)
        );
        assert_eq!(
            ok(
                "decimal",
                "decimal(65,30)",
                Some(ColumnType::Binary),
                b"0.000000000000000000000000000001"
            ),
            Value::Binary(b"0.000000000000000000000000000001".to_vec())
        );
    }

    #[test]
    fn floats_and_doubles() {
        // FLOAT selected as `col * 1e0`: the shortest text of the widened value
        let f = |t: &[u8]| ok("float", "float", None, t);
        assert_eq!(f(b"0.10000000149011612"), Value::Double(0.1f32 as f64));
        assert_eq!(f(b"3.4028234663852886e38"), Value::Double(f32::MAX as f64));
        assert_eq!(
            f(b"1.401298464324817e-45"),
            Value::Double(f32::from_bits(1) as f64)
        );
        assert_eq!(
            f(b"1.1754943508222875e-38"),
            Value::Double(f32::MIN_POSITIVE as f64)
        );
        assert_eq!(f(b"16777216"), Value::Double(16777216.0));
        // DOUBLE bit for bit
        let d = |t: &[u8]| match ok("double", "double", None, t) {
            Value::Double(x) => x.to_bits(),
            other => panic!("{other:?}"),
        };
        assert_eq!(d(b"1.7976931348623157e308"), f64::MAX.to_bits());
        assert_eq!(d(b"-1.7976931348623157e308"), f64::MIN.to_bits());
        assert_eq!(d(b"5e-324"), 1);
        assert_eq!(d(b"2.2250738585072014e-308"), f64::MIN_POSITIVE.to_bits());
        assert_eq!(d(b"0.30000000000000004"), (0.1f64 + 0.2).to_bits());
        assert_eq!(d(b"-0"), (-0.0f64).to_bits());
        assert_eq!(
            d(b"1.2345678901234568e20"),
            1.2345678901234568e20f64.to_bits()
        );
        assert!(conv("double", "double", None, b"inf").is_err());
        assert!(conv("double", "double", None, b"nan").is_err());
        // string override keeps the printed text
        assert_eq!(
            ok("float", "float", Some(ColumnType::String), b"3.40282e38"),
            s("3.40282e38")
        );
    }

    #[test]
    fn select_expressions() {
        let none = FloatPrecision::default();
        let fp = FloatPrecision {
            float: Some(3),
            double: Some(10),
        };
        assert_eq!(select_expr(&cm("float", "float", None), &none), "`c` * 1e0");
        assert_eq!(
            select_expr(&cm("double", "double", None), &none),
            "`c` * 1e0"
        );
        assert_eq!(
            select_expr(&cm("float", "float", Some(ColumnType::String)), &none),
            "`c`"
        );
        assert_eq!(
            select_expr(&cm("float", "float", None), &fp),
            "ROUND(`c`, 3)"
        );
        assert_eq!(
            select_expr(&cm("double", "double", None), &fp),
            "ROUND(`c`, 10)"
        );
        assert_eq!(
            select_expr(&cm("decimal", "decimal(5,2)", None), &fp),
            "`c`"
        );
        let mut odd = cm("int", "int", None);
        odd.source.name = "we`ird".into();
        assert_eq!(select_expr(&odd, &none), "`we``ird`");
    }

    #[test]
    fn strings() {
        assert_eq!(
            ok("varchar", "varchar(10)", None, "😀 emoji".as_bytes()),
            s("😀 emoji")
        );
        // a latin1 column arrives converted to utf8mb4 by the server
        assert_eq!(
            ok("varchar", "varchar(10)", None, b"caf\xc3\xa9"),
            s("café")
        );
        // raw latin1 bytes (never sent to a utf8mb4 session) are not UTF-8: dirty
        let e = conv("varchar", "varchar(10)", None, b"caf\xe9").unwrap_err();
        assert!(
            e.reason.contains("UTF-8") && !e.to_string().contains("caf"),
            "{e}"
        );
        assert_eq!(
            ok(
                "varchar",
                "varchar(10)",
                Some(ColumnType::Binary),
                b"caf\xc3\xa9"
            ),
            Value::Binary(b"caf\xc3\xa9".to_vec())
        );
        assert_eq!(ok("enum", "enum('a','b')", None, b"b"), s("b"));
        assert_eq!(ok("set", "set('a','b','c')", None, b"a,c"), s("a,c"));
        assert_eq!(ok("set", "set('a','b','c')", None, b""), s(""));
        assert_eq!(
            ok("json", "json", None, br#"{"a": [1, 2.5, "x"]}"#),
            s(r#"{"a": [1, 2.5, "x"]}"#)
        );
        assert_eq!(ok("text", "text", None, b""), s(""));
    }

    #[test]
    fn binaries() {
        let raw = vec![0u8, 0xff, 0x80, b'\'', b'\\'];
        assert_eq!(ok("blob", "blob", None, &raw), Value::Binary(raw.clone()));
        assert_eq!(
            ok("varbinary", "varbinary(8)", None, &raw),
            Value::Binary(raw.clone())
        );
        assert_eq!(
            ok("geometry", "point", None, &raw),
            Value::Binary(raw.clone())
        );
        assert!(conv("blob", "blob", Some(ColumnType::String), &raw).is_err());
        assert_eq!(
            ok("blob", "blob", Some(ColumnType::String), b"text"),
            s("text")
        );
    }

    #[test]
    fn temporal_text_is_kept() {
        for (dt, ct, t) in [
            ("date", "date", "2024-05-01"),
            ("date", "date", "0000-00-00"),
            ("time", "time", "-838:59:59"),
            ("time", "time(1)", "100:00:00.5"),
            ("time", "time(6)", "-00:00:00.000001"),
            ("datetime", "datetime(6)", "2024-05-01 12:30:00.123456"),
            ("datetime", "datetime(3)", "2024-05-01 12:30:00.120"),
            ("datetime", "datetime", "0000-00-00 00:00:00"),
            ("timestamp", "timestamp(6)", "2024-05-01 04:30:00.000001"),
        ] {
            assert_eq!(ok(dt, ct, None, t.as_bytes()), s(t), "{t}");
        }
    }

    #[test]
    fn epoch_micros_override() {
        let em = Some(ColumnType::EpochMicros);
        assert_eq!(ok("date", "date", em, b"1970-01-01"), Value::Integer(0));
        assert_eq!(
            ok("date", "date", em, b"1970-01-02"),
            Value::Integer(86_400_000_000)
        );
        assert_eq!(
            ok("date", "date", em, b"1969-12-31"),
            Value::Integer(-86_400_000_000)
        );
        assert_eq!(
            ok("datetime", "datetime(6)", em, b"2024-05-01 12:30:00.123456"),
            Value::Integer(1_714_566_600_123_456)
        );
        assert_eq!(
            ok("datetime", "datetime(3)", em, b"2024-05-01 12:30:00.120"),
            Value::Integer(1_714_566_600_120_000)
        );
        assert_eq!(
            ok("timestamp", "timestamp", em, b"2038-01-19 03:14:07"),
            Value::Integer(2_147_483_647_000_000)
        );
        assert_eq!(
            ok("datetime", "datetime", em, b"1000-01-01 00:00:00"),
            Value::Integer(-30_610_224_000_000_000)
        );
        assert_eq!(
            ok("datetime", "datetime(6)", em, b"9999-12-31 23:59:59.999999"),
            Value::Integer(253_402_300_799_999_999)
        );
        for zero in [&b"0000-00-00"[..], b"2024-00-10", b"2024-05-00"] {
            let e = conv("date", "date", em, zero).unwrap_err();
            assert!(e.reason.contains("zero date"), "{e}");
        }
        let e = conv("datetime", "datetime", em, b"0000-00-00 00:00:00").unwrap_err();
        assert!(e.reason.contains("zero date"), "{e}");
        for bad in [
            &b"2024-02-30"[..],
            b"2024-05-01 24:00:00",
            b"2024-05-01T12:00:00",
            b"x",
            b"2024-05-01 12:00:00.1234567",
        ] {
            assert!(
                conv("datetime", "datetime", em, bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn table() -> TableMapping {
        // source order: name(1) id(2) note(3) amount(4); key (id, name)
        let col = |name: &str, ord: u32, dt: &str, ct: &str, target: ColumnType| {
            let source = info(name, ord, dt, ct);
            ColumnMapping {
                family: crate::mapping::types::family(&source).unwrap(),
                source,
                target_name: format!("t_{name}"),
                target_type: target,
            }
        };
        TableMapping {
            source_schema: "db".into(),
            source_name: "orders".into(),
            target_name: "orders".into(),
            key: vec![
                col(
                    "id",
                    2,
                    "bigint",
                    "bigint(20) unsigned",
                    ColumnType::Integer,
                ),
                col("name", 1, "varchar", "varchar(2000)", ColumnType::String),
            ],
            attributes: vec![
                col("note", 3, "text", "text", ColumnType::String),
                col("amount", 4, "decimal", "decimal(10,2)", ColumnType::String),
            ],
            filter: None,
            row_estimate: 0,
            warnings: vec![],
        }
    }

    fn row(vals: &[Option<&[u8]>]) -> SourceRow {
        vals.iter().map(|v| v.map(|b| b.to_vec())).collect()
    }

    #[test]
    fn rows_put_and_update() {
        let m = table();
        assert_eq!(
            select_list(&m, &FloatPrecision::default()),
            ["`name`", "`id`", "`note`", "`amount`"]
        );
        let r = row(&[Some(b"bob"), Some(b"7"), None, Some(b"1.50")]);
        let put = to_put_row(&m, &r).unwrap();
        assert_eq!(
            put.primary_key,
            PrimaryKey::new().with("t_id", 7).with("t_name", "bob")
        );
        assert_eq!(put.cells, vec![Cell::new("t_amount", "1.50")]);
        let (pk, ops) = to_update_ops(&m, &r).unwrap();
        assert_eq!(pk, put.primary_key);
        assert_eq!(
            ops,
            vec![
                CellOp::DeleteAllVersions {
                    name: "t_note".into()
                },
                CellOp::Put(Cell::new("t_amount", "1.50")),
            ]
        );
        let conv = RowConverter::new(&m);
        assert!(matches!(
            conv.to_change(&r, WriteMode::OverwriteRow).unwrap(),
            RowChange::Put(_)
        ));
        assert!(matches!(
            conv.to_change(&r, WriteMode::UpdateRow).unwrap(),
            RowChange::Update { .. }
        ));
        assert_eq!(primary_key(&m, &r).unwrap(), put.primary_key);
    }

    #[test]
    fn update_row_of_only_nulls_puts_the_key_so_the_row_exists() {
        let m = table();
        let conv = RowConverter::new(&m);
        let r = row(&[Some(b"bob"), Some(b"7"), None, None]);
        match conv.to_change(&r, WriteMode::UpdateRow).unwrap() {
            RowChange::Put(put) => {
                assert_eq!(
                    put.primary_key,
                    PrimaryKey::new().with("t_id", 7).with("t_name", "bob")
                );
                assert!(put.cells.is_empty());
            }
            other => panic!("expected a key-only PutRow, got {other:?}"),
        }
    }

    #[test]
    fn encoded_change_is_the_encoding_of_to_change() {
        let m = table();
        let conv = RowConverter::new(&m);
        let rows = [
            row(&[Some(b"bob"), Some(b"7"), None, Some(b"1.50")]),
            row(&[Some("é😀".as_bytes()), Some(b"8"), Some(b"n"), None]),
            row(&[Some(b"bob"), Some(b"9"), None, None]),
        ];
        for r in &rows {
            for mode in [WriteMode::OverwriteRow, WriteMode::UpdateRow] {
                let expected = EncodedChange::new(&conv.to_change(r, mode).unwrap());
                assert_eq!(conv.encode_change(r, mode).unwrap(), expected, "{mode:?}");
            }
        }
        // Dirty values fail the same way.
        let bad = row(&[Some(b"bob"), Some(b"7"), Some(&[0xff, 0xfe]), None]);
        assert_eq!(
            conv.encode_change(&bad, WriteMode::UpdateRow).unwrap_err(),
            conv.to_change(&bad, WriteMode::UpdateRow).unwrap_err()
        );
    }

    #[test]
    fn key_problems_are_dirty_and_name_the_column() {
        let m = table();
        let e = to_put_row(&m, &row(&[Some(b"bob"), None, None, None])).unwrap_err();
        assert_eq!(e.column, "id");
        assert!(e.reason.contains("NULL"));
        let long = vec![b'x'; 1025];
        let e = to_put_row(&m, &row(&[Some(&long), Some(b"1"), None, None])).unwrap_err();
        assert_eq!(e.column, "name");
        assert!(e.reason.contains("1024"), "{e}");
        assert!(to_put_row(&m, &row(&[Some(&long[..1024]), Some(b"1"), None, None])).is_ok());
        let e = to_update_ops(
            &m,
            &row(&[Some(b"a"), Some(b"9223372036854775808"), None, None]),
        )
        .unwrap_err();
        assert_eq!(e.column, "id");
        let e = to_put_row(&m, &row(&[Some(b"a")])).unwrap_err();
        assert!(e.reason.contains("maps 4 columns"), "{e}");
        // attribute over 2 MB
        let big = vec![b'y'; 2 * 1024 * 1024 + 1];
        let e = to_put_row(&m, &row(&[Some(b"a"), Some(b"1"), Some(&big), None])).unwrap_err();
        assert_eq!(e.column, "note");
    }

    #[test]
    fn row_hash_is_canonical() {
        let pk = PrimaryKey::new().with("id", 1).with("k", "a");
        let a = Row {
            primary_key: pk.clone(),
            cells: vec![Cell::new("x", 1i64), Cell::new("y", "s")],
        };
        // read back: other cell order, timestamps, an older version after the newest
        let b = Row {
            primary_key: pk.clone(),
            cells: vec![
                Cell::new("y", "s").at(5),
                Cell::new("x", 1i64).at(9),
                Cell::new("x", 2i64).at(1),
            ],
        };
        assert_eq!(row_hash(&a), row_hash(&b));
        let differ = [
            Row {
                primary_key: pk.clone(),
                cells: vec![Cell::new("x", 2i64), Cell::new("y", "s")],
            },
            Row {
                primary_key: pk.clone(),
                cells: vec![Cell::new("x", "1"), Cell::new("y", "s")],
            },
            Row {
                primary_key: pk.clone(),
                cells: vec![Cell::new("x", 1.0f64), Cell::new("y", "s")],
            },
            Row {
                primary_key: pk.clone(),
                cells: vec![Cell::new("x", 1i64)],
            },
            Row {
                primary_key: pk.clone(),
                cells: vec![Cell::new("x", 1i64), Cell::new("y", b"s".to_vec())],
            },
            Row {
                primary_key: PrimaryKey::new().with("id", 2).with("k", "a"),
                cells: a.cells.clone(),
            },
            Row {
                primary_key: PrimaryKey::new().with("id", 1).with("k", b"a".to_vec()),
                cells: a.cells.clone(),
            },
            // moving bytes between name and value must not collide
            Row {
                primary_key: pk.clone(),
                cells: vec![Cell::new("x", 1i64), Cell::new("ys", "")],
            },
        ];
        for d in &differ {
            assert_ne!(row_hash(&a), row_hash(d), "{d:?}");
        }
        assert_ne!(
            row_hash(&Row {
                primary_key: pk.clone(),
                cells: vec![Cell::new("d", 0.0f64)]
            }),
            row_hash(&Row {
                primary_key: pk,
                cells: vec![Cell::new("d", -0.0f64)]
            })
        );
    }
}
