//! MySQL's binary JSON (the binlog's form of a JSON column, `BinlogValue::Jsonb`) printed as
//! the text MySQL sends for `SELECT json_col` (`Json_wrapper::to_string`), so a binlog JSON
//! value reaches `mapping` as the same bytes the full copy read.
//!
//! MySQL's rules, read from its json_dom.cc / dtoa.cc / base64.cc:
//! - `{"k": v, "k2": v2}` and `[a, b]` (`": "` and `", "`), object members in stored order
//!   (the binary format sorts keys by length, then bytes); nesting past 100 levels is an error
//!   in MySQL too.
//! - strings quoted; `"` `\` and the controls `\b \t \n \f \r` escaped by letter, other bytes
//!   up to 0x1f as `\u00xx` (lowercase hex); everything else, UTF-8 included, as is.
//! - integers in decimal; doubles as `my_gcvt` prints them (the shortest round-trip digits,
//!   fixed notation from 1e-15 up to below 1e15 or while digits remain after the point, else
//!   `1.5e-16` / `1e15` / `1e300`), with `.0` appended when neither `.` nor `e` was printed
//!   (`1.0`, `-0.0`, `100000000000000.0`).
//! - opaque scalars: DECIMAL as the decimal with its scale's digits (`9.00`); DATE as
//!   `"2015-01-15"`; TIME, DATETIME and TIMESTAMP always with six fraction digits; an opaque
//!   VAR_STRING as a string; any other type as `"base64:typeNN:…"` (MIME base64, a newline every
//!   76 characters, escaped as `\n`).
//! - an empty (zero-length) value is `null`.
//!
//! The walk uses mysql_common's JSONB decoder under a panic guard (its parser can panic on
//! corrupt bytes from the network); malformed input is a [`JsonTextError`], never a guess.

use std::io;

use base64::Engine as _;
use mysql_common::binlog::jsonb::{Array, ComplexValue, Object, OpaqueValue, StorageFormat, Value};
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;

/// MySQL's JSON_DOCUMENT_MAX_DEPTH: it refuses to print a deeper document.
const MAX_DEPTH: usize = 100;

/// Why a binary JSON value has no MySQL text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonTextError {
    #[error("malformed binary JSON: {0}")]
    Malformed(String),
    #[error("binary JSON nested deeper than MySQL's {MAX_DEPTH} levels")]
    TooDeep,
    #[error("binary JSON holds a non-finite double")]
    NonFinite,
    #[error("binary JSON opaque {kind} is malformed: {reason}")]
    Opaque { kind: &'static str, reason: String },
    #[error("the binary JSON decoder panicked on corrupt bytes")]
    Panicked,
}

fn malformed(e: io::Error) -> JsonTextError {
    JsonTextError::Malformed(e.to_string())
}

/// The text MySQL prints for a decoded binary JSON value.
pub fn print(value: &Value<'_>) -> Result<Vec<u8>, JsonTextError> {
    super::file::guard(|| {
        let mut out = Vec::new();
        write(value, 0, &mut out).map(|()| out)
    })
    .map_err(|_| JsonTextError::Panicked)?
}

/// The text MySQL prints for a binary JSON value's raw bytes (a JSON column's payload).
pub fn print_bytes(raw: &[u8]) -> Result<Vec<u8>, JsonTextError> {
    // An empty value is JSON null in MySQL; mysql_common decodes it so too.
    let value = super::file::guard(|| ParseBuf(raw).parse::<Value<'_>>(()))
        .map_err(|_| JsonTextError::Panicked)?
        .map_err(malformed)?;
    print(&value)
}

fn write(v: &Value<'_>, depth: usize, out: &mut Vec<u8>) -> Result<(), JsonTextError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::I16(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::U16(u) => out.extend_from_slice(u.to_string().as_bytes()),
        Value::I32(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::U32(u) => out.extend_from_slice(u.to_string().as_bytes()),
        Value::I64(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::U64(u) => out.extend_from_slice(u.to_string().as_bytes()),
        Value::F64(d) => double(*d, out)?,
        Value::String(s) => quote(s.str_raw(), out),
        Value::SmallArray(a) => array(a, depth, out)?,
        Value::LargeArray(a) => array(a, depth, out)?,
        Value::SmallObject(o) => object(o, depth, out)?,
        Value::LargeObject(o) => object(o, depth, out)?,
        Value::Opaque(o) => opaque(o, out)?,
    }
    Ok(())
}

fn deeper(depth: usize) -> Result<usize, JsonTextError> {
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(JsonTextError::TooDeep);
    }
    Ok(depth)
}

fn array<T: StorageFormat>(
    a: &ComplexValue<'_, T, Array>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), JsonTextError> {
    let depth = deeper(depth)?;
    out.push(b'[');
    for (i, element) in a.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write(&element.map_err(malformed)?, depth, out)?;
    }
    out.push(b']');
    Ok(())
}

