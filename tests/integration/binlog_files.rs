//! The binlog decoder over files real servers wrote (tests/fixtures/mysql-binlogs, from the
//! rust_mysql_common repository): MySQL 5.6–9.0 and MariaDB 10.5, which this machine cannot
//! run. Every file decodes (JSON, ENUM/SET, BIT, GTIDs, a compressed transaction payload),
//! MySQL's binary JSON renders as MySQL prints it, a truncated file is an error, and random
//! corruption of any file never panics.

use std::path::PathBuf;

use mysql_async::consts::ColumnType;
use proptest::prelude::*;
use tsmigrate_core::mysql::binlog::{
    decode_file, render, Change, FileBatch, RowsKind, TableFilter, Value,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mysql-binlogs")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn all() -> TableFilter {
    Box::new(|_, _| true)
}

fn decode(name: &str) -> FileBatch {
    decode_file(name, &fixture(name), all())
        .and_then(FileBatch::complete)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A file the reader must refuse part of: what it read before, and why it stopped.
fn refused(name: &str) -> (FileBatch, String) {
    let b = decode_file(name, &fixture(name), all()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let e = b
        .error
        .clone()
        .unwrap_or_else(|| panic!("{name} decoded whole"));
    (b, e)
}

const GOOD: &[&str] = &[
    "binlog-invisible-columns.000001",
    "binlog_transaction_with_GTID.000001",
    "json-opaque.binlog",
    "mariadb-bin.000001",
    "mysql-enum-string-set.000001",
    "minimal_row_metadata.000001",
    "mysql_type_bit.000001",
    "rpl_unfiltered_hidden_gcol.000001",
    "time_issue.000001",
    "transaction_compression.000001",
];

/// Every fixture, the refused ones too (for the corruption property).
const ALL: &[&str] = &[
    "binlog-invisible-columns.000001",
    "binlog_transaction_with_GTID.000001",
    "json-opaque.binlog",
    "json.binlog.000001",
    "mariadb-bin.000001",
    "minimal_row_metadata.000001",
    "mysql-enum-string-set.000001",
    "mysql_type_bit.000001",
    "rpl_cross_version_default_utf8mb4_collation.000001",
    "rpl_unfiltered_hidden_gcol.000001",
    "time_issue.000001",
    "transaction_compression.000001",
];

#[test]
fn every_recorded_file_decodes_to_transactions_that_end_inside_it() {
    for name in GOOD {
        let len = fixture(name).len() as u64;
        let b = decode(name);
        assert!(b.events > 0, "{name}");
        assert!(b.end.pos <= len, "{name}: {} past {len}", b.end);
        for t in &b.transactions {
            assert!(t.end.pos > 4 && t.end.pos <= len, "{name}: {}", t.end);
            for c in &t.changes {
                for image in [&c.before, &c.after].into_iter().flatten() {
                    assert_eq!(image.len(), c.table.columns.len(), "{name}");
                }
            }
        }
        let positions: Vec<u64> = b.transactions.iter().map(|t| t.end.pos).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "{name}: positions move forward {positions:?}"
        );
    }
}

fn rows(b: &FileBatch) -> usize {
    b.transactions.iter().map(|t| t.changes.len()).sum()
}

/// Whether column `i` of `c`'s table is MySQL's binary JSON.
fn is_json(c: &Change, i: usize) -> bool {
    c.table.columns[i].column_type == ColumnType::MYSQL_TYPE_JSON
}

fn jsonb_values(b: &FileBatch) -> usize {
    b.transactions
        .iter()
        .flat_map(|t| &t.changes)
        .flat_map(|c| {
            c.after.iter().flat_map(move |a| {
                a.iter()
                    .enumerate()
                    .filter(move |(i, v)| matches!(v, Some(Value::Bytes(_))) && is_json(c, *i))
            })
        })
        .count()
}

#[test]
fn mysql_json_values_arrive_as_binary_json_and_partial_json_is_refused() {
    let b = decode("json-opaque.binlog");
    assert!(
        jsonb_values(&b) > 0,
        "no JSONB values among {} rows",
        rows(&b)
    );
    // json.binlog was written with binlog_row_value_options=PARTIAL_JSON: its full-image rows
    // decode, then the first partial update stops the reader with the fix.
    let (b, e) = refused("json.binlog.000001");
    assert!(
        jsonb_values(&b) > 0,
        "no JSONB values among {} rows",
        rows(&b)
    );
    assert!(e.contains("binlog_row_value_options"), "{e}");
}

/// Every after-image binary JSON value of `b`, rendered through the text contract, with the
/// rendered texts of the other columns of its row.
fn rendered_json(b: &FileBatch) -> Vec<(String, Vec<Option<String>>)> {
    let mut out = Vec::new();
    for c in b.transactions.iter().flat_map(|t| &t.changes) {
        let Some(after) = &c.after else { continue };
        let texts: Vec<Option<String>> = after
            .iter()
            .zip(&c.table.columns)
            .map(|(v, col)| {
                let v = v?;
                let bytes = render(v, col).unwrap_or_else(|e| panic!("{col:?}: {e}"))?;
                Some(String::from_utf8(bytes).expect("UTF-8 text"))
            })
            .collect();
        for (i, v) in after.iter().enumerate() {
            if matches!(v, Some(Value::Bytes(_))) && is_json(c, i) {
                out.push((texts[i].clone().expect("not NULL"), texts.clone()));
            }
        }
    }
    out
}

#[test]
fn binary_json_renders_exactly_as_mysql_prints_it() {
    // MySQL 9.0.1, `create table test (a json)`: one insert per opaque scalar type (the
    // values mysql_common's own test of this file decodes), printed as `SELECT a` does.
    let texts: Vec<String> = rendered_json(&decode("json-opaque.binlog"))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        texts,
        [
            r#"{"a": "base64:type15:VQ=="}"#,
            r#"{"b": "2012-03-18"}"#,
            r#"{"c": "2012-03-18 11:30:45.000000"}"#,
            r#"{"c": "87:31:46.654321"}"#,
            r#"{"d": 123.456}"#,
            r#"{"e": 9.00}"#,
            r#"{"e": [0, 1, true, false]}"#,
            r#"{"e": null}"#,
        ]
    );
}

