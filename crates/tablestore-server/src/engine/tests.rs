//! The engine's unit tests, kept out of the code files (they are as long as the engine). The
//! module path `engine::tests` is load-bearing: `acknowledged_writes_survive_kill_9` re-runs
//! this test binary with the exact name `engine::tests::kill9_child`.

use super::*;
use tablestore::row::{
    Cell, CellOp, ColumnCondition, Comparator, PkColumn, PrimaryKey, RowExistence,
};
use tablestore::value::{PkType, PkValue, Value};

use super::prepare::{distinct_columns, encode_distinct_put, fresh_update};
use super::rows::{apply_update, put_row};
use crate::store::{self, StoredRow};
use tablestore::schema::{DefinedColumnType, PkSchema};
use tempfile::TempDir;

fn open(dir: &TempDir) -> Engine {
    Engine::open(dir.path(), EngineOptions::default()).expect("open")
}

fn setup() -> (TempDir, Engine) {
    let dir = TempDir::new().expect("tempdir");
    let e = open(&dir);
    (dir, e)
}

/// Table `t`: PK (pk STRING, n INTEGER).
fn def_t() -> TableDef {
    TableDef::new(
        "t",
        vec![
            PkSchema::new("pk", PkType::String),
            PkSchema::new("n", PkType::Integer),
        ],
    )
}

fn key(s: &str, n: i64) -> PrimaryKey {
    PrimaryKey::new().with("pk", s).with("n", n)
}

fn pkv(cols: &[(&str, PkValue)]) -> PrimaryKey {
    PrimaryKey(
        cols.iter()
            .map(|(n, v)| PkColumn {
                name: (*n).into(),
                value: v.clone(),
            })
            .collect(),
    )
}

fn op(table: &str, change: RowChange) -> WriteOp {
    WriteOp {
        table: table.into(),
        change,
        condition: Condition::ignore(),
        return_pk: false,
        return_columns: Vec::new(),
    }
}

fn put_op(pk: PrimaryKey, cells: Vec<Cell>) -> WriteOp {
    op(
        "t",
        RowChange::Put(Row {
            primary_key: pk,
            cells,
        }),
    )
}

fn update_op(pk: PrimaryKey, ops: Vec<CellOp>) -> WriteOp {
    op(
        "t",
        RowChange::Update {
            primary_key: pk,
            ops,
        },
    )
}

#[test]
fn distinct_put_encoding_matches_stored_row() {
    let cells = vec![
        Cell::new("b", "x".repeat(200)).at(5),
        Cell::new("a", 7i64).at(9),
        Cell::new("c", true).at(1),
    ];
    assert_eq!(
        encode_distinct_put(&cells),
        Some(store::encode_row(&put_row(&cells, 1)))
    );
    let repeated = vec![Cell::new("a", 1i64).at(1), Cell::new("a", 2i64).at(2)];
    assert_eq!(encode_distinct_put(&repeated), None);
}

#[test]
fn fresh_update_matches_applied_update() {
    let ops = vec![
        CellOp::Put(Cell::new("z", "x".repeat(150)).at(3)),
        CellOp::DeleteAllVersions { name: "m".into() },
        CellOp::Put(Cell::new("a", 1.5f64).at(4)),
    ];
    let mut row = StoredRow::default();
    apply_update(&mut row, ops.clone(), 1, 99).expect("apply");
    assert_eq!(
        fresh_update(&ops, distinct_columns(ops.iter().map(CellOp::column))),
        Some(Some(store::encode_row(&row)))
    );
    let deletes = vec![CellOp::DeleteAllVersions { name: "m".into() }];
    assert_eq!(fresh_update(&deletes, true), Some(None));
    let twice = vec![
        CellOp::Put(Cell::new("a", 1i64).at(1)),
        CellOp::DeleteAllVersions { name: "a".into() },
    ];
    assert_eq!(
        fresh_update(&twice, distinct_columns(twice.iter().map(CellOp::column))),
        None
    );
    let inc = vec![CellOp::Increment {
        name: "n".into(),
        delta: 1,
    }];
    assert_eq!(fresh_update(&inc, true), None);
}

