//! One conversion contract for both phases (design §4): a binlog value becomes exactly the bytes
//! the text protocol delivers for the same value to the full copy's reading session (utf8mb4,
//! `time_zone='+00:00'`), so `mapping` converts binlog rows with the same code, to the same
//! Tablestore bytes, as copied rows. Why this direction and not a typed value for both: the copy
//! reads text at ~300k rows/s and its converter is tuned for it; a binlog row is rendered once
//! per change, which costs far less than the network read it came from.
//!
//! Per type (the column's real type and metadata from the table map):
//! integers as decimal text (unsigned by the signedness metadata); YEAR four digits (`0000`
//! stays zero: mysql_common reads it as 1900); FLOAT and DOUBLE as the shortest text that
//! parses back to the same double (the copy selects them as `col * 1e0`, which prints the same
//! double); DECIMAL as the server's exact text; DATE, DATETIME and TIME with the column's
//! fraction digits (TIME signed and past 24 h); TIMESTAMP, logged as UTC epoch seconds, as UTC
//! text; character data decoded from the column's charset to UTF-8 (latin1 is cp1252 in MySQL);
//! BINARY(n) padded back to n bytes with zeros (the binlog drops trailing zeros); ENUM by label,
//! SET by its members comma-joined; BIT as its bytes; BLOB, GEOMETRY and MariaDB's JSON (text)
//! as stored; MySQL's binary JSON as the text MySQL prints for it ([`super::json_text`]). A
//! partial JSON update (`binlog_row_value_options=PARTIAL_JSON`) is refused: it holds only
//! the change, not the document.

use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value;
use mysql_common::collations::{Collation, CollationId};

use super::decoder::Image;
use super::json_text;
use super::table::{ColumnMeta, TableMeta};
use crate::mysql::chunk_reader::SourceRow;

/// The text-protocol bytes of one binlog value (`None` for NULL).
pub fn render(value: &BinlogValue<'_>, col: &ColumnMeta) -> Result<Option<Vec<u8>>, String> {
    let v = match value {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => return json_text::print(j).map(Some).map_err(|e| e.to_string()),
        BinlogValue::JsonDiff(_) => {
            return Err("a partial JSON update (binlog_row_value_options=PARTIAL_JSON)".into());
        }
    };
    if let Value::NULL = v {
        return Ok(None);
    }
    use ColumnType::*;
    let out = match col.column_type {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG => integer(v, col)?.into_bytes(),
        MYSQL_TYPE_YEAR => year(v)?.into_bytes(),
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => match v {
            Value::Float(f) => shortest(f64::from(*f)).into_bytes(),
            Value::Double(d) => shortest(*d).into_bytes(),
            other => return Err(unexpected("a FLOAT/DOUBLE", other)),
        },
        MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL => bytes(v)?.to_vec(),
        MYSQL_TYPE_NEWDATE | MYSQL_TYPE_DATE => match v {
            Value::Date(y, m, d, ..) => format!("{y:04}-{m:02}-{d:02}").into_bytes(),
            other => return Err(unexpected("a DATE", other)),
        },
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => match v {
            Value::Date(y, mo, d, h, mi, s, us) => {
                let mut t = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
                fraction(&mut t, *us, fsp(col));
                t.into_bytes()
            }
            other => return Err(unexpected("a DATETIME", other)),
        },
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => {
            timestamp(bytes(v)?, fsp(col))?.into_bytes()
        }
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => match v {
            Value::Time(neg, days, h, m, s, us) => {
                let hours = u64::from(*days) * 24 + u64::from(*h);
                let sign = if *neg { "-" } else { "" };
                let mut t = format!("{sign}{hours:02}:{m:02}:{s:02}");
                fraction(&mut t, *us, fsp(col));
                t.into_bytes()
            }
            other => return Err(unexpected("a TIME", other)),
        },
        MYSQL_TYPE_ENUM => {
            let index = match v {
                Value::Int(i) => *i,
                other => return Err(unexpected("an ENUM", other)),
            };
            let labels = labels(col)?;
            match usize::try_from(index) {
                // Index 0 is the empty string MySQL stores for an invalid value.
                Ok(0) => Vec::new(),
                Ok(i) if i <= labels.len() => decode(&labels[i - 1], col)?,
                _ => return Err(format!("ENUM index {index} out of range")),
            }
        }
        MYSQL_TYPE_SET => {
            let mask = bytes(v)?;
            let labels = labels(col)?;
            let mut out = Vec::new();
            for (i, label) in labels.iter().enumerate() {
                if mask.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0) {
                    if !out.is_empty() {
                        out.push(b',');
                    }
                    out.extend_from_slice(&decode(label, col)?);
                }
            }
            out
        }
        MYSQL_TYPE_BIT => bytes(v)?.to_vec(),
        MYSQL_TYPE_STRING => {
            let raw = bytes(v)?;
            if is_binary(col) {
                // BINARY(n): the binlog drops trailing zero bytes; the column holds n bytes.
                let mut padded = raw.to_vec();
                let width = string_width(col);
                if padded.len() < width {
                    padded.resize(width, 0);
                }
                padded
            } else {
                decode(raw, col)?
            }
        }
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB => {
            let raw = bytes(v)?;
            if is_binary(col) {
                raw.to_vec()
            } else {
                decode(raw, col)?
            }
        }
        MYSQL_TYPE_GEOMETRY => bytes(v)?.to_vec(),
        // A JSON column's raw binary JSON (mysql_common normally hands it over decoded).
        MYSQL_TYPE_JSON => json_text::print_bytes(bytes(v)?).map_err(|e| e.to_string())?,
        other => return Err(format!("column type {other:?} is not supported")),
    };
    Ok(Some(out))
}

