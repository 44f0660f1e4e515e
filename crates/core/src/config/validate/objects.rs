//! The checks of `objects`: the table list or exclusions, table and column targets (unique
//! after `name_case`, valid Tablestore names), filters, primary keys and column type overrides.
//! Split from `validate/mod.rs` because it is the largest config section to check.

use std::collections::{BTreeMap, BTreeSet};

use super::{duplicates, is_mysql_name, Problems, MAX_PRIMARY_KEY_COLUMNS, MAX_TABLE_SPECS};
use crate::config::{parse_filter, ColumnType, MigrationConfig, TableSelection, TableSpec};
use tablestore::schema::is_valid_name;

impl MigrationConfig {
    pub(super) fn check_objects(&self, p: &mut Problems) {
        let o = &self.objects;
        match &o.tables {
            TableSelection::All => {
                for (i, name) in o.exclude_tables.iter().enumerate() {
                    if !is_mysql_name(name) {
                        p.add(
                            format!("objects.exclude_tables[{i}]"),
                            format!("\"{name}\" is not a MySQL table name (1-64 characters)"),
                            "list source table names",
                        );
                    }
                }
                duplicates(
                    p,
                    "objects.exclude_tables",
                    o.exclude_tables.iter().map(String::as_str),
                );
            }
            TableSelection::List(specs) => {
                if !o.exclude_tables.is_empty() {
                    p.add(
                        "objects.exclude_tables",
                        "exclude_tables only applies to \"tables\": \"*\"",
                        "remove exclude_tables, or leave the excluded tables out of the list",
                    );
                }
                self.check_table_specs(p, specs);
            }
        }
    }

