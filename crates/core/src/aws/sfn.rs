//! Starting and inspecting executions of the migration state machine: the part of
//! `start-migration` (functions/) that is not Lambda glue, shared with `tsmigrate aws start`.
//!
//! An [`ExecutionRequest`] is a validated config, a [`Mode`], the optional `verify` and a dedup
//! key (what makes two deliveries of one request the same request). Literal `{"value": …}`
//! secrets are refused (design invariant 5: the execution input is a state-machine payload).
//!
//! The execution input is `{"config": <normalized config>, "mode": …, "verify"?: …}`: the config
//! as the library serializes it, every default spelled out, so the state machine can read any
//! field with a JSONPath without guarding for its absence.
//!
//! The execution name is `<migration_id>-<mode>-<16 hex digits>`, at most 80 characters, the
//! hex digits a SHA-256 of the canonical input (object keys sorted) and the dedup key. The same
//! request therefore maps to the same name: [`start_or_find`] finds the execution of that name
//! (`DescribeExecution`) and answers with it (`started: false`) instead of starting another, and
//! Step Functions itself never runs two executions of one name (a racing `StartExecution` gets
//! the running one, or `ExecutionAlreadyExists`, answered the same way). Names stay taken for 90
//! days after an execution closes.
//!
//! IAM: `states:StartExecution` on the state machine and `states:DescribeExecution` on its
//! executions (without the latter, duplicates are still refused, but answered as started).

use std::fmt::Write as _;

use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::primitives::{DateTime, DateTimeFormat};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{self, MigrationConfig, MigrationType};

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

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full_and_incremental" => Ok(Mode::FullAndIncremental),
            "catch_up" => Ok(Mode::CatchUp),
            _ => Err("expected full_and_incremental or catch_up".to_owned()),
        }
    }
}

/// How a failed AWS call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The service was reached and said no for good (no such state machine, access denied…).
    Fatal,
    /// Throttling, a service-side error, a garbled response: the same call may succeed later.
    Transient,
    /// The request did not get an answer (network, timeout, no credentials to sign it).
    Connection,
}

/// Why an execution could not be started or described. Messages never quote config values.
#[derive(Debug, thiserror::Error)]
pub enum SfnError {
    /// The request is refused as it stands; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// tsmigrate's config serialization is inconsistent (a bug).
    #[error("{0}")]
    Bug(String),
    /// An execution of this name exists with another input.
    #[error(
        "an execution named {name} already exists with a different input; this should not \
         happen (the name hashes the input): start it under another idempotency key"
    )]
    NameTaken { name: String },
    /// `ExecutionAlreadyExists`, but the execution's ARN cannot be derived to look it up.
    #[error(
        "an execution named {name} already exists, and its ARN cannot be derived from \
         {state_machine_arn} (it must be an unqualified state machine ARN: no version, no alias)"
    )]
    ArnNotDerivable {
        name: String,
        state_machine_arn: String,
    },
    /// A Step Functions call failed.
    #[error("{operation} on {resource} failed: {detail}")]
    Aws {
        operation: &'static str,
        resource: String,
        /// The service's error code (`StateMachineDoesNotExist`, `AccessDeniedException`, …).
        code: Option<String>,
        failure: Failure,
        /// The SDK's error with its causes (no request or response bodies).
        detail: String,
    },
}

impl SfnError {
    /// How to get past this error, when there is more to say than the message.
    pub fn fix(&self) -> Option<&'static str> {
        let SfnError::Aws {
            code,
            failure,
            detail,
            ..
        } = self
        else {
            return None;
        };
        const CREDENTIALS: &str = "set AWS credentials: AWS_PROFILE (a profile in ~/.aws/config \
             or ~/.aws/credentials) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; SSO and \
             credential_process profiles are not supported by this build, export their \
             credentials first (`eval \"$(aws configure export-credentials --format env)\"`)";
        match code.as_deref() {
            Some("StateMachineDoesNotExist") => Some(
                "check the state machine ARN (the stack output StateMachineArn) and that its \
                 region is the one in use (AWS_REGION or the profile's region)",
            ),
            Some("ExecutionDoesNotExist") => Some(
                "check the execution ARN (`tsmigrate aws start` prints it) and that its region \
                 is the one in use (AWS_REGION or the profile's region)",
            ),
            Some("InvalidArn") => Some(
                "pass a full ARN: arn:aws:states:REGION:ACCOUNT:stateMachine:NAME (or \
                 …:execution:NAME:EXECUTION for status)",
            ),
            Some(c) if c.starts_with("AccessDenied") => Some(
                "grant the caller states:StartExecution on the state machine and \
                 states:DescribeExecution on its executions",
            ),
            Some(
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "InvalidClientTokenId",
            ) => Some(CREDENTIALS),
            _ if *failure == Failure::Connection && detail.contains("credential") => {
                Some(CREDENTIALS)
            }
            _ if *failure == Failure::Connection => Some(
                "check the network, the region (AWS_REGION or the profile's region) and \
                 AWS_ENDPOINT_URL if set",
            ),
            _ if *failure == Failure::Transient => Some("try again in a moment"),
            _ => None,
        }
    }
}

