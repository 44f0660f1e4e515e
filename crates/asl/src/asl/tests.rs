//! Loader tests: a small machine loads with substitutions, and every kind of problem (unknown
//! and unsupported fields, graph, paths, templates, intrinsics, retriers, choice rules, bad
//! documents) is reported with its JSON pointer.

use super::*;
use serde_json::json;

fn load_value(v: Value) -> Result<StateMachine, LoadError> {
    let subs = HashMap::from([("FnArn".to_owned(), "fn".to_owned())]);
    load(&v.to_string(), &subs)
}

fn problems(v: Value) -> Vec<String> {
    match load_value(v) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().to_vec(),
    }
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn loads_a_small_machine_with_substitutions() {
    let m = load_value(json!({
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "${FnArn}", "Parameters": {"a.$": "$.a"},
                  "Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "FULL", "MaxDelaySeconds": 5}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "F"}],
                  "Next": "C"},
            "C": {"Type": "Choice", "Choices": [
                    {"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.m", "Next": "S"},
                    {"And": [{"Variable": "$.x", "IsPresent": true},
                             {"Not": {"Variable": "$.x", "StringEquals": "y"}}], "Next": "S"}],
                  "Default": "F"},
            "S": {"Type": "Succeed"},
            "F": {"Type": "Fail", "ErrorPath": "$.e.Error", "Cause": "c"}
        }
    }))
    .unwrap();
    let Kind::Task(t) = &m.root.states["T"].kind else {
        panic!()
    };
    assert_eq!(t.resource, Resource::Invoke("fn".into()));
    assert!(t.retry[0].full_jitter);
    assert_eq!(t.retry[0].max_attempts, 3);
    assert_eq!(t.retry[0].interval_seconds, 1.0);
    assert_eq!(t.retry[0].backoff_rate, 2.0);
    let Kind::Choice(c) = &m.root.states["C"].kind else {
        panic!()
    };
    assert_eq!(c.choices.len(), 2);
    assert!(matches!(
        &c.choices[0].0,
        Rule::Compare {
            op: Op::NumericGreaterThanEquals,
            operand: Operand::Path(_),
            ..
        }
    ));
}

#[test]
fn reports_unknown_and_unsupported_fields_everywhere() {
    let p = problems(json!({
        "StartAt": "M",
        "TimeoutSeconds": 5,
        "States": {
            "M": {"Type": "Map", "ItemsPath": "$.xs", "Retries": [],
                  "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                                    "StartAt": "T",
                                    "States": {"T": {"Type": "Task", "Resource": "fn", "End": true,
                                                     "HeartbeatSeconds": 5}}},
                  "Next": "W"},
            "W": {"Type": "Wait", "Timestamp": "2024-01-01T00:00:00Z", "Next": "P"},
            "P": {"Type": "Parallel", "Branches": [], "End": true}
        }
    }));
    for needle in [
        "/TimeoutSeconds: valid ASL, not supported",
        "/States/M/Retries: unknown field",
        "/States/M/ItemProcessor/ProcessorConfig/Mode: `DISTRIBUTED`",
        "/States/M/ItemProcessor/ProcessorConfig/ExecutionType: unknown field",
        "/States/M/ItemProcessor/States/T/HeartbeatSeconds: valid ASL, not supported",
        "/States/W/Timestamp: valid ASL, not supported",
        "/States/P/Type: Parallel is valid ASL, not supported",
    ] {
        assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
    }
}

#[test]
fn reports_graph_problems() {
    let p = problems(json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Pass", "End": true},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "BooleanEquals": true, "Next": "A"}]},
            "D": {"Type": "Pass", "Next": "A", "End": true},
            "E": {"Type": "Pass"}
        }
    }));
    for needle in [
        "/States/A/Next: no state named `Nowhere`",
        "/States/B: not reachable",
        "/States/C: not reachable",
        "/States/D/End: a state has either Next or End",
        "/States/E/Next: a non-terminal state needs Next",
    ] {
        assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
    }
    // Map iterations cannot jump out of their scope; names are unique machine-wide
    let p = problems(json!({
        "StartAt": "M",
        "States": {
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "X", "States": {
                "X": {"Type": "Pass", "Next": "Done"}, "Done": {"Type": "Succeed"}}}, "Next": "X"},
            "X": {"Type": "Succeed"}
        }
    }));
    assert!(has(&p, "state names must be unique"), "{p:#?}");
    assert!(!has(&p, "no state named"), "{p:#?}");
}

