//! `begin` and `finish`: the lease around a migration execution (invariant 4), the binlog
//! start position P0 (invariant 3), and the recorded outcome.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::context::Context;
use super::error::{ErrorName, StepError};
use crate::config::MigrationType;
use crate::mysql;
use crate::state::{unix_millis, Checkpoint, StateError, StateStore, Status};

/// How long a lease lasts without renewal; steps renew it while they work.
pub const LEASE_TTL: Duration = Duration::from_secs(3600);

/// The state store of this migration.
pub fn state_store(ctx: &Context) -> StateStore {
    StateStore::new(
        ctx.destination.clone(),
        ctx.config.destination.state_table.clone(),
        ctx.config.migration_id.clone(),
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginOutput {
    /// Who holds the lease: this execution.
    pub lease_owner: String,
    /// The binlog position incremental replay starts from (P0), when incremental is on.
    pub start_position: Option<Checkpoint>,
    /// The name a continue-as-new execution takes (deterministic, so a retried
    /// startExecution cannot start two).
    pub next_execution_name: String,
    /// The config's effective values the state machine branches on.
    pub settings: Settings,
}

/// Values the state machine reads (defaults applied), so the ASL never guesses defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub migration_types: Vec<MigrationType>,
    /// Chunks copied at once (DTS "threads" of the full migration).
    pub max_concurrency: u32,
    pub idle_wait_seconds: u32,
    pub continue_as_new_after: u32,
}

/// `name-c1`, `name-c2`, …: the successor of an execution name (at most 80 characters).
pub fn next_execution_name(name: &str) -> String {
    let (base, n) = continuation_of(name).unwrap_or((name, 0));
    let suffix = format!("-c{}", n + 1);
    let mut base = base.to_owned();
    base.truncate(80 - suffix.len());
    base + &suffix
}

/// Whether `name` is a continue-as-new execution's (`…-cN`, made by [`next_execution_name`]).
pub fn is_continuation(name: &str) -> bool {
    continuation_of(name).is_some()
}

/// `(base, N)` of a name ending in `-cN`.
fn continuation_of(name: &str) -> Option<(&str, u64)> {
    match name.rsplit_once("-c") {
        Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
            Some((b, n.parse::<u64>().unwrap_or(0)))
        }
        _ => None,
    }
}

