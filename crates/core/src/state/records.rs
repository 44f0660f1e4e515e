//! Retry windows (`failure/<kind>`), dirty-data records (`dirty/<table>/<pk>`) and the
//! migration status (`status`).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::columns::{json_cell, Cols};
use super::{condition_failed, from_unix_millis, prefix_end, StateError, StateStore};
use tablestore::{Cell, Condition, RowExistence};

const DIRTY_PREFIX: &str = "dirty/";
const STOP_KEY: &str = "stop";
const STATUS_KEY: &str = "status";
/// Tablestore's limit for a STRING primary-key value is 1 KB; longer dirty keys are shortened.
const MAX_KEY_BYTES: usize = tablestore::limits::MAX_PK_VALUE_BYTES;
/// Rounds of conditional write + read in `record_failure` before giving up.
const FAILURE_ATTEMPTS: usize = 4;

/// Which retry window a failure counts against (design §5: `retry.connection_minutes` and
/// `retry.other_minutes`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// Source or destination unreachable (`Migration.ConnectionFailed`).
    Connection,
    /// Other retriable problems (`Migration.Transient`).
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connection => "connection",
            FailureKind::Other => "other",
        }
    }

    fn key(self) -> String {
        format!("failure/{}", self.as_str())
    }
}

/// A row skipped under the `skip` dirty-data policy. Holds the key text only, never row data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DirtyRecord {
    /// Source table.
    pub table: String,
    /// Human-readable primary-key text of the skipped row (e.g. `id=42`).
    pub primary_key: String,
    /// Why it was skipped (what could not be mapped or written), and the fix.
    pub reason: String,
    /// Unix ms.
    pub at: i64,
}

/// The migration's status as operators see it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// e.g. `precheck`, `schema`, `full`, `incremental`, `finished`, `failed`.
    pub phase: String,
    /// The migration ended (finished, failed or stopped) and no execution is running it.
    pub stopped: bool,
    #[serde(default)]
    pub detail: Option<String>,
    /// Unix ms.
    pub updated_at: i64,
    #[serde(default)]
    pub rows_copied: u64,
    #[serde(default)]
    pub dirty_rows: u64,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The execution that wrote this status (Begin, Finish, or the execution-ended handler):
    /// tells the handler whether Finish already recorded that execution's end.
    #[serde(default)]
    pub execution: Option<String>,
    /// Unix ms the execution stopped, when the execution-ended handler recorded an end that
    /// Finish did not (timed out, aborted, failed outside Finish).
    #[serde(default)]
    pub ended_at: Option<i64>,
}

/// `dirty/<table>/<pk>`, shortened to fit a key value: a prefix, `#`, and a SHA-256 of the
/// whole text (the full key text stays in the `primary_key` column).
fn dirty_key(table: &str, primary_key: &str) -> String {
    let full = format!("{DIRTY_PREFIX}{table}/{primary_key}");
    if full.len() <= MAX_KEY_BYTES {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let mut cut = MAX_KEY_BYTES - 1 - hash.len();
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}#{hash}", &full[..cut])
}

