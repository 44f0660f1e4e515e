//! Executor tests: Choice rule evaluation and globbing, error matching, and whole executions
//! (I/O processing order, runtime errors, Retry/Catch, time scaling, Map, continue-as-new,
//! limits, Fail and Wait).

use super::super::asl::{self, Rule};
use super::super::{Runner, TaskError};
use super::choice::{eval_rule, glob_match};
use super::*;
use std::collections::HashMap;

fn rule(v: Value) -> Rule {
    let doc = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Next": "S"}], "Default": "S"},
        "S": {"Type": "Succeed"}}});
    let mut doc = doc;
    let mut r = v;
    r["Next"] = json!("S");
    doc["States"]["C"]["Choices"][0] = r;
    let m = asl::load(&doc.to_string(), &HashMap::new()).unwrap();
    let Kind::Choice(c) = &m.root.states["C"].kind else {
        panic!()
    };
    c.choices[0].0.clone()
}

fn check(r: Value, input: Value) -> Result<bool, String> {
    eval_rule(&rule(r), &input, &json!({"Execution": {"Name": "e"}}))
}

#[test]
fn choice_comparisons() {
    let input = json!({"s": "b", "n": 5, "f": 2.5, "t": true, "z": null,
                       "ts": "2024-05-01T12:00:00Z", "ts2": "2024-05-01T13:00:00+01:00", "m": 5});
    let yes = |r: Value| assert!(check(r.clone(), input.clone()).unwrap(), "{r} should match");
    let no = |r: Value| {
        assert!(
            !check(r.clone(), input.clone()).unwrap(),
            "{r} should not match"
        )
    };
    yes(json!({"Variable": "$.s", "StringEquals": "b"}));
    no(json!({"Variable": "$.s", "StringEquals": "a"}));
    yes(json!({"Variable": "$.s", "StringGreaterThan": "a"}));
    yes(json!({"Variable": "$.s", "StringLessThanEquals": "b"}));
    no(json!({"Variable": "$.n", "StringEquals": "5"}));
    yes(json!({"Variable": "$.n", "NumericEquals": 5}));
    yes(json!({"Variable": "$.n", "NumericEquals": 5.0}));
    yes(json!({"Variable": "$.n", "NumericGreaterThan": 0}));
    no(json!({"Variable": "$.n", "NumericLessThan": 5}));
    yes(json!({"Variable": "$.f", "NumericLessThanEquals": 2.5}));
    yes(json!({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.m"}));
    yes(json!({"Variable": "$.n", "NumericEqualsPath": "$.m"}));
    no(json!({"Variable": "$.s", "NumericEquals": 5}));
    yes(json!({"Variable": "$.t", "BooleanEquals": true}));
    no(json!({"Variable": "$.n", "BooleanEquals": true}));
    yes(json!({"Variable": "$.ts", "TimestampEqualsPath": "$.ts2"}));
    yes(json!({"Variable": "$.ts", "TimestampLessThan": "2024-05-02T00:00:00Z"}));
    yes(json!({"Variable": "$.z", "IsNull": true}));
    yes(json!({"Variable": "$.s", "IsString": true}));
    yes(json!({"Variable": "$.n", "IsNumeric": true}));
    yes(json!({"Variable": "$.t", "IsBoolean": true}));
    yes(json!({"Variable": "$.ts", "IsTimestamp": true}));
    no(json!({"Variable": "$.s", "IsTimestamp": true}));
    yes(json!({"Variable": "$.missing", "IsPresent": false}));
    no(json!({"Variable": "$.missing", "IsPresent": true}));
    yes(json!({"Variable": "$.z", "IsPresent": true}));
    yes(json!({"Variable": "$.s", "StringMatches": "*"}));
    yes(json!({"Variable": "$$.Execution.Name", "StringEquals": "e"}));
    yes(
        json!({"And": [{"Variable": "$.t", "BooleanEquals": true}, {"Not": {"Variable": "$.s", "StringEquals": "x"}}]}),
    );
    no(
        json!({"Or": [{"Variable": "$.t", "BooleanEquals": false}, {"Variable": "$.n", "NumericLessThan": 0}]}),
    );
    // short-circuit: the missing variable is never looked at
    yes(
        json!({"Or": [{"Variable": "$.t", "BooleanEquals": true}, {"Variable": "$.missing", "BooleanEquals": true}]}),
    );
    no(
        json!({"And": [{"Variable": "$.missing", "IsPresent": true}, {"Variable": "$.missing", "BooleanEquals": true}]}),
    );
}

#[test]
fn choice_missing_variable_is_an_error() {
    let err = check(
        json!({"Variable": "$.nope", "BooleanEquals": true}),
        json!({}),
    )
    .unwrap_err();
    assert!(err.contains("$.nope"), "{err}");
    assert!(check(
        json!({"Variable": "$.n", "NumericEqualsPath": "$.nope"}),
        json!({"n": 1})
    )
    .is_err());
}

#[test]
fn glob() {
    assert!(glob_match("log-*.txt", "log-2024.txt"));
    assert!(glob_match("*", ""));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXbYY"));
    assert!(glob_match(r"a\*b", "a*b"));
    assert!(!glob_match(r"a\*b", "aXb"));
    assert!(glob_match("abc", "abc"));
    assert!(!glob_match("abc", "abcd"));
}

#[test]
fn error_matching() {
    assert!(error_matches("States.ALL", "Migration.Fatal"));
    assert!(error_matches("States.TaskFailed", "Migration.Fatal"));
    assert!(!error_matches("States.TaskFailed", "States.Timeout"));
    assert!(error_matches("States.ALL", "States.Timeout"));
    assert!(!error_matches("States.ALL", RUNTIME));
    assert!(!error_matches("States.ALL", DATA_LIMIT));
    assert!(!error_matches(RUNTIME, RUNTIME));
    assert!(error_matches("Migration.Transient", "Migration.Transient"));
    assert!(!error_matches(
        "Migration.Transient",
        "Migration.ConnectionFailed"
    ));
}

/// Answers each resource from a closure; counts calls.
struct Fn_<F>(F);
impl<F> TaskInvoker for Fn_<F>
where
    F: Fn(&str, Value) -> Result<Value, TaskError> + Send + Sync,
{
    fn invoke<'a>(
        &'a self,
        resource: &'a str,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, TaskError>> {
        let r = (self.0)(resource, input);
        Box::pin(async move { r })
    }
}

fn fast() -> RunOptions {
    RunOptions {
        time_scale: 0.0,
        ..RunOptions::default()
    }
}

async fn run(
    def: Value,
    input: Value,
    f: impl Fn(&str, Value) -> Result<Value, TaskError> + Send + Sync,
) -> ExecutionRecord {
    let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
    let mut r = runner
        .execute("t-1", input, &Fn_(f), &fast())
        .await
        .unwrap();
    r.executions.remove(0)
}

#[tokio::test]
async fn io_processing_order() {
    // InputPath -> Parameters -> task -> ResultSelector -> ResultPath (into the raw input) -> OutputPath
    let def = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "r",
        "InputPath": "$.in",
        "Parameters": {"x.$": "$.x", "ctx.$": "$$.State.Name", "name.$": "$$.Execution.Name"},
        "ResultSelector": {"got.$": "$.echo"},
        "ResultPath": "$.res",
        "OutputPath": "$.res",
        "End": true}}});
    let rec = run(def, json!({"in": {"x": 1}, "other": 2}), |_, input| {
        assert_eq!(input, json!({"x": 1, "ctx": "T", "name": "t-1"}));
        Ok(json!({"echo": input, "noise": true}))
    })
    .await;
    assert_eq!(rec.status, Status::Succeeded);
    assert_eq!(
        rec.output,
        Some(json!({"got": {"x": 1, "ctx": "T", "name": "t-1"}}))
    );
}

