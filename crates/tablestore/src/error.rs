//! Tablestore errors: the service's error codes (shared by client and local server), the
//! client's error type, and retry classification as the official SDKs do it.

use std::fmt;

/// An error as the service reports it: HTTP status, code, message (and request id, client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub http_status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (HTTP {}): {}",
            self.code, self.http_status, self.message
        )?;
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {}

/// Error codes used by tsmigrate (names exactly as the service spells them).
pub mod code {
    pub const AUTH_FAILED: &str = "OTSAuthFailed";
    pub const PARAMETER_INVALID: &str = "OTSParameterInvalid";
    pub const INVALID_PK: &str = "OTSInvalidPK";
    pub const OUT_OF_COLUMN_COUNT_LIMIT: &str = "OTSOutOfColumnCountLimit";
    pub const OUT_OF_ROW_SIZE_LIMIT: &str = "OTSOutOfRowSizeLimit";
    pub const CONDITION_CHECK_FAIL: &str = "OTSConditionCheckFail";
    pub const NOT_ENOUGH_CAPACITY_UNIT: &str = "OTSNotEnoughCapacityUnit";
    pub const QUOTA_EXHAUSTED: &str = "OTSQuotaExhausted";
    pub const OBJECT_NOT_EXIST: &str = "OTSObjectNotExist";
    pub const TABLE_NOT_READY: &str = "OTSTableNotReady";
    pub const METHOD_NOT_ALLOWED: &str = "OTSMethodNotAllowed";
    pub const REQUEST_TIMEOUT: &str = "OTSRequestTimeout";
    pub const OBJECT_ALREADY_EXIST: &str = "OTSObjectAlreadyExist";
    pub const ROW_OPERATION_CONFLICT: &str = "OTSRowOperationConflict";
    pub const REQUEST_BODY_TOO_LARGE: &str = "OTSRequestBodyTooLarge";
    pub const INTERNAL_SERVER_ERROR: &str = "OTSInternalServerError";
    pub const SERVER_BUSY: &str = "OTSServerBusy";
    pub const PARTITION_UNAVAILABLE: &str = "OTSPartitionUnavailable";
    pub const SERVER_UNAVAILABLE: &str = "OTSServerUnavailable";
    pub const TIMEOUT: &str = "OTSTimeout";
    pub const OPERATION_THROTTLED: &str = "OTSOperationThrottled";
    pub const UNSUPPORTED_OPERATION: &str = "OTSUnsupportOperation";
}

/// The HTTP status the service uses for a code.
pub fn http_status_for(code: &str) -> u16 {
    match code {
        code::AUTH_FAILED
        | "OTSNoPermissionAccess"
        | code::CONDITION_CHECK_FAIL
        | code::NOT_ENOUGH_CAPACITY_UNIT
        | "OTSCapacityUnitExhausted"
        | code::QUOTA_EXHAUSTED
        | "OTSTooFrequentReservedThroughputAdjustment" => 403,
        code::OBJECT_NOT_EXIST | code::TABLE_NOT_READY => 404,
        code::METHOD_NOT_ALLOWED => 405,
        code::REQUEST_TIMEOUT => 408,
        code::OBJECT_ALREADY_EXIST | code::ROW_OPERATION_CONFLICT => 409,
        code::REQUEST_BODY_TOO_LARGE => 413,
        code::INTERNAL_SERVER_ERROR => 500,
        code::SERVER_BUSY
        | code::PARTITION_UNAVAILABLE
        | code::SERVER_UNAVAILABLE
        | code::TIMEOUT => 503,
        _ => 400,
    }
}

