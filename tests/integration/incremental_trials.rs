//! Incremental migration under a live workload, as users run it: `tsmigrate run` while a
//! seeded random DML workload (inserts, updates of every column incl. to NULL, key changes,
//! REPLACE, multi-row statements, multi-statement transactions, rollbacks) runs on the source,
//! through the full copy and the binlog batches; and the same killed with SIGKILL at random
//! points and simply started again. In the end the destination equals the source: `verify`
//! says so, and an independent comparison reads both sides row by row.

use std::path::Path;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tablestore::{Row, Value};

use crate::harness::mariadb::{MariaDb, USER};
use crate::harness::output::{signal, spawn_run, text, tsmigrate};
use crate::harness::write_local_config;

const START_ROWS: u32 = 20_000;
const ID_SPACE: u32 = 40_000;

fn write_config(dir: &Path, db: &MariaDb, database: &str) -> String {
    let endpoint = format!("embedded:{}", dir.join("data").display());
    write_config_to(dir, db, database, &endpoint)
}

fn write_config_to(dir: &Path, db: &MariaDb, database: &str, endpoint: &str) -> String {
    let extra = serde_json::json!({
        "migration_types": ["schema", "full", "incremental"],
        // Small chunks, pages and batches: the copy overlaps the workload, and kills land in
        // copies, batches and continuations alike.
        "full": {"chunk_rows": 2000, "page_rows": 250, "chunks_per_execution": 4},
        "incremental": {"max_events": 300, "idle_wait_seconds": 1, "continue_as_new_after": 5},
        // ~5 s of copying: the workload and the kills overlap it.
        "throttle": {"full": {"rps": 4000}}
    });
    let id = format!("trial_{database}");
    write_local_config(dir, db, USER, database, &id, Some(endpoint), extra)
}

/// Two tables: one with a column of each common type, one with a composite key.
async fn create_tables(db: &MariaDb, d: &str) {
    db.exec(&format!(
        "CREATE TABLE `{d}`.t (
            id INT PRIMARY KEY, u BIGINT UNSIGNED NULL, dec4 DECIMAL(18,4) NULL, f DOUBLE NULL,
            s VARCHAR(40) CHARACTER SET utf8mb4 NULL, dt DATETIME(6) NULL, tm TIME(3) NULL,
            e ENUM('x','y','z') NULL, b VARBINARY(12) NULL);
         CREATE TABLE `{d}`.g (a INT, k VARCHAR(12), v INT NULL, PRIMARY KEY (a, k));
         INSERT INTO `{d}`.t SELECT seq * 2, seq * 1000003, seq / 7, seq / 3, CONCAT('row ', seq),
             '2024-01-01 00:00:00' + INTERVAL seq SECOND, SEC_TO_TIME(seq) , ELT(1 + seq % 3, 'x', 'y', 'z'),
             UNHEX(HEX(seq)) FROM `{d}`.seq_1_to_{START_ROWS};
         INSERT INTO `{d}`.g SELECT seq % 50, CONCAT('k', seq), seq FROM `{d}`.seq_1_to_2000;
         ANALYZE TABLE `{d}`.t, `{d}`.g"
    ))
    .await;
}

/// A value for column `col` of `t` (sometimes NULL), as SQL.
fn value(rng: &mut fastrand::Rng, col: &str) -> String {
    if rng.u8(..10) == 0 {
        return "NULL".into();
    }
    match col {
        "u" => rng.u64(..u64::MAX / 2).to_string(),
        "dec4" => format!(
            "{}.{:04}",
            rng.i64(-99_999_999..99_999_999),
            rng.u16(..10000)
        ),
        "f" => format!("{:e}", rng.f64() * 1e6 - 5e5),
        "s" => {
            let words = ["a", "ß", "🌍", "text", "", " sp ", "x'y"];
            format!("'{}'", words[rng.usize(..words.len())].replace('\'', "''"))
        }
        "dt" => format!(
            "'20{:02}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}'",
            rng.u8(..99),
            rng.u8(1..13),
            rng.u8(1..29),
            rng.u8(..24),
            rng.u8(..60),
            rng.u8(..60),
            rng.u32(..1_000_000)
        ),
        "tm" => format!(
            "'{}{}:{:02}:{:02}.{:03}'",
            if rng.bool() { "-" } else { "" },
            rng.u16(..839),
            rng.u8(..60),
            rng.u8(..60),
            rng.u16(..1000)
        ),
        "e" => format!("'{}'", ["x", "y", "z"][rng.usize(..3)]),
        _ => format!("0x{:x}", rng.u64(1..u64::MAX)),
    }
}

