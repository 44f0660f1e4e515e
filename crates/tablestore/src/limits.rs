//! The Tablestore service limits, written once (Alibaba Cloud's "Limits" page of Tablestore,
//! wide-column model). The client's batch writer cuts requests by them, the local server
//! enforces them with the service's error codes, and the migration's precheck and mapping
//! report a table that cannot fit them before any row is copied.

/// Primary-key columns per table.
pub const MAX_PK_COLUMNS: usize = 4;
/// Bytes of one STRING or BINARY primary-key value.
pub const MAX_PK_VALUE_BYTES: usize = 1024;
/// Bytes of one STRING or BINARY attribute value.
pub const MAX_ATTR_VALUE_BYTES: usize = 2 * 1024 * 1024;
/// Attribute columns written by one row operation.
pub const MAX_COLUMNS_PER_WRITE: usize = 1024;
/// Names in one read's `columns_to_get`.
pub const MAX_COLUMNS_TO_GET: usize = 128;
/// Predefined (defined) columns per table.
pub const MAX_DEFINED_COLUMNS: usize = 32;
/// Rows in one BatchWriteRow (or BulkImport) request.
pub const MAX_BATCH_WRITE_ROWS: usize = 200;
/// Bytes of row data in one BatchWriteRow (or BulkImport) request.
pub const MAX_BATCH_WRITE_BYTES: usize = 4 * 1024 * 1024;
/// Rows in one BatchGetRow request.
pub const MAX_BATCH_GET_ROWS: usize = 100;
/// Rows in one GetRange response page (a longer range continues with `next_start_primary_key`).
pub const RANGE_MAX_ROWS: usize = 5000;
/// Bytes of row data in one GetRange response page.
pub const RANGE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Single-column conditions in one composite column condition (filter).
pub const MAX_SINGLE_CONDITIONS: usize = 10;
/// Tables per instance unless the quota was raised (`destination.max_tables`).
pub const DEFAULT_MAX_TABLES: usize = 64;
