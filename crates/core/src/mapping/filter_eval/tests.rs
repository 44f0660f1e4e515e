use super::*;
use crate::mysql::ColumnInfo;

fn table() -> TableInfo {
    let mut cols = vec![
        ColumnInfo::of_type("id", 1, "bigint", "bigint(20)"),
        ColumnInfo::of_type("u", 2, "bigint", "bigint(20) unsigned"),
        ColumnInfo::of_type("d", 3, "decimal", "decimal(10,2)"),
        ColumnInfo::of_type("f", 4, "double", "double"),
        ColumnInfo::of_type("ci", 5, "varchar", "varchar(20)"),
        ColumnInfo::of_type("bn", 6, "varchar", "varchar(20)"),
        ColumnInfo::of_type("dt", 7, "date", "date"),
        ColumnInfo::of_type("ts", 8, "datetime", "datetime(3)"),
        ColumnInfo::of_type("tm", 9, "time", "time"),
        ColumnInfo::of_type("e", 10, "enum", "enum('a','b')"),
        ColumnInfo::of_type("uc", 11, "varchar", "varchar(20)"),
    ];
    cols[2].numeric_precision = Some(10);
    cols[4].collation = Some("utf8mb4_general_ci".into());
    cols[5].collation = Some("utf8mb4_bin".into());
    cols[10].collation = Some("utf8mb4_unicode_ci".into());
    TableInfo {
        schema: "s".into(),
        name: "t".into(),
        columns: cols,
        primary_key: vec!["id".into()],
        unique_keys: vec![],
        row_estimate: 0,
        avg_row_length: 0,
        data_length: 0,
        engine: None,
        charset: None,
        collation: None,
    }
}

const COLS: [&str; 9] = ["id", "u", "d", "f", "ci", "bn", "dt", "ts", "tm"];

fn row(values: [Option<&str>; 9]) -> Vec<Option<Vec<u8>>> {
    values
        .iter()
        .map(|v| v.map(|s| s.as_bytes().to_vec()))
        .collect()
}

fn sample() -> Vec<Option<Vec<u8>>> {
    row([
        Some("5"),
        Some("18446744073709551615"),
        Some("12.50"),
        Some("0.1"),
        Some("Hello  "),
        Some("Hello"),
        Some("2024-02-29"),
        Some("2024-02-29 10:00:00.250"),
        Some("-01:30:00"),
    ])
}

fn eval(filter: &str, r: &[Option<Vec<u8>>]) -> Result<bool, EvalError> {
    let f = RowFilter::compile(filter, &table(), &COLS).unwrap_or_else(|e| panic!("{e}"));
    f.matches(r)
}

#[test]
fn answers_as_mysql_on_a_sample_row() {
    let r = sample();
    let yes = [
        "id = 5",
        "id <> 4 AND id != 6",
        "id = '5'",
        "id = '5.0'",
        "id = ' 5'",
        "u = 18446744073709551615",
        "u > id",
        "d = 12.5",
        "d = '12.5'",
        "d * 2 = 25",
        "d + id = 17.50",
        "f = 0.1e0",
        "f = 0.1",
        "f + 0.2e0 > 0.3",
        "ci = 'hello'",
        "ci = 'HELLO   '",
        "ci LIKE 'h%o  '",
        "bn = 'Hello  '",
        "bn <> 'hello'",
        "bn LIKE 'H_llo'",
        "bn NOT LIKE 'h%'",
        "dt = '2024-02-29'",
        "ts > '2024-02-29 10:00:00'",
        "ts BETWEEN '2024-02-29' AND '2024-03-01'",
        "dt < ts",
        "tm < '00:00:00'",
        "id IN (1, 5, NULL)",
        "id NOT IN (1, 2)",
        "id BETWEEN 5 AND 5",
        "NOT id = 4",
        "(id = 5) XOR (id = 4)",
        "(id = 4) IS FALSE",
        "(id = NULL) IS NULL",
        "(id = NULL) IS NOT TRUE",
        "id <=> 5",
        "NOT (NULL <=> id)",
        "7 % id = 2",
        "-7 % id = -2",
        "7 DIV 2 = 3",
        "id / 2e0 = 2.5",
        "'3abc' + 1 = 4",
        "-id = -5",
        "id - 10 < 0",
        "id % 0 IS NULL",
        "tm IS NOT NULL AND dt IS NOT NULL",
        "f / 0 IS NULL",
        "dt LIKE '2024-%'",
        "id LIKE '5'",
        "TRUE",
    ];
    for f in yes {
        assert_eq!(eval(f, &r), Ok(true), "{f}");
    }
    let no = [
        "id = 4",
        "ci = 'hallo'",
        "bn = 'HELLO'",
        "ci LIKE 'h%o'",
        "id IN (1, NULL)",
        "NOT (id IN (1, NULL))",
        "id = NULL",
        "NULL",
        "FALSE",
        "ci",
        "ts = '2024-02-29 10:00:00'",
        "id = 5 AND NULL",
        "(id = 5) XOR (id = 5)",
    ];
    for f in no {
        assert_eq!(eval(f, &r), Ok(false), "{f}");
    }
}

