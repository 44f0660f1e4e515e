//! Full data migration end to end on a real MariaDB and the local Tablestore server:
//! schema → begin → plan → copy every chunk → verify; rows read back equal the expected
//! mapped rows; resume after an interrupted copy; dirty data; verify finds a changed row.

use std::time::Duration;

use crate::harness::mariadb::MariaDb;
use tablestore::{Cell, CellOp, Condition, PrimaryKey, Row, Value};
use tsmigrate_core::config::{
    ColumnSpec, ColumnType, DirtyDataPolicy, MigrationConfig, MigrationType, TableSelection,
    TableSpec, WriteMode,
};
use tsmigrate_core::steps::copy::copy_chunk_with_budget;
use tsmigrate_core::steps::{self, Context, ErrorName};

fn config(db: &MariaDb, database: &str, dir: &std::path::Path) -> MigrationConfig {
    let mut cfg = crate::harness::local_config(db, database, dir, format!("fc_{database}"));
    cfg.migration_types = vec![MigrationType::Schema, MigrationType::Full];
    cfg
}

async fn context(cfg: MigrationConfig) -> Context {
    crate::harness::local_context(cfg).await
}

/// Schema, begin, plan and every chunk to completion.
async fn migrate(ctx: &Context) -> u32 {
    steps::create_schema(ctx).await.expect("schema");
    steps::begin(ctx, "test-exec").await.expect("begin");
    let plan = steps::plan::plan_chunks(ctx).await.expect("plan");
    for i in plan.wave_start..plan.wave_start + plan.chunk_count {
        loop {
            let out = steps::copy::copy_chunk(ctx, i, Some("test-exec"))
                .await
                .expect("copy");
            if out.done {
                break;
            }
        }
    }
    plan.total_chunks
}

pub(crate) async fn all_rows(ctx: &Context, table: &str, key: &[&str]) -> Vec<Row> {
    crate::harness::tablestore::all_rows(&ctx.destination, table, key).await
}