const COLUMNS: [&str; 8] = ["u", "dec4", "f", "s", "dt", "tm", "e", "b"];

fn full_row(rng: &mut fastrand::Rng, id: u32) -> String {
    let values: Vec<String> = COLUMNS.iter().map(|c| value(rng, c)).collect();
    format!("({id}, {})", values.join(", "))
}

/// One random statement (or transaction) of the workload.
fn statement(rng: &mut fastrand::Rng) -> String {
    let id = rng.u32(1..ID_SPACE);
    match rng.u8(..20) {
        0..=3 => format!("INSERT IGNORE INTO t VALUES {}", full_row(rng, id)),
        4 => {
            let rows: Vec<String> = (0..rng.u32(2..6)).map(|i| full_row(rng, id + i)).collect();
            format!("INSERT IGNORE INTO t VALUES {}", rows.join(", "))
        }
        5..=9 => {
            let col = COLUMNS[rng.usize(..COLUMNS.len())];
            format!("UPDATE t SET {col} = {} WHERE id = {id}", value(rng, col))
        }
        10 => {
            let col = COLUMNS[rng.usize(..COLUMNS.len())];
            format!(
                "UPDATE t SET {col} = {} WHERE id BETWEEN {id} AND {}",
                value(rng, col),
                id + rng.u32(1..20)
            )
        }
        11 => format!(
            "UPDATE IGNORE t SET id = {} WHERE id = {id}",
            rng.u32(1..ID_SPACE)
        ),
        12 => format!("REPLACE INTO t VALUES {}", full_row(rng, id)),
        13 | 14 => format!("DELETE FROM t WHERE id = {id}"),
        15 => format!("DELETE FROM t WHERE id BETWEEN {id} AND {}", id + 3),
        16 => format!(
            "INSERT INTO g VALUES ({}, 'k{}', {id}) ON DUPLICATE KEY UPDATE v = v + 1",
            rng.u8(..50),
            rng.u16(..3000)
        ),
        17 => format!(
            "UPDATE IGNORE g SET k = 'n{}' WHERE a = {} LIMIT 1",
            rng.u16(..3000),
            rng.u8(..50)
        ),
        _ => {
            let inner: Vec<String> = (0..rng.usize(2..5))
                .map(|_| {
                    // No nested transactions: only simple statements inside.
                    let id = rng.u32(1..ID_SPACE);
                    match rng.u8(..3) {
                        0 => format!("INSERT IGNORE INTO t VALUES {}", full_row(rng, id)),
                        1 => format!("UPDATE t SET s = {} WHERE id = {id}", value(rng, "s")),
                        _ => format!("DELETE FROM t WHERE id = {id}"),
                    }
                })
                .collect();
            let end = if rng.u8(..4) == 0 {
                "ROLLBACK"
            } else {
                "COMMIT"
            };
            format!("BEGIN; {}; {end}", inner.join("; "))
        }
    }
}

/// Runs `ops` random statements against `database`, in groups (one round trip each), with
/// `pause` between groups. Returns the number of statements run.
async fn workload(db: &MariaDb, database: &str, seed: u64, ops: usize, pause: Duration) -> usize {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut conn = db.admin_conn().await;
    conn.query_drop(format!("USE `{database}`"))
        .await
        .expect("use");
    let mut done = 0;
    while done < ops {
        let group: Vec<String> = (0..50).map(|_| statement(&mut rng)).collect();
        let sql = group.join(";\n");
        if let Err(e) = conn.query_drop(&sql).await {
            panic!("workload SQL failed (seed {seed}): {e}\n{sql}");
        }
        done += group.len();
        tokio::time::sleep(pause).await;
    }
    tsmigrate_core::mysql::close(conn).await;
    done
}