#[test]
fn null_columns_follow_three_valued_logic() {
    let r = row([Some("1"), None, None, None, None, None, None, None, None]);
    assert_eq!(eval("u IS NULL AND ci IS NULL", &r), Ok(true));
    assert_eq!(eval("u = 1 OR id = 1", &r), Ok(true));
    assert_eq!(eval("u = 1 OR id = 2", &r), Ok(false));
    assert_eq!(eval("NOT (u = 1)", &r), Ok(false));
    assert_eq!(eval("(u = 1) IS UNKNOWN", &r), Ok(true));
    assert_eq!(eval("u <=> NULL", &r), Ok(true));
    assert_eq!(eval("dt >= '2024-01-01' OR dt IS NULL", &r), Ok(true));
}

#[test]
fn out_of_range_and_unreproducible_values_are_errors_not_answers() {
    let r = sample();
    assert!(eval("u + 1 > 0", &r).is_err());
    assert!(eval("id - 6 - u > 0", &r).is_err());
    assert_eq!(eval("id - 6 + u > 0", &r), Ok(true));
    let mut accented = sample();
    accented[4] = Some("héllo".as_bytes().to_vec());
    assert!(eval("ci = 'hello'", &accented).is_err());
    // A _bin collation compares any text exactly.
    accented[5] = Some("héllo".as_bytes().to_vec());
    assert_eq!(eval("bn > 'hz'", &accented), Ok(true));
}

#[test]
fn unsupported_filters_are_refused_with_the_reason() {
    let t = table();
    let cases = [
        ("lower(ci) = 'a'", "functions"),
        ("nope = 1", "no column `nope`"),
        ("t.id = 1", "without a table"),
        ("e = 'a'", "enum"),
        ("uc = 'a'", "utf8mb4_unicode_ci"),
        ("ci = bn", "different collations"),
        ("'a' = 'b'", "string constants"),
        ("id / 2 = 1", "`/` on integers"),
        ("d DIV 2 = 1", "DIV"),
        ("d % 2 = 1", "`%` on decimals"),
        ("dt = 20240101", "string literal"),
        ("dt = '2024-1-1'", "canonical DATE"),
        ("dt + 1 > 0", "arithmetic on a date"),
        ("tm = dt", "TIME is compared"),
        ("dt", "used as a condition"),
        ("ci LIKE bn", "pattern must be a string literal"),
        ("f LIKE '1%'", "LIKE applies"),
        ("ci LIKE 'a' ESCAPE 'ab'", "ESCAPE"),
        ("id = 5 XOR id = 4", "XOR binds"),
        ("ci = 'x\\ay'", "reads differently"),
        ("(id = 5) XOR (id = 4) AND id = 1", "XOR binds"),
        ("NOT (id = 5) XOR (id = 4)", "XOR binds"),
        ("id = 1 LIKE '1'", "add parentheses"),
        ("id = 1 IN (1)", "add parentheses"),
        ("id = 1 BETWEEN 0 AND 1", "add parentheses"),
    ];
    let cols = ["id", "u", "d", "f", "ci", "bn", "dt", "ts", "tm", "e", "uc"];
    for (f, why) in cases {
        let e = RowFilter::compile(f, &t, &cols).expect_err(f);
        assert!(e.to_string().contains(why), "{f}: {e}");
    }
}

#[test]
fn filter_columns_are_resolved_against_the_table() {
    let t = table();
    assert_eq!(
        filter_columns("ID > 1 AND (Ci LIKE 'a%' OR id < 0)", &t).unwrap(),
        ["id", "ci"]
    );
    assert!(filter_columns("missing = 1", &t).is_err());
}
