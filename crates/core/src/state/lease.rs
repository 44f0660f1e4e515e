//! The migration lease (invariant 4): one writer per migration.
//!
//! The `lease` row holds `owner` and `expires_at` (unix ms). It is created only with
//! `EXPECT_NOT_EXIST` and changed only under a column condition on the exact owner and expiry
//! that were read, so of two racing acquirers exactly one wins; the other re-reads and sees
//! the winner's lease.
//!
//! Fencing of data writes: the owner is an execution, and one execution may have two binlog
//! invocations alive at once (a Step Functions retry while the first Lambda still runs). A
//! batch therefore claims the writing slot with its own token and hard deadline
//! (`batch_token`, `batch_until`); another token takes over only after that deadline plus
//! [`TAKEOVER_GRACE`] has passed or the holder released it. Lambda stops an invocation at its
//! deadline, so a stale batch can never write older row images after a newer one.

use std::time::{Duration, SystemTime};

use super::columns::Cols;
use super::{condition_failed, from_unix_millis, unix_millis, StateError, StateStore};
use tablestore::{
    Cell, CellOp, ColumnCondition, Comparator, Condition, LogicalOp, Row, RowExistence, Value,
};

const KEY: &str = "lease";
/// Time after a batch's deadline before another batch may take its claim: requests the stale
/// invocation sent just before it was stopped have landed by then.
pub const TAKEOVER_GRACE: Duration = Duration::from_secs(30);
/// Rounds of read + conditional write before giving up under contention.
const ATTEMPTS: usize = 8;

/// Who holds a migration's lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub expires_at: SystemTime,
}

impl Lease {
    /// Whether the lease has expired at `now` (an expired lease may be taken over).
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }
}

pub(super) fn equals(column: &str, value: impl Into<Value>) -> ColumnCondition {
    ColumnCondition::Single {
        column: column.into(),
        comparator: Comparator::Equal,
        value: value.into(),
        pass_if_missing: false,
        latest_version_only: true,
    }
}

/// Passes while nobody holds the batch slot (no `batch_token` column, or an empty one).
fn no_batch_claim() -> ColumnCondition {
    ColumnCondition::Single {
        column: "batch_token".into(),
        comparator: Comparator::Equal,
        value: Value::String(String::new()),
        pass_if_missing: true,
        latest_version_only: true,
    }
}

impl StateStore {
    /// The current lease, expired or not; `None` when nobody holds it.
    pub async fn lease(&self) -> Result<Option<Lease>, StateError> {
        Ok(self.lease_and_claim().await?.map(|(lease, _)| lease))
    }

    /// The lease row, read once: the lease and the batch claim in it.
    async fn lease_and_claim(&self) -> Result<Option<(Lease, Option<BatchClaim>)>, StateError> {
        let Some(row) = self.get(KEY).await? else {
            return Ok(None);
        };
        let c = Cols::new(&row);
        let lease = Lease {
            owner: c.str("owner")?.to_owned(),
            expires_at: from_unix_millis(c.int("expires_at")?),
        };
        let claim = match (c.opt_str("batch_token")?, c.opt_int("batch_until")?) {
            (Some(token), Some(until)) => Some(BatchClaim {
                token: token.to_owned(),
                until: from_unix_millis(until),
            }),
            _ => None,
        };
        Ok(Some((lease, claim)))
    }

