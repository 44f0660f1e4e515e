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

use crate::harness::sdk_script;

const DIR: &str = "tests/node_sdk";
const SCRIPT: &str = "tests/node_sdk/conformance.js";
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
    let mut cmd = tokio::process::Command::new(&node);
    cmd.arg(&script).current_dir(repo().join(DIR));
    sdk_script::run(cmd, SCRIPT, SETUP_HINT)
        .await
        .assert_passed("Node.js", "");
}
