//! WHERE filters on binlog rows (issue 11, item 3): the evaluator against MariaDB's own answer
//! on random rows and random expressions, and an incremental migration whose updates move rows
//! into and out of a table's filter.

use std::collections::BTreeMap;

use crate::harness::mariadb::MariaDb;
use mysql_async::prelude::Queryable;
use tablestore::{PkValue, Value};
use tsmigrate_core::config::{MigrationType, OperationType, TableSelection, TableSpec};
use tsmigrate_core::mapping::filter_eval::RowFilter;
use tsmigrate_core::mysql::{connect_for_reading, describe_table};
use tsmigrate_core::steps::binlog::binlog_batch;
use tsmigrate_core::steps::{self, Context};

const COLUMNS: [&str; 10] = ["id", "i", "u", "d", "f", "ci", "bn", "dt", "ts", "tm"];

/// Random expressions of the supported grammar (and some just outside it, which `compile`
/// must refuse), as SQL text.
struct Gen {
    rng: fastrand::Rng,
}

const STRINGS: [&str; 16] = [
    "a", "A", "a ", "b", "B  ", "ab", "aB", "_a", "%", "", " a", "1", "2abc", "1.5", "x_y", "-3",
];
const DATES: [&str; 4] = ["2024-01-01", "2024-02-29", "1999-12-31", "2024-01-02"];
const TIMES: [&str; 4] = ["10:00:00", "-01:30:00", "00:00:00", "100:00:00.5"];

