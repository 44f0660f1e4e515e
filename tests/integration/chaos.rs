//! Migrations against the local server in chaos mode (a seeded share of requests busy, timing
//! out, or losing the connection before or after the write; single batch rows busy). Steps
//! are retried on retriable errors the way the state machine retries them. A full copy and an
//! incremental catch-up under 5% faults end equal to the source (verify and an independent
//! row-by-row check); a permanent outage ends in Migration.RetryWindowExceeded once the retry
//! window has passed, not before and not never.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::json;
use tablestore::{PkValue, Value};
use tablestore_server::{ChaosConfig, RunningServer, ServerConfig};
use tsmigrate_core::config::{MigrationConfig, MigrationType, SecretResolver};
use tsmigrate_core::steps::binlog::binlog_batch;
use tsmigrate_core::steps::dispatch::{run_step, Step};
use tsmigrate_core::steps::{self, Context, ErrorName, StepError};

use crate::harness::mariadb::MariaDb;

const OWNER: &str = "chaos-exec";

fn chaos(rate: f64, seed: u64) -> ChaosConfig {
    ChaosConfig::new(rate, Duration::from_millis(1), Some(seed)).expect("chaos config")
}

/// A server of its own (not the shared embedded one), in chaos mode.
async fn server(dir: &std::path::Path, chaos: Option<ChaosConfig>) -> RunningServer {
    let mut cfg = ServerConfig::local(dir);
    cfg.chaos = chaos;
    tablestore_server::start(cfg).await.expect("server starts")
}

fn config(
    db: &MariaDb,
    database: &str,
    srv: &RunningServer,
    types: &[MigrationType],
) -> MigrationConfig {
    let unused = std::path::Path::new("unused");
    let mut cfg = crate::harness::local_config(db, database, unused, format!("chaos_{database}"));
    cfg.destination.endpoint = srv.endpoint();
    cfg.migration_types = types.to_vec();
    cfg.full.chunk_rows = 5_000;
    // Small pages: more requests (writes and checkpoints), so 5% of them is dozens of faults.
    cfg.full.page_rows = 500;
    cfg
}