#[test]
fn reports_bad_paths_templates_intrinsics_and_retriers() {
    let p = problems(json!({
        "StartAt": "T",
        "States": {
            "T": {"Type": "Task", "Resource": "${Missing}",
                  "InputPath": "$.a[*]", "ResultPath": "$$.x",
                  "Parameters": {"a.$": "States.Hash($.a, 'MD5')", "b.$": "$.b", "b": 1},
                  "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 0.5},
                            {"ErrorEquals": ["X"], "JitterStrategy": "HALF", "IntervalSeconds": 0}],
                  "Catch": [{"ErrorEquals": ["States.ALL", "X"], "Next": "S"}],
                  "Next": "S"},
            "S": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true}
        }
    }));
    for needle in [
        "no substitution given for `${Missing}`",
        "/States/T/InputPath: path `$.a[*]`",
        "/States/T/ResultPath: path `$$.x`",
        "/States/T/Parameters/a.$: intrinsic",
        "/States/T/Parameters/b.$: both `b` and `b.$`",
        "/States/T/Retry/0/ErrorEquals: States.ALL must be in the last",
        "/States/T/Retry/0/BackoffRate",
        "/States/T/Retry/1/JitterStrategy",
        "/States/T/Retry/1/IntervalSeconds",
        "/States/T/Catch/0/ErrorEquals: States.ALL must appear alone",
        "/States/S/Resource: the integration `arn:aws:states:::lambda:invoke` is not supported",
    ] {
        assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
    }
}

#[test]
fn reports_bad_choice_rules() {
    let p = problems(json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [
                {"Variable": "$.x", "StringEquals": 3, "Next": "S"},
                {"Variable": "$.x", "Next": "S"},
                {"Variable": "$.x", "IsPresent": true, "BooleanEquals": true, "Next": "S"},
                {"And": [{"Variable": "$.x", "IsNull": true, "Next": "S"}], "Next": "S"},
                {"Variable": "$.x", "StringMatchesPath": "$.y", "Next": "S"},
                {"Variable": "$.x", "TimestampEquals": "yesterday", "Next": "S"},
                {"Variable": "$.x", "BooleanEquals": true}
            ], "Default": "S"},
            "S": {"Type": "Succeed"}
        }
    }));
    for needle in [
        "/Choices/0/StringEquals: operand of the wrong type",
        "/Choices/1/Variable: needs exactly one comparison",
        "/Choices/2/Variable: a rule has exactly one comparison",
        "/Choices/3/And/0/Next: unknown field",
        "/Choices/4/StringMatchesPath: unknown field",
        "/Choices/5/TimestampEquals: operand of the wrong type",
        "/Choices/6/Next: a top-level choice rule needs Next",
    ] {
        assert!(has(&p, needle), "missing `{needle}` in {p:#?}");
    }
}

#[test]
fn rejects_jsonata_and_bad_documents() {
    assert!(has(
        &problems(
            json!({"QueryLanguage": "JSONata", "StartAt": "S", "States": {"S": {"Type": "Succeed"}}})
        ),
        "only JSONPath"
    ));
    assert!(has(
        &problems(json!({"StartAt": "S", "States": {}})),
        "at least one state"
    ));
    assert!(matches!(
        load("[", &HashMap::new()),
        Err(LoadError::Json(_))
    ));
    assert!(has(&problems(json!([])), "must be a JSON object"));
    let p = problems(json!({"StartAt": "S", "States": {"S": {"Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution", "Parameters": {"Input.$": "$", "TraceHeader": "x"},
        "End": true}}}));
    assert!(has(&p, "needs StateMachineArn"), "{p:#?}");
    assert!(has(&p, "`TraceHeader` is not supported"), "{p:#?}");
}
