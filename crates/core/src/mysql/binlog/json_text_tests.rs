//! Hand-built binary JSON (a small encoder of MySQL's format) against the exact text MySQL
//! prints, and a round trip of random documents through serde_json.

use proptest::prelude::*;

use super::*;

/// A binary JSON node as the encoder writes it (the integer width chosen by the test).
#[derive(Debug, Clone)]
enum J {
    Null,
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Vec<u8>),
    /// Elements; `true` for the large storage format.
    Arr(Vec<J>, bool),
    /// Members in stored order; `true` for the large storage format.
    Obj(Vec<(Vec<u8>, J)>, bool),
    Opaque(u8, Vec<u8>),
}

fn s(text: &str) -> J {
    J::Str(text.as_bytes().to_vec())
}

fn obj(members: &[(&str, J)]) -> J {
    J::Obj(
        members
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
            .collect(),
        false,
    )
}

fn varlen(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl J {
    fn type_byte(&self) -> u8 {
        match self {
            J::Obj(_, false) => 0x0,
            J::Obj(_, true) => 0x1,
            J::Arr(_, false) => 0x2,
            J::Arr(_, true) => 0x3,
            J::Null | J::Bool(_) => 0x4,
            J::I16(_) => 0x5,
            J::U16(_) => 0x6,
            J::I32(_) => 0x7,
            J::U32(_) => 0x8,
            J::I64(_) => 0x9,
            J::U64(_) => 0xa,
            J::F64(_) => 0xb,
            J::Str(_) => 0xc,
            J::Opaque(..) => 0xf,
        }
    }

    /// The value's bytes after its type byte.
    fn payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            J::Null => out.push(0),
            J::Bool(true) => out.push(1),
            J::Bool(false) => out.push(2),
            J::I16(v) => out.extend(v.to_le_bytes()),
            J::U16(v) => out.extend(v.to_le_bytes()),
            J::I32(v) => out.extend(v.to_le_bytes()),
            J::U32(v) => out.extend(v.to_le_bytes()),
            J::I64(v) => out.extend(v.to_le_bytes()),
            J::U64(v) => out.extend(v.to_le_bytes()),
            J::F64(v) => out.extend(v.to_le_bytes()),
            J::Str(b) => {
                varlen(b.len(), &mut out);
                out.extend(b);
            }
            J::Opaque(t, b) => {
                out.push(*t);
                varlen(b.len(), &mut out);
                out.extend(b);
            }
            J::Arr(items, large) => {
                let refs: Vec<(Option<&[u8]>, &J)> = items.iter().map(|v| (None, v)).collect();
                return container(&refs, *large);
            }
            J::Obj(members, large) => {
                let refs: Vec<(Option<&[u8]>, &J)> = members
                    .iter()
                    .map(|(k, v)| (Some(k.as_slice()), v))
                    .collect();
                return container(&refs, *large);
            }
        }
        out
    }

    fn inlined(&self, large: bool) -> bool {
        match self {
            J::Null | J::Bool(_) | J::I16(_) | J::U16(_) => true,
            J::I32(_) | J::U32(_) => large,
            _ => false,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.type_byte()];
        out.extend(self.payload());
        out
    }
}

/// An array (keys `None`) or object: count, size, key entries, value entries, keys, values.
fn container(members: &[(Option<&[u8]>, &J)], large: bool) -> Vec<u8> {
    let off = if large { 4 } else { 2 };
    let put = |out: &mut Vec<u8>, v: usize| {
        out.extend(&(v as u32).to_le_bytes()[..off]);
    };
    let is_object = members.first().is_some_and(|(k, _)| k.is_some());
    let n = members.len();
    let key_entries = if is_object { n * (off + 2) } else { 0 };
    let header = 2 * off + key_entries + n * (1 + off);
    let mut tail = Vec::new();
    let mut keys = Vec::new();
    for (k, _) in members {
        if let Some(k) = k {
            keys.push((header + tail.len(), k.len()));
            tail.extend(*k);
        }
    }
    let mut values = Vec::new();
    for (_, v) in members {
        if v.inlined(large) {
            let mut p = v.payload();
            p.resize(off, 0);
            values.push((v.type_byte(), p));
        } else {
            let at = header + tail.len();
            tail.extend(v.payload());
            let mut p = Vec::new();
            put(&mut p, at);
            values.push((v.type_byte(), p));
        }
    }
    let size = header + tail.len();
    assert!(
        large || size <= usize::from(u16::MAX),
        "too big for the small format"
    );
    let mut out = Vec::new();
    put(&mut out, n);
    put(&mut out, size);
    for (at, len) in keys {
        put(&mut out, at);
        out.extend((len as u16).to_le_bytes());
    }
    for (t, p) in values {
        out.push(t);
        out.extend(p);
    }
    out.extend(tail);
    out
}

