//! `execution-ended`: what happens to a migration when its execution ends without Finish
//! having the last word: timed out, aborted (`StopExecution`), or failed outside Finish
//! (Finish itself failing, `States.DataLimitExceeded`, `States.Runtime`).
//!
//! Input: the EventBridge "Step Functions Execution Status Change" event. The migration is
//! the one in the execution input's config (as the steps read it); when EventBridge left the
//! input out (`inputDetails.included: false`, larger than its limit) it is read with
//! `DescribeExecution` through [`ExecutionInputs`]. The handler then, in that migration's state
//! store, and only while the execution still holds the lease:
//!
//! 1. records the end in the status (phase `timed_out`, `aborted` or `failed`, stopped, the
//!    error and cause, the execution name and stop time) unless Finish already recorded this
//!    execution's end (with better detail);
//! 2. frees the lease ([`StateStore::release_after_end`]) from the moment no Lambda
//!    invocation the execution started can still be running: the stop time plus
//!    [`MAX_INVOCATION`] plus the takeover grace (Step Functions does not stop invocations
//!    in flight when an execution ends, and a late CopyChunk page must not land after a new
//!    execution's writes). Until then the lease is `<name>/ended`, which no step can renew; a
//!    new execution can begin from then on instead of after the hour-long lease.
//!
//! An execution that does not hold the lease is left alone: it never took it (failed before
//! Begin, or `LeaseHeld`), Finish released it, or it handed it to its continue-as-new
//! successor (`…-cN`), whose lease must not be touched. Status first, lease second: a retry
//! after a failure in between finds the lease still held and the status already written, so
//! redelivered events (EventBridge delivers at least once) give the same result.
//!
//! Secrets: the input holds secret references only, and is never logged; only the
//! destination's credentials are resolved (no source connection is made).

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::context::destination_client;
use super::error::{ErrorName, StepError};
use crate::config::{self, MigrationConfig, SecretResolver};
use crate::state::{unix_millis, EndedRelease, StateError, StateStore, Status};
use tablestore::error::code;

/// The EventBridge detail type of Step Functions execution status changes.
pub const DETAIL_TYPE: &str = "Step Functions Execution Status Change";
/// Lambda's hard limit on one invocation: a step the ended execution started may still write
/// this long after the execution ended (the template's timeouts are lower; this holds for any).
pub const MAX_INVOCATION: std::time::Duration = std::time::Duration::from_secs(900);
/// The longest error + cause text kept in the status row (a cause can be a whole stack).
const MAX_ERROR_TEXT: usize = 4_096;

/// Reads an execution's input when the event does not carry it (`DescribeExecution`). The
/// functions implement it with the Step Functions client; tests with a stub.
pub trait ExecutionInputs: Send + Sync {
    /// The execution's input JSON text; `None` when Step Functions has none to give.
    fn input<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StepError>>;

    /// Whether an execution exists (running or ended): `Some(false)` only when Step Functions
    /// says there is none; `None` when this cannot tell (then nothing is freed).
    fn exists<'a>(
        &'a self,
        _execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<bool>, StepError>> {
        Box::pin(async { Ok(None) })
    }
}

/// An [`ExecutionInputs`] that has no way to describe executions (outside AWS).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDescribe;

impl ExecutionInputs for NoDescribe {
    fn input<'a>(
        &'a self,
        execution_arn: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StepError>> {
        Box::pin(async move {
            Err(StepError::fatal(format!(
                "the event for {execution_arn} carries no execution input and this handler \
                 cannot call DescribeExecution"
            )))
        })
    }
}

/// The fields of the event's `detail` the handler reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionEnded {
    pub execution_arn: String,
    pub name: String,
    /// `FAILED`, `TIMED_OUT`, `ABORTED` (also `SUCCEEDED`, `RUNNING`…: ignored).
    pub status: String,
    /// Unix ms.
    #[serde(default)]
    pub stop_date: Option<i64>,
    /// The execution input (JSON text); `null` when EventBridge left it out.
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
}