#[test]
fn binary_json_agrees_with_the_generated_columns_mysql_derived_from_it() {
    // MySQL 8.0.22: t(id, json_col JSON, name AS (json_col->>'$.name'), age AS
    // (json_col->'$.age')). The server computed `name` and `age` from the same document and
    // logged them beside it: the printed document must hold exactly those values.
    let (b, _) = refused("json.binlog.000001");
    let rows = rendered_json(&b);
    // Six inserts, then an UPDATE of all six (age + 1), before the first partial update.
    assert_eq!(rows.len(), 12);
    assert_eq!(
        rows[0].0,
        r#"{"age": 24, "data": "xxxxxxxxxx", "name": "Joe"}"#
    );
    for (json, row) in &rows {
        let doc: serde_json::Value =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        let name = doc.get("name").and_then(|n| n.as_str());
        assert!(name.is_some(), "{json}");
        assert_eq!(name, row[2].as_deref(), "{json}");
        let age = doc.get("age").map(|a| a.to_string());
        assert_eq!(age, row[3].clone(), "{json}");
        // MySQL's spacing: `": "` after keys and `", "` between members and elements.
        assert!(json.starts_with("{\"age\": "), "{json}");
        assert!(!json.contains("\",\"") && !json.contains("\":\""), "{json}");
    }
}

#[test]
fn statement_based_events_are_refused_with_the_fix() {
    // MySQL 5.7's cross-version test logs statements (binlog_format=STATEMENT/MIXED).
    let (_, e) = refused("rpl_cross_version_default_utf8mb4_collation.000001");
    assert!(e.contains("binlog_format=ROW"), "{e}");
}