impl Gen {
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.usize(..xs.len())]
    }

    fn int_lit(&mut self) -> String {
        self.rng.i32(-6..=6).to_string()
    }

    fn num_lit(&mut self) -> String {
        match self.rng.u8(..6) {
            0 | 1 => self.int_lit(),
            2 => format!("{}.{}", self.rng.i32(-5..=5), self.rng.u32(0..1000)),
            3 => self.pick(&["0.1e0", "1e1", "-2.5e0", "3.25e0"]).to_owned(),
            4 => format!("'{}'", self.pick(&STRINGS)),
            _ => "NULL".to_owned(),
        }
    }

    fn num_operand(&mut self, depth: u32) -> String {
        match self.rng.u8(..8) {
            0..=3 => self.pick(&["i", "u", "d", "f", "id"]).to_owned(),
            4 | 5 => self.num_lit(),
            _ if depth > 0 => {
                let op = self.pick(&["+", "-", "*", "%", "DIV", "/"]);
                let (a, b) = (self.num_operand(depth - 1), self.num_operand(depth - 1));
                if self.rng.bool() {
                    format!("({a} {op} {b})")
                } else {
                    format!("-{a}")
                }
            }
            _ => self.pick(&["i", "d", "f"]).to_owned(),
        }
    }

    fn str_lit(&mut self) -> String {
        format!("'{}'", self.pick(&STRINGS))
    }

    fn cmp_op(&mut self) -> &'static str {
        self.pick(&["=", "<>", "!=", "<", "<=", ">", ">=", "<=>"])
    }

    fn predicate(&mut self, depth: u32) -> String {
        match self.rng.u8(..16) {
            0..=2 => {
                let op = self.cmp_op();
                format!(
                    "{} {op} {}",
                    self.num_operand(depth),
                    self.num_operand(depth)
                )
            }
            3 | 4 => {
                let col = self.pick(&["ci", "bn"]);
                let op = self.cmp_op();
                let other = match self.rng.u8(..6) {
                    0 => self.num_operand(0),
                    1 => self.pick(&["ci", "bn"]).to_owned(),
                    _ => self.str_lit(),
                };
                format!("{col} {op} {other}")
            }
            5 => {
                let op = self.cmp_op();
                let lit = match self.rng.u8(..5) {
                    0 => format!("'{} 00:00:00'", self.pick(&DATES)),
                    1 => "'2024-1-1'".to_owned(),
                    _ => format!("'{}'", self.pick(&DATES)),
                };
                format!("dt {op} {lit}")
            }
            6 => {
                let op = self.cmp_op();
                let lit = match self.rng.u8(..3) {
                    0 => format!("'{}'", self.pick(&DATES)),
                    1 => "dt".to_owned(),
                    _ => format!("'{} 10:00:00.25'", self.pick(&DATES)),
                };
                format!("ts {op} {lit}")
            }
            7 => {
                let op = self.cmp_op();
                format!("tm {op} '{}'", self.pick(&TIMES))
            }
            8 => {
                let col = self.pick(&["i", "u", "d", "f", "ci", "bn"]);
                let n = self.rng.usize(1..4);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        if col.len() == 2 && self.rng.bool() {
                            self.str_lit()
                        } else {
                            self.num_lit()
                        }
                    })
                    .collect();
                let not = if self.rng.bool() { "NOT " } else { "" };
                format!("{col} {not}IN ({})", items.join(", "))
            }
            9 => {
                let not = if self.rng.bool() { "NOT " } else { "" };
                match self.rng.u8(..3) {
                    0 => {
                        let (a, b) = (self.pick(&DATES), self.pick(&DATES));
                        format!("dt {not}BETWEEN '{a}' AND '{b}'")
                    }
                    1 => {
                        let (a, b) = (self.str_lit(), self.str_lit());
                        format!("{} {not}BETWEEN {a} AND {b}", self.pick(&["ci", "bn"]))
                    }
                    _ => {
                        let (a, b) = (self.num_lit(), self.num_lit());
                        format!("{} {not}BETWEEN {a} AND {b}", self.num_operand(0))
                    }
                }
            }
            10 => {
                let col = self.pick(&["ci", "bn", "i", "d", "dt"]);
                let pat = self.pick(&[
                    "a%", "A%", "%a", "_", "%", "a_", "%b%", "x!_y", "!%", "1%", "2024-%", "-%",
                    "a ", "",
                ]);
                let not = if self.rng.bool() { "NOT " } else { "" };
                let esc = if pat.contains('!') { " ESCAPE '!'" } else { "" };
                format!("{col} {not}LIKE '{pat}'{esc}")
            }
            11 => {
                let col = self.pick(&COLUMNS);
                let test = self.pick(&[
                    "IS NULL",
                    "IS NOT NULL",
                    "IS TRUE",
                    "IS NOT TRUE",
                    "IS FALSE",
                    "IS NOT FALSE",
                ]);
                format!("{col} {test}")
            }
            12 if depth > 0 => format!("NOT ({})", self.predicate(depth - 1)),
            13..=15 if depth > 0 => {
                let op = self.pick(&["AND", "OR", "XOR"]);
                let (a, b) = (self.predicate(depth - 1), self.predicate(depth - 1));
                format!("({a}) {op} ({b})")
            }
            _ => self.num_operand(depth),
        }
    }

    fn value(&mut self, column: &str) -> String {
        if column != "id" && self.rng.u8(..7) == 0 {
            return "NULL".to_owned();
        }
        match column {
            "i" => self.int_lit(),
            "u" => {
                if self.rng.u8(..20) == 0 {
                    "18446744073709551615".to_owned()
                } else {
                    self.rng.u32(0..8).to_string()
                }
            }
            "d" => format!("{}.{:03}", self.rng.i32(-4..=4), self.rng.u32(0..3) * 250),
            "f" => self
                .pick(&["0.1", "0.5", "-2", "3.25", "1e20", "0", "-0.001"])
                .to_owned(),
            "ci" | "bn" => self.str_lit(),
            "dt" => format!("'{}'", self.pick(&DATES)),
            "ts" => format!(
                "'{} {}'",
                self.pick(&DATES),
                self.pick(&["00:00:00", "10:00:00.25", "23:59:59.99"])
            ),
            "tm" => format!("'{}'", self.pick(&TIMES)),
            _ => unreachable!("{column}"),
        }
    }
}

