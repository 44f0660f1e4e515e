//! The per-table steps at many tables: Precheck, CreateSchema, PlanChunks and Verify stop when
//! their budget is spent (Lambda's deadline; here a few tables per call) and the next call
//! continues where the last stopped, ending with the same result as one long call. An
//! execution that continues a run (continue-as-new) skips the precheck.

use std::time::SystemTime;

use serde_json::{json, Value};
use tsmigrate_core::config::{MigrationConfig, MigrationType, SecretResolver};
use tsmigrate_core::state::ChunkRecord;
use tsmigrate_core::steps::budget::Budget;
use tsmigrate_core::steps::create_schema::create_schema_from;
use tsmigrate_core::steps::dispatch::{run_step_until, Step};
use tsmigrate_core::steps::lifecycle::state_store;
use tsmigrate_core::steps::plan::plan_chunks_until;
use tsmigrate_core::steps::precheck::{continues_run, precheck_from};
use tsmigrate_core::steps::verify::{verify_from, VerifyProgress};
use tsmigrate_core::steps::{self, Context, Status};

use crate::harness::mariadb::MariaDb;

/// As many as the embedded server's default quota (64) holds beside the state table.
const TABLES: usize = 60;

fn table(i: usize) -> String {
    format!("t{i:03}")
}

/// `TABLES` small tables; `t000` has 300 rows, so it spans several chunks of 100.
async fn source(db: &MariaDb) -> String {
    let d = db.fresh_database("resume").await;
    for i in 0..TABLES {
        let t = table(i);
        db.exec(&format!(
            "CREATE TABLE `{d}`.{t} (id INT PRIMARY KEY, v VARCHAR(20))"
        ))
        .await;
        let rows = if i == 0 { 300 } else { 3 };
        let values: Vec<String> = (1..=rows).map(|k| format!("({k}, 'v{k}')")).collect();
        db.exec(&format!(
            "INSERT INTO `{d}`.{t} VALUES {}",
            values.join(",")
        ))
        .await;
    }
    db.exec(&format!("ANALYZE TABLE `{d}`.t000")).await;
    d
}

fn config(db: &MariaDb, d: &str, dir: &std::path::Path, id: &str) -> MigrationConfig {
    let mut cfg = crate::harness::local_config(db, d, dir, format!("{id}_{d}"));
    cfg.migration_types = vec![MigrationType::Schema, MigrationType::Full];
    cfg.full.chunk_rows = 100;
    cfg.full.page_rows = 50;
    cfg.writer.thread_count = 1;
    cfg.destination.max_tables = 1_000;
    cfg
}

/// Every chunk of the plan copied to the end.
async fn copy_all(ctx: &Context, total: u32) {
    for i in 0..total {
        while !steps::copy::copy_chunk(ctx, i, Some("e1"))
            .await
            .expect("copy")
            .done
        {}
    }
}

