//! Each column type's binary layout in a row image, read into the text the server prints for
//! it. Byte strings are MySQL's encodings (`decimal2bin`, `my_time_packed_to_binary`, …),
//! built by the encoders below from the server's own algorithms or written out by hand.

use mysql_async::consts::ColumnType;
use mysql_async::consts::ColumnType::*;
use proptest::prelude::*;

use super::*;

fn col(t: ColumnType, metadata: &[u8]) -> ColumnMeta {
    ColumnMeta::of_type(t, metadata)
}

fn text(raw: &[u8], c: &ColumnMeta) -> String {
    let out = render(Value::Bytes(raw), c)
        .unwrap_or_else(|e| panic!("{:?} {raw:02x?}: {e}", c.column_type))
        .expect("not NULL");
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn null_renders_as_none() {
    assert_eq!(render(Value::Null, &col(MYSQL_TYPE_LONG, &[])), Ok(None));
}

#[test]
fn integers_by_width_and_signedness() {
    let mut c = col(MYSQL_TYPE_TINY, &[]);
    assert_eq!(text(&[0x80], &c), "-128");
    assert_eq!(text(&[0x7f], &c), "127");
    c.unsigned = true;
    assert_eq!(text(&[0xff], &c), "255");
    let mut c = col(MYSQL_TYPE_SHORT, &[]);
    assert_eq!(text(&[0x00, 0x80], &c), "-32768");
    c.unsigned = true;
    assert_eq!(text(&[0xff, 0xff], &c), "65535");
    let mut c = col(MYSQL_TYPE_INT24, &[]);
    assert_eq!(text(&[0x00, 0x00, 0x80], &c), "-8388608");
    assert_eq!(text(&[0xff, 0xff, 0xff], &c), "-1");
    assert_eq!(text(&[0xff, 0xff, 0x7f], &c), "8388607");
    c.unsigned = true;
    assert_eq!(text(&[0xff, 0xff, 0xff], &c), "16777215");
    let mut c = col(MYSQL_TYPE_LONG, &[]);
    assert_eq!(text(&[0x00, 0x00, 0x00, 0x80], &c), "-2147483648");
    assert_eq!(text(&(-1i32).to_le_bytes(), &c), "-1");
    c.unsigned = true;
    assert_eq!(text(&(-1i32).to_le_bytes(), &c), "4294967295");
    let mut c = col(MYSQL_TYPE_LONGLONG, &[]);
    assert_eq!(text(&i64::MIN.to_le_bytes(), &c), "-9223372036854775808");
    assert_eq!(text(&i64::MAX.to_le_bytes(), &c), "9223372036854775807");
    c.unsigned = true;
    assert_eq!(text(&u64::MAX.to_le_bytes(), &c), "18446744073709551615");
    // A width the type cannot have is an error, not a guess.
    assert!(render(Value::Bytes(&[1, 2, 3, 4, 5]), &c).is_err());
}

#[test]
fn float_widened_exactly_and_double_shortest() {
    let f = col(MYSQL_TYPE_FLOAT, &[4]);
    let s = text(&0.1f32.to_le_bytes(), &f);
    assert_eq!(s.parse::<f64>().unwrap(), f64::from(0.1f32));
    assert_eq!(
        text(&3.4028235e38f32.to_le_bytes(), &f),
        "340282346638528860000000000000000000000"
    );
    let d = col(MYSQL_TYPE_DOUBLE, &[8]);
    assert_eq!(
        text(&(0.1f64 + 0.2).to_le_bytes(), &d),
        "0.30000000000000004"
    );
    assert_eq!(
        text(&5e-324f64.to_le_bytes(), &d).parse::<f64>().unwrap(),
        5e-324
    );
    assert_eq!(text(&(-0.0f64).to_le_bytes(), &d), "-0");
}

/// MySQL's `decimal2bin` for a decimal text of `precision` digits, `scale` after the point.
fn decimal_bin(value: &str, precision: usize, scale: usize) -> Vec<u8> {
    let negative = value.starts_with('-');
    let digits = value.trim_start_matches('-');
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let int = format!("{int:0>width$}", width = precision - scale);
    let frac = format!("{frac:0<scale$}");
    let mut out = Vec::new();
    let mut group = |digits: &str| {
        let v: u32 = digits.parse().unwrap_or(0);
        let width = image::DIGIT_BYTES[digits.len()];
        out.extend_from_slice(&v.to_be_bytes()[4 - width..]);
    };
    let lead = int.len() % 9;
    group(&int[..lead]);
    int.as_bytes()[lead..]
        .chunks(9)
        .for_each(|c| group(std::str::from_utf8(c).unwrap()));
    frac.as_bytes()
        .chunks(9)
        .for_each(|c| group(std::str::from_utf8(c).unwrap()));
    if negative {
        out.iter_mut().for_each(|b| *b = !*b);
    }
    if let Some(b) = out.first_mut() {
        *b ^= 0x80;
    }
    out
}

#[test]
fn decimal_layouts_match_the_servers_documented_bytes() {
    // decimal.c's own example: 1234567890.1234 as DECIMAL(14,4).
    let c = col(MYSQL_TYPE_NEWDECIMAL, &[14, 4]);
    let pos = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
    assert_eq!(decimal_bin("1234567890.1234", 14, 4), pos);
    assert_eq!(text(&pos, &c), "1234567890.1234");
    let neg = [0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D];
    assert_eq!(text(&neg, &c), "-1234567890.1234");
    assert_eq!(text(&decimal_bin("0", 14, 4), &c), "0.0000");
    assert_eq!(text(&decimal_bin("-0.0001", 14, 4), &c), "-0.0001");
}

#[test]
fn decimal_every_precision_and_scale_including_65_30() {
    let cases = [
        (
            "99999999999999999999999999999999999.999999999999999999999999999999",
            65,
            30,
        ),
        (
            "-99999999999999999999999999999999999.999999999999999999999999999999",
            65,
            30,
        ),
        ("0.000000000000000000000000000001", 65, 30),
        ("-0.000000000000000000000000000001", 65, 30),
        (
            "12345678901234567890123456789012345678901234567890123456789012345",
            65,
            0,
        ),
        ("-1", 65, 0),
        ("1.5", 2, 1),
        ("-12345678901234.123456", 20, 6),
        ("0.5", 1, 1),
        ("-9", 1, 0),
        ("100000000", 9, 0),
        ("1000000000", 10, 0),
    ];
    for (v, p, s) in cases {
        let c = col(MYSQL_TYPE_NEWDECIMAL, &[p as u8, s as u8]);
        assert_eq!(text(&decimal_bin(v, p, s), &c), v, "DECIMAL({p},{s})");
    }
    // Short, long, or digit groups over 10^9 (no valid encoding has them): errors.
    let c = col(MYSQL_TYPE_NEWDECIMAL, &[10, 0]);
    assert!(render(Value::Bytes(&[0x80, 0, 0, 0]), &c).is_err());
    assert!(render(Value::Bytes(&[0x80, 0xff, 0xff, 0xff, 0xff]), &c).is_err());
}

proptest! {
    /// Every DECIMAL(p,s) value reads back as the text it was written from, and as
    /// mysql_common's decoder (the reader's former path) prints it.
    #[test]
    fn decimals_round_trip(p in 1usize..=65, s_frac in 0.0f64..=1.0, digits in "[0-9]{65}",
                           negative in any::<bool>()) {
        let s = ((p as f64 * s_frac) as usize).min(30).min(p);
        let int = digits[..p - s].trim_start_matches('0');
        let int = if int.is_empty() { "0" } else { int };
        let frac = &digits[p - s..p];
        let zero = int == "0" && frac.bytes().all(|b| b == b'0');
        let sign = if negative && !zero { "-" } else { "" };
        let expected = if s > 0 { format!("{sign}{int}.{frac}") } else { format!("{sign}{int}") };
        let raw = decimal_bin(&expected, p, s);
        let c = col(MYSQL_TYPE_NEWDECIMAL, &[p as u8, s as u8]);
        prop_assert_eq!(text(&raw, &c), expected.clone());
        let theirs = mysql_common::binlog::decimal::Decimal::read_bin(&mut &raw[..], p, s, false)
            .expect("mysql_common reads it");
        prop_assert_eq!(theirs.to_string(), expected);
    }
}

/// MySQL's `my_time_packed_to_binary` for a TIME of `fsp` digits (packed: hms << 24 | micros,
/// negated when negative).
fn time2_bin(negative: bool, h: i64, m: i64, s: i64, micros: i64, fsp: u32) -> Vec<u8> {
    let hms = h << 12 | m << 6 | s;
    let mut packed = hms << 24 | micros;
    if negative {
        packed = -packed;
    }
    let int = (packed >> 24) + 0x80_0000;
    let frac = packed % (1 << 24); // C's remainder: the dividend's sign
    let mut out = (int as u32).to_be_bytes()[1..].to_vec();
    match fsp {
        0 => {}
        1 | 2 => out.push((frac / 10_000) as i8 as u8),
        3 | 4 => out.extend_from_slice(&((frac / 100) as i16).to_be_bytes()),
        _ => {
            out = ((packed + 0x8000_0000_0000) as u64).to_be_bytes()[2..].to_vec();
        }
    }
    out
}

#[test]
fn time2_negative_with_every_fraction_width() {
    // -00:00:00.1 as TIME(1): the integer part one down (-1), the fraction -10 as a byte.
    let c = col(MYSQL_TYPE_TIME2, &[1]);
    assert_eq!(
        time2_bin(true, 0, 0, 0, 100_000, 1),
        [0x7f, 0xff, 0xff, 0xf6]
    );
    assert_eq!(text(&[0x7f, 0xff, 0xff, 0xf6], &c), "-00:00:00.1");
    let cases: [(bool, i64, i64, i64, i64, &str); 9] = [
        (true, 0, 0, 0, 100_000, "-00:00:00.100000"),
        (true, 0, 0, 1, 500_000, "-00:00:01.500000"),
        (true, 838, 59, 59, 0, "-838:59:59.000000"),
        (true, 838, 59, 58, 990_000, "-838:59:58.990000"),
        (true, 12, 34, 56, 780_000, "-12:34:56.780000"),
        (true, 0, 0, 0, 10_000, "-00:00:00.010000"),
        (false, 100, 0, 0, 500_000, "100:00:00.500000"),
        (false, 0, 0, 0, 0, "00:00:00.000000"),
        (true, 1, 0, 0, 0, "-01:00:00.000000"),
    ];
    for fsp in 0..=6u32 {
        let c = col(MYSQL_TYPE_TIME2, &[fsp as u8]);
        for (neg, h, m, s, us, full) in cases {
            // The value at this precision (the cases are exact at two digits).
            let keep = 10i64.pow(6 - fsp);
            let us = us / keep * keep;
            let expected = match fsp {
                0 => full[..full.len() - 7].to_owned(),
                n => full[..full.len() - 6 + n as usize].to_owned(),
            };
            if neg && (h, m, s, us) == (0, 0, 0, 0) {
                continue; // no negative zero at this precision
            }
            let raw = time2_bin(neg, h, m, s, us, fsp);
            assert_eq!(text(&raw, &c), expected, "TIME({fsp}) {raw:02x?}");
        }
    }
    // Microsecond precision, negative, at the limits.
    let c = col(MYSQL_TYPE_TIME2, &[6]);
    assert_eq!(
        text(&time2_bin(true, 838, 59, 58, 999_999, 6), &c),
        "-838:59:58.999999"
    );
    assert_eq!(
        text(&time2_bin(true, 0, 0, 0, 1, 6), &c),
        "-00:00:00.000001"
    );
    let c = col(MYSQL_TYPE_TIME2, &[4]);
    assert_eq!(
        text(&time2_bin(true, 0, 59, 59, 999_900, 4), &c),
        "-00:59:59.9999"
    );
}

proptest! {
    #[test]
    fn time2_round_trips(neg in any::<bool>(), h in 0i64..=838, m in 0i64..60, s in 0i64..60,
                         us in 0i64..1_000_000, fsp in 0u32..=6) {
        let keep = 10i64.pow(6 - fsp);
        let us = us / keep * keep;
        let neg = neg && (h, m, s, us) != (0, 0, 0, 0);
        let mut expected = format!("{}{h:02}:{m:02}:{s:02}", if neg { "-" } else { "" });
        if fsp > 0 {
            expected.push_str(&format!(".{:06}", us)[..fsp as usize + 1]);
        }
        let c = col(MYSQL_TYPE_TIME2, &[fsp as u8]);
        prop_assert_eq!(text(&time2_bin(neg, h, m, s, us, fsp), &c), expected);
    }
}

/// DATETIME2: 1 sign bit, year*13+month 17 bits, day 5, hour 5, minute 6, second 6; fraction.
fn datetime2_bin(
    (y, mo, d): (u64, u64, u64),
    (h, mi, s): (u64, u64, u64),
    us: u64,
    fsp: u32,
) -> Vec<u8> {
    let ym = y * 13 + mo;
    let int = (ym << 22 | d << 17 | h << 12 | mi << 6 | s) + 0x80_0000_0000;
    let mut out = int.to_be_bytes()[3..].to_vec();
    let frac = match fsp {
        1 | 2 => vec![(us / 10_000) as u8],
        3 | 4 => ((us / 100) as u16).to_be_bytes().to_vec(),
        5 | 6 => (us as u32).to_be_bytes()[1..].to_vec(),
        _ => vec![],
    };
    out.extend_from_slice(&frac);
    out
}

#[test]
fn date_datetime2_timestamp2_and_year() {
    // DATE: 3 bytes little-endian, day 5 bits, month 4, year the rest.
    let date = col(MYSQL_TYPE_NEWDATE, &[]);
    let v: u32 = 2024 << 9 | 2 << 5 | 29;
    assert_eq!(text(&v.to_le_bytes()[..3], &date), "2024-02-29");
    assert_eq!(text(&[0, 0, 0], &date), "0000-00-00");
    let dt = col(MYSQL_TYPE_DATETIME2, &[6]);
    assert_eq!(
        text(&datetime2_bin((2024, 5, 1), (12, 30, 0), 123_456, 6), &dt),
        "2024-05-01 12:30:00.123456"
    );
    // DATETIME(6) '9999-12-31 23:59:59.999999', bytes worked out by hand.
    assert_eq!(
        text(&[0xfe, 0xf3, 0xff, 0x7e, 0xfb, 0x0f, 0x42, 0x3f], &dt),
        "9999-12-31 23:59:59.999999"
    );
    let dt0 = col(MYSQL_TYPE_DATETIME2, &[0]);
    assert_eq!(
        text(&datetime2_bin((0, 0, 0), (0, 0, 0), 0, 0), &dt0),
        "0000-00-00 00:00:00"
    );
    for fsp in 1..=6u32 {
        let c = col(MYSQL_TYPE_DATETIME2, &[fsp as u8]);
        let keep = 10u64.pow(6 - fsp);
        let raw = datetime2_bin((1000, 1, 1), (0, 0, 0), 987_654 / keep * keep, fsp);
        let expected = format!("1000-01-01 00:00:00.{}", &"987654"[..fsp as usize]);
        assert_eq!(text(&raw, &c), expected);
    }
    // TIMESTAMP2: big-endian UTC epoch seconds, then the fraction; 0 is the zero timestamp.
    let ts = col(MYSQL_TYPE_TIMESTAMP2, &[6]);
    let mut raw = 2_147_483_647u32.to_be_bytes().to_vec();
    raw.extend_from_slice(&999_999u32.to_be_bytes()[1..]);
    assert_eq!(text(&raw, &ts), "2038-01-19 03:14:07.999999");
    let ts0 = col(MYSQL_TYPE_TIMESTAMP2, &[0]);
    assert_eq!(text(&[0, 0, 0, 0], &ts0), "0000-00-00 00:00:00");
    assert_eq!(text(&86_401u32.to_be_bytes(), &ts0), "1970-01-02 00:00:01");
    assert_eq!(
        text(&951_782_400u32.to_be_bytes(), &ts0),
        "2000-02-29 00:00:00"
    );
    let ts2 = col(MYSQL_TYPE_TIMESTAMP2, &[2]);
    assert_eq!(text(&[0, 0, 0, 1, 50], &ts2), "1970-01-01 00:00:01.50");
    // YEAR: year - 1900, 0 meaning 0000.
    let y = col(MYSQL_TYPE_YEAR, &[]);
    assert_eq!(text(&[0], &y), "0000");
    assert_eq!(text(&[1], &y), "1901");
    assert_eq!(text(&[255], &y), "2155");
}

proptest! {
    /// TIMESTAMP2's calendar arithmetic agrees with the `time` crate over the whole range.
    #[test]
    fn timestamps_agree_with_the_time_crate(secs in 1u32..=u32::MAX) {
        let at = time::OffsetDateTime::from_unix_timestamp(i64::from(secs)).unwrap();
        let expected = format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            at.year(), u8::from(at.month()), at.day(), at.hour(), at.minute(), at.second()
        );
        let c = col(MYSQL_TYPE_TIMESTAMP2, &[0]);
        prop_assert_eq!(text(&secs.to_be_bytes(), &c), expected);
    }
}