/// Runs a step until it succeeds, retrying retriable failures as the state machine does;
/// returns the value and how many attempts failed.
async fn retrying<T, F, Fut>(what: &str, mut step: F) -> (T, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
{
    let mut failed = 0;
    loop {
        match step().await {
            Ok(v) => return (v, failed),
            Err(e) if e.name.is_retriable() && failed < 200 => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{what} failed for good after {failed} retries: {e}"),
        }
    }
}

/// Schema, begin, plan and every chunk, each step retried; returns the step retries.
async fn full_copy(ctx: &Context) -> u32 {
    let (_, mut retries) = retrying("schema", || steps::create_schema(ctx)).await;
    retries += retrying("begin", || steps::begin(ctx, OWNER)).await.1;
    let (plan, r) = retrying("plan", || steps::plan::plan_chunks(ctx)).await;
    retries += r;
    for i in plan.wave_start..plan.wave_start + plan.chunk_count {
        loop {
            let (out, r) = retrying("copy", || steps::copy::copy_chunk(ctx, i, Some(OWNER))).await;
            retries += r;
            if out.done {
                break;
            }
        }
    }
    retries
}

/// `(id, v, n)` of every destination row, read with the chaos mode off.
async fn destination_rows(srv: &RunningServer) -> Vec<(i64, String, i64)> {
    srv.faults().set_chaos(None);
    let client = tablestore::client::Client::new(srv.client_config()).expect("client");
    crate::harness::tablestore::all_rows(&client, "t", &["id"])
        .await
        .into_iter()
        .map(|r| {
            let id = match r.primary_key.columns().first().map(|c| &c.value) {
                Some(PkValue::Integer(i)) => *i,
                other => panic!("key {other:?}"),
            };
            let v = match r.get("v") {
                Some(Value::String(s)) => s.clone(),
                other => panic!("v of {id}: {other:?}"),
            };
            let n = match r.get("n") {
                Some(Value::Integer(n)) => *n,
                other => panic!("n of {id}: {other:?}"),
            };
            assert_eq!(r.cells.len(), 2, "row {id} has only v and n: {r:?}");
            (id, v, n)
        })
        .collect()
}

/// Verify finds nothing missing, different or extra, and no dirty row was recorded.
async fn assert_verified(ctx: &Context, rows: u64) {
    let (v, _) = retrying("verify", || steps::verify::verify(ctx, None)).await;
    assert!(v.is_clean(), "verify under chaos: {v:?}");
    assert_eq!((v.matched, v.dirty), (rows, 0), "{v:?}");
    let store = steps::lifecycle::state_store(ctx);
    let dirty = store.dirty_records(10).await.expect("dirty records");
    assert!(
        dirty.is_empty(),
        "a retriable failure became dirty data: {dirty:?}"
    );
}

const ROWS: i64 = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_copy_under_five_percent_faults_arrives_complete() {
    let db = MariaDb::shared();
    let d = db.fresh_database("chaos_full").await;
    db.exec(&format!(
        "USE `{d}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT);
         INSERT INTO t SELECT seq, CONCAT('row-', seq), seq * 7 FROM seq_1_to_{ROWS}"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path(), Some(chaos(0.05, 1301))).await;
    let ctx = crate::harness::local_context(config(
        db,
        &d,
        &srv,
        &[MigrationType::Schema, MigrationType::Full],
    ))
    .await;
    let retries = full_copy(&ctx).await;
    let faults = srv.faults().chaos_faults();
    eprintln!("full copy under 5% faults: {faults} faults injected, {retries} step retries");
    assert!(faults > 10, "the chaos mode failed only {faults} requests");
    assert_verified(&ctx, ROWS as u64).await;

    let rows = destination_rows(&srv).await;
    assert_eq!(rows.len(), ROWS as usize);
    for (i, (id, v, n)) in rows.into_iter().enumerate() {
        let want = i as i64 + 1;
        assert_eq!(
            (id, v.as_str(), n),
            (want, format!("row-{want}").as_str(), want * 7)
        );
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_catch_up_under_five_percent_faults_ends_equal() {
    let db = MariaDb::shared();
    let d = db.fresh_database("chaos_inc").await;
    db.exec(&format!(
        "USE `{d}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT);
         INSERT INTO t SELECT seq, CONCAT('row-', seq), seq * 7 FROM seq_1_to_5000"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path(), Some(chaos(0.05, 2602))).await;
    let mut cfg = config(
        db,
        &d,
        &srv,
        &[
            MigrationType::Schema,
            MigrationType::Full,
            MigrationType::Incremental,
        ],
    );
    cfg.incremental.max_events = 10;
    let ctx = crate::harness::local_context(cfg).await;
    let mut retries = full_copy(&ctx).await;

    // Changes whose replay must not compound: increments (row images carry the result),
    // deletes, re-inserts of deleted keys, new keys, many changes of one key.
    db.exec(&format!(
        "USE `{d}`;
         UPDATE t SET n = n + 1000000 WHERE id % 3 = 0;
         DELETE FROM t WHERE id BETWEEN 1001 AND 1500;
         INSERT INTO t SELECT seq, CONCAT('back-', seq), -seq FROM seq_1001_to_1100;
         INSERT INTO t SELECT seq, CONCAT('row-', seq), seq * 7 FROM seq_5001_to_6000;
         UPDATE t SET n = n + 1, v = 'hot' WHERE id = 42;
         UPDATE t SET n = n + 1, v = 'hot' WHERE id = 42;
         UPDATE t SET n = n + 1, v = 'hot' WHERE id = 42;"
    ))
    .await;
    let mut caught_up = false;
    for _ in 0..10_000 {
        let (out, r) = retrying("binlog batch", || binlog_batch(&ctx, Some(OWNER), None)).await;
        retries += r;
        if out.caught_up {
            caught_up = true;
            break;
        }
    }
    assert!(caught_up, "never caught up");
    let faults = srv.faults().chaos_faults();
    eprintln!("incremental under 5% faults: {faults} faults injected, {retries} step retries");
    assert!(faults > 5, "the chaos mode failed only {faults} requests");

    let expect = |id: i64| -> Option<(String, i64)> {
        if (1101..=1500).contains(&id) {
            return None;
        }
        if (1001..=1100).contains(&id) {
            return Some((format!("back-{id}"), -id));
        }
        let mut n = id * 7;
        if id <= 5000 && id % 3 == 0 {
            n += 1_000_000;
        }
        if id == 42 {
            return Some(("hot".into(), n + 3));
        }
        Some((format!("row-{id}"), n))
    };
    let want: Vec<(i64, String, i64)> = (1..=6000)
        .filter_map(|id| expect(id).map(|(v, n)| (id, v, n)))
        .collect();
    assert_verified(&ctx, want.len() as u64).await;
    assert_eq!(destination_rows(&srv).await, want);
    srv.shutdown().await;
}

/// Every request fails from the middle of a copy on: each CopyChunk fails retriably until the
/// first failure is older than the (one-minute) window, then the step gives up. The state
/// store lives in the unreachable destination too, so the window counts in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_outage_ends_with_retry_window_exceeded() {
    let db = MariaDb::shared();
    let d = db.fresh_database("chaos_outage").await;
    db.exec(&format!(
        "USE `{d}`; CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40), n BIGINT);
         INSERT INTO t SELECT seq, CONCAT('row-', seq), seq FROM seq_1_to_2000"
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path(), None).await;
    let mut cfg = config(db, &d, &srv, &[MigrationType::Schema, MigrationType::Full]);
    cfg.retry.other_minutes = 1;
    cfg.retry.connection_minutes = 2;
    let secrets = cfg.detach_literal_secrets();
    let ctx = crate::harness::context(cfg.clone(), &secrets).await;
    steps::create_schema(&ctx).await.expect("schema");
    steps::begin(&ctx, OWNER).await.expect("begin");
    steps::plan::plan_chunks(&ctx).await.expect("plan");

    srv.faults().set_chaos(Some(chaos(1.0, 3903)));
    let input = json!({
        "config": serde_json::to_value(&cfg).unwrap(),
        "chunk_index": 0,
        "lease_owner": OWNER,
    });
    let window = Duration::from_secs(60);
    let started = Instant::now();
    let mut attempts = 0;
    let err = loop {
        attempts += 1;
        let e = run_step(
            Step::CopyChunk,
            input.clone(),
            &secrets as &dyn SecretResolver,
        )
        .await
        .expect_err("every request fails");
        if !e.name.is_retriable() {
            break e;
        }
        assert!(
            started.elapsed() < window * 5,
            "still retrying after {:?} ({attempts} attempts): {e}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let took = started.elapsed();
    eprintln!("outage: {err} after {took:?}, {attempts} attempts");
    assert_eq!(err.name, ErrorName::RetryWindowExceeded, "{err}");
    assert!(took > window, "gave up after {took:?}, before the window");
    assert!(attempts >= 2, "{attempts}");
    srv.faults().set_chaos(None);
    srv.shutdown().await;
}

/// `tsmigrate tablestore serve` takes the chaos flags, names the seed at start, and refuses a
/// rate outside 0-1.
#[test]
fn serve_announces_the_chaos_settings() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tsmigrate"))
        .args([
            "tablestore",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .args([
            "--fault-rate",
            "0.5",
            "--latency-ms",
            "5",
            "--chaos-seed",
            "9",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tsmigrate");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("chaos mode on: fault rate 0.5, latency 5 ms, seed 9"),
        "{err}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_tsmigrate"))
        .args([
            "tablestore",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .args(["--fault-rate", "1.5"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("between 0 and 1"),
        "{}",
        crate::harness::output::text(&bad)
    );
}
