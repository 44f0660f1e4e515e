//! The chunk reader and row conversion against a real, private MariaDB
//! (tests/integration/harness/mariadb.rs): every type of design §4 read through the text protocol and
//! converted byte for byte; keyset paging over single, composite, string and binary keys with
//! a filter; split points that bound chunks for sparse integer and string keys.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::harness::mariadb::MariaDb;
use mysql_async::prelude::Queryable;
use tablestore::{PrimaryKey, Row, Value};
use tsmigrate_core::config::{ColumnSpec, ColumnType, FloatPrecision, NameCase, TableSpec};
use tsmigrate_core::mapping::convert::{convert_value, select_list, RowConverter};
use tsmigrate_core::mapping::{map_table, TableMapping};
use tsmigrate_core::mysql::{
    self, count_range, describe_table, key_at_offset, key_bounds, page_sql, quote_ident, read_page,
    split_points, Conn, KeyValue, PageQuery, SourceError, SourceRow, SqlValue,
};

pub(crate) async fn reader(db: &MariaDb) -> Conn {
    match mysql::connect_for_reading(&db.user_options()).await {
        Ok(c) => c,
        Err(e) => panic!("tsmigrate user cannot connect: {e}"),
    }
}

/// Pages through a whole range; returns the rows and the number of pages.
pub(crate) async fn page_all(conn: &mut Conn, db: &str, q: &PageQuery) -> (Vec<SourceRow>, usize) {
    let mut q = q.clone();
    let mut rows = Vec::new();
    let mut pages = 0;
    loop {
        let page = read_page(conn, db, &q).await.unwrap();
        pages += 1;
        assert!(page.rows.len() as u64 <= q.limit);
        assert_eq!(
            page.bytes,
            page.rows
                .iter()
                .flatten()
                .map(|v| v.as_ref().map_or(0, |b| b.len() as u64))
                .sum::<u64>()
        );
        let last = page.is_last(&q);
        rows.extend(page.rows);
        match page.last_key {
            Some(k) if !last => q = q.after(k),
            _ => break,
        }
        assert!(pages < 100_000, "paging does not end");
    }
    (rows, pages)
}

/// The same rows in one plain query (the reference).
async fn all_at_once(conn: &mut Conn, sql: &str) -> Vec<SourceRow> {
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap();
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(b),
                    other => panic!("text protocol gave {other:?}"),
                })
                .collect()
        })
        .collect()
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| quote_ident(n)).collect()
}

pub(crate) fn key(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

pub(crate) const ALL_TYPES: &str = "CREATE TABLE all_types (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    i_tiny TINYINT, i_small SMALLINT UNSIGNED, i_med MEDIUMINT, i_int INT,
    i_zf INT(5) UNSIGNED ZEROFILL, y YEAR, b5 BIT(5), b64 BIT(64), flag TINYINT(1),
    dec65 DECIMAL(65,30), dec2 DECIMAL(10,2), f FLOAT, d DOUBLE, f_str FLOAT,
    vc VARCHAR(50) CHARACTER SET utf8mb4, l1 VARCHAR(50) CHARACTER SET latin1, ch CHAR(4),
    tx TEXT, e ENUM('small','medium','large'), s SET('a','b','c'), j JSON,
    bin BINARY(4), vb VARBINARY(16), bl BLOB, g POINT,
    dt DATE, tm TIME(1), tmn TIME, dt6 DATETIME(6), ts6 TIMESTAMP(6) NULL DEFAULT NULL,
    dt_em DATETIME(6), d_em DATE, inv INT INVISIBLE, u_big BIGINT UNSIGNED
) DEFAULT CHARSET = utf8mb4";

const DEC65: &str = "-12345678901234567890123456789012345.123456789012345678901234567890";

/// The column types the all-types tests override (the rest map by default).
pub(crate) const ALL_TYPES_OVERRIDES: &[(&str, ColumnType)] = &[
    ("flag", ColumnType::Boolean),
    ("i_med", ColumnType::Double),
    ("dec2", ColumnType::Double),
    ("f_str", ColumnType::String),
    ("dt_em", ColumnType::EpochMicros),
    ("d_em", ColumnType::EpochMicros),
];

async fn all_types_mapping(conn: &mut Conn, database: &str) -> TableMapping {
    all_types_mapping_with(conn, database, ALL_TYPES_OVERRIDES).await
}