#[tokio::test]
async fn runtime_errors_are_not_caught_and_result_path_failures_are() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "Parameters": {"x.$": "$.missing"},
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S"}], "End": true},
        "S": {"Type": "Succeed"}}});
    let rec = run(def, json!({}), |_, _| Ok(json!({}))).await;
    let Status::Failed { error, cause } = &rec.status else {
        panic!()
    };
    assert_eq!(error, RUNTIME);
    assert!(cause.contains("$.missing"), "{cause}");
    assert_eq!(rec.path, vec!["T"]);

    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "ResultPath": "$.a.b",
              "Catch": [{"ErrorEquals": ["States.ResultPathMatchFailure"], "ResultPath": "$.err", "Next": "S"}],
              "End": true},
        "S": {"Type": "Succeed"}}});
    let rec = run(def, json!({"a": 1}), |_, _| Ok(json!({}))).await;
    assert_eq!(rec.status, Status::Succeeded);
    assert_eq!(rec.path, vec!["T", "S"]);
    assert_eq!(
        rec.output.unwrap()["err"]["Error"],
        json!("States.ResultPathMatchFailure")
    );
}

#[tokio::test]
async fn retry_counts_backoff_and_exhaustion() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "Parameters": {"n.$": "$$.State.RetryCount"},
              "Retry": [{"ErrorEquals": ["A"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 2.0,
                         "MaxDelaySeconds": 1, "JitterStrategy": "FULL"}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "S"}], "End": true},
        "S": {"Type": "Succeed"}}});
    let calls = Mutex::new(Vec::new());
    let rec = run(def, json!({}), |_, input| {
        calls.lock().unwrap().push(input["n"].clone());
        Err(TaskError::new("A", "always"))
    })
    .await;
    assert_eq!(*calls.lock().unwrap(), vec![json!(0), json!(1), json!(2)]);
    assert_eq!(rec.path, vec!["T", "S"]);
    assert_eq!(
        rec.output.unwrap()["e"],
        json!({"Error": "A", "Cause": "always"})
    );
}

