//! `tsmigrate step` (hidden): one step of the state machine run as its Lambda would run it, so
//! a second ASL engine can drive the real steps (`.ci/asl-live.mjs`, used by
//! `tests/integration/asl_live.rs`). Input JSON on stdin, output JSON on stdout; a step error
//! is printed as `{"error": name, "cause": message}` with exit code 1. `--execution-input`
//! prints the execution input `tsmigrate run` would start with instead.

use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

use tsmigrate_core::config;
use tsmigrate_core::steps::{run_step, Step};

pub async fn step(path: &Path, mode: super::ModeArg, resource: Option<&str>) -> i32 {
    let mut cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let secrets = cfg.detach_literal_secrets();
    if let Err(e) = super::embedded::resolve(&mut cfg, &secrets).await {
        eprintln!("error: {e}");
        return 2;
    }
    let Some(resource) = resource else {
        let input = json!({"config": cfg, "mode": mode.as_str(), "verify": false});
        println!("{input}");
        return 0;
    };
    let Some(step) = Step::from_resource_name(resource) else {
        eprintln!("error: unknown step {resource}");
        return 2;
    };
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        eprintln!("error: reading the step input: {e}");
        return 2;
    }
    let input: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: the step input is not JSON: {e}");
            return 2;
        }
    };
    match run_step(step, input, &secrets).await {
        Ok(out) => {
            println!("{out}");
            0
        }
        Err(e) => {
            println!("{}", json!({"error": e.name.as_str(), "cause": e.message}));
            1
        }
    }
}