fn pk(id: i64) -> PrimaryKey {
    PrimaryKey::new().with("id", id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_arrives_exactly() {
    let db = MariaDb::shared();
    let d = db.fresh_database("fc_types").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.t (
            id BIGINT UNSIGNED PRIMARY KEY,
            i TINYINT, u INT UNSIGNED, dec65 DECIMAL(65,30), f FLOAT, dbl DOUBLE,
            bits BIT(5), y YEAR, dt DATE, tm TIME(3), dtm DATETIME(6), ts TIMESTAMP(6) NULL,
            emoji VARCHAR(20) CHARACTER SET utf8mb4, lat VARCHAR(20) CHARACTER SET latin1,
            txt TEXT, bin VARBINARY(8), bl BLOB, e ENUM('small','large'), s SET('a','b','c'),
            j JSON, n INT NULL
        )"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO `{d}`.t VALUES
          (1, -128, 4294967295, '-12345678901234567890.123456789012345678901234567890', 1.5, 0.1,
           b'10101', 2024, '2024-05-01', '-838:59:59.000', '2024-05-01 12:30:00.123456', NULL,
           'héllo 🌍', 'café', 'long text', 0x00ff10, 0xdeadbeef, 'large', 'a,c', '{{\"k\": [1, 2]}}', NULL),
          (9223372036854775807, 0, 0, 0, -3.25, 1.7976931348623157e308, b'0', 1901, '1000-01-01',
           '100:00:00.500', '9999-12-31 23:59:59.999999', NULL, '', '', '', '', '', 'small', '', 'null', 7)"
    ))
    .await;
    // A TIMESTAMP written in a +08:00 session arrives in UTC.
    db.exec(&format!(
        "SET time_zone = '+08:00'; UPDATE `{d}`.t SET ts = '2024-05-01 20:00:00.250000' WHERE id = 1"
    ))
    .await;
    // Above BIGINT's range: dirty data under the skip policy, never wrapped.
    db.exec(&format!(
        "INSERT INTO `{d}`.t (id) VALUES (9223372036854775808)"
    ))
    .await;

    let dir = tempfile::tempdir().unwrap();
    let ctx = context(config(db, &d, dir.path())).await;
    migrate(&ctx).await;

    let rows = all_rows(&ctx, "t", &["id"]).await;
    assert_eq!(rows.len(), 2, "the too-large key is not written");
    let want1 = Row::new(pk(1))
        .with("bin", vec![0x00u8, 0xff, 0x10])
        .with("bits", 21i64)
        .with("bl", vec![0xdeu8, 0xad, 0xbe, 0xef])
        .with("dbl", 0.1f64)
        .with(
            "dec65",
            "-12345678901234567890.123456789012345678901234567890",
        )
        .with("dt", "2024-05-01")
        .with("dtm", "2024-05-01 12:30:00.123456")
        .with("e", "large")
        .with("emoji", "héllo 🌍")
        .with("f", 1.5f64)
        .with("i", -128i64)
        .with("j", "{\"k\": [1, 2]}")
        .with("lat", "café")
        .with("s", "a,c")
        .with("tm", "-838:59:59.000")
        .with("ts", "2024-05-01 12:00:00.250000")
        .with("txt", "long text")
        .with("u", 4294967295i64)
        .with("y", 2024i64);
    let mut got1 = rows[0].clone();
    got1.cells.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got1, want1);
    let r2 = &rows[1];
    assert_eq!(r2.primary_key, pk(i64::MAX));
    assert_eq!(r2.get("dbl"), Some(&Value::Double(1.7976931348623157e308)));
    assert_eq!(r2.get("f"), Some(&Value::Double(-3.25)));
    assert_eq!(r2.get("tm"), Some(&Value::String("100:00:00.500".into())));
    assert_eq!(
        r2.get("dtm"),
        Some(&Value::String("9999-12-31 23:59:59.999999".into()))
    );
    assert_eq!(r2.get("n"), Some(&Value::Integer(7)));
    assert_eq!(r2.get("ts"), None, "NULL is an absent attribute");

    let store = steps::lifecycle::state_store(&ctx);
    let dirty = store.dirty_records(10).await.unwrap();
    assert_eq!(dirty.len(), 1, "{dirty:?}");
    assert!(
        dirty[0].primary_key.contains("9223372036854775808") || dirty[0].reason.contains("id"),
        "{dirty:?}"
    );

    let v = steps::verify::verify(&ctx, None).await.unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert_eq!((v.matched, v.dirty), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dirty_data_block_stops_with_the_key() {
    let db = MariaDb::shared();
    let d = db.fresh_database("fc_block").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.t (id BIGINT UNSIGNED PRIMARY KEY, v INT)"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO `{d}`.t VALUES (1, 1), (18446744073709551615, 2)"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(db, &d, dir.path());
    cfg.dirty_data = DirtyDataPolicy::Block;
    let ctx = context(cfg).await;
    steps::create_schema(&ctx).await.unwrap();
    steps::begin(&ctx, "x").await.unwrap();
    steps::plan::plan_chunks(&ctx).await.unwrap();
    let e = steps::copy::copy_chunk(&ctx, 0, Some("x"))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::DirtyData);
    assert!(
        e.message.contains("18446744073709551615") || e.message.contains("id"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_filters_and_mapping() {
    let db = MariaDb::shared();
    let d = db.fresh_database("fc_keys").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.items (shop VARCHAR(16) NOT NULL, sku INT NOT NULL, status VARCHAR(10), qty INT, PRIMARY KEY (shop, sku))"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.codes (code VARCHAR(20) PRIMARY KEY, label TEXT)"
    ))
    .await;
    let mut values = Vec::new();
    for s in ["b", "a", "c"] {
        for k in 0..400 {
            let status = if k % 10 == 0 { "deleted" } else { "live" };
            values.push(format!("('{s}', {k}, '{status}', {})", k * 3));
        }
    }
    db.exec(&format!(
        "INSERT INTO `{d}`.items VALUES {}",
        values.join(",")
    ))
    .await;
    let codes: Vec<String> = (0..500)
        .map(|i| format!("('c{i:05}', 'label {i}')"))
        .collect();
    db.exec(&format!(
        "INSERT INTO `{d}`.codes VALUES {}",
        codes.join(",")
    ))
    .await;
    db.exec(&format!("ANALYZE TABLE `{d}`.items, `{d}`.codes"))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(db, &d, dir.path());
    let mut items = TableSpec::new("items");
    items.target = Some("stock".into());
    items.filter = Some("status <> 'deleted'".into());
    items.columns.insert(
        "qty".into(),
        ColumnSpec {
            target: Some("quantity".into()),
            column_type: Some(ColumnType::String),
        },
    );
    cfg.objects.tables = TableSelection::List(vec![items, TableSpec::new("codes")]);
    cfg.full.chunk_rows = 150; // several chunks per table, string keys walked
    cfg.full.page_rows = 40;
    cfg.write_mode = WriteMode::OverwriteRow;
    let ctx = context(cfg).await;
    let total = migrate(&ctx).await;
    assert!(total >= 6, "{total} chunks");

    let stock = all_rows(&ctx, "stock", &["shop", "sku"]).await;
    assert_eq!(stock.len(), 3 * 360);
    let first = &stock[0];
    assert_eq!(
        first.primary_key,
        PrimaryKey::new().with("shop", "a").with("sku", 1)
    );
    assert_eq!(first.get("quantity"), Some(&Value::String("3".into())));
    assert_eq!(first.get("status"), Some(&Value::String("live".into())));
    assert!(stock
        .iter()
        .all(|r| r.get("status") != Some(&Value::String("deleted".into()))));
    let codes = all_rows(&ctx, "codes", &["code"]).await;
    assert_eq!(codes.len(), 500);
    assert_eq!(
        codes[499].get("label"),
        Some(&Value::String("label 499".into()))
    );

    let v = steps::verify::verify(&ctx, None).await.unwrap();
    assert!(v.is_clean(), "{v:?}");
    assert_eq!(v.matched, 3 * 360 + 500);

    // One row changed by hand, one deleted: verify names exactly those keys.
    let changed = PrimaryKey::new().with("shop", "b").with("sku", 7);
    ctx.destination
        .update_row(
            "stock",
            &changed,
            &[CellOp::Put(Cell::new("quantity", "999"))],
            &Condition::ignore(),
        )
        .await
        .unwrap();
    let gone = PrimaryKey::new().with("code", "c00042");
    ctx.destination
        .delete_row("codes", &gone, &Condition::ignore())
        .await
        .unwrap();
    // A row the source never had: named as extra.
    ctx.destination
        .put_row(
            "codes",
            &Row::new(PrimaryKey::new().with("code", "zz-stray")).with("label", "stray"),
            &Condition::ignore(),
        )
        .await
        .unwrap();
    let v = steps::verify::verify(&ctx, None).await.unwrap();
    assert_eq!((v.different, v.missing, v.extra), (1, 1, 1), "{v:?}");
    assert!(
        v.mismatched
            .contains(&"codes code=\"zz-stray\": extra (not in the source)".to_string()),
        "{:?}",
        v.mismatched
    );
    assert!(
        v.mismatched
            .contains(&"items shop=\"b\",sku=7: different".to_string()),
        "{:?}",
        v.mismatched
    );
    assert!(
        v.mismatched
            .contains(&"codes code=\"c00042\": missing".to_string()),
        "{:?}",
        v.mismatched
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_copy_resumes_and_leases_fence() {
    let db = MariaDb::shared();
    let d = db.fresh_database("fc_resume").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await;
    let values: Vec<String> = (1..=2000).map(|i| format!("({i}, 'v{i}')")).collect();
    db.exec(&format!("INSERT INTO `{d}`.t VALUES {}", values.join(",")))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(db, &d, dir.path());
    cfg.full.page_rows = 100;
    let ctx = context(cfg).await;
    steps::create_schema(&ctx).await.unwrap();
    steps::begin(&ctx, "first").await.unwrap();

    // A second execution cannot begin while the first holds the lease.
    let e = steps::begin(&ctx, "second").await.unwrap_err();
    assert_eq!(e.name, ErrorName::LeaseHeld);

    let plan = steps::plan::plan_chunks(&ctx).await.unwrap();
    assert_eq!(plan.total_chunks, 1);
    // A zero budget copies one page per invocation: the copy is interrupted 20 times.
    let mut invocations = 0;
    loop {
        invocations += 1;
        let out = copy_chunk_with_budget(&ctx, 0, Some("first"), Duration::ZERO)
            .await
            .unwrap();
        if out.done {
            assert_eq!(out.rows, 2000);
            break;
        }
    }
    assert!(invocations >= 20, "{invocations}");
    // Planning again keeps the plan; the finished chunk is skipped.
    let again = steps::plan::plan_chunks(&ctx).await.unwrap();
    assert_eq!(
        (again.total_chunks, again.chunk_count, again.more_waves),
        (1, 0, false)
    );
    let out = steps::copy::copy_chunk(&ctx, 0, Some("first"))
        .await
        .unwrap();
    assert!(out.done);
    let rows = all_rows(&ctx, "t", &["id"]).await;
    assert_eq!(rows.len(), 2000);
    assert_eq!(rows[1999].get("v"), Some(&Value::String("v2000".into())));
    let v = steps::verify::verify(&ctx, None).await.unwrap();
    assert!(v.is_clean() && v.matched == 2000, "{v:?}");

    steps::finish(&ctx, Some("first"), None, None)
        .await
        .unwrap();
    steps::begin(&ctx, "second").await.unwrap();
}

/// In update_row mode the migration owns only the mapped columns: another writer's column on
/// a destination row is not a mismatch, a changed mapped column is, and a row whose mapped
/// attributes are all NULL is still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_row_verify_compares_the_mapped_columns() {
    let db = MariaDb::shared();
    let d = db.fresh_database("fc_upd").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.users (id INT PRIMARY KEY, name VARCHAR(20), city VARCHAR(20))"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO `{d}`.users VALUES (1, 'ann', 'oslo'), (2, NULL, NULL), (3, 'cy', NULL)"
    ))
    .await;
    // A link table of key columns only: its rows are key-only rows in Tablestore.
    db.exec(&format!(
        "CREATE TABLE `{d}`.user_tags (user_id INT, tag VARCHAR(10), PRIMARY KEY (user_id, tag))"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO `{d}`.user_tags VALUES (1, 'new'), (1, 'vip')"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(db, &d, dir.path());
    cfg.write_mode = WriteMode::UpdateRow;
    let ctx = context(cfg).await;
    migrate(&ctx).await;
    let tags = all_rows(&ctx, "user_tags", &["user_id", "tag"]).await;
    assert_eq!(tags.len(), 2);
    assert!(tags.iter().all(|r| r.cells.is_empty()), "{tags:?}");
    let v = steps::verify::verify(&ctx, None).await.unwrap();
    assert!(v.is_clean() && v.matched == 5, "{v:?}");

    // Another writer's column on two rows (one with only NULL mapped attributes).
    for id in [1, 2] {
        ctx.destination
            .update_row(
                "users",
                &PrimaryKey::new().with("id", id),
                &[CellOp::Put(Cell::new("loyalty", 5))],
                &Condition::ignore(),
            )
            .await
            .unwrap();
    }
    let v = steps::verify::verify(&ctx, None).await.unwrap();
    assert!(v.is_clean() && v.matched == 5, "{v:?}");

    // A mapped column changed by hand is still found.
    ctx.destination
        .update_row(
            "users",
            &PrimaryKey::new().with("id", 3),
            &[CellOp::Put(Cell::new("city", "rome"))],
            &Condition::ignore(),
        )
        .await
        .unwrap();
    let v = steps::verify::verify(&ctx, None).await.unwrap();
    assert_eq!((v.matched, v.different), (4, 1), "{v:?}");
    assert_eq!(v.mismatched, vec!["users id=3: different".to_string()]);
}

/// A migration of a 3,000-row table (ids 1..=3000, pages of 100) into a server of its own that
/// answers every request after `latency`, so a chunk has pages in flight: page k+1 is sent
/// while page k's requests wait.
async fn pipelined(
    prefix: &str,
    latency: Duration,
) -> (tablestore_server::RunningServer, Context, String) {
    let db = MariaDb::shared();
    let d = db.fresh_database(prefix).await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO `{d}`.t SELECT seq, CONCAT('v', seq) FROM `{d}`.seq_1_to_3000"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut scfg = tablestore_server::ServerConfig::local(dir.path());
    scfg.chaos = Some(tablestore_server::ChaosConfig::new(0.0, latency, Some(7)).unwrap());
    let srv = tablestore_server::start(scfg).await.unwrap();
    std::mem::forget(dir); // the server's files live as long as the test process
    let mut cfg = config(db, &d, std::path::Path::new("unused"));
    cfg.destination.endpoint = srv.endpoint();
    cfg.full.page_rows = 100;
    cfg.dirty_data = DirtyDataPolicy::Block;
    let ctx = context(cfg).await;
    steps::create_schema(&ctx).await.unwrap();
    steps::begin(&ctx, "pipe").await.unwrap();
    let plan = steps::plan::plan_chunks(&ctx).await.unwrap();
    assert_eq!(plan.total_chunks, 1);
    (srv, ctx, d)
}

/// The chunk's saved progress must never run ahead of the destination: with ids 1..=N copied
/// in key order, `rows` saved means ids 1..=rows are all there. Returns the saved rows.
async fn assert_progress_is_written(ctx: &Context) -> u64 {
    let store = steps::lifecycle::state_store(ctx);
    let chunk = store.chunk(0).await.unwrap().unwrap();
    assert_eq!(chunk.cursor.is_some(), chunk.rows > 0, "{chunk:?}");
    let present: std::collections::HashSet<i64> = all_rows(ctx, "t", &["id"])
        .await
        .iter()
        .map(|r| match r.primary_key.columns()[0].value {
            tablestore::PkValue::Integer(i) => i,
            ref other => panic!("key {other:?}"),
        })
        .collect();
    let missing: Vec<u64> = (1..=chunk.rows)
        .filter(|i| !present.contains(&(*i as i64)))
        .collect();
    assert!(
        missing.is_empty(),
        "cursor saved past rows never written: {} missing, first {:?}",
        missing.len(),
        missing.first()
    );
    chunk.rows
}

async fn finish_and_check(ctx: &Context) {
    loop {
        let out = steps::copy::copy_chunk(ctx, 0, Some("pipe")).await.unwrap();
        if out.done {
            // Counted once each, whatever was interrupted and sent again.
            assert_eq!(out.rows, 3000);
            break;
        }
    }
    assert_eq!(all_rows(ctx, "t", &["id"]).await.len(), 3000);
    let v = steps::verify::verify(ctx, None).await.unwrap();
    assert!(v.is_clean() && v.matched == 3000, "{v:?}");
}

/// Writes fail from the middle of the chunk on (every BulkImport after the 40th is refused,
/// so the oldest page in flight fails while a newer one was sent after it): the copy stops
/// with its cursor at the last page fully written, and the resumed copy writes every row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_page_with_a_newer_page_in_flight_resumes_without_gaps() {
    let (srv, ctx, _d) = pipelined("fc_pipe_fail", Duration::from_millis(10)).await;
    srv.faults().fail_action_after(
        "BulkImport",
        40,
        100_000,
        tablestore_server::Fault::Error {
            code: "OTSParameterInvalid".into(),
            message: "refused by the test".into(),
        },
    );
    let e = steps::copy::copy_chunk(&ctx, 0, Some("pipe"))
        .await
        .unwrap_err();
    assert_eq!(e.name, ErrorName::DirtyData, "{e}");
    let saved = assert_progress_is_written(&ctx).await;
    // 40 requests of ~12 rows (8 lanes) are ~5 pages: the failure is mid-chunk.
    assert!(saved > 0 && saved < 3000, "saved {saved}");
    srv.faults().clear();
    finish_and_check(&ctx).await;
}

/// Runs the chunk's copy on a runtime of its own and, after `stop`, shuts that runtime down
/// with every task on it (the copy, the writer's lanes, their requests not yet answered), as
/// a killed process stops. Some(done) when the copy returned first.
fn run_then_kill(ctx: &Context, stop: Duration) -> Option<bool> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let out = rt.block_on(async {
                let run = steps::copy::copy_chunk(ctx, 0, Some("pipe"));
                tokio::time::timeout(stop, run).await.ok()
            });
            rt.shutdown_background();
            out.map(|o| o.unwrap().done)
        })
        .join()
        .unwrap()
    })
}

/// The copy is stopped (its runtime shut down, as a killed Lambda stops) at many points while
/// pages are in flight; after each stop the saved cursor has nothing unwritten behind it, and
/// the resumed copies end with every row, counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_killed_with_pages_in_flight_loses_nothing() {
    let (_srv, ctx, _d) = pipelined("fc_pipe_kill", Duration::from_millis(15)).await;
    // Stops come later each time one found no new progress (a slow, loaded machine needs
    // longer to reach its first page); four stops mid-chunk are enough.
    let (mut saved, mut mid_chunk, mut stop) = (0, 0, Duration::from_millis(20));
    for _ in 0..40 {
        if let Some(done) = run_then_kill(&ctx, stop) {
            assert!(done);
            break;
        }
        let now = assert_progress_is_written(&ctx).await;
        assert!(now >= saved, "progress went back: {saved} -> {now}");
        if now > saved && now < 3000 {
            mid_chunk += 1;
        } else {
            stop = stop * 3 / 2;
        }
        saved = now;
        if mid_chunk >= 4 {
            break;
        }
    }
    assert!(mid_chunk >= 2, "only {mid_chunk} stops fell mid-chunk");
    finish_and_check(&ctx).await;
}
