//! `start-migration`: one event in, one `StartExecution` of the migration state machine out.
//!
//! Accepted events (anything else is `Migration.ConfigInvalid`, naming the shapes below):
//!
//! - a direct invoke `{"config": {…}, "mode": "full_and_incremental" | "catch_up",
//!   "verify": true | false?, "idempotency_key": "…"?}` (`mode` defaults to
//!   `full_and_incremental`; `verify` is passed on to the state machine when given);
//! - an EventBridge event (a rule's target, or EventBridge Scheduler with the full event) whose
//!   `detail` is that same object.
//!
//! S3 object-created events (a config file dropped into a bucket) are recognised and refused
//! with a message saying to send the config inline through EventBridge: reading the object would
//! need the S3 SDK, whose build cost this crate does not take (see functions/README.md).
//!
//! The config is parsed and validated (`Migration.ConfigInvalid` lists every problem), literal
//! `{"value": …}` secrets are refused (design invariant 5: the execution input is a state-machine
//! payload), and the execution input is `{"config": <normalized config>, "mode": …, "verify": …}`
//! (`verify` only when the request has it): the config
//! as the library serializes it, every default spelled out, so the state machine can read any
//! field with a JSONPath without guarding for its absence.
//!
//! The execution name is `<migration_id>-<mode>-<16 hex digits>`, at most 80 characters, the
//! hex digits a SHA-256 of the canonical input (object keys sorted) and a dedup key: the
//! EventBridge event id, else the request's `idempotency_key`, else the Lambda request id (which
//! Lambda keeps when it retries an asynchronous invoke). A redelivered event therefore maps to
//! the same name; the function finds the execution of that name (`DescribeExecution`) and
//! answers with it (`"started": false`) instead of starting another, and Step Functions itself
//! never runs two executions of one name (a racing `StartExecution` gets the running one, or
//! `ExecutionAlreadyExists`, which is answered the same way). Names stay taken for 90 days after
//! an execution closes. A different config, mode or event gives another name. Two executions of
//! one migration never write at once anyway: the lease taken by `Begin` fences them (invariant 4).
//!
//! IAM: `states:StartExecution` on the state machine and `states:DescribeExecution` on its
//! executions (without the latter, duplicates are still refused, but answered as started).

use std::fmt::Write as _;

use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tsmigrate::config::{self, MigrationConfig, MigrationType};
use tsmigrate::steps::error::{ErrorName, StepError};

use crate::diagnostic;

/// Environment variable holding the state machine's ARN.
pub const STATE_MACHINE_ARN_ENV: &str = "STATE_MACHINE_ARN";
/// Step Functions' limit on an execution name.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;
/// Step Functions' limit on an execution input (256 KiB of UTF-8).
pub const MAX_INPUT_BYTES: usize = 262_144;
/// Hex digits of the input hash in an execution name (64 bits).
const HASH_HEX_DIGITS: usize = 16;

/// How the state machine runs a migration (the execution input's `mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Schema and full copy as configured, then the binlog loop without end.
    #[default]
    FullAndIncremental,
    /// Replay the binlog until caught up, then finish (scheduled catch-up runs).
    CatchUp,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::FullAndIncremental => "full_and_incremental",
            Mode::CatchUp => "catch_up",
        }
    }
}

/// Where a start request came from; decides the dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An EventBridge event, by its id.
    EventBridge { event_id: String },
    /// A direct invoke with the caller's `idempotency_key`.
    IdempotencyKey(String),
    /// A direct invoke without a key: the Lambda request id (empty outside Lambda).
    LambdaRequest { request_id: String },
}

impl Origin {
    /// The text hashed into the execution name besides the input.
    pub fn dedup_key(&self) -> String {
        match self {
            Origin::EventBridge { event_id } => format!("eventbridge:{event_id}"),
            Origin::IdempotencyKey(key) => format!("key:{key}"),
            Origin::LambdaRequest { request_id } => format!("lambda-request:{request_id}"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Origin::EventBridge { .. } => "eventbridge",
            Origin::IdempotencyKey(_) => "idempotency_key",
            Origin::LambdaRequest { .. } => "lambda_request",
        }
    }
}

/// The object a direct invoke sends, and an EventBridge event carries as `detail`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    config: Value,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    idempotency_key: Option<String>,
    #[serde(default)]
    verify: Option<bool>,
}

/// A parsed, validated start request.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub config: MigrationConfig,
    pub mode: Mode,
    /// The execution input's optional `verify` (run the Verify step after the full copy).
    pub verify: Option<bool>,
    pub origin: Origin,
}

/// What a start request becomes: the execution's name and input.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub name: String,
    pub input: Value,
    /// `input` as sent (compact JSON).
    pub input_text: String,
}

fn invalid(message: impl Into<String>) -> StepError {
    StepError::new(ErrorName::ConfigInvalid, message)
}

