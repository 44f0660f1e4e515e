//! Unit tests of the introspection parsers, from recorded `information_schema` answers (moved
//! out of `introspect/mod.rs` so the module reads on its own).

use super::*;

fn row(pairs: &[(&str, Option<&str>)]) -> TextRow {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

#[test]
fn column_types() {
    let p = parse_column_type("bigint(20) unsigned zerofill").unwrap();
    assert_eq!(p.base, "bigint");
    assert_eq!(p.args, ["20"]);
    assert!(p.unsigned && p.zerofill);
    let p = parse_column_type("bigint unsigned").unwrap(); // MySQL 8.0.19+ drops widths
    assert_eq!(
        (p.base.as_str(), p.args.len(), p.unsigned),
        ("bigint", 0, true)
    );
    assert_eq!(
        parse_column_type("decimal(65,30)").unwrap().args,
        ["65", "30"]
    );
    assert_eq!(
        parse_column_type("DOUBLE(10, 4) UNSIGNED").unwrap().args,
        ["10", "4"]
    );
    assert_eq!(parse_column_type("timestamp(6)").unwrap().args, ["6"]);
    assert_eq!(parse_column_type("json").unwrap().base, "json");
    let p = parse_column_type(r"enum('a','it''s','back\\slash','com,ma','',' sp ')").unwrap();
    assert_eq!(p.base, "enum");
    assert_eq!(p.args, ["a", "it's", r"back\slash", "com,ma", "", " sp "]);
    let p = parse_column_type(r"set('x','y\'z','(p)')").unwrap();
    assert_eq!(p.args, ["x", "y'z", "(p)"]);
    assert_eq!(
        parse_column_type(r"enum('nl\n','tab\t')").unwrap().args,
        ["nl\n", "tab\t"]
    );
    assert!(parse_column_type("enum('a'").is_err());
    assert!(parse_column_type("").is_err());
}

#[test]
fn defaults_by_flavor() {
    use ColumnDefault::*;
    let m = Flavor::MariaDb;
    assert_eq!(parse_column_default(m, None, "", "int"), None);
    assert_eq!(parse_column_default(m, Some("NULL"), "", "int"), None);
    assert_eq!(
        parse_column_default(m, Some("'q''uote'"), "", "varchar"),
        Some(Literal("q'uote".into()))
    );
    assert_eq!(
        parse_column_default(m, Some("7"), "", "int"),
        Some(Literal("7".into()))
    );
    assert_eq!(
        parse_column_default(m, Some("-1.5"), "", "decimal"),
        Some(Literal("-1.5".into()))
    );
    assert_eq!(
        parse_column_default(m, Some("b'101'"), "", "bit"),
        Some(Literal("b'101'".into()))
    );
    assert_eq!(
        parse_column_default(
            m,
            Some("current_timestamp(6)"),
            "on update current_timestamp(6)",
            "timestamp"
        ),
        Some(Expression("current_timestamp(6)".into()))
    );
    assert_eq!(
        parse_column_default(m, Some("(1 + 1)"), "", "int"),
        Some(Expression("(1 + 1)".into()))
    );
    // MySQL 8 prints bare values and flags expressions with DEFAULT_GENERATED
    let y = Flavor::MySql;
    assert_eq!(
        parse_column_default(y, Some("abc"), "", "varchar"),
        Some(Literal("abc".into()))
    );
    assert_eq!(
        parse_column_default(y, Some("NULL"), "", "varchar"),
        Some(Literal("NULL".into()))
    );
    assert_eq!(parse_column_default(y, None, "", "varchar"), None);
    assert_eq!(
        parse_column_default(
            y,
            Some("CURRENT_TIMESTAMP(6)"),
            "DEFAULT_GENERATED on update CURRENT_TIMESTAMP(6)",
            "datetime"
        ),
        Some(Expression("CURRENT_TIMESTAMP(6)".into()))
    );
    assert_eq!(
        parse_column_default(y, Some("(uuid())"), "DEFAULT_GENERATED", "varchar"),
        Some(Expression("(uuid())".into()))
    );
    // MySQL 5.7: CURRENT_TIMESTAMP without the flag
    assert_eq!(
        parse_column_default(
            y,
            Some("CURRENT_TIMESTAMP"),
            "on update CURRENT_TIMESTAMP",
            "timestamp"
        ),
        Some(Expression("CURRENT_TIMESTAMP".into()))
    );
}

/// A COLUMNS row as MySQL 8.0.36 answers it.
fn mysql8_col(
    name: &str,
    pos: &str,
    ty: &str,
    data_type: &str,
    extra: &str,
    default: Option<&str>,
    nullable: &str,
) -> TextRow {
    row(&[
        ("TABLE_NAME", Some("t")),
        ("COLUMN_NAME", Some(name)),
        ("ORDINAL_POSITION", Some(pos)),
        ("COLUMN_DEFAULT", default),
        ("IS_NULLABLE", Some(nullable)),
        ("DATA_TYPE", Some(data_type)),
        ("CHARACTER_MAXIMUM_LENGTH", None),
        ("CHARACTER_OCTET_LENGTH", None),
        ("NUMERIC_PRECISION", Some("10")),
        ("NUMERIC_SCALE", Some("0")),
        ("DATETIME_PRECISION", None),
        ("CHARACTER_SET_NAME", None),
        ("COLLATION_NAME", None),
        ("COLUMN_TYPE", Some(ty)),
        ("EXTRA", Some(extra)),
        ("GENERATION_EXPRESSION", Some("")),
    ])
}

#[test]
fn mysql8_invisible_columns() {
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col("secret", "3", "int", "int", "INVISIBLE", Some("7"), "YES"),
    )
    .unwrap();
    assert!(c.invisible && c.generated.is_none());
    assert_eq!(c.default, Some(ColumnDefault::Literal("7".into())));
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col(
            "ts",
            "4",
            "datetime(6)",
            "datetime",
            "DEFAULT_GENERATED INVISIBLE",
            Some("CURRENT_TIMESTAMP(6)"),
            "NO",
        ),
    )
    .unwrap();
    assert!(c.invisible && !c.nullable);
    assert_eq!(
        c.default,
        Some(ColumnDefault::Expression("CURRENT_TIMESTAMP(6)".into()))
    );
    // a generated invisible primary key (sql_generate_invisible_primary_key, 8.0.30+)
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col(
            "my_row_id",
            "1",
            "bigint unsigned",
            "bigint",
            "auto_increment INVISIBLE",
            None,
            "NO",
        ),
    )
    .unwrap();
    assert!(c.invisible && c.auto_increment && c.unsigned);
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col("v", "5", "int", "int", "", None, "YES"),
    )
    .unwrap();
    assert!(!c.invisible);
    let mut g = mysql8_col("g", "6", "int", "int", "VIRTUAL GENERATED", None, "YES");
    g.last_mut().unwrap().1 = Some("(`a` * 2)".into());
    let c = column_from_row(Flavor::MySql, &g).unwrap();
    assert_eq!(c.generated, Some(Generated::Virtual));
    assert_eq!(c.generation_expression.as_deref(), Some("(`a` * 2)"));
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col("s", "7", "int", "int", "STORED GENERATED", None, "YES"),
    )
    .unwrap();
    assert_eq!(c.generated, Some(Generated::Stored));
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col("j", "8", "json", "json", "", None, "YES"),
    )
    .unwrap();
    assert!(c.json);
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col("b", "9", "bit(12)", "bit", "", Some("b'101'"), "YES"),
    )
    .unwrap();
    assert_eq!(c.bit_width, Some(12));
    let c = column_from_row(
        Flavor::MySql,
        &mysql8_col("e", "10", "enum('x','y''z')", "enum", "", Some("x"), "NO"),
    )
    .unwrap();
    assert_eq!(c.enum_values, ["x", "y'z"]);
}

