//! Character data from a row image, in its column's charset, as exactly the UTF-8 a utf8mb4
//! session receives for it (what the full copy reads), so both phases write the same string.
//!
//! Why maps of our own and not a charset library: MySQL's legacy charsets are not the WHATWG
//! encodings such libraries implement. Compared over every one- and two-byte code
//! (`tests/integration/binlog_charsets.rs`), encoding_rs differed from MariaDB in 18 of the 22
//! legacy charsets both have: MySQL's gbk reads its user-defined areas as `?` where GBK
//! decoders give private-use characters, gb2312 reads A1A4 as U+30FB, sjis is not cp932,
//! latin5 is not windows-1254, and so on; 9 more (armscii8, dec8, keybcs2, …) it lacks. So
//! every legacy charset decodes by a map of MariaDB's own answers (`maps/NAME.map`, written by
//! that test with `TSMIGRATE_WRITE_CHARSET_MAPS`), and the same test checks the maps against
//! the server on every run. MySQL's charset tables share their origin with MariaDB's; they were
//! not compared with a MySQL server here. utf8mb4/utf8mb3 are checked UTF-8, binary is bytes,
//! latin1 is cp1252 as MySQL defines it, utf16/utf16le are UTF-16, ucs2 is UTF-16 without
//! surrogates (MySQL reads a surrogate in ucs2 as bytes that are not UTF-8, so it is refused),
//! utf32 is big-endian code points.
//!
//! A map file holds little-endian u16 code points, `NONE` where the bytes are not a character:
//! 256 single bytes, then (multi-byte charsets) 128 x 256 two-byte codes led by 0x80-0xFF, then
//! (EUC-JP) 94 x 94 three-byte codes `8F A1..FE A1..FE`. Every character of these charsets is
//! in the Basic Multilingual Plane.

use std::sync::OnceLock;

use mysql_common::collations::{Collation, CollationId};

/// A map entry that is not a character.
pub const NONE: u16 = 0xFFFF;
/// Entries per part of a map file.
pub const SINGLES: usize = 256;
pub const DOUBLES: usize = 128 * 256;
pub const TRIPLES: usize = 94 * 94;

enum Decoding {
    /// utf8mb4, utf8mb3: already UTF-8, validated.
    Utf8,
    /// Bytes as they are.
    Binary,
    /// MySQL's latin1 (cp1252 with the five undefined bytes as C1 controls).
    Latin1,
    /// UTF-16, big-endian (`utf16`) or little-endian (`utf16le`).
    Utf16 { big_endian: bool },
    /// Big-endian UTF-16 code units, none of them a surrogate.
    Ucs2,
    /// Big-endian 32-bit code points.
    Utf32,
    /// A legacy charset, by its map.
    Map(&'static [u8]),
}

macro_rules! maps {
    ($($name:literal),* $(,)?) => {
        /// The legacy charsets decoded by map.
        pub const MAPPED: &[&str] = &[$($name),*];
        fn map(charset: &str) -> Option<&'static [u8]> {
            match charset {
                $($name => Some(include_bytes!(concat!("maps/", $name, ".map"))),)*
                _ => None,
            }
        }
    };
}

maps!(
    "armscii8", "ascii", "big5", "cp1250", "cp1251", "cp1256", "cp1257", "cp850", "cp852", "cp866",
    "cp932", "dec8", "eucjpms", "euckr", "gb2312", "gbk", "geostd8", "greek", "hebrew", "hp8",
    "keybcs2", "koi8r", "koi8u", "latin2", "latin5", "latin7", "macce", "macroman", "sjis", "swe7",
    "tis620", "ujis",
);

fn decoding(charset: &str) -> Option<Decoding> {
    Some(match charset {
        "utf8mb4" | "utf8mb3" | "utf8" => Decoding::Utf8,
        "binary" => Decoding::Binary,
        "latin1" => Decoding::Latin1,
        "utf16" => Decoding::Utf16 { big_endian: true },
        "utf16le" => Decoding::Utf16 { big_endian: false },
        "ucs2" => Decoding::Ucs2,
        "utf32" => Decoding::Utf32,
        other => Decoding::Map(map(other)?),
    })
}

/// Charsets decoded without a map.
const UNMAPPED: &[&str] = &[
    "utf8mb4", "utf8mb3", "binary", "latin1", "utf16", "utf16le", "ucs2", "utf32",
];

/// Collation ids above this name no charset.
const MAX_COLLATION_ID: u16 = 3327;

/// The charset of a collation id as the binlog gives it, when this module decodes it. MySQL's
/// ids are mysql_common's table; MariaDB adds NO PAD collations (1024 + the id of the PAD SPACE
/// one), more UCA collations per Unicode charset from 576, and its uca1400 collations from
/// 2048 (256 ids per charset). Checked for every collation of the test server by
/// `binlog_charsets::a_column_in_any_collation_renders_as_the_copy_reads_it`.
///
/// Every id is resolved once, into a table: this runs for each character value rendered from
/// the binlog.
pub fn of_collation(id: u16) -> Option<&'static str> {
    static BY_ID: OnceLock<Vec<Option<&'static str>>> = OnceLock::new();
    BY_ID
        .get_or_init(|| (0..=MAX_COLLATION_ID).map(resolve).collect())
        .get(usize::from(id))
        .copied()
        .flatten()
}