const SHAPES: &str = "expected a direct invoke {\"config\": {…}, \"mode\": \"full_and_incremental\" | \"catch_up\"} \
     or an EventBridge event whose detail is that object";

/// Recognises the event's shape and validates the request in it. `request_id` is the Lambda
/// request id (the dedup key of a direct invoke without `idempotency_key`). Error messages never
/// quote the event's values.
pub fn parse_event(payload: &Value, request_id: &str) -> Result<StartRequest, StepError> {
    let Some(object) = payload.as_object() else {
        return Err(invalid(format!("the event is not a JSON object; {SHAPES}")));
    };
    if is_s3_event(payload) {
        return Err(invalid(
            "S3 object events are not supported by this build of start-migration (it does not \
             read S3 objects); send the config inline: an EventBridge event whose detail is \
             {\"config\": {…}, \"mode\": …}, or a direct invoke with that object",
        ));
    }
    if object.contains_key("detail-type") && object.contains_key("detail") {
        let event_id = object
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("the EventBridge event has no \"id\""))?;
        let detail = object.get("detail").unwrap_or(&Value::Null);
        let body = parse_body(detail, "the EventBridge event's detail")?;
        let origin = match body.idempotency_key.clone() {
            Some(key) => Origin::IdempotencyKey(key),
            None => Origin::EventBridge {
                event_id: event_id.to_owned(),
            },
        };
        return validate_body(body, origin);
    }
    if object.contains_key("config") {
        let body = parse_body(payload, "the event")?;
        let origin = match body.idempotency_key.clone() {
            Some(key) => Origin::IdempotencyKey(key),
            None => Origin::LambdaRequest {
                request_id: request_id.to_owned(),
            },
        };
        return validate_body(body, origin);
    }
    let mut fields: Vec<&str> = object.keys().map(String::as_str).take(10).collect();
    fields.sort_unstable();
    Err(invalid(format!(
        "unrecognized event (top-level fields: [{}]); {SHAPES}",
        fields.join(", ")
    )))
}

fn is_s3_event(payload: &Value) -> bool {
    let eventbridge_s3 = payload.get("source").and_then(Value::as_str) == Some("aws.s3")
        && payload.get("detail-type").and_then(Value::as_str) == Some("Object Created");
    let notification = payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            records
                .iter()
                .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:s3"))
        });
    eventbridge_s3 || notification
}

fn parse_body(value: &Value, what: &str) -> Result<StartBody, StepError> {
    StartBody::deserialize(value).map_err(|e| {
        // serde's text names fields and variants, and for a bad `mode` the offending value,
        // which is not a secret; the config itself is a `Value` here and is not quoted.
        invalid(format!("{what}: {e}; {SHAPES}"))
    })
}

fn validate_body(body: StartBody, origin: Origin) -> Result<StartRequest, StepError> {
    if let Origin::IdempotencyKey(key) = &origin {
        if key.is_empty() || key.len() > 256 {
            return Err(invalid(
                "idempotency_key must be 1-256 characters (or left out)",
            ));
        }
    }
    let config =
        config::from_json_value(&body.config).map_err(|e| invalid(format!("config: {e}")))?;
    if let Err(problems) = config.validate() {
        return Err(invalid(problems.to_string()));
    }
    let literals: Vec<&str> = config
        .secret_refs()
        .into_iter()
        .filter(|(_, r)| r.is_literal())
        .map(|(path, _)| path)
        .collect();
    if !literals.is_empty() {
        return Err(invalid(format!(
            "{} hold(s) a literal {{\"value\": …}} secret, which would travel in the execution \
             input; use {{\"secret_arn\": \"arn:aws:secretsmanager:…\", \"key\": \"…\"}} (or \
             {{\"env\": \"NAME\"}} set on the step functions)",
            literals.join(", ")
        )));
    }
    if body.mode == Mode::CatchUp && !config.has(MigrationType::Incremental) {
        return Err(invalid(
            "mode catch_up replays the binlog, but migration_types does not include \
             \"incremental\"; add it or use mode full_and_incremental",
        ));
    }
    Ok(StartRequest {
        config,
        mode: body.mode,
        verify: body.verify,
        origin,
    })
}