/// Why a binlog row cannot become a text row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowError {
    /// The event cannot be mapped at all (no column names, a partial image): a configuration
    /// problem of the source, never dirty data.
    Structure(String),
    /// One value cannot be rendered (dirty data, by the migration's policy).
    Value { column: String, reason: String },
}

/// Where each of `columns` (by name) sits in `table`'s images: `None` for a column the table
/// map does not have (added by a later ALTER, so absent when the row was written: NULL).
/// Worked out once per table map, not per row.
pub fn layout(table: &TableMeta, columns: &[&str]) -> Result<Vec<Option<usize>>, RowError> {
    if !table.has_names {
        return Err(RowError::Structure(format!(
            "the binlog's table map of {} has no column names: set binlog_row_metadata=FULL on \
             the source (MariaDB 10.5+, MySQL 8.0.1+) and start a full migration again",
            table.qualified_name()
        )));
    }
    Ok(columns
        .iter()
        .map(|name| {
            table
                .columns
                .iter()
                .position(|c| c.name.as_deref() == Some(*name))
        })
        .collect())
}

/// The text-protocol row of `columns` (by name, in that order) from a binlog image, as the
/// full copy reads it; see [`layout`] and [`text_row_at`].
pub fn text_row(image: &Image, table: &TableMeta, columns: &[&str]) -> Result<SourceRow, RowError> {
    text_row_at(image, table, &layout(table, columns)?, columns)
}

/// [`text_row`] with the layout worked out beforehand (`columns` only name errors).
pub fn text_row_at(
    image: &Image,
    table: &TableMeta,
    layout: &[Option<usize>],
    columns: &[&str],
) -> Result<SourceRow, RowError> {
    layout
        .iter()
        .zip(columns)
        .map(|(at, name)| {
            let Some(i) = *at else {
                return Ok(None);
            };
            let value = image.get(i).and_then(Option::as_ref).ok_or_else(|| {
                RowError::Structure(format!(
                    "column `{name}` of {} is missing from the row image: set \
                     binlog_row_image=FULL on the source and start a full migration again",
                    table.qualified_name()
                ))
            })?;
            let column = table.columns.get(i).ok_or_else(|| {
                RowError::Structure(format!("column `{name}` is outside the table map"))
            })?;
            render(value, column).map_err(|reason| RowError::Value {
                column: (*name).to_owned(),
                reason,
            })
        })
        .collect()
}