#[test]
fn pre_56_temporal_formats() {
    let dt = col(MYSQL_TYPE_DATETIME, &[]);
    assert_eq!(
        text(&20_240_229_235_959u64.to_le_bytes(), &dt),
        "2024-02-29 23:59:59"
    );
    let t = col(MYSQL_TYPE_TIME, &[]);
    assert_eq!(text(&123_456u32.to_le_bytes()[..3], &t), "12:34:56");
    assert_eq!(text(&(-8_385_959i32).to_le_bytes()[..3], &t), "-838:59:59");
    let ts = col(MYSQL_TYPE_TIMESTAMP, &[]);
    assert_eq!(text(&86_400u32.to_le_bytes(), &ts), "1970-01-02 00:00:00");
}

#[test]
fn enum_set_bit_and_strings() {
    let mut e = col(MYSQL_TYPE_ENUM, &[247, 1]);
    e.labels = Some(vec![b"small".to_vec(), b"medium".to_vec()]);
    assert_eq!(text(&[2], &e), "medium");
    assert_eq!(text(&[0], &e), "");
    assert!(render(Value::Bytes(&[3]), &e).is_err());
    let mut e2 = col(MYSQL_TYPE_ENUM, &[247, 2]);
    e2.labels = Some((0..300).map(|i| format!("v{i}").into_bytes()).collect());
    assert_eq!(text(&300u16.to_le_bytes(), &e2), "v299");
    let mut s = col(MYSQL_TYPE_SET, &[248, 1]);
    s.labels = Some(vec![
        b"a".to_vec(),
        b"b".to_vec(),
        b"c".to_vec(),
        b"d".to_vec(),
    ]);
    assert_eq!(text(&[0x0d], &s), "a,c,d");
    // SET of 64 members: 8 bytes, little-endian.
    let mut s8 = col(MYSQL_TYPE_SET, &[248, 8]);
    s8.labels = Some((0..64).map(|i| format!("m{i}").into_bytes()).collect());
    assert_eq!(text(&(1u64 << 63 | 1).to_le_bytes(), &s8), "m0,m63");
    // Without FULL metadata there are no labels: an error that names the fix.
    let bare = col(MYSQL_TYPE_ENUM, &[247, 1]);
    let err = render(Value::Bytes(&[1]), &bare).unwrap_err();
    assert!(err.contains("binlog_row_metadata=FULL"), "{err}");
    // BIT(12): big-endian bytes as stored.
    let bit = col(MYSQL_TYPE_BIT, &[4, 1]);
    let out = render(Value::Bytes(&[0x0a, 0x01]), &bit).unwrap().unwrap();
    assert_eq!(out, vec![0x0a, 0x01]);
    // latin1 is cp1252; BINARY(n) gets its trailing zeros back.
    let mut l = col(MYSQL_TYPE_STRING, &[254, 10]);
    l.charset = Some(8);
    assert_eq!(text(b"caf\xe9 \x80", &l), "café €");
    let mut b = col(MYSQL_TYPE_STRING, &[254, 4]);
    b.charset = Some(63);
    let out = render(Value::Bytes(&[1, 2]), &b).unwrap().unwrap();
    assert_eq!(out, vec![1, 2, 0, 0]);
    // CHAR(255) utf8mb4 is 1020 bytes: the length's high bits live in the type byte.
    let wide = col(MYSQL_TYPE_STRING, &[0xce, 0xfc]);
    assert_eq!(image::string_width(&wide.metadata), 1020);
    assert_eq!(text("😀".as_bytes(), &wide), "😀");
    let vc = col(MYSQL_TYPE_VARCHAR, &[0x90, 0x01]);
    assert_eq!(text("héllo 😀".as_bytes(), &vc), "héllo 😀");
    assert!(render(Value::Bytes(&[0xff]), &vc).is_err(), "invalid UTF-8");
    let mut blob = col(MYSQL_TYPE_BLOB, &[2]);
    blob.charset = Some(63);
    let out = render(Value::Bytes(&[0, 0xff, 0x10]), &blob)
        .unwrap()
        .unwrap();
    assert_eq!(out, vec![0, 0xff, 0x10]);
    let geo = col(MYSQL_TYPE_GEOMETRY, &[4]);
    assert_eq!(
        render(Value::Bytes(&[1, 2]), &geo).unwrap().unwrap(),
        vec![1, 2]
    );
}

#[test]
fn binary_json_prints_as_mysql_does() {
    let json = col(MYSQL_TYPE_JSON, &[4]);
    // `{}` is not binary JSON (0x7b is no type byte): an error, never a guess.
    assert!(render(Value::Bytes(b"{}"), &json).is_err());
    // [1, "a"] in the small-array format.
    let raw: &[u8] = &[2, 2, 0, 12, 0, 5, 1, 0, 12, 10, 0, 1, b'a'];
    assert_eq!(text(raw, &json), "[1, \"a\"]");
    // MariaDB logs JSON as LONGTEXT: text as stored.
    let maria = col(MYSQL_TYPE_BLOB, &[4]);
    assert_eq!(text(b"{\"a\": 1}", &maria), "{\"a\": 1}");
}

proptest! {
    /// Any bytes for any column type: a value or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(t in 0u8..=255, m0 in any::<u8>(), m1 in any::<u8>(),
                                   raw in proptest::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(t) = ColumnType::try_from(t) {
            let mut c = col(t, &[m0, m1]);
            c.labels = Some(vec![b"x".to_vec(); 3]);
            let _ = render(Value::Bytes(&raw), &c);
        }
    }
}
