//! Read-side request shapes shared by the client and the local server.

use super::row::{ColumnCondition, PrimaryKey, Row};

/// Version selection of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRange {
    /// Versions with `start <= ts < end` (ms).
    Between { start: i64, end: i64 },
    /// Exactly the version at this timestamp.
    Specific(i64),
}

/// What a GetRow / GetRange / BatchGetRow returns of each row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadOptions {
    /// Empty = every column.
    pub columns_to_get: Vec<String>,
    /// Versions per column (default 1 when neither this nor `time_range` is set).
    pub max_versions: Option<i32>,
    pub time_range: Option<TimeRange>,
    pub filter: Option<ColumnCondition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Forward,
    Backward,
}

/// One GetRange call: `[start, end)` in `direction`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeRequest {
    pub direction: Direction,
    pub start: PrimaryKey,
    pub end: PrimaryKey,
    pub limit: Option<i32>,
    pub read: ReadOptions,
}

/// One page of a range read; `next_start` is set while rows remain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangePage {
    pub rows: Vec<Row>,
    pub next_start: Option<PrimaryKey>,
}