    /// Takes the lease for `owner` until now + `ttl`. Succeeds when nobody holds it, when it
    /// expired, or when `owner` already holds it (re-entrant: the same execution re-invoking a
    /// step; the expiry is extended). Otherwise [`StateError::LeaseHeld`].
    pub async fn acquire_lease(&self, owner: &str, ttl: Duration) -> Result<Lease, StateError> {
        check_owner(owner)?;
        let mut last_seen = None;
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let next = Lease {
                owner: owner.to_owned(),
                // Stored in ms: answer exactly what a later read returns.
                expires_at: from_unix_millis(unix_millis(now + ttl)),
            };
            let current = self.lease().await?;
            let result = match &current {
                None => {
                    let row = self.lease_row(&next, now);
                    self.client
                        .put_row(
                            &self.table,
                            &row,
                            &Condition::expect(RowExistence::ExpectNotExist),
                        )
                        .await
                }
                Some(cur) if cur.owner == owner || cur.is_expired_at(now) => {
                    let cond = Condition::expect(RowExistence::ExpectExist).with_column(
                        ColumnCondition::Composite {
                            op: LogicalOp::And,
                            conditions: vec![
                                equals("owner", cur.owner.as_str()),
                                equals("expires_at", unix_millis(cur.expires_at)),
                            ],
                        },
                    );
                    self.client
                        .update_row(&self.table, &self.pk(KEY), &lease_ops(&next, now), &cond)
                        .await
                }
                Some(cur) => {
                    return Err(StateError::LeaseHeld {
                        migration_id: self.migration_id.clone(),
                        owner: cur.owner.clone(),
                        expires_at: cur.expires_at,
                    })
                }
            };
            match result {
                Ok(()) => {
                    match &current {
                        Some(cur) if cur.owner != owner => tracing::warn!(
                            migration = %self.migration_id,
                            owner,
                            previous_owner = %cur.owner,
                            "took over an expired migration lease"
                        ),
                        Some(_) => tracing::debug!(
                            migration = %self.migration_id,
                            owner,
                            "re-acquired own migration lease"
                        ),
                        None => tracing::info!(
                            migration = %self.migration_id,
                            owner,
                            "acquired the migration lease"
                        ),
                    }
                    return Ok(next);
                }
                // Someone changed the row between our read and write (or the client retried
                // our own write after a lost answer): read again and decide again.
                Err(e) if condition_failed(&e) => last_seen = current,
                Err(e) => return Err(e.into()),
            }
        }
        let holder = match self.lease().await? {
            Some(l) => l,
            None => last_seen.unwrap_or(Lease {
                owner: "(contended)".into(),
                expires_at: self.now(),
            }),
        };
        Err(StateError::LeaseHeld {
            migration_id: self.migration_id.clone(),
            owner: holder.owner,
            expires_at: holder.expires_at,
        })
    }

    /// Extends `owner`'s lease to now + `ttl`; only while `owner` still holds it (even if it
    /// expired, as long as nobody took it over). Another holder → [`StateError::LeaseHeld`];
    /// no lease at all → [`StateError::LeaseLost`].
    pub async fn renew_lease(&self, owner: &str, ttl: Duration) -> Result<Lease, StateError> {
        check_owner(owner)?;
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let next = Lease {
                owner: owner.to_owned(),
                // Stored in ms: answer exactly what a later read returns.
                expires_at: from_unix_millis(unix_millis(now + ttl)),
            };
            let cond =
                Condition::expect(RowExistence::ExpectExist).with_column(equals("owner", owner));
            match self
                .client
                .update_row(&self.table, &self.pk(KEY), &lease_ops(&next, now), &cond)
                .await
            {
                Ok(()) => {
                    tracing::debug!(migration = %self.migration_id, owner, "renewed the migration lease");
                    return Ok(next);
                }
                Err(e) if condition_failed(&e) => match self.lease().await? {
                    None => return Err(self.lease_lost(owner)),
                    Some(cur) if cur.owner != owner => return Err(self.held(cur)),
                    // Ours after all (a concurrent re-acquire by the same owner): try again.
                    Some(_) => continue,
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(self.lease_lost(owner))
    }

    /// Gives the lease up. Only its owner may; releasing when nobody holds it is fine.
    /// Another holder → [`StateError::LeaseHeld`].
    pub async fn release_lease(&self, owner: &str) -> Result<(), StateError> {
        check_owner(owner)?;
        for _ in 0..ATTEMPTS {
            let cond =
                Condition::expect(RowExistence::ExpectExist).with_column(equals("owner", owner));
            match self
                .client
                .delete_row(&self.table, &self.pk(KEY), &cond)
                .await
            {
                Ok(()) => {
                    tracing::info!(migration = %self.migration_id, owner, "released the migration lease");
                    return Ok(());
                }
                Err(e) if condition_failed(&e) => match self.lease().await? {
                    None => return Ok(()),
                    Some(cur) if cur.owner != owner => return Err(self.held(cur)),
                    Some(_) => continue,
                },
                Err(e) => return Err(e.into()),
            }
        }
        match self.lease().await? {
            Some(cur) => Err(self.held(cur)),
            None => Ok(()),
        }
    }

    /// Frees the lease of an execution that ended without Finish (timed out, aborted, failed
    /// outside it), for the execution-ended handler: only while `owner` still holds it, so a
    /// lease handed to a continue-as-new successor, taken over, or never taken stays as it is.
    ///
    /// Step Functions does not stop the Lambda invocations an execution started when it ends:
    /// a CopyChunk or BinlogBatch may write until its own deadline. So the lease is free only
    /// from `free_at` on (the caller passes the end plus the longest an invocation can run):
    /// until then it stays, renamed `<owner>/ended` (no step of the ended execution can renew
    /// it, and no new execution can begin and race the stale writes). When `free_at` has
    /// passed and no binlog batch claim of the ended execution is live, the row is deleted;
    /// a live claim stays in the row either way, so the next batch waits for it to lapse.
    /// Every write is conditional on the row read, so a claim taken meanwhile is seen on the
    /// next round.
    pub async fn release_after_end(
        &self,
        owner: &str,
        free_at: SystemTime,
    ) -> Result<EndedRelease, StateError> {
        check_owner(owner)?;
        let ended_owner = format!("{owner}{ENDED_SUFFIX}");
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let Some((lease, claim)) = self.lease_and_claim().await? else {
                return Ok(EndedRelease::NotHeld { holder: None });
            };
            if lease.owner == ended_owner {
                return Ok(EndedRelease::AlreadyReleased);
            }
            if lease.owner != owner {
                return Ok(EndedRelease::NotHeld {
                    holder: Some(lease.owner),
                });
            }
            // The row exactly as read: owner, expiry and batch claim (or no claim).
            let token_condition = match &claim {
                Some(c) => equals("batch_token", c.token.as_str()),
                None => no_batch_claim(),
            };
            let cond = Condition::expect(RowExistence::ExpectExist).with_column(
                ColumnCondition::Composite {
                    op: LogicalOp::And,
                    conditions: vec![
                        equals("owner", owner),
                        equals("expires_at", unix_millis(lease.expires_at)),
                        token_condition,
                    ],
                },
            );
            let live = claim.filter(|c| now < c.until + TAKEOVER_GRACE);
            let free_at = free_at.max(now);
            let delete = free_at <= now && live.is_none();
            let result = if delete {
                self.client
                    .delete_row(&self.table, &self.pk(KEY), &cond)
                    .await
            } else {
                let ended = Lease {
                    owner: ended_owner.clone(),
                    expires_at: from_unix_millis(unix_millis(free_at)),
                };
                self.client
                    .update_row(&self.table, &self.pk(KEY), &lease_ops(&ended, now), &cond)
                    .await
            };
            match result {
                Ok(()) => {
                    tracing::info!(
                        migration = %self.migration_id,
                        owner,
                        free_in_ms = unix_millis(free_at) - unix_millis(now),
                        batch_claim_kept = live.is_some(),
                        "released the lease of an ended execution"
                    );
                    return Ok(if delete {
                        EndedRelease::Released
                    } else {
                        EndedRelease::Ended {
                            free_at,
                            claim_until: live.map(|c| c.until),
                        }
                    });
                }
                // The row changed between the read and the write (a batch claimed it, the
                // owner renewed): read again and decide again.
                Err(e) if condition_failed(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StateError::Invalid(format!(
            "the lease row of migration {} kept changing while releasing the lease of ended \
             execution {owner}; the handler is retried",
            self.migration_id
        )))
    }

    fn lease_row(&self, lease: &Lease, now: SystemTime) -> Row {
        self.row(
            KEY,
            vec![
                Cell::new("owner", lease.owner.as_str()),
                Cell::new("expires_at", unix_millis(lease.expires_at)),
                Cell::new("updated_at", unix_millis(now)),
            ],
        )
    }

    fn held(&self, cur: Lease) -> StateError {
        StateError::LeaseHeld {
            migration_id: self.migration_id.clone(),
            owner: cur.owner,
            expires_at: cur.expires_at,
        }
    }

    fn lease_lost(&self, owner: &str) -> StateError {
        StateError::LeaseLost {
            migration_id: self.migration_id.clone(),
            owner: owner.to_owned(),
        }
    }
}

/// Appended to an ended execution's name when its lease is expired in place
/// ([`StateStore::release_after_end`]): that execution can no longer renew it.
pub const ENDED_SUFFIX: &str = "/ended";

/// What [`StateStore::release_after_end`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedRelease {
    /// The lease row is gone: a new execution may begin at once.
    Released,
    /// The lease is the ended execution's `<owner>/ended` until `free_at` (a new execution may
    /// begin from then on), and keeps a binlog batch claim of the ended execution that may
    /// write until `claim_until`, if one is live; the next batch waits for it to lapse.
    Ended {
        free_at: SystemTime,
        claim_until: Option<SystemTime>,
    },
    /// An earlier call already expired it in place (a redelivered event).
    AlreadyReleased,
    /// The execution does not hold the lease (never took it, released it, handed it to a
    /// continue-as-new successor, or it was taken over): left as it is.
    NotHeld { holder: Option<String> },
}

/// Who may write binlog changes now: a batch's token and its hard deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchClaim {
    pub token: String,
    pub until: SystemTime,
}

