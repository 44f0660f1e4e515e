//! Table definitions: key schema, defined columns and options, as CreateTable/DescribeTable use them.

use super::value::PkType;

/// One primary-key column of a table schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkSchema {
    pub name: String,
    pub pk_type: PkType,
    pub auto_increment: bool,
}

impl PkSchema {
    pub fn new(name: impl Into<String>, pk_type: PkType) -> Self {
        PkSchema {
            name: name.into(),
            pk_type,
            auto_increment: false,
        }
    }
}

/// Types of predefined (defined) attribute columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinedColumnType {
    Integer,
    Double,
    Boolean,
    String,
    Blob,
}

/// Table options (TableOptions on the wire). `None` = server default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Seconds; -1 = never expire (otherwise ≥ 86400).
    pub time_to_live: i32,
    /// Versions kept per column (≥ 1).
    pub max_versions: i32,
    /// Max |cell timestamp − now| accepted on write, seconds.
    pub deviation_cell_version_in_sec: i64,
    /// false forbids UpdateRow.
    pub allow_update: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            time_to_live: -1,
            max_versions: 1,
            deviation_cell_version_in_sec: 86400,
            allow_update: true,
        }
    }
}

/// Everything CreateTable needs and DescribeTable returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub primary_key: Vec<PkSchema>,
    pub defined_columns: Vec<(String, DefinedColumnType)>,
    pub options: TableOptions,
}

impl TableDef {
    pub fn new(name: impl Into<String>, primary_key: Vec<PkSchema>) -> Self {
        TableDef {
            name: name.into(),
            primary_key,
            defined_columns: Vec::new(),
            options: TableOptions::default(),
        }
    }
}

/// DescribeTable's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDescription {
    pub def: TableDef,
    /// Unix seconds.
    pub creation_time: i64,
}

/// Tablestore's naming rule for tables and columns: 1–255 bytes of `[A-Za-z0-9_]`, first a
/// letter or `_`.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}