fn object<T: StorageFormat>(
    o: &ComplexValue<'_, T, Object>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), JsonTextError> {
    let depth = deeper(depth)?;
    out.push(b'{');
    for (i, member) in o.iter().enumerate() {
        let (key, value) = member.map_err(malformed)?;
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        quote(key.value_raw(), out);
        out.extend_from_slice(b": ");
        write(&value, depth, out)?;
    }
    out.push(b'}');
    Ok(())
}

/// A JSON string as MySQL's `double_quote` writes it.
fn quote(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    for &b in s {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A double as MySQL's `my_gcvt(d, MY_GCVT_ARG_DOUBLE, MY_GCVT_MAX_FIELD_WIDTH)` prints it,
/// plus JSON's `.0` for an integral-looking result. With that width dtoa yields the shortest
/// round-trip digits (Rust's `{:e}` digits) and the format choice reduces to: fixed for a
/// decimal-point position `decpt` (value = 0.DIGITS × 10^decpt) in -14..=15 or inside the
/// digits, else exponent.
fn double(d: f64, out: &mut Vec<u8>) -> Result<(), JsonTextError> {
    if !d.is_finite() {
        return Err(JsonTextError::NonFinite);
    }
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').ok_or(JsonTextError::NonFinite)?;
    let exp: i32 = exp.parse().map_err(|_| JsonTextError::NonFinite)?;
    let digits: Vec<u8> = mantissa.bytes().filter(|c| *c != b'.').collect();
    let len = digits.len() as i32;
    let decpt = exp + 1;
    let start = out.len();
    if d.is_sign_negative() {
        out.push(b'-');
    }
    if (-14..=15).contains(&decpt) || (decpt > 0 && decpt < len) {
        if decpt <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', decpt.unsigned_abs() as usize));
            out.extend_from_slice(&digits);
        } else if decpt < len {
            let (int, frac) = digits.split_at(decpt as usize);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(frac);
        } else {
            out.extend_from_slice(&digits);
            out.extend(std::iter::repeat_n(b'0', (decpt - len) as usize));
        }
    } else {
        out.push(digits[0]);
        if len > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.extend_from_slice((decpt - 1).to_string().as_bytes());
    }
    if !out[start..].iter().any(|c| *c == b'.' || *c == b'e') {
        out.extend_from_slice(b".0");
    }
    Ok(())
}

fn opaque(o: &OpaqueValue<'_>, out: &mut Vec<u8>) -> Result<(), JsonTextError> {
    let data = o.data_raw();
    match o.value_type() {
        ColumnType::MYSQL_TYPE_NEWDECIMAL => decimal(data, out)?,
        ColumnType::MYSQL_TYPE_DATE => {
            let t = packed(data, "DATE")?;
            let (y, mo, d, ..) = datetime(t, "DATE")?;
            quote(format!("{y:04}-{mo:02}-{d:02}").as_bytes(), out);
        }
        ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_TIMESTAMP => {
            let t = packed(data, "DATETIME")?;
            let (y, mo, d, h, mi, s, us) = datetime(t, "DATETIME")?;
            let text = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}");
            quote(text.as_bytes(), out);
        }
        ColumnType::MYSQL_TYPE_TIME => {
            let t = packed(data, "TIME")?;
            quote(time(t)?.as_bytes(), out);
        }
        // MySQL prints strings kept as opaque VAR_STRING as plain JSON strings.
        ColumnType::MYSQL_TYPE_VAR_STRING => quote(data, out),
        other => {
            let mut text = format!("base64:type{}:", other as u8);
            let encoded = base64::engine::general_purpose::STANDARD.encode(data);
            // MySQL's base64_encode breaks lines every 76 characters.
            for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                text.push_str(std::str::from_utf8(line).unwrap_or_default());
            }
            quote(text.as_bytes(), out);
        }
    }
    Ok(())
}

fn opaque_err(kind: &'static str, reason: impl Into<String>) -> JsonTextError {
    JsonTextError::Opaque {
        kind,
        reason: reason.into(),
    }
}

/// The packed longlong of a temporal opaque (MySQL reads the first eight bytes).
fn packed(data: &[u8], kind: &'static str) -> Result<i64, JsonTextError> {
    data.first_chunk::<8>()
        .map(|b| i64::from_le_bytes(*b))
        .ok_or_else(|| opaque_err(kind, format!("{} bytes, 8 expected", data.len())))
}

