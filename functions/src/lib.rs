//! tsmigrate's AWS Lambda functions (design §1, §5): one `bootstrap` binary (`src/main.rs`)
//! that runs the migration step or `start-migration` named by `TSMIGRATE_FUNCTION`
//! ([`function_from_env`]). It links the core library only: no local server, no state-machine
//! runner, no command-line parser.
//!
//! - A step function is [`run_step_function`]: it builds the
//!   AWS clients once per cold start (a [`SecretsManagerResolver`] for `secret_arn`
//!   references), then serves invocations with [`handle_step`], which calls the library's
//!   [`run_step_until`] (the invocation deadline bounds CopyChunk) with the invocation's payload (`{"config": {…}, …step fields}`).
//! - A failed step becomes a [`Diagnostic`] whose `error_type` is the step error's stable name
//!   (`Migration.ConnectionFailed`, `Migration.ConfigInvalid`, …): that is what the state
//!   machine's `Retry`/`Catch` `ErrorEquals` match on.
//! - `execution-ended` ([`ended`]) records, in the migration's state store, an execution that
//!   ended without Finish (timed out, aborted, failed outside it) and frees its lease.
//! - `start-migration` ([`start`]) turns an EventBridge event, a direct invoke or an S3
//!   object-created event (a config file) into one `StartExecution` of the migration state
//!   machine, with a deterministic execution name so a duplicate event does not start a
//!   duplicate migration (the shared part is [`tsmigrate_core::aws::sfn`]).
//! - Logs are JSON lines without timestamps (CloudWatch adds them). The event is never logged:
//!   it holds the config, whose credentials are references only (design invariant 5), but the
//!   rule is simpler without exceptions. Only the step name, request id, migration id, timing
//!   and the error's name and message (which never carry secrets) are logged.

pub mod ended;
pub mod secrets;
pub mod start;

use std::time::Instant;

// The bootstrap links this library: mimalloc (glibc's malloc cost a
// quarter of the copy's CPU, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use tsmigrate_core::config::SecretResolver;
use tsmigrate_core::steps::dispatch::{run_step_until, Step};
use tsmigrate_core::steps::error::StepError;

pub use secrets::SecretsManagerResolver;

/// The Lambda function (and binary) name of a step: `Precheck` → `precheck`, `CreateSchema` →
/// `create-schema`.
pub fn function_name(step: Step) -> String {
    let mut out = String::new();
    for (i, c) in step.resource_name().chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The environment variable that names a function's job; the SAM template sets it per function.
pub const FUNCTION_ENV: &str = "TSMIGRATE_FUNCTION";

/// What one deployed function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Step(Step),
    StartMigration,
    ExecutionEnded,
}

impl Function {
    /// Parses a function name: a step's [`function_name`], `start-migration` or
    /// `execution-ended`.
    pub fn parse(name: &str) -> Option<Function> {
        if name == "start-migration" {
            return Some(Function::StartMigration);
        }
        if name == "execution-ended" {
            return Some(Function::ExecutionEnded);
        }
        Step::ALL
            .into_iter()
            .find(|s| function_name(*s) == name)
            .map(Function::Step)
    }

    /// Every name [`Function::parse`] accepts, for error messages.
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = Step::ALL.into_iter().map(function_name).collect();
        names.push("start-migration".to_owned());
        names.push("execution-ended".to_owned());
        names
    }
}

/// The function named by [`FUNCTION_ENV`]; a missing or unknown name is an error naming every
/// valid one (the function then fails at init, visibly, instead of running the wrong step).
pub fn function_from_env() -> Result<Function, String> {
    let value = std::env::var(FUNCTION_ENV).unwrap_or_default();
    Function::parse(value.trim()).ok_or_else(|| {
        format!(
            "environment variable {FUNCTION_ENV} is {:?}: set it to one of {} (the SAM template \
             sets it for each function)",
            value,
            Function::names().join(", ")
        )
    })
}

/// JSON log lines without timestamps. The level comes from `RUST_LOG`, else from Lambda's
/// `AWS_LAMBDA_LOG_LEVEL` (advanced logging controls), else `info`. Calling it twice is
/// harmless (tests do).
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_else(|| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .with_current_span(false)
        .with_ansi(false)
        .try_init();
}

/// The HTTPS client of every AWS SDK client here: hyper + rustls on ring (no aws-lc-rs, no
/// OpenSSL), the library's ([`tsmigrate_core::aws::https_client`]). Plain `http://` endpoints (a local
/// emulator) work too.
pub fn https_client() -> aws_sdk_sfn::config::SharedHttpClient {
    tsmigrate_core::aws::https_client()
}

/// The AWS config loader with our HTTPS client: region and credentials from the environment
/// (Lambda sets both), endpoint overrides from `AWS_ENDPOINT_URL*` if set. Tests add an
/// explicit region, credentials and endpoint before `load()`.
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    tsmigrate_core::aws::config_loader()
}