fn invalid(message: impl Into<String>) -> SfnError {
    SfnError::Invalid(message.into())
}

/// A validated request for one execution.
#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    pub config: MigrationConfig,
    pub mode: Mode,
    /// The execution input's optional `verify` (run the Verify step after the full copy).
    pub verify: Option<bool>,
    /// Hashed into the execution name besides the input: the same key and input give the same
    /// name, hence at most one execution.
    pub dedup_key: String,
}

/// What a request becomes: the execution's name and input.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub name: String,
    pub input: Value,
    /// `input` as sent (compact JSON).
    pub input_text: String,
}

impl ExecutionRequest {
    /// Validates `config` for an execution: every validation problem, literal secrets (they
    /// would travel in the execution input), `catch_up` without incremental migration.
    pub fn new(
        config: MigrationConfig,
        mode: Mode,
        verify: Option<bool>,
        dedup_key: impl Into<String>,
    ) -> Result<Self, SfnError> {
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
                "{} hold(s) a literal {{\"value\": …}} secret, which would travel in the \
                 execution input; use {{\"secret_arn\": \"arn:aws:secretsmanager:…\", \"key\": \
                 \"…\"}} (or {{\"env\": \"NAME\"}} set on the step functions)",
                literals.join(", ")
            )));
        }
        if mode == Mode::CatchUp && !config.has(MigrationType::Incremental) {
            return Err(invalid(
                "mode catch_up replays the binlog, but migration_types does not include \
                 \"incremental\"; add it or use mode full_and_incremental",
            ));
        }
        Ok(ExecutionRequest {
            config,
            mode,
            verify,
            dedup_key: dedup_key.into(),
        })
    }

    /// The execution input and name.
    pub fn prepare(&self) -> Result<Prepared, SfnError> {
        let config = serde_json::to_value(&self.config)
            .map_err(|e| SfnError::Bug(format!("cannot serialize the config: {e}")))?;
        // The state machine's steps parse this again: it must mean the same config.
        match config::from_json_value(&config) {
            Ok(again) if again == self.config => {}
            Ok(_) => {
                return Err(SfnError::Bug(
                    "the normalized config does not parse back to the same config (a bug in \
                     tsmigrate's config serialization); please report it"
                        .to_owned(),
                ))
            }
            Err(e) => {
                return Err(SfnError::Bug(format!(
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
                "the execution input is {} bytes, above Step Functions' limit of \
                 {MAX_INPUT_BYTES}; shorten objects.tables (e.g. use \"*\" with exclude_tables)",
                input_text.len()
            )));
        }
        let name = execution_name(
            &self.config.migration_id,
            self.mode,
            &input,
            &self.dedup_key,
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

/// The outcome of [`start_or_find`] (and `start-migration`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub execution_arn: String,
    pub execution_name: String,
    pub migration_id: String,
    pub mode: Mode,
    /// False when an execution of this name already existed (a duplicate request): nothing new
    /// was started.
    pub started: bool,
    /// The existing execution's status (`RUNNING`, `SUCCEEDED`, …) when `started` is false and
    /// it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_status: Option<String>,
}

/// Starts the execution for `request` on `state_machine_arn`, or finds the one an earlier
/// delivery of the same request started.
///
/// The execution is looked up first (`DescribeExecution` of the name's ARN), so a duplicate
/// answers `started: false` with the execution's status. Two deliveries racing past the lookup
/// both call `StartExecution`; Step Functions then starts one execution and answers both with
/// it (same name and input while it runs), so both report `started: true` but still only one
/// execution exists.
pub async fn start_or_find(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    request: &ExecutionRequest,
) -> Result<Started, SfnError> {
    let prepared = request.prepare()?;
    let answer = |execution_arn: String, started: bool, existing_status: Option<String>| Started {
        execution_arn,
        execution_name: prepared.name.clone(),
        migration_id: request.config.migration_id.clone(),
        mode: request.mode,
        started,
        existing_status,
    };
    let derived = execution_arn(state_machine_arn, &prepared.name);
    if let Some(arn) = &derived {
        if let Some(status) = lookup(sfn, arn, &prepared).await? {
            return Ok(answer(arn.clone(), false, Some(status)));
        }
    }
    let sent = sfn
        .start_execution()
        .state_machine_arn(state_machine_arn)
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
            let arn = derived.ok_or_else(|| SfnError::ArnNotDerivable {
                name: prepared.name.clone(),
                state_machine_arn: state_machine_arn.to_owned(),
            })?;
            let status = lookup(sfn, &arn, &prepared).await?;
            Ok(answer(arn, false, status))
        }
        Err(e) => Err(aws_error("StartExecution", state_machine_arn, &e)),
    }
}

