//! Retry windows (design §5): the state machine retries ConnectionFailed and Transient, and
//! the step itself gives up with Migration.RetryWindowExceeded once the first consecutive
//! failure of that kind is older than the configured window.
//!
//! The first failure is recorded in the state store, which lives in the destination. When the
//! destination itself is down, the store cannot record it either; the window then counts from
//! the first failure this process saw (a warm Lambda or the CLI), so a permanent outage still
//! ends in RetryWindowExceeded instead of being retried for days.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

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
            forget_local(store);
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
            let local_first = remember_local(store, kind);
            let first = match store.record_failure(kind).await {
                Ok(t) => t,
                // The state store is unreachable too (it lives in the destination).
                Err(_) => local_first,
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

/// (state table, migration id, kind) → first failure this process saw since the last success.
type LocalFailures = HashMap<(String, String, FailureKind), SystemTime>;

fn local_failures() -> &'static Mutex<LocalFailures> {
    static F: OnceLock<Mutex<LocalFailures>> = OnceLock::new();
    F.get_or_init(|| Mutex::new(HashMap::new()))
}

fn local_key(store: &StateStore, kind: FailureKind) -> (String, String, FailureKind) {
    (
        store.table().to_owned(),
        store.migration_id().to_owned(),
        kind,
    )
}

/// Remembers a failure in this process; returns when this run of failures began here.
fn remember_local(store: &StateStore, kind: FailureKind) -> SystemTime {
    let now = store.now();
    match local_failures().lock() {
        Ok(mut m) => *m.entry(local_key(store, kind)).or_insert(now),
        Err(_) => now,
    }
}

fn forget_local(store: &StateStore) {
    if let Ok(mut m) = local_failures().lock() {
        for kind in [FailureKind::Connection, FailureKind::Other] {
            m.remove(&local_key(store, kind));
        }
    }
}