impl ExecutionEnded {
    /// The `detail` of a status-change event; anything else is `Migration.ConfigInvalid`
    /// naming what was expected.
    pub fn from_event(event: &Value) -> Result<ExecutionEnded, StepError> {
        let detail_type = event.get("detail-type").and_then(Value::as_str);
        if detail_type != Some(DETAIL_TYPE) {
            return Err(StepError::new(
                ErrorName::ConfigInvalid,
                format!(
                    "expected an EventBridge \"{DETAIL_TYPE}\" event (source aws.states), got \
                     detail-type {detail_type:?}"
                ),
            ));
        }
        let detail = event.get("detail").cloned().unwrap_or(Value::Null);
        serde_json::from_value(detail).map_err(|e| {
            StepError::new(
                ErrorName::ConfigInvalid,
                format!("the status-change event's detail is not usable: {e}"),
            )
        })
    }

    /// The status phase this end is recorded as; `None` for a status that is not an
    /// unsuccessful end.
    pub fn phase(&self) -> Option<&'static str> {
        match self.status.as_str() {
            "FAILED" => Some("failed"),
            "TIMED_OUT" => Some("timed_out"),
            "ABORTED" => Some("aborted"),
            _ => None,
        }
    }

    /// `Error: Cause` as Finish writes it, bounded; `States.Timeout` for a timeout without one.
    fn error_text(&self) -> String {
        let error =
            self.error
                .as_deref()
                .filter(|e| !e.is_empty())
                .unwrap_or(match self.status.as_str() {
                    "TIMED_OUT" => "States.Timeout",
                    "ABORTED" => "Execution aborted",
                    _ => "Execution failed",
                });
        let mut text = match self.cause.as_deref().filter(|c| !c.is_empty()) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_owned(),
        };
        if text.len() > MAX_ERROR_TEXT {
            let mut end = MAX_ERROR_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        text
    }
}

/// What the handler did to the migration's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusAction {
    /// This call wrote the end into the status.
    Recorded,
    /// Finish (or an earlier delivery) already recorded this execution's end: kept.
    AlreadyRecorded,
    /// Not this execution's to change (it does not hold the lease), or nothing to record.
    Untouched,
}

/// What the handler did to the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseAction {
    /// Deleted: a new execution may begin at once.
    Released,
    /// Renamed `<name>/ended` until `lease_free_at`: an invocation the execution started may
    /// still be writing until then; a new execution may begin from then on.
    FreedAfterInvocations,
    /// Expired at once, keeping a still-running binlog batch's claim (see
    /// [`StateStore::release_after_end`]).
    ExpiredKeepingBatchClaim,
    /// An earlier delivery already freed it.
    AlreadyReleased,
    /// The execution does not hold it: left as it is.
    NotHeld,
}

/// The handler's answer (also its log line's fields). Never holds the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndedOutput {
    pub execution_name: String,
    pub execution_status: String,
    /// `None` when the input held no usable config.
    pub migration_id: Option<String>,
    pub status: StatusAction,
    pub lease: LeaseAction,
    /// Who holds the lease when it is not this execution (a successor, a newer execution).
    pub lease_holder: Option<String>,
    /// With [`LeaseAction::FreedAfterInvocations`]: when a new execution may begin (unix ms).
    pub lease_free_at: Option<i64>,
    /// Why nothing was done, when nothing was.
    pub note: Option<String>,
}

impl EndedOutput {
    fn nothing(ended: &ExecutionEnded, migration_id: Option<String>, note: String) -> Self {
        EndedOutput {
            execution_name: ended.name.clone(),
            execution_status: ended.status.clone(),
            migration_id,
            status: StatusAction::Untouched,
            lease: LeaseAction::NotHeld,
            lease_holder: None,
            lease_free_at: None,
            note: Some(note),
        }
    }
}

