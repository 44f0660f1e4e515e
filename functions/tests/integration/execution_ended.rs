//! The execution-ended wrapper as the Lambda runtime calls it: events it refuses, events it
//! has nothing to do for, and the DescribeExecution seam (a stub). The state-store outcomes are
//! tested against the local Tablestore server in the root crate (tests/integration/
//! execution_ended.rs); DescribeExecution itself against moto (aws_emulator.rs).

use std::sync::Mutex;

use futures_util::future::BoxFuture;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};
use tsmigrate_core::config::LocalSecrets;
use tsmigrate_core::steps::ended::{ExecutionInputs, NoDescribe};
use tsmigrate_core::steps::error::StepError;
use tsmigrate_functions::ended::handle_ended;
use tsmigrate_functions::Function;

fn status_change(status: &str, input: Option<&str>) -> LambdaEvent<Value> {
    let payload = json!({
        "version": "0", "id": "e-1", "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:s-migration:run",
                   "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:s-migration",
                   "name": "run", "status": status, "startDate": 1, "stopDate": 2,
                   "input": input, "inputDetails": {"included": input.is_some()}}
    });
    LambdaEvent::new(payload, Context::default())
}

struct Stub {
    input: Option<String>,
    asked: Mutex<Vec<String>>,
}

impl ExecutionInputs for Stub {
    fn input<'a>(&'a self, arn: &'a str) -> BoxFuture<'a, Result<Option<String>, StepError>> {
        self.asked.lock().unwrap().push(arn.to_owned());
        let input = self.input.clone();
        Box::pin(async move { Ok(input) })
    }
}

#[test]
fn the_bootstrap_runs_execution_ended() {
    assert_eq!(
        Function::parse("execution-ended"),
        Some(Function::ExecutionEnded)
    );
    assert!(Function::names().contains(&"execution-ended".to_owned()));
}

#[tokio::test]
async fn other_events_are_refused_by_name() {
    let secrets = LocalSecrets::new();
    let err = handle_ended(
        LambdaEvent::new(json!({"config": {}}), Context::default()),
        &NoDescribe,
        &secrets,
    )
    .await
    .expect_err("not a status change");
    assert_eq!(err.error_type, "Migration.ConfigInvalid");
    assert!(err
        .error_message
        .contains("Step Functions Execution Status Change"));
}

#[tokio::test]
async fn successful_ends_and_inputs_without_a_config_change_nothing() {
    let secrets = LocalSecrets::new();
    let out = handle_ended(
        status_change("SUCCEEDED", Some("{}")),
        &NoDescribe,
        &secrets,
    )
    .await
    .expect("nothing to do");
    assert_eq!(out["status"], json!("untouched"));
    assert_eq!(out["lease"], json!("not_held"));

    // The input left out of the event: read through the seam; it holds no config (the
    // execution stopped at its input check), so there is no migration to record.
    let stub = Stub {
        input: Some(r#"{"mode": "catch_up"}"#.into()),
        asked: Mutex::new(Vec::new()),
    };
    let out = handle_ended(status_change("FAILED", None), &stub, &secrets)
        .await
        .expect("nothing to do");
    assert_eq!(out["migration_id"], Value::Null);
    assert!(
        out["note"]
            .as_str()
            .unwrap_or_default()
            .contains("no valid config"),
        "{out}"
    );
    assert_eq!(stub.asked.lock().unwrap().len(), 1);

    // Without the seam: an error that says what is missing.
    let err = handle_ended(status_change("TIMED_OUT", None), &NoDescribe, &secrets)
        .await
        .expect_err("no input");
    assert!(err.error_message.contains("DescribeExecution"), "{err:?}");
}