/// Takes the lease for `owner` (re-entrant for the same owner) and, when incremental is
/// selected and no checkpoint exists yet, records P0 before any row is read.
pub async fn begin(ctx: &Context, owner: &str) -> Result<BeginOutput, StepError> {
    let store = state_store(ctx);
    store.ensure_table().await?;
    store.acquire_lease(owner, LEASE_TTL).await?;
    let mut start_position = None;
    if ctx.config.has(MigrationType::Incremental) {
        start_position = match store.checkpoint().await? {
            Some(cp) => Some(cp), // resume: P0 or a later checkpoint is already there
            None => {
                // A full copy that ran without a start position cannot be followed by a
                // replay: changes made during and after it are not in any checkpoint.
                if store.plan().await?.is_some() {
                    return Err(StepError::new(
                        ErrorName::ConfigInvalid,
                        format!(
                            "migration {} already ran its full copy without recording a binlog \
                             start position, so \"incremental\" cannot be added to it: changes \
                             made since the copy began would be lost. Fix: start a new migration \
                             (another migration_id) with migration_types including \"full\" \
                             and \"incremental\"",
                            ctx.config.migration_id
                        ),
                    ));
                }
                let mut conn = mysql::connect(&ctx.source).await?;
                let info = mysql::server_info(&mut conn).await;
                let pos = match info {
                    Ok(info) => mysql::binlog_position(&mut conn, &info).await,
                    Err(e) => Err(e),
                };
                mysql::close(conn).await;
                let pos = pos?;
                let cp = Checkpoint {
                    file: pos.file,
                    pos: pos.pos,
                    gtid_set: pos.gtid_set,
                    event_time: None,
                    seq: 1,
                    updated_at: unix_millis(store.now()),
                    events: 0,
                    rows_written: 0,
                };
                store.save_checkpoint(None, &cp).await?;
                tracing::info!(file = %cp.file, pos = cp.pos, "recorded binlog start position");
                Some(cp)
            }
        };
    }
    let mut status: Status = store.status().await?.unwrap_or_default();
    status.phase = "running".to_owned();
    status.stopped = false;
    status.detail = None;
    status.execution = Some(owner.to_owned());
    status.ended_at = None;
    status.updated_at = unix_millis(store.now());
    store.set_status(&status).await?;
    let cfg = &ctx.config;
    Ok(BeginOutput {
        lease_owner: owner.to_owned(),
        start_position,
        next_execution_name: next_execution_name(owner),
        settings: Settings {
            migration_types: cfg.migration_types.clone(),
            max_concurrency: cfg.writer.thread_count.max(1),
            idle_wait_seconds: cfg.incremental.idle_wait_seconds,
            continue_as_new_after: cfg.incremental.continue_as_new_after,
        },
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishOutput {
    pub phase: String,
    pub dirty_rows: u64,
}

/// Records the outcome (`error` = the failure that ended the execution, if any) and releases
/// the lease, or hands it to `continue_as` (the continue-as-new execution). Safe to call when
/// `begin` never ran.
pub async fn finish(
    ctx: &Context,
    owner: Option<&str>,
    error: Option<&str>,
    continue_as: Option<&str>,
) -> Result<FinishOutput, StepError> {
    let store = state_store(ctx);
    store.ensure_table().await?;
    if let (Some(owner), Some(next), None) = (owner, continue_as, error) {
        // Hand over: release, then take it for the successor before it starts.
        store.release_lease(owner).await?;
        store.acquire_lease(next, LEASE_TTL).await?;
        return Ok(FinishOutput {
            phase: "continued".into(),
            dirty_rows: 0,
        });
    }
    let Some(owner) = owner else {
        // Begin never took the lease (e.g. LeaseHeld): the migration's status belongs to
        // whoever holds it; change nothing.
        return Ok(FinishOutput {
            phase: "not_started".into(),
            dirty_rows: 0,
        });
    };
    let phase = if error.is_some() {
        "failed"
    } else {
        "finished"
    };
    let dirty_rows = store.dirty_count().await?;
    let mut status = store.status().await?.unwrap_or_default();
    status.phase = phase.to_owned();
    status.stopped = true;
    status.detail = None;
    status.dirty_rows = dirty_rows;
    status.last_error = error.map(str::to_owned);
    status.execution = Some(owner.to_owned());
    status.ended_at = None;
    status.updated_at = unix_millis(store.now());
    store.set_status(&status).await?;
    store.release_lease(owner).await?;
    Ok(FinishOutput {
        phase: phase.to_owned(),
        dirty_rows,
    })
}

/// Updates the status phase, keeping the counters.
pub async fn set_phase(
    store: &StateStore,
    phase: &str,
    detail: Option<String>,
    add_rows: Option<u64>,
) -> Result<(), StateError> {
    let mut status: Status = store.status().await?.unwrap_or_default();
    status.phase = phase.to_owned();
    status.stopped = false;
    status.detail = detail;
    status.rows_copied += add_rows.unwrap_or(0);
    status.updated_at = unix_millis(store.now());
    store.set_status(&status).await
}

#[cfg(test)]
mod tests {
    use super::{is_continuation, next_execution_name};

    #[test]
    fn successor_names_count_up_and_fit() {
        assert_eq!(next_execution_name("run"), "run-c1");
        assert_eq!(next_execution_name("run-c1"), "run-c2");
        assert_eq!(next_execution_name("run-c99"), "run-c100");
        assert_eq!(next_execution_name("a-cx"), "a-cx-c1");
        assert!(next_execution_name(&"x".repeat(80)).len() <= 80);
        assert!(is_continuation("run-c3") && !is_continuation("run") && !is_continuation("a-cx"));
    }
}