fn text(j: &J) -> String {
    String::from_utf8(print_bytes(&j.encode()).unwrap()).unwrap()
}

#[test]
fn literals_and_every_integer_width() {
    assert_eq!(text(&J::Null), "null");
    assert_eq!(text(&J::Bool(true)), "true");
    assert_eq!(text(&J::Bool(false)), "false");
    assert_eq!(text(&J::I16(-32768)), "-32768");
    assert_eq!(text(&J::U16(65535)), "65535");
    assert_eq!(text(&J::I32(i32::MIN)), "-2147483648");
    assert_eq!(text(&J::U32(u32::MAX)), "4294967295");
    assert_eq!(text(&J::I64(i64::MIN)), "-9223372036854775808");
    assert_eq!(text(&J::U64(u64::MAX)), "18446744073709551615");
    // A zero-length value is JSON null in MySQL.
    assert_eq!(print_bytes(&[]).unwrap(), b"null");
}

#[test]
fn doubles_print_as_my_gcvt_with_a_trailing_point_zero() {
    let cases: &[(f64, &str)] = &[
        (1.0, "1.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (100.0, "100.0"),
        (2.5, "2.5"),
        (0.1, "0.1"),
        (-3.25, "-3.25"),
        (1.0 / 3.0, "0.3333333333333333"),
        (1.5e-7, "0.00000015"),
        (1e-15, "0.000000000000001"),
        (1e-16, "1e-16"),
        (1e14, "100000000000000.0"),
        (123456789012345.0, "123456789012345.0"),
        (1e15, "1e15"),
        (1.5e15, "1.5e15"),
        (1e300, "1e300"),
        (-1.5e-300, "-1.5e-300"),
        (123456789012345680.0, "1.2345678901234568e17"),
        (f64::MAX, "1.7976931348623157e308"),
        (5e-324, "5e-324"),
    ];
    for (d, want) in cases {
        assert_eq!(text(&J::F64(*d)), *want, "{d:e}");
    }
    let nan = J::F64(f64::NAN).encode();
    assert_eq!(print_bytes(&nan), Err(JsonTextError::NonFinite));
}

#[test]
fn strings_are_escaped_as_mysql_double_quote_does() {
    let raw = "a\"b\\c\u{8}\t\n\u{c}\r\u{1}\u{1f}/\u{7f}é😀";
    assert_eq!(
        text(&s(raw)),
        "\"a\\\"b\\\\c\\b\\t\\n\\f\\r\\u0001\\u001f/\u{7f}é😀\""
    );
    assert_eq!(text(&s("")), "\"\"");
    // A string longer than 127 bytes has a two-byte length.
    let long = "x".repeat(300);
    assert_eq!(text(&s(&long)), format!("\"{long}\""));
}

#[test]
fn objects_and_arrays_small_and_large_keep_stored_order() {
    let doc = obj(&[
        ("a", J::I16(1)),
        ("bb", J::Arr(vec![J::I16(1), J::U32(2), s("x")], false)),
        ("ccc", obj(&[("x", J::Null), ("é", J::F64(1.5))])),
    ]);
    let want = r#"{"a": 1, "bb": [1, 2, "x"], "ccc": {"x": null, "é": 1.5}}"#;
    assert_eq!(text(&doc), want);
    // The binary format stores keys by length, then bytes; printing follows the bytes.
    let stored = obj(&[("b", J::I16(1)), ("aa", J::I16(2))]);
    assert_eq!(text(&stored), r#"{"b": 1, "aa": 2}"#);

    let large = J::Obj(
        vec![
            (b"k".to_vec(), J::I32(-7)),
            (
                b"list".to_vec(),
                J::Arr(vec![J::U32(7), J::I64(1 << 40), J::Bool(false)], true),
            ),
        ],
        true,
    );
    assert_eq!(
        text(&large),
        r#"{"k": -7, "list": [7, 1099511627776, false]}"#
    );
    assert_eq!(text(&J::Arr(vec![], false)), "[]");
    assert_eq!(text(&J::Obj(vec![], true)), "{}");
}

/// The packed longlong MySQL stores for a DATETIME.
fn packed_datetime(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, us: i64) -> Vec<u8> {
    let ymd = ((y * 13 + mo) << 5) | d;
    let hms = (h << 12) | (mi << 6) | s;
    ((((ymd << 17) | hms) << 24) | us).to_le_bytes().to_vec()
}

fn packed_time(neg: bool, h: i64, mi: i64, s: i64, us: i64) -> Vec<u8> {
    let v = ((((h << 12) | (mi << 6) | s) << 24) | us) * if neg { -1 } else { 1 };
    v.to_le_bytes().to_vec()
}

#[test]
fn opaque_temporal_values_print_quoted_with_six_fraction_digits() {
    let date = J::Opaque(10, packed_datetime(2015, 1, 15, 0, 0, 0, 0));
    assert_eq!(text(&date), "\"2015-01-15\"");
    let datetime = J::Opaque(12, packed_datetime(2015, 1, 15, 23, 24, 25, 0));
    assert_eq!(text(&datetime), "\"2015-01-15 23:24:25.000000\"");
    let timestamp = J::Opaque(7, packed_datetime(2038, 1, 19, 3, 14, 7, 120));
    assert_eq!(text(&timestamp), "\"2038-01-19 03:14:07.000120\"");
    let time = J::Opaque(11, packed_time(false, 23, 24, 25, 0));
    assert_eq!(text(&time), "\"23:24:25.000000\"");
    let negative = J::Opaque(11, packed_time(true, 838, 59, 59, 999_999));
    assert_eq!(text(&negative), "\"-838:59:59.999999\"");
    let too_long = J::Opaque(11, packed_time(false, 839, 0, 0, 0)).encode();
    assert!(matches!(
        print_bytes(&too_long),
        Err(JsonTextError::Opaque { .. })
    ));
    let short = J::Opaque(12, vec![0; 7]).encode();
    assert!(matches!(
        print_bytes(&short),
        Err(JsonTextError::Opaque { .. })
    ));
}

#[test]
fn opaque_decimals_print_with_their_scale() {
    // decimal.cc's worked example: 1234567890.1234 as DECIMAL(14,4), and its negation.
    let pos = [14, 4, 0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
    assert_eq!(text(&J::Opaque(246, pos.to_vec())), "1234567890.1234");
    let neg = [14, 4, 0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D];
    assert_eq!(text(&J::Opaque(246, neg.to_vec())), "-1234567890.1234");
    // DECIMAL(3,2) 9.00 and 0.50 (leading zeros of the integer part dropped, one kept).
    assert_eq!(text(&J::Opaque(246, vec![3, 2, 0x89, 0x00])), "9.00");
    assert_eq!(text(&J::Opaque(246, vec![3, 2, 0x80, 0x32])), "0.50");
    assert_eq!(text(&J::Opaque(246, vec![5, 0, 0x80, 0x30, 0x39])), "12345");
    // In an array, unquoted like any number.
    let arr = J::Arr(
        vec![J::Opaque(246, vec![3, 2, 0x89, 0x00]), J::I16(1)],
        false,
    );
    assert_eq!(text(&arr), "[9.00, 1]");
    for bad in [
        vec![3],
        vec![3, 2, 0x89],
        vec![2, 3, 0x80],
        vec![1, 0, 0x80 | 10],
    ] {
        let r = print_bytes(&J::Opaque(246, bad.clone()).encode());
        assert!(
            matches!(r, Err(JsonTextError::Opaque { .. })),
            "{bad:?}: {r:?}"
        );
    }
}

#[test]
fn other_opaque_types_print_as_base64_and_var_string_as_a_string() {
    assert_eq!(
        text(&J::Opaque(15, b"U".to_vec())),
        "\"base64:type15:VQ==\""
    );
    assert_eq!(text(&J::Opaque(252, vec![])), "\"base64:type252:\"");
    // MySQL's base64 breaks the line after 76 characters; JSON escapes the newline.
    let blob: Vec<u8> = (0..100u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    assert_eq!(
        text(&J::Opaque(252, blob)),
        format!("\"base64:type252:{}\\n{}\"", &b64[..76], &b64[76..])
    );
    assert_eq!(
        text(&J::Opaque(253, "hé\"".as_bytes().to_vec())),
        "\"hé\\\"\""
    );
}

#[test]
fn malformed_values_are_errors_not_panics() {
    // Unknown type byte, unknown literal, truncated scalar and container.
    for bad in [
        vec![0x0d],
        vec![0x04, 0x07],
        vec![0x09, 1, 2],
        vec![0x0c, 0x05, b'a'],
        vec![0x02, 0x01, 0x00, 0x40, 0x00],
    ] {
        assert!(print_bytes(&bad).is_err(), "{bad:?}");
    }
    // A value offset pointing back into the header.
    let mut arr = J::Arr(vec![s("abc")], false).encode();
    arr[6] = 0;
    assert!(print_bytes(&arr).is_err());
    // Nesting: MySQL prints 100 levels and refuses 101.
    let mut doc = J::Null;
    for _ in 0..100 {
        doc = J::Arr(vec![doc], false);
    }
    assert!(print_bytes(&doc.encode()).is_ok());
    let deeper = J::Arr(vec![doc], false);
    assert_eq!(print_bytes(&deeper.encode()), Err(JsonTextError::TooDeep));
}

/// A double serde_json's default (fast) parser reads back exactly: at most seven digits
/// times a power of ten up to 1e22 (still both notations and `.0`). Arbitrary doubles are
/// checked against Rust's exact parser in `any_double_prints_its_exact_value`.
fn exact_double() -> impl Strategy<Value = f64> {
    (-9_999_999i64..=9_999_999, -22i32..=15)
        .prop_map(|(m, e)| format!("{m}e{e}").parse::<f64>().unwrap_or_default())
}

/// A random JSON document (numbers as serde_json keeps them: u64, i64, f64).
fn document() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as V;
    let leaf = prop_oneof![
        Just(V::Null),
        any::<bool>().prop_map(V::Bool),
        any::<i64>().prop_map(V::from),
        any::<u64>().prop_map(V::from),
        (-40_000i64..40_000).prop_map(V::from),
        exact_double().prop_map(V::from),
        any::<String>().prop_map(V::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(V::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..8)
                .prop_map(|m| V::Object(m.into_iter().collect())),
        ]
    })
}

/// MySQL's choice of node types for a document (the smallest integer width; keys sorted by
/// length, then bytes); `large` picks the storage format of every container.
fn to_jsonb(v: &serde_json::Value, large: bool) -> J {
    use serde_json::Value as V;
    match v {
        V::Null => J::Null,
        V::Bool(b) => J::Bool(*b),
        V::Number(n) => {
            if let Some(i) = n.as_i64() {
                if let Ok(i) = i16::try_from(i) {
                    J::I16(i)
                } else if let Ok(i) = i32::try_from(i) {
                    J::I32(i)
                } else {
                    J::I64(i)
                }
            } else if let Some(u) = n.as_u64() {
                J::U64(u)
            } else {
                J::F64(n.as_f64().unwrap())
            }
        }
        V::String(s) => J::Str(s.as_bytes().to_vec()),
        V::Array(items) => J::Arr(items.iter().map(|i| to_jsonb(i, large)).collect(), large),
        V::Object(map) => {
            let mut members: Vec<(Vec<u8>, J)> = map
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), to_jsonb(v, large)))
                .collect();
            members.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
            J::Obj(members, large)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Printed documents parse back to the same document, number types kept.
    #[test]
    fn printed_documents_parse_back_to_the_original(doc in document(), large in any::<bool>()) {
        let printed = print_bytes(&to_jsonb(&doc, large).encode()).unwrap();
        let parsed: serde_json::Value = serde_json::from_slice(&printed).unwrap();
        prop_assert_eq!(parsed, doc);
    }

    /// Any finite double prints the shortest text of exactly its value, in MySQL's shape.
    #[test]
    fn any_double_prints_its_exact_value(d in any::<f64>().prop_filter("finite", |d| d.is_finite())) {
        let printed = String::from_utf8(print_bytes(&J::F64(d).encode()).unwrap()).unwrap();
        let back: f64 = printed.parse().unwrap();
        prop_assert_eq!(back.to_bits(), d.to_bits(), "{}", printed);
        prop_assert!(printed.contains('.') || printed.contains('e'), "{}", printed);
        prop_assert!(!printed.contains("e+") && !printed.ends_with('.'), "{}", printed);
    }

    /// Random bytes, and random changes to a valid document: a text or an error.
    #[test]
    fn corrupt_bytes_never_panic(
        doc in document(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = to_jsonb(&doc, false).encode();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        // Everything runs under the panic guard; a panic would still be a bug to fix.
        prop_assert_ne!(print_bytes(&bytes).err(), Some(JsonTextError::Panicked));
        prop_assert_ne!(print_bytes(&noise).err(), Some(JsonTextError::Panicked));
    }
}