/// Handles one status-change event (see the module documentation).
pub async fn execution_ended(
    event: &Value,
    inputs: &dyn ExecutionInputs,
    resolver: &dyn SecretResolver,
) -> Result<EndedOutput, StepError> {
    let ended = ExecutionEnded::from_event(event)?;
    if ended.phase().is_none() {
        return Ok(EndedOutput::nothing(
            &ended,
            None,
            format!("status {} is not an unsuccessful end", ended.status),
        ));
    }
    let input = match &ended.input {
        Some(input) => input.clone(),
        None => {
            tracing::info!(
                execution_name = %ended.name,
                "the event carries no execution input (EventBridge leaves out inputs above its \
                 size limit): reading it with DescribeExecution"
            );
            inputs.input(&ended.execution_arn).await?.ok_or_else(|| {
                StepError::fatal(format!(
                    "DescribeExecution of {} returned no input: the execution's migration \
                     cannot be found; check it with `tsmigrate status --config …`",
                    ended.execution_arn
                ))
            })?
        }
    };
    let config = match migration_config(&input) {
        Ok(config) => config,
        // The execution stopped at its input check and never took a lease: nothing to record.
        Err(why) => {
            return Ok(EndedOutput::nothing(
                &ended,
                None,
                format!("the execution input holds no valid config ({why}); no migration ran"),
            ))
        }
    };
    let store = state_store(&config, resolver).await?;
    let mut out = record_end(&store, &ended).await?;
    free_unstarted_successor(&store, &ended, inputs, &mut out).await?;
    Ok(out)
}

/// The continue-as-new hand-over gives the lease to the successor (`…-cN`) just before the
/// predecessor starts it. When that start fails for good, the predecessor ends FAILED and the
/// lease belongs to an execution that never runs: it would block the migration until it
/// expired (an hour). Freed here, under the same rule as an ended execution's own lease, once
/// Step Functions says the successor does not exist; left alone when it exists or when that
/// cannot be told.
async fn free_unstarted_successor(
    store: &StateStore,
    ended: &ExecutionEnded,
    inputs: &dyn ExecutionInputs,
    out: &mut EndedOutput,
) -> Result<(), StepError> {
    let successor = super::lifecycle::next_execution_name(&ended.name);
    if out.lease != LeaseAction::NotHeld || out.lease_holder.as_deref() != Some(&successor) {
        return Ok(());
    }
    let Some(arn) = sibling_arn(&ended.execution_arn, &successor) else {
        return Ok(());
    };
    if inputs.exists(&arn).await? != Some(false) {
        return Ok(());
    }
    match store.release_after_end(&successor, free_at(ended)).await? {
        EndedRelease::Released => out.lease = LeaseAction::Released,
        EndedRelease::Ended { free_at, .. } => note_freed(out, store, free_at),
        // Changed meanwhile: whoever holds it now keeps it.
        EndedRelease::AlreadyReleased | EndedRelease::NotHeld { .. } => return Ok(()),
    }
    out.note = Some(format!(
        "the lease had been handed to successor {successor}, which was never started: freed"
    ));
    Ok(())
}

/// What a lease renamed `<name>/ended` means for `out`: free later, or expired now and kept
/// only for a live binlog batch claim.
fn note_freed(out: &mut EndedOutput, store: &StateStore, free_at: std::time::SystemTime) {
    if free_at > store.now() {
        out.lease = LeaseAction::FreedAfterInvocations;
        out.lease_free_at = Some(unix_millis(free_at));
    } else {
        out.lease = LeaseAction::ExpiredKeepingBatchClaim;
    }
}

/// The ARN of execution `name` of the same state machine as `execution_arn`
/// (`arn:…:execution:<state machine>:<name>`).
fn sibling_arn(execution_arn: &str, name: &str) -> Option<String> {
    let (prefix, _) = execution_arn.rsplit_once(':')?;
    prefix
        .contains(":execution:")
        .then(|| format!("{prefix}:{name}"))
}

/// When none of the Lambda invocations the execution started can still be running: its stop
/// (the event's time when it has none: it is sent as the execution stops) plus Lambda's limit
/// plus the takeover grace.
fn free_at(ended: &ExecutionEnded) -> std::time::SystemTime {
    let stopped = ended
        .stop_date
        .map(crate::state::from_unix_millis)
        .unwrap_or_else(std::time::SystemTime::now);
    stopped + MAX_INVOCATION + crate::state::TAKEOVER_GRACE
}