/// Source rows of `t` as the destination must hold them (NULL = no attribute), sorted by id.
async fn expected_t(db: &MariaDb, d: &str) -> Vec<(i64, Vec<(String, Value)>)> {
    let mut conn = db.admin_conn().await;
    let rows: Vec<mysql_async::Row> = conn
        .query(format!(
            "SELECT id, u, dec4, f, s, dt, tm, e, b FROM `{d}`.t ORDER BY id"
        ))
        .await
        .expect("select t");
    tsmigrate_core::mysql::close(conn).await;
    rows.into_iter()
        .map(|mut r| {
            let id: i64 = r.take(0).expect("id");
            let mut cells = Vec::new();
            for (i, col) in COLUMNS.iter().enumerate() {
                let Some(raw) = r.take::<Option<Vec<u8>>, _>(i + 1).flatten() else {
                    continue;
                };
                let s = String::from_utf8_lossy(&raw).into_owned();
                let v = match *col {
                    "u" => Value::Integer(s.parse().expect("u")),
                    "f" => Value::Double(s.parse().expect("f")),
                    "b" => Value::Binary(raw),
                    _ => Value::String(s),
                };
                cells.push((col.to_string(), v));
            }
            cells.sort_by(|a, b| a.0.cmp(&b.0));
            (id, cells)
        })
        .collect()
}

fn actual_t(rows: &[Row]) -> Vec<(i64, Vec<(String, Value)>)> {
    rows.iter()
        .map(|r| {
            let id = match r.primary_key.0.first().map(|c| &c.value) {
                Some(tablestore::PkValue::Integer(i)) => *i,
                other => panic!("unexpected key {other:?}"),
            };
            let mut cells: Vec<(String, Value)> = r
                .cells
                .iter()
                .map(|c| (c.name.clone(), c.value.clone()))
                .collect();
            cells.sort_by(|a, b| a.0.cmp(&b.0));
            (id, cells)
        })
        .collect()
}

/// `verify` says 0 mismatches, and `t` read back from the destination equals the source's
/// rows, value for value (independently of verify); `g`'s keys and values too.
async fn assert_equal(db: &MariaDb, d: &str, config: &str, dir: &Path) {
    let verify = tsmigrate(&["verify", "--config", config]);
    let out = text(&verify);
    assert!(verify.status.success(), "verify: {out}");
    assert!(out.contains("missing 0, different 0, extra 0"), "{out}");

    let want = expected_t(db, d).await;
    let cfg = crate::harness::local_config(db, d, &dir.join("data"), format!("trial_{d}"));
    let ctx = crate::harness::local_context(cfg).await;
    let got = actual_t(&crate::full_copy::all_rows(&ctx, "t", &["id"]).await);
    assert_eq!(got.len(), want.len(), "row count of t");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "row {} of t differs", w.0);
    }
    let mut conn = db.admin_conn().await;
    let g_rows: Vec<(i64, String, Option<i64>)> = conn
        .query(format!("SELECT a, k, v FROM `{d}`.g ORDER BY a, k"))
        .await
        .expect("select g");
    tsmigrate_core::mysql::close(conn).await;
    let dest = crate::full_copy::all_rows(&ctx, "g", &["a", "k"]).await;
    let dest: Vec<(i64, String, Option<i64>)> = dest
        .iter()
        .map(|r| {
            let a = match &r.primary_key.0[0].value {
                tablestore::PkValue::Integer(i) => *i,
                other => panic!("{other:?}"),
            };
            let k = match &r.primary_key.0[1].value {
                tablestore::PkValue::String(s) => s.clone(),
                other => panic!("{other:?}"),
            };
            let v = match r.get("v") {
                Some(Value::Integer(i)) => Some(*i),
                None => None,
                other => panic!("{other:?}"),
            };
            (a, k, v)
        })
        .collect();
    assert_eq!(dest, g_rows, "table g differs");
}