async fn write1(e: &Engine, op: WriteOp) -> Result<WriteOutcome, ServiceError> {
    let mut r = e.write(vec![op]).await;
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn get(e: &Engine, pk: &PrimaryKey) -> Option<Row> {
    e.get_row("t", pk, &ReadOptions::default())
        .expect("get_row")
}

fn get_all_versions(e: &Engine, pk: &PrimaryKey) -> Option<Row> {
    let read = ReadOptions {
        max_versions: Some(100),
        ..Default::default()
    };
    e.get_row("t", pk, &read).expect("get_row")
}

fn err_of<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> (u16, String, String) {
    let e = r.expect_err("expected an error");
    (e.http_status, e.code, e.message)
}

fn code_of<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> String {
    err_of(r).1
}

fn values(row: &Row) -> Vec<(String, Value)> {
    row.cells
        .iter()
        .map(|c| (c.name.clone(), c.value.clone()))
        .collect()
}

// ------------------------------------------------------------------ tables

#[test]
fn create_table_validation() {
    let (_d, e) = setup();
    let bad = |def: TableDef| code_of(e.create_table(def));
    let mut d = def_t();
    d.name = "1bad".into();
    assert_eq!(bad(d), "OTSParameterInvalid");
    assert_eq!(bad(TableDef::new("x", vec![])), "OTSParameterInvalid");
    let five = (0..5)
        .map(|i| PkSchema::new(format!("p{i}"), PkType::Integer))
        .collect();
    assert_eq!(bad(TableDef::new("x", five)), "OTSParameterInvalid");
    let dup = TableDef::new(
        "x",
        vec![
            PkSchema::new("PK0", PkType::Integer),
            PkSchema::new("PK0", PkType::String),
        ],
    );
    assert_eq!(
        err_of(e.create_table(dup)),
        (
            400,
            "OTSParameterInvalid".into(),
            "Duplicated primary key name: 'PK0'.".into()
        )
    );
    let auto = |i: usize, t: PkType| {
        let mut p = PkSchema::new(format!("a{i}"), t);
        p.auto_increment = true;
        p
    };
    let first_auto = TableDef::new("x", vec![auto(0, PkType::Integer)]);
    assert_eq!(bad(first_auto), "OTSParameterInvalid");
    let two = TableDef::new(
        "x",
        vec![
            PkSchema::new("p", PkType::String),
            auto(1, PkType::Integer),
            auto(2, PkType::Integer),
        ],
    );
    assert_eq!(bad(two), "OTSParameterInvalid");
    let string_auto = TableDef::new(
        "x",
        vec![PkSchema::new("p", PkType::String), auto(1, PkType::String)],
    );
    assert_eq!(bad(string_auto), "OTSParameterInvalid");
    for (ttl, ok) in [(100, false), (0, false), (-1, true), (86400, true)] {
        let mut d = def_t();
        d.name = format!("ttl{}", ttl.max(0));
        d.options.time_to_live = ttl;
        assert_eq!(e.create_table(d).is_ok(), ok, "ttl {ttl}");
    }
    let mut d = def_t();
    d.options.max_versions = 0;
    assert_eq!(bad(d), "OTSParameterInvalid");
    let mut d = def_t();
    d.defined_columns = vec![("pk".into(), DefinedColumnType::String)];
    assert_eq!(bad(d), "OTSParameterInvalid");
}

#[test]
fn table_lifecycle() {
    let (_d, e) = setup();
    let mut d = def_t();
    d.defined_columns = vec![
        ("c1".into(), DefinedColumnType::Integer),
        ("c2".into(), DefinedColumnType::Blob),
    ];
    e.create_table(d.clone()).expect("create");
    assert_eq!(
        err_of(e.create_table(d.clone())),
        (
            409,
            "OTSObjectAlreadyExist".into(),
            "Requested table already exists.".into()
        )
    );
    let desc = e.describe_table("t").expect("describe");
    assert_eq!(desc.def, d);
    assert!(desc.creation_time > 1_600_000_000);
    assert_eq!(e.table_def("t").expect("def"), d);
    let mut d2 = def_t();
    d2.name = "a_first".into();
    e.create_table(d2).expect("create");
    assert_eq!(e.list_tables().expect("list"), vec!["a_first", "t"]);

    let o = e
        .update_table(
            "t",
            TableOptionsUpdate {
                max_versions: Some(3),
                time_to_live: Some(86400 * 2),
                ..Default::default()
            },
        )
        .expect("update");
    assert_eq!(o.max_versions, 3);
    assert_eq!(o.time_to_live, 172800);
    assert_eq!(o.deviation_cell_version_in_sec, 86400);
    assert!(o.allow_update);
    assert_eq!(e.describe_table("t").expect("describe").def.options, o);
    let bad_ttl = TableOptionsUpdate {
        time_to_live: Some(5),
        ..Default::default()
    };
    assert_eq!(code_of(e.update_table("t", bad_ttl)), "OTSParameterInvalid");

    e.delete_table("t").expect("delete");
    let not_exist = (
        404,
        "OTSObjectNotExist".to_owned(),
        "Requested table does not exist.".to_owned(),
    );
    assert_eq!(err_of(e.describe_table("t")), not_exist);
    assert_eq!(err_of(e.delete_table("t")), not_exist);
    assert_eq!(
        err_of(e.update_table("t", TableOptionsUpdate::default())),
        not_exist
    );
    assert_eq!(
        err_of(e.get_row("t", &key("a", 1), &ReadOptions::default())),
        not_exist
    );
    assert_eq!(e.list_tables().expect("list"), vec!["a_first"]);
}

#[tokio::test]
async fn deleted_table_loses_rows() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    write1(&e, put_op(key("a", 1), vec![Cell::new("c", 1i64)]))
        .await
        .expect("put");
    e.delete_table("t").expect("delete");
    assert_eq!(
        code_of(write1(&e, put_op(key("a", 1), vec![Cell::new("c", 1i64)])).await),
        "OTSObjectNotExist"
    );
    e.create_table(def_t()).expect("create");
    assert_eq!(get(&e, &key("a", 1)), None);
}

#[test]
fn table_quota() {
    let dir = TempDir::new().expect("tempdir");
    let e = Engine::open(
        dir.path(),
        EngineOptions {
            max_tables: 2,
            cache_bytes: 1 << 20,
        },
    )
    .expect("open");
    for name in ["a", "b"] {
        let mut d = def_t();
        d.name = name.into();
        e.create_table(d).expect("create");
    }
    let mut d = def_t();
    d.name = "c".into();
    assert_eq!(
        err_of(e.create_table(d.clone())),
        (
            403,
            "OTSQuotaExhausted".into(),
            "Number of tables exceeded the quota.".into()
        )
    );
    e.delete_table("a").expect("delete");
    e.create_table(d).expect("create after delete");
}

// ------------------------------------------------------------------ write validation

#[tokio::test]
async fn write_pk_validation() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let c = || vec![Cell::new("c", 1i64)];
    let r = write1(&e, put_op(PrimaryKey::new().with("pk", "a"), c())).await;
    assert_eq!(
        err_of(r),
        (
            400,
            "OTSInvalidPK".into(),
            "Validate PK size fail. Input: 1, Meta: 2.".into()
        )
    );
    let r = write1(
        &e,
        put_op(PrimaryKey::new().with("pk", "a").with("m", 1i64), c()),
    )
    .await;
    assert_eq!(err_of(r).2, "Validate PK name fail. Input: m, Meta: n.");
    let r = write1(
        &e,
        put_op(PrimaryKey::new().with("pk", 1i64).with("n", 1i64), c()),
    )
    .await;
    assert_eq!(
        err_of(r),
        (
            400,
            "OTSInvalidPK".into(),
            "Validate PK type fail. Input: INTEGER, Meta: STRING.".into()
        )
    );
    for inf in [PkValue::InfMin, PkValue::InfMax, PkValue::AutoIncrement] {
        let pk = pkv(&[("pk", "a".into()), ("n", inf)]);
        assert_eq!(
            code_of(write1(&e, put_op(pk, c())).await),
            "OTSParameterInvalid"
        );
    }
    let long = "x".repeat(1025);
    let r = write1(&e, put_op(key(&long, 1), c())).await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
    let ok = "x".repeat(1024);
    write1(&e, put_op(key(&ok, 1), c()))
        .await
        .expect("1024-byte PK");
    let r = write1(&e, op("nope", RowChange::Delete(key("a", 1)))).await;
    assert_eq!(code_of(r), "OTSObjectNotExist");
    // Reads check the key the same way.
    let r = e.get_row(
        "t",
        &PrimaryKey::new().with("pk", "a"),
        &ReadOptions::default(),
    );
    assert_eq!(code_of(r), "OTSInvalidPK");
    let r = e.get_row(
        "t",
        &pkv(&[("pk", "a".into()), ("n", PkValue::InfMax)]),
        &ReadOptions::default(),
    );
    assert_eq!(code_of(r), "OTSParameterInvalid");
}

