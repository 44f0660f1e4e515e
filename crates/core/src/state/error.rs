//! The state store's errors. Each message names the migration or row and says what to do.

use std::time::SystemTime;

use super::fmt_time;
use crate::error::{Class, ErrorName};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another execution holds the migration's lease (invariant 4).
    #[error(
        "migration {migration_id} is locked by execution {owner:?} until {}: only one execution \
         may run a migration at a time; wait for it to finish (or for the lease to expire) and \
         start again, or stop that execution",
        fmt_time(.expires_at)
    )]
    LeaseHeld {
        migration_id: String,
        owner: String,
        expires_at: SystemTime,
    },
    /// Renewing a lease that nobody holds any more (released, or expired and deleted).
    #[error(
        "execution {owner:?} no longer holds the lease of migration {migration_id} (it was \
         released); stop this execution and start the migration again"
    )]
    LeaseLost { migration_id: String, owner: String },
    /// Another binlog batch of this migration may still be writing (a retried or overlapping
    /// invocation): this one waits until that batch's deadline has passed.
    #[error(
        "another binlog batch of migration {migration_id} may write until {} (an overlapping \
         invocation of the same execution); this one is retried after it",
        fmt_time(.until)
    )]
    BatchBusy {
        migration_id: String,
        until: SystemTime,
    },
    /// The binlog checkpoint is not the one the writer started from: someone else moved it.
    #[error(
        "the binlog checkpoint of migration {migration_id} moved under this execution (expected \
         seq {}, found {}): another execution is writing this migration; stop this one and \
         make sure only one execution runs (the lease should guarantee that)",
        seq_text(.expected),
        seq_text(.found)
    )]
    CheckpointConflict {
        migration_id: String,
        expected: Option<u64>,
        found: Option<u64>,
    },
    /// A chunk plan already exists; it is never replaced.
    #[error(
        "migration {migration_id} already has a chunk plan ({chunk_count} chunks): resume it \
         (read the plan and its unfinished chunks) instead of planning again; to start the \
         full copy over, reset the migration's state first"
    )]
    PlanConflict {
        migration_id: String,
        chunk_count: u32,
    },
    /// A chunk index outside the stored plan.
    #[error(
        "chunk {index} of migration {migration_id} does not exist: create the chunk plan first, \
         and use an index below its chunk_count"
    )]
    ChunkNotFound { migration_id: String, index: u32 },
    /// The state table exists but cannot hold migration state.
    #[error(
        "Tablestore table {table} cannot be used as the migration state table: {detail}. Set \
         destination.state_table to a table name that does not exist yet (tsmigrate creates \
         it), or fix that table"
    )]
    TableMismatch { table: String, detail: String },
    /// A state row that cannot be decoded.
    #[error(
        "state row {key:?} is unreadable: {detail}. It was written by another tool or version, \
         or edited by hand: fix or delete that row of the state table"
    )]
    Corrupt { key: String, detail: String },
    /// A request the store refuses (a caller bug).
    #[error("invalid state store request: {0}")]
    Invalid(String),
    /// The Tablestore call failed.
    #[error(
        "state store: {0}. Retry if the problem is transient; otherwise check the destination \
         endpoint, credentials and destination.state_table"
    )]
    Tablestore(#[from] tablestore::Error),
}

fn seq_text(seq: &Option<u64>) -> String {
    match seq {
        Some(s) => s.to_string(),
        None => "none (no checkpoint)".into(),
    }
}

impl StateError {
    /// What this failure means: the destination's class for a Tablestore error; a lease held
    /// or lost is `Migration.LeaseHeld`; conflicts and corruption are never retried.
    pub fn class(&self) -> Class {
        match self {
            StateError::Tablestore(e) => Class::of_destination(e),
            StateError::LeaseHeld { .. } | StateError::LeaseLost { .. } => {
                Class::Definite(ErrorName::LeaseHeld)
            }
            StateError::BatchBusy { .. } => Class::Transient,
            // Another writer moved the checkpoint: fenced out, like a lost lease.
            StateError::CheckpointConflict { .. } => Class::Definite(ErrorName::LeaseHeld),
            _ => Class::Definite(ErrorName::Fatal),
        }
    }

    pub(super) fn corrupt(key: &str, detail: impl Into<String>) -> Self {
        StateError::Corrupt {
            key: key.to_owned(),
            detail: detail.into(),
        }
    }
}