/// The workload runs while `tsmigrate run` copies and then follows the binlog; after a
/// catch-up run the two sides are equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_dml_during_the_copy_and_the_batches_ends_equal() {
    let db = MariaDb::shared();
    let d = db.fresh_database("trial_dml").await;
    create_tables(db, &d).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), db, &d);
    let seed = fastrand::u64(..);
    eprintln!("workload seed {seed}");

    let mut run = spawn_run(&config);
    let started = std::time::Instant::now();
    let ops = workload(db, &d, seed, 20_000, Duration::from_millis(5)).await;
    eprintln!("workload: {ops} statements in {:?}", started.elapsed());
    assert!(ops >= 20_000);
    // Let the loop apply some of the tail, then stop it as a user would (Ctrl-C).
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(status) = run.try_wait().expect("poll") {
        let out = run.wait_with_output().expect("output");
        panic!("the run ended by itself ({status}): {}", text(&out));
    }
    signal(&run, libc::SIGINT);
    let stopped = run.wait_with_output().expect("wait");
    assert_eq!(stopped.status.code(), Some(130), "{}", text(&stopped));

    let catch_up = tsmigrate(&["run", "--config", &config, "--mode", "catch_up"]);
    assert!(catch_up.status.success(), "catch-up: {}", text(&catch_up));
    assert_equal(db, &d, &config, dir.path()).await;
}

/// SIGKILL at 12 random points (in the copy, in batches, around continuations) while the
/// workload runs; each time the run is simply started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_restart_ends_equal() {
    let db = MariaDb::shared();
    let d = db.fresh_database("trial_kill").await;
    create_tables(db, &d).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), db, &d);
    let seed = fastrand::u64(..);
    eprintln!("kill trial seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let load = {
        let d = d.clone();
        tokio::spawn(async move { workload(db, &d, seed, 8_000, Duration::from_millis(40)).await })
    };
    for trial in 0..12 {
        let mut run = spawn_run(&config);
        tokio::time::sleep(Duration::from_millis(rng.u64(300..2500))).await;
        if run.try_wait().expect("poll").is_some() {
            let out = run.wait_with_output().expect("output");
            panic!("trial {trial}: the run ended by itself: {}", text(&out));
        }
        signal(&run, libc::SIGKILL);
        let out = run.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        if let Some(l) = err.lines().find(|l| l.contains("taking over")) {
            eprintln!("trial {trial}: {l}");
        }
    }
    load.await.expect("workload");
    let catch_up = tsmigrate(&["run", "--config", &config, "--mode", "catch_up"]);
    assert!(catch_up.status.success(), "catch-up: {}", text(&catch_up));
    assert_equal(db, &d, &config, dir.path()).await;
}

/// While a run is alive, a second run of the same migration is refused (it would write beside
/// the first under the same local execution name); once the first is gone, it takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_run_is_refused_and_takes_over_once_the_first_is_gone() {
    let db = MariaDb::shared();
    let d = db.fresh_database("trial_twice").await;
    create_tables(db, &d).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A server of its own: both runs reach it (an embedded data directory has one owner).
    let (mut server, endpoint) = crate::server_durability::spawn_server(&dir.path().join("ts"));
    let config = write_config_to(dir.path(), db, &d, &endpoint);
    let mut first = spawn_run(&config);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = tsmigrate(&["run", "--config", &config, "--mode", "catch_up"]);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        text(&second).contains("another `tsmigrate run` of this migration is running"),
        "{}",
        text(&second)
    );
    assert!(
        first.try_wait().expect("poll").is_none(),
        "the first run ended"
    );
    signal(&first, libc::SIGKILL);
    let _ = first.wait();
    let third = tsmigrate(&["run", "--config", &config, "--mode", "catch_up"]);
    assert!(third.status.success(), "{}", text(&third));
    assert!(text(&third).contains("taking over"), "{}", text(&third));
    let _ = server.kill();
    let _ = server.wait();
}
