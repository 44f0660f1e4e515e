//! Limits by construction: the real state machine, run by the local runner with stub steps
//! that answer like the real ones would for a 1,000-table, 100M-row migration (2,500 chunks, a
//! long binlog run, outages that make the steps retry), while the runner counts each
//! execution's history events as Step Functions writes them and its largest payload. AWS fails
//! an execution past 25,000 events and refuses payloads over 256 KiB; our budget is 10,000
//! events and 64 KiB with the default settings, and the AWS limits at the largest settings
//! config validation accepts (so raising a maximum past its budget fails here).
//!
//! The per-table steps answer as they do at 1,000 tables within Lambda's deadline: Precheck,
//! CreateSchema, PlanChunks and Verify each need several calls (`done: false`, looped back by
//! the state machine), and executions that continue a run skip Precheck's checks and
//! CreateSchema. Some CopyChunk invocations time out (`Lambda.Unknown`) and are retried.

use std::collections::HashMap;
use std::sync::Mutex;

use asl::{ExecutionRecord, RunOptions, Status, TaskError, TaskInvoker};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tsmigrate_core::config::{
    MAX_BATCHES_PER_EXECUTION, MAX_CHUNKS_PER_EXECUTION, RETRY_MINUTES_MAX,
};
use tsmigrate_core::steps::Step;

const TABLES: usize = 1_000;
const CHUNKS: u32 = 2_500;
const ROWS: u64 = 100_000_000;
/// Tables one Precheck / CreateSchema / PlanChunks call gets through before its deadline, and
/// chunks one Verify call compares.
const PRECHECK_TABLES_PER_CALL: usize = 400;
const SCHEMA_TABLES_PER_CALL: usize = 150;
const PLAN_TABLES_PER_CALL: usize = 250;
const VERIFY_CHUNKS_PER_CALL: u32 = 300;

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
    /// Tables planned so far (the state store's plan draft).
    planned_tables: usize,
    calls: HashMap<&'static str, u32>,
}

/// `t0042`: the simulated source tables, in selection order.
fn table_name(i: usize) -> String {
    format!("t{i:04}")
}

/// The index of the table a `next_table` cursor names (`null` = the first).
fn cursor(input: &Value) -> usize {
    input["next_table"]
        .as_str()
        .map(|t| t[1..].parse().expect("a simulated table name"))
        .unwrap_or(0)
}

