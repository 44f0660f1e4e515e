//! The borrowed write path (`prepare_ref`, `Engine::write_borrowed`: what BatchWriteRow and
//! BulkImport rows take) against the owned one: the same prepared write or the same error for
//! every kind of row, the usual rows prepared without the owned fallback, and the same rows
//! stored when an update meets a row that exists.

use super::prepare::{encode_borrowed, prepare, prepare_ref, PreparedOp};
use super::*;
use tablestore::plainbuffer::{self, OperationKind};
use tablestore::row::{Cell, CellOp, ColumnCondition, Comparator, PrimaryKey, RowExistence};
use tablestore::schema::PkSchema;
use tablestore::value::{PkType, PkValue, Value};
use tempfile::TempDir;

const NOW: i64 = 1_700_000_000_000;

fn table(name: &str, auto_increment: bool, allow_update: bool) -> TableMeta {
    let mut n = PkSchema::new("n", PkType::Integer);
    n.auto_increment = auto_increment;
    let mut def = TableDef::new(name, vec![PkSchema::new("pk", PkType::String), n]);
    def.options.allow_update = allow_update;
    TableMeta {
        def,
        creation_time: 0,
        epoch: 7,
    }
}

fn key(n: i64) -> PrimaryKey {
    PrimaryKey::new().with("pk", "k").with("n", n)
}

fn put(cells: Vec<Cell>) -> RowChange {
    RowChange::Put(Row {
        primary_key: key(1),
        cells,
    })
}

fn update(ops: Vec<CellOp>) -> RowChange {
    RowChange::Update {
        primary_key: key(1),
        ops,
    }
}

fn op<C>(change: C) -> WriteOp<C> {
    WriteOp {
        table: "t".into(),
        change,
        condition: Condition::ignore(),
        return_pk: false,
        return_columns: Vec::new(),
    }
}

type Summary = (
    WriteOp,
    u64,
    Option<Vec<u8>>,
    Option<usize>,
    Option<(Option<Vec<u8>>, Vec<Cell>)>,
    Option<Option<Vec<u8>>>,
    bool,
);

fn summary(p: PreparedOp) -> Summary {
    (
        p.op,
        p.epoch,
        p.key,
        p.auto_col,
        p.put,
        p.fresh,
        p.puts_in_fresh,
    )
}

fn kind(c: &RowChange) -> OperationKind {
    match c {
        RowChange::Put(_) => OperationKind::Put,
        RowChange::Update { .. } => OperationKind::Update,
        RowChange::Delete(_) => OperationKind::Delete,
    }
}

/// Sends `w` through the wire encoding and both preparations; returns whether the borrowed
/// one prepared it itself (no owned fallback).
fn same_both_ways(meta: &TableMeta, w: WriteOp, what: &str) -> bool {
    let bytes = plainbuffer::change_buffer(&w.change);
    let borrowed = || WriteOp {
        change: plainbuffer::decode_request_change(&bytes, kind(&w.change)).expect(what),
        table: w.table.clone(),
        condition: w.condition.clone(),
        return_pk: w.return_pk,
        return_columns: w.return_columns.clone(),
    };
    let owned = prepare(meta, borrowed().into_owned(), NOW).map(summary);
    assert_eq!(
        prepare_ref(meta, borrowed(), NOW).map(summary),
        owned,
        "{what}"
    );
    encode_borrowed(meta, &borrowed(), NOW).is_some()
}

