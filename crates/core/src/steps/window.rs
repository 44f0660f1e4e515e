//! Retry windows (design §5): the state machine retries ConnectionFailed and Transient, and
//! the step itself gives up with Migration.RetryWindowExceeded once the first consecutive
//! failure of that kind is older than the configured window.

use std::time::Duration;

use super::error::{ErrorName, StepError};
use crate::state::{FailureKind, StateStore};

/// Runs a step's outcome through the window: success clears the failure records; a retriable
/// failure is recorded and, past its window, turned into RetryWindowExceeded.
pub async fn guard<T>(
    store: &StateStore,
    connection_minutes: u32,
    other_minutes: u32,
    outcome: Result<T, StepError>,
) -> Result<T, StepError> {
    match outcome {
        Ok(v) => {
            // Best effort: a failure to clear only makes a later window start earlier.
            let _ = store.clear_failure(FailureKind::Connection).await;
            let _ = store.clear_failure(FailureKind::Other).await;
            Ok(v)
        }
        Err(e) if e.name.is_retriable() => {
            let (kind, minutes) = if e.name == ErrorName::ConnectionFailed {
                (FailureKind::Connection, connection_minutes)
            } else {
                (FailureKind::Other, other_minutes)
            };
            let first = match store.record_failure(kind).await {
                Ok(t) => t,
                // The state store is unreachable too: let the state machine retry.
                Err(_) => return Err(e),
            };
            let window = Duration::from_secs(u64::from(minutes) * 60);
            let failing_for = store.now().duration_since(first).unwrap_or(Duration::ZERO);
            if failing_for > window {
                Err(StepError::new(
                    ErrorName::RetryWindowExceeded,
                    format!(
                        "still failing after {} minutes (window {minutes} minutes): {}. Fix the cause, then start the migration again; it resumes from its checkpoint",
                        failing_for.as_secs() / 60,
                        e.message
                    ),
                ))
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}