fn integer(v: &Value, col: &ColumnMeta) -> Result<String, String> {
    match v {
        Value::UInt(u) => Ok(u.to_string()),
        Value::Int(i) if col.unsigned && *i < 0 => {
            // Unsigned columns without signedness metadata read as negative: reinterpret.
            let bits = match col.column_type {
                ColumnType::MYSQL_TYPE_TINY => 8,
                ColumnType::MYSQL_TYPE_SHORT => 16,
                ColumnType::MYSQL_TYPE_INT24 => 24,
                ColumnType::MYSQL_TYPE_LONG => 32,
                _ => 64,
            };
            let u = (*i as u64) & (u64::MAX >> (64 - bits));
            Ok(u.to_string())
        }
        // mysql_common 0.37 reads a signed MEDIUMINT without sign extension (-1 arrives as
        // 16777215): a value in the upper half of 24 bits is negative.
        Value::Int(i) if col.column_type == ColumnType::MYSQL_TYPE_INT24 && *i >= 0x80_0000 => {
            Ok((i - 0x100_0000).to_string())
        }
        Value::Int(i) => Ok(i.to_string()),
        other => Err(unexpected("an integer", other)),
    }
}

fn year(v: &Value) -> Result<String, String> {
    let y: i64 = match v {
        Value::Int(i) => *i,
        Value::UInt(u) => i64::try_from(*u).map_err(|_| "YEAR out of range".to_owned())?,
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "YEAR is not a number".to_owned())?,
        other => return Err(unexpected("a YEAR", other)),
    };
    // The binlog stores YEAR as (year - 1900), 0 meaning 0000; mysql_common adds 1900 back.
    Ok(if y == 1900 || y == 0 {
        "0000".to_owned()
    } else {
        format!("{y:04}")
    })
}

/// The shortest decimal text that parses back to `d` (Rust's `Display` for f64 is exactly
/// that), with MySQL's spelling of a negative zero kept (`-0`).
fn shortest(d: f64) -> String {
    d.to_string()
}

fn bytes(v: &Value) -> Result<&[u8], String> {
    match v {
        Value::Bytes(b) => Ok(b),
        other => Err(unexpected("bytes", other)),
    }
}

fn unexpected(what: &str, v: &Value) -> String {
    let kind = match v {
        Value::NULL => "NULL",
        Value::Bytes(_) => "bytes",
        Value::Int(_) => "a signed integer",
        Value::UInt(_) => "an unsigned integer",
        Value::Float(_) => "a float",
        Value::Double(_) => "a double",
        Value::Date(..) => "a date",
        Value::Time(..) => "a time",
    };
    format!("expected {what} value, the binlog has {kind}")
}

/// Fraction digits of a temporal column (the table map's metadata byte; 0 when absent).
fn fsp(col: &ColumnMeta) -> u32 {
    col.metadata.first().map_or(0, |d| u32::from((*d).min(6)))
}

fn fraction(out: &mut String, micros: u32, digits: u32) {
    if digits > 0 {
        let text = format!("{micros:06}");
        out.push('.');
        out.push_str(&text[..digits as usize]);
    }
}

