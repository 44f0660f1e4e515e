//! `start-migration`: one event in, one `StartExecution` of the migration state machine out.
//!
//! Accepted events (anything else is `Migration.ConfigInvalid`, naming the shapes below):
//!
//! - a direct invoke `{"config": {…}, "mode": "full_and_incremental" | "catch_up",
//!   "verify": true | false?, "idempotency_key": "…"?}` (`mode` defaults to
//!   `full_and_incremental`; `verify` is passed on to the state machine when given);
//! - an EventBridge event (a rule's target, or EventBridge Scheduler with the full event) whose
//!   `detail` is that same object;
//! - an S3 object-created event naming a config file: a direct S3 notification
//!   (`Records[0].s3`, exactly one record, `eventName` `ObjectCreated:*`) or an EventBridge
//!   `Object Created` event from S3 (`detail.bucket.name`, `detail.object.key`). The object is
//!   read with `GetObject` (the `versionId` of the event when it has one) and holds either a bare
//!   config or the direct-invoke object above. Notification keys are URL-decoded (S3 encodes
//!   them, a space as `+`); EventBridge keys are used as they are.
//!
//! Everything else is shared with `tsmigrate aws start` in [`tsmigrate_core::aws::sfn`]: validation
//! (`Migration.ConfigInvalid` lists every problem; literal `{"value": …}` secrets are refused),
//! the execution input (the normalized config, every default spelled out, plus `mode` and
//! `verify`), the deterministic execution name and start-or-find-existing. This module only
//! recognises the event, picks the dedup key and turns errors into [`Diagnostic`]s.
//!
//! The dedup key, hashed into the execution name with the input: the EventBridge event id, else
//! the request's `idempotency_key`, else the Lambda request id (which Lambda keeps when it
//! retries an asynchronous invoke); for S3 events the bucket, key and the upload's `sequencer`
//! (else `versionId`, else ETag), which S3 repeats when it redelivers and which is the same in
//! both S3 event forms. A redelivered event therefore maps to the same name; the function finds
//! the execution of that name and answers with it (`"started": false`) instead of starting
//! another. A different config, mode or event (a new upload) gives another name. Two executions
//! of one migration never write at once anyway: the lease taken by `Begin` fences them
//! (invariant 4).
//!
//! The event shapes are read from `serde_json::Value` by the few fields used, not through
//! `aws_lambda_events`: its `S3EventRecord` requires `eventTime`, `userIdentity` and
//! `requestParameters`, which this function never reads (an event without them would be refused
//! for fields it ignores), it has no type for S3's EventBridge "Object Created" detail, and it
//! would bring chrono into the Lambda build for one envelope.
//!
//! Secrets: when `TSMIGRATE_ALLOWED_SECRET_ARNS` is set (the SAM template sets it from
//! `SourceSecretArns`), a config is refused unless every credential is a `secret_arn` reference
//! to one of those ARNs ([`AllowedSecrets`]). The step functions' role can read those secrets
//! only, so another ARN would fail at the first step anyway; refusing it here fails the start,
//! visibly, before an execution takes the lease. `{"env": …}` references are refused too: in
//! Lambda the environment holds no migration credentials, only the function's own AWS keys,
//! which must never be sent to a database as a password.
//!
//! IAM: `states:StartExecution` on the state machine, `states:DescribeExecution` on its
//! executions (without it, duplicates are still refused, but answered as started), and
//! `s3:GetObject` on the config objects for S3 events.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Deserialize;
use serde_json::Value;
use tsmigrate_core::aws::sfn::{self as shared, Failure, SfnError};
use tsmigrate_core::config::{self, MigrationConfig, SecretRef};
use tsmigrate_core::steps::error::{ErrorName, StepError};

use crate::diagnostic;

pub use tsmigrate_core::aws::sfn::{
    execution_arn, execution_name, write_canonical, ExecutionRequest, Mode, Prepared, Started,
    MAX_EXECUTION_NAME_LEN, MAX_INPUT_BYTES,
};

/// Environment variable holding the state machine's ARN.
pub const STATE_MACHINE_ARN_ENV: &str = "STATE_MACHINE_ARN";
/// Environment variable listing the Secrets Manager ARNs configs may reference (comma-separated).
pub const ALLOWED_SECRET_ARNS_ENV: &str = "TSMIGRATE_ALLOWED_SECRET_ARNS";
/// The largest config object read from S3 (the execution input's limit is 256 KiB anyway).
pub const MAX_CONFIG_OBJECT_BYTES: i64 = 1 << 20;

