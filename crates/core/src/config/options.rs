//! The option sections of the config: the DTS-mirrored choices (migration and operation types,
//! conflicting tables, dirty data, write and batch-write mode), `writer`, `retry`, `throttle`,
//! `heartbeat`, `monitoring`, `full`, `incremental` and `float_precision`, each with its
//! defaults. Split from `config/mod.rs` so each config section reads on its own; re-exported as
//! `config::*`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validate;

// ---------------------------------------------------------------------------------------------
// Options mirrored from DTS

/// A migration phase.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MigrationType {
    /// Create the destination tables from the source schema.
    Schema,
    /// Copy the rows that exist when the migration starts.
    Full,
    /// Replay binlog changes (after the full copy, from the position recorded before it began).
    Incremental,
}

impl MigrationType {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationType::Schema => "schema",
            MigrationType::Full => "full",
            MigrationType::Incremental => "incremental",
        }
    }
}

/// A binlog row operation applied by incremental migration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OperationType {
    /// INSERT (and the insert half of REPLACE).
    Insert,
    /// UPDATE.
    Update,
    /// DELETE (and the delete half of REPLACE).
    Delete,
}

impl OperationType {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Insert => "insert",
            OperationType::Update => "update",
            OperationType::Delete => "delete",
        }
    }
}

/// What to do when a destination table already exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictingTables {
    /// The precheck fails if a destination table already exists (rename it with a `target`).
    #[default]
    PrecheckAndReport,
    /// Write into existing tables. Rows with the same primary key are overwritten by both the
    /// full copy and incremental replay; a table whose primary key differs fails the migration.
    IgnoreAndProceed,
}

/// What to do with a row that cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirtyDataPolicy {
    /// Record the row (table, key, reason) in the state store, count it, and go on.
    #[default]
    Skip,
    /// Stop the migration with an error naming the table, key and fix.
    Block,
}

/// How a row is written to Tablestore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// UpdateRow: put the migrated columns, delete those that are NULL; attribute columns that
    /// the source does not have are kept. A row whose migrated columns are all NULL is written
    /// with PutRow (key only), since Tablestore keeps no row that an update left without columns.
    #[default]
    UpdateRow,
    /// PutRow: replace the whole row with the migrated columns.
    OverwriteRow,
}

/// The Tablestore API used for batched writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchWriteMode {
    /// BulkImport (offline write): higher throughput and lower cost; DTS's recommendation.
    #[default]
    BulkImport,
    /// BatchWriteRow: up to 200 rows / 4 MB per request.
    BatchWriteRow,
}

/// Writer tuning (DTS: More Settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// Length of the queue of rows waiting to be written (1-65536).
    #[serde(default = "default_queue_size")]
    #[schemars(range(min = 1, max = validate::QUEUE_SIZE_MAX))]
    pub queue_size: u32,
    /// Threads handling write responses (1-64).
    #[serde(default = "default_thread_count")]
    #[schemars(range(min = 1, max = validate::THREAD_COUNT_MAX))]
    pub thread_count: u32,
    /// Write requests in flight to Tablestore at once, per writer (1-256): where each writer
    /// starts. It grows up to 4x while requests queue for a slot and Tablestore does not
    /// throttle (a distant endpoint needs more in flight), and halves on OTSServerBusy.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = validate::CONCURRENCY_MAX))]
    pub concurrency: u32,
    /// Incremental writes are split into this many buckets by primary key, each written in
    /// order, so changes to one key never race; more buckets, more parallelism. Must be <=
    /// concurrency.
    #[serde(default = "default_bucket_count")]
    #[schemars(range(min = 1, max = validate::CONCURRENCY_MAX))]
    pub bucket_count: u32,
}

fn default_queue_size() -> u32 {
    1024
}
fn default_thread_count() -> u32 {
    4
}
fn default_concurrency() -> u32 {
    8
}
fn default_bucket_count() -> u32 {
    8
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_size: default_queue_size(),
            thread_count: default_thread_count(),
            concurrency: default_concurrency(),
            bucket_count: default_bucket_count(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Advanced settings

/// Retry windows (DTS: Retry Time for Failed Connections / for Other Issues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Minutes (1-1440) a step keeps retrying while the source or destination is unreachable,
    /// counted from the first consecutive failure; then the migration fails with
    /// Migration.RetryWindowExceeded.
    #[serde(default = "default_connection_minutes")]
    #[schemars(range(min = 1, max = validate::RETRY_MINUTES_MAX))]
    pub connection_minutes: u32,
    /// Minutes (1-1440) other retriable problems (throttling, busy, lock waits) are retried.
    /// Must be less than connection_minutes.
    #[serde(default = "default_other_minutes")]
    #[schemars(range(min = 1, max = validate::RETRY_MINUTES_MAX))]
    pub other_minutes: u32,
}

fn default_connection_minutes() -> u32 {
    720
}
fn default_other_minutes() -> u32 {
    10
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            connection_minutes: default_connection_minutes(),
            other_minutes: default_other_minutes(),
        }
    }
}

/// Optional rate limits; unset means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Limits for full migration (only with "full" in migration_types).
    #[serde(default)]
    pub full: FullThrottle,
    /// Limits for incremental migration (only with "incremental" in migration_types).
    #[serde(default)]
    pub incremental: IncrementalThrottle,
}

/// Full-migration limits, each for the whole migration: the chunks copied at once
/// (writer.thread_count) each take an equal share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FullThrottle {
    /// Queries per second sent to the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_qps: Option<f64>,
    /// Rows per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// Megabytes per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_per_s: Option<f64>,
}