/// The mapping of `all_types` with `overrides` (column, type).
pub(crate) async fn all_types_mapping_with(
    conn: &mut Conn,
    database: &str,
    overrides: &[(&str, ColumnType)],
) -> TableMapping {
    let info = describe_table(conn, database, "all_types").await.unwrap();
    let mut spec = TableSpec::new("all_types");
    let mut over = BTreeMap::new();
    for (c, t) in overrides {
        over.insert(
            c.to_string(),
            ColumnSpec {
                target: None,
                column_type: Some(*t),
            },
        );
    }
    spec.columns = over;
    map_table(&info, Some(&spec), NameCase::Default).unwrap()
}

/// Compares cells exactly (doubles bit for bit).
fn assert_cells(got: &Row, want: &[(&str, Value)], ctx: &str) {
    let names: Vec<&str> = got.cells.iter().map(|c| c.name.as_str()).collect();
    let want_names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, want_names, "{ctx}: cell names");
    for (c, (n, v)) in got.cells.iter().zip(want) {
        match (&c.value, v) {
            (Value::Double(a), Value::Double(b)) => {
                assert_eq!(a.to_bits(), b.to_bits(), "{ctx}: {n}: {a:e} vs {b:e}")
            }
            (a, b) => assert_eq!(a, b, "{ctx}: {n}"),
        }
    }
}

fn point(x: f64, y: f64) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0, 1, 1, 0, 0, 0];
    v.extend_from_slice(&x.to_le_bytes());
    v.extend_from_slice(&y.to_le_bytes());
    v
}