/// TIMESTAMP as logged (`seconds[.micros]` since the epoch, UTC) as the UTC text a
/// `time_zone='+00:00'` session prints.
fn timestamp(raw: &[u8], digits: u32) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "TIMESTAMP is not text".to_owned())?;
    let (secs, micros) = match text.split_once('.') {
        Some((s, f)) => (s, f),
        None => (text, "0"),
    };
    let secs: i64 = secs.parse().map_err(|_| "TIMESTAMP seconds".to_owned())?;
    let micros: u32 = format!("{micros:0<6}")
        .get(..6)
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| "TIMESTAMP fraction".to_owned())?;
    if secs == 0 && micros == 0 {
        let mut t = "0000-00-00 00:00:00".to_owned();
        fraction(&mut t, 0, digits);
        return Ok(t);
    }
    let at = time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| "TIMESTAMP out of range".to_owned())?;
    let mut t = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    fraction(&mut t, micros, digits);
    Ok(t)
}

fn labels(col: &ColumnMeta) -> Result<&[Vec<u8>], String> {
    col.labels.as_deref().ok_or_else(|| {
        "ENUM/SET labels are not in the binlog: set binlog_row_metadata=FULL on the source".into()
    })
}

fn charset(col: &ColumnMeta) -> Result<Collation<'static>, String> {
    let id = col.charset.ok_or_else(|| {
        "the column's charset is not in the binlog: set binlog_row_metadata=FULL on the source"
            .to_owned()
    })?;
    let c = Collation::resolve(CollationId::from(id));
    if c.id() == CollationId::UNKNOWN_COLLATION_ID {
        return Err(format!("unknown collation id {id}"));
    }
    Ok(c)
}

fn is_binary(col: &ColumnMeta) -> bool {
    charset(col).is_ok_and(|c| c.charset() == "binary")
}