impl FullThrottle {
    pub fn is_set(&self) -> bool {
        self.source_qps.is_some() || self.rps.is_some() || self.mb_per_s.is_some()
    }
}

/// Incremental-migration limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrementalThrottle {
    /// Rows per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// Megabytes per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_per_s: Option<f64>,
}

impl IncrementalThrottle {
    pub fn is_set(&self) -> bool {
        self.rps.is_some() || self.mb_per_s.is_some()
    }
}

/// Heartbeat writes to the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Before each binlog batch, upsert this migration's row (`migration_id`, `beat_at`) in
    /// `table` in source.database, so the binlog moves forward and the lag stays measurable
    /// while the source is idle. Needs INSERT and UPDATE on the table (CREATE until it exists;
    /// precheck checks them) and `incremental` in migration_types; the table is never
    /// migrated.
    #[serde(default)]
    pub enabled: bool,
    /// The heartbeat table in source.database (created if missing).
    #[serde(default = "default_heartbeat_table")]
    pub table: String,
}

fn default_heartbeat_table() -> String {
    "tsmigrate_heartbeat".to_owned()
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            enabled: false,
            table: default_heartbeat_table(),
        }
    }
}

/// Alerting thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Alert (CloudWatch alarm on the lag metric) when incremental migration lags the source by
    /// more than this many seconds. Unset: no latency alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub latency_alert_seconds: Option<u64>,
}

/// Full-copy chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FullConfig {
    /// Rows per chunk: each table is split into primary-key ranges of at most about this many
    /// rows, each copied (and resumed) independently. A table of several chunks gets a multiple
    /// of writer.thread_count of them, so its last wave keeps every thread busy.
    #[serde(default = "default_chunk_rows")]
    #[schemars(range(min = 1, max = validate::CHUNK_ROWS_MAX))]
    pub chunk_rows: u64,
    /// Rows per keyset page read from the source within a chunk. Must be <= chunk_rows.
    #[serde(default = "default_page_rows")]
    #[schemars(range(min = 1, max = validate::PAGE_ROWS_MAX))]
    pub page_rows: u64,
    /// Chunks one state-machine execution copies (1-1000, the States.ArrayRange limit) before
    /// continuing as a new execution.
    #[serde(default = "default_chunks_per_execution")]
    #[schemars(range(min = 1, max = validate::MAX_CHUNKS_PER_EXECUTION))]
    pub chunks_per_execution: u32,
}

fn default_chunk_rows() -> u64 {
    200_000
}
fn default_page_rows() -> u64 {
    5_000
}
fn default_chunks_per_execution() -> u32 {
    200
}

impl Default for FullConfig {
    fn default() -> Self {
        FullConfig {
            chunk_rows: default_chunk_rows(),
            page_rows: default_page_rows(),
            chunks_per_execution: default_chunks_per_execution(),
        }
    }
}

/// The incremental (binlog) loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrementalConfig {
    /// Binlog events read by one batch at most (it then ends at the next commit).
    #[serde(default = "default_max_events")]
    #[schemars(range(min = 1, max = validate::MAX_EVENTS_MAX))]
    pub max_events: u64,
    /// Seconds one batch reads at most (1-840: the 15-minute Lambda limit minus a margin).
    #[serde(default = "default_max_seconds")]
    #[schemars(range(min = 1, max = validate::MAX_BATCH_SECONDS))]
    pub max_seconds: u32,
    /// Bytes of binlog events one batch reads at most (it then ends at the next commit): bounds
    /// the memory of one invocation. One transaction is always read whole, up to four times
    /// this; a larger one stops the migration with an error instead of exhausting memory.
    #[serde(default = "default_max_bytes")]
    #[schemars(range(min = 65536, max = validate::MAX_BYTES_MAX))]
    pub max_bytes: u64,
    /// Seconds to wait before the next batch once caught up.
    #[serde(default = "default_idle_wait_seconds")]
    #[schemars(range(min = 1, max = validate::IDLE_WAIT_SECONDS_MAX))]
    pub idle_wait_seconds: u32,
    /// Batches one execution runs before continuing as a new execution, keeping its history
    /// far below the 25,000-event limit.
    #[serde(default = "default_continue_as_new_after")]
    #[schemars(range(min = 1, max = validate::MAX_BATCHES_PER_EXECUTION))]
    pub continue_as_new_after: u32,
}

fn default_max_events() -> u64 {
    50_000
}
fn default_max_seconds() -> u32 {
    60
}
fn default_max_bytes() -> u64 {
    64 << 20
}
fn default_idle_wait_seconds() -> u32 {
    5
}
fn default_continue_as_new_after() -> u32 {
    500
}

impl Default for IncrementalConfig {
    fn default() -> Self {
        IncrementalConfig {
            max_events: default_max_events(),
            max_seconds: default_max_seconds(),
            max_bytes: default_max_bytes(),
            idle_wait_seconds: default_idle_wait_seconds(),
            continue_as_new_after: default_continue_as_new_after(),
        }
    }
}

/// Rounding of floating-point columns, as DTS's ROUND(column, precision).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FloatPrecision {
    /// Decimal places kept for FLOAT columns (0-38). Unset: the exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = validate::FLOAT_DIGITS_MAX))]
    pub float: Option<u32>,
    /// Decimal places kept for DOUBLE columns (0-308). Unset: the exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = validate::DOUBLE_DIGITS_MAX))]
    pub double: Option<u32>,
}
