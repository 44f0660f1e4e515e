//! The binlog checkpoint (invariant 2): where incremental replay resumes.
//!
//! The `binlog` row is replaced as a whole on every save, conditionally: the first save
//! expects no row, every later one expects the stored `seq` to equal the `seq` of the
//! checkpoint the writer started from. `seq` increases with every save.

use serde::{Deserialize, Serialize};

use super::columns::{to_i64, Cols};
use super::{condition_failed, StateError, StateStore};
use tablestore::{Cell, ColumnCondition, Comparator, Condition, RowExistence};

const KEY: &str = "binlog";

/// A binlog position after a committed transaction whose writes were all acknowledged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Binlog file name.
    pub file: String,
    /// Position in `file` (the end of the last applied transaction).
    pub pos: u64,
    /// Executed GTID set, when the source uses GTIDs.
    pub gtid_set: Option<String>,
    /// Unix seconds of the last applied event (for lag), if any event was applied.
    pub event_time: Option<i64>,
    /// Increases with every save; the condition of the next save.
    pub seq: u64,
    /// Unix ms of the save.
    pub updated_at: i64,
    /// Binlog events read and row changes written since P0, in all (for progress and rates).
    pub events: u64,
    pub rows_written: u64,
}

impl StateStore {
    /// The stored checkpoint, if any.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, StateError> {
        let Some(row) = self.get(KEY).await? else {
            return Ok(None);
        };
        let c = Cols::new(&row);
        Ok(Some(Checkpoint {
            file: c.str("file")?.to_owned(),
            pos: c.u64("pos")?,
            gtid_set: c.opt_str("gtid_set")?.map(str::to_owned),
            event_time: c.opt_int("event_time")?,
            seq: c.u64("seq")?,
            updated_at: c.int("updated_at")?,
            // Absent in checkpoints saved before these counters existed.
            events: c.opt_int("events")?.map_or(0, |n| n.max(0) as u64),
            rows_written: c.opt_int("rows_written")?.map_or(0, |n| n.max(0) as u64),
        }))
    }

    /// Stores `next`, provided the stored checkpoint is still `previous` (`None`: no checkpoint
    /// stored yet). Call only after every write up to `next` was acknowledged. `next.seq` must
    /// exceed `previous.seq`. A moved checkpoint → [`StateError::CheckpointConflict`], and the
    /// stored checkpoint is left as it is.
    pub async fn save_checkpoint(
        &self,
        previous: Option<&Checkpoint>,
        next: &Checkpoint,
    ) -> Result<(), StateError> {
        if let Some(p) = previous {
            if next.seq <= p.seq {
                return Err(StateError::Invalid(format!(
                    "a new checkpoint needs a seq above the previous one ({} <= {})",
                    next.seq, p.seq
                )));
            }
        }
        let mut cells = vec![
            Cell::new("file", next.file.as_str()),
            Cell::new("pos", to_i64("checkpoint pos", next.pos)?),
            Cell::new("seq", to_i64("checkpoint seq", next.seq)?),
            Cell::new("updated_at", next.updated_at),
            Cell::new("events", to_i64("checkpoint events", next.events)?),
            Cell::new(
                "rows_written",
                to_i64("checkpoint rows", next.rows_written)?,
            ),
        ];
        if let Some(g) = &next.gtid_set {
            cells.push(Cell::new("gtid_set", g.as_str()));
        }
        if let Some(t) = next.event_time {
            cells.push(Cell::new("event_time", t));
        }
        let cond = match previous {
            None => Condition::expect(RowExistence::ExpectNotExist),
            Some(p) => {
                Condition::expect(RowExistence::ExpectExist).with_column(ColumnCondition::Single {
                    column: "seq".into(),
                    comparator: Comparator::Equal,
                    value: to_i64("checkpoint seq", p.seq)?.into(),
                    pass_if_missing: false,
                    latest_version_only: true,
                })
            }
        };
        match self
            .client
            .put_row(&self.table, &self.row(KEY, cells), &cond)
            .await
        {
            Ok(()) => {
                tracing::debug!(
                    migration = %self.migration_id,
                    seq = next.seq,
                    file = %next.file,
                    pos = next.pos,
                    "saved the binlog checkpoint"
                );
                Ok(())
            }
            Err(e) if condition_failed(&e) => {
                let found = self.checkpoint().await?;
                if found.as_ref() == Some(next) {
                    // Our own write, applied before the client retried it.
                    return Ok(());
                }
                tracing::warn!(
                    migration = %self.migration_id,
                    expected = ?previous.map(|p| p.seq),
                    found = ?found.as_ref().map(|f| f.seq),
                    "the binlog checkpoint moved under this execution"
                );
                Err(StateError::CheckpointConflict {
                    migration_id: self.migration_id.clone(),
                    expected: previous.map(|p| p.seq),
                    found: found.map(|f| f.seq),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}