#[test]
fn borrowed_preparation_gives_what_owned_preparation_gives() {
    let t = table("t", false, true);
    let s = |v: &str| Value::String(v.to_owned());
    let ok_put = vec![
        Cell::new("b", s("text")),
        Cell::new("a", 5i64),
        Cell::new("c", Value::Binary(vec![0, 1, 2])),
        Cell::new("d", 1.5f64).at(NOW - 1000),
        Cell::new("e", true),
    ];
    let ok_update = vec![
        CellOp::Put(Cell::new("z", s("new"))),
        CellOp::DeleteAllVersions { name: "m".into() },
        CellOp::DeleteOneVersion {
            name: "q".into(),
            timestamp: 5,
        },
        CellOp::Put(Cell::new("a", 2i64).at(NOW)),
    ];
    // (what, write, prepared by the borrowed path itself)
    let mut cases: Vec<(&str, WriteOp, bool)> = vec![
        ("put", op(put(ok_put.clone())), true),
        ("update", op(update(ok_update.clone())), true),
        (
            "update of deletes only",
            op(update(vec![CellOp::DeleteAllVersions { name: "m".into() }])),
            true,
        ),
        (
            "put, timestamp out of range",
            op(put(vec![Cell::new("a", 1i64).at(5)])),
            false,
        ),
        (
            "put, a name twice",
            op(put(vec![Cell::new("a", 1i64), Cell::new("a", 2i64)])),
            false,
        ),
        (
            "put, a key column's name",
            op(put(vec![Cell::new("pk", 1i64)])),
            false,
        ),
        (
            "put, invalid name",
            op(put(vec![Cell::new("bad-name", 1i64)])),
            false,
        ),
        (
            "put, value too long",
            op(put(vec![Cell::new(
                "a",
                Value::Binary(vec![7; MAX_ATTR_VALUE_BYTES + 1]),
            )])),
            false,
        ),
        (
            "put, too many columns",
            op(put((0..=MAX_COLUMNS_PER_WRITE)
                .map(|i| Cell::new(format!("c{i}"), 1i64))
                .collect())),
            false,
        ),
        ("put, key only", op(put(Vec::new())), false),
        (
            "put, wrong key type",
            op(RowChange::Put(Row {
                primary_key: PrimaryKey::new().with("pk", "k").with("n", "text"),
                cells: vec![Cell::new("a", 1i64)],
            })),
            false,
        ),
        (
            "put, key column missing",
            op(RowChange::Put(Row {
                primary_key: PrimaryKey::new().with("pk", "k"),
                cells: vec![Cell::new("a", 1i64)],
            })),
            false,
        ),
        (
            "update, a column twice",
            op(update(vec![
                CellOp::Put(Cell::new("a", 1i64)),
                CellOp::DeleteAllVersions { name: "a".into() },
            ])),
            false,
        ),
        (
            "update, a column put twice",
            op(update(vec![
                CellOp::Put(Cell::new("a", 1i64)),
                CellOp::Put(Cell::new("a", 2i64)),
            ])),
            false,
        ),
        (
            "update, a column deleted twice",
            op(update(vec![
                CellOp::DeleteAllVersions { name: "a".into() },
                CellOp::DeleteOneVersion {
                    name: "a".into(),
                    timestamp: 3,
                },
            ])),
            false,
        ),
        (
            "update, increment",
            op(update(vec![CellOp::Increment {
                name: "a".into(),
                delta: 2,
            }])),
            false,
        ),
        (
            "update, negative version to delete",
            op(update(vec![CellOp::DeleteOneVersion {
                name: "a".into(),
                timestamp: -1,
            }])),
            false,
        ),
        (
            "update, invalid name to delete",
            op(update(vec![CellOp::DeleteAllVersions {
                name: "bad-name".into(),
            }])),
            false,
        ),
        ("update, no ops", op(update(Vec::new())), false),
        ("delete", op(RowChange::Delete(key(1))), false),
    ];
    let conditional = |c: Condition| WriteOp {
        condition: c,
        ..op(put(ok_put.clone()))
    };
    cases.push((
        "put, expect exist",
        conditional(Condition::expect(RowExistence::ExpectExist)),
        false,
    ));
    cases.push((
        "put, column condition",
        conditional(Condition::ignore().with_column(ColumnCondition::Single {
            column: "a".into(),
            comparator: Comparator::Equal,
            value: Value::Integer(5),
            pass_if_missing: true,
            latest_version_only: true,
        })),
        false,
    ));
    cases.push((
        "update, return pk",
        WriteOp {
            return_pk: true,
            ..op(update(ok_update.clone()))
        },
        false,
    ));
    cases.push((
        "update, return columns",
        WriteOp {
            return_columns: vec!["z".into()],
            ..op(update(ok_update.clone()))
        },
        false,
    ));
    for (what, w, fast) in cases {
        assert_eq!(
            same_both_ways(&t, w, what),
            fast,
            "{what}: fast path taken?"
        );
    }

    let no_update = table("t", false, false);
    assert!(!same_both_ways(
        &no_update,
        op(update(ok_update.clone())),
        "update where updates are off"
    ));
    let auto = table("t", true, true);
    let placeholder = RowChange::Put(Row {
        primary_key: PrimaryKey::new()
            .with("pk", "k")
            .with("n", PkValue::AutoIncrement),
        cells: ok_put.clone(),
    });
    assert!(!same_both_ways(
        &auto,
        op(placeholder),
        "put with an auto-increment placeholder"
    ));
}