#[tokio::test]
async fn retry_delays_follow_the_time_scale() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r",
              "Retry": [{"ErrorEquals": ["A"], "MaxAttempts": 3, "IntervalSeconds": 1, "BackoffRate": 2.0,
                         "MaxDelaySeconds": 3}], "End": true}}});
    let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
    let calls = AtomicUsize::new(0);
    let invoker = Fn_(|_: &str, _| {
        if calls.fetch_add(1, Ordering::SeqCst) < 3 {
            Err(TaskError::new("A", ""))
        } else {
            Ok(json!(1))
        }
    });
    let opts = RunOptions {
        time_scale: 0.01,
        ..RunOptions::default()
    };
    let t0 = std::time::Instant::now();
    let r = runner
        .execute("t", json!({}), &invoker, &opts)
        .await
        .unwrap();
    let took = t0.elapsed();
    assert!(r.succeeded());
    // delays 1 + 2 + 3 (capped) seconds = 60 ms at 1/100
    assert!(took >= Duration::from_millis(55), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
}

#[tokio::test]
async fn map_concurrency_order_and_failure() {
    let def = json!({"StartAt": "M", "States": {"M": {
        "Type": "Map", "ItemsPath": "$.xs", "MaxConcurrencyPath": "$.c",
        "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"},
        "ItemProcessor": {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r", "End": true}}},
        "ResultPath": "$.out", "End": true}}});
    let inflight = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    struct Slow<'a>(&'a AtomicUsize, &'a AtomicUsize);
    impl TaskInvoker for Slow<'_> {
        fn invoke<'a>(
            &'a self,
            _: &'a str,
            input: Value,
        ) -> BoxFuture<'a, Result<Value, TaskError>> {
            Box::pin(async move {
                let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
                self.1.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.0.fetch_sub(1, Ordering::SeqCst);
                if input["v"] == json!("bad") {
                    return Err(TaskError::new("Boom", "bad item"));
                }
                Ok(json!(format!(
                    "{}{}",
                    input["v"].as_str().unwrap_or(""),
                    input["i"]
                )))
            })
        }
    }
    let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
    let slow = Slow(&inflight, &peak);
    let r = runner
        .execute(
            "m",
            json!({"xs": ["a", "b", "c", "d", "e"], "c": 2, "k": 1}),
            &slow,
            &fast(),
        )
        .await
        .unwrap();
    let rec = &r.executions[0];
    assert_eq!(
        rec.output.as_ref().unwrap()["out"],
        json!(["a0", "b1", "c2", "d3", "e4"])
    );
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    assert_eq!(
        rec.path,
        vec!["M", "M/0/T", "M/1/T", "M/2/T", "M/3/T", "M/4/T"]
    );

    let r = runner
        .execute(
            "m",
            json!({"xs": ["a", "bad"], "c": 0, "k": 1}),
            &slow,
            &fast(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.executions[0].status,
        Status::Failed {
            error: "Boom".into(),
            cause: "bad item".into()
        }
    );

    let r = runner
        .execute("m", json!({"xs": "no", "c": 1, "k": 1}), &slow, &fast())
        .await
        .unwrap();
    assert!(matches!(&r.executions[0].status, Status::Failed { error, .. } if error == RUNTIME));
}

