//! The official Tablestore Python SDK (PyPI `tablestore` 6.4.x) accepts the local server:
//! starts the server in-process and runs `tests/conformance/official_sdk.py` against it.
//!
//! Needs a Python with the SDK installed: `$TSMIGRATE_PYTHON`, else `<repo>/.venv/bin/python`
//! (`.ci/run` sets it up; by hand: `python3 -m venv .venv && .venv/bin/pip install tablestore`).
//! A missing interpreter fails the test: it is never skipped silently.

use std::path::PathBuf;

use crate::harness::sdk_script;

const SCRIPT: &str = "tests/conformance/official_sdk.py";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_accepts_local_server() {
    let python = python();
    let script = repo().join(SCRIPT);
    assert!(script.exists(), "{} is missing", script.display());
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(&script)
        .current_dir(repo())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let run = sdk_script::run(cmd, SCRIPT, SETUP_HINT).await;
    let import_hint = if run.stderr.contains("cannot import the official SDK")
        || run.stderr.contains("No module named")
    {
        format!("\nthe interpreter lacks the SDK; {SETUP_HINT}")
    } else {
        String::new()
    };
    run.assert_passed("Python", &import_hint);
}
