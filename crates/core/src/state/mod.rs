//! # The migration state store (design §7)
//!
//! Everything a migration must remember between short-lived step invocations lives in one
//! Tablestore table (config `destination.state_table`, default `tsmigrate_state`), keyed by
//! `(migration_id STRING, key STRING)`, one version per column, no TTL. Several migrations may
//! share the table. Rows (the `key` column):
//!
//! | key | columns | written by |
//! |---|---|---|
//! | `lease` | `owner`, `expires_at` (ms), `updated_at`; a binlog batch's `batch_token`, `batch_until` (ms) | [`StateStore::acquire_lease`] and friends; [`StateStore::claim_batch`] |
//! | `binlog` | `file`, `pos`, `gtid_set`?, `event_time`? (s), `seq`, `updated_at` | [`StateStore::save_checkpoint`] |
//! | `plan` | `chunk_count`, `tables` (JSON), `created_at`, `plan_id` | [`StateStore::create_plan`] |
//! | `plan_draft` | `plan_id`, `chunk_count`, `tables` (JSON): a plan being built over several PlanChunks calls | [`StateStore::extend_plan_draft`], [`StateStore::commit_plan_draft`] |
//! | `chunk/000042` | `index`, `table`, `lower`?/`upper`?/`cursor`? (JSON), `rows`, `bytes`, `status`, `plan_id`, `updated_at` | [`StateStore::create_plan`], [`StateStore::save_chunk_progress`] |
//! | `failure/connection`, `failure/other` | `first_failed_at` | [`StateStore::record_failure`] |
//! | `dirty/<table>/<pk text>` | `table`, `primary_key`, `reason`, `at` | [`StateStore::record_dirty`] |
//! | `table/<name>` | `table` (the destination table this migration created or adopted) | `StateStore::mark_table_created` (read by `StateStore::created_tables`) |
//! | `status` | `phase`, `stopped`, `updated_at`, `json` (the whole [`Status`]) | [`StateStore::set_status`] |
//! | `stop` | `requested_at` (ms): a cut-over stop request | [`StateStore::request_stop`], [`StateStore::clear_stop`] |
//!
//! Chunk numbers are zero-padded to six digits so a GetRange over `chunk/` returns them in
//! order. Every `*_at` field is unix **milliseconds**, except [`Checkpoint::event_time`]
//! (unix seconds of the last applied binlog event, as the binlog carries it).
//!
//! ## Why it is safe (design §2)
//!
//! - **One writer per migration** (invariant 4): the lease row is only ever created with
//!   `EXPECT_NOT_EXIST` and only ever changed with a column condition on the exact values that
//!   were read (owner and expiry), so two executions racing for it cannot both win; renewals
//!   and releases are conditional on the owner.
//! - **Checkpoints never move backwards or sideways** (invariant 2): a checkpoint write is
//!   conditional on the previous checkpoint's `seq`; a writer holding a stale checkpoint gets
//!   [`StateError::CheckpointConflict`] and the stored checkpoint is unchanged. The caller
//!   saves a checkpoint only after its own writes were acknowledged.
//! - **A plan is created once**: chunk rows are written first, then the `plan` row with
//!   `EXPECT_NOT_EXIST`; the plan row is the commit point (no plan row = no plan, whatever chunk
//!   rows a crashed attempt left behind), and an existing plan is never replaced
//!   ([`StateStore::create_plan`] answers [`StateError::PlanConflict`]: resume it).
//! - Conditional writes that the client retried after a lost answer may see their own earlier
//!   success as a condition failure; each such path re-reads the row and recognises its own
//!   write (same owner, same checkpoint, same plan id) instead of reporting a conflict.
//!
//! The store knows nothing of MySQL: chunk bounds and cursors are opaque JSON values chosen by
//! the caller. It never logs row data (bounds, cursors, dirty keys).