#[tokio::test]
async fn write_attribute_validation() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let k = || key("a", 1);
    let r = write1(&e, put_op(k(), vec![Cell::new("bad-name", 1i64)])).await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
    let r = write1(&e, put_op(k(), vec![Cell::new("n", 1i64)])).await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
    let big = "x".repeat(MAX_ATTR_VALUE_BYTES + 1);
    let r = write1(&e, put_op(k(), vec![Cell::new("c", big.as_str())])).await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
    let r = write1(
        &e,
        put_op(
            k(),
            vec![Cell::new("c", vec![0u8; MAX_ATTR_VALUE_BYTES + 1])],
        ),
    )
    .await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
    write1(&e, put_op(k(), vec![Cell::new("c", &big[1..])]))
        .await
        .expect("2 MiB value");
    let many: Vec<Cell> = (0..1025)
        .map(|i| Cell::new(format!("c{i}"), 1i64))
        .collect();
    let r = write1(&e, put_op(k(), many.clone())).await;
    assert_eq!(err_of(r).0, 400);
    let r = write1(&e, put_op(k(), many.clone())).await;
    assert_eq!(code_of(r), "OTSOutOfColumnCountLimit");
    write1(&e, put_op(k(), many[..1024].to_vec()))
        .await
        .expect("1024 columns");
    let ops: Vec<CellOp> = many.into_iter().map(CellOp::Put).collect();
    let r = write1(&e, update_op(k(), ops)).await;
    assert_eq!(code_of(r), "OTSOutOfColumnCountLimit");
    let r = write1(&e, update_op(k(), vec![])).await;
    assert_eq!(err_of(r).2, "Attribute column is missing.");

    // Timestamps: within ±deviation (default 1 day) of now.
    let now = now_ms();
    let day = 86_400_000;
    for (ts, ok) in [
        (now - day - 60_000, false),
        (now + day + 60_000, false),
        (-1, false),
        (now - day + 60_000, true),
        (now + day - 60_000, true),
    ] {
        let r = write1(&e, put_op(k(), vec![Cell::new("c", 1i64).at(ts)])).await;
        assert_eq!(r.is_ok(), ok, "ts {ts}: {r:?}");
    }
    let r = write1(
        &e,
        update_op(
            k(),
            vec![CellOp::Put(Cell::new("c", 1i64).at(now - 2 * day))],
        ),
    )
    .await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
}

#[tokio::test]
async fn allow_update_false_rejects_update_row() {
    let (_d, e) = setup();
    let mut d = def_t();
    d.options.allow_update = false;
    e.create_table(d).expect("create");
    let r = write1(
        &e,
        update_op(key("a", 1), vec![CellOp::Put(Cell::new("c", 1i64))]),
    )
    .await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
    write1(&e, put_op(key("a", 1), vec![Cell::new("c", 1i64)]))
        .await
        .expect("put still allowed");
    e.update_table(
        "t",
        TableOptionsUpdate {
            allow_update: Some(true),
            ..Default::default()
        },
    )
    .expect("update");
    write1(
        &e,
        update_op(key("a", 1), vec![CellOp::Put(Cell::new("c", 2i64))]),
    )
    .await
    .expect("update now allowed");
}

// ------------------------------------------------------------------ write semantics

#[tokio::test]
async fn put_replaces_the_row() {
    let (_d, e) = setup();
    let mut d = def_t();
    d.options.max_versions = 5;
    e.create_table(d).expect("create");
    let k = key("a", 1);
    write1(
        &e,
        put_op(k.clone(), vec![Cell::new("a", 1i64), Cell::new("b", "x")]),
    )
    .await
    .expect("put");
    write1(&e, put_op(k.clone(), vec![Cell::new("c", true)]))
        .await
        .expect("put");
    let row = get_all_versions(&e, &k).expect("row");
    assert_eq!(row.primary_key, k);
    assert_eq!(values(&row), vec![("c".into(), Value::Boolean(true))]);
    assert!(row.cells[0].timestamp.is_some());
    // A PUT without attribute columns replaces the row with a key-only row (attribute
    // columns are optional; a MySQL table of key columns only migrates to such rows).
    write1(&e, put_op(k.clone(), vec![])).await.expect("put");
    assert_eq!(get(&e, &k).map(|r| r.cells), Some(vec![]));
    // Several versions of one column in one PUT; a repeated timestamp keeps the last value.
    let now = now_ms();
    write1(
        &e,
        put_op(
            k.clone(),
            vec![
                Cell::new("v", 1i64).at(now - 3),
                Cell::new("v", 2i64).at(now - 1),
                Cell::new("v", 3i64).at(now - 2),
                Cell::new("v", 4i64).at(now - 1),
            ],
        ),
    )
    .await
    .expect("put");
    let row = get_all_versions(&e, &k).expect("row");
    let got: Vec<_> = row
        .cells
        .iter()
        .map(|c| (c.timestamp, c.value.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(now - 1), Value::Integer(4)),
            (Some(now - 2), Value::Integer(3)),
            (Some(now - 3), Value::Integer(1)),
        ]
    );
}

#[tokio::test]
async fn update_operations() {
    let (_d, e) = setup();
    let mut d = def_t();
    d.options.max_versions = 3;
    e.create_table(d).expect("create");
    let k = key("a", 1);
    let now = now_ms();
    // Creates the row.
    write1(
        &e,
        update_op(
            k.clone(),
            vec![
                CellOp::Put(Cell::new("v", 1i64).at(now - 10)),
                CellOp::Put(Cell::new("v", 2i64).at(now - 9)),
                CellOp::Put(Cell::new("w", "x").at(now - 9)),
            ],
        ),
    )
    .await
    .expect("update");
    // Same timestamp replaces; more than max_versions drops the oldest.
    write1(
        &e,
        update_op(
            k.clone(),
            vec![
                CellOp::Put(Cell::new("v", 20i64).at(now - 9)),
                CellOp::Put(Cell::new("v", 3i64).at(now - 8)),
                CellOp::Put(Cell::new("v", 4i64).at(now - 7)),
            ],
        ),
    )
    .await
    .expect("update");
    let row = get_all_versions(&e, &k).expect("row");
    assert_eq!(
        values(&row),
        vec![
            ("v".into(), Value::Integer(4)),
            ("v".into(), Value::Integer(3)),
            ("v".into(), Value::Integer(20)),
            ("w".into(), Value::String("x".into())),
        ]
    );
    write1(
        &e,
        update_op(
            k.clone(),
            vec![CellOp::DeleteOneVersion {
                name: "v".into(),
                timestamp: now - 8,
            }],
        ),
    )
    .await
    .expect("delete one version");
    let row = get_all_versions(&e, &k).expect("row");
    assert_eq!(row.cells.iter().filter(|c| c.name == "v").count(), 2);
    write1(
        &e,
        update_op(
            k.clone(),
            vec![CellOp::DeleteAllVersions { name: "v".into() }],
        ),
    )
    .await
    .expect("delete all versions");
    let row = get_all_versions(&e, &k).expect("row");
    assert_eq!(values(&row), vec![("w".into(), Value::String("x".into()))]);
    // Removing the last column removes the row.
    write1(
        &e,
        update_op(
            k.clone(),
            vec![CellOp::DeleteAllVersions { name: "w".into() }],
        ),
    )
    .await
    .expect("delete all versions");
    assert_eq!(get(&e, &k), None);
    // An update that only deletes on a missing row leaves it missing.
    write1(
        &e,
        update_op(
            k.clone(),
            vec![CellOp::DeleteAllVersions { name: "w".into() }],
        ),
    )
    .await
    .expect("delete on missing row");
    assert_eq!(get(&e, &k), None);
    // Attribute columns are optional: a key-only PutRow makes a row that exists.
    write1(&e, put_op(k.clone(), vec![]))
        .await
        .expect("key-only put");
    let row = get(&e, &k).expect("a key-only row exists");
    assert!(row.cells.is_empty());
    assert_eq!(row.primary_key, k);
    let (keys, _) = read_all(
        &e,
        range(Direction::Forward, min_max(true), min_max(false), None),
    );
    assert_eq!(keys.len(), 1, "a key-only row is in ranges too");
}

