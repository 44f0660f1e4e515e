//! `tsmigrate precheck` and `tsmigrate create-schema`: load a config, run the step locally.

use std::path::Path;

use crate::config;
use crate::steps::{self, Context, Status, StepError};

/// Exit codes: 0 ok, 1 the step said no (a check failed, a conflict), 2 it could not run.
async fn context(path: &Path) -> Result<Context, (i32, String)> {
    let mut cfg = config::load(path).map_err(|e| (2, e.to_string()))?;
    // Literal secrets of local setups stay in this process, never in payloads.
    let literal = cfg.detach_literal_secrets();
    Context::new(cfg, &literal).await.map_err(|e: StepError| (2, e.to_string()))
}

pub async fn precheck(path: &Path, json: bool) -> i32 {
    let ctx = match context(path).await {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    let report = steps::precheck(&ctx).await;
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        println!("{:<24} {:<8} DETAIL / FIX", "ITEM", "STATUS");
        for i in &report.items {
            let status = match i.status {
                Status::Passed => "passed",
                Status::Warning => "WARNING",
                Status::Failed => "FAILED",
            };
            println!("{:<24} {:<8} {}", i.name, status, i.detail);
            if !i.fix.is_empty() {
                println!("{:<24} {:<8} fix: {}", "", "", i.fix);
            }
        }
        println!(
            "\nprecheck {}",
            if report.passed { "passed" } else { "FAILED" }
        );
    }
    if report.passed {
        0
    } else {
        1
    }
}

pub async fn create_schema(path: &Path) -> i32 {
    let ctx = match context(path).await {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    match steps::create_schema(&ctx).await {
        Ok(out) => {
            for t in &out.tables {
                println!(
                    "{:<32} -> {:<32} key ({}) {:?}",
                    t.source,
                    t.target,
                    t.primary_key.join(", "),
                    t.outcome
                );
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
