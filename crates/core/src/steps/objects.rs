//! The migration objects: which source tables the config selects, their definitions, and
//! their mapping to destination tables.

use mysql_async::Conn;

use super::error::{ErrorName, StepError};
use crate::config::{MigrationConfig, TableSelection};
use crate::mapping::{map_table, MappingProblem, TableMapping};
use crate::mysql::{describe_tables, list_tables, SourceError, TableInfo};

/// The selected source tables.
#[derive(Debug, Clone)]
pub struct Selected {
    pub tables: Vec<TableInfo>,
    /// Tables the config names that the source database does not have.
    pub missing: Vec<String>,
}

/// Reads the definitions of every selected table.
pub async fn select(conn: &mut Conn, config: &MigrationConfig) -> Result<Selected, SourceError> {
    let db = &config.source.database;
    let existing = list_tables(conn, db).await?;
    let (names, missing): (Vec<String>, Vec<String>) = match &config.objects.tables {
        TableSelection::All => (
            existing
                .iter()
                .filter(|t| !config.objects.exclude_tables.contains(t))
                // The heartbeat table is tsmigrate's own, never migrated.
                .filter(|t| !(config.heartbeat.enabled && **t == config.heartbeat.table))
                .cloned()
                .collect(),
            Vec::new(),
        ),
        TableSelection::List(specs) => specs
            .iter()
            .map(|s| s.name.clone())
            .partition(|n| existing.contains(n)),
    };
    let tables = if names.is_empty() {
        Vec::new()
    } else {
        describe_tables(conn, db, &names).await?
    };
    Ok(Selected { tables, missing })
}

/// Maps every selected table; problems of all tables are collected.
pub fn map_all(
    selected: &Selected,
    config: &MigrationConfig,
) -> (Vec<TableMapping>, Vec<MappingProblem>) {
    let specs = config.table_specs();
    let mut mappings = Vec::new();
    let mut problems = Vec::new();
    for info in &selected.tables {
        let spec = specs.iter().find(|s| s.name == info.name);
        match map_table(info, spec, config.name_case) {
            Ok(m) => {
                problems.extend(m.warnings.iter().cloned());
                mappings.push(m);
            }
            Err(p) => problems.extend(p),
        }
    }
    // Two source tables mapped onto one destination table would overwrite each other.
    for (i, a) in mappings.iter().enumerate() {
        for b in &mappings[i + 1..] {
            if a.target_name == b.target_name {
                problems.push(MappingProblem {
                    kind: crate::mapping::ProblemKind::Name,
                    table: b.source_name.clone(),
                    column: None,
                    problem: format!(
                        "tables '{}' and '{}' both map to destination table '{}'",
                        a.source_name, b.source_name, a.target_name
                    ),
                    fix: format!("give '{}' another target", b.source_name),
                });
            }
        }
    }
    (mappings, problems)
}

/// The mappings a step can act on: fails (`PrecheckFailed`) when a named table is missing
/// or a table has a problem other than a value-size warning (those are the precheck's).
pub fn usable_mappings(
    selected: &Selected,
    config: &MigrationConfig,
) -> Result<Vec<TableMapping>, StepError> {
    if !selected.missing.is_empty() {
        return Err(StepError::new(
            ErrorName::PrecheckFailed,
            format!(
                "source tables not found: {} (correct objects.tables)",
                selected.missing.join(", ")
            ),
        ));
    }
    let (mappings, problems) = map_all(selected, config);
    let blocking: Vec<String> = problems
        .iter()
        .filter(|p| p.kind != crate::mapping::ProblemKind::Size)
        .map(|p| p.to_string())
        .collect();
    if !blocking.is_empty() {
        return Err(StepError::new(
            ErrorName::PrecheckFailed,
            blocking.join("; "),
        ));
    }
    Ok(mappings)
}
