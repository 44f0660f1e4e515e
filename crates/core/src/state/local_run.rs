//! Local runs (`tsmigrate run`): the process that runs a migration on a workstation or server,
//! recorded so that a run restarted after `kill -9` (or a crash, or a reboot) takes over its
//! dead predecessor's lease and batch claim at once instead of waiting for them to expire (the
//! lease lasts an hour), while a second live run of the same migration is refused. The caller
//! (the CLI) decides whether a recorded process is alive; the store only records and swaps.

use std::time::Duration;

use super::columns::Cols;
use super::lease::{equals, lease_ops};
use super::{condition_failed, unix_millis, Lease, StateError, StateStore};
use tablestore::{Cell, CellOp, ColumnCondition, Condition, LogicalOp, RowExistence};

const KEY: &str = "local_run";

impl StateStore {
    /// The process recorded by the last local run (`host/pid/start`), if any.
    pub async fn local_run(&self) -> Result<Option<String>, StateError> {
        match self.get(KEY).await? {
            None => Ok(None),
            Some(row) => Ok(Some(Cols::new(&row).str("process")?.to_owned())),
        }
    }

    /// Records `process` as the local run, only if the record is still `previous` (what the
    /// caller read and judged): of two runs starting at once, one wins, the other gets
    /// [`StateError::LeaseHeld`].
    pub async fn set_local_run(
        &self,
        previous: Option<&str>,
        process: &str,
    ) -> Result<(), StateError> {
        let row = self.row(
            KEY,
            vec![
                Cell::new("process", process),
                Cell::new("updated_at", unix_millis(self.now())),
            ],
        );
        let cond = match previous {
            None => Condition::expect(RowExistence::ExpectNotExist),
            Some(p) => {
                Condition::expect(RowExistence::ExpectExist).with_column(equals("process", p))
            }
        };
        match self.client.put_row(&self.table, &row, &cond).await {
            Ok(()) => Ok(()),
            Err(e) if condition_failed(&e) => Err(StateError::LeaseHeld {
                migration_id: self.migration_id.clone(),
                owner: format!(
                    "local run {}",
                    self.local_run().await?.unwrap_or_else(|| "(gone)".into())
                ),
                expires_at: self.now(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives `held` (the lease as read) to `owner` for `ttl` and ends its batch claim: the
    /// caller established that the process holding both is gone. Fails with
    /// [`StateError::LeaseHeld`] if the lease changed since it was read.
    pub async fn take_over_lease(
        &self,
        held: &Lease,
        owner: &str,
        ttl: Duration,
    ) -> Result<(), StateError> {
        let now = self.now();
        let next = Lease {
            owner: owner.to_owned(),
            expires_at: super::from_unix_millis(unix_millis(now + ttl)),
        };
        let mut ops = lease_ops(&next, now);
        ops.push(CellOp::DeleteAllVersions {
            name: "batch_token".into(),
        });
        ops.push(CellOp::DeleteAllVersions {
            name: "batch_until".into(),
        });
        let cond =
            Condition::expect(RowExistence::ExpectExist).with_column(ColumnCondition::Composite {
                op: LogicalOp::And,
                conditions: vec![
                    equals("owner", held.owner.as_str()),
                    equals("expires_at", unix_millis(held.expires_at)),
                ],
            });
        match self
            .client
            .update_row(&self.table, &self.pk("lease"), &ops, &cond)
            .await
        {
            Ok(()) => {
                tracing::warn!(
                    migration = %self.migration_id,
                    owner,
                    previous_owner = %held.owner,
                    "took over the lease of a local run that is no longer running"
                );
                Ok(())
            }
            Err(e) if condition_failed(&e) => Err(match self.lease().await? {
                Some(cur) => StateError::LeaseHeld {
                    migration_id: self.migration_id.clone(),
                    owner: cur.owner,
                    expires_at: cur.expires_at,
                },
                None => StateError::LeaseLost {
                    migration_id: self.migration_id.clone(),
                    owner: held.owner.clone(),
                },
            }),
            Err(e) => Err(e.into()),
        }
    }
}
