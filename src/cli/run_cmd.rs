//! `tsmigrate run`: the state machine in-process (design §8), steps bound to `steps::*`, with
//! progress per table while the full copy runs and a summary at the end. Ctrl-C stops; the next
//! run resumes from the saved chunk cursors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use crate::config::{self, LocalSecrets};
use crate::runner::{RunOptions, Runner, TaskError, TaskInvoker};
use crate::state::ChunkStatus;
use crate::steps::{self, run_step, Step};

/// The ASL file, compiled in so the binary runs anywhere.
pub const MIGRATION_ASL: &str = include_str!("../../statemachine/migration.asl.json");

/// `${PrecheckFunctionArn}` → `Precheck`, …
pub fn local_substitutions() -> HashMap<String, String> {
    Step::ALL
        .iter()
        .map(|s| {
            (
                format!("{}FunctionArn", s.resource_name()),
                s.resource_name().to_owned(),
            )
        })
        .collect()
}

/// Runs steps in this process.
pub struct LocalInvoker {
    pub secrets: LocalSecrets,
}

impl TaskInvoker for LocalInvoker {
    fn invoke<'a>(
        &'a self,
        resource: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, TaskError>> {
        Box::pin(async move {
            let step = Step::from_resource_name(resource).ok_or_else(|| {
                TaskError::new("States.TaskFailed", format!("unknown resource {resource}"))
            })?;
            run_step(step, input, &self.secrets)
                .await
                .map_err(TaskError::from)
        })
    }
}

pub async fn run(path: &Path, mode: &str) -> i32 {
    let mut cfg = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Err(problems) = cfg.validate() {
        eprintln!("error: the config has problems:\n{problems}");
        return 2;
    }
    let secrets = cfg.detach_literal_secrets();
    let runner = match Runner::parse(MIGRATION_ASL, &local_substitutions()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: the state machine does not load: {e}");
            return 2;
        }
    };
    let cfg_json = match serde_json::to_value(&cfg) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let ctx = match steps::Context::new(cfg.clone(), &secrets).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let input = json!({"config": cfg_json, "mode": mode, "verify": false});
    let invoker = LocalInvoker { secrets };
    // A stable name: a rerun after Ctrl-C re-enters its own lease.
    let name = format!("local-{}", cfg.migration_id);
    let started = Instant::now();
    let progress = tokio::spawn(show_progress(ctx.clone()));
    let options = RunOptions::default();
    let outcome = tokio::select! {
        r = runner.execute(&name, input, &invoker, &options) => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    progress.abort();
    eprintln!();
    let code = match outcome {
        None => {
            println!(
                "stopped: every acknowledged row is saved; run the same command again to resume"
            );
            130
        }
        Some(Err(e)) => {
            eprintln!("error: {e}");
            2
        }
        Some(Ok(result)) => {
            let last = result.last();
            match last.map(|e| &e.status) {
                Some(crate::runner::Status::Succeeded) if result.pending.is_empty() => {
                    println!(
                        "migration {} succeeded in {:.1} s ({} execution{})",
                        cfg.migration_id,
                        started.elapsed().as_secs_f64(),
                        result.executions.len(),
                        if result.executions.len() == 1 {
                            ""
                        } else {
                            "s"
                        }
                    );
                    0
                }
                Some(crate::runner::Status::Failed { error, cause }) => {
                    println!("migration {} FAILED: {error}: {cause}", cfg.migration_id);
                    1
                }
                _ => {
                    println!(
                        "migration {} did not finish ({} start requests pending)",
                        cfg.migration_id,
                        result.pending.len()
                    );
                    1
                }
            }
        }
    };
    summary(&ctx).await;
    code
}

/// One line per table: rows copied / estimate, rows/s, ETA; refreshed every second.
async fn show_progress(ctx: Arc<steps::Context>) {
    let store = steps::lifecycle::state_store(&ctx);
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(chunks) = store.chunks().await else {
            continue;
        };
        if chunks.is_empty() {
            continue;
        }
        let mut per: Vec<(String, u64, usize, usize)> = Vec::new();
        for c in &chunks {
            let done = usize::from(c.status == ChunkStatus::Done);
            match per.iter_mut().find(|p| p.0 == c.table) {
                Some(p) => {
                    p.1 += c.rows;
                    p.2 += done;
                    p.3 += 1;
                }
                None => per.push((c.table.clone(), c.rows, done, 1)),
            }
        }
        let secs = start.elapsed().as_secs_f64().max(0.001);
        let total: u64 = per.iter().map(|p| p.1).sum();
        let line = per
            .iter()
            .map(|(t, rows, done, n)| format!("{t}: {rows} rows ({done}/{n} chunks)"))
            .collect::<Vec<_>>()
            .join(" | ");
        let left: usize = per.iter().map(|p| p.3 - p.2).sum();
        let rate = total as f64 / secs;
        eprint!(
            "\r\x1b[2K{line} | {rate:.0} rows/s{}",
            if left == 0 {
                String::new()
            } else {
                format!(", {left} chunks left")
            }
        );
    }
}

async fn summary(ctx: &steps::Context) {
    let store = steps::lifecycle::state_store(ctx);
    let chunks = store.chunks().await.unwrap_or_default();
    let mut per: Vec<(String, u64, u64)> = Vec::new();
    for c in &chunks {
        match per.iter_mut().find(|p| p.0 == c.table) {
            Some(p) => {
                p.1 += c.rows;
                p.2 += c.bytes;
            }
            None => per.push((c.table.clone(), c.rows, c.bytes)),
        }
    }
    if !per.is_empty() {
        println!("\n{:<32} {:>12} {:>12}", "TABLE", "ROWS", "MB");
        for (t, rows, bytes) in &per {
            println!("{t:<32} {rows:>12} {:>12.1}", *bytes as f64 / 1048576.0);
        }
    }
    if let Ok(n) = store.dirty_count().await {
        println!("dirty rows (recorded, not migrated): {n}");
    }
}
