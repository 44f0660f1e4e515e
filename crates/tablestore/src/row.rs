//! Rows and row changes: what the client writes and reads, independent of the wire encoding.

use super::value::{PkValue, Value};

/// One primary-key column of a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PkColumn {
    pub name: String,
    pub value: PkValue,
}

/// A primary key: its columns in table-schema order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PrimaryKey(pub Vec<PkColumn>);

impl PrimaryKey {
    pub fn new() -> Self {
        PrimaryKey(Vec::new())
    }

    /// Builder: appends a column.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<PkValue>) -> Self {
        self.0.push(PkColumn {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    pub fn columns(&self) -> &[PkColumn] {
        &self.0
    }

    pub fn data_size(&self) -> usize {
        self.0
            .iter()
            .map(|c| c.name.len() + c.value.data_size())
            .sum()
    }
}

/// An attribute cell: a name, a value and an optional version timestamp (ms since epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub name: String,
    pub value: Value,
    pub timestamp: Option<i64>,
}

impl Cell {
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Cell {
            name: name.into(),
            value: value.into(),
            timestamp: None,
        }
    }

    pub fn at(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// A row as read back (or as written by PutRow): key plus attribute cells. In read results a
/// column with several versions appears as several cells with the same name, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub primary_key: PrimaryKey,
    pub cells: Vec<Cell>,
}

impl Row {
    pub fn new(primary_key: PrimaryKey) -> Self {
        Row {
            primary_key,
            cells: Vec::new(),
        }
    }

    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.cells.push(Cell::new(name, value));
        self
    }

    /// The newest value of a column, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.cells.iter().find(|c| c.name == name).map(|c| &c.value)
    }
}

/// One column operation inside an UpdateRow change.
#[derive(Debug, Clone, PartialEq)]
pub enum CellOp {
    /// Write a value (a new version).
    Put(Cell),
    /// Delete the version with exactly this timestamp.
    DeleteOneVersion { name: String, timestamp: i64 },
    /// Delete every version of the column.
    DeleteAllVersions { name: String },
    /// Atomic counter: add `delta` (a missing column counts as 0).
    Increment { name: String, delta: i64 },
}

impl CellOp {
    pub fn column(&self) -> &str {
        match self {
            CellOp::Put(c) => &c.name,
            CellOp::DeleteOneVersion { name, .. }
            | CellOp::DeleteAllVersions { name }
            | CellOp::Increment { name, .. } => name,
        }
    }
}

/// A write to one row: what BatchWriteRow's PUT / UPDATE / DELETE carry.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChange {
    /// Replace the whole row.
    Put(Row),
    /// Change some columns; creates the row if absent.
    Update {
        primary_key: PrimaryKey,
        ops: Vec<CellOp>,
    },
    /// Delete the row (all columns, all versions).
    Delete(PrimaryKey),
}

impl RowChange {
    pub fn primary_key(&self) -> &PrimaryKey {
        match self {
            RowChange::Put(r) => &r.primary_key,
            RowChange::Update { primary_key, .. } => primary_key,
            RowChange::Delete(pk) => pk,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RowChange::Put(_) => "PUT",
            RowChange::Update { .. } => "UPDATE",
            RowChange::Delete(_) => "DELETE",
        }
    }
}

/// Row-existence expectation of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowExistence {
    #[default]
    Ignore,
    ExpectExist,
    ExpectNotExist,
}

/// Comparison used by a single-column condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Equal,
    NotEqual,
    GreaterThan,
    GreaterEqual,
    LessThan,
    LessEqual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicalOp {
    Not,
    And,
    Or,
}

/// A column condition (also used as a read filter).
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnCondition {
    Single {
        column: String,
        comparator: Comparator,
        value: Value,
        /// When the column is absent: true = the condition passes.
        pass_if_missing: bool,
        latest_version_only: bool,
    },
    Composite {
        op: LogicalOp,
        conditions: Vec<ColumnCondition>,
    },
}

/// The condition of a write: row existence plus an optional column condition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    pub row_existence: RowExistence,
    pub column_condition: Option<ColumnCondition>,
}

impl Condition {
    pub fn ignore() -> Self {
        Condition::default()
    }

    pub fn expect(row_existence: RowExistence) -> Self {
        Condition {
            row_existence,
            column_condition: None,
        }
    }

    pub fn with_column(mut self, c: ColumnCondition) -> Self {
        self.column_condition = Some(c);
        self
    }
}