fn setup() -> (TempDir, Engine) {
    let dir = TempDir::new().expect("tempdir");
    let e = Engine::open(dir.path(), EngineOptions::default()).expect("open");
    e.create_table(table("t", false, true).def)
        .expect("create table");
    (dir, e)
}

/// Writes `change` of row `n` through `write_borrowed` (as a multi-row request does).
async fn write_borrowed(e: &Engine, change: &RowChange) -> Result<WriteOutcome, ServiceError> {
    let bytes = plainbuffer::change_buffer(change);
    let c = plainbuffer::decode_request_change(&bytes, kind(change)).expect("decode");
    let mut r = e.write_borrowed(vec![op(c)]).await;
    r.remove(0)
}

fn all_versions(e: &Engine, n: i64) -> Option<Row> {
    let read = ReadOptions {
        max_versions: Some(10),
        ..Default::default()
    };
    e.get_row("t", &key(n), &read).expect("get_row")
}

#[tokio::test]
async fn an_update_meets_an_existing_row_the_same_either_way() {
    let (_d, e) = setup();
    let now = now_ms();
    let start = |n: i64| {
        RowChange::Put(Row {
            primary_key: key(n),
            cells: vec![
                Cell::new("a", 1i64).at(now - 5000),
                Cell::new("b", "old").at(now - 5000),
                Cell::new("c", true).at(now - 5000),
            ],
        })
    };
    let change = |n: i64| RowChange::Update {
        primary_key: key(n),
        ops: vec![
            CellOp::Put(Cell::new("a", 2i64).at(now - 1000)),
            CellOp::DeleteAllVersions { name: "b".into() },
            CellOp::Put(Cell::new("d", "new").at(now - 1000)),
        ],
    };
    // Row 1 the owned way (UpdateRow), row 2 the borrowed way (BatchWriteRow, BulkImport).
    e.write(vec![op(start(1)), op(start(2))])
        .await
        .into_iter()
        .for_each(|r| {
            r.expect("start rows");
        });
    e.write(vec![op(change(1))])
        .await
        .remove(0)
        .expect("owned update");
    write_borrowed(&e, &change(2))
        .await
        .expect("borrowed update");
    let one = all_versions(&e, 1).expect("row 1");
    let two = all_versions(&e, 2).expect("row 2");
    assert_eq!(one.cells, two.cells);
    let names: Vec<(&str, Option<i64>)> = two
        .cells
        .iter()
        .map(|c| (c.name.as_str(), c.timestamp))
        .collect();
    // max_versions 1: the update's version of `a` replaces the old one; `b` is gone.
    assert_eq!(
        names,
        vec![
            ("a", Some(now - 1000)),
            ("c", Some(now - 5000)),
            ("d", Some(now - 1000))
        ]
    );
    assert_eq!(two.cells[0].value, Value::Integer(2));
    // A new row through the borrowed path: just the update's puts.
    write_borrowed(&e, &change(3)).await.expect("new row");
    let three = all_versions(&e, 3).expect("row 3");
    let names: Vec<&str> = three.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["a", "d"]);
}

#[tokio::test]
async fn a_borrowed_update_under_a_condition_applies_its_puts() {
    let (_d, e) = setup();
    let now = now_ms();
    write_borrowed(
        &e,
        &RowChange::Put(Row {
            primary_key: key(1),
            cells: vec![Cell::new("a", 1i64).at(now - 5000)],
        }),
    )
    .await
    .expect("put");
    let bytes = plainbuffer::change_buffer(&RowChange::Update {
        primary_key: key(1),
        ops: vec![CellOp::Put(Cell::new("b", "x").at(now - 1000))],
    });
    let c = plainbuffer::decode_request_change(&bytes, OperationKind::Update).expect("decode");
    let w = WriteOp {
        condition: Condition::expect(RowExistence::ExpectExist),
        ..op(c)
    };
    e.write_borrowed(vec![w])
        .await
        .remove(0)
        .expect("conditional update");
    let row = all_versions(&e, 1).expect("row");
    let names: Vec<&str> = row.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
}
