//! `execution-ended`: the Lambda wrapper of
//! [`tsmigrate_core::steps::ended::execution_ended`], which an EventBridge rule invokes for
//! every FAILED, TIMED_OUT or ABORTED execution of the migration state machine. It records the
//! end in the migration's state store and frees the lease the execution still held.
//!
//! The event carries the execution input (the config, with secret references only); it is
//! never logged. When the input is left out of the event (too large for EventBridge),
//! [`SfnInputs`] reads it with `DescribeExecution`.
//!
//! IAM: `secretsmanager:GetSecretValue` on the secrets the configs reference (the Tablestore
//! keys), `states:DescribeExecution` on the state machine's executions.

use std::time::Instant;

use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata};
use futures_util::future::BoxFuture;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use tsmigrate_core::config::SecretResolver;
use tsmigrate_core::steps::ended::{execution_ended, ExecutionInputs};
use tsmigrate_core::steps::error::{ErrorName, StepError};

use crate::diagnostic;

/// [`ExecutionInputs`] with `DescribeExecution`.
#[derive(Debug, Clone)]
pub struct SfnInputs(pub aws_sdk_sfn::Client);

impl ExecutionInputs for SfnInputs {
    fn input<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StepError>> {
        Box::pin(async move {
            let described = self
                .0
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
                // The SDK's text names the error code and message; the input is in no error.
                .map_err(|e| {
                    // Retrying cannot help a missing execution or a missing permission.
                    let name = match e.code() {
                        Some("ExecutionDoesNotExist" | "InvalidArn" | "AccessDeniedException") => {
                            ErrorName::Fatal
                        }
                        _ => ErrorName::Transient,
                    };
                    StepError::new(
                        name,
                        format!(
                            "DescribeExecution of {execution_arn} failed: {} (the role needs \
                             states:DescribeExecution on the state machine's executions)",
                            DisplayErrorContext(&e)
                        ),
                    )
                })?;
            Ok(described.input().map(str::to_owned))
        })
    }

    fn exists<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<bool>, StepError>> {
        Box::pin(async move {
            match self
                .0
                .describe_execution()
                .execution_arn(execution_arn)
                .send()
                .await
            {
                Ok(_) => Ok(Some(true)),
                Err(e) if e.code() == Some("ExecutionDoesNotExist") => Ok(Some(false)),
                Err(e) => {
                    let name = match e.code() {
                        Some("InvalidArn" | "AccessDeniedException") => ErrorName::Fatal,
                        _ => ErrorName::Transient,
                    };
                    Err(StepError::new(
                        name,
                        format!(
                            "DescribeExecution of {execution_arn} failed: {} (the role needs \
                             states:DescribeExecution on the state machine's executions)",
                            DisplayErrorContext(&e)
                        ),
                    ))
                }
            }
        })
    }
}

/// One invocation: the event's execution name and status, the outcome and timing are logged;
/// an error is a [`Diagnostic`] named `Migration.*` (the invocation is retried, then lands in
/// the failure queue).
pub async fn handle_ended(
    event: LambdaEvent<Value>,
    inputs: &dyn ExecutionInputs,
    resolver: &dyn SecretResolver,
) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    let started = Instant::now();
    let detail = payload.get("detail");
    // Only what looks like an execution name or status is logged (a direct invoke may send
    // anything).
    let field = |k: &str| {
        detail
            .and_then(|d| d.get(k))
            .and_then(Value::as_str)
            .filter(|v| {
                v.len() <= 80
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
            .unwrap_or("")
            .to_owned()
    };
    let (name, status) = (field("name"), field("status"));
    let outcome = execution_ended(&payload, inputs, resolver).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(out) => {
            tracing::info!(
                request_id = %context.request_id,
                execution_name = %name,
                execution_status = %status,
                migration_id = out.migration_id.as_deref().unwrap_or(""),
                status_action = ?out.status,
                lease_action = ?out.lease,
                lease_holder = out.lease_holder.as_deref().unwrap_or(""),
                lease_free_at_ms = out.lease_free_at.unwrap_or(0),
                note = out.note.as_deref().unwrap_or(""),
                elapsed_ms,
                "execution end handled"
            );
            serde_json::to_value(&out).map_err(|e| {
                diagnostic(&StepError::fatal(format!("cannot encode the answer: {e}")))
            })
        }
        Err(error) => {
            tracing::error!(
                request_id = %context.request_id,
                execution_name = %name,
                execution_status = %status,
                elapsed_ms,
                error_type = error.name.as_str(),
                error_message = %error.message,
                "execution end not handled"
            );
            Err(diagnostic(&error))
        }
    }
}
