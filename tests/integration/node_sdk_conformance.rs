//! The official Tablestore Node.js SDK (npm `tablestore`, pinned in tests/node_sdk/package.json)
//! accepts the local server: starts the server in-process and runs `tests/node_sdk/conformance.js`
//! against it. A second client with its own PlainBuffer encoder, signer and parser beside the
//! Python one (sdk_conformance.rs).
//!
//! Needs `node` (`$TSMIGRATE_NODE`, else `node` on PATH) and the SDK installed under
//! tests/node_sdk/node_modules (`.ci/run` does `npm ci --prefix tests/node_sdk`). When either is
//! missing the test fails with the set-up hint, as the Python one does: a skipped conformance
//! test would prove nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tablestore_server::ServerConfig;
use tempfile::TempDir;

const DIR: &str = "tests/node_sdk";
const SCRIPT: &str = "tests/node_sdk/conformance.js";
const TIMEOUT: Duration = Duration::from_secs(15 * 60);
const SETUP_HINT: &str =
    "run `.ci/run`, or `npm ci --prefix tests/node_sdk` in the repository root \
     (needs node >= 18 on PATH or in TSMIGRATE_NODE)";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Why the suite cannot run here, if it cannot: no node, or no installed SDK.
fn missing_prerequisite(node: &Path) -> Option<String> {
    let version = std::process::Command::new(node)
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    match version {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Some(format!(
                "`{} --version` failed ({})",
                node.display(),
                out.status
            ))
        }
        Err(e) => return Some(format!("cannot run `{}`: {e}", node.display())),
    }
    let sdk = repo()
        .join(DIR)
        .join("node_modules/tablestore/package.json");
    if !sdk.exists() {
        return Some(format!(
            "the Node.js SDK is not installed ({} is missing)",
            sdk.display()
        ));
    }
    None
}

fn summary_line(stdout: &str) -> Option<&str> {
    stdout.lines().rev().find(|l| {
        let mut w = l.split_whitespace();
        matches!(
            (w.next(), w.next(), w.next(), w.next(), w.next()),
            (Some(n), Some("passed,"), Some(m), Some("failed"), None)
                if n.parse::<u32>().is_ok() && m.parse::<u32>().is_ok()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_node_sdk_accepts_local_server() {
    let node = std::env::var_os("TSMIGRATE_NODE")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from("node"), PathBuf::from);
    if let Some(why) = missing_prerequisite(&node) {
        panic!("Node.js SDK conformance cannot run: {why}; {SETUP_HINT}");
    }
    let script = repo().join(SCRIPT);
    assert!(script.exists(), "{} is missing", script.display());

    let dir = TempDir::new().expect("temp dir");
    let srv = tablestore_server::start(ServerConfig::local(dir.path()))
        .await
        .expect("local server starts");
    let endpoint = srv.endpoint();
    let cfg = srv.config().clone();
    eprintln!(
        "local server at {endpoint} (instance {}), running {} with {}",
        cfg.instance,
        script.display(),
        node.display()
    );

    let started = Instant::now();
    let child = tokio::process::Command::new(&node)
        .arg(&script)
        .current_dir(repo().join(DIR))
        .env("TS_ENDPOINT", &endpoint)
        .env("TS_INSTANCE", &cfg.instance)
        .env("TS_AK", &cfg.access_key_id)
        .env("TS_SK", &cfg.access_key_secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", node.display()));
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{SCRIPT} did not finish within {TIMEOUT:?}"))
        .expect("collect the script's output");
    let elapsed = started.elapsed();

    srv.shutdown().await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("----- {SCRIPT} stdout ({elapsed:.1?}) -----\n{stdout}");
    if !stderr.trim().is_empty() {
        println!("----- {SCRIPT} stderr -----\n{stderr}");
    }

    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
    let summary = summary_line(&stdout);
    assert!(
        output.status.success() && failures.is_empty(),
        "the official Node.js SDK conformance script failed ({}), summary: {}\n{}",
        output.status,
        summary.unwrap_or("<none>"),
        failures.join("\n"),
    );
    let summary = summary.expect("the script prints `N passed, 0 failed` last");
    assert!(
        summary.ends_with(" 0 failed") && !summary.starts_with("0 passed"),
        "unexpected summary: {summary}"
    );
}

#[test]
fn node_summary_line_is_recognised() {
    assert_eq!(
        summary_line("PASS a\n23 passed, 0 failed\n"),
        Some("23 passed, 0 failed")
    );
    assert_eq!(summary_line("FAIL a: x\n"), None);
}