impl ServiceError {
    /// An error with the code's standard HTTP status.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ServiceError {
            http_status: http_status_for(code),
            code: code.to_owned(),
            message: message.into(),
            request_id: None,
        }
    }

    pub fn parameter_invalid(message: impl Into<String>) -> Self {
        Self::new(code::PARAMETER_INVALID, message)
    }
    pub fn invalid_pk(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PK, message)
    }
    pub fn table_not_exist() -> Self {
        Self::new(code::OBJECT_NOT_EXIST, "Requested table does not exist.")
    }
    pub fn table_already_exist() -> Self {
        Self::new(
            code::OBJECT_ALREADY_EXIST,
            "Requested table already exists.",
        )
    }
    pub fn condition_check_fail() -> Self {
        Self::new(code::CONDITION_CHECK_FAIL, "Condition check failed.")
    }
    pub fn auth_failed(message: impl Into<String>) -> Self {
        Self::new(code::AUTH_FAILED, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(code::INTERNAL_SERVER_ERROR, message)
    }

    /// Retried for every operation by the official SDKs (throttling, transient unavailability).
    pub fn is_always_retriable(&self) -> bool {
        match self.code.as_str() {
            code::SERVER_BUSY
            | code::PARTITION_UNAVAILABLE
            | code::ROW_OPERATION_CONFLICT
            | code::TABLE_NOT_READY
            | code::NOT_ENOUGH_CAPACITY_UNIT
            | code::OPERATION_THROTTLED
            | "OTSStorageServerBusy" => true,
            code::QUOTA_EXHAUSTED => self.message.contains("Too frequent table operations"),
            _ => false,
        }
    }

    /// Retried only for idempotent (read) operations: server-side failures whose write may
    /// or may not have happened.
    pub fn is_retriable_for_reads(&self) -> bool {
        matches!(
            self.code.as_str(),
            code::INTERNAL_SERVER_ERROR | code::SERVER_UNAVAILABLE | code::TIMEOUT
        ) || self.http_status >= 500
    }

    /// Whether sending the call again may succeed.
    pub fn is_retriable(&self, replay: Replay) -> bool {
        self.is_always_retriable() || (replay == Replay::Safe && self.is_retriable_for_reads())
    }

    /// Throttling codes get a longer base backoff, as the Python SDK does.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_str(),
            code::SERVER_BUSY | code::NOT_ENOUGH_CAPACITY_UNIT | code::OPERATION_THROTTLED
        ) || (self.code == code::QUOTA_EXHAUSTED && self.is_always_retriable())
    }
}

/// Whether a call may be sent again when its outcome is unknown (a transport error or a
/// server-side failure after the request left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads, and writes keyed by primary key: sending twice ends in the same state.
    Safe,
    /// Table operations (CreateTable): a repeat after an unknown outcome may fail differently.
    Unsafe,
}

/// What a failure means for whoever handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The endpoint could not be reached at all.
    Connection,
    /// Retrying later may succeed: throttled, busy, a server-side failure.
    Transient,
    /// Retrying cannot help: a bad request, credentials, a missing table, a failed condition.
    Definite,
}

/// Everything the Tablestore client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service answered with an error code.
    #[error("Tablestore error {0}")]
    Service(ServiceError),
    /// No answer: connect failure, reset connection, timeout.
    #[error("cannot reach Tablestore at {endpoint}: {detail}. Check the endpoint, network and that the server is running")]
    Transport { endpoint: String, detail: String },
    /// The answer could not be trusted: bad signature, MD5 mismatch, undecodable body.
    #[error("invalid response from Tablestore ({action}): {detail}")]
    InvalidResponse { action: String, detail: String },
    /// A request we refuse to send (bad argument found before sending).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Client configuration problem (endpoint URL, credentials).
    #[error("invalid Tablestore client configuration: {0}")]
    Config(String),
}

impl Error {
    pub fn service(&self) -> Option<&ServiceError> {
        match self {
            Error::Service(e) => Some(e),
            _ => None,
        }
    }

    /// The service error code, if any.
    pub fn code(&self) -> Option<&str> {
        self.service().map(|e| e.code.as_str())
    }

    /// Whether sending the call again may succeed: transport errors and server-side failures
    /// only for replay-safe calls; throttling and busy codes for all.
    pub fn is_retriable(&self, replay: Replay) -> bool {
        match self {
            Error::Service(e) => e.is_retriable(replay),
            Error::Transport { .. } | Error::InvalidResponse { .. } => replay == Replay::Safe,
            Error::InvalidRequest(_) | Error::Config(_) => false,
        }
    }

    /// Whether the destination could not be reached at all (feeds Migration.ConnectionFailed).
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }

    /// What this failure of a replay-safe call means (every call a migration makes: reads and
    /// writes keyed by primary key, design §2.1).
    pub fn class(&self) -> Class {
        if self.is_connection_failure() {
            Class::Connection
        } else if self.is_retriable(Replay::Safe) {
            Class::Transient
        } else {
            Class::Definite
        }
    }
}

impl From<ServiceError> for Error {
    fn from(e: ServiceError) -> Self {
        Error::Service(e)
    }
}
