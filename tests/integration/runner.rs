//! The real `statemachine/migration.asl.json` run by the in-process runner with recorded task
//! outputs. The scenarios and their expected paths live in `tests/runner_scenarios.json`, which
//! `.ci/asl-check.sh` also runs through a second engine (aws-local-stepfunctions), so both
//! engines are held to the same paths.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use asl::{RunOptions, Runner, Status, TaskError, TaskInvoker};
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tsmigrate_core::steps::{ErrorName, Step};

/// The steps' resource names, as the ASL file names their Tasks.
fn steps() -> [&'static str; 8] {
    Step::ALL.map(Step::resource_name)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `${NameFunctionArn}` -> `Name`.
fn substitutions() -> HashMap<String, String> {
    steps()
        .iter()
        .map(|s| (format!("{s}FunctionArn"), s.to_string()))
        .collect()
}

pub(crate) fn load() -> Runner {
    Runner::load(
        root().join("statemachine/migration.asl.json"),
        &substitutions(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn scenarios() -> Value {
    let text = std::fs::read_to_string(root().join("tests/runner_scenarios.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn options(max_executions: usize) -> RunOptions {
    RunOptions {
        time_scale: 0.0,
        max_executions,
        ..RunOptions::default()
    }
}

/// Every field of `want` is in `got`, recursively for objects; `null` = present, any value.
fn contains(got: &Value, want: &Value) -> bool {
    match want {
        Value::Null => true,
        Value::Object(w) => match got.as_object() {
            Some(g) => w
                .iter()
                .all(|(k, v)| g.get(k).is_some_and(|gv| contains(gv, v))),
            None => false,
        },
        other => got == other,
    }
}

enum Queue {
    List(VecDeque<Value>),
    ByChunk(BTreeMap<String, VecDeque<Value>>),
}

/// Answers each resource with the scenario's recorded responses, in call order (CopyChunk
/// per chunk_index), and remembers what went wrong.
struct Recorded {
    queues: Mutex<HashMap<String, Queue>>,
    calls: Mutex<BTreeMap<String, u64>>,
    inputs: Mutex<Vec<(String, Value)>>,
    problems: Mutex<Vec<String>>,
}

impl Recorded {
    fn new(tasks: &Value) -> Recorded {
        let mut queues = HashMap::new();
        for (key, responses) in tasks.as_object().unwrap() {
            let q = match responses {
                Value::Array(a) => Queue::List(a.iter().cloned().collect()),
                Value::Object(m) => Queue::ByChunk(
                    m.iter()
                        .map(|(i, a)| (i.clone(), a.as_array().unwrap().iter().cloned().collect()))
                        .collect(),
                ),
                other => panic!("bad responses for {key}: {other}"),
            };
            queues.insert(key.clone(), q);
        }
        Recorded {
            queues: Mutex::new(queues),
            calls: Mutex::default(),
            inputs: Mutex::default(),
            problems: Mutex::default(),
        }
    }

    fn respond(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(resource.to_owned())
            .or_default() += 1;
        self.inputs
            .lock()
            .unwrap()
            .push((resource.to_owned(), input.clone()));
        let response = {
            let mut queues = self.queues.lock().unwrap();
            match queues.get_mut(resource) {
                Some(Queue::List(q)) => q.pop_front(),
                Some(Queue::ByChunk(m)) => {
                    let key = input["chunk_index"].to_string();
                    m.get_mut(&key).and_then(VecDeque::pop_front)
                }
                None => None,
            }
        };
        let Some(r) = response else {
            self.problems.lock().unwrap().push(format!(
                "{resource}: no recorded response left for input {input}"
            ));
            return Err(TaskError::new("Test.NoResponse", resource));
        };
        if let Some(want) = r.get("expect_input") {
            if !contains(&input, want) {
                self.problems
                    .lock()
                    .unwrap()
                    .push(format!("{resource}: input {input} does not contain {want}"));
            }
        }
        match r.get("error").and_then(Value::as_str) {
            Some(e) => Err(TaskError::new(e, r["cause"].as_str().unwrap_or_default())),
            None => Ok(r["output"].clone()),
        }
    }

    fn unused(&self) -> usize {
        self.queues
            .lock()
            .unwrap()
            .values()
            .map(|q| match q {
                Queue::List(l) => l.len(),
                Queue::ByChunk(m) => m.values().map(VecDeque::len).sum(),
            })
            .sum()
    }
}

impl TaskInvoker for Recorded {
    fn invoke<'a>(
        &'a self,
        resource: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, TaskError>> {
        let r = self.respond(resource, input);
        Box::pin(async move {
            // let concurrent Map iterations interleave
            tokio::task::yield_now().await;
            r
        })
    }
}

/// Runs one scenario and returns every difference from its expectations.
async fn run_scenario(
    runner: &Runner,
    name: &str,
    sc: &Value,
    first: &str,
) -> (Vec<String>, Recorded) {
    let invoker = Recorded::new(&sc["tasks"]);
    let max = sc["max_executions"].as_u64().unwrap() as usize;
    let result = runner
        .execute(first, sc["input"].clone(), &invoker, &options(max))
        .await
        .unwrap();
    let mut problems = invoker.problems.lock().unwrap().clone();
    let want = &sc["expect"];
    let want_execs = want["executions"].as_array().unwrap();
    if result.executions.len() != want_execs.len() {
        problems.push(format!(
            "{} executions, expected {}",
            result.executions.len(),
            want_execs.len()
        ));
    }
    for (i, (got, w)) in result.executions.iter().zip(want_execs).enumerate() {
        let tag = format!("execution {i} ({})", w["name"]);
        if got.name != w["name"] {
            problems.push(format!("{tag}: name {}", got.name));
        }
        match (&got.status, w["status"].as_str().unwrap()) {
            (Status::Succeeded, "SUCCEEDED") => {}
            (Status::Failed { error, cause }, "FAILED") => {
                if let Some(e) = w["error"].as_str() {
                    if error != e {
                        problems.push(format!("{tag}: error {error}, expected {e}"));
                    }
                }
                if let Some(c) = w["cause"].as_str() {
                    if cause != c {
                        problems.push(format!("{tag}: cause {cause}, expected {c}"));
                    }
                }
            }
            (s, expected) => problems.push(format!("{tag}: status {s:?}, expected {expected}")),
        }
        let want_path: Vec<&str> = w["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        if got.path != want_path {
            problems.push(format!(
                "{tag}: path differs\n    got:      {:?}\n    expected: {:?}",
                got.path, want_path
            ));
        }
    }
    let pending = result.pending.first().map(|p| p.name.as_str());
    if pending != want["pending"].as_str() {
        problems.push(format!("pending {pending:?}, expected {}", want["pending"]));
    }
    if result.pending.iter().any(|p| p.input != sc["input"]) {
        problems.push("a continuation does not carry the same input".to_owned());
    }
    for exec in result.executions.iter().skip(1) {
        if exec.input != sc["input"] {
            problems.push(format!(
                "execution {} did not get the same input",
                exec.name
            ));
        }
    }
    let calls = invoker.calls.lock().unwrap().clone();
    for (key, n) in want["calls"].as_object().unwrap() {
        let got = calls.get(key).copied().unwrap_or(0);
        if got != n.as_u64().unwrap() {
            problems.push(format!("{key} called {got} times, expected {n}"));
        }
    }
    let unused = invoker.unused();
    if unused > 0 {
        problems.push(format!("{unused} recorded responses not used"));
    }
    let _ = name;
    (problems, invoker)
}

async fn check(name: &str) -> Recorded {
    let doc = scenarios();
    let sc = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no scenario {name}"));
    let (problems, invoker) =
        run_scenario(&load(), name, sc, doc["execution_name"].as_str().unwrap()).await;
    assert!(
        problems.is_empty(),
        "scenario {name}:\n  {}",
        problems.join("\n  ")
    );
    invoker
}

fn inputs_of(invoker: &Recorded, resource: &str) -> Vec<Value> {
    invoker
        .inputs
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _)| r == resource)
        .map(|(_, i)| i.clone())
        .collect()
}

#[tokio::test]
async fn full_and_incremental_with_three_chunks() {
    let inv = check("full_and_incremental").await;
    let mut chunks: Vec<i64> = inputs_of(&inv, "CopyChunk")
        .iter()
        .map(|i| i["chunk_index"].as_i64().unwrap())
        .collect();
    chunks.sort();
    assert_eq!(chunks, vec![0, 1, 2]);
    // steps get the config, the execution name and the lease owner, not the whole state
    for (resource, input) in inv.inputs.lock().unwrap().iter() {
        let mut keys: Vec<&str> = input
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        let expected: &[&str] = match resource.as_str() {
            "Precheck" => &["config", "execution_name", "next_table"],
            "CreateSchema" => &["config", "execution_name", "lease_owner", "next_table"],
            "Verify" => &["config", "execution_name", "lease_owner", "progress"],
            "Begin" => &["config", "execution_name", "mode"],
            "BinlogBatch" => &["config", "execution_name", "lease_owner", "mode"],
            "CopyChunk" => &["chunk_index", "config", "execution_name", "lease_owner"],
            "Finish" => &[
                "config",
                "error",
                "execution_name",
                "lease_owner",
                "outcome",
            ],
            _ => &["config", "execution_name", "lease_owner"],
        };
        assert_eq!(keys, expected, "{resource} input {input}");
        assert_eq!(input["config"], json!({"migration_id": "shop"}));
        if resource != "Precheck" && resource != "Begin" {
            assert_eq!(input["lease_owner"], "shop-1", "{resource} input {input}");
        }
    }
    let finish = inputs_of(&inv, "Finish");
    assert_eq!(finish[0]["error"], Value::Null);
    assert_eq!(
        finish[0]["outcome"],
        json!({"status": "continued", "error": null, "next_execution_name": "shop-c1"})
    );
}

/// Each per-table step is called again with where it stopped until it is done.
#[tokio::test]
async fn per_table_steps_are_called_again_where_they_stopped() {
    let inv = check("steps_over_several_calls").await;
    let next = |step: &str| -> Vec<Value> {
        inputs_of(&inv, step)
            .iter()
            .map(|i| i["next_table"].clone())
            .collect()
    };
    assert_eq!(next("Precheck"), [Value::Null, json!("t400")]);
    assert_eq!(next("CreateSchema"), [Value::Null, json!("t600")]);
    let progress: Vec<Value> = inputs_of(&inv, "Verify")
        .iter()
        .map(|i| i["progress"]["next_chunk"].clone())
        .collect();
    assert_eq!(progress, [json!(0), json!(1)]);
}

#[tokio::test]
async fn chunk_copied_in_three_calls() {
    let inv = check("chunk_not_done_twice").await;
    let zero = inputs_of(&inv, "CopyChunk")
        .iter()
        .filter(|i| i["chunk_index"] == 0)
        .count();
    assert_eq!(zero, 3);
}

#[tokio::test]
async fn failing_precheck_goes_through_finish_to_fail() {
    let inv = check("precheck_failed").await;
    let finish = inputs_of(&inv, "Finish");
    assert_eq!(finish[0]["outcome"]["status"], "failed");
    assert_eq!(
        finish[0]["outcome"]["error"]["Error"],
        "Migration.PrecheckFailed"
    );
}

#[tokio::test]
async fn transient_and_connection_errors_are_retried() {
    check("transient_retried").await;
}

#[tokio::test]
async fn fatal_error_is_caught_recorded_and_fails_the_execution() {
    let inv = check("fatal_caught").await;
    let finish = inputs_of(&inv, "Finish");
    let error =
        json!({"Error": "Migration.Fatal", "Cause": "destination: table orders: invalid name"});
    assert_eq!(finish[0]["outcome"]["error"], error);
    assert_eq!(finish[0]["error"], error);
    assert_eq!(finish[0]["lease_owner"], "shop-1");
}

#[tokio::test]
async fn copy_failure_fails_the_map_and_is_caught() {
    check("copy_failed").await;
}

#[tokio::test]
async fn more_waves_continue_as_new() {
    let inv = check("more_waves").await;
    let begins = inputs_of(&inv, "Begin");
    assert_eq!(begins[0]["execution_name"], "shop-1");
    assert_eq!(begins[1]["execution_name"], "shop-c1");
}

#[tokio::test]
async fn catch_up_ends_when_caught_up() {
    check("catch_up").await;
}

#[tokio::test]
async fn a_stopped_batch_ends_the_binlog_loop_with_success() {
    check("stopped").await;
}

/// A scheduled catch-up while another execution holds the lease succeeds without work.
#[tokio::test]
async fn a_catch_up_finding_a_running_execution_succeeds_without_work() {
    check("catch_up_finds_running").await;
}

#[tokio::test]
async fn empty_plan_skips_the_map() {
    check("nothing_to_copy").await;
}

#[tokio::test]
async fn failing_finish_fails_the_execution() {
    check("finish_failed").await;
}

#[tokio::test]
async fn malformed_input_is_rejected_before_any_step() {
    check("invalid_input").await;
}

#[tokio::test]
async fn every_scenario_is_covered_by_a_test() {
    let covered = [
        "full_and_incremental",
        "chunk_not_done_twice",
        "precheck_failed",
        "transient_retried",
        "fatal_caught",
        "copy_failed",
        "more_waves",
        "catch_up",
        "nothing_to_copy",
        "finish_failed",
        "invalid_input",
        "stopped",
        "catch_up_finds_running",
        "steps_over_several_calls",
    ];
    for sc in scenarios()["scenarios"].as_array().unwrap() {
        let name = sc["name"].as_str().unwrap();
        assert!(covered.contains(&name), "scenario {name} has no test here");
    }
}

/// The continue-as-new loop of the binlog phase keeps going while executions are allowed.
#[tokio::test]
async fn binlog_loop_continues_as_new_until_max_executions() {
    let runner = load();
    struct Forever;
    impl TaskInvoker for Forever {
        fn invoke<'a>(
            &'a self,
            resource: &'a str,
            input: Value,
        ) -> BoxFuture<'a, Result<Value, TaskError>> {
            let name = input["execution_name"].as_str().unwrap_or("").to_owned();
            let out = match resource {
                "Precheck" => json!({"passed": true, "items": [], "done": true,
                                     "next_table": null, "continued": name != "shop-1"}),
                "Begin" => {
                    // shop-1 -> shop-c1 -> shop-c2 ...
                    let n: u32 = name
                        .rsplit_once("-c")
                        .and_then(|(_, n)| n.parse().ok())
                        .unwrap_or(0);
                    json!({"lease_owner": name, "start_position": null,
                           "next_execution_name": format!("shop-c{}", n + 1),
                           "settings": {"migration_types": ["incremental"], "max_concurrency": 4,
                                        "idle_wait_seconds": 5, "continue_as_new_after": 2}})
                }
                "BinlogBatch" => {
                    json!({"position": {}, "events": 0, "rows_written": 0, "caught_up": true, "lag_seconds": 0})
                }
                _ => json!({}),
            };
            Box::pin(async move { Ok(out) })
        }
    }
    let input = json!({"config": {}, "mode": "full_and_incremental"});
    // spawned: the execution future is Send
    let handle =
        tokio::spawn(async move { runner.execute("shop-1", input, &Forever, &options(4)).await });
    let result = handle.await.unwrap().unwrap();
    let names: Vec<&str> = result.executions.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["shop-1", "shop-c1", "shop-c2", "shop-c3"]);
    assert!(result
        .executions
        .iter()
        .all(|e| e.status == Status::Succeeded));
    assert_eq!(result.pending.len(), 1);
    assert_eq!(result.pending[0].name, "shop-c4");
    let last = result.last().unwrap();
    assert_eq!(last.path.iter().filter(|s| *s == "IdleWait").count(), 1);
    assert_eq!(
        last.output.as_ref().unwrap()["continued_as"]["execution_arn"],
        "arn:aws:states:local:000000000000:execution:tsmigrate-migration:shop-c4"
    );
}

/// Idle waits are real waits scaled by time_scale.
#[tokio::test]
async fn idle_wait_is_time_scaled() {
    let runner = load();
    let doc = scenarios();
    let sc = doc["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "full_and_incremental")
        .unwrap();
    let invoker = Recorded::new(&sc["tasks"]);
    let opts = RunOptions {
        time_scale: 0.01, // idle_wait_seconds 5 -> 50 ms
        max_executions: 1,
        ..RunOptions::default()
    };
    let t0 = std::time::Instant::now();
    let r = runner
        .execute("shop-1", sc["input"].clone(), &invoker, &opts)
        .await
        .unwrap();
    assert_eq!(r.executions[0].status, Status::Succeeded);
    assert!(
        t0.elapsed() >= std::time::Duration::from_millis(50),
        "{:?}",
        t0.elapsed()
    );
}

/// Each step Task retries exactly the retriable error names of steps::ErrorName, with the
/// full set of Retry fields; the others reach Catch.
#[test]
fn retry_policy_matches_the_step_error_names() {
    let all = [
        ErrorName::ConnectionFailed,
        ErrorName::Transient,
        ErrorName::RetryWindowExceeded,
        ErrorName::PrecheckFailed,
        ErrorName::ConfigInvalid,
        ErrorName::BinlogUnavailable,
        ErrorName::SchemaConflict,
        ErrorName::DirtyData,
        ErrorName::LeaseHeld,
        ErrorName::Fatal,
    ];
    let text = std::fs::read_to_string(root().join("statemachine/migration.asl.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut tasks = Vec::new();
    fn walk<'a>(states: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
        for (name, s) in states.as_object().unwrap() {
            if s["Type"] == "Task" && s["Resource"].as_str().unwrap().ends_with("FunctionArn}") {
                out.push((name, s));
            }
            if s["Type"] == "Map" {
                walk(&s["ItemProcessor"]["States"], out);
            }
        }
    }
    walk(&doc["States"], &mut tasks);
    let names: Vec<&str> = tasks.iter().map(|(n, _)| *n).collect();
    let mut sorted = names.clone();
    sorted.sort();
    let mut steps = steps().to_vec();
    steps.sort();
    assert_eq!(sorted, steps);
    for (name, task) in tasks {
        let retried: Vec<&str> = task["Retry"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e.as_str().unwrap())
            })
            .filter(|e| e.starts_with("Migration."))
            .collect();
        for e in all {
            assert_eq!(
                retried.contains(&e.as_str()),
                e.is_retriable(),
                "{name}: retry of {}",
                e.as_str()
            );
        }
        for r in task["Retry"].as_array().unwrap() {
            for field in [
                "IntervalSeconds",
                "BackoffRate",
                "MaxAttempts",
                "MaxDelaySeconds",
            ] {
                assert!(r[field].is_number(), "{name}: {field}");
            }
            assert_eq!(r["JitterStrategy"], "FULL", "{name}");
        }
        if name != "CopyChunk" {
            // CopyChunk fails its Map iteration; the Map catches. Begin first routes a held
            // lease (a catch-up while another execution runs), then catches everything.
            let last = task["Catch"].as_array().and_then(|c| c.last()).cloned();
            assert_eq!(
                last.map(|c| c["ErrorEquals"].clone()),
                Some(json!(["States.ALL"])),
                "{name}"
            );
            if name == "Begin" {
                assert_eq!(
                    task["Catch"][0]["ErrorEquals"],
                    json!(["Migration.LeaseHeld"])
                );
            }
        }
    }
}

#[test]
fn resources_are_the_substituted_steps() {
    let mut want: Vec<String> = steps().iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(load().resources(), want);
}

#[test]
fn loading_fails_without_every_substitution() {
    let mut subs = substitutions();
    subs.remove("VerifyFunctionArn");
    let err = Runner::load(root().join("statemachine/migration.asl.json"), &subs).unwrap_err();
    assert!(err.to_string().contains("${VerifyFunctionArn}"), "{err}");
    assert!(Runner::load(root().join("statemachine/nope.asl.json"), &substitutions()).is_err());
}
