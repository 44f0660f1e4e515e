//! The official Tablestore Python SDK (PyPI `tablestore` 6.4.x) accepts the local server:
//! starts the server in-process and runs `tests/conformance/official_sdk.py` against it.
//!
//! Needs a Python with the SDK installed: `$TSMIGRATE_PYTHON`, else `<repo>/.venv/bin/python`
//! (`.ci/run` sets it up; by hand: `python3 -m venv .venv && .venv/bin/pip install tablestore`).
//! A missing interpreter fails the test: it is never skipped silently.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tablestore_server::ServerConfig;
use tempfile::TempDir;

const SCRIPT: &str = "tests/conformance/official_sdk.py";
const TIMEOUT: Duration = Duration::from_secs(15 * 60);

const SETUP_HINT: &str = "run `.ci/run` (or `python3 -m venv .venv && .venv/bin/pip install tablestore` \
     in the repository root), or point TSMIGRATE_PYTHON at a Python that has the `tablestore` package";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$TSMIGRATE_PYTHON`, else `<repo>/.venv/bin/python`; panics (fails the test) if neither exists.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("TSMIGRATE_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        // A bare command name (`python3`) is looked up on PATH when spawned.
        if p.components().count() > 1 && !p.exists() {
            panic!(
                "TSMIGRATE_PYTHON={} does not exist; {SETUP_HINT}",
                p.display()
            );
        }
        return p;
    }
    let venv = repo().join(".venv/bin/python");
    if !venv.exists() {
        panic!(
            "no Python for the official-SDK conformance test: TSMIGRATE_PYTHON is unset and {} does not exist; {SETUP_HINT}",
            venv.display()
        );
    }
    venv
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
async fn official_python_sdk_accepts_local_server() {
    let python = python();
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
        python.display()
    );

    let started = Instant::now();
    let child = tokio::process::Command::new(&python)
        .arg(&script)
        .current_dir(repo())
        .env("TS_ENDPOINT", &endpoint)
        .env("TS_INSTANCE", &cfg.instance)
        .env("TS_AK", &cfg.access_key_id)
        .env("TS_SK", &cfg.access_key_secret)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", python.display()));
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
    let import_hint = if stderr.contains("cannot import the official SDK")
        || stderr.contains("No module named")
    {
        format!("\nthe interpreter lacks the SDK; {SETUP_HINT}")
    } else {
        String::new()
    };
    assert!(
        output.status.success() && failures.is_empty(),
        "the official Python SDK conformance script failed ({}), summary: {}\n{}{import_hint}",
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
fn summary_line_is_recognised() {
    assert_eq!(
        summary_line("PASS a\n12 passed, 0 failed\n"),
        Some("12 passed, 0 failed")
    );
    assert_eq!(summary_line("PASS a\n"), None);
}
