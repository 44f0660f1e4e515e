//! Limits by construction: the real state machine, run by the local runner with stub steps
//! that answer like the real ones would for a 1,000-table, 100M-row migration (2,500 chunks, a
//! long binlog run, outages that make the steps retry), while the runner counts each
//! execution's history events as Step Functions writes them and its largest payload. AWS fails
//! an execution past 25,000 events and refuses payloads over 256 KiB; our budget is 10,000
//! events and 64 KiB with the default settings, and the AWS limits at the largest settings
//! config validation accepts (so raising a maximum past its budget fails here).

use std::collections::HashMap;
use std::sync::Mutex;

use asl::{ExecutionRecord, RunOptions, Status, TaskError, TaskInvoker};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tsmigrate_core::config::{MAX_BATCHES_PER_EXECUTION, MAX_CHUNKS_PER_EXECUTION};

const TABLES: usize = 1_000;
const CHUNKS: u32 = 2_500;
const ROWS: u64 = 100_000_000;

/// How the simulated migration behaves.
struct Sim {
    chunks_per_execution: u32,
    continue_as_new_after: u32,
    /// Binlog batches before the loop is stopped.
    batches: u32,
    state: Mutex<SimState>,
}

#[derive(Default)]
struct SimState {
    next_chunk: u32,
    copy_calls: HashMap<u64, u32>,
    batch_calls: u32,
    executions: u32,
}

impl Sim {
    fn new(chunks_per_execution: u32, continue_as_new_after: u32, batches: u32) -> Sim {
        Sim {
            chunks_per_execution,
            continue_as_new_after,
            batches,
            state: Mutex::new(SimState::default()),
        }
    }

    fn answer(&self, step: &str, input: &Value) -> Result<Value, TaskError> {
        let mut s = self.state.lock().expect("lock");
        let outage = || TaskError::new("Migration.ConnectionFailed", "cannot connect to MySQL");
        Ok(match step {
            "Precheck" => {
                let items: Vec<Value> = (0..30)
                    .map(|i| {
                        json!({"name": format!("item_{i}"), "status": "passed",
                        "detail": format!("{TABLES} tables selected; check {i} passed"), "fix": ""})
                    })
                    .collect();
                json!({"passed": true, "items": items})
            }
            "Begin" => {
                s.executions += 1;
                let name = input["execution_name"].as_str().unwrap_or("x");
                json!({
                    "lease_owner": name,
                    "start_position": {"file": "mysql-bin.000042", "pos": 4},
                    "next_execution_name": format!("scale-c{}", s.executions),
                    "settings": {
                        "migration_types": ["schema", "full", "incremental"],
                        "max_concurrency": 8,
                        "idle_wait_seconds": 5,
                        "continue_as_new_after": self.continue_as_new_after
                    }
                })
            }
            // What the CreateSchema Lambda answers: counts (steps/dispatch.rs).
            "CreateSchema" => json!({"tables": TABLES, "created": TABLES, "existing": 0}),
            "PlanChunks" => {
                let start = s.next_chunk;
                let count = self.chunks_per_execution.min(CHUNKS - start);
                s.next_chunk += count;
                json!({"chunk_count": count, "wave_start": start, "total_chunks": CHUNKS,
                       "more_waves": s.next_chunk < CHUNKS})
            }
            "CopyChunk" => {
                let i = input["chunk_index"].as_u64().unwrap_or(0);
                let calls = s.copy_calls.entry(i).or_insert(0);
                *calls += 1;
                // Every 10th chunk meets an outage (3 failed attempts); every 7th needs two
                // invocations (its time budget ran out once).
                if i.is_multiple_of(10) && *calls <= 3 {
                    return Err(outage());
                }
                let failed = if i.is_multiple_of(10) { 3 } else { 0 };
                let done = !i.is_multiple_of(7) || *calls > failed + 1;
                json!({"chunk_index": i, "rows": ROWS / u64::from(CHUNKS), "bytes": 8_000_000u64,
                       "dirty": 0, "done": done})
            }
            "BinlogBatch" => {
                s.batch_calls += 1;
                let n = s.batch_calls;
                // A 20-attempt outage in the middle of the run.
                if (n % 700) < 20 && n > 20 {
                    return Err(outage());
                }
                json!({"position": format!("mysql-bin.000042:{}", n * 1000), "events": 50_000,
                       "rows_written": 40_000, "dirty": 0, "caught_up": n.is_multiple_of(3),
                       "stopped": n >= self.batches, "lag_seconds": 2})
            }
            "Finish" => json!({"phase": "finished", "dirty_rows": 0}),
            other => return Err(TaskError::new("Test.Unexpected", other.to_owned())),
        })
    }
}

impl TaskInvoker for Sim {
    fn invoke<'a>(
        &'a self,
        resource: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, TaskError>> {
        Box::pin(async move { self.answer(resource, &input) })
    }
}

/// Runs the whole migration (every wave, the binlog loop until stopped) and returns the
/// executions.
async fn simulate(sim: &Sim) -> Vec<ExecutionRecord> {
    let runner = crate::runner::load();
    let input = json!({"config": {"migration_id": "scale"}, "mode": "full_and_incremental"});
    let options = RunOptions {
        time_scale: 0.0,
        max_executions: 100,
        ..RunOptions::default()
    };
    let result = runner
        .execute("scale", input, sim, &options)
        .await
        .expect("runs");
    assert!(result.pending.is_empty(), "executions left pending");
    for e in &result.executions {
        assert_eq!(e.status, Status::Succeeded, "{}: {:?}", e.name, e.status);
    }
    assert_eq!(
        sim.state.lock().expect("lock").next_chunk,
        CHUNKS,
        "every chunk planned"
    );
    result.executions
}

fn report(executions: &[ExecutionRecord]) -> String {
    executions
        .iter()
        .map(|e| {
            format!(
                "{}: {} events, largest payload {} B",
                e.name, e.history_events, e.largest_payload
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn defaults_keep_every_execution_under_10000_events_and_64_kib() {
    let sim = Sim::new(200, 500, 1_500);
    let executions = simulate(&sim).await;
    let text = report(&executions);
    eprintln!("{text}");
    // 13 waves of the copy, then the binlog loop in executions of 500 batches.
    assert!(executions.len() >= 13 + 2, "{text}");
    for e in &executions {
        assert!(e.history_events < 10_000, "{text}");
        assert!(e.largest_payload < 64 * 1024, "{text}");
    }
}

#[tokio::test]
async fn the_largest_accepted_settings_stay_under_the_aws_limits() {
    let sim = Sim::new(MAX_CHUNKS_PER_EXECUTION, MAX_BATCHES_PER_EXECUTION, 4_200);
    let executions = simulate(&sim).await;
    let text = report(&executions);
    eprintln!("{text}");
    for e in &executions {
        assert!(e.history_events < 25_000, "{text}");
        assert!(e.largest_payload < 256 * 1024, "{text}");
    }
}