/// Where a start request came from; decides the dedup key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An EventBridge event, by its id.
    EventBridge { event_id: String },
    /// A direct invoke (or a config object) with the caller's `idempotency_key`.
    IdempotencyKey(String),
    /// A direct invoke without a key: the Lambda request id (empty outside Lambda).
    LambdaRequest { request_id: String },
    /// An S3 object-created event: the object and the upload's `revision` (sequencer, else
    /// version id, else ETag).
    S3Object {
        bucket: String,
        key: String,
        revision: String,
    },
}

impl Origin {
    /// The text hashed into the execution name besides the input.
    pub fn dedup_key(&self) -> String {
        match self {
            Origin::EventBridge { event_id } => format!("eventbridge:{event_id}"),
            Origin::IdempotencyKey(key) => format!("key:{key}"),
            Origin::LambdaRequest { request_id } => format!("lambda-request:{request_id}"),
            Origin::S3Object {
                bucket,
                key,
                revision,
            } => format!("s3:{bucket}/{key}@{revision}"),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Origin::EventBridge { .. } => "eventbridge",
            Origin::IdempotencyKey(_) => "idempotency_key",
            Origin::LambdaRequest { .. } => "lambda_request",
            Origin::S3Object { .. } => "s3",
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
    pub execution: ExecutionRequest,
    pub origin: Origin,
}

impl StartRequest {
    /// The execution input and name.
    pub fn prepare(&self) -> Result<Prepared, StepError> {
        self.execution.prepare().map_err(|e| step_error(&e))
    }
}

/// A config object an S3 event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    pub bucket: String,
    /// Decoded: the object's real key.
    pub key: String,
    /// Read this version (versioned buckets), so the config is the one the event announced.
    pub version_id: Option<String>,
    /// What identifies the upload: `sequencer`, else `versionId`, else the ETag.
    pub revision: String,
}

impl S3Object {
    fn origin(&self) -> Origin {
        Origin::S3Object {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            revision: self.revision.clone(),
        }
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// What an event asks for.
#[derive(Debug, Clone)]
pub enum StartEvent {
    /// The request is in the event.
    Inline(Box<StartRequest>),
    /// The request is in an S3 object: read it, then [`parse_config_object`].
    S3(S3Object),
}

fn invalid(message: impl Into<String>) -> StepError {
    StepError::new(ErrorName::ConfigInvalid, message)
}

/// A shared start error as the state machine's callers see it.
fn step_error(e: &SfnError) -> StepError {
    let name = match e {
        SfnError::Invalid(_) => ErrorName::ConfigInvalid,
        SfnError::Aws {
            failure: Failure::Connection,
            ..
        } => ErrorName::ConnectionFailed,
        SfnError::Aws {
            failure: Failure::Transient,
            ..
        } => ErrorName::Transient,
        _ => ErrorName::Fatal,
    };
    let mut message = e.to_string();
    if let SfnError::ArnNotDerivable { .. } = e {
        message.push_str(&format!(" (check {STATE_MACHINE_ARN_ENV})"));
    }
    StepError::new(name, message)
}

const SHAPES: &str = "expected a direct invoke {\"config\": {…}, \"mode\": \"full_and_incremental\" | \"catch_up\"}, \
     an EventBridge event whose detail is that object, or an S3 object-created event (S3 \
     notification or EventBridge) naming a config file";

/// Recognises the event's shape and validates the request in it (or names the S3 object that
/// holds it). `request_id` is the Lambda request id (the dedup key of a direct invoke without
/// `idempotency_key`). Error messages never quote the config's values.
pub fn parse_event(payload: &Value, request_id: &str) -> Result<StartEvent, StepError> {
    let Some(object) = payload.as_object() else {
        return Err(invalid(format!("the event is not a JSON object; {SHAPES}")));
    };
    if let Some(s3) = s3_event(payload) {
        return s3.map(StartEvent::S3);
    }
    if object.contains_key("detail-type") && object.contains_key("detail") {
        let event_id = object
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| invalid("the EventBridge event has no \"id\""))?;
        let detail = object.get("detail").unwrap_or(&Value::Null);
        let body = parse_body(detail, "the EventBridge event's detail")?;
        let origin = Origin::EventBridge {
            event_id: event_id.to_owned(),
        };
        return validate_body(body, origin).map(|r| StartEvent::Inline(Box::new(r)));
    }
    if object.contains_key("config") {
        let body = parse_body(payload, "the event")?;
        let origin = Origin::LambdaRequest {
            request_id: request_id.to_owned(),
        };
        return validate_body(body, origin).map(|r| StartEvent::Inline(Box::new(r)));
    }
    let mut fields: Vec<&str> = object.keys().map(String::as_str).take(10).collect();
    fields.sort_unstable();
    Err(invalid(format!(
        "unrecognized event (top-level fields: [{}]); {SHAPES}",
        fields.join(", ")
    )))
}

/// The non-empty string at `path` in `v`.
fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `Some` when the event comes from S3 (then the object, or why the event is unusable).
fn s3_event(payload: &Value) -> Option<Result<S3Object, StepError>> {
    if payload.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return Some(eventbridge_s3_object(payload));
    }
    let records = payload.get("Records")?.as_array()?;
    records
        .iter()
        .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:s3"))
        .then(|| notification_object(records))
}

fn eventbridge_s3_object(payload: &Value) -> Result<S3Object, StepError> {
    if payload.get("detail-type").and_then(Value::as_str) != Some("Object Created") {
        return Err(invalid(
            "only S3 \"Object Created\" events start a migration; narrow the EventBridge rule \
             to detail-type [\"Object Created\"]",
        ));
    }
    let detail = payload.get("detail").unwrap_or(&Value::Null);
    let (Some(bucket), Some(key)) = (
        str_at(detail, &["bucket", "name"]),
        str_at(detail, &["object", "key"]),
    ) else {
        return Err(invalid(
            "the S3 Object Created event has no detail.bucket.name or detail.object.key",
        ));
    };
    let version_id = str_at(detail, &["object", "version-id"]);
    let revision = str_at(detail, &["object", "sequencer"])
        .or_else(|| version_id.clone())
        .or_else(|| str_at(detail, &["object", "etag"]));
    s3_object(bucket, key, version_id, revision)
}

fn notification_object(records: &[Value]) -> Result<S3Object, StepError> {
    let [record] = records else {
        return Err(invalid(format!(
            "the S3 notification has {} records; start-migration takes one (S3 sends one per \
             object)",
            records.len()
        )));
    };
    let event_name = str_at(record, &["eventName"]).unwrap_or_default();
    if !event_name.starts_with("ObjectCreated:") {
        return Err(invalid(format!(
            "S3 event {event_name:?} does not start a migration; configure the bucket \
             notification for s3:ObjectCreated:* only"
        )));
    }
    let (Some(bucket), Some(encoded)) = (
        str_at(record, &["s3", "bucket", "name"]),
        str_at(record, &["s3", "object", "key"]),
    ) else {
        return Err(invalid(
            "the S3 notification has no s3.bucket.name or s3.object.key",
        ));
    };
    let key = decode_s3_key(&encoded)?;
    let version_id = str_at(record, &["s3", "object", "versionId"]);
    let revision = str_at(record, &["s3", "object", "sequencer"])
        .or_else(|| version_id.clone())
        .or_else(|| str_at(record, &["s3", "object", "eTag"]));
    s3_object(bucket, key, version_id, revision)
}

fn s3_object(
    bucket: String,
    key: String,
    version_id: Option<String>,
    revision: Option<String>,
) -> Result<S3Object, StepError> {
    let revision = revision.ok_or_else(|| {
        invalid(format!(
            "the S3 event for s3://{bucket}/{key} has no sequencer, version id or ETag to tell \
             its deliveries apart"
        ))
    })?;
    Ok(S3Object {
        bucket,
        key,
        version_id,
        revision,
    })
}

/// An S3 notification's object key as S3 stores it: `+` is a space, `%XX` a byte (UTF-8).
/// `percent-encoding` decodes; a malformed escape (`%`, `%4`, `%zz`), which that crate would
/// pass through as text, is refused first, so a key is never read as something S3 did not send.
pub fn decode_s3_key(encoded: &str) -> Result<String, StepError> {
    let bad = || {
        invalid(format!(
            "the S3 notification's object key {encoded:?} is not valid URL encoding"
        ))
    };
    let malformed = encoded.split('%').skip(1).any(|escape| {
        escape
            .as_bytes()
            .get(..2)
            .is_none_or(|hex| !hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(bad());
    }
    percent_encoding::percent_decode_str(&encoded.replace('+', " "))
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| bad())
}

/// The request in a config object's bytes: a bare config (mode `full_and_incremental`), or the
/// direct-invoke object `{"config": …, "mode": …, "verify"?, "idempotency_key"?}`.
pub fn parse_config_object(object: &S3Object, bytes: &[u8]) -> Result<StartRequest, StepError> {
    let url = object.url();
    let text = std::str::from_utf8(bytes)
        .map_err(|_| invalid(format!("{url} is not UTF-8 text (expected a JSON config)")))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| invalid(format!("{url} is not JSON: {e} (expected a JSON config)")))?;
    if value.get("config").is_some() {
        let body = parse_body(&value, &url)?;
        return validate_body(body, object.origin());
    }
    let config = config::from_json_str(text).map_err(|e| invalid(format!("{url}: {e}")))?;
    let execution =
        ExecutionRequest::new(config, Mode::default(), None, object.origin().dedup_key())
            .map_err(|e| prefixed(&url, &e))?;
    Ok(StartRequest {
        execution,
        origin: object.origin(),
    })
}

fn prefixed(what: &str, e: &SfnError) -> StepError {
    let mut error = step_error(e);
    error.message = format!("{what}: {}", error.message);
    error
}

fn parse_body(value: &Value, what: &str) -> Result<StartBody, StepError> {
    StartBody::deserialize(value).map_err(|e| {
        // serde's text names fields and variants, and for a bad `mode` the offending value,
        // which is not a secret; the config itself is a `Value` here and is not quoted.
        invalid(format!("{what}: {e}; {SHAPES}"))
    })
}

fn validate_body(body: StartBody, origin: Origin) -> Result<StartRequest, StepError> {
    // An explicit key wins over the event's own identity: the caller pins the execution.
    let origin = match body.idempotency_key {
        Some(key) if key.is_empty() || key.len() > 256 => {
            return Err(invalid(
                "idempotency_key must be 1-256 characters (or left out)",
            ))
        }
        Some(key) => Origin::IdempotencyKey(key),
        None => origin,
    };
    let config =
        config::from_json_value(&body.config).map_err(|e| invalid(format!("config: {e}")))?;
    let execution = ExecutionRequest::new(config, body.mode, body.verify, origin.dedup_key())
        .map_err(|e| step_error(&e))?;
    Ok(StartRequest { execution, origin })
}

/// The secrets a deployment lets configs reference: exact ARNs (the stack's `SourceSecretArns`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedSecrets {
    arns: Vec<String>,
}