/// The config of an execution input (`{"config": …, "mode": …}`). Errors name the problem,
/// never a value.
fn migration_config(input: &str) -> Result<MigrationConfig, String> {
    let value: Value =
        serde_json::from_str(input).map_err(|e| format!("the input is not JSON: {e}"))?;
    let config = value
        .get("config")
        .ok_or_else(|| "the input has no \"config\"".to_owned())?;
    let config = config::from_json_value(config).map_err(|e| e.to_string())?;
    config.validate().map_err(|problems| problems.to_string())?;
    Ok(config)
}

/// The migration's state store, with the destination's credentials only.
async fn state_store(
    config: &MigrationConfig,
    resolver: &dyn SecretResolver,
) -> Result<StateStore, StepError> {
    let d = &config.destination;
    let secret = |e: config::SecretError| StepError::new(ErrorName::ConfigInvalid, e.to_string());
    let key_id = d
        .access_key_id
        .resolve("destination.access_key_id", resolver)
        .await
        .map_err(secret)?;
    let key_secret = d
        .access_key_secret
        .resolve("destination.access_key_secret", resolver)
        .await
        .map_err(secret)?;
    let sts = match &d.sts_token {
        Some(t) => Some(
            t.resolve("destination.sts_token", resolver)
                .await
                .map_err(secret)?,
        ),
        None => None,
    };
    let client = destination_client(config, &key_id, &key_secret, sts.as_ref())?;
    Ok(StateStore::new(
        client,
        d.state_table.clone(),
        config.migration_id.clone(),
    ))
}

/// The state-store part: record the end and free the lease, only while `ended` holds it.
pub async fn record_end(
    store: &StateStore,
    ended: &ExecutionEnded,
) -> Result<EndedOutput, StepError> {
    let mut out = EndedOutput {
        execution_name: ended.name.clone(),
        execution_status: ended.status.clone(),
        migration_id: Some(store.migration_id().to_owned()),
        status: StatusAction::Untouched,
        lease: LeaseAction::NotHeld,
        lease_holder: None,
        lease_free_at: None,
        note: None,
    };
    let Some(phase) = ended.phase() else {
        out.note = Some(format!(
            "status {} is not an unsuccessful end",
            ended.status
        ));
        return Ok(out);
    };
    let lease = match store.lease().await {
        Ok(lease) => lease,
        // No state table: the migration never began.
        Err(StateError::Tablestore(e)) if e.code() == Some(code::OBJECT_NOT_EXIST) => {
            out.note = Some("the migration has no state table: it never began".into());
            return Ok(out);
        }
        Err(e) => return Err(e.into()),
    };
    let holds = lease.as_ref().is_some_and(|l| l.owner == ended.name);
    if holds {
        let status = store.status().await?.unwrap_or_default();
        let finish_recorded = status.stopped && status.execution.as_deref() == Some(&ended.name);
        if finish_recorded {
            out.status = StatusAction::AlreadyRecorded;
        } else {
            store
                .set_status(&ended_status(status, ended, phase, store))
                .await?;
            out.status = StatusAction::Recorded;
        }
    }
    match store.release_after_end(&ended.name, free_at(ended)).await? {
        EndedRelease::Released => out.lease = LeaseAction::Released,
        EndedRelease::Ended { free_at, .. } => note_freed(&mut out, store, free_at),
        EndedRelease::AlreadyReleased => {
            out.lease = LeaseAction::AlreadyReleased;
            // An earlier delivery recorded the end, or Finish did.
            if out.status == StatusAction::Untouched {
                out.status = StatusAction::AlreadyRecorded;
            }
        }
        EndedRelease::NotHeld { holder } => {
            if holds {
                // Taken over between the read and the release (the lease had expired): the
                // status written above may be the newer execution's to correct; it rewrites
                // it at its next step.
                tracing::warn!(
                    migration = %store.migration_id(),
                    execution_name = %ended.name,
                    "the lease changed hands while the end was recorded"
                );
            }
            out.note = Some(match &holder {
                None => "no execution holds the lease: Finish released it, or it was never \
                         taken"
                    .into(),
                Some(h) => format!("the lease belongs to {h}, not to this execution"),
            });
            out.lease_holder = holder;
        }
    }
    Ok(out)
}