#[test]
fn columns_left_out_of_an_image_are_none_never_shifted() {
    // MySQL 8.0.17: `t` has a hidden generated column for the functional index `(a+1)`,
    // which the image leaves out: its slot is None and `b` stays in its own slot.
    let b = decode("rpl_unfiltered_hidden_gcol.000001");
    let images: Vec<_> = b
        .transactions
        .iter()
        .flat_map(|t| &t.changes)
        .filter(|c| c.table.table == "t")
        .flat_map(|c| c.after.iter().chain(c.before.iter()))
        .collect();
    assert!(!images.is_empty());
    for image in &images {
        assert_eq!(image.len(), 3);
        assert!(
            image.get(0).is_some() && image.get(1).is_none() && image.get(2).is_some(),
            "{image:?}"
        );
    }
    // binlog_row_image=MINIMAL with MINIMAL metadata: no names, and only some columns.
    let b = decode("minimal_row_metadata.000001");
    let c = b
        .transactions
        .iter()
        .flat_map(|t| &t.changes)
        .next()
        .expect("a row");
    assert!(
        !c.table.has_names && c.table.has_signedness,
        "{:?}",
        c.table
    );
    let after = c.after.as_ref().expect("after image");
    assert!(after.iter().any(|v| v.is_none()) && after.iter().any(|v| v.is_some()));
}

#[test]
fn enum_and_set_labels_come_from_full_metadata() {
    let b = decode("mysql-enum-string-set.000001");
    let tables: Vec<_> = b
        .transactions
        .iter()
        .flat_map(|t| &t.changes)
        .map(|c| c.table.clone())
        .collect();
    assert!(!tables.is_empty());
    let labelled = tables
        .iter()
        .flat_map(|t| &t.columns)
        .filter(|c| c.column_type.is_enum_or_set_type())
        .all(|c| c.labels.as_ref().is_some_and(|l| !l.is_empty()));
    assert!(labelled, "every ENUM/SET column has its labels: {tables:?}");
    assert!(tables.iter().all(|t| t.has_names));
}

#[test]
fn gtids_are_recorded_for_mysql_and_mariadb() {
    let mysql = decode("binlog_transaction_with_GTID.000001");
    let g = mysql
        .transactions
        .iter()
        .find_map(|t| t.gtid.clone())
        .expect("a MySQL GTID");
    assert!(
        g.contains(':') && g.split(':').next().is_some_and(|u| u.len() == 36),
        "{g}"
    );

    let maria = decode("mariadb-bin.000001");
    let g = maria
        .transactions
        .iter()
        .find_map(|t| t.gtid.clone())
        .expect("a MariaDB GTID");
    assert_eq!(g.split('-').count(), 3, "{g}");
}

#[test]
fn a_compressed_transaction_payload_yields_its_rows_at_the_payload_end() {
    let b = decode("transaction_compression.000001");
    let with_rows: Vec<_> = b
        .transactions
        .iter()
        .filter(|t| !t.changes.is_empty())
        .collect();
    assert!(!with_rows.is_empty(), "rows inside the payload: {b:?}");
    assert!(with_rows
        .iter()
        .flat_map(|t| &t.changes)
        .any(|c| c.kind == RowsKind::Insert));
}

#[test]
fn a_truncated_file_is_an_error_not_a_panic_or_a_silent_end() {
    let (_, err) = refused("binlog_truncated_event.000001");
    assert!(err.contains("truncated"), "{err}");
    // Every good file cut short anywhere inside an event is an error too.
    let full = fixture("mysql-enum-string-set.000001");
    for cut in [5, 19, 30, full.len() / 2, full.len() - 1] {
        let r = decode_file("cut", &full[..cut], all()).and_then(FileBatch::complete);
        assert!(r.is_err(), "cut at {cut} decoded");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random byte changes anywhere in a real file: an error or a result, never a panic.
    #[test]
    fn corrupted_files_never_panic(
        which in 0..ALL.len(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let name = ALL[which];
        let mut bytes = fixture(name);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = decode_file(name, &bytes, all());
    }
}
