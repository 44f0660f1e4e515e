//! Step errors with the stable names the state machine's Retry/Catch match on (design §5).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The error names of design §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorName {
    ConnectionFailed,
    Transient,
    RetryWindowExceeded,
    PrecheckFailed,
    ConfigInvalid,
    BinlogUnavailable,
    SchemaConflict,
    DirtyData,
    LeaseHeld,
    Fatal,
}

impl ErrorName {
    /// The name as the ASL sees it, e.g. `Migration.ConnectionFailed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::ConnectionFailed => "Migration.ConnectionFailed",
            ErrorName::Transient => "Migration.Transient",
            ErrorName::RetryWindowExceeded => "Migration.RetryWindowExceeded",
            ErrorName::PrecheckFailed => "Migration.PrecheckFailed",
            ErrorName::ConfigInvalid => "Migration.ConfigInvalid",
            ErrorName::BinlogUnavailable => "Migration.BinlogUnavailable",
            ErrorName::SchemaConflict => "Migration.SchemaConflict",
            ErrorName::DirtyData => "Migration.DirtyData",
            ErrorName::LeaseHeld => "Migration.LeaseHeld",
            ErrorName::Fatal => "Migration.Fatal",
        }
    }

    /// Retried by the state machine (within the configured windows).
    pub fn is_retriable(self) -> bool {
        matches!(self, ErrorName::ConnectionFailed | ErrorName::Transient)
    }
}

/// A step failure: a stable name plus a message that says what is wrong and what to do.
/// Messages never contain secrets or row data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub name: ErrorName,
    pub message: String,
}

impl StepError {
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        StepError {
            name,
            message: message.into(),
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self::new(ErrorName::Fatal, message)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name.as_str(), self.message)
    }
}

impl std::error::Error for StepError {}

impl From<tablestore::Error> for StepError {
    fn from(e: tablestore::Error) -> Self {
        let name = if e.is_connection_failure() {
            ErrorName::ConnectionFailed
        } else if e.is_retriable(true) {
            ErrorName::Transient
        } else {
            ErrorName::Fatal
        };
        StepError::new(name, format!("destination: {e}"))
    }
}

impl From<crate::mysql::SourceError> for StepError {
    fn from(e: crate::mysql::SourceError) -> Self {
        let name = if e.is_connection_failure() {
            ErrorName::ConnectionFailed
        } else if e.is_transient() {
            ErrorName::Transient
        } else {
            ErrorName::Fatal
        };
        StepError::new(name, format!("source: {e}"))
    }
}