#[test]
fn keys_and_key_for_migration() {
    let tables = vec![
        row(&[
            ("TABLE_NAME", Some("t")),
            ("ENGINE", Some("InnoDB")),
            ("TABLE_ROWS", Some("1200")),
            ("AVG_ROW_LENGTH", Some("54")),
            ("DATA_LENGTH", Some("65536")),
            ("TABLE_COLLATION", Some("utf8mb4_0900_ai_ci")),
        ]),
        row(&[
            ("TABLE_NAME", Some("u")),
            ("ENGINE", Some("InnoDB")),
            ("TABLE_ROWS", None),
            ("AVG_ROW_LENGTH", None),
            ("DATA_LENGTH", None),
            ("TABLE_COLLATION", Some("latin1_swedish_ci")),
        ]),
    ];
    let cols = vec![
        mysql8_col("b", "2", "int", "int", "", None, "NO"),
        mysql8_col("a", "1", "int", "int", "", None, "NO"),
        mysql8_col("c", "3", "int", "int", "", None, "YES"),
        {
            let mut r = mysql8_col("x", "1", "int", "int", "", None, "YES");
            r[0].1 = Some("u".into());
            r
        },
        {
            let mut r = mysql8_col("y", "2", "int", "int", "", None, "NO");
            r[0].1 = Some("u".into());
            r
        },
    ];
    let st = |t: &str, i: &str, s: &str, c: Option<&str>| {
        row(&[
            ("TABLE_NAME", Some(t)),
            ("INDEX_NAME", Some(i)),
            ("SEQ_IN_INDEX", Some(s)),
            ("COLUMN_NAME", c),
        ])
    };
    let uniq = vec![
        st("t", "PRIMARY", "2", Some("a")),
        st("t", "PRIMARY", "1", Some("b")),
        st("t", "uc", "1", Some("c")),
        st("t", "fx", "1", None), // functional index
        st("u", "ux", "1", Some("x")),
        st("u", "uy", "1", Some("y")),
    ];
    let out = build_tables(Flavor::MySql, "db", &tables, &cols, &uniq, &[]).unwrap();
    let t = &out[0];
    assert_eq!(
        t.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(t.primary_key, ["b", "a"]);
    assert_eq!(t.unique_keys.len(), 1);
    assert!(!t.unique_keys[0].all_not_null);
    assert_eq!(t.row_estimate, 1200);
    assert_eq!(t.charset.as_deref(), Some("utf8mb4"));
    assert_eq!(
        key_for_migration(t),
        Some(vec!["b".to_string(), "a".to_string()])
    );
    let u = &out[1];
    assert!(u.primary_key.is_empty());
    assert_eq!(u.row_estimate, 0);
    assert_eq!(key_for_migration(u), Some(vec!["y".to_string()]));
    let mut none = u.clone();
    none.unique_keys.retain(|k| !k.all_not_null);
    assert_eq!(key_for_migration(&none), None);
}

#[test]
fn json_checks_and_charsets() {
    assert_eq!(json_check_column("json_valid(`j`)").as_deref(), Some("j"));
    assert_eq!(
        json_check_column("JSON_VALID(`we``ird`)").as_deref(),
        Some("we`ird")
    );
    assert_eq!(json_check_column("json_valid(doc)").as_deref(), Some("doc"));
    assert_eq!(json_check_column("`a` > 0"), None);
    assert_eq!(json_check_column("json_valid(`a`) and `b` > 0"), None);
    assert_eq!(charset_of_collation("utf8mb4_uca1400_ai_ci"), "utf8mb4");
    assert_eq!(charset_of_collation("binary"), "binary");
    assert_eq!(charset_of_collation("latin1_swedish_ci"), "latin1");
}
