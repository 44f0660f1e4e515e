//! Table and column mapping: source table + config spec → destination table, key and columns.

use std::collections::HashMap;

use super::types::{self, Family};
use crate::config::{ColumnType, NameCase, TableSpec};
use crate::mysql::{key_for_migration, ColumnInfo, TableInfo};
use tablestore::schema::{is_valid_name, PkSchema, TableDef, TableOptions};

/// Tablestore allows at most four primary-key columns.
pub const MAX_KEY_COLUMNS: usize = tablestore::limits::MAX_PK_COLUMNS;
/// Largest primary-key STRING/BINARY value.
pub const MAX_PK_VALUE_BYTES: u64 = tablestore::limits::MAX_PK_VALUE_BYTES as u64;
/// Largest attribute STRING/BINARY value.
pub const MAX_ATTR_VALUE_BYTES: u64 = tablestore::limits::MAX_ATTR_VALUE_BYTES as u64;

/// One column's mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMapping {
    pub source: ColumnInfo,
    pub family: Family,
    pub target_name: String,
    pub target_type: ColumnType,
}

/// One table's mapping: key columns (in key order) and attribute columns (in source order).
#[derive(Debug, Clone, PartialEq)]
pub struct TableMapping {
    pub source_schema: String,
    pub source_name: String,
    pub target_name: String,
    pub key: Vec<ColumnMapping>,
    pub attributes: Vec<ColumnMapping>,
    /// WHERE expression from the config, as written.
    pub filter: Option<String>,
    pub row_estimate: u64,
    /// Size warnings (values that may exceed Tablestore limits: such rows become dirty data).
    pub warnings: Vec<MappingProblem>,
}

impl TableMapping {
    /// Every mapped column: key first, then attributes.
    pub fn columns(&self) -> impl Iterator<Item = &ColumnMapping> {
        self.key.iter().chain(self.attributes.iter())
    }

    /// The destination table definition (max_versions 1, TTL -1: a replica, not a history).
    pub fn table_def(&self) -> TableDef {
        TableDef {
            name: self.target_name.clone(),
            primary_key: self
                .key
                .iter()
                .filter_map(|c| {
                    types::pk_type(c.target_type).map(|t| PkSchema::new(&c.target_name, t))
                })
                .collect(),
            defined_columns: Vec::new(),
            options: TableOptions::default(),
        }
    }

    /// Source column names in source order (the explicit SELECT list; invisible included).
    pub fn source_columns(&self) -> Vec<&str> {
        let mut cols: Vec<&ColumnMapping> = self.columns().collect();
        cols.sort_by_key(|c| c.source.ordinal);
        cols.iter().map(|c| c.source.name.as_str()).collect()
    }
}

/// What a mapping problem is about (the precheck reports each kind as its own item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// No usable key, too many key columns, key column of a type a key cannot have.
    Key,
    /// A destination table or column name Tablestore does not accept, or a clash.
    Name,
    /// A type without a mapping, an impossible override, a column the config names wrongly.
    Type,
    /// Values that can exceed a Tablestore size limit (a warning: such rows are dirty data).
    Size,
}

/// Something the mapping cannot do, with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    pub kind: ProblemKind,
    pub table: String,
    pub column: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl std::fmt::Display for MappingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(
                f,
                "{}.{}: {}. Fix: {}",
                self.table, c, self.problem, self.fix
            ),
            None => write!(f, "{}: {}. Fix: {}", self.table, self.problem, self.fix),
        }
    }
}