impl StateStore {
    /// Records a failure of `kind` now and answers when the current run of consecutive
    /// failures began: the first call's time, kept until [`clear_failure`](Self::clear_failure).
    pub async fn record_failure(&self, kind: FailureKind) -> Result<SystemTime, StateError> {
        let key = kind.key();
        for _ in 0..FAILURE_ATTEMPTS {
            let now = self.now_ms();
            let row = self.row(&key, vec![Cell::new("first_failed_at", now)]);
            match self
                .client
                .put_row(
                    &self.table,
                    &row,
                    &Condition::expect(RowExistence::ExpectNotExist),
                )
                .await
            {
                Ok(()) => {
                    tracing::info!(
                        migration = %self.migration_id,
                        kind = kind.as_str(),
                        "first failure of a run: retry window starts"
                    );
                    return Ok(from_unix_millis(now));
                }
                Err(e) if condition_failed(&e) => {
                    if let Some(first) = self.failure(kind).await? {
                        return Ok(first);
                    }
                    // Cleared in between: try again.
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StateError::Invalid(format!(
            "the {key} row kept changing while recording a failure; retry"
        )))
    }

    /// When the current run of consecutive failures of `kind` began, if one is running.
    pub async fn failure(&self, kind: FailureKind) -> Result<Option<SystemTime>, StateError> {
        match self.get(&kind.key()).await? {
            None => Ok(None),
            Some(row) => Ok(Some(from_unix_millis(
                Cols::new(&row).int("first_failed_at")?,
            ))),
        }
    }

    /// Ends the run of failures of `kind` (call after a success).
    pub async fn clear_failure(&self, kind: FailureKind) -> Result<(), StateError> {
        self.client
            .delete_row(&self.table, &self.pk(&kind.key()), &Condition::ignore())
            .await?;
        Ok(())
    }

    /// Records a skipped row. Recording the same table + key again replaces the record (a
    /// replay does not count twice).
    pub async fn record_dirty(&self, rec: &DirtyRecord) -> Result<(), StateError> {
        let key = dirty_key(&rec.table, &rec.primary_key);
        let row = self.row(
            &key,
            vec![
                Cell::new("table", rec.table.as_str()),
                Cell::new("primary_key", rec.primary_key.as_str()),
                Cell::new("reason", rec.reason.as_str()),
                Cell::new("at", rec.at),
            ],
        );
        self.client
            .put_row(&self.table, &row, &Condition::ignore())
            .await?;
        tracing::debug!(migration = %self.migration_id, table = %rec.table, "recorded a dirty row");
        Ok(())
    }

    /// Up to `limit` dirty records, ordered by table and key text.
    pub async fn dirty_records(&self, limit: usize) -> Result<Vec<DirtyRecord>, StateError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(
            DIRTY_PREFIX,
            &prefix_end(DIRTY_PREFIX),
            vec![],
            None,
            |row| {
                let c = Cols::new(&row);
                out.push(DirtyRecord {
                    table: c.str("table")?.to_owned(),
                    primary_key: c.str("primary_key")?.to_owned(),
                    reason: c.str("reason")?.to_owned(),
                    at: c.int("at")?,
                });
                Ok(out.len() < limit)
            },
        )
        .await?;
        Ok(out)
    }

    /// Number of dirty records (reads every record's key: meant for reports, not hot paths).
    pub async fn dirty_count(&self) -> Result<u64, StateError> {
        let mut n = 0u64;
        self.scan(
            DIRTY_PREFIX,
            &prefix_end(DIRTY_PREFIX),
            vec!["at".into()],
            None,
            |_| {
                n += 1;
                Ok(true)
            },
        )
        .await?;
        Ok(n)
    }

    /// Asks the migration to stop for cut-over (`tsmigrate stop`): the binlog loop ends at its
    /// next batch and reports success; batches do nothing while the request stands.
    pub async fn request_stop(&self, at: i64) -> Result<(), StateError> {
        let row = self.row(STOP_KEY, vec![Cell::new("requested_at", at)]);
        self.client
            .put_row(&self.table, &row, &Condition::ignore())
            .await?;
        tracing::info!(migration = %self.migration_id, "stop requested");
        Ok(())
    }

    /// When a stop was requested (unix ms), if one stands.
    pub async fn stop_requested(&self) -> Result<Option<i64>, StateError> {
        match self.get(STOP_KEY).await? {
            None => Ok(None),
            Some(row) => Ok(Some(Cols::new(&row).int("requested_at")?)),
        }
    }

    /// Withdraws a stop request (`tsmigrate stop --resume`).
    pub async fn clear_stop(&self) -> Result<(), StateError> {
        self.client
            .delete_row(&self.table, &self.pk(STOP_KEY), &Condition::ignore())
            .await?;
        Ok(())
    }

    /// The stored status, if any.
    pub async fn status(&self) -> Result<Option<Status>, StateError> {
        match self.get(STATUS_KEY).await? {
            None => Ok(None),
            Some(row) => Ok(Some(Cols::new(&row).json("json")?)),
        }
    }

    /// Replaces the status.
    pub async fn set_status(&self, status: &Status) -> Result<(), StateError> {
        let row = self.row(
            STATUS_KEY,
            vec![
                Cell::new("phase", status.phase.as_str()),
                Cell::new("stopped", status.stopped),
                Cell::new("updated_at", status.updated_at),
                json_cell("json", status)?,
            ],
        );
        self.client
            .put_row(&self.table, &row, &Condition::ignore())
            .await?;
        tracing::debug!(
            migration = %self.migration_id,
            phase = %status.phase,
            stopped = status.stopped,
            "saved the migration status"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_dirty_keys_are_kept() {
        assert_eq!(dirty_key("orders", "id=42"), "dirty/orders/id=42");
    }

    #[test]
    fn long_dirty_keys_are_shortened_and_distinct() {
        let a = "é".repeat(700);
        let b = format!("{a}x");
        let ka = dirty_key("t", &a);
        let kb = dirty_key("t", &b);
        assert!(ka.len() <= MAX_KEY_BYTES, "{}", ka.len());
        assert!(ka.starts_with("dirty/t/"));
        assert_ne!(ka, kb);
    }

    #[test]
    fn kinds_have_stable_keys() {
        assert_eq!(FailureKind::Connection.key(), "failure/connection");
        assert_eq!(FailureKind::Other.key(), "failure/other");
    }
}