impl StartRequest {
    /// The execution input and name.
    pub fn prepare(&self) -> Result<Prepared, StepError> {
        let config = serde_json::to_value(&self.config)
            .map_err(|e| StepError::fatal(format!("cannot serialize the config: {e}")))?;
        // The state machine's steps parse this again: it must mean the same config.
        match config::from_json_value(&config) {
            Ok(again) if again == self.config => {}
            Ok(_) => {
                return Err(StepError::fatal(
                    "the normalized config does not parse back to the same config (a bug in \
                     tsmigrate's config serialization); please report it",
                ))
            }
            Err(e) => {
                return Err(StepError::fatal(format!(
                    "the normalized config does not parse back (a bug in tsmigrate's config \
                     serialization; please report it): {e}"
                )))
            }
        }
        let mut input = serde_json::json!({"config": config, "mode": self.mode.as_str()});
        if let Some(verify) = self.verify {
            input["verify"] = Value::Bool(verify);
        }
        let input_text = input.to_string();
        if input_text.len() > MAX_INPUT_BYTES {
            return Err(invalid(format!(
                "the execution input is {} bytes, above Step Functions' limit of {MAX_INPUT_BYTES}; \
                 shorten objects.tables (e.g. use \"*\" with exclude_tables)",
                input_text.len()
            )));
        }
        let name = execution_name(
            &self.config.migration_id,
            self.mode,
            &input,
            &self.origin.dedup_key(),
        );
        Ok(Prepared {
            name,
            input,
            input_text,
        })
    }
}

/// `<migration_id>-<mode>-<hash>`: at most 80 characters of `[A-Za-z0-9_-]`. The migration id
/// is shortened when needed (the hash covers the whole input, id included).
pub fn execution_name(migration_id: &str, mode: Mode, input: &Value, dedup_key: &str) -> String {
    let mut canonical = String::new();
    write_canonical(input, &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(canonical.as_bytes());
    hasher.update([0u8]);
    hasher.update(dedup_key.as_bytes());
    let digest = hasher.finalize();
    let mut hash = String::with_capacity(HASH_HEX_DIGITS);
    for byte in digest.iter().take(HASH_HEX_DIGITS / 2) {
        let _ = write!(hash, "{byte:02x}");
    }
    let mode = mode.as_str();
    let budget = MAX_EXECUTION_NAME_LEN - HASH_HEX_DIGITS - mode.len() - 2;
    let id: String = migration_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(budget)
        .collect();
    format!("{id}-{mode}-{hash}")
}

/// JSON with object keys sorted at every level, no whitespace: the same text for the same
/// value whatever the key order it was built with.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The answer of `start-migration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub execution_arn: String,
    pub execution_name: String,
    pub migration_id: String,
    pub mode: Mode,
    /// False when an execution of this name already existed (a duplicate event): nothing new
    /// was started.
    pub started: bool,
    /// The existing execution's status (`RUNNING`, `SUCCEEDED`, …) when `started` is false and
    /// it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_status: Option<String>,
}

/// Starts executions of one state machine. Build it once per cold start.
#[derive(Debug, Clone)]
pub struct Starter {
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

impl Starter {
    pub fn new(sfn: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Starter {
            sfn,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// One invocation: parse, validate, start. Errors are [`Diagnostic`]s named
    /// `Migration.*`.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let (payload, context) = event.into_parts();
        let migration_id = crate::migration_id_for_logs(&payload)
            .or_else(|| payload.get("detail").and_then(crate::migration_id_for_logs))
            .unwrap_or("")
            .to_owned();
        let outcome = async {
            let request = parse_event(&payload, &context.request_id)?;
            let started = self.start(&request).await?;
            serde_json::to_value(&started)
                .map_err(|e| StepError::fatal(format!("cannot encode the answer: {e}")))
        }
        .await;
        match outcome {
            Ok(answer) => Ok(answer),
            Err(error) => {
                tracing::error!(
                    request_id = %context.request_id,
                    migration_id = %migration_id,
                    error_type = error.name.as_str(),
                    error_message = %error.message,
                    "start-migration failed"
                );
                Err(diagnostic(&error))
            }
        }
    }

    /// Starts the execution for `request`, or finds the one a previous delivery started.
    ///
    /// The execution is looked up first (`DescribeExecution` of the name's ARN), so a duplicate
    /// answers `started: false` with the execution's status. Two deliveries racing past the
    /// lookup both call `StartExecution`; Step Functions then starts one execution and answers
    /// both with it (same name and input while it runs), so both report `started: true` but
    /// still only one execution exists.
    pub async fn start(&self, request: &StartRequest) -> Result<Started, StepError> {
        let prepared = request.prepare()?;
        let answer = |execution_arn: String, started: bool, existing_status: Option<String>| {
            tracing::info!(
                migration_id = %request.config.migration_id,
                mode = request.mode.as_str(),
                origin = request.origin.kind(),
                execution_name = %prepared.name,
                execution_arn = %execution_arn,
                started,
                "{}",
                if started {
                    "execution started"
                } else {
                    "execution already exists (duplicate event): nothing started"
                }
            );
            Started {
                execution_arn,
                execution_name: prepared.name.clone(),
                migration_id: request.config.migration_id.clone(),
                mode: request.mode,
                started,
                existing_status,
            }
        };
        let derived = execution_arn(&self.state_machine_arn, &prepared.name);
        if let Some(arn) = &derived {
            if let Some(status) = self.lookup(arn, &prepared).await? {
                return Ok(answer(arn.clone(), false, Some(status)));
            }
        }
        let sent = self
            .sfn
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(&prepared.name)
            .input(&prepared.input_text)
            .send()
            .await;
        match sent {
            Ok(output) => Ok(answer(output.execution_arn().to_owned(), true, None)),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), StartExecutionError::ExecutionAlreadyExists(_)) =>
            {
                // Started by a delivery racing with this one, or the lookup was not allowed.
                let arn = derived.ok_or_else(|| {
                    StepError::fatal(format!(
                        "an execution named {} already exists, and its ARN cannot be derived \
                         from {} ({STATE_MACHINE_ARN_ENV} must be an unqualified state machine \
                         ARN)",
                        prepared.name, self.state_machine_arn
                    ))
                })?;
                let status = self.lookup(&arn, &prepared).await?;
                Ok(answer(arn, false, status))
            }
            Err(e) => Err(start_error(&self.state_machine_arn, &e)),
        }
    }