mod checkpoint;
mod chunks;
mod columns;
mod error;
mod lease;
mod local_run;
mod plan_draft;
mod records;
mod schema_marks;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tablestore::batch::{BatchOptions, BatchWriter, WriteApi};
use tablestore::client::{BatchRow, Client};
use tablestore::error::code;
use tablestore::read::{Direction, RangeRequest, ReadOptions};
use tablestore::schema::{PkSchema, TableDef, TableDescription, TableOptions};
use tablestore::{
    Cell, ColumnCondition, Condition, Error as TsError, PkType, PkValue, PrimaryKey, Row, RowChange,
};

pub use checkpoint::Checkpoint;
pub use chunks::{ChunkRecord, ChunkStatus, Plan};
pub use error::StateError;
pub use lease::{BatchClaim, EndedRelease, Lease, ENDED_SUFFIX, TAKEOVER_GRACE};
pub use plan_draft::PlanDraft;
pub use records::{DirtyRecord, FailureKind, Status};

/// Name of the first primary-key column of the state table.
pub const PK_MIGRATION_ID: &str = "migration_id";
/// Name of the second primary-key column of the state table.
pub const PK_KEY: &str = "key";
/// Default state table name (config `destination.state_table`).
pub const DEFAULT_TABLE: &str = "tsmigrate_state";

/// Default rows per GetRange page.
const DEFAULT_PAGE_ROWS: i32 = 1000;
/// How long [`StateStore::ensure_table`] waits for a new table to accept writes.
const TABLE_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The clock the store reads "now" from (injectable for tests).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Unix milliseconds of a time (negative before 1970).
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The time at a number of unix milliseconds.
pub fn from_unix_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// RFC 3339 text of a time, for messages.
pub fn fmt_time(t: &SystemTime) -> String {
    let odt = time::OffsetDateTime::from(*t);
    odt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("{} ms since 1970", unix_millis(*t)))
}

/// The migration state store: typed access to one migration's rows of the state table.
/// Cheap to clone (shares the client's connection pool).
#[derive(Clone)]
pub struct StateStore {
    client: Client,
    table: String,
    migration_id: String,
    clock: Clock,
    page_rows: i32,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("table", &self.table)
            .field("migration_id", &self.migration_id)
            .field("page_rows", &self.page_rows)
            .finish_non_exhaustive()
    }
}

impl StateStore {
    /// A store for `migration_id`'s rows of `table`. Does no I/O; call
    /// [`ensure_table`](Self::ensure_table) once before the first use of a new table.
    pub fn new(client: Client, table: impl Into<String>, migration_id: impl Into<String>) -> Self {
        StateStore {
            client,
            table: table.into(),
            migration_id: migration_id.into(),
            clock: Arc::new(SystemTime::now),
            page_rows: DEFAULT_PAGE_ROWS,
        }
    }