/// A step error as Lambda reports it: `errorType` is the stable name the ASL matches on.
pub fn diagnostic(error: &StepError) -> Diagnostic {
    Diagnostic {
        error_type: error.name.as_str().to_owned(),
        error_message: error.message.clone(),
    }
}

/// The config's `migration_id`, for log lines: only when it looks like one (the config may be
/// anything when it fails validation, and log lines must not echo arbitrary input).
pub(crate) fn migration_id_for_logs(payload: &Value) -> Option<&str> {
    let id = payload.get("config")?.get("migration_id")?.as_str()?;
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(id)
}

/// One step invocation: runs `step` on the event's payload. A step error becomes a
/// [`Diagnostic`] named after it (see [`diagnostic`]).
pub async fn handle_step(
    step: Step,
    event: LambdaEvent<Value>,
    resolver: &dyn SecretResolver,
) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    let started = Instant::now();
    let migration_id = migration_id_for_logs(&payload).unwrap_or("").to_owned();
    tracing::info!(
        step = step.resource_name(),
        request_id = %context.request_id,
        migration_id = %migration_id,
        "step started"
    );
    // CopyChunk stops short of Lambda's deadline with its cursor saved (`done: false`).
    let outcome = run_step_until(step, payload, resolver, Some(context.deadline())).await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(output) => {
            if step == Step::BinlogBatch {
                if let Some(line) = binlog_metrics(&migration_id, &output, now_millis()) {
                    // CloudWatch reads metrics from this line (embedded metric format).
                    println!("{line}");
                }
            }
            tracing::info!(
                step = step.resource_name(),
                request_id = %context.request_id,
                migration_id = %migration_id,
                elapsed_ms,
                "step finished"
            );
            Ok(output)
        }
        Err(error) => {
            tracing::error!(
                step = step.resource_name(),
                request_id = %context.request_id,
                migration_id = %migration_id,
                elapsed_ms,
                error_type = error.name.as_str(),
                error_message = %error.message,
                "step failed"
            );
            Err(diagnostic(&error))
        }
    }
}

/// A BinlogBatch output as a CloudWatch embedded-metric-format log line: `LagSeconds`,
/// `EventsApplied`, `RowsWritten`, `DirtyRows` in namespace `tsmigrate`, dimension
/// `MigrationId` (for lag dashboards and alarms). `None` without a migration id.
pub fn binlog_metrics(migration_id: &str, output: &Value, timestamp_ms: u64) -> Option<String> {
    if migration_id.is_empty() {
        return None;
    }
    let number = |k: &str| output.get(k).and_then(Value::as_f64);
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "tsmigrate",
                "Dimensions": [["MigrationId"]],
                "Metrics": [
                    {"Name": "LagSeconds", "Unit": "Seconds"},
                    {"Name": "EventsApplied", "Unit": "Count"},
                    {"Name": "RowsWritten", "Unit": "Count"},
                    {"Name": "DirtyRows", "Unit": "Count"}
                ]
            }]
        },
        "MigrationId": migration_id,
        "EventsApplied": number("events").unwrap_or(0.0),
        "RowsWritten": number("rows_written").unwrap_or(0.0),
        "DirtyRows": number("dirty").unwrap_or(0.0),
    });
    if let (Some(lag), Some(obj)) = (number("lag_seconds"), line.as_object_mut()) {
        obj.insert("LagSeconds".into(), lag.into());
    }
    serde_json::to_string(&line).ok()
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The whole `main` of a step function: logs, AWS clients once per cold start, then serve.
pub async fn run_step_function(step: Step) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = aws_config_loader().load().await;
    let resolver = SecretsManagerResolver::new(aws_sdk_secretsmanager::Client::new(&config));
    let resolver = &resolver;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_step(step, event, resolver).await
    }))
    .await
}

/// The whole `main` of `start-migration`: logs, the Step Functions and S3 clients once per cold
/// start, the state machine from `STATE_MACHINE_ARN`, then serve.
pub async fn run_start_migration_function() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let state_machine_arn = std::env::var(start::STATE_MACHINE_ARN_ENV).map_err(|_| {
        format!(
            "environment variable {} is not set: set it to the migration state machine's ARN",
            start::STATE_MACHINE_ARN_ENV
        )
    })?;
    let config = aws_config_loader().load().await;
    let starter = start::Starter::new(aws_sdk_sfn::Client::new(&config), state_machine_arn)
        .with_s3(aws_sdk_s3::Client::new(&config))
        .with_allowed_secrets(start::AllowedSecrets::from_env());
    let starter = &starter;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        starter.handle(event).await
    }))
    .await
}

/// The whole `main` of `execution-ended`: logs, the Secrets Manager and Step Functions clients
/// once per cold start, then serve.
pub async fn run_execution_ended_function() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = aws_config_loader().load().await;
    let resolver = SecretsManagerResolver::new(aws_sdk_secretsmanager::Client::new(&config));
    let inputs = ended::SfnInputs(aws_sdk_sfn::Client::new(&config));
    let (resolver, inputs) = (&resolver, &inputs);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        ended::handle_ended(event, inputs, resolver).await
    }))
    .await
}
