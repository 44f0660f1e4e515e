//! `tsmigrate run` as a user runs it: the CLI binary against a real MariaDB and the embedded
//! Tablestore server. A run stopped with Ctrl-C (SIGINT) and started again resumes: chunks
//! finished before the stop are not copied again, the interrupted chunk continues after its
//! last acknowledged page (no row counted twice), and verify then sees the destination as
//! the stopped run left it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::mariadb::{MariaDb, USER};
use crate::harness::output::{spawn_run, status_chunks, text, tsmigrate};
use crate::harness::write_local_config;

const ROWS: u64 = 20_000;
const CHUNK_ROWS: u64 = 2_000;

/// `chunks: D/T done, R rows copied` from `tsmigrate status`.
fn chunk_status(config: &str) -> (u64, u64, u64) {
    status_chunks(config).unwrap_or_else(|| panic!("no chunks line in `tsmigrate status`"))
}

fn write_config(dir: &Path, db: &MariaDb, database: &str) -> String {
    write_config_with(
        dir,
        db,
        database,
        serde_json::json!({
            "full": {"chunk_rows": CHUNK_ROWS, "page_rows": 250},
            // One chunk at a time, in plan order, slow enough to stop in the middle.
            "writer": {"thread_count": 1},
            "throttle": {"full": {"rps": 2500}}
        }),
    )
}

/// A config for `database` with `extra`'s top-level fields added.
fn write_config_with(dir: &Path, db: &MariaDb, database: &str, extra: serde_json::Value) -> String {
    write_local_config(
        dir,
        db,
        USER,
        database,
        &format!("cli_{database}"),
        None,
        extra,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_resumes_where_it_stopped() {
    let db = MariaDb::shared();
    let d = db.fresh_database("cli").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.events (id BIGINT PRIMARY KEY, kind VARCHAR(16), body VARCHAR(64))"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO `{d}`.events SELECT seq, ELT(1 + seq % 3, 'a', 'b', 'c'), REPEAT('x', seq % 60) FROM `{d}`.seq_1_to_{ROWS}"
    ))
    .await;
    db.exec(&format!("ANALYZE TABLE `{d}`.events")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), db, &d);

    // Start, wait until copying is well under way, then Ctrl-C.
    let child = spawn_run(&config);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // SAFETY: kill(2) on our own child's pid; no memory is shared.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0, "could not signal the run");
    let stopped = child.wait_with_output().expect("wait");
    assert_eq!(
        stopped.status.code(),
        Some(130),
        "a stopped run exits 130: {}",
        text(&stopped)
    );
    assert!(
        String::from_utf8_lossy(&stopped.stdout).contains("run the same command again to resume"),
        "{}",
        text(&stopped)
    );

    let (done, total, copied) = chunk_status(&config);
    // Split by the row estimate (ANALYZE's, approximate): about ROWS / CHUNK_ROWS chunks.
    assert!(
        (ROWS / CHUNK_ROWS..=ROWS / CHUNK_ROWS + 2).contains(&total),
        "plan of {total} chunks"
    );
    assert!(
        done >= 1 && done < total,
        "the test wants a run stopped mid-copy, got {done}/{total} chunks done after {:?}; \
         adjust the throttle",
        started.elapsed()
    );
    assert!(
        copied > 0 && copied < ROWS,
        "{copied} rows copied before the stop"
    );

    // Chunk 0 (keys 1..=2000) was finished before the stop. Delete one of its rows in the
    // source: a resumed run does not copy chunk 0 again, so the destination keeps the row.
    db.exec(&format!("DELETE FROM `{d}`.events WHERE id = 1"))
        .await;

    let rerun = tsmigrate(&["run", "--config", &config]);
    assert!(rerun.status.success(), "rerun: {}", text(&rerun));
    assert!(
        String::from_utf8_lossy(&rerun.stdout).contains("succeeded"),
        "{}",
        text(&rerun)
    );
    // Every chunk done; every row counted exactly once across both runs.
    assert_eq!(chunk_status(&config), (total, total, ROWS));

    // The destination has exactly one row the source no longer has: id 1.
    let verify = tsmigrate(&["verify", "--config", &config]);
    let out = String::from_utf8_lossy(&verify.stdout).to_string();
    assert!(
        out.contains(&format!(
            "matched {}, missing 0, different 0, extra 1",
            ROWS - 1
        )),
        "{}",
        text(&verify)
    );
    assert!(
        out.contains("id=1"),
        "verify names the extra key: {}",
        text(&verify)
    );
    assert!(!verify.status.success(), "verify fails on a mismatch");
}