/// Maps one table. Collects every problem of the table instead of stopping at the first.
pub fn map_table(
    info: &TableInfo,
    spec: Option<&TableSpec>,
    case: NameCase,
) -> Result<TableMapping, Vec<MappingProblem>> {
    let mut problems = Vec::new();
    let problem =
        |kind: ProblemKind, column: Option<&str>, problem: String, fix: String| MappingProblem {
            kind,
            table: info.name.clone(),
            column: column.map(str::to_owned),
            problem,
            fix,
        };
    let default_spec;
    let spec = match spec {
        Some(s) => s,
        None => {
            default_spec = TableSpec::new(&info.name);
            &default_spec
        }
    };

    let target_name = spec.target_name(case);
    if !is_valid_name(&target_name) {
        problems.push(problem(
                    ProblemKind::Name,
            None,
            format!("destination table name '{target_name}' is not a valid Tablestore name (1-255 characters of A-Z a-z 0-9 _, starting with a letter or _)"),
            format!("map it: objects.tables: [{{\"name\": \"{}\", \"target\": \"{}\"}}]", info.name, suggest_name(&target_name)),
        ));
    }

    for name in spec.columns.keys() {
        if info.column(name).is_none() {
            problems.push(problem(
                ProblemKind::Type,
                Some(name),
                "the config maps a column the table does not have".into(),
                format!(
                    "remove columns.{name} or correct its name (columns are: {})",
                    column_list(info)
                ),
            ));
        }
    }

    let key_names: Vec<String> = match &spec.primary_key {
        Some(k) => k.clone(),
        None => match key_for_migration(info) {
            Some(k) => k,
            None => {
                problems.push(problem(
                    ProblemKind::Key,
                    None,
                    "the table has no primary key and no NOT NULL unique key, so rows cannot be identified in Tablestore".into(),
                    format!("add a primary key to the source table, or name key columns in the config: {{\"name\": \"{}\", \"primary_key\": [\"...\"]}}", info.name),
                ));
                Vec::new()
            }
        },
    };
    if key_names.len() > MAX_KEY_COLUMNS {
        problems.push(problem(
                    ProblemKind::Key,
            None,
            format!("the key has {} columns ({}); Tablestore allows at most {MAX_KEY_COLUMNS}", key_names.len(), key_names.join(", ")),
            format!("name at most {MAX_KEY_COLUMNS} columns that identify a row: {{\"name\": \"{}\", \"primary_key\": [...]}}", info.name),
        ));
    }

    let mut key = Vec::new();
    let mut attributes = Vec::new();
    for col in &info.columns {
        let in_key = key_names.iter().any(|k| k == &col.name);
        let fam = match types::family(col) {
            Some(f) => f,
            None => {
                problems.push(problem(
                    ProblemKind::Type,
                    Some(&col.name),
                    format!("type '{}' has no known Tablestore mapping", col.column_type),
                    format!(
                        "override it: columns.{}.type = \"string\" or \"binary\"",
                        col.name
                    ),
                ));
                continue;
            }
        };
        let override_type = spec.columns.get(&col.name).and_then(|c| c.column_type);
        let target_type = match override_type {
            Some(t) if !types::override_allowed(fam, t) => {
                problems.push(problem(
                    ProblemKind::Type,
                    Some(&col.name),
                    format!(
                        "type '{}' cannot be stored as {}",
                        col.column_type,
                        t.as_str()
                    ),
                    format!(
                        "use \"string\" or \"binary\" for columns.{}.type, or drop the override",
                        col.name
                    ),
                ));
                continue;
            }
            Some(t) => t,
            None => types::default_type(fam),
        };
        let target_name = spec.column_target(&col.name, case);
        if !is_valid_name(&target_name) {
            problems.push(problem(
                ProblemKind::Name,
                Some(&col.name),
                format!("destination column name '{target_name}' is not a valid Tablestore name"),
                format!(
                    "map it: columns.{}.target = \"{}\"",
                    col.name,
                    suggest_name(&target_name)
                ),
            ));
        }
        let m = ColumnMapping {
            source: col.clone(),
            family: fam,
            target_name,
            target_type,
        };
        if in_key {
            if types::pk_type(target_type).is_none() {
                problems.push(problem(
                    ProblemKind::Key,
                    Some(&col.name),
                    format!(
                        "a primary-key column cannot be {} in Tablestore",
                        target_type.as_str()
                    ),
                    format!("set columns.{}.type to \"string\" or \"integer\"", col.name),
                ));
            }
            if matches!(target_type, ColumnType::String | ColumnType::Binary)
                && types::max_value_bytes(col, target_type).is_some_and(|b| b > MAX_PK_VALUE_BYTES)
            {
                problems.push(problem(
                    ProblemKind::Size,
                    Some(&col.name),
                    format!("key values of type '{}' can exceed Tablestore's 1 KB primary-key limit", col.column_type),
                    "rows with longer keys will be dirty data; shorten the column or pick another key".into(),
                ));
            }
            key.push(m);
        } else {
            attributes.push(m);
        }
    }
    for k in &key_names {
        if info.column(k).is_none() {
            problems.push(problem(
                ProblemKind::Key,
                Some(k),
                "the key names a column the table does not have".into(),
                format!("correct primary_key (columns are: {})", column_list(info)),
            ));
        }
    }
    // Key columns in key order, as Tablestore orders rows by them.
    key.sort_by_key(|c| key_names.iter().position(|k| *k == c.source.name));

    let mut seen: HashMap<&str, &str> = HashMap::new();
    for c in key.iter().chain(attributes.iter()) {
        if let Some(other) = seen.insert(&c.target_name, &c.source.name) {
            problems.push(problem(
                ProblemKind::Name,
                Some(&c.source.name),
                format!(
                    "columns '{other}' and '{}' both map to '{}'",
                    c.source.name, c.target_name
                ),
                format!(
                    "give one of them another target: columns.{}.target",
                    c.source.name
                ),
            ));
        }
    }

    if problems.iter().all(|p| p.kind == ProblemKind::Size) {
        Ok(TableMapping {
            source_schema: info.schema.clone(),
            source_name: info.name.clone(),
            target_name,
            key,
            attributes,
            filter: spec.filter.clone(),
            row_estimate: info.row_estimate,
            warnings: problems,
        })
    } else {
        Err(problems)
    }
}

fn column_list(info: &TableInfo) -> String {
    info.columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A valid Tablestore name close to `name` (for fix texts).
pub fn suggest_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s.truncate(255);
    s
}