impl AllowedSecrets {
    /// A comma-separated list; blanks around and empty items are ignored.
    pub fn parse(list: &str) -> Self {
        let mut arns: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        arns.sort_unstable();
        arns.dedup();
        AllowedSecrets { arns }
    }

    /// The list in [`ALLOWED_SECRET_ARNS_ENV`]; `None` when it is not set (no restriction:
    /// local emulators and tests).
    pub fn from_env() -> Option<Self> {
        std::env::var(ALLOWED_SECRET_ARNS_ENV)
            .ok()
            .map(|list| Self::parse(&list))
    }

    pub fn arns(&self) -> &[String] {
        &self.arns
    }

    /// Every credential of `config` must be a `secret_arn` reference to an allowed ARN. The
    /// error names each offending field (and the ARN, which is not a secret), never a value.
    pub fn check(&self, config: &MigrationConfig) -> Result<(), StepError> {
        let mut problems = Vec::new();
        for (path, secret) in config.secret_refs() {
            match secret {
                SecretRef::SecretArn { arn, .. } if self.arns.iter().any(|a| a == arn) => {}
                SecretRef::SecretArn { arn, .. } => problems.push(format!(
                    "{path} references secret {arn}, which this deployment may not read"
                )),
                SecretRef::Env(_) => problems.push(format!(
                    "{path} is an {{\"env\": …}} reference; deployed functions take credentials \
                     from Secrets Manager only"
                )),
                // Refused earlier with its own message (ExecutionRequest::new).
                SecretRef::Literal(_) => problems.push(format!(
                    "{path} holds a literal secret; use a secret_arn reference"
                )),
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let allowed = if self.arns.is_empty() {
            "none".to_owned()
        } else {
            self.arns.join(", ")
        };
        Err(invalid(format!(
            "{}; reference the secrets by their full ARN, one of the stack parameter \
             SourceSecretArns (allowed: {allowed}), or add the secret to SourceSecretArns and \
             update the stack",
            problems.join("; ")
        )))
    }
}

/// Starts executions of one state machine. Build it once per cold start.
#[derive(Debug, Clone)]
pub struct Starter {
    sfn: aws_sdk_sfn::Client,
    s3: Option<aws_sdk_s3::Client>,
    state_machine_arn: String,
    allowed_secrets: Option<AllowedSecrets>,
}

impl Starter {
    /// A starter for direct invokes and EventBridge events; S3 events need [`Starter::with_s3`].
    pub fn new(sfn: aws_sdk_sfn::Client, state_machine_arn: impl Into<String>) -> Self {
        Starter {
            sfn,
            s3: None,
            state_machine_arn: state_machine_arn.into(),
            allowed_secrets: None,
        }
    }

    /// Refuses configs whose credentials are not references to these secrets.
    pub fn with_allowed_secrets(mut self, allowed: Option<AllowedSecrets>) -> Self {
        self.allowed_secrets = allowed;
        self
    }

    /// Reads the config objects of S3 events with `s3`.
    pub fn with_s3(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// One invocation: parse, validate, start. Errors are [`Diagnostic`]s named
    /// `Migration.*`.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let (payload, context) = event.into_parts();
        let mut migration_id = crate::migration_id_for_logs(&payload)
            .or_else(|| payload.get("detail").and_then(crate::migration_id_for_logs))
            .unwrap_or("")
            .to_owned();
        let outcome = async {
            let request = match parse_event(&payload, &context.request_id)? {
                StartEvent::Inline(request) => *request,
                StartEvent::S3(object) => {
                    let bytes = self.read_object(&object).await?;
                    let request = parse_config_object(&object, &bytes)?;
                    migration_id = request.execution.config.migration_id.clone();
                    request
                }
            };
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

    /// Starts the execution for `request`, or finds the one a previous delivery started
    /// ([`tsmigrate_core::aws::sfn::start_or_find`]).
    pub async fn start(&self, request: &StartRequest) -> Result<Started, StepError> {
        if let Some(allowed) = &self.allowed_secrets {
            allowed.check(&request.execution.config)?;
        }
        let started = shared::start_or_find(&self.sfn, &self.state_machine_arn, &request.execution)
            .await
            .map_err(|e| step_error(&e))?;
        tracing::info!(
            migration_id = %started.migration_id,
            mode = started.mode.as_str(),
            origin = request.origin.kind(),
            execution_name = %started.execution_name,
            execution_arn = %started.execution_arn,
            started = started.started,
            "{}",
            if started.started {
                "execution started"
            } else {
                "execution already exists (duplicate event): nothing started"
            }
        );
        Ok(started)
    }

    /// `GetObject` of a config object (never logged: it is a config).
    pub async fn read_object(&self, object: &S3Object) -> Result<Vec<u8>, StepError> {
        let url = object.url();
        let s3 = self.s3.as_ref().ok_or_else(|| {
            StepError::fatal(format!(
                "cannot read {url}: this start-migration has no S3 client (a bug: \
                 run_start_migration_function builds one)"
            ))
        })?;
        let output = s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await
            .map_err(|e| get_object_error(&url, &e))?;
        if output.content_length().unwrap_or(0) > MAX_CONFIG_OBJECT_BYTES {
            return Err(invalid(format!(
                "{url} is larger than {MAX_CONFIG_OBJECT_BYTES} bytes: not a config file"
            )));
        }
        let body = output.body.collect().await.map_err(|e| {
            StepError::new(
                ErrorName::ConnectionFailed,
                format!("reading {url} failed midway: {e}"),
            )
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

fn get_object_error<R: std::fmt::Debug>(url: &str, e: &SdkError<GetObjectError, R>) -> StepError {
    let text = format!("GetObject {url} failed: {}", DisplayErrorContext(e));
    let name = match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ErrorName::ConnectionFailed,
        SdkError::ResponseError(_) => ErrorName::Transient,
        SdkError::ServiceError(service) => match service.err().code() {
            Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout") => {
                ErrorName::Transient
            }
            Some("AccessDenied") => {
                return StepError::fatal(format!(
                    "{text}; grant start-migration's role s3:GetObject on the config objects \
                     (the template's ConfigBucketName/ConfigPrefix)"
                ))
            }
            _ => ErrorName::Fatal,
        },
        _ => ErrorName::Fatal,
    };
    StepError::new(name, text)
}