/// The rows of [`every_type_arrives_and_converts_exactly`] (also replayed from the binlog by
/// `binlog_stream`): every type's edge values, a NULL row, zero dates. `negative_time_fraction`
/// is the TIME(1) value of the last row (`-00:00:00.1` in both callers).
pub(crate) async fn load_all_types(db: &MariaDb, database: &str, negative_time_fraction: &str) {
    db.exec(&format!(
        "USE `{database}`; SET NAMES utf8mb4; SET time_zone = '+08:00';
         INSERT INTO all_types (id, i_tiny, i_small, i_med, i_int, i_zf, y, b5, b64, flag, dec65,
             dec2, f, d, f_str, vc, l1, ch, tx, e, s, j, bin, vb, bl, g, dt, tm, tmn, dt6, ts6,
             dt_em, d_em, inv, u_big)
         VALUES (1, -128, 65535, -8388608, 2147483647, 42, 2024, b'10101',
             b'0111111111111111111111111111111111111111111111111111111111111111', 1,
             '{DEC65}', 1.5, 0.1, 1.7976931348623157e308, 0.1,
             '😀 emoji', 'café', 'ab', 'it''s\\\\ a\\nline', 'medium', 'c,a',
             '{{\"a\": [1, 2.5, \"x\"], \"emoji\": \"😀\"}}',
             X'00FF', X'00FF80', X'DEADBEEF00', ST_GeomFromText('POINT(1 2)'),
             '2024-02-29', '100:00:00.5', '-838:59:59', '2024-05-01 12:30:00.123456',
             '2024-05-01 12:30:00.123456', '2024-05-01 12:30:00.123456', '1970-01-02', 7,
             9223372036854775807);
         INSERT INTO all_types (id) VALUES (2);
         INSERT INTO all_types (id, u_big) VALUES (3, 9223372036854775808);
         INSERT INTO all_types (id, dt, d_em) VALUES (4, '0000-00-00', '0000-00-00');
         INSERT INTO all_types (id, f, d, dec65, tm, b64, i_zf, ts6)
         VALUES (9223372036854775807, 3.4028234e38, 5e-324, '0.000000000000000000000000000001',
                 '{negative_time_fraction}', b'0', 0, '1970-01-01 08:00:01.000001');"
    ))
    .await;
    // 0.1 + 0.2 computed by the server, as a DOUBLE
    db.exec(&format!(
        "UPDATE `{database}`.all_types SET d = 0.1e0 + 0.2e0 WHERE id = 2"
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_arrives_and_converts_exactly() {
    let db = MariaDb::shared();
    let database = db.fresh_database("cr_types").await;
    db.exec(&format!("USE `{database}`; {ALL_TYPES}")).await;
    load_all_types(db, &database, "-00:00:00.1").await;

    let mut conn = reader(db).await;
    let m = all_types_mapping(&mut conn, &database).await;
    assert!(m
        .attributes
        .iter()
        .any(|c| c.source.name == "inv" && c.source.invisible));
    let fp = FloatPrecision::default();
    let select = select_list(&m, &fp);
    assert!(select.contains(&"`f` * 1e0".to_string()), "{select:?}");
    assert!(select.contains(&"`inv`".to_string()), "{select:?}");
    let q = PageQuery::new("all_types", select, key(&["id"]), 2);
    let (rows, pages) = page_all(&mut conn, &database, &q).await;
    assert_eq!(rows.len(), 5);
    assert_eq!(pages, 3);
    let conv = RowConverter::new(&m);
    let ids: Vec<PrimaryKey> = rows.iter().map(|r| conv.primary_key(r).unwrap()).collect();
    assert_eq!(
        ids,
        [1, 2, 3, 4, i64::MAX].map(|i| PrimaryKey::new().with("id", i))
    );

    // row 1: every type
    let r1 = conv.to_put_row(&rows[0]).unwrap();
    let s = |v: &str| Value::String(v.to_string());
    assert_cells(
        &r1,
        &[
            ("i_tiny", Value::Integer(-128)),
            ("i_small", Value::Integer(65535)),
            ("i_med", Value::Double(-8388608.0)),
            ("i_int", Value::Integer(2147483647)),
            ("i_zf", Value::Integer(42)),
            ("y", Value::Integer(2024)),
            ("b5", Value::Integer(21)),
            ("b64", Value::Integer(i64::MAX)),
            ("flag", Value::Boolean(true)),
            ("dec65", s(DEC65)),
            ("dec2", Value::Double(1.5)),
            ("f", Value::Double(0.1f32 as f64)),
            ("d", Value::Double(f64::MAX)),
            ("f_str", s("0.1")),
            ("vc", s("😀 emoji")),
            ("l1", s("café")),
            ("ch", s("ab")),
            ("tx", s("it's\\ a\nline")),
            ("e", s("medium")),
            ("s", s("a,c")),
            ("j", s(r#"{"a": [1, 2.5, "x"], "emoji": "😀"}"#)),
            ("bin", Value::Binary(vec![0, 0xFF, 0, 0])),
            ("vb", Value::Binary(vec![0, 0xFF, 0x80])),
            ("bl", Value::Binary(vec![0xDE, 0xAD, 0xBE, 0xEF, 0])),
            ("g", Value::Binary(point(1.0, 2.0))),
            ("dt", s("2024-02-29")),
            ("tm", s("100:00:00.5")),
            ("tmn", s("-838:59:59")),
            ("dt6", s("2024-05-01 12:30:00.123456")),
            // inserted at +08:00, read in UTC
            ("ts6", s("2024-05-01 04:30:00.123456")),
            ("dt_em", Value::Integer(1_714_566_600_123_456)),
            ("d_em", Value::Integer(86_400_000_000)),
            ("inv", Value::Integer(7)),
            ("u_big", Value::Integer(i64::MAX)),
        ],
        "row 1",
    );

    // row 2: NULLs are absent (put) or deleted (update); d = 0.1 + 0.2 bit for bit
    let r2 = conv.to_put_row(&rows[1]).unwrap();
    assert_cells(&r2, &[("d", Value::Double(0.1 + 0.2))], "row 2");
    let (_, ops) = conv.to_update_ops(&rows[1]).unwrap();
    assert_eq!(ops.len(), m.attributes.len());
    assert_eq!(
        ops.iter()
            .filter(|o| matches!(o, tablestore::CellOp::DeleteAllVersions { .. }))
            .count(),
        m.attributes.len() - 1
    );

    // row 3: BIGINT UNSIGNED above 2^63-1 is dirty data naming the column, not the value
    let e = conv.to_put_row(&rows[2]).unwrap_err();
    assert_eq!(e.column, "u_big");
    assert!(!e.to_string().contains("9223372036854775808"), "{e}");
    assert!(conv.to_update_ops(&rows[2]).is_err());
    // ... but the key is fine (it may go into the dirty-data record)
    assert_eq!(
        conv.primary_key(&rows[2]).unwrap(),
        PrimaryKey::new().with("id", 3)
    );

    // row 4: a zero date is dirty for epoch_micros, kept as text for string
    let e = conv.to_put_row(&rows[3]).unwrap_err();
    assert_eq!(e.column, "d_em");
    assert!(e.reason.contains("zero date"), "{e}");
    let order: Vec<&str> = m.source_columns();
    let dt_pos = order.iter().position(|c| *c == "dt").unwrap();
    let dt_map = m.attributes.iter().find(|c| c.source.name == "dt").unwrap();
    assert_eq!(
        convert_value(dt_map, rows[3][dt_pos].as_deref().unwrap()).unwrap(),
        s("0000-00-00")
    );

    // last row: the largest signed key, float/double extremes
    let r5 = conv.to_put_row(&rows[4]).unwrap();
    assert_cells(
        &r5,
        &[
            ("i_zf", Value::Integer(0)),
            ("b64", Value::Integer(0)),
            ("dec65", s("0.000000000000000000000000000001")),
            ("f", Value::Double(f32::MAX as f64)),
            ("d", Value::Double(5e-324)),
            ("tm", s("-00:00:00.1")),
            ("ts6", s("1970-01-01 00:00:01.000001")),
        ],
        "last row",
    );
    // the plain text of the zerofill column
    let zf_pos = order.iter().position(|c| *c == "i_zf").unwrap();
    assert_eq!(rows[4][zf_pos].as_deref(), Some(&b"00000"[..]));

    // the cursor of the last page is the largest key, as an unsigned integer
    let bounds = key_bounds(&mut conn, &database, "all_types", &key(&["id"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bounds.0, KeyValue(vec![SqlValue::UInt(1)]));
    assert_eq!(bounds.1, KeyValue(vec![SqlValue::UInt(i64::MAX as u64)]));
    mysql::close(conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn float_precision_rounds_when_asked() {
    let db = MariaDb::shared();
    let database = db.fresh_database("cr_round").await;
    db.exec(&format!(
        "CREATE TABLE `{database}`.t (id INT PRIMARY KEY, f FLOAT, d DOUBLE);
         INSERT INTO `{database}`.t VALUES (1, 1.23456, 1.414213562373095)"
    ))
    .await;
    let mut conn = reader(db).await;
    let info = describe_table(&mut conn, &database, "t").await.unwrap();
    let m = map_table(&info, None, NameCase::Default).unwrap();
    let fp = FloatPrecision {
        float: Some(2),
        double: Some(3),
    };
    let q = PageQuery::new("t", select_list(&m, &fp), key(&["id"]), 10);
    let page = read_page(&mut conn, &database, &q).await.unwrap();
    let row = RowConverter::new(&m).to_put_row(&page.rows[0]).unwrap();
    assert_cells(
        &row,
        &[("f", Value::Double(1.23)), ("d", Value::Double(1.414))],
        "rounded",
    );
    mysql::close(conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_key_with_filter_pages_every_row_once_in_order() {
    let db = MariaDb::shared();
    let database = db.fresh_database("cr_comp").await;
    db.exec(&format!(
        "USE `{database}`;
         CREATE TABLE comp (a INT NOT NULL, b VARCHAR(20) NOT NULL, v INT, note VARCHAR(40),
                            PRIMARY KEY (a, b)) DEFAULT CHARSET = utf8mb4;
         INSERT INTO comp SELECT CAST(seq AS SIGNED) DIV 7 - 100, ELT(seq MOD 7 + 1, '', 'a', 'B', 'c''q',
             'd\\\\e', '😀', 'zz'), seq, IF(seq MOD 5 = 0, NULL, CONCAT('n', seq))
         FROM seq_0_to_1999"
    ))
    .await;
    let mut conn = reader(db).await;
    let columns = cols(&["v", "b", "note"]); // `a` is appended by the reader
    let filter = "v MOD 3 <> 0 AND (note IS NULL OR note <> 'n1000')";
    let want = all_at_once(
        &mut conn,
        &format!("SELECT v, b, note FROM `{database}`.comp WHERE {filter} ORDER BY a, b"),
    )
    .await;
    assert!(want.len() > 1000);
    for limit in [1u64, 7, 64, 5000] {
        let mut q = PageQuery::new("comp", columns.clone(), key(&["a", "b"]), limit);
        q.filter = Some(filter.to_string());
        if limit == 1 {
            // one-row pages over the first 50 rows only (each is a query)
            q.upper_inclusive = Some(KeyValue(vec![
                SqlValue::Int(-93),
                SqlValue::Text("zz".into()),
            ]));
            let (got, _) = page_all(&mut conn, &database, &q).await;
            let n = got.len();
            assert!(n > 20 && n < 60, "{n}");
            assert_eq!(got, want[..n], "limit {limit}");
            continue;
        }
        let (got, pages) = page_all(&mut conn, &database, &q).await;
        assert_eq!(got.len(), want.len(), "limit {limit}");
        assert_eq!(got, want, "limit {limit}");
        assert_eq!(pages as u64, want.len() as u64 / limit + 1);
    }

    // a range in the middle, both bounds, composite cursor with a string part
    let mut q = PageQuery::new("comp", columns.clone(), key(&["a", "b"]), 10);
    q.lower_exclusive = Some(KeyValue(vec![
        SqlValue::Int(-50),
        SqlValue::Text("B".into()),
    ]));
    q.upper_inclusive = Some(KeyValue(vec![
        SqlValue::Int(-40),
        SqlValue::Text("c'q".into()),
    ]));
    let (got, _) = page_all(&mut conn, &database, &q).await;
    let want_mid = all_at_once(
        &mut conn,
        &format!(
            "SELECT v, b, note FROM `{database}`.comp WHERE (a, b) > (-50, 'B') AND (a, b) <= (-40, 'c''q') ORDER BY a, b"
        ),
    )
    .await;
    assert_eq!(got, want_mid);
    assert_eq!(
        count_range(&mut conn, &database, &q).await.unwrap(),
        want_mid.len() as u64
    );

    // the OR-chain is a range scan (a row constructor would scan the index from the start)
    let explain: Vec<mysql_async::Row> = conn
        .query(format!("EXPLAIN {}", page_sql(&database, &q).unwrap()))
        .await
        .unwrap();
    let access: String = explain[0].get("type").unwrap();
    assert_eq!(access, "range");
    mysql::close(conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn string_and_binary_keys_page_in_collation_order() {
    let db = MariaDb::shared();
    let database = db.fresh_database("cr_str").await;
    db.exec(&format!(
        "USE `{database}`; SET NAMES utf8mb4;
         CREATE TABLE l1 (k VARCHAR(30) CHARACTER SET latin1 NOT NULL PRIMARY KEY, v INT);
         INSERT INTO l1 VALUES ('café', 1), ('abc', 2), ('Abd', 3), ('Zed', 4), ('it''s', 5),
             ('back\\\\slash', 6), ('', 7), (' lead', 8), ('x y', 9), ('ÿ', 10);
         CREATE TABLE u8 (k VARCHAR(30) NOT NULL PRIMARY KEY, v INT) DEFAULT CHARSET = utf8mb4;
         INSERT INTO u8 VALUES ('😀', 1), ('a😀', 2), ('B', 3), ('c', 4), ('', 5), ('中文', 6);
         CREATE TABLE vb (k VARBINARY(8) NOT NULL PRIMARY KEY, v INT);
         INSERT INTO vb VALUES (X'00', 1), (X'0000', 2), (X'FF', 3), (X'7F01', 4), ('', 5), ('A', 6), ('a', 7);"
    ))
    .await;
    let mut conn = reader(db).await;
    for table in ["l1", "u8", "vb"] {
        let want = all_at_once(
            &mut conn,
            &format!("SELECT k, v FROM `{database}`.`{table}` ORDER BY k"),
        )
        .await;
        for limit in [1, 2, 3] {
            let q = PageQuery::new(table, cols(&["k", "v"]), key(&["k"]), limit);
            let (got, _) = page_all(&mut conn, &database, &q).await;
            assert_eq!(got, want, "{table} limit {limit}");
        }
    }
    // latin1 arrives as UTF-8, and the cursor is text; binary cursors are bytes
    let q = PageQuery::new("l1", cols(&["k"]), key(&["k"]), 100);
    let page = read_page(&mut conn, &database, &q).await.unwrap();
    assert!(page.rows.contains(&vec![Some("café".as_bytes().to_vec())]));
    assert!(matches!(&page.last_key, Some(KeyValue(v)) if matches!(&v[0], SqlValue::Text(_))));
    let q = PageQuery::new("vb", cols(&["k"]), key(&["k"]), 100);
    let page = read_page(&mut conn, &database, &q).await.unwrap();
    assert_eq!(
        page.last_key,
        Some(KeyValue(vec![SqlValue::Bytes(vec![0xFF])]))
    );
    // a cursor survives the state store (JSON) and resumes where it was
    let q = PageQuery::new("u8", cols(&["k"]), key(&["k"]), 3);
    let first = read_page(&mut conn, &database, &q).await.unwrap();
    let json = serde_json::to_string(&first.last_key).unwrap();
    let cursor: Option<KeyValue> = serde_json::from_str(&json).unwrap();
    let second = read_page(&mut conn, &database, &q.after(cursor.unwrap()))
        .await
        .unwrap();
    let all = read_page(
        &mut conn,
        &database,
        &PageQuery {
            limit: 100,
            ..q.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!([first.rows, second.rows].concat(), all.rows);
    mysql::close(conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_points_bound_chunks_for_sparse_and_string_keys() {
    let db = MariaDb::shared();
    let database = db.fresh_database("cr_split").await;
    db.exec(&format!(
        "USE `{database}`;
         CREATE TABLE sparse (id BIGINT NOT NULL PRIMARY KEY, v INT);
         INSERT INTO sparse SELECT POW(CAST(seq AS SIGNED), 3) - 500000, seq FROM seq_1_to_1000;
         CREATE TABLE skeys (k VARCHAR(20) NOT NULL PRIMARY KEY, v INT);
         INSERT INTO skeys SELECT CONCAT(ELT(seq MOD 3 + 1, 'x', 'M', 'b'), LPAD(seq * 7919 MOD 100003, 6, '0')), seq
         FROM seq_1_to_1000;
         CREATE TABLE empty_t (id INT PRIMARY KEY);"
    ))
    .await;
    let mut conn = reader(db).await;
    for (table, k) in [("sparse", "id"), ("skeys", "k")] {
        let key = key(&[k]);
        let points = split_points(&mut conn, &database, table, &key, None, 128, 100)
            .await
            .unwrap();
        assert_eq!(points.len(), 7, "{table}"); // 1000 / 128
                                                // the same points in waves of 3
        let mut waves = Vec::new();
        let mut after: Option<KeyValue> = None;
        loop {
            let w = split_points(&mut conn, &database, table, &key, after.as_ref(), 128, 3)
                .await
                .unwrap();
            after = w.last().cloned();
            let done = w.len() < 3;
            waves.extend(w);
            if done {
                break;
            }
        }
        assert_eq!(waves, points, "{table}");
        // chunks (None, p1], (p1, p2], ..., (p7, None): 128 rows each, the rest last, no overlap
        let want = all_at_once(
            &mut conn,
            &format!("SELECT {k}, v FROM `{database}`.{table} ORDER BY {k}"),
        )
        .await;
        let mut bounds: Vec<Option<KeyValue>> = vec![None];
        bounds.extend(points.iter().cloned().map(Some));
        bounds.push(None);
        let mut got = Vec::new();
        for (i, w) in bounds.windows(2).enumerate() {
            let mut q = PageQuery::new(table, cols(&[k, "v"]), key.clone(), 50);
            q.lower_exclusive = w[0].clone();
            q.upper_inclusive = w[1].clone();
            let (rows, _) = page_all(&mut conn, &database, &q).await;
            let expect = if i < 7 { 128 } else { 1000 - 7 * 128 };
            assert_eq!(rows.len(), expect, "{table} chunk {i}");
            assert_eq!(
                count_range(&mut conn, &database, &q).await.unwrap(),
                expect as u64
            );
            got.extend(rows);
        }
        assert_eq!(got, want, "{table}");
        let at = key_at_offset(&mut conn, &database, table, &key, None, 127)
            .await
            .unwrap();
        assert_eq!(at.as_ref(), points.first());
    }
    let sparse = key_bounds(&mut conn, &database, "sparse", &key(&["id"]))
        .await
        .unwrap();
    assert_eq!(
        sparse,
        Some((
            KeyValue(vec![SqlValue::Int(1 - 500_000)]),
            KeyValue(vec![SqlValue::Int(1_000_000_000 - 500_000)])
        ))
    );
    assert_eq!(
        key_bounds(&mut conn, &database, "empty_t", &key(&["id"]))
            .await
            .unwrap(),
        None
    );
    assert!(
        split_points(&mut conn, &database, "empty_t", &key(&["id"]), None, 10, 10)
            .await
            .unwrap()
            .is_empty()
    );
    mysql::close(conn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpageable_keys_are_reported_not_skipped() {
    let db = MariaDb::shared();
    let database = db.fresh_database("cr_bad").await;
    db.exec(&format!(
        "USE `{database}`;
         CREATE TABLE en (k ENUM('z', 'a') NOT NULL PRIMARY KEY, v INT);
         INSERT INTO en VALUES ('z', 1), ('a', 2);
         CREATE TABLE nk (k INT NULL, v INT, UNIQUE KEY (k));
         INSERT INTO nk VALUES (NULL, 1), (2, 2);"
    ))
    .await;
    let mut conn = reader(db).await;
    let q = PageQuery::new("en", cols(&["k", "v"]), key(&["k"]), 1);
    let e = read_page(&mut conn, &database, &q).await.unwrap_err();
    assert!(matches!(e, SourceError::InvalidOptions { .. }), "{e}");
    assert!(e.to_string().contains("ENUM"), "{e}");
    let q = PageQuery::new("nk", cols(&["k", "v"]), key(&["k"]), 10);
    let e = read_page(&mut conn, &database, &q).await.unwrap_err();
    assert!(e.to_string().contains("NULL"), "{e}");
    // a missing table is a server error naming it
    let q = PageQuery::new("nope", cols(&["k"]), key(&["k"]), 10);
    let e = read_page(&mut conn, &database, &q).await.unwrap_err();
    assert!(matches!(e, SourceError::Server { code: 1146, .. }), "{e}");
    mysql::close(conn).await;
}

/// Throughput of read_page (+ conversion) on 100k rows of ~200 bytes. Run in release:
/// `cargo test --release --test chunk_reader -- --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let db = MariaDb::shared();
    let database = db.fresh_database("cr_bench").await;
    db.exec(&format!(
        "USE `{database}`;
         CREATE TABLE bench (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, a INT, b VARCHAR(100),
             c DECIMAL(12,2), d DATETIME(6), e DOUBLE, f FLOAT, g VARCHAR(64)) DEFAULT CHARSET = utf8mb4;
         INSERT INTO bench SELECT seq, seq * 3, REPEAT(CHAR(65 + seq MOD 26), 100), seq / 7,
             '2024-05-01 12:30:00.123456' + INTERVAL seq SECOND, seq / 3e0, seq / 9, MD5(seq)
         FROM seq_1_to_100000;
         ANALYZE TABLE bench;"
    ))
    .await;
    let mut conn = reader(db).await;
    let info = describe_table(&mut conn, &database, "bench").await.unwrap();
    let m = map_table(&info, None, NameCase::Default).unwrap();
    let conv = RowConverter::new(&m);
    for page_rows in [1000u64, 5000] {
        let q = PageQuery::new(
            "bench",
            select_list(&m, &FloatPrecision::default()),
            key(&["id"]),
            page_rows,
        );
        let start = Instant::now();
        let mut q2 = q.clone();
        let (mut n, mut bytes, mut cells) = (0usize, 0u64, 0usize);
        loop {
            let page = read_page(&mut conn, &database, &q2).await.unwrap();
            n += page.rows.len();
            bytes += page.bytes;
            for r in &page.rows {
                cells += conv.to_put_row(r).unwrap().cells.len();
            }
            match page.last_key {
                Some(k) if !page.is_last(&q2) => q2 = q2.after(k),
                _ => break,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(n, 100_000);
        assert!(cells > 0);
        println!(
            "page_rows {page_rows}: {n} rows, {:.1} MB in {secs:.2}s = {:.0} rows/s ({:.1} MB/s), read + convert",
            bytes as f64 / 1e6,
            n as f64 / secs,
            bytes as f64 / 1e6 / secs
        );
    }
    mysql::close(conn).await;
}
