//! An official SDK's conformance script run against a fresh in-process local server: the
//! Python and Node.js suites (sdk_conformance.rs, node_sdk_conformance.rs) differ only in the
//! interpreter. The script reads TS_ENDPOINT / TS_INSTANCE / TS_AK / TS_SK, prints `PASS x` /
//! `FAIL x: why` per check and `N passed, M failed` last.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tablestore_server::ServerConfig;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What the script printed.
pub struct ScriptRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Starts a local server, runs `cmd` (interpreter and script, working directory set) against
/// it, prints its output and stops the server. `name` names the script in messages.
pub async fn run(mut cmd: tokio::process::Command, name: &str, setup_hint: &str) -> ScriptRun {
    let dir = TempDir::new().expect("temp dir");
    let srv = tablestore_server::start(ServerConfig::local(dir.path()))
        .await
        .expect("local server starts");
    let endpoint = srv.endpoint();
    let cfg = srv.config().clone();
    eprintln!(
        "local server at {endpoint} (instance {}), running {name}",
        cfg.instance
    );
    let started = Instant::now();
    let child = cmd
        .env("TS_ENDPOINT", &endpoint)
        .env("TS_INSTANCE", &cfg.instance)
        .env("TS_AK", &cfg.access_key_id)
        .env("TS_SK", &cfg.access_key_secret)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}; {setup_hint}"));
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{name} did not finish within {TIMEOUT:?}"))
        .expect("collect the script's output");
    let elapsed = started.elapsed();
    srv.shutdown().await;

    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("----- {name} stdout ({elapsed:.1?}) -----\n{stdout}");
    if !stderr.trim().is_empty() {
        println!("----- {name} stderr -----\n{stderr}");
    }
    ScriptRun {
        status: output.status,
        stdout,
        stderr,
    }
}

impl ScriptRun {
    /// Fails the test unless the script exited 0, printed no FAIL line and ended with
    /// `N passed, 0 failed` for some N > 0. `hint` is added to the failure message.
    pub fn assert_passed(&self, sdk: &str, hint: &str) {
        let failures: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.starts_with("FAIL "))
            .collect();
        let summary = summary_line(&self.stdout);
        assert!(
            self.status.success() && failures.is_empty(),
            "the official {sdk} SDK conformance script failed ({}), summary: {}\n{}{hint}",
            self.status,
            summary.unwrap_or("<none>"),
            failures.join("\n"),
        );
        let summary = summary.expect("the script prints `N passed, 0 failed` last");
        assert!(
            summary.ends_with(" 0 failed") && !summary.starts_with("0 passed"),
            "unexpected summary: {summary}"
        );
    }
}

/// The last `N passed, M failed` line.
pub fn summary_line(stdout: &str) -> Option<&str> {
    stdout.lines().rev().find(|l| {
        let mut w = l.split_whitespace();
        matches!(
            (w.next(), w.next(), w.next(), w.next(), w.next()),
            (Some(n), Some("passed,"), Some(m), Some("failed"), None)
                if n.parse::<u32>().is_ok() && m.parse::<u32>().is_ok()
        )
    })
}

#[test]
fn summary_line_is_recognised() {
    assert_eq!(
        summary_line("PASS a\n12 passed, 0 failed\n"),
        Some("12 passed, 0 failed")
    );
    assert_eq!(summary_line("PASS a\n"), None);
    assert_eq!(summary_line("FAIL a: x\n"), None);
}