    fn check_table_specs(&self, p: &mut Problems, specs: &[TableSpec]) {
        if specs.is_empty() {
            p.add(
                "objects.tables",
                "the table list is empty",
                "list the tables to migrate, or use \"*\" for all of them",
            );
            return;
        }
        if specs.len() > MAX_TABLE_SPECS {
            p.add(
                "objects.tables",
                format!(
                    "{} tables listed; at most {MAX_TABLE_SPECS} can be listed",
                    specs.len()
                ),
                "split the tables over several migrations, or use \"*\" with exclude_tables",
            );
        }
        let max_tables = self.destination.max_tables as usize;
        if max_tables > 0 && specs.len() + 1 > max_tables {
            p.add(
                "objects.tables",
                format!(
                    "{} tables plus the state table exceed destination.max_tables ({max_tables})",
                    specs.len()
                ),
                "ask Alibaba Cloud to raise the instance's table limit and set \
                 destination.max_tables, or split the migration",
            );
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut targets: BTreeMap<String, usize> = BTreeMap::new();
        for (i, spec) in specs.iter().enumerate() {
            let at = format!("objects.tables[{i}]");
            let problems_before = p.0.len();
            if !is_mysql_name(&spec.name) {
                p.add(
                    format!("{at}.name"),
                    format!(
                        "\"{}\" is not a MySQL table name (1-64 characters)",
                        spec.name
                    ),
                    "set name to the source table's name",
                );
            } else if let Some(first) = names.insert(&spec.name, i) {
                names.insert(&spec.name, first);
                p.add(
                    format!("{at}.name"),
                    format!(
                        "table \"{}\" is already listed at objects.tables[{first}]",
                        spec.name
                    ),
                    "list each table once",
                );
            }
            // A bad or repeated name already explains a bad or repeated derived target.
            if p.0.len() == problems_before || spec.target.is_some() {
                self.check_table_target(p, &at, spec, i, &mut targets);
            }
            if let Some(filter) = &spec.filter {
                if let Err(problem) = parse_filter(filter) {
                    p.add(
                        format!("{at}.filter"),
                        problem,
                        "write one SQL condition on the table's own columns, e.g. \
                         \"status <> 'deleted' AND id > 1000\"",
                    );
                }
            }
            check_primary_key(p, &at, spec);
            self.check_columns(p, &at, spec);
        }
    }

    fn check_table_target(
        &self,
        p: &mut Problems,
        at: &str,
        spec: &TableSpec,
        index: usize,
        targets: &mut BTreeMap<String, usize>,
    ) {
        let target = spec.target_name(self.name_case);
        let path = if spec.target.is_some() {
            format!("{at}.target")
        } else {
            format!("{at}.name")
        };
        if !is_valid_name(&target) {
            let fix = if spec.target.is_some() {
                "use 1-255 characters of A-Z a-z 0-9 _, starting with a letter or _"
            } else {
                "set target to a valid Tablestore name (1-255 characters of A-Z a-z 0-9 _, \
                 starting with a letter or _)"
            };
            p.add(
                path,
                format!("destination table name \"{target}\" breaks Tablestore naming rules"),
                fix,
            );
            return;
        }
        if target == self.destination.state_table {
            p.add(
                path.clone(),
                format!("destination table \"{target}\" is destination.state_table"),
                "set a different target (or a different destination.state_table)",
            );
        }
        if let Some(first) = targets.get(&target) {
            p.add(
                path,
                format!(
                    "destination table \"{target}\" is also the destination of \
                     objects.tables[{first}]"
                ),
                "give each table its own target",
            );
        } else {
            targets.insert(target, index);
        }
    }

    fn check_columns(&self, p: &mut Problems, at: &str, spec: &TableSpec) {
        let key: BTreeSet<&str> = spec
            .primary_key
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let mut targets: BTreeMap<String, &str> = BTreeMap::new();
        for (column, cs) in &spec.columns {
            let cat = format!("{at}.columns.{column}");
            if !is_mysql_name(column) {
                p.add(
                    cat.clone(),
                    format!("\"{column}\" is not a MySQL column name (1-64 characters)"),
                    "key columns by their source column name",
                );
                continue;
            }
            let target = spec.column_target(column, self.name_case);
            let tpath = if cs.target.is_some() {
                format!("{cat}.target")
            } else {
                cat.clone()
            };
            if !is_valid_name(&target) {
                p.add(
                    tpath,
                    format!("destination column name \"{target}\" breaks Tablestore naming rules"),
                    "set target to 1-255 characters of A-Z a-z 0-9 _, starting with a letter \
                     or _",
                );
            } else if let Some(other) = targets.get(&target) {
                p.add(
                    tpath,
                    format!(
                        "destination column \"{target}\" is also the target of column \"{other}\""
                    ),
                    "give each column its own target",
                );
            } else {
                targets.insert(target, column);
            }
            if let Some(t) = cs.column_type {
                if key.contains(column.as_str()) && !t.allowed_in_primary_key() {
                    p.add(
                        format!("{cat}.type"),
                        format!(
                            "\"{}\" is not allowed for primary key column \"{column}\" \
                             (Tablestore keys are integer, string or binary)",
                            t.as_str()
                        ),
                        format!(
                            "use \"{}\", \"{}\" or \"{}\"",
                            ColumnType::String.as_str(),
                            ColumnType::Integer.as_str(),
                            ColumnType::Binary.as_str()
                        ),
                    );
                }
            }
        }
    }
}

fn check_primary_key(p: &mut Problems, at: &str, spec: &TableSpec) {
    let Some(key) = &spec.primary_key else {
        return;
    };
    if key.is_empty() || key.len() > MAX_PRIMARY_KEY_COLUMNS {
        p.add(
            format!("{at}.primary_key"),
            format!(
                "{} columns; a Tablestore primary key has 1 to {MAX_PRIMARY_KEY_COLUMNS}",
                key.len()
            ),
            "list 1-4 source columns that identify a row, or remove primary_key to use the \
             table's own key",
        );
    }
    for (j, column) in key.iter().enumerate() {
        if !is_mysql_name(column) {
            p.add(
                format!("{at}.primary_key[{j}]"),
                format!("\"{column}\" is not a MySQL column name (1-64 characters)"),
                "list source column names",
            );
        }
    }
    duplicates(
        p,
        &format!("{at}.primary_key"),
        key.iter().map(String::as_str),
    );
}