#[tokio::test]
async fn increments() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let k = key("a", 1);
    let inc = |name: &str, delta: i64| CellOp::Increment {
        name: name.into(),
        delta,
    };
    let mut o = update_op(k.clone(), vec![inc("c", 5)]);
    o.return_pk = true;
    o.return_columns = vec!["c".into()];
    let out = write1(&e, o.clone()).await.expect("increment missing");
    let ret = out.returned.expect("returned");
    assert_eq!(ret.primary_key, k);
    assert_eq!(values(&ret), vec![("c".into(), Value::Integer(5))]);
    let out = write1(&e, o).await.expect("increment");
    assert_eq!(
        out.returned.and_then(|r| r.get("c").cloned()),
        Some(Value::Integer(10))
    );
    write1(&e, update_op(k.clone(), vec![inc("c", -30)]))
        .await
        .expect("negative");
    assert_eq!(
        get(&e, &k).and_then(|r| r.get("c").cloned()),
        Some(Value::Integer(-20))
    );

    write1(
        &e,
        update_op(k.clone(), vec![CellOp::Put(Cell::new("s", "x"))]),
    )
    .await
    .expect("put");
    assert_eq!(
        code_of(write1(&e, update_op(k.clone(), vec![inc("s", 1)])).await),
        "OTSParameterInvalid"
    );
    write1(
        &e,
        update_op(k.clone(), vec![CellOp::Put(Cell::new("m", i64::MAX))]),
    )
    .await
    .expect("put");
    assert_eq!(
        code_of(write1(&e, update_op(k.clone(), vec![inc("m", 1)])).await),
        "OTSParameterInvalid"
    );
    for ops in [
        vec![inc("x", 1), CellOp::Put(Cell::new("x", 1i64))],
        vec![CellOp::Put(Cell::new("x", 1i64)), inc("x", 1)],
        vec![CellOp::DeleteAllVersions { name: "x".into() }, inc("x", 1)],
        vec![inc("x", 1), inc("x", 1)],
    ] {
        assert_eq!(
            code_of(write1(&e, update_op(k.clone(), ops)).await),
            "OTSParameterInvalid"
        );
    }
    // A failed op leaves the row untouched.
    assert_eq!(
        get(&e, &k).and_then(|r| r.get("c").cloned()),
        Some(Value::Integer(-20))
    );
    write1(&e, update_op(k.clone(), vec![inc("x", 1), inc("y", 2)]))
        .await
        .expect("two columns");
}

#[tokio::test]
async fn conditions() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let k = key("a", 1);
    let with = |mut o: WriteOp, c: Condition| {
        o.condition = c;
        o
    };
    let put = || put_op(key("a", 1), vec![Cell::new("c", 5i64)]);
    let r = write1(
        &e,
        with(put(), Condition::expect(RowExistence::ExpectExist)),
    )
    .await;
    assert_eq!(
        err_of(r),
        (
            403,
            "OTSConditionCheckFail".into(),
            "Condition check failed.".into()
        )
    );
    write1(
        &e,
        with(put(), Condition::expect(RowExistence::ExpectNotExist)),
    )
    .await
    .expect("not exist");
    let r = write1(
        &e,
        with(put(), Condition::expect(RowExistence::ExpectNotExist)),
    )
    .await;
    assert_eq!(code_of(r), "OTSConditionCheckFail");
    write1(
        &e,
        with(put(), Condition::expect(RowExistence::ExpectExist)),
    )
    .await
    .expect("exist");

    let single = |cmp, v: i64, pass| ColumnCondition::Single {
        column: "c".into(),
        comparator: cmp,
        value: Value::Integer(v),
        pass_if_missing: pass,
        latest_version_only: true,
    };
    let upd = || update_op(key("a", 1), vec![CellOp::Put(Cell::new("d", 1i64))]);
    let c = Condition::ignore().with_column(single(Comparator::GreaterThan, 5, false));
    assert_eq!(
        code_of(write1(&e, with(upd(), c)).await),
        "OTSConditionCheckFail"
    );
    let c = Condition::expect(RowExistence::ExpectExist).with_column(single(
        Comparator::Equal,
        5,
        false,
    ));
    write1(&e, with(upd(), c))
        .await
        .expect("column condition passes");
    // Different type never matches.
    let c = Condition::ignore().with_column(ColumnCondition::Single {
        column: "c".into(),
        comparator: Comparator::NotEqual,
        value: Value::String("5".into()),
        pass_if_missing: true,
        latest_version_only: true,
    });
    assert_eq!(
        code_of(write1(&e, with(upd(), c)).await),
        "OTSConditionCheckFail"
    );
    // Missing row: columns are missing.
    let missing = || update_op(key("b", 1), vec![CellOp::Put(Cell::new("d", 1i64))]);
    let c = Condition::ignore().with_column(single(Comparator::Equal, 5, false));
    assert_eq!(
        code_of(write1(&e, with(missing(), c)).await),
        "OTSConditionCheckFail"
    );
    let c = Condition::ignore().with_column(single(Comparator::Equal, 5, true));
    write1(&e, with(missing(), c))
        .await
        .expect("pass if missing");
    // Invalid composite fails even for a missing row.
    let c = Condition::ignore().with_column(ColumnCondition::Composite {
        op: tablestore::row::LogicalOp::Not,
        conditions: vec![],
    });
    assert_eq!(
        code_of(write1(&e, with(missing(), c)).await),
        "OTSParameterInvalid"
    );
    // Conditional delete.
    let del = || op("t", RowChange::Delete(key("a", 1)));
    let c = Condition::expect(RowExistence::ExpectExist).with_column(single(
        Comparator::LessThan,
        5,
        false,
    ));
    assert_eq!(
        code_of(write1(&e, with(del(), c)).await),
        "OTSConditionCheckFail"
    );
    write1(
        &e,
        with(del(), Condition::expect(RowExistence::ExpectExist)),
    )
    .await
    .expect("delete");
    assert_eq!(get(&e, &k), None);
    let r = write1(
        &e,
        with(del(), Condition::expect(RowExistence::ExpectExist)),
    )
    .await;
    assert_eq!(code_of(r), "OTSConditionCheckFail");
    write1(&e, del())
        .await
        .expect("delete of a missing row is fine");
}