    /// Replaces the clock (tests: expired leases and retry windows without sleeping).
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Rows per GetRange page for range reads (default 1000, at least 1; the service caps a
    /// page at 5000 rows / 4 MB anyway).
    pub fn with_page_rows(mut self, rows: u32) -> Self {
        self.page_rows = i32::try_from(rows.max(1)).unwrap_or(i32::MAX);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn migration_id(&self) -> &str {
        &self.migration_id
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// "Now" by the store's clock.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    fn now_ms(&self) -> i64 {
        unix_millis(self.now())
    }

    /// The table definition the store creates.
    pub fn table_def(&self) -> TableDef {
        TableDef {
            name: self.table.clone(),
            primary_key: vec![
                PkSchema::new(PK_MIGRATION_ID, PkType::String),
                PkSchema::new(PK_KEY, PkType::String),
            ],
            defined_columns: Vec::new(),
            options: TableOptions {
                time_to_live: -1,
                max_versions: 1,
                ..TableOptions::default()
            },
        }
    }

    /// Creates the state table if it is missing and waits until it accepts writes; checks
    /// that an existing table has the state table's key schema (and no TTL, updates allowed).
    /// Idempotent, and safe when several executions call it at once.
    pub async fn ensure_table(&self) -> Result<(), StateError> {
        match self.client.describe_table(&self.table).await {
            Ok(desc) => return self.verify_table(&desc),
            Err(e) if e.code() == Some(code::OBJECT_NOT_EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        match self.client.create_table(&self.table_def()).await {
            Ok(()) => {
                tracing::info!(table = %self.table, "created the migration state table");
            }
            Err(e) if e.code() == Some(code::OBJECT_ALREADY_EXIST) => {
                // Created by a concurrent execution: check it like any existing table.
                let desc = self.client.describe_table(&self.table).await?;
                self.verify_table(&desc)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.wait_writable().await
    }

    fn verify_table(&self, desc: &TableDescription) -> Result<(), StateError> {
        let pk = &desc.def.primary_key;
        let expected = [PK_MIGRATION_ID, PK_KEY];
        let schema_ok = pk.len() == expected.len()
            && pk.iter().zip(expected).all(|(c, name)| {
                c.name == name && c.pk_type == PkType::String && !c.auto_increment
            });
        if !schema_ok {
            let found = pk
                .iter()
                .map(|c| {
                    format!(
                        "{} {}{}",
                        c.name,
                        c.pk_type.name(),
                        if c.auto_increment {
                            " AUTO_INCREMENT"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(StateError::TableMismatch {
                table: self.table.clone(),
                detail: format!(
                    "its primary key is ({found}), not ({PK_MIGRATION_ID} STRING, {PK_KEY} STRING)"
                ),
            });
        }
        let opts = &desc.def.options;
        if opts.time_to_live != -1 {
            return Err(StateError::TableMismatch {
                table: self.table.clone(),
                detail: format!(
                    "its time to live is {} s, so migration state would expire (it must be -1)",
                    opts.time_to_live
                ),
            });
        }
        if !opts.allow_update {
            return Err(StateError::TableMismatch {
                table: self.table.clone(),
                detail: "it does not allow UpdateRow (allow_update is false)".into(),
            });
        }
        Ok(())
    }

    /// A new table may refuse writes for a while (OTSTableNotReady): probe with a write.
    async fn wait_writable(&self) -> Result<(), StateError> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        let probe_key = "table_probe";
        loop {
            let row = Row::new(self.pk(probe_key)).with("at", self.now_ms());
            let res = match self
                .client
                .put_row(&self.table, &row, &Condition::ignore())
                .await
            {
                Ok(()) => {
                    self.client
                        .delete_row(&self.table, &self.pk(probe_key), &Condition::ignore())
                        .await
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => return Ok(()),
                Err(e)
                    if matches!(
                        e.code(),
                        Some(code::TABLE_NOT_READY) | Some(code::OBJECT_NOT_EXIST)
                    ) && started.elapsed() + delay < TABLE_READY_TIMEOUT =>
                {
                    tracing::debug!(table = %self.table, error = %e, "state table not ready yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes every row of this migration (lease, checkpoint, plan, chunks, failures, dirty
    /// records, status); other migrations' rows are untouched. Returns the number of rows
    /// deleted. An administrative reset: only while no execution of the migration runs.
    pub async fn delete_migration(&self) -> Result<u64, StateError> {
        let mut keys = Vec::new();
        self.scan_bounds(PkValue::InfMin, PkValue::InfMax, vec![], None, |row| {
            keys.push(row.primary_key);
            Ok(true)
        })
        .await?;
        let n = keys.len() as u64;
        self.write_rows(keys.into_iter().map(RowChange::Delete).collect())
            .await?;
        tracing::info!(migration = %self.migration_id, rows = n, "deleted the migration's state");
        Ok(n)
    }

    // ------------------------------------------------------------ helpers for the submodules

    fn pk(&self, key: &str) -> PrimaryKey {
        PrimaryKey::new()
            .with(PK_MIGRATION_ID, self.migration_id.as_str())
            .with(PK_KEY, key)
    }

    fn row(&self, key: &str, cells: Vec<Cell>) -> Row {
        Row {
            primary_key: self.pk(key),
            cells,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Row>, StateError> {
        Ok(self
            .client
            .get_row(&self.table, &self.pk(key), &ReadOptions::default())
            .await?)
    }

    /// Visits the rows whose key is in `[from, to)` in key order, page by page, until `f`
    /// answers `false`. `columns` empty = all columns (a row lacking every listed column is
    /// not returned, as the service does).
    async fn scan(
        &self,
        from: &str,
        to: &str,
        columns: Vec<String>,
        filter: Option<ColumnCondition>,
        f: impl FnMut(Row) -> Result<bool, StateError>,
    ) -> Result<(), StateError> {
        self.scan_bounds(
            PkValue::String(from.to_owned()),
            PkValue::String(to.to_owned()),
            columns,
            filter,
            f,
        )
        .await
    }

    async fn scan_bounds(
        &self,
        from: PkValue,
        to: PkValue,
        columns: Vec<String>,
        filter: Option<ColumnCondition>,
        mut f: impl FnMut(Row) -> Result<bool, StateError>,
    ) -> Result<(), StateError> {
        let bound = |v: PkValue| {
            PrimaryKey::new()
                .with(PK_MIGRATION_ID, self.migration_id.as_str())
                .with(PK_KEY, v)
        };
        let mut req = RangeRequest {
            direction: Direction::Forward,
            start: bound(from),
            end: bound(to),
            limit: Some(self.page_rows),
            read: ReadOptions {
                columns_to_get: columns,
                filter,
                ..ReadOptions::default()
            },
        };
        loop {
            let page = self.client.get_range(&self.table, &req).await?;
            for row in page.rows {
                if !f(row)? {
                    return Ok(());
                }
            }
            match page.next_start {
                Some(next) => req.start = next,
                None => return Ok(()),
            }
        }
    }

    /// Writes changes (no conditions) through the client's batch writer: BatchWriteRow
    /// requests within the service's row and byte limits, one at a time, rows that failed
    /// retriably re-sent under the client's retry policy. Every row is written, or the error
    /// of the first row the service refused (or of the failed request) is returned.
    async fn write_rows(&self, changes: Vec<RowChange>) -> Result<(), StateError> {
        if changes.is_empty() {
            return Ok(());
        }
        let writer = BatchWriter::new(
            self.client.clone(),
            BatchOptions {
                api: WriteApi::BatchWriteRow,
                lanes: 1,
                concurrency: 1,
                row_retry: self.client.config().retry.clone(),
                ..BatchOptions::default()
            },
        );
        let rows = changes
            .into_iter()
            .map(|change| BatchRow::new(self.table.as_str(), change))
            .collect();
        let queued = writer.write_all(rows).await;
        let report = writer.close().await;
        queued?;
        match report?.failed.into_iter().next() {
            Some(failed) => Err(TsError::Service(failed.error).into()),
            None => Ok(()),
        }
    }
}

/// Whether a write failed its row or column condition.
fn condition_failed(e: &TsError) -> bool {
    e.code() == Some(code::CONDITION_CHECK_FAIL)
}

/// The smallest string above every string starting with `prefix` (prefix ends in ASCII).
fn prefix_end(prefix: &str) -> String {
    let mut s = prefix.to_owned();
    match s.pop() {
        Some(c) => {
            s.push(char::from_u32(c as u32 + 1).unwrap_or(char::MAX));
            s
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        for ms in [0i64, 1, 1_700_000_000_123, -5_000] {
            assert_eq!(unix_millis(from_unix_millis(ms)), ms);
        }
    }

    #[test]
    fn prefix_end_is_next_string() {
        assert_eq!(prefix_end("chunk/"), "chunk0");
        assert_eq!(prefix_end("dirty/"), "dirty0");
        assert!("dirty/zzz" < prefix_end("dirty/").as_str());
    }

    #[test]
    fn time_formats_as_rfc3339() {
        assert_eq!(fmt_time(&from_unix_millis(0)), "1970-01-01T00:00:00Z");
    }
}
