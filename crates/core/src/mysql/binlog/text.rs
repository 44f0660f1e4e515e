//! One conversion contract for both phases (design §4): a binlog value becomes exactly the bytes
//! the text protocol delivers for the same value to the full copy's reading session (utf8mb4,
//! `time_zone='+00:00'`), so `mapping` converts binlog rows with the same code, to the same
//! Tablestore bytes, as copied rows. Why this direction and not a typed value for both: the copy
//! reads text at ~300k rows/s and its converter is tuned for it; a binlog row is rendered once
//! per change, which costs far less than the network read it came from.
//!
//! Each type's binary layout in a row image is read here (the image only knows where a value
//! lies, [`super::image`]). Per type (the column's real type and metadata from the table map):
//! integers as decimal text (little-endian, unsigned by the signedness metadata); YEAR four
//! digits (`0000` stays zero); FLOAT and DOUBLE as the shortest text that
//! parses back to the same double (the copy selects them as `col * 1e0`, which prints the same
//! double); DECIMAL as the server's exact text; DATE, DATETIME and TIME with the column's
//! fraction digits (TIME signed and past 24 h, negative fractions included); TIMESTAMP, logged as UTC epoch seconds, as UTC
//! text; character data decoded from the column's charset to UTF-8 ([`super::charsets`]);
//! BINARY(n) padded back to n bytes with zeros (the binlog drops trailing zeros); ENUM by label,
//! SET by its members comma-joined; BIT as its bytes; BLOB, GEOMETRY and MariaDB's JSON (text)
//! as stored; MySQL's binary JSON as the text MySQL prints for it ([`super::json_text`]). A
//! partial JSON update (`binlog_row_value_options=PARTIAL_JSON`) is refused: it holds only
//! the change, not the document.

use mysql_async::consts::ColumnType;

use super::charsets;
use super::image::{self, Image, Value, DIGIT_BYTES};
use super::json_text;
use super::table::{ColumnMeta, TableMeta};
use crate::mysql::chunk_reader::SourceRow;