#[tokio::test]
async fn ops_apply_in_order_and_fail_alone() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let inc = |delta| CellOp::Increment {
        name: "c".into(),
        delta,
    };
    let mut expect_exist = update_op(key("a", 1), vec![inc(100)]);
    expect_exist.condition = Condition::expect(RowExistence::ExpectExist);
    let results = e
        .write(vec![
            put_op(key("a", 1), vec![Cell::new("c", 1i64)]),
            update_op(key("a", 1), vec![inc(2)]),
            put_op(PrimaryKey::new().with("pk", "a"), vec![]),
            op("missing", RowChange::Delete(key("a", 1))),
            update_op(key("a", 1), vec![inc(3)]),
            op("t", RowChange::Delete(key("b", 1))),
            expect_exist,
        ])
        .await;
    let codes: Vec<Option<String>> = results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code.clone()))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            None,
            Some("OTSInvalidPK".into()),
            Some("OTSObjectNotExist".into()),
            None,
            None,
            None
        ]
    );
    assert_eq!(
        get(&e, &key("a", 1)).and_then(|r| r.get("c").cloned()),
        Some(Value::Integer(106))
    );
    assert!(e.write(vec![]).await.is_empty());
}

#[tokio::test]
async fn auto_increment() {
    let dir = TempDir::new().expect("tempdir");
    let mut d = TableDef::new(
        "t",
        vec![
            PkSchema::new("pk", PkType::String),
            PkSchema::new("n", PkType::Integer),
        ],
    );
    d.primary_key[1].auto_increment = true;
    let auto_pk = || pkv(&[("pk", "a".into()), ("n", PkValue::AutoIncrement)]);
    let put = |pk: PrimaryKey| {
        let mut o = put_op(pk, vec![Cell::new("c", 1i64)]);
        o.return_pk = true;
        o
    };
    let mut seen = Vec::new();
    {
        let e = open(&dir);
        e.create_table(d).expect("create");
        let results = e.write((0..5).map(|_| put(auto_pk())).collect()).await;
        for r in results {
            let pk = r.expect("put").returned.expect("returned").primary_key;
            match &pk.0[1].value {
                PkValue::Integer(i) => seen.push(*i),
                other => panic!("not generated: {other:?}"),
            }
            assert!(get(&e, &pk).is_some());
        }
        // An explicit value on PUT, or the placeholder elsewhere, is refused.
        assert_eq!(
            code_of(write1(&e, put(key("a", 7))).await),
            "OTSParameterInvalid"
        );
        let r = write1(&e, op("t", RowChange::Delete(auto_pk()))).await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let r = e.get_row("t", &auto_pk(), &ReadOptions::default());
        assert_eq!(code_of(r), "OTSParameterInvalid");
        // Updates and deletes address generated rows by value.
        let k = key("a", seen[0]);
        write1(
            &e,
            update_op(k.clone(), vec![CellOp::Put(Cell::new("d", 2i64))]),
        )
        .await
        .expect("update by value");
        write1(&e, op("t", RowChange::Delete(k.clone())))
            .await
            .expect("delete");
        assert_eq!(get(&e, &k), None);
    }
    // The counter survives a restart.
    let e = open(&dir);
    let r = write1(&e, put(auto_pk())).await.expect("put");
    match r.returned.map(|r| r.primary_key.0[1].value.clone()) {
        Some(PkValue::Integer(i)) => seen.push(i),
        other => panic!("not generated: {other:?}"),
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

// ------------------------------------------------------------------ reads

#[tokio::test]
async fn read_selection() {
    let (_d, e) = setup();
    let mut d = def_t();
    d.options.max_versions = 10;
    e.create_table(d).expect("create");
    let k = key("a", 1);
    let now = now_ms();
    let cells = vec![
        Cell::new("z", 1i64).at(now - 3),
        Cell::new("z", 2i64).at(now - 2),
        Cell::new("z", 3i64).at(now - 1),
        Cell::new("b", "x").at(now - 2),
        Cell::new("m", 1.5).at(now - 5),
    ];
    write1(&e, put_op(k.clone(), cells)).await.expect("put");
    let read = |r: ReadOptions| e.get_row("t", &k, &r);
    // Default: newest version of every column, sorted by name, with timestamps.
    let row = read(ReadOptions::default()).expect("read").expect("row");
    assert_eq!(
        row.cells,
        vec![
            Cell::new("b", "x").at(now - 2),
            Cell::new("m", 1.5).at(now - 5),
            Cell::new("z", 3i64).at(now - 1),
        ]
    );
    let row = read(ReadOptions {
        columns_to_get: vec!["z".into(), "pk".into()],
        max_versions: Some(2),
        ..Default::default()
    })
    .expect("read")
    .expect("row");
    assert_eq!(
        row.cells,
        vec![
            Cell::new("z", 3i64).at(now - 1),
            Cell::new("z", 2i64).at(now - 2)
        ]
    );
    // Only PK columns: the row with no cells.
    let row = read(ReadOptions {
        columns_to_get: vec!["n".into()],
        ..Default::default()
    })
    .expect("read")
    .expect("row");
    assert!(row.cells.is_empty());
    assert_eq!(row.primary_key, k);
    // Only absent columns: nothing.
    let r = read(ReadOptions {
        columns_to_get: vec!["nope".into()],
        ..Default::default()
    });
    assert_eq!(r.expect("read"), None);
    // Time ranges.
    let row = read(ReadOptions {
        time_range: Some(TimeRange::Between {
            start: now - 3,
            end: now - 1,
        }),
        ..Default::default()
    })
    .expect("read")
    .expect("row");
    assert_eq!(
        row.cells,
        vec![
            Cell::new("b", "x").at(now - 2),
            Cell::new("z", 2i64).at(now - 2),
            Cell::new("z", 1i64).at(now - 3),
        ]
    );
    let row = read(ReadOptions {
        time_range: Some(TimeRange::Specific(now - 5)),
        ..Default::default()
    })
    .expect("read")
    .expect("row");
    assert_eq!(row.cells, vec![Cell::new("m", 1.5).at(now - 5)]);
    let r = read(ReadOptions {
        time_range: Some(TimeRange::Specific(now - 100)),
        ..Default::default()
    });
    assert_eq!(r.expect("read"), None);
    // Limits.
    let r = read(ReadOptions {
        columns_to_get: (0..129).map(|i| format!("c{i}")).collect(),
        ..Default::default()
    });
    assert_eq!(code_of(r), "OTSParameterInvalid");
    let r = read(ReadOptions {
        max_versions: Some(0),
        ..Default::default()
    });
    assert_eq!(code_of(r), "OTSParameterInvalid");
    // Missing row.
    assert_eq!(get(&e, &key("zz", 1)), None);
}

#[tokio::test]
async fn read_filter() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let k = key("a", 1);
    write1(
        &e,
        put_op(k.clone(), vec![Cell::new("c", 5i64), Cell::new("d", "x")]),
    )
    .await
    .expect("put");
    let filter = |v: i64| ColumnCondition::Single {
        column: "c".into(),
        comparator: Comparator::Equal,
        value: Value::Integer(v),
        pass_if_missing: false,
        latest_version_only: true,
    };
    let read = |f, cols: Vec<&str>| {
        e.get_row(
            "t",
            &k,
            &ReadOptions {
                filter: Some(f),
                columns_to_get: cols.into_iter().map(String::from).collect(),
                ..Default::default()
            },
        )
        .expect("read")
    };
    assert!(read(filter(5), vec![]).is_some());
    assert!(read(filter(6), vec![]).is_none());
    // The filter sees the columns read: "c" not read counts as missing.
    assert!(read(filter(5), vec!["d"]).is_none());
    assert!(read(filter(5), vec!["c", "d"]).is_some());
}

#[tokio::test]
async fn ttl_hides_expired_cells() {
    let (_d, e) = setup();
    let mut d = def_t();
    d.options.deviation_cell_version_in_sec = 10 * 86400;
    e.create_table(d).expect("create");
    let k = key("a", 1);
    let now = now_ms();
    write1(
        &e,
        put_op(
            k.clone(),
            vec![
                Cell::new("old", 1i64).at(now - 2 * 86_400_000),
                Cell::new("new", 2i64),
            ],
        ),
    )
    .await
    .expect("put");
    assert_eq!(get(&e, &k).map(|r| r.cells.len()), Some(2));
    e.update_table(
        "t",
        TableOptionsUpdate {
            time_to_live: Some(86400),
            ..Default::default()
        },
    )
    .expect("ttl");
    let row = get(&e, &k).expect("row");
    assert_eq!(values(&row), vec![("new".into(), Value::Integer(2))]);
    // Writes older than the TTL are refused now.
    let r = write1(
        &e,
        put_op(
            k.clone(),
            vec![Cell::new("x", 1i64).at(now - 2 * 86_400_000)],
        ),
    )
    .await;
    assert_eq!(code_of(r), "OTSParameterInvalid");
    // A row whose cells all expired does not exist.
    let k2 = key("b", 1);
    e.update_table(
        "t",
        TableOptionsUpdate {
            time_to_live: Some(-1),
            ..Default::default()
        },
    )
    .expect("ttl off");
    write1(
        &e,
        put_op(
            k2.clone(),
            vec![Cell::new("old", 1i64).at(now - 2 * 86_400_000)],
        ),
    )
    .await
    .expect("put");
    e.update_table(
        "t",
        TableOptionsUpdate {
            time_to_live: Some(86400),
            ..Default::default()
        },
    )
    .expect("ttl");
    assert_eq!(get(&e, &k2), None);
    let mut cond = put_op(k2.clone(), vec![Cell::new("x", 1i64)]);
    cond.condition = Condition::expect(RowExistence::ExpectNotExist);
    write1(&e, cond).await.expect("expired row does not exist");
}

// ------------------------------------------------------------------ ranges

/// Rows ("k0".."k{s-1}") × (0..n).
async fn fill(e: &Engine, strings: usize, ints: i64) {
    let mut ops = Vec::new();
    for s in 0..strings {
        for n in 0..ints {
            ops.push(put_op(
                key(&format!("k{s}"), n - ints / 2),
                vec![Cell::new("v", (s as i64) * 1000 + n)],
            ));
        }
    }
    for chunk in ops.chunks(200) {
        for r in e.write(chunk.to_vec()).await {
            r.expect("put");
        }
    }
}

fn range(dir: Direction, start: PrimaryKey, end: PrimaryKey, limit: Option<i32>) -> RangeRequest {
    RangeRequest {
        direction: dir,
        start,
        end,
        limit,
        read: ReadOptions::default(),
    }
}

fn min_max(min: bool) -> PrimaryKey {
    let v = if min {
        PkValue::InfMin
    } else {
        PkValue::InfMax
    };
    pkv(&[("pk", v.clone()), ("n", v)])
}

/// Reads the whole range page by page.
fn read_all(e: &Engine, mut req: RangeRequest) -> (Vec<PrimaryKey>, usize) {
    let mut keys = Vec::new();
    let mut pages = 0;
    loop {
        let page = e.get_range("t", &req).expect("range");
        pages += 1;
        keys.extend(page.rows.into_iter().map(|r| r.primary_key));
        match page.next_start {
            Some(n) => req.start = n,
            None => return (keys, pages),
        }
    }
}

#[tokio::test]
async fn range_paging_composite_keys() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    fill(&e, 5, 6).await; // k0..k4 × -3..2
    let mut all = Vec::new();
    for s in 0..5 {
        for n in -3..3 {
            all.push(key(&format!("k{s}"), n));
        }
    }
    // Forward, INF bounds, pages of 7.
    let (keys, pages) = read_all(
        &e,
        range(Direction::Forward, min_max(true), min_max(false), Some(7)),
    );
    assert_eq!(keys, all);
    assert_eq!(pages, 5); // 30 rows / 7 = 4 full pages + 1
                          // Exactly filling the last page: no next_start.
    let page = e
        .get_range(
            "t",
            &range(Direction::Forward, min_max(true), min_max(false), Some(30)),
        )
        .expect("range");
    assert_eq!(page.rows.len(), 30);
    assert_eq!(page.next_start, None);
    let page = e
        .get_range(
            "t",
            &range(Direction::Forward, min_max(true), min_max(false), Some(29)),
        )
        .expect("range");
    assert_eq!(page.next_start, Some(key("k4", 2)));
    // Backward.
    let (keys, _) = read_all(
        &e,
        range(Direction::Backward, min_max(false), min_max(true), Some(4)),
    );
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(keys, rev);
    // INF in the second column: all of k1 and k2.
    let start = pkv(&[("pk", "k1".into()), ("n", PkValue::InfMin)]);
    let end = pkv(&[("pk", "k2".into()), ("n", PkValue::InfMax)]);
    let (keys, _) = read_all(
        &e,
        range(Direction::Forward, start.clone(), end.clone(), Some(5)),
    );
    assert_eq!(keys, all[6..18].to_vec());
    let (keys, _) = read_all(&e, range(Direction::Backward, end, start, Some(5)));
    assert_eq!(keys, all[6..18].iter().rev().cloned().collect::<Vec<_>>());
    // Real-key bounds: start inclusive, end exclusive (both directions).
    let (keys, _) = read_all(
        &e,
        range(Direction::Forward, key("k1", 0), key("k2", -2), None),
    );
    assert_eq!(keys, all[9..13].to_vec());
    let (keys, _) = read_all(
        &e,
        range(Direction::Backward, key("k2", -2), key("k1", 0), None),
    );
    assert_eq!(keys, all[10..14].iter().rev().cloned().collect::<Vec<_>>());
    // Rows carry their cells.
    let page = e
        .get_range(
            "t",
            &range(Direction::Forward, key("k3", 1), key("k3", 2), None),
        )
        .expect("range");
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].get("v"), Some(&Value::Integer(3004)));
    // An empty table range.
    let page = e
        .get_range(
            "t",
            &range(Direction::Forward, key("x", 0), min_max(false), None),
        )
        .expect("range");
    assert_eq!(page, RangePage::default());
}