/// [`of_collation`], computed.
fn resolve(id: u16) -> Option<&'static str> {
    const UNICODE: [&str; 5] = ["utf8mb3", "utf8mb4", "ucs2", "utf16", "utf32"];
    let name = match id {
        576..=607 => "utf8mb3",
        608..=639 => "utf8mb4",
        640..=671 => "ucs2",
        672..=703 => "utf16",
        736..=767 => "utf32",
        1024..=2047 => return resolve(id - 1024),
        2048..=MAX_COLLATION_ID => UNICODE[usize::from((id - 2048) >> 8)],
        _ => {
            let c = Collation::resolve(CollationId::from(id));
            if c.id() == CollationId::UNKNOWN_COLLATION_ID {
                return None;
            }
            return known(c.charset());
        }
    };
    Some(name)
}

/// `name` as one of this module's static names (`utf8` is utf8mb3), when decoded.
fn known(name: &str) -> Option<&'static str> {
    let name = if name == "utf8" { "utf8mb3" } else { name };
    MAPPED.iter().chain(UNMAPPED).find(|n| **n == name).copied()
}

/// Whether values of this charset (MySQL's name) are decoded from the binlog.
pub fn decodes(charset: &str) -> bool {
    decoding(charset).is_some()
}

/// `raw`, in `charset`, as UTF-8. Bytes that are not a character of the charset are an error
/// (the server does not store them), never a guess.
pub fn to_utf8(charset: &str, raw: &[u8]) -> Result<Vec<u8>, String> {
    let invalid = || format!("text is not valid {charset}");
    match decoding(charset) {
        Some(Decoding::Utf8) => match std::str::from_utf8(raw) {
            Ok(_) => Ok(raw.to_vec()),
            Err(_) => Err(invalid()),
        },
        Some(Decoding::Binary) => Ok(raw.to_vec()),
        Some(Decoding::Latin1) => Ok(latin1_to_utf8(raw).into_bytes()),
        Some(Decoding::Utf16 { big_endian }) => utf16(raw, big_endian, true)
            .ok_or_else(invalid)
            .map(String::into_bytes),
        Some(Decoding::Ucs2) => utf16(raw, true, false)
            .ok_or_else(invalid)
            .map(String::into_bytes),
        Some(Decoding::Utf32) => utf32(raw).ok_or_else(invalid).map(String::into_bytes),
        Some(Decoding::Map(m)) => by_map(m, raw).ok_or_else(invalid).map(String::into_bytes),
        None => Err(format!(
            "charset {charset} is not decoded from the binlog; convert the column to utf8mb4"
        )),
    }
}

fn entry(map: &[u8], i: usize) -> Option<char> {
    let b = map.get(2 * i..2 * i + 2)?;
    match u16::from_le_bytes([b[0], b[1]]) {
        NONE => None,
        c => char::from_u32(u32::from(c)),
    }
}

/// Decodes `raw` character by character: a byte that is a character by itself, else a
/// two-byte code it leads, else (EUC-JP) a three-byte code after 0x8F.
fn by_map(map: &[u8], raw: &[u8]) -> Option<String> {
    let doubles = map.len() >= 2 * (SINGLES + DOUBLES);
    let triples = map.len() >= 2 * (SINGLES + DOUBLES + TRIPLES);
    let mut out = String::with_capacity(raw.len() * 2);
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if let Some(c) = entry(map, usize::from(b)) {
            out.push(c);
            i += 1;
        } else if triples && b == 0x8F {
            let (x, y) = (*raw.get(i + 1)?, *raw.get(i + 2)?);
            if !(0xA1..=0xFE).contains(&x) || !(0xA1..=0xFE).contains(&y) {
                return None;
            }
            let at = SINGLES + DOUBLES + usize::from(x - 0xA1) * 94 + usize::from(y - 0xA1);
            out.push(entry(map, at)?);
            i += 3;
        } else if doubles && b >= 0x80 {
            let t = *raw.get(i + 1)?;
            let at = SINGLES + usize::from(b - 0x80) * 256 + usize::from(t);
            out.push(entry(map, at)?);
            i += 2;
        } else {
            return None;
        }
    }
    Some(out)
}

/// UTF-16 code units (surrogate pairs only when `pairs`) as a string; None when the bytes are
/// not whole units or a surrogate is unpaired or not allowed.
fn utf16(raw: &[u8], big_endian: bool, pairs: bool) -> Option<String> {
    if !raw.len().is_multiple_of(2) {
        return None;
    }
    let units = raw.chunks_exact(2).map(|u| {
        if big_endian {
            u16::from_be_bytes([u[0], u[1]])
        } else {
            u16::from_le_bytes([u[0], u[1]])
        }
    });
    if !pairs {
        return units
            .map(|u| char::from_u32(u32::from(u)))
            .collect::<Option<String>>();
    }
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// Big-endian 32-bit code points as a string; None when the bytes are not whole code points
/// or one is a surrogate or past U+10FFFF.
fn utf32(raw: &[u8]) -> Option<String> {
    if !raw.len().is_multiple_of(4) {
        return None;
    }
    raw.chunks_exact(4)
        .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
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
mod tests;