/// The evaluator gives MariaDB's answer, `(expr) IS TRUE`, on every row, for hundreds of
/// random expressions over random rows with NULLs. Refused expressions are counted, not
/// compared; MariaDB errors (out-of-range arithmetic) skip the expression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evaluator_agrees_with_mariadb_on_random_rows_and_expressions() {
    let seed = std::env::var("WHERE_FILTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed),
    };
    let server = MariaDb::shared();
    let database = server.fresh_database("wf").await;
    let mut rows = Vec::new();
    for id in 1..=60 {
        let values: Vec<String> = COLUMNS
            .iter()
            .map(|c| {
                if *c == "id" {
                    id.to_string()
                } else {
                    g.value(c)
                }
            })
            .collect();
        rows.push(format!("({})", values.join(", ")));
    }
    server
        .exec(&format!(
            "USE `{database}`;
             CREATE TABLE p (id INT PRIMARY KEY, i INT, u BIGINT UNSIGNED, d DECIMAL(10,3),
               f DOUBLE, ci VARCHAR(20) COLLATE utf8mb4_general_ci,
               bn VARCHAR(20) COLLATE utf8mb4_bin, dt DATE, ts DATETIME(2), tm TIME(1))
               CHARSET utf8mb4;
             INSERT INTO p VALUES {}",
            rows.join(", ")
        ))
        .await;
    let mut opts = server.admin_options();
    opts.database = Some(database.clone());
    let mut conn = connect_for_reading(&opts).await.expect("connect");
    let info = describe_table(&mut conn, &database, "p")
        .await
        .expect("describe");
    // The rows as the full copy reads them: text protocol, UTC session.
    let source: Vec<Vec<Option<Vec<u8>>>> = conn
        .query::<mysql_async::Row, _>(format!("SELECT {} FROM p ORDER BY id", COLUMNS.join(", ")))
        .await
        .expect("rows")
        .into_iter()
        .map(|r| {
            (0..COLUMNS.len())
                .map(|i| match r.as_ref(i) {
                    Some(mysql_async::Value::Bytes(b)) => Some(b.clone()),
                    _ => None,
                })
                .collect()
        })
        .collect();

    let (mut compared, mut refused, mut failed_in_db, mut true_answers) = (0, 0, 0, 0u64);
    let mut refusals: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..600 {
        let expr = g.predicate(3);
        let filter = match RowFilter::compile(&expr, &info, &COLUMNS) {
            Ok(f) => f,
            Err(e) => {
                refused += 1;
                let reason: String = e.reason.chars().take(40).collect();
                *refusals.entry(reason).or_default() += 1;
                continue;
            }
        };
        let answers: Vec<(i32, i64)> = match conn
            .query(format!("SELECT id, ({expr}) IS TRUE FROM p ORDER BY id"))
            .await
        {
            Ok(a) => a,
            Err(_) => {
                failed_in_db += 1;
                continue;
            }
        };
        compared += 1;
        for ((id, db), row) in answers.iter().zip(&source) {
            let ours = filter.matches(row);
            assert_eq!(
                ours,
                Ok(*db == 1),
                "seed {seed} (rerun with WHERE_FILTER_SEED={seed}): `{expr}` on row id {id} \
                 {:?}",
                row.iter()
                    .map(|v| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
                    .collect::<Vec<_>>()
            );
            true_answers += u64::from(*db == 1);
        }
    }
    println!(
        "seed {seed}: {compared} expressions compared on {} rows ({true_answers} TRUE), \
         {refused} refused, {failed_in_db} failed in MariaDB; refusals: {refusals:?}",
        source.len()
    );
    assert!(
        compared >= 200,
        "too few expressions compiled: {compared} (seed {seed})"
    );
    assert!(true_answers > 0);
}