#[tokio::test]
async fn range_validation() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let r = e.get_range(
        "t",
        &range(Direction::Forward, key("b", 1), key("a", 1), None),
    );
    assert_eq!(
        err_of(r),
        (
            400,
            "OTSParameterInvalid".into(),
            "Begin key must less than end key in FORWARD".into()
        )
    );
    let r = e.get_range(
        "t",
        &range(Direction::Forward, key("a", 1), key("a", 1), None),
    );
    assert_eq!(code_of(r), "OTSParameterInvalid");
    let r = e.get_range(
        "t",
        &range(Direction::Backward, key("a", 1), key("b", 1), None),
    );
    assert_eq!(err_of(r).2, "Begin key must more than end key in BACKWARD");
    let r = e.get_range(
        "t",
        &range(Direction::Forward, key("a", 1), key("b", 1), Some(0)),
    );
    assert_eq!(code_of(r), "OTSParameterInvalid");
    let short = PrimaryKey(vec![PkColumn {
        name: "pk".into(),
        value: PkValue::InfMin,
    }]);
    let r = e.get_range("t", &range(Direction::Forward, short, min_max(false), None));
    assert_eq!(err_of(r).2, "Validate PK size fail. Input: 1, Meta: 2.");
    let wrong = pkv(&[("pk", PkValue::InfMin), ("x", PkValue::InfMin)]);
    let r = e.get_range("t", &range(Direction::Forward, wrong, min_max(false), None));
    assert_eq!(code_of(r), "OTSInvalidPK");
    let r = e.get_range(
        "nope",
        &range(Direction::Forward, min_max(true), min_max(false), None),
    );
    assert_eq!(code_of(r), "OTSObjectNotExist");
}