#[tokio::test]
async fn continue_as_new_chain_is_bounded_and_names_are_unique() {
    let def = json!({"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More"},
        "More": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 10, "Next": "Again"}],
                 "Default": "Done"},
        "Again": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                  "Parameters": {"StateMachineArn.$": "$$.StateMachine.Id",
                                 "Name.$": "States.Format('c-{}', $.n)",
                                 "Input.$": "States.JsonToString($)"},
                  "End": true},
        "Done": {"Type": "Succeed"}}});
    let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
    let none = Fn_(|_: &str, _| Ok(json!(null)));
    let opts = RunOptions {
        max_executions: 3,
        ..fast()
    };
    let r = runner
        .execute("c-0", json!({"n": 0}), &none, &opts)
        .await
        .unwrap();
    let names: Vec<_> = r.executions.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["c-0", "c-1", "c-2"]);
    assert_eq!(r.executions[2].input, json!({"n": 2}));
    assert_eq!(
        r.pending,
        vec![StartRequest {
            name: "c-3".into(),
            input: json!({"n": 3})
        }]
    );
    assert!(!r.succeeded());
    let r = runner
        .execute(
            "c-0",
            json!({"n": 0}),
            &none,
            &RunOptions {
                max_executions: 100,
                ..fast()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.executions.len(), 10);
    assert!(r.succeeded());
    // a name already used fails the start
    let r = runner
        .execute("c-1", json!({"n": 0}), &none, &fast())
        .await
        .unwrap();
    assert!(matches!(&r.executions[0].status,
        Status::Failed { error, .. } if error == "StepFunctions.ExecutionAlreadyExistsException"));
    assert!(matches!(
        runner.execute("bad name", json!({}), &none, &fast()).await,
        Err(RunError::InvalidName(_))
    ));
}

#[tokio::test]
async fn endless_loops_and_big_payloads_stop() {
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"},
        "Never": {"Type": "Succeed"}}});
    assert!(
        Runner::parse(&def.to_string(), &HashMap::new()).is_err(),
        "unreachable Never"
    );
    let def = json!({"StartAt": "A", "States": {
        "A": {"Type": "Wait", "Seconds": 3600, "Next": "B"},
        "B": {"Type": "Choice", "Choices": [{"Variable": "$.stop", "IsPresent": true, "Next": "S"}], "Default": "A"},
        "S": {"Type": "Succeed"}}});
    let runner = Runner::parse(&def.to_string(), &HashMap::new()).unwrap();
    let none = Fn_(|_: &str, _| Ok(json!(null)));
    let opts = RunOptions {
        max_state_entries: 50,
        ..fast()
    };
    let r = runner.execute("x", json!({}), &none, &opts).await.unwrap();
    assert!(
        matches!(&r.executions[0].status, Status::Failed { error, .. } if error == STATE_LIMIT)
    );
    assert_eq!(r.executions[0].path.len(), 50);

    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "r",
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S"}], "End": true}, "S": {"Type": "Succeed"}}});
    let rec = run(def, json!({}), |_, _| Ok(json!("x".repeat(300 * 1024)))).await;
    assert!(matches!(&rec.status, Status::Failed { error, .. } if error == DATA_LIMIT));
}

#[tokio::test]
async fn fail_state_and_wait_path() {
    let def = json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "SecondsPath": "$.s", "Next": "F"},
        "F": {"Type": "Fail", "ErrorPath": "$.e.Error", "CausePath": "$.e.Cause"}}});
    let rec = run(
        def.clone(),
        json!({"s": 10, "e": {"Error": "X", "Cause": "why"}}),
        |_, _| Ok(json!(null)),
    )
    .await;
    assert_eq!(
        rec.status,
        Status::Failed {
            error: "X".into(),
            cause: "why".into()
        }
    );
    assert_eq!(rec.path, vec!["W", "F"]);
    let rec = run(def, json!({"s": -1}), |_, _| Ok(json!(null))).await;
    assert!(matches!(&rec.status, Status::Failed { error, .. } if error == RUNTIME));
}

#[tokio::test]
async fn history_events_and_the_largest_payload_are_counted_as_aws_writes_them() {
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "r", "Next": "M",
              "Retry": [{"ErrorEquals": ["E"], "MaxAttempts": 1}]},
        "M": {"Type": "Map", "ItemsPath": "$.items", "End": true,
              "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}
    }});
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let big = "x".repeat(1000);
    let r = run(def, json!({}), |_, _| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Err(TaskError::new("E", "once"));
        }
        Ok(json!({"items": [1, 2, 3], "pad": big}))
    })
    .await;
    assert_eq!(r.status, Status::Succeeded);
    // execution 2; T: entered/exited 2 + two attempts of 3; M: 2 + Map 2 + 3 iterations of
    // 2 + P entered/exited 3 times 2.
    assert_eq!(r.history_events, 2 + (2 + 2 * 3) + (2 + 2 + 3 * 2 + 3 * 2));
    assert!(
        (1000..1100).contains(&r.largest_payload),
        "{}",
        r.largest_payload
    );
}
