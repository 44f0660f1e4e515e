//! Step errors with the stable names the state machine's Retry/Catch match on (design §5), and
//! the one conversion of the destination's, the source's and the state store's errors into
//! them: each of those says what class it is ([`Class`]); the name follows from the class.

use std::fmt;

pub use crate::error::{Class, ErrorName};
use crate::mysql::SourceError;
use crate::state::StateError;

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

impl StepError {
    /// The step error for a classified failure; `message` names the side and the fix.
    pub fn classified(class: Class, message: String) -> Self {
        let name = match class {
            Class::Connection => ErrorName::ConnectionFailed,
            Class::Transient => ErrorName::Transient,
            Class::Definite(name) => name,
        };
        StepError::new(name, message)
    }
}

impl From<tablestore::Error> for StepError {
    fn from(e: tablestore::Error) -> Self {
        StepError::classified(Class::of_destination(&e), format!("destination: {e}"))
    }
}

impl From<SourceError> for StepError {
    fn from(e: SourceError) -> Self {
        StepError::classified(e.class(), format!("source: {e}"))
    }
}

impl From<StateError> for StepError {
    fn from(e: StateError) -> Self {
        StepError::classified(e.class(), e.to_string())
    }
}
