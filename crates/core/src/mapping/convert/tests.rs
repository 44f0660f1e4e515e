//! Unit tests of row conversion, rule by rule (moved out of `convert/mod.rs` so the rules read
//! on their own).

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
    // So do bad keys (the key is encoded value by value, without a PrimaryKey).
    let null_key = row(&[Some(b"bob"), None, Some(b"n"), None]);
    let bad_int = row(&[Some(b"bob"), Some(b"x7"), Some(b"n"), None]);
    for r in [&null_key, &bad_int] {
        for mode in [WriteMode::OverwriteRow, WriteMode::UpdateRow] {
            assert_eq!(
                conv.encode_change(r, mode).unwrap_err(),
                conv.to_change(r, mode).unwrap_err()
            );
        }
    }
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