impl StateStore {
    /// The current batch claim, if any.
    pub async fn batch_claim(&self) -> Result<Option<BatchClaim>, StateError> {
        Ok(self.lease_and_claim().await?.and_then(|(_, claim)| claim))
    }

    /// Claims the binlog-writing slot of `owner`'s lease for `token` until `until` (the
    /// invocation's hard deadline). Succeeds when no batch holds it, when the holder's
    /// deadline plus [`TAKEOVER_GRACE`] has passed, or when `token` holds it. Otherwise
    /// [`StateError::BatchBusy`] (retried: the other batch ends by its deadline).
    pub async fn claim_batch(
        &self,
        owner: &str,
        token: &str,
        until: SystemTime,
    ) -> Result<(), StateError> {
        check_owner(owner)?;
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let current = match self.lease_and_claim().await? {
                None => return Err(self.lease_lost(owner)),
                Some((cur, _)) if cur.owner != owner => return Err(self.held(cur)),
                Some((_, claim)) => claim,
            };
            let token_condition = match &current {
                None => no_batch_claim(),
                Some(c) if c.token == token || now >= c.until + TAKEOVER_GRACE => {
                    equals("batch_token", c.token.as_str())
                }
                Some(c) => {
                    return Err(StateError::BatchBusy {
                        migration_id: self.migration_id.clone(),
                        until: c.until,
                    })
                }
            };
            let cond = Condition::expect(RowExistence::ExpectExist).with_column(
                ColumnCondition::Composite {
                    op: LogicalOp::And,
                    conditions: vec![equals("owner", owner), token_condition],
                },
            );
            let ops = vec![
                CellOp::Put(Cell::new("batch_token", token)),
                CellOp::Put(Cell::new("batch_until", unix_millis(until))),
            ];
            match self
                .client
                .update_row(&self.table, &self.pk(KEY), &ops, &cond)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if condition_failed(&e) => match self.lease().await? {
                    None => return Err(self.lease_lost(owner)),
                    Some(cur) if cur.owner != owner => return Err(self.held(cur)),
                    // The claim changed between our read and write: decide again.
                    Some(_) => continue,
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(StateError::BatchBusy {
            migration_id: self.migration_id.clone(),
            until: self.now(),
        })
    }

    /// Ends `token`'s claim (after its checkpoint is saved). A claim already taken over is
    /// left alone: that batch wrote nothing after its deadline anyway.
    pub async fn release_batch(&self, token: &str) -> Result<(), StateError> {
        let cond =
            Condition::expect(RowExistence::ExpectExist).with_column(equals("batch_token", token));
        let ops = vec![
            CellOp::DeleteAllVersions {
                name: "batch_token".into(),
            },
            CellOp::DeleteAllVersions {
                name: "batch_until".into(),
            },
        ];
        match self
            .client
            .update_row(&self.table, &self.pk(KEY), &ops, &cond)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) fn lease_ops(lease: &Lease, now: SystemTime) -> Vec<CellOp> {
    vec![
        CellOp::Put(Cell::new("owner", lease.owner.as_str())),
        CellOp::Put(Cell::new("expires_at", unix_millis(lease.expires_at))),
        CellOp::Put(Cell::new("updated_at", unix_millis(now))),
    ]
}

fn check_owner(owner: &str) -> Result<(), StateError> {
    if owner.is_empty() {
        return Err(StateError::Invalid(
            "a lease owner must be a non-empty name (the execution name)".into(),
        ));
    }
    Ok(())
}