/// `{done, next_table}` after a call that handled `per_call` tables from `start`.
fn table_slice(start: usize, per_call: usize) -> (usize, Value) {
    let end = (start + per_call).min(TABLES);
    let next = if end < TABLES {
        json!(table_name(end))
    } else {
        Value::Null
    };
    (end - start, next)
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
        if let Some(known) = Step::from_resource_name(step) {
            *s.calls.entry(known.resource_name()).or_default() += 1;
        }
        Ok(match step {
            "Precheck" => {
                // Executions after the first were handed the lease: the run's precheck passed.
                let name = input["execution_name"].as_str().unwrap_or("");
                if name.starts_with("scale-c") {
                    return Ok(json!({"passed": true, "items": [], "done": true,
                                     "next_table": null, "continued": true}));
                }
                let (n, next) = table_slice(cursor(input), PRECHECK_TABLES_PER_CALL);
                let items: Vec<Value> = (0..30)
                    .map(|i| {
                        json!({"name": format!("item_{i}"), "status": "passed",
                        "detail": format!("{n} of {TABLES} tables checked; check {i} passed"), "fix": ""})
                    })
                    .collect();
                json!({"passed": true, "items": items, "done": next.is_null(),
                       "next_table": next, "continued": false})
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
            "CreateSchema" => {
                let (n, next) = table_slice(cursor(input), SCHEMA_TABLES_PER_CALL);
                json!({"tables": n, "created": n, "existing": 0, "done": next.is_null(),
                       "next_table": next})
            }
            "PlanChunks" => {
                if s.planned_tables < TABLES {
                    // Planning progress lives in the state store, not in the input.
                    s.planned_tables = (s.planned_tables + PLAN_TABLES_PER_CALL).min(TABLES);
                    if s.planned_tables < TABLES {
                        return Ok(json!({"done": false, "chunk_count": 0, "wave_start": 0,
                                         "total_chunks": 0, "more_waves": false}));
                    }
                }
                let start = s.next_chunk;
                let count = self.chunks_per_execution.min(CHUNKS - start);
                s.next_chunk += count;
                json!({"done": true, "chunk_count": count, "wave_start": start,
                       "total_chunks": CHUNKS, "more_waves": s.next_chunk < CHUNKS})
            }
            "CopyChunk" => {
                let i = input["chunk_index"].as_u64().unwrap_or(0);
                let calls = s.copy_calls.entry(i).or_insert(0);
                *calls += 1;
                // Every 10th chunk meets an outage (3 failed attempts); every 7th needs two
                // invocations (its time budget ran out once); every 97th times out once
                // (Lambda.Unknown: the invocation was stopped at its deadline).
                if i.is_multiple_of(10) && *calls <= 3 {
                    return Err(outage());
                }
                if i % 97 == 1 && *calls == 1 {
                    return Err(TaskError::new(
                        "Lambda.Unknown",
                        "The cause could not be determined because Lambda did not return an error type.",
                    ));
                }
                let calls = *calls - u32::from(i % 97 == 1);
                let failed = if i.is_multiple_of(10) { 3 } else { 0 };
                let done = !i.is_multiple_of(7) || calls > failed + 1;
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
            "Verify" => {
                let from = input["progress"]["next_chunk"].as_u64().unwrap_or(0) as u32;
                let next = (from + VERIFY_CHUNKS_PER_CALL).min(CHUNKS);
                let rows = ROWS / u64::from(CHUNKS) * u64::from(next);
                json!({"matched": rows, "missing": 0, "different": 0, "extra": 0, "dirty": 0,
                       "mismatched": [],
                       "progress": {"next_chunk": next, "done": next == CHUNKS, "matched": rows,
                                    "mismatched": 0, "dirty": 0, "table": table_name(next as usize % TABLES),
                                    "table_rows": 40_000}})
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
    let input = json!({"config": {"migration_id": "scale"}, "mode": "full_and_incremental",
                       "verify": true});
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
    let s = sim.state.lock().expect("lock");
    assert_eq!(s.next_chunk, CHUNKS, "every chunk planned");
    // The first execution loops each per-table step until done; the executions that continue
    // the run check nothing again and create no table again.
    let calls = |step| s.calls.get(step).copied().unwrap_or(0);
    let n = result.executions.len() as u32;
    assert_eq!(
        calls("Precheck"),
        TABLES.div_ceil(PRECHECK_TABLES_PER_CALL) as u32 + n - 1
    );
    assert_eq!(
        calls("CreateSchema"),
        TABLES.div_ceil(SCHEMA_TABLES_PER_CALL) as u32
    );
    // Planning takes several calls once; then every execution asks for its wave (none left
    // once the binlog loop runs).
    assert_eq!(
        calls("PlanChunks"),
        TABLES.div_ceil(PLAN_TABLES_PER_CALL) as u32 - 1 + n
    );
    // One verify pass after the last wave, not one per binlog execution.
    assert_eq!(calls("Verify"), CHUNKS.div_ceil(VERIFY_CHUNKS_PER_CALL));
    drop(s);
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

/// Longest the retries of one Task state entry may wait in total, every retrier's back-off
/// summed at its largest (FULL jitter only shortens waits): the longest retry window config
/// validation accepts (`retry.connection_minutes` ≤ 24 h), which the steps enforce themselves
/// (Migration.RetryWindowExceeded), plus 3 h for the other retriers.
const RETRY_WAIT_BOUND_SECONDS: f64 = (RETRY_MINUTES_MAX as f64) * 60.0 + 3.0 * 3600.0;

/// The longest total wait of one retrier: `MaxAttempts` waits of `IntervalSeconds ×
/// BackoffRate^k`, each capped at `MaxDelaySeconds` (unbounded without one).
fn max_total_wait(r: &Value) -> f64 {
    let interval = r["IntervalSeconds"].as_f64().unwrap_or(1.0);
    let rate = r["BackoffRate"].as_f64().unwrap_or(2.0);
    let cap = r["MaxDelaySeconds"].as_f64().unwrap_or(f64::INFINITY);
    let attempts = r["MaxAttempts"].as_u64().unwrap_or(3);
    (0..attempts)
        .map(|k| (interval * rate.powi(k as i32)).min(cap))
        .sum()
}

fn function_tasks(states: &Value, out: &mut Vec<(String, Value)>) {
    for (name, s) in states.as_object().expect("states") {
        if s["Type"] == "Task"
            && s["Resource"]
                .as_str()
                .is_some_and(|r| r.ends_with("FunctionArn}"))
        {
            out.push((name.clone(), s.clone()));
        }
        if s["Type"] == "Map" {
            function_tasks(&s["ItemProcessor"]["States"], out);
        }
    }
}

#[test]
fn every_step_retries_lambda_timeouts_a_few_times_and_its_retries_wait_a_bounded_time() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("statemachine/migration.asl.json");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("asl")).expect("json");
    let mut tasks = Vec::new();
    function_tasks(&doc["States"], &mut tasks);
    assert_eq!(tasks.len(), 8);
    for (name, task) in &tasks {
        let retry = task["Retry"].as_array().expect("Retry");
        let retried = |error: &str| {
            retry.iter().find(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .expect("ErrorEquals")
                    .iter()
                    .any(|e| e == error)
            })
        };
        // A timed-out or out-of-memory invocation (Lambda.Unknown; Sandbox.Timedout where
        // Lambda names the timeout) is retried, but only a few times: it is likely to recur.
        for error in ["Lambda.Unknown", "Sandbox.Timedout"] {
            let r = retried(error).unwrap_or_else(|| panic!("{name} does not retry {error}"));
            let attempts = r["MaxAttempts"].as_u64().expect("MaxAttempts");
            assert!(
                (1..=3).contains(&attempts),
                "{name}: {attempts} retries of {error}"
            );
        }
        let total: f64 = retry
            .iter()
            .map(|r| {
                assert!(
                    r["MaxDelaySeconds"].is_number(),
                    "{name}: unbounded back-off {r}"
                );
                max_total_wait(r)
            })
            .sum();
        assert!(
            total <= RETRY_WAIT_BOUND_SECONDS,
            "{name}: retries may wait {total} s, above {RETRY_WAIT_BOUND_SECONDS} s"
        );
        // The connection window (at most 24 h), not the attempts, normally ends retrying.
        let conn = retried("Migration.ConnectionFailed").expect("ConnectionFailed retried");
        assert!(
            max_total_wait(conn) >= f64::from(RETRY_MINUTES_MAX) * 60.0,
            "{name}: {conn}"
        );
    }
    // The check can fail: the retrier this replaced (500 attempts of up to 10 minutes) waits
    // up to 82 h.
    let old = json!({"IntervalSeconds": 5, "BackoffRate": 2.0, "MaxAttempts": 500, "MaxDelaySeconds": 600});
    assert!(max_total_wait(&old) > RETRY_WAIT_BOUND_SECONDS);
}
