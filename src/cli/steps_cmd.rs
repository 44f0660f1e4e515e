//! `tsmigrate precheck | create-schema | verify | status | stop`: load a config, run the step
//! locally.

use std::path::Path;

use tsmigrate_core::config;
use tsmigrate_core::steps::{self, Context, Status, StepError};

/// A step run locally against a config.
pub enum Local {
    Precheck { json: bool },
    CreateSchema,
    Verify { chunk: Option<u32> },
    Status,
    Stop { resume: bool },
}

/// Exit codes: 0 ok, 1 the step said no (a check failed, a conflict), 2 it could not run.
pub async fn run(path: &Path, what: Local) -> i32 {
    let ctx = match context(path).await {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    match what {
        Local::Precheck { json } => precheck(&ctx, json).await,
        Local::CreateSchema => create_schema(&ctx).await,
        Local::Verify { chunk } => verify(&ctx, chunk).await,
        Local::Status => status(&ctx).await,
        Local::Stop { resume } => stop(&ctx, resume).await,
    }
}

async fn context(path: &Path) -> Result<Context, (i32, String)> {
    let mut cfg = config::load(path).map_err(|e| (2, e.to_string()))?;
    // Literal secrets of local setups stay in this process, never in payloads.
    let literal = cfg.detach_literal_secrets();
    super::embedded::resolve(&mut cfg, &literal)
        .await
        .map_err(|e| (2, e))?;
    Context::new(cfg, &literal)
        .await
        .map_err(|e: StepError| (2, e.to_string()))
}

async fn precheck(ctx: &Context, json: bool) -> i32 {
    let report = steps::precheck(ctx).await;
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

async fn create_schema(ctx: &Context) -> i32 {
    match steps::create_schema(ctx).await {
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

async fn verify(ctx: &Context, chunk: Option<u32>) -> i32 {
    match steps::verify::verify_live(ctx, chunk).await {
        Ok(v) => {
            println!(
                "matched {}, missing {}, different {}, extra {}, dirty (not migrated) {}",
                v.matched, v.missing, v.different, v.extra, v.dirty
            );
            for m in &v.mismatched {
                println!("  {m}");
            }
            if let Some(r) = &v.recheck {
                println!("{r}");
            }
            if v.is_clean() {
                println!("verify: source and destination match");
                0
            } else {
                println!("verify: MISMATCHES found");
                1
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// `tsmigrate stop`: asks the binlog loop to end for cut-over (or withdraws the request).
async fn stop(ctx: &Context, resume: bool) -> i32 {
    let store = steps::lifecycle::state_store(ctx);
    let result = if resume {
        store.clear_stop().await
    } else {
        store
            .request_stop(tsmigrate_core::state::unix_millis(store.now()))
            .await
    };
    match result {
        Ok(()) if resume => {
            println!("stop withdrawn: the next run or catch-up applies the binlog again");
            0
        }
        Ok(()) => {
            println!(
                "stop requested: the running binlog loop ends successfully at its next batch, \
                 and catch-ups do nothing until `tsmigrate stop --resume`"
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

async fn status(ctx: &Context) -> i32 {
    let store = steps::lifecycle::state_store(ctx);
    let report = async {
        let status = store.status().await?;
        let chunks = store.chunks().await?;
        let done = chunks
            .iter()
            .filter(|c| c.status == tsmigrate_core::state::ChunkStatus::Done)
            .count();
        let rows: u64 = chunks.iter().map(|c| c.rows).sum();
        let checkpoint = store.checkpoint().await?;
        let lease = store.lease().await?;
        let dirty = store.dirty_count().await?;
        Ok::<_, tsmigrate_core::state::StateError>((
            status,
            chunks.len(),
            done,
            rows,
            checkpoint,
            lease,
            dirty,
        ))
    }
    .await;
    match report {
        Ok((status, total, done, rows, checkpoint, lease, dirty)) => {
            let now = std::time::SystemTime::now();
            match status {
                Some(s) => {
                    println!(
                        "phase: {}{}{}",
                        s.phase,
                        if s.stopped { " (stopped)" } else { "" },
                        s.last_error
                            .as_ref()
                            .map(|e| format!(", last error: {e}"))
                            .unwrap_or_default()
                    );
                    // Recorded by the execution-ended handler (timed out, aborted, failed
                    // outside Finish): which execution, when, and how to resume.
                    if let (Some(_), Some(detail)) = (s.ended_at, &s.detail) {
                        println!("ended: {detail}");
                    }
                }
                None => println!("phase: not started"),
            }
            println!("chunks: {done}/{total} done, {rows} rows copied");
            match checkpoint {
                Some(c) => {
                    let lag = c.event_time.map(|t| {
                        let now_s = now
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_secs() as i64)
                            .unwrap_or(0);
                        format!(", lag {} s", (now_s - t).max(0))
                    });
                    let gtid = c
                        .gtid_set
                        .as_deref()
                        .map(|g| format!(", gtid {g}"))
                        .unwrap_or_default();
                    println!(
                        "binlog checkpoint: {}:{}{}{}",
                        c.file,
                        c.pos,
                        gtid,
                        lag.unwrap_or_default()
                    )
                }
                None => println!("binlog checkpoint: none"),
            }
            match lease {
                Some(l) if !l.is_expired_at(now) => {
                    match l.owner.strip_suffix(tsmigrate_core::state::ENDED_SUFFIX) {
                        Some(ended) => println!(
                        "running: none; steps of ended execution {ended} may still write until \
                         {} (a new execution can begin then)",
                        tsmigrate_core::state::fmt_time(&l.expires_at)
                    ),
                        None => println!("running: execution {}", l.owner),
                    }
                }
                _ => println!("running: no execution holds the migration"),
            }
            println!("dirty rows: {dirty}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