/// The plan's chunks without their progress (what planning decided).
async fn planned(ctx: &Context) -> Vec<(String, Option<Value>, Option<Value>)> {
    let chunks: Vec<ChunkRecord> = state_store(ctx).chunks().await.expect("chunks");
    chunks
        .into_iter()
        .map(|c| (c.table, c.lower, c.upper))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_table_steps_resume_and_end_like_one_long_call() {
    let db = MariaDb::shared();
    let d = source(db).await;
    let (long_dir, sliced_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let long = crate::harness::local_context(config(db, &d, long_dir.path(), "long")).await;
    let sliced = crate::harness::local_context(config(db, &d, sliced_dir.path(), "sliced")).await;

    // CreateSchema: 9 tables a call.
    let whole = steps::create_schema(&long).await.expect("schema");
    assert_eq!(whole.tables.len(), TABLES);
    let (mut tables, mut calls, mut from) = (Vec::new(), 0, None::<String>);
    loop {
        let s = create_schema_from(&sliced, from.as_deref(), &Budget::units(9))
            .await
            .expect("schema slice");
        calls += 1;
        assert!(s.tables.len() <= 9, "{}", s.tables.len());
        tables.extend(s.tables);
        match s.next_table {
            Some(next) => {
                assert!(
                    from.as_ref().is_none_or(|f| next > *f),
                    "{next} after {from:?}"
                );
                from = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(calls, TABLES.div_ceil(9));
    assert_eq!(tables, whole.tables, "same tables, keys and outcomes");

    // Precheck (every destination table exists now: one DescribeTable each), 7 tables a call.
    let report = steps::precheck(&sliced).await;
    assert!(report.passed, "{report:#?}");
    let (mut calls, mut from) = (0, None::<String>);
    loop {
        let s = precheck_from(&sliced, from.as_deref(), &Budget::units(7)).await;
        calls += 1;
        assert!(s.report.passed, "{:#?}", s.report);
        if calls == 1 {
            assert_eq!(
                s.report.items.len(),
                report.items.len(),
                "the first call checks all"
            );
        } else {
            let names: Vec<&str> = s.report.items.iter().map(|i| i.name.as_str()).collect();
            assert_eq!(
                names,
                ["conflicting_tables"],
                "later calls check tables only"
            );
        }
        match s.next_table {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    assert_eq!(calls, TABLES.div_ceil(7));

    // A table in the last slice with another key fails its slice, as it fails one long call.
    let odd = table(TABLES - 2);
    sliced.destination.delete_table(&odd).await.expect("drop");
    sliced
        .destination
        .create_table(&tablestore::schema::TableDef::new(
            odd.as_str(),
            vec![tablestore::schema::PkSchema::new(
                "id",
                tablestore::PkType::String,
            )],
        ))
        .await
        .expect("other key");
    let long_report = steps::precheck(&sliced).await;
    let conflict = long_report.item("conflicting_tables").expect("item");
    assert_eq!(conflict.status, Status::Failed, "{conflict:#?}");
    let mut from = None::<String>;
    let failed = loop {
        let s = precheck_from(&sliced, from.as_deref(), &Budget::units(7)).await;
        if !s.report.passed {
            break s.report;
        }
        from = Some(s.next_table.expect("a later slice fails"));
    };
    let item = failed.item("conflicting_tables").expect("item");
    assert_eq!(item.status, Status::Failed);
    assert!(item.detail.contains(&odd), "{}", item.detail);
    sliced.destination.delete_table(&odd).await.expect("drop");
    assert!(
        create_schema_from(&sliced, Some(odd.as_str()), &Budget::units(1))
            .await
            .is_ok()
    );

    // PlanChunks: 11 tables a call, progress in the state store between calls.
    steps::begin(&long, "e1").await.expect("begin");
    steps::begin(&sliced, "e1").await.expect("begin");
    let long_plan = steps::plan::plan_chunks(&long).await.expect("plan");
    assert!(long_plan.done);
    let mut calls = 0;
    let sliced_plan = loop {
        let p = plan_chunks_until(&sliced, &Budget::units(11))
            .await
            .expect("plan");
        calls += 1;
        if p.done {
            break p;
        }
        assert_eq!(
            state_store(&sliced).plan().await.unwrap(),
            None,
            "no plan yet"
        );
    };
    assert_eq!(calls, TABLES.div_ceil(11));
    assert_eq!(sliced_plan.total_chunks, long_plan.total_chunks);
    assert!(
        long_plan.total_chunks > TABLES as u32,
        "t000 has several chunks"
    );
    assert_eq!(planned(&sliced).await, planned(&long).await);

    // Verify: 4 chunks a call, totals handed from call to call; t000 spans calls.
    copy_all(&sliced, sliced_plan.total_chunks).await;
    let v = steps::verify::verify(&sliced, None).await.expect("verify");
    assert!(v.is_clean(), "{v:?}");
    // A row missing from t005 and an extra row in t000: found whether or not a call stops
    // inside the table.
    let key = |id: i64| tablestore::PrimaryKey::new().with("id", id);
    sliced
        .destination
        .delete_row(&table(5), &key(2), &tablestore::Condition::ignore())
        .await
        .expect("delete");
    let extra = tablestore::Row::new(key(10_000)).with("v", "extra");
    sliced
        .destination
        .put_row(&table(0), &extra, &tablestore::Condition::ignore())
        .await
        .expect("put");
    let v = steps::verify::verify(&sliced, None).await.expect("verify");
    assert_eq!((v.missing, v.extra), (1, 1), "{v:?}");
    let mut progress = VerifyProgress::default();
    let mut calls = 0;
    while !progress.done {
        let (_, p) = verify_from(&sliced, progress.clone(), &Budget::units(4))
            .await
            .expect("verify slice");
        assert!(p.next_chunk > progress.next_chunk);
        progress = p;
        calls += 1;
    }
    assert_eq!(calls, sliced_plan.total_chunks.div_ceil(4));
    assert_eq!(progress.matched, v.matched);
    assert_eq!(progress.mismatched, v.missing + v.different + v.extra);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invocation_deadline_reaches_the_steps_and_continued_runs_skip_the_precheck() {
    let db = MariaDb::shared();
    let d = db.fresh_database("deadline").await;
    for t in ["a", "b", "c"] {
        db.exec(&format!("CREATE TABLE `{d}`.{t} (id INT PRIMARY KEY)"))
            .await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(db, &d, dir.path(), "dl");
    let secrets = cfg.detach_literal_secrets();
    let ctx = crate::harness::context(cfg, &secrets).await;
    let resolver = &secrets as &dyn SecretResolver;
    let input = |extra: Value| {
        let mut v = json!({"config": serde_json::to_value(&ctx.config).unwrap(),
                           "execution_name": "run-1", "lease_owner": "run-1"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    // A deadline already passed: one table per call, and the cursor says where to go on.
    let now = Some(SystemTime::now());
    let out = run_step_until(Step::CreateSchema, input(json!({})), resolver, now)
        .await
        .expect("schema");
    assert_eq!(
        (&out["tables"], &out["done"], &out["next_table"]),
        (&json!(1), &json!(false), &json!("b"))
    );
    let out = run_step_until(
        Step::CreateSchema,
        input(json!({"next_table": "b"})),
        resolver,
        None,
    )
    .await
    .expect("schema");
    assert_eq!((&out["tables"], &out["done"]), (&json!(2), &json!(true)));
    let out = run_step_until(Step::Precheck, input(json!({})), resolver, now)
        .await
        .expect("precheck");
    assert_eq!(
        (&out["passed"], &out["done"], &out["continued"]),
        (&json!(true), &json!(false), &json!(false)),
        "{out}"
    );
    steps::begin(&ctx, "run-1").await.expect("begin");
    let out = run_step_until(Step::PlanChunks, input(json!({})), resolver, now)
        .await
        .expect("plan");
    assert_eq!(out["done"], json!(false), "{out}");

    // run-1 continues as run-1-c1: Finish hands it the lease, and its precheck checks nothing.
    steps::finish(&ctx, Some("run-1"), None, Some("run-1-c1"))
        .await
        .expect("hand over");
    assert!(continues_run(&ctx, "run-1-c1").await);
    assert!(!continues_run(&ctx, "run-2").await);
    let out = run_step_until(
        Step::Precheck,
        input(json!({"execution_name": "run-1-c1"})),
        resolver,
        now,
    )
    .await
    .expect("precheck");
    assert_eq!(
        (&out["passed"], &out["done"], &out["continued"]),
        (&json!(true), &json!(true), &json!(true)),
        "{out}"
    );
    steps::finish(&ctx, Some("run-1-c1"), None, None)
        .await
        .expect("finish");
    assert!(!continues_run(&ctx, "run-1-c1").await, "released");
}