/// The status of execution `arn` if it exists with `prepared`'s input; `None` if it does not
/// exist or cannot be read (no `states:DescribeExecution` permission: then `StartExecution`
/// decides). An execution of that name with another input is an error.
async fn lookup(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    prepared: &Prepared,
) -> Result<Option<String>, SfnError> {
    let described = match sfn.describe_execution().execution_arn(arn).send().await {
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
        return Err(SfnError::NameTaken {
            name: prepared.name.clone(),
        });
    }
    Ok(Some(described.status().as_str().to_owned()))
}

/// What `DescribeExecution` says about an execution (never its input or output: the input
/// holds the config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    pub name: Option<String>,
    pub state_machine_arn: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, `PENDING_REDRIVE`.
    pub status: String,
    /// RFC 3339.
    pub start_date: String,
    pub stop_date: Option<String>,
    /// The error name of a failed execution (`Migration.Fatal`, `States.Timeout`, …).
    pub error: Option<String>,
    /// Its cause (the failing step's message).
    pub cause: Option<String>,
}

impl ExecutionInfo {
    /// The execution ended without succeeding.
    pub fn unsuccessful(&self) -> bool {
        matches!(
            self.status.as_str(),
            "FAILED" | "TIMED_OUT" | "ABORTED" | "PENDING_REDRIVE"
        )
    }
}

/// `DescribeExecution` of `execution_arn`.
pub async fn describe(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<ExecutionInfo, SfnError> {
    let d = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| aws_error("DescribeExecution", execution_arn, &e))?;
    Ok(ExecutionInfo {
        execution_arn: d.execution_arn().to_owned(),
        name: d.name().map(str::to_owned),
        state_machine_arn: d.state_machine_arn().to_owned(),
        status: d.status().as_str().to_owned(),
        start_date: rfc3339(d.start_date()),
        stop_date: d.stop_date().map(rfc3339),
        error: d.error().map(str::to_owned),
        cause: d.cause().map(str::to_owned),
    })
}

fn rfc3339(date: &DateTime) -> String {
    date.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| format!("{} s since the epoch", date.secs()))
}

fn aws_error<E, R>(operation: &'static str, resource: &str, e: &SdkError<E, R>) -> SfnError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (code, failure) = match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => (None, Failure::Connection),
        SdkError::ResponseError(_) => (None, Failure::Transient),
        SdkError::ServiceError(service) => {
            let code = service.err().code().map(str::to_owned);
            let failure = match code.as_deref() {
                Some(
                    "ExecutionLimitExceeded"
                    | "ThrottlingException"
                    | "ServiceUnavailable"
                    | "InternalServerError"
                    | "InternalFailure"
                    | "RequestTimeout",
                ) => Failure::Transient,
                _ => Failure::Fatal,
            };
            (code, failure)
        }
        // Building the request failed: in practice no credentials or no region.
        SdkError::ConstructionFailure(_) => (None, Failure::Connection),
        _ => (None, Failure::Fatal),
    };
    SfnError::Aws {
        operation,
        resource: resource.to_owned(),
        code,
        failure,
        detail: DisplayErrorContext(e).to_string(),
    }
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

    #[test]
    fn modes_parse_from_their_names() {
        for mode in [Mode::FullAndIncremental, Mode::CatchUp] {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        }
        assert!("full".parse::<Mode>().is_err());
    }
}