/// The byte width of a CHAR/BINARY column (the table map's two-byte metadata).
fn string_width(col: &ColumnMeta) -> usize {
    match col.metadata.as_slice() {
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

/// Character data in the column's charset as UTF-8, as a utf8mb4 session receives it.
fn decode(raw: &[u8], col: &ColumnMeta) -> Result<Vec<u8>, String> {
    let c = charset(col)?;
    match c.charset() {
        "utf8mb4" | "utf8mb3" | "utf8" | "ascii" => match std::str::from_utf8(raw) {
            Ok(_) => Ok(raw.to_vec()),
            Err(_) => Err(format!("text is not valid {}", c.charset())),
        },
        "binary" => Ok(raw.to_vec()),
        "latin1" => Ok(latin1_to_utf8(raw).into_bytes()),
        other => Err(format!(
            "charset {other} is not decoded from the binlog yet; convert the column to utf8mb4"
        )),
    }
}

/// MySQL's latin1 is Windows-1252, with the five bytes 1252 leaves undefined mapped to the C1
/// control of the same number.
fn latin1_to_utf8(raw: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    raw.iter()
        .map(|&b| match b {
            0x80..=0x9F => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(t: ColumnType, metadata: &[u8]) -> ColumnMeta {
        ColumnMeta {
            name: Some("c".into()),
            column_type: t,
            metadata: metadata.to_vec(),
            unsigned: false,
            charset: Some(45),
            labels: None,
            visible: true,
        }
    }

    fn text(v: Value, c: &ColumnMeta) -> String {
        let out = render(&BinlogValue::Value(v), c).unwrap().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn temporal_values_print_with_the_columns_fraction_digits() {
        let dt = col(ColumnType::MYSQL_TYPE_DATETIME2, &[3]);
        assert_eq!(
            text(Value::Date(2024, 2, 29, 23, 59, 59, 123456), &dt),
            "2024-02-29 23:59:59.123"
        );
        let t = col(ColumnType::MYSQL_TYPE_TIME2, &[0]);
        assert_eq!(text(Value::Time(true, 34, 22, 59, 59, 0), &t), "-838:59:59");
        let ts = col(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[6]);
        assert_eq!(
            text(Value::Bytes(b"2147483647.999999".to_vec()), &ts),
            "2038-01-19 03:14:07.999999"
        );
        assert_eq!(
            text(
                Value::Bytes(b"0".to_vec()),
                &col(ColumnType::MYSQL_TYPE_TIMESTAMP2, &[0])
            ),
            "0000-00-00 00:00:00"
        );
        let y = col(ColumnType::MYSQL_TYPE_YEAR, &[]);
        assert_eq!(text(Value::Bytes(b"1900".to_vec()), &y), "0000");
        assert_eq!(text(Value::Bytes(b"2155".to_vec()), &y), "2155");
    }

    #[test]
    fn unsigned_integers_are_reinterpreted_by_width_when_logged_signed() {
        let mut c = col(ColumnType::MYSQL_TYPE_LONG, &[]);
        c.unsigned = true;
        assert_eq!(text(Value::Int(-1), &c), "4294967295");
        assert_eq!(text(Value::UInt(u64::MAX), &c), "18446744073709551615");
        c.unsigned = false;
        assert_eq!(text(Value::Int(-1), &c), "-1");
        let m = col(ColumnType::MYSQL_TYPE_INT24, &[]);
        assert_eq!(text(Value::Int(0x80_0000), &m), "-8388608");
        assert_eq!(text(Value::Int(0xFF_FFFF), &m), "-1");
        assert_eq!(text(Value::Int(-5), &m), "-5");
        assert_eq!(text(Value::Int(8_388_607), &m), "8388607");
    }

    #[test]
    fn enum_set_latin1_and_binary_padding() {
        let mut e = col(ColumnType::MYSQL_TYPE_ENUM, &[247, 1]);
        e.labels = Some(vec![b"small".to_vec(), b"medium".to_vec()]);
        assert_eq!(text(Value::Int(2), &e), "medium");
        assert_eq!(text(Value::Int(0), &e), "");
        let mut s = col(ColumnType::MYSQL_TYPE_SET, &[248, 1]);
        s.labels = Some(vec![
            b"a".to_vec(),
            b"b".to_vec(),
            b"c".to_vec(),
            b"d".to_vec(),
        ]);
        assert_eq!(text(Value::Bytes(vec![0x0d]), &s), "a,c,d");
        let mut l = col(ColumnType::MYSQL_TYPE_STRING, &[254, 10]);
        l.charset = Some(8); // latin1_swedish_ci
        assert_eq!(text(Value::Bytes(b"caf\xe9 \x80".to_vec()), &l), "café €");
        let mut b = col(ColumnType::MYSQL_TYPE_STRING, &[254, 4]);
        b.charset = Some(63);
        let out = render(&BinlogValue::Value(Value::Bytes(vec![1, 2])), &b)
            .unwrap()
            .unwrap();
        assert_eq!(out, vec![1, 2, 0, 0]);
    }

    #[test]
    fn doubles_round_trip_and_binary_json_prints_as_mysql_does() {
        let f = col(ColumnType::MYSQL_TYPE_FLOAT, &[4]);
        let s = text(Value::Float(0.1), &f);
        assert_eq!(s.parse::<f64>().unwrap(), f64::from(0.1f32));
        let d = col(ColumnType::MYSQL_TYPE_DOUBLE, &[8]);
        assert_eq!(
            text(Value::Double(1.7976931348623157e308), &d)
                .parse::<f64>()
                .unwrap(),
            1.7976931348623157e308
        );
        let json = col(ColumnType::MYSQL_TYPE_JSON, &[4]);
        // `{}` is not binary JSON (0x7b is no type byte): an error, never a guess.
        assert!(render(&BinlogValue::Value(Value::Bytes(b"{}".to_vec())), &json).is_err());
        // [1, "a"] in the small-array format.
        let raw: &[u8] = &[2, 2, 0, 12, 0, 5, 1, 0, 12, 10, 0, 1, b'a'];
        assert_eq!(text(Value::Bytes(raw.to_vec()), &json), "[1, \"a\"]");
        let decoded = mysql_common::io::ParseBuf(raw).parse(()).unwrap();
        let out = render(&BinlogValue::Jsonb(decoded), &json)
            .unwrap()
            .unwrap();
        assert_eq!(out, b"[1, \"a\"]");
    }
}