/// The text-protocol bytes of one binlog value (`None` for NULL), from the bytes the row
/// image holds for it (see [`Image::get`]) and its column's type and metadata.
pub fn render(value: Value<'_>, col: &ColumnMeta) -> Result<Option<Vec<u8>>, String> {
    let raw = match value {
        Value::Null => return Ok(None),
        Value::Bytes(b) => b,
    };
    use ColumnType::*;
    let out = match col.column_type {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG => integer(raw, col.unsigned)?,
        MYSQL_TYPE_YEAR => match fixed::<1>(raw)? {
            // The binlog stores YEAR as (year - 1900), 0 meaning 0000.
            [0] => b"0000".to_vec(),
            [y] => (1900 + u32::from(y)).to_string().into_bytes(),
        },
        MYSQL_TYPE_FLOAT => shortest(f64::from(f32::from_le_bytes(fixed(raw)?))),
        MYSQL_TYPE_DOUBLE => shortest(f64::from_le_bytes(fixed(raw)?)),
        MYSQL_TYPE_NEWDECIMAL => decimal(raw, meta_byte(col, 0), meta_byte(col, 1))?,
        MYSQL_TYPE_NEWDATE => {
            let v = le(&fixed::<3>(raw)?);
            let mut t = Vec::with_capacity(10);
            date(
                &mut t,
                (v >> 9) as u32,
                (v >> 5 & 15) as u32,
                (v & 31) as u32,
            );
            t
        }
        MYSQL_TYPE_DATETIME2 => datetime2(raw, fsp(col))?,
        MYSQL_TYPE_TIMESTAMP2 => {
            let secs = be(raw.get(..4).ok_or_else(short)?);
            let micros = fraction_micros(raw.get(4..).ok_or_else(short)?, fsp(col))?;
            timestamp(secs, micros, fsp(col))
        }
        MYSQL_TYPE_TIME2 => time2(raw, fsp(col))?,
        // The pre-5.6 temporal formats (tables created before MySQL 5.6 / MariaDB 10.0).
        MYSQL_TYPE_TIMESTAMP => timestamp(le(&fixed::<4>(raw)?), 0, 0),
        MYSQL_TYPE_DATETIME => {
            let v = u64::from_le_bytes(fixed(raw)?);
            let (d, t) = (v / 1_000_000, v % 1_000_000);
            let mut out = Vec::with_capacity(19);
            date(
                &mut out,
                (d / 10_000) as u32,
                (d / 100 % 100) as u32,
                (d % 100) as u32,
            );
            out.push(b' ');
            clock(
                &mut out,
                t / 10_000,
                (t / 100 % 100) as u32,
                (t % 100) as u32,
            );
            out
        }
        MYSQL_TYPE_TIME => {
            // HHMMSS as a signed 24-bit integer.
            let v = le(&fixed::<3>(raw)?) as i32;
            let v = (v << 8) >> 8;
            let mut out = Vec::with_capacity(10);
            if v < 0 {
                out.push(b'-');
            }
            let v = v.unsigned_abs();
            clock(&mut out, u64::from(v / 10_000), v / 100 % 100, v % 100);
            out
        }
        MYSQL_TYPE_ENUM => {
            let index = le(raw) as usize;
            let labels = labels(col)?;
            match index {
                // Index 0 is the empty string MySQL stores for an invalid value.
                0 => Vec::new(),
                i if raw.len() <= 2 && i <= labels.len() => decode(&labels[i - 1], col)?,
                _ => return Err(format!("ENUM index {index} out of range")),
            }
        }
        MYSQL_TYPE_SET => {
            let labels = labels(col)?;
            let mut out = Vec::new();
            for (i, label) in labels.iter().enumerate() {
                if raw.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0) {
                    if !out.is_empty() {
                        out.push(b',');
                    }
                    out.extend_from_slice(&decode(label, col)?);
                }
            }
            out
        }
        MYSQL_TYPE_BIT => raw.to_vec(),
        MYSQL_TYPE_STRING => {
            if is_binary(col) {
                // BINARY(n): the binlog drops trailing zero bytes; the column holds n bytes.
                let mut padded = raw.to_vec();
                let width = image::string_width(&col.metadata);
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
            if is_binary(col) {
                raw.to_vec()
            } else {
                decode(raw, col)?
            }
        }
        MYSQL_TYPE_GEOMETRY => raw.to_vec(),
        // MySQL's binary JSON (MariaDB logs JSON as a BLOB of text).
        MYSQL_TYPE_JSON => json_text::print_bytes(raw).map_err(|e| e.to_string())?,
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
            let value = image.get(i).ok_or_else(|| {
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

/// A fixed-width value's bytes (the image reader already sized it; this guards direct callers).
fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], String> {
    raw.try_into()
        .map_err(|_| format!("a {N}-byte value of {} bytes", raw.len()))
}

fn short() -> String {
    "a value shorter than its type".to_owned()
}

/// Little-endian unsigned integer of up to 8 bytes.
fn le(raw: &[u8]) -> u64 {
    raw.iter().rev().fold(0, |acc, b| acc << 8 | u64::from(*b))
}

/// Big-endian unsigned integer of up to 8 bytes.
fn be(raw: &[u8]) -> u64 {
    raw.iter().fold(0, |acc, b| acc << 8 | u64::from(*b))
}

fn meta_byte(col: &ColumnMeta, i: usize) -> usize {
    col.metadata.get(i).map_or(0, |b| usize::from(*b))
}

/// A little-endian integer of 1, 2, 3, 4 or 8 bytes, sign-extended unless `unsigned`.
fn integer(raw: &[u8], unsigned: bool) -> Result<Vec<u8>, String> {
    if !matches!(raw.len(), 1..=4 | 8) {
        return Err(format!("an integer of {} bytes", raw.len()));
    }
    let v = le(raw);
    let mut out = Vec::with_capacity(20);
    if unsigned {
        digits(&mut out, v, 1);
    } else {
        let shift = 64 - 8 * raw.len() as u32;
        let v = (v << shift) as i64 >> shift;
        if v < 0 {
            out.push(b'-');
        }
        digits(&mut out, v.unsigned_abs(), 1);
    }
    Ok(out)
}

/// The shortest decimal text that parses back to `d` (Rust's `Display` for f64 is exactly
/// that), with MySQL's spelling of a negative zero kept (`-0`).
fn shortest(d: f64) -> Vec<u8> {
    d.to_string().into_bytes()
}

/// DECIMAL(precision, scale) in MySQL's binary form as the server prints it: base-10⁹
/// groups, big-endian, each side of the point on its own (a leading or trailing group of
/// fewer digits takes fewer bytes); the first bit flipped, all bits flipped when negative.
fn decimal(raw: &[u8], precision: usize, scale: usize) -> Result<Vec<u8>, String> {
    if scale > precision || precision > 65 || raw.len() != image::decimal_bytes(precision, scale) {
        return Err(format!(
            "a DECIMAL({precision},{scale}) value of {} bytes",
            raw.len()
        ));
    }
    let Some(first) = raw.first() else {
        return Ok(b"0".to_vec());
    };
    let negative = first & 0x80 == 0;
    let mask = if negative { 0xFF } else { 0 };
    let mut buf = [0u8; 32];
    let bytes = buf.get_mut(..raw.len()).ok_or_else(short)?;
    for (o, b) in bytes.iter_mut().zip(raw) {
        *o = b ^ mask;
    }
    bytes[0] ^= 0x80;
    let int = precision - scale;
    // Digit groups in order: (digits, bytes).
    let mut groups = [(0usize, 0usize); 16];
    let mut n = 0;
    let lead = (!int.is_multiple_of(9)).then_some(int % 9);
    let trail = (!scale.is_multiple_of(9)).then_some(scale % 9);
    let int_digits = lead.into_iter().chain(std::iter::repeat_n(9, int / 9));
    let frac_digits = std::iter::repeat_n(9, scale / 9).chain(trail);
    let mut int_groups = 0;
    for (k, d) in int_digits
        .map(|d| (0, d))
        .chain(frac_digits.map(|d| (1, d)))
    {
        // At most 8 integer and 4 fraction groups (65 digits, scale 30 at most).
        let slot = groups.get_mut(n).ok_or_else(short)?;
        *slot = (d, DIGIT_BYTES[d]);
        n += 1;
        if k == 0 {
            int_groups = n;
        }
    }
    let mut text = Vec::with_capacity(precision + 3);
    let mut at = 0;
    let mut nonzero = false;
    for (g, &(count, width)) in groups.iter().take(n).enumerate() {
        let v = be(bytes.get(at..at + width).ok_or_else(short)?);
        at += width;
        if v >= 10u64.pow(count as u32) {
            return Err(format!("a DECIMAL digit group {v} over {count} digits"));
        }
        nonzero |= v != 0;
        if g == int_groups {
            if text.is_empty() {
                text.push(b'0');
            }
            text.push(b'.');
        }
        if g < int_groups && text.is_empty() {
            // Leading zeros of the integer part are not printed.
            if v != 0 {
                digits(&mut text, v, 1);
            }
        } else {
            digits(&mut text, v, count);
        }
    }
    if text.is_empty() || text[0] == b'.' {
        text.insert(0, b'0');
    }
    if negative && nonzero {
        text.insert(0, b'-');
    }
    Ok(text)
}

/// Fraction digits of a temporal column (the table map's metadata byte; 0 when absent).
fn fsp(col: &ColumnMeta) -> u32 {
    col.metadata.first().map_or(0, |d| u32::from((*d).min(6)))
}

/// The microseconds of a DATETIME2/TIMESTAMP2 fraction: big-endian, in hundredths (1 byte),
/// ten-thousandths (2 bytes) or microseconds (3 bytes).
fn fraction_micros(raw: &[u8], fsp: u32) -> Result<u32, String> {
    if raw.len() != image::frac_bytes(fsp as usize) {
        return Err(short());
    }
    let v = be(raw) as u32;
    Ok(match raw.len() {
        1 => v * 10_000,
        2 => v * 100,
        _ => v,
    })
}

fn digits(out: &mut Vec<u8>, v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    out.extend_from_slice(&buf[start..]);
}

fn date(out: &mut Vec<u8>, y: u32, m: u32, d: u32) {
    digits(out, u64::from(y), 4);
    out.push(b'-');
    digits(out, u64::from(m), 2);
    out.push(b'-');
    digits(out, u64::from(d), 2);
}

fn clock(out: &mut Vec<u8>, h: u64, m: u32, s: u32) {
    digits(out, h, 2);
    out.push(b':');
    digits(out, u64::from(m), 2);
    out.push(b':');
    digits(out, u64::from(s), 2);
}

fn fraction(out: &mut Vec<u8>, micros: u32, fsp: u32) {
    if fsp > 0 {
        out.push(b'.');
        let mut buf = Vec::with_capacity(6);
        digits(&mut buf, u64::from(micros % 1_000_000), 6);
        out.extend_from_slice(&buf[..fsp.min(6) as usize]);
    }
}

/// DATETIME2: 40 bits big-endian, offset by 2^39: year*13+month (17 bits), day (5), hour (5),
/// minute (6), second (6); then the fraction.
fn datetime2(raw: &[u8], fsp: u32) -> Result<Vec<u8>, String> {
    let int = be(raw.get(..5).ok_or_else(short)?);
    let micros = fraction_micros(raw.get(5..).ok_or_else(short)?, fsp)?;
    let packed = int
        .checked_sub(0x80_0000_0000)
        .ok_or_else(|| "a negative DATETIME".to_owned())?;
    let ymd = packed >> 17;
    let ym = ymd >> 5;
    let hms = packed & 0x1_FFFF;
    let mut out = Vec::with_capacity(26);
    date(
        &mut out,
        (ym / 13) as u32,
        (ym % 13) as u32,
        (ymd & 31) as u32,
    );
    out.push(b' ');
    clock(
        &mut out,
        hms >> 12,
        (hms >> 6 & 63) as u32,
        (hms & 63) as u32,
    );
    fraction(&mut out, micros, fsp);
    Ok(out)
}

/// TIME2: 24 bits big-endian, offset by 2^23: sign, hour (10 bits), minute (6), second (6);
/// then the fraction. MySQL's `my_time_packed_from_binary`: a negative value with a fraction
/// is stored as the next integer down plus a positive complement fraction, so the two parts
/// are put together as one signed count of microseconds before the sign is taken.
fn time2(raw: &[u8], fsp: u32) -> Result<Vec<u8>, String> {
    let int = be(raw.get(..3).ok_or_else(short)?) as i64 - 0x80_0000;
    let frac = raw.get(3..).ok_or_else(short)?;
    if frac.len() != image::frac_bytes(fsp as usize) {
        return Err(short());
    }
    // The packed form: int part << 24 plus a signed fraction in microseconds.
    let packed: i64 = match frac.len() {
        0 => int << 24,
        1 | 2 => {
            let (f, unit, full) = if frac.len() == 1 {
                (be(frac) as i64, 10_000, 0x100)
            } else {
                (be(frac) as i64, 100, 0x1_0000)
            };
            if int < 0 && f != 0 {
                ((int + 1) << 24) + (f - full) * unit
            } else {
                (int << 24) + f * unit
            }
        }
        // 5-6 digits: 48 bits offset by 2^47 are already the packed form.
        _ => be(raw.get(..6).ok_or_else(short)?) as i64 - 0x8000_0000_0000,
    };
    let negative = packed < 0;
    let abs = packed.unsigned_abs();
    let hms = abs >> 24;
    let micros = (abs & 0xFF_FFFF) as u32;
    if micros > 999_999 {
        return Err(format!("a TIME fraction of {micros} microseconds"));
    }
    let mut out = Vec::with_capacity(18);
    if negative {
        out.push(b'-');
    }
    clock(
        &mut out,
        hms >> 12 & 0x3FF,
        (hms >> 6 & 63) as u32,
        (hms & 63) as u32,
    );
    fraction(&mut out, micros, fsp);
    Ok(out)
}

/// TIMESTAMP (UTC epoch seconds as logged) as the UTC text a `time_zone='+00:00'` session
/// prints; 0 is the zero timestamp.
fn timestamp(secs: u64, micros: u32, fsp: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(26);
    if secs == 0 && micros == 0 {
        out.extend_from_slice(b"0000-00-00 00:00:00");
    } else {
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let s = secs % 86_400;
        date(&mut out, y as u32, m, d);
        out.push(b' ');
        clock(&mut out, s / 3600, (s / 60 % 60) as u32, (s % 60) as u32);
    }
    fraction(&mut out, micros, fsp);
    out
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn labels(col: &ColumnMeta) -> Result<&[Vec<u8>], String> {
    col.labels.as_deref().ok_or_else(|| {
        "ENUM/SET labels are not in the binlog: set binlog_row_metadata=FULL on the source".into()
    })
}

fn charset(col: &ColumnMeta) -> Result<&'static str, String> {
    let id = col.charset.ok_or_else(|| {
        "the column's charset is not in the binlog: set binlog_row_metadata=FULL on the source"
            .to_owned()
    })?;
    charsets::of_collation(id).ok_or_else(|| {
        format!(
            "collation id {id} is not known to the binlog reader; convert the column to a \
             utf8mb4 collation such as utf8mb4_general_ci"
        )
    })
}

fn is_binary(col: &ColumnMeta) -> bool {
    charset(col).is_ok_and(|c| c == "binary")
}

/// Character data in the column's charset as UTF-8, as a utf8mb4 session receives it.
fn decode(raw: &[u8], col: &ColumnMeta) -> Result<Vec<u8>, String> {
    charsets::to_utf8(charset(col)?, raw)
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
