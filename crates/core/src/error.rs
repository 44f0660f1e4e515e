//! What every failure in the core is, in one vocabulary: the stable error names of design §5
//! (what the state machine's Retry/Catch match on) and the three classes a failure of the
//! source, the destination or the state store falls into. A leaf module: the MySQL side, the
//! state store and the steps all classify with it, and `steps::error` turns a class into a name.

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

/// What a failure means for the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The source or the destination could not be reached (`Migration.ConnectionFailed`,
    /// retried within `retry.connection_minutes`).
    Connection,
    /// Retrying later may succeed: throttled, busy, a lock wait (`Migration.Transient`, retried
    /// within `retry.other_minutes`).
    Transient,
    /// Retrying cannot help; the name says what to do.
    Definite(ErrorName),
}

impl Class {
    /// A destination failure of a replay-safe call (every call a migration makes).
    pub fn of_destination(e: &tablestore::Error) -> Class {
        match e.class() {
            tablestore::Class::Connection => Class::Connection,
            tablestore::Class::Transient => Class::Transient,
            tablestore::Class::Definite => Class::Definite(ErrorName::Fatal),
        }
    }
}