#[tokio::test]
async fn range_page_bounds() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    // 5200 rows: one page stops at 5000.
    fill(&e, 2, 2600).await;
    let page = e
        .get_range(
            "t",
            &range(Direction::Forward, min_max(true), min_max(false), None),
        )
        .expect("range");
    assert_eq!(page.rows.len(), RANGE_MAX_ROWS);
    assert_eq!(page.next_start, Some(key("k1", 2400 - 1300)));
    let (keys, pages) = read_all(
        &e,
        range(Direction::Forward, min_max(true), min_max(false), None),
    );
    assert_eq!((keys.len(), pages), (5200, 2));
    // A filter that matches little: scanning still stops at 5000 rows, possibly empty pages.
    let mut req = range(Direction::Forward, min_max(true), min_max(false), None);
    req.read.filter = Some(ColumnCondition::Single {
        column: "v".into(),
        comparator: Comparator::Equal,
        value: Value::Integer(1000 + 2599),
        pass_if_missing: false,
        latest_version_only: true,
    });
    let page = e.get_range("t", &req).expect("range");
    assert!(page.rows.is_empty());
    assert_eq!(page.next_start, Some(key("k1", 2400 - 1300)));
    let (keys, pages) = read_all(&e, req);
    assert_eq!((keys, pages), (vec![key("k1", 1299)], 2));
}

#[tokio::test]
async fn range_byte_bound() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let blob = "x".repeat(200 * 1024);
    let ops: Vec<WriteOp> = (0..30)
        .map(|i| put_op(key("a", i), vec![Cell::new("b", blob.as_str())]))
        .collect();
    for r in e.write(ops).await {
        r.expect("put");
    }
    let page = e
        .get_range(
            "t",
            &range(Direction::Forward, min_max(true), min_max(false), None),
        )
        .expect("range");
    // ~4 MB: the page stops after the row that crosses 4 MiB.
    assert_eq!(page.rows.len(), 21);
    assert_eq!(page.next_start, Some(key("a", 21)));
    let (keys, _) = read_all(
        &e,
        range(Direction::Forward, min_max(true), min_max(false), None),
    );
    assert_eq!(keys.len(), 30);
}

// ------------------------------------------------------------------ durability, concurrency

#[tokio::test]
async fn survives_reopen() {
    let dir = TempDir::new().expect("tempdir");
    let mut d = def_t();
    d.options.max_versions = 2;
    d.defined_columns = vec![("c".into(), DefinedColumnType::String)];
    {
        let e = open(&dir);
        e.create_table(d.clone()).expect("create");
        write1(
            &e,
            put_op(
                key("a", 1),
                vec![Cell::new("c", "v1").at(now_ms() - 5), Cell::new("c", "v2")],
            ),
        )
        .await
        .expect("put");
        write1(&e, put_op(key("b", 2), vec![Cell::new("x", 2i64)]))
            .await
            .expect("put");
        write1(&e, op("t", RowChange::Delete(key("b", 2))))
            .await
            .expect("delete");
    }
    let e = open(&dir);
    assert_eq!(e.describe_table("t").expect("describe").def, d);
    let row = get_all_versions(&e, &key("a", 1)).expect("row");
    assert_eq!(
        values(&row),
        vec![
            ("c".into(), Value::String("v2".into())),
            ("c".into(), Value::String("v1".into()))
        ]
    );
    assert_eq!(get(&e, &key("b", 2)), None);
}