type DateTime = (u64, u64, u64, u64, u64, u64, u64);

/// MySQL's packed DATETIME (and DATE): `((ym * 32 + d) << 17 | h << 12 | mi << 6 | s) << 24 | us`.
fn datetime(packed: i64, kind: &'static str) -> Result<DateTime, JsonTextError> {
    if packed < 0 {
        return Err(opaque_err(kind, "negative"));
    }
    let packed = packed as u64;
    let us = packed % (1 << 24);
    let ymdhms = packed >> 24;
    let ymd = ymdhms >> 17;
    let ym = ymd >> 5;
    let hms = ymdhms % (1 << 17);
    let (y, mo, d) = (ym / 13, ym % 13, ymd % (1 << 5));
    let (h, mi, s) = (hms >> 12, (hms >> 6) % (1 << 6), hms % (1 << 6));
    if y > 9999 || h > 23 || mi > 59 || s > 59 || us > 999_999 {
        return Err(opaque_err(kind, "a field out of range"));
    }
    Ok((y, mo, d, h, mi, s, us))
}

/// MySQL's packed TIME: sign, then `(h << 12 | mi << 6 | s) << 24 | us` of the magnitude.
fn time(packed: i64) -> Result<String, JsonTextError> {
    let sign = if packed < 0 { "-" } else { "" };
    let magnitude = packed.unsigned_abs();
    let us = magnitude % (1 << 24);
    let hms = magnitude >> 24;
    let (h, mi, s) = (
        (hms >> 12) % (1 << 10),
        (hms >> 6) % (1 << 6),
        hms % (1 << 6),
    );
    // TIME's range ends at 838:59:59; the ten hour bits could say more only when corrupt.
    if h > 838 || mi > 59 || s > 59 || us > 999_999 {
        return Err(opaque_err("TIME", "a field out of range"));
    }
    Ok(format!("{sign}{h:02}:{mi:02}:{s:02}.{us:06}"))
}

/// Bytes per leftover decimal digits of MySQL's binary DECIMAL (nine digits per four bytes).
const DIG_TO_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// A JSON DECIMAL (precision, scale, MySQL's binary decimal) as `decimal2string` prints it:
/// the integer part without leading zeros (`0` if none), then exactly `scale` digits.
fn decimal(data: &[u8], out: &mut Vec<u8>) -> Result<(), JsonTextError> {
    let err = |r: &str| opaque_err("DECIMAL", r);
    let [precision, scale, bin @ ..] = data else {
        return Err(err("shorter than its precision and scale"));
    };
    let (precision, scale) = (usize::from(*precision), usize::from(*scale));
    if precision == 0 || precision > 65 || scale > 30 || scale > precision {
        return Err(err("precision or scale out of range"));
    }
    let intg = precision - scale;
    let size = |digits: usize| digits / 9 * 4 + DIG_TO_BYTES[digits % 9];
    if bin.len() != size(intg) + size(scale) {
        return Err(err("its length does not match its precision and scale"));
    }
    // The sign is the first bit, inverted; a negative value has every bit inverted.
    let negative = bin[0] & 0x80 == 0;
    let mask = if negative { 0xff } else { 0 };
    let mut bytes: Vec<u8> = bin.iter().map(|b| b ^ mask).collect();
    bytes[0] ^= 0x80;

    let mut at = 0usize;
    let mut group = |digits: usize, text: &mut String| -> Result<(), JsonTextError> {
        let n = DIG_TO_BYTES[digits];
        let value = bytes[at..at + n]
            .iter()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b));
        at += n;
        if value >= 10u64.pow(digits as u32) {
            return Err(err("a digit group out of range"));
        }
        text.push_str(&format!("{value:0digits$}"));
        Ok(())
    };
    let mut int = String::new();
    if intg % 9 > 0 {
        group(intg % 9, &mut int)?;
    }
    for _ in 0..intg / 9 {
        group(9, &mut int)?;
    }
    let mut frac = String::new();
    for _ in 0..scale / 9 {
        group(9, &mut frac)?;
    }
    if scale % 9 > 0 {
        group(scale % 9, &mut frac)?;
    }
    if negative {
        out.push(b'-');
    }
    let int = int.trim_start_matches('0');
    out.extend_from_slice(if int.is_empty() { b"0" } else { int.as_bytes() });
    if scale > 0 {
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
#[path = "json_text_tests.rs"]
mod tests;