    /// The status of execution `arn` if it exists with `prepared`'s input; `None` if it does
    /// not exist or cannot be read (no `states:DescribeExecution` permission: then
    /// `StartExecution` decides). An execution of that name with another input is an error.
    async fn lookup(&self, arn: &str, prepared: &Prepared) -> Result<Option<String>, StepError> {
        let described = match self
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(d) => d,
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DescribeExecutionError::ExecutionDoesNotExist(_)) =>
            {
                return Ok(None)
            }
            Err(e) => {
                tracing::warn!(
                    execution_arn = %arn,
                    error = %DisplayErrorContext(&e),
                    "DescribeExecution failed; relying on StartExecution's name check"
                );
                return Ok(None);
            }
        };
        let same = described
            .input()
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .is_some_and(|existing| existing == prepared.input);
        if !same {
            return Err(StepError::fatal(format!(
                "an execution named {} already exists with a different input; this should not \
                 happen (the name hashes the input): start it under another idempotency_key",
                prepared.name
            )));
        }
        Ok(Some(described.status().as_str().to_owned()))
    }
}

/// `arn:…:states:R:A:stateMachine:M` + name → `arn:…:states:R:A:execution:M:name`.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let parts: Vec<&str> = state_machine_arn.split(':').collect();
    if parts.len() != 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "stateMachine" {
        return None;
    }
    Some(format!(
        "{}:{}:{}:{}:{}:execution:{}:{name}",
        parts[0], parts[1], parts[2], parts[3], parts[4], parts[6]
    ))
}

fn start_error<R: std::fmt::Debug>(
    state_machine_arn: &str,
    e: &SdkError<StartExecutionError, R>,
) -> StepError {
    let text = format!(
        "StartExecution on {state_machine_arn} failed: {}",
        DisplayErrorContext(e)
    );
    let name = match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ErrorName::ConnectionFailed,
        SdkError::ResponseError(_) => ErrorName::Transient,
        SdkError::ServiceError(service) => match service.err() {
            StartExecutionError::ExecutionLimitExceeded(_) => ErrorName::Transient,
            other => match other.code() {
                Some(
                    "ThrottlingException"
                    | "ServiceUnavailable"
                    | "InternalServerError"
                    | "InternalFailure"
                    | "RequestTimeout",
                ) => ErrorName::Transient,
                _ => ErrorName::Fatal,
            },
        },
        _ => ErrorName::Fatal,
    };
    StepError::new(name, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":"x"}],"x":null}}"#).unwrap();
        let mut out = String::new();
        write_canonical(&a, &mut out);
        assert_eq!(out, r#"{"a":{"x":null,"y":[1,{"c":"x","d":2}]},"b":1}"#);
    }

    #[test]
    fn execution_arn_is_derived_from_the_state_machine_arn() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:mig",
                "n-1"
            )
            .as_deref(),
            Some("arn:aws:states:us-east-1:123456789012:execution:mig:n-1")
        );
        assert_eq!(
            execution_arn("arn:aws:states:us-east-1:1:stateMachine:mig:3", "n"),
            None
        );
        assert_eq!(execution_arn("mig", "n"), None);
    }

    #[test]
    fn long_ids_are_shortened_to_80_characters() {
        let id = "a".repeat(64);
        for mode in [Mode::FullAndIncremental, Mode::CatchUp] {
            let name = execution_name(&id, mode, &serde_json::json!({}), "k");
            assert!(name.len() <= MAX_EXECUTION_NAME_LEN, "{name}");
            assert!(name.contains(mode.as_str()));
        }
        let short = execution_name("shop", Mode::CatchUp, &serde_json::json!({}), "k");
        assert!(
            short.starts_with("shop-catch_up-") && short.len() == 14 + 16,
            "{short}"
        );
    }
}