/// Full copy with a filter, then inserts, updates moving rows into and out of the filter, key
/// changes and deletes replayed from the binlog: the destination holds exactly the source's
/// `SELECT … WHERE filter`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_with_a_filter_keeps_exactly_the_matching_rows() {
    let server = MariaDb::shared();
    let database = server.fresh_database("wfi").await;
    let filter = "status <> 'gone' AND amount >= 10";
    server
        .exec(&format!(
            "USE `{database}`;
             CREATE TABLE t (id INT PRIMARY KEY, status VARCHAR(10), amount DECIMAL(8,2),
               v VARCHAR(20));
             INSERT INTO t SELECT seq, IF(seq % 5 = 0, 'gone', 'live'), seq % 20,
               CONCAT('v', seq) FROM seq_1_to_200"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg =
        crate::harness::local_config(server, &database, dir.path(), format!("wf_{database}"));
    cfg.migration_types = vec![
        MigrationType::Schema,
        MigrationType::Full,
        MigrationType::Incremental,
    ];
    cfg.incremental.max_events = 25;
    let mut spec = TableSpec::new("t");
    spec.filter = Some(filter.to_owned());
    cfg.objects.tables = TableSelection::List(vec![spec]);
    assert!(cfg.applies(OperationType::Delete));
    let ctx = crate::harness::local_context(cfg).await;
    full_copy(&ctx).await;
    assert_eq!(
        destination(&ctx).await,
        source(server, &database, filter).await
    );

    server
        .exec(&format!(
            "USE `{database}`;
             INSERT INTO t VALUES (1001, 'live', 50, 'in'), (1002, 'gone', 50, 'out'),
               (1003, 'live', 5, 'out');
             UPDATE t SET amount = 15 WHERE id BETWEEN 1 AND 9;
             UPDATE t SET amount = 1 WHERE id BETWEEN 10 AND 30;
             UPDATE t SET status = 'gone' WHERE id BETWEEN 31 AND 40;
             UPDATE t SET status = 'live' WHERE id IN (45, 50, 55);
             UPDATE t SET v = 'touched' WHERE id BETWEEN 180 AND 200;
             UPDATE t SET id = id + 5000 WHERE id IN (59, 60, 61, 62);
             UPDATE t SET id = 7000, amount = 99 WHERE id = 65;
             DELETE FROM t WHERE id BETWEEN 150 AND 170;
             UPDATE t SET amount = NULL WHERE id = 171;
             UPDATE t SET amount = 12, status = 'live' WHERE id = 1003;"
        ))
        .await;
    catch_up(&ctx).await;
    let expected = source(server, &database, filter).await;
    assert!(expected.contains_key(&1003) && !expected.contains_key(&171));
    assert_eq!(destination(&ctx).await, expected);
}

/// Without `delete` in operation_types, a row that leaves the filter stays in the destination
/// as it was last written; rows entering it are still written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_delete_a_row_leaving_the_filter_stays() {
    let server = MariaDb::shared();
    let database = server.fresh_database("wfn").await;
    let filter = "amount >= 10";
    server
        .exec(&format!(
            "USE `{database}`;
             CREATE TABLE t (id INT PRIMARY KEY, amount INT, v VARCHAR(20));
             INSERT INTO t VALUES (1, 20, 'a'), (2, 5, 'b'), (3, 30, 'c')"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg =
        crate::harness::local_config(server, &database, dir.path(), format!("wf_{database}"));
    cfg.migration_types = vec![
        MigrationType::Schema,
        MigrationType::Full,
        MigrationType::Incremental,
    ];
    cfg.operation_types = vec![OperationType::Insert, OperationType::Update];
    let mut spec = TableSpec::new("t");
    spec.filter = Some(filter.to_owned());
    cfg.objects.tables = TableSelection::List(vec![spec]);
    let ctx = crate::harness::local_context(cfg).await;
    full_copy(&ctx).await;
    server
        .exec(&format!(
            "USE `{database}`;
             UPDATE t SET amount = 1, v = 'left' WHERE id = 1;
             UPDATE t SET amount = 11, v = 'entered' WHERE id = 2;
             DELETE FROM t WHERE id = 3;"
        ))
        .await;
    catch_up(&ctx).await;
    let expected: BTreeMap<i64, String> = [(1, "a"), (2, "entered"), (3, "c")]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
    assert_eq!(destination(&ctx).await, expected);
}

async fn full_copy(ctx: &Context) {
    steps::create_schema(ctx).await.expect("schema");
    steps::begin(ctx, "wf-exec").await.expect("begin");
    let plan = steps::plan::plan_chunks(ctx).await.expect("plan");
    for i in plan.wave_start..plan.wave_start + plan.chunk_count {
        while !steps::copy::copy_chunk(ctx, i, Some("wf-exec"))
            .await
            .expect("copy")
            .done
        {}
    }
}

async fn catch_up(ctx: &Context) {
    for _ in 0..10_000 {
        let out = binlog_batch(ctx, Some("wf-exec"), None)
            .await
            .unwrap_or_else(|e| panic!("binlog batch: {e}"));
        if out.caught_up {
            return;
        }
    }
    panic!("never caught up");
}

/// `id → v` of the source rows the filter selects.
async fn source(server: &MariaDb, database: &str, filter: &str) -> BTreeMap<i64, String> {
    let mut conn = server.admin_conn().await;
    conn.query::<(i64, String), _>(format!("SELECT id, v FROM `{database}`.t WHERE {filter}"))
        .await
        .expect("select")
        .into_iter()
        .collect()
}

/// `id → v` of the destination table.
async fn destination(ctx: &Context) -> BTreeMap<i64, String> {
    crate::harness::tablestore::all_rows(&ctx.destination, "t", &["id"])
        .await
        .into_iter()
        .map(|r| {
            let id = match &r.primary_key.0[0].value {
                PkValue::Integer(i) => *i,
                other => panic!("key {other:?}"),
            };
            let v = match r.get("v") {
                Some(Value::String(s)) => s.clone(),
                other => panic!("v {other:?}"),
            };
            (id, v)
        })
        .collect()
}

/// With incremental migration, the precheck compiles each filter for the table's columns: a
/// function is refused with the expression and the fix; a supported filter passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_refuses_a_filter_the_binlog_evaluator_cannot_answer() {
    let server = MariaDb::shared();
    let database = server.fresh_database("wfp").await;
    server
        .exec(&format!(
            "CREATE TABLE `{database}`.t (id INT PRIMARY KEY, v VARCHAR(20)
               COLLATE utf8mb4_unicode_ci, n INT)"
        ))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (filter, refused) in [
        ("n > 3 AND id BETWEEN 1 AND 9", None),
        ("lower(v) = 'x'", Some("functions such as lower()")),
        ("v = 'x'", Some("utf8mb4_unicode_ci")),
    ] {
        let mut cfg =
            crate::harness::local_config(server, &database, dir.path(), format!("wfp_{database}"));
        cfg.migration_types = vec![MigrationType::Schema, MigrationType::Incremental];
        let mut spec = TableSpec::new("t");
        spec.filter = Some(filter.to_owned());
        cfg.objects.tables = TableSelection::List(vec![spec]);
        let ctx = crate::harness::local_context(cfg).await;
        let report = steps::precheck(&ctx).await;
        let item = report.item("binlog_filters").expect("binlog_filters item");
        match refused {
            None => assert_eq!(item.status, steps::Status::Passed, "{item:?}"),
            Some(why) => {
                assert_eq!(item.status, steps::Status::Failed, "{item:?}");
                assert!(
                    item.detail.contains(why) && item.detail.contains(filter),
                    "{item:?}"
                );
                assert!(item.fix.contains("docs/configuration.md"), "{item:?}");
            }
        }
    }
}