/// More chunks than one execution copies: the run continues as new executions (the runner's
/// in-process startExecution) until every chunk is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_chunks_than_one_execution_continue_as_new() {
    let db = MariaDb::shared();
    let d = db.fresh_database("cli_waves").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.readings (id INT PRIMARY KEY, v DOUBLE)"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO `{d}`.readings SELECT seq, seq / 7 FROM `{d}`.seq_1_to_5000"
    ))
    .await;
    db.exec(&format!("ANALYZE TABLE `{d}`.readings")).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config_with(
        dir.path(),
        db,
        &d,
        serde_json::json!({"full": {"chunk_rows": 500, "page_rows": 100, "chunks_per_execution": 3}}),
    );
    let run = tsmigrate(&["run", "--config", &config]);
    assert!(run.status.success(), "{}", text(&run));
    let (done, total, rows) = chunk_status(&config);
    assert!(total >= 10, "plan of {total} chunks");
    assert_eq!((done, rows), (total, 5000));
    // ceil(total / 3) executions, the first plus its successors.
    let executions = total.div_ceil(3);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(&format!("({executions} executions)")),
        "expected {executions} executions: {}",
        text(&run)
    );
    let verify = tsmigrate(&["verify", "--config", &config]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stdout)
            .contains("matched 5000, missing 0, different 0, extra 0"),
        "{}",
        text(&verify)
    );
}

/// `tsmigrate run --mode catch_up` with incremental: the whole state machine (precheck, schema,
/// full copy, binlog batches until caught up, finish) in one command; a second catch-up run
/// replays only what changed since, and verify finds the two sides equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_runs_replay_the_binlog_after_the_full_copy() {
    let db = MariaDb::shared();
    let d = db.fresh_database("cli_inc").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.items (id INT PRIMARY KEY, name VARCHAR(32), qty INT);
         INSERT INTO `{d}`.items SELECT seq, CONCAT('item', seq), seq FROM `{d}`.seq_1_to_500"
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config_with(
        dir.path(),
        db,
        &d,
        serde_json::json!({
            "migration_types": ["schema", "full", "incremental"],
            "incremental": {"max_events": 100, "idle_wait_seconds": 1}
        }),
    );
    let first = tsmigrate(&["run", "--config", &config, "--mode", "catch_up"]);
    assert!(first.status.success(), "first run: {}", text(&first));

    db.exec(&format!(
        "UPDATE `{d}`.items SET qty = qty * 10 WHERE id % 7 = 0;
         DELETE FROM `{d}`.items WHERE id > 450;
         INSERT INTO `{d}`.items VALUES (9001, 'late', 1), (9002, 'later', 2)"
    ))
    .await;
    let second = tsmigrate(&["run", "--config", &config, "--mode", "catch_up"]);
    assert!(second.status.success(), "second run: {}", text(&second));

    let verify = tsmigrate(&["verify", "--config", &config]);
    let out = text(&verify);
    assert!(verify.status.success(), "verify: {out}");
    assert!(out.contains("missing 0, different 0, extra 0"), "{out}");
    assert!(out.contains("matched 452"), "{out}");
}

/// Cut-over: `tsmigrate run` without `--mode catch_up` keeps following the binlog; `tsmigrate
/// stop` ends it successfully at its next batch, and `stop --resume` withdraws the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_running_binlog_loop_successfully() {
    let db = MariaDb::shared();
    let d = db.fresh_database("cli_stop").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.items (id INT PRIMARY KEY, qty INT);
         INSERT INTO `{d}`.items VALUES (1, 1), (2, 2)"
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A server of its own: `stop` runs while `run` holds the destination (an embedded
    // destination's data directory belongs to one process).
    let (mut server, endpoint) = crate::server_durability::spawn_server(&dir.path().join("ts"));
    let config = write_local_config(
        dir.path(),
        db,
        USER,
        &d,
        &format!("cli_{d}"),
        Some(&endpoint),
        serde_json::json!({
            "migration_types": ["schema", "full", "incremental"],
            "incremental": {"idle_wait_seconds": 1}
        }),
    );
    let mut child = spawn_run(&config);
    // Let it copy and start idling on the binlog, then change a row it must still apply.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().expect("poll").is_none(),
        "the loop ended by itself"
    );
    db.exec(&format!("UPDATE `{d}`.items SET qty = 20 WHERE id = 2"))
        .await;
    std::thread::sleep(Duration::from_secs(2));
    let stop = tsmigrate(&["stop", "--config", &config]);
    assert!(stop.status.success(), "stop: {}", text(&stop));

    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("poll") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the run did not end after stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    assert!(status.success(), "run after stop: {}", text(&out));
    let verify = tsmigrate(&["verify", "--config", &config]);
    assert!(verify.status.success(), "verify: {}", text(&verify));
    assert!(
        text(&verify).contains("matched 2, missing 0, different 0"),
        "{}",
        text(&verify)
    );

    // While the request stands a catch-up does nothing and succeeds; --resume withdraws it.
    let idle = tsmigrate(&["run", "--config", &config, "--mode", "catch_up"]);
    assert!(
        idle.status.success(),
        "catch-up while stopped: {}",
        text(&idle)
    );
    let resume = tsmigrate(&["stop", "--config", &config, "--resume"]);
    assert!(resume.status.success(), "{}", text(&resume));
    let _ = server.kill();
    let _ = server.wait();
}