fn ended_status(
    mut status: Status,
    ended: &ExecutionEnded,
    phase: &str,
    store: &StateStore,
) -> Status {
    let at = ended
        .stop_date
        .map(|ms| crate::state::fmt_time(&crate::state::from_unix_millis(ms)))
        .unwrap_or_else(|| "an unknown time".into());
    status.phase = phase.to_owned();
    status.stopped = true;
    status.detail = Some(format!(
        "execution {} ended {} at {at} without reaching Finish; its lease is released once \
         no step it started can still be running ({} minutes after it ended): start the \
         migration again then to resume it",
        ended.name,
        ended.status,
        (MAX_INVOCATION + crate::state::TAKEOVER_GRACE)
            .as_secs()
            .div_ceil(60)
    ));
    status.last_error = Some(ended.error_text());
    status.execution = Some(ended.name.clone());
    status.ended_at = ended.stop_date;
    status.updated_at = unix_millis(store.now());
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(detail: Value) -> Value {
        json!({"version": "0", "id": "e1", "detail-type": DETAIL_TYPE, "source": "aws.states",
               "detail": detail})
    }

    #[test]
    fn reads_the_detail_and_maps_statuses_to_phases() {
        let e = ExecutionEnded::from_event(&event(json!({
            "executionArn": "arn:aws:states:us-east-1:1:execution:sm:run-c2",
            "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:sm",
            "name": "run-c2", "status": "TIMED_OUT", "startDate": 1, "stopDate": 2,
            "input": null, "inputDetails": {"included": false},
            "output": null, "error": null, "cause": null
        })))
        .unwrap();
        assert_eq!(e.name, "run-c2");
        assert_eq!(e.input, None);
        assert_eq!(e.stop_date, Some(2));
        assert_eq!(e.phase(), Some("timed_out"));
        assert_eq!(e.error_text(), "States.Timeout");
        for (status, phase) in [
            ("FAILED", Some("failed")),
            ("ABORTED", Some("aborted")),
            ("SUCCEEDED", None),
        ] {
            let e = ExecutionEnded {
                status: status.into(),
                ..e.clone()
            };
            assert_eq!(e.phase(), phase, "{status}");
        }
    }

    #[test]
    fn refuses_other_events_naming_the_expected_one() {
        let err =
            ExecutionEnded::from_event(&json!({"detail-type": "Object Created"})).unwrap_err();
        assert_eq!(err.name, ErrorName::ConfigInvalid);
        assert!(err.message.contains(DETAIL_TYPE), "{}", err.message);
        let err = ExecutionEnded::from_event(&event(json!({"status": "FAILED"}))).unwrap_err();
        assert!(err.message.contains("executionArn"), "{}", err.message);
    }

    #[test]
    fn error_text_is_bounded_and_keeps_the_error_name() {
        let e = ExecutionEnded {
            execution_arn: "a".into(),
            name: "n".into(),
            status: "FAILED".into(),
            stop_date: None,
            input: None,
            error: Some("States.DataLimitExceeded".into()),
            cause: Some("é".repeat(5_000)),
        };
        let text = e.error_text();
        assert!(text.starts_with("States.DataLimitExceeded: é"));
        assert!(
            text.len() <= MAX_ERROR_TEXT + '…'.len_utf8(),
            "{}",
            text.len()
        );
    }

    #[test]
    fn inputs_without_a_valid_config_are_named_not_quoted() {
        assert!(migration_config("not json")
            .unwrap_err()
            .contains("not JSON"));
        assert!(migration_config(r#"{"mode": "catch_up"}"#)
            .unwrap_err()
            .contains("no \"config\""));
    }
}