/// A blind update naming distinct columns is written as if the row were new and merged
/// when it was not (one tree walk for new rows): the result, durable across a reopen, is
/// the merge, for rows stored inline and in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_update_of_an_existing_row_merges() {
    let dir = TempDir::new().expect("tempdir");
    let mut d = def_t();
    d.options.max_versions = 2;
    let big = "b".repeat(300);
    let now = now_ms();
    {
        let e = open(&dir);
        e.create_table(d).expect("create");
        for (k, keep) in [(key("small", 1), "k"), (key("big", 2), big.as_str())] {
            write1(
                &e,
                put_op(
                    k.clone(),
                    vec![
                        Cell::new("v", 1i64).at(now - 10),
                        Cell::new("gone", "x").at(now - 10),
                        Cell::new("keep", keep).at(now - 10),
                    ],
                ),
            )
            .await
            .expect("put");
            write1(
                &e,
                update_op(
                    k,
                    vec![
                        CellOp::Put(Cell::new("v", 2i64).at(now - 5)),
                        CellOp::DeleteAllVersions {
                            name: "gone".into(),
                        },
                        CellOp::Put(Cell::new("new", 7i64).at(now - 5)),
                    ],
                ),
            )
            .await
            .expect("update");
        }
        // A new row takes the fresh path and is just the update's columns.
        write1(
            &e,
            update_op(
                key("fresh", 3),
                vec![CellOp::Put(Cell::new("v", 9i64).at(now - 5))],
            ),
        )
        .await
        .expect("update");
    }
    let e = open(&dir);
    for (k, keep) in [(key("small", 1), "k"), (key("big", 2), big.as_str())] {
        let row = get_all_versions(&e, &k).expect("row");
        assert_eq!(
            values(&row),
            vec![
                ("keep".into(), Value::String(keep.into())),
                ("new".into(), Value::Integer(7)),
                ("v".into(), Value::Integer(2)),
                ("v".into(), Value::Integer(1)),
            ]
        );
    }
    let row = get_all_versions(&e, &key("fresh", 3)).expect("row");
    assert_eq!(values(&row), vec![("v".into(), Value::Integer(9))]);
}

const KILL9_DIR: &str = "TSMIGRATE_ENGINE_KILL9_DIR";

/// Child half of `acknowledged_writes_survive_kill_9`: writes until killed, printing each
/// acknowledged call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn kill9_child() {
    let Ok(dir) = std::env::var(KILL9_DIR) else {
        return;
    };
    let e = Engine::open(Path::new(&dir), EngineOptions::default()).expect("open");
    e.create_table(def_t()).expect("create");
    let mut tasks = Vec::new();
    for w in 0..4i64 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            for call in 0i64.. {
                let ops = (0..50)
                    .map(|i| {
                        let size = if i % 2 == 0 { 20 } else { 1000 };
                        put_op(
                            key(&format!("w{w}"), call * 50 + i),
                            vec![Cell::new("v", call), Cell::new("p", "x".repeat(size))],
                        )
                    })
                    .collect();
                for r in e.write(ops).await {
                    r.expect("put");
                }
                println!("acked {w} {call}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    let dir = TempDir::new().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "engine::tests::kill9_child",
            "--ignored",
            "--nocapture",
        ])
        .env(KILL9_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut acked = [-1i64; 4];
    let mut count = 0;
    let parse = |line: &str, acked: &mut [i64; 4]| {
        let mut it = line.strip_prefix("acked ")?.split(' ');
        let w: usize = it.next()?.parse().ok()?;
        let call: i64 = it.next()?.parse().ok()?;
        acked[w] = acked[w].max(call);
        Some(())
    };
    for line in lines.by_ref() {
        if parse(&line.expect("line"), &mut acked).is_some() {
            count += 1;
            if count >= 60 {
                break;
            }
        }
    }
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    // Acknowledgements already in the pipe count too.
    for line in lines {
        let Ok(line) = line else { break };
        parse(&line, &mut acked);
    }
    assert!(acked.iter().all(|a| *a >= 0), "{acked:?}");
    let e = open(&dir);
    for (w, last) in acked.iter().enumerate() {
        for call in 0..=*last {
            for i in [0, 1, 49] {
                let row = get(&e, &key(&format!("w{w}"), call * 50 + i));
                assert_eq!(
                    row.and_then(|r| r.get("v").cloned()),
                    Some(Value::Integer(call)),
                    "writer {w} call {call} row {i}"
                );
            }
        }
    }
}

#[test]
fn open_reports_path_on_error() {
    let dir = TempDir::new().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    let err = Engine::open(&file.join("sub"), EngineOptions::default())
        .err()
        .expect("error");
    assert_eq!(err.code, "OTSInternalServerError");
    assert!(err.message.contains("sub"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_group_commit() {
    let (_d, e) = setup();
    e.create_table(def_t()).expect("create");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            for call in 0..10 {
                let ops = (0..200)
                    .map(|i| {
                        put_op(
                            key(&format!("w{w}"), call * 200 + i),
                            vec![Cell::new("v", i)],
                        )
                    })
                    .collect();
                for r in e.write(ops).await {
                    r.expect("put");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let (keys, _) = read_all(
        &e,
        range(Direction::Forward, min_max(true), min_max(false), None),
    );
    assert_eq!(keys.len(), 8 * 10 * 200);
}

/// Throughput of ~1 KB PUT rows, 200-row calls, concurrent callers (keys ascending per
/// caller, as a migration writes them; then random keys):
/// `cargo test --release -p tsmigrate-tablestore-server --lib engine::tests::throughput -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    // /tmp is on the same disk here (not tmpfs), so fsync costs are real.
    let dir = TempDir::new().expect("tempdir");
    let e = open(&dir);
    e.create_table(def_t()).expect("create");
    // CPU seconds (user + system) of this process and of its writer thread, from /proc:
    // wall-clock rates are noisy on a shared machine, CPU per row is not.
    fn cpu() -> (f64, f64) {
        let ticks = |stat: &str| -> f64 {
            let after = stat.rsplit(')').next().unwrap_or("");
            let f: Vec<&str> = after.split_whitespace().collect();
            let t: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
                + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            t / 100.0
        };
        let process = std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| ticks(&s));
        let mut writer = 0.0;
        for t in std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
        {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() == "tablestore-writ" {
                writer = std::fs::read_to_string(t.path().join("stat")).map_or(0.0, |s| ticks(&s));
            }
        }
        (process, writer)
    }
    for (callers, random) in [(4usize, false), (8, false), (8, true)] {
        let calls = 200usize;
        let (cpu0, writer0) = cpu();
        let start = std::time::Instant::now();
        let mut tasks = Vec::new();
        for w in 0..callers {
            let e = e.clone();
            tasks.push(tokio::spawn(async move {
                for call in 0..calls {
                    let ops = (0..200)
                        .map(|i| {
                            let mut n = (call * 200 + i) as i64;
                            if random {
                                n = n.wrapping_mul(0x9E37_79B9_7F4A_7C15u64 as i64);
                            }
                            put_op(
                                key(&format!("c{callers}{random}w{w}"), n),
                                vec![Cell::new("payload", "p".repeat(1000)), Cell::new("id", n)],
                            )
                        })
                        .collect();
                    for r in e.write(ops).await {
                        r.expect("put");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let rows = callers * calls * 200;
        let secs = start.elapsed().as_secs_f64();
        let (cpu1, writer1) = cpu();
        println!(
            "{callers} callers, {} keys: {rows} rows in {secs:.2}s = {:.0} rows/s; CPU per row: process {:.1} us, writer thread {:.1} us",
            if random { "random" } else { "ascending" },
            rows as f64 / secs,
            (cpu1 - cpu0) * 1e6 / rows as f64,
            (writer1 - writer0) * 1e6 / rows as f64,
        );
    }
}
