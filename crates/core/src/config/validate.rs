//! `MigrationConfig::validate`: every problem at once, each with its JSON path and a fix.
//!
//! Parsing already enforced the shape (types, enum spellings, no unknown fields); this checks
//! values and their relations. Checks that need the source or destination (tables exist, have
//! keys, binlog settings) belong to the precheck step, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{
    parse_filter, ColumnType, MigrationConfig, MigrationType, SecretRef, TableSelection, TableSpec,
    REDACTED,
};
use tablestore::schema::is_valid_name;

/// Most table specs one migration may list (the DTS limit for edited objects).
pub const MAX_TABLE_SPECS: usize = 1000;
/// Tablestore primary keys have 1-4 columns.
pub const MAX_PRIMARY_KEY_COLUMNS: usize = tablestore::limits::MAX_PK_COLUMNS;
/// Longest binlog batch: the 15-minute Lambda limit minus a margin for applying and
/// checkpointing.
pub const MAX_BATCH_SECONDS: u32 = 840;
/// States.ArrayRange produces at most 1,000 items.
pub const MAX_CHUNKS_PER_EXECUTION: u32 = 1000;
/// Keeps an execution's history (~10 events per batch) below the 25,000-event limit.
pub const MAX_BATCHES_PER_EXECUTION: u32 = 2000;
/// MySQL identifiers are at most 64 characters.
const MYSQL_NAME_MAX: usize = 64;
/// Upper bounds of the numeric settings (also published as `maximum` in the JSON Schema).
pub const QUEUE_SIZE_MAX: u32 = 65_536;
pub const THREAD_COUNT_MAX: u32 = 64;
pub const CONCURRENCY_MAX: u32 = 256;
/// The DTS range for both retry windows: 1,440 minutes (one day).
pub const RETRY_MINUTES_MAX: u32 = 1440;
pub const CHUNK_ROWS_MAX: u64 = 1_000_000_000;
pub const PAGE_ROWS_MAX: u64 = 100_000;
pub const MAX_EVENTS_MAX: u64 = 1_000_000;
pub const IDLE_WAIT_SECONDS_MAX: u32 = 3600;
/// DTS: ROUND precision up to 38 for FLOAT and 308 for DOUBLE.
pub const FLOAT_DIGITS_MAX: u32 = 38;
pub const DOUBLE_DIGITS_MAX: u32 = 308;

/// One problem in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON path of the offending value, e.g. `writer.bucket_count`, `objects.tables[2].filter`.
    pub path: String,
    /// What is wrong, with the offending value.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (fix: {})", self.path, self.problem, self.fix)
    }
}

/// Every problem found in a config, in field order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationErrors {
    pub errors: Vec<ValidationError>,
}

impl ValidationErrors {
    /// The paths of the problems, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.path.as_str()).collect()
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.errors.iter()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} problem{} in the migration config:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  - {}: {}\n    fix: {}", e.path, e.problem, e.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

#[derive(Default)]
struct Problems(Vec<ValidationError>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.0.push(ValidationError {
            path: path.into(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    /// `value` must lie in `min..=max`.
    fn range<T: PartialOrd + fmt::Display + Copy>(
        &mut self,
        path: &str,
        value: T,
        min: T,
        max: T,
        why: &str,
    ) {
        if value < min || value > max {
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            };
            self.add(
                path,
                format!("{value} is outside {min}..={max}{why}"),
                format!("set {path} to a value from {min} to {max}"),
            );
        }
    }
}

impl MigrationConfig {
    /// Checks every value and relation; returns all problems at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut p = Problems::default();
        self.check_migration_id(&mut p);
        self.check_source(&mut p);
        self.check_destination(&mut p);
        self.check_secrets(&mut p);
        self.check_types(&mut p);
        self.check_writer(&mut p);
        self.check_objects(&mut p);
        self.check_retry(&mut p);
        self.check_throttle(&mut p);
        self.check_heartbeat_and_monitoring(&mut p);
        self.check_full_and_incremental(&mut p);
        self.check_float_precision(&mut p);
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors { errors: p.0 })
        }
    }

    fn check_migration_id(&self, p: &mut Problems) {
        let id = &self.migration_id;
        let ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            p.add(
                "migration_id",
                format!(
                    "\"{id}\" is not 1-64 characters of A-Z a-z 0-9 _ - (it becomes part of \
                     Step Functions execution names and state-store keys)"
                ),
                "use a short name such as \"shop-orders\"",
            );
        }
    }

    fn check_source(&self, p: &mut Problems) {
        let s = &self.source;
        if s.host.trim().is_empty() || s.host.chars().any(char::is_whitespace) {
            p.add(
                "source.host",
                format!("\"{}\" is not a host name or IP address", s.host),
                "set source.host to the MySQL server's host name or IP address",
            );
        }
        if s.port == 0 {
            p.add(
                "source.port",
                "0 is not a TCP port",
                "set source.port to the MySQL port (usually 3306)",
            );
        }
        if s.user.trim().is_empty() {
            p.add(
                "source.user",
                "the user is empty",
                "set source.user to the migration account",
            );
        }
        if s.database.is_empty() || s.database.chars().count() > MYSQL_NAME_MAX {
            p.add(
                "source.database",
                format!(
                    "\"{}\" is not a MySQL database name (1-64 characters)",
                    s.database
                ),
                "set source.database to the database whose tables are migrated",
            );
        }
    }

    fn check_destination(&self, p: &mut Problems) {
        let d = &self.destination;
        if let Err(problem) = d.endpoint() {
            p.add(
                "destination.endpoint",
                problem,
                "use https://INSTANCE.REGION.ots.aliyuncs.com, http://127.0.0.1:PORT or \
                 embedded:./tsmigrate-data",
            );
        }
        if !is_instance_name(&d.instance) {
            p.add(
                "destination.instance",
                format!(
                    "\"{}\" is not a Tablestore instance name (3-16 letters, digits and \
                     hyphens, starting with a letter, not ending with a hyphen)",
                    d.instance
                ),
                "set destination.instance to the instance name shown in the Tablestore console",
            );
        }
        if let Some(region) = &d.region {
            let ok = !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                p.add(
                    "destination.region",
                    format!("\"{region}\" is not a region id"),
                    "use a region id such as \"cn-hangzhou\", or remove destination.region",
                );
            }
        }
        if d.max_tables == 0 {
            p.add(
                "destination.max_tables",
                "0 tables allowed",
                "set destination.max_tables to the instance's table limit (64 by default)",
            );
        }
        if !is_valid_name(&d.state_table) {
            p.add(
                "destination.state_table",
                format!(
                    "\"{}\" is not a Tablestore table name (1-255 characters of A-Z a-z 0-9 _, \
                     starting with a letter or _)",
                    d.state_table
                ),
                "use a name such as \"tsmigrate_state\"",
            );
        }
    }

    fn check_secrets(&self, p: &mut Problems) {
        let local = self.is_local_setup();
        for (path, secret) in self.secret_refs() {
            check_secret(p, path, secret, local);
        }
    }

    fn check_types(&self, p: &mut Problems) {
        if self.migration_types.is_empty() {
            p.add(
                "migration_types",
                "no migration type selected",
                "list at least one of \"schema\", \"full\", \"incremental\"",
            );
        }
        duplicates(
            p,
            "migration_types",
            self.migration_types.iter().map(|t| t.as_str()),
        );
        duplicates(
            p,
            "operation_types",
            self.operation_types.iter().map(|t| t.as_str()),
        );
        if self.has(MigrationType::Incremental) && self.operation_types.is_empty() {
            p.add(
                "operation_types",
                "incremental migration is selected but no operation type is",
                "list at least one of \"insert\", \"update\", \"delete\", or remove \
                 \"incremental\" from migration_types",
            );
        }
    }

    fn check_writer(&self, p: &mut Problems) {
        let w = &self.writer;
        p.range("writer.queue_size", w.queue_size, 1, QUEUE_SIZE_MAX, "");
        p.range(
            "writer.thread_count",
            w.thread_count,
            1,
            THREAD_COUNT_MAX,
            "",
        );
        p.range("writer.concurrency", w.concurrency, 1, CONCURRENCY_MAX, "");
        p.range(
            "writer.bucket_count",
            w.bucket_count,
            1,
            CONCURRENCY_MAX,
            "",
        );
        if w.bucket_count > w.concurrency && w.concurrency >= 1 {
            p.add(
                "writer.bucket_count",
                format!(
                    "{} is greater than writer.concurrency ({})",
                    w.bucket_count, w.concurrency
                ),
                format!(
                    "set writer.bucket_count to at most {}, or raise writer.concurrency",
                    w.concurrency
                ),
            );
        }
    }

    fn check_objects(&self, p: &mut Problems) {
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

    fn check_retry(&self, p: &mut Problems) {
        let r = &self.retry;
        p.range(
            "retry.connection_minutes",
            r.connection_minutes,
            1,
            RETRY_MINUTES_MAX,
            "minutes",
        );
        p.range(
            "retry.other_minutes",
            r.other_minutes,
            1,
            RETRY_MINUTES_MAX,
            "minutes",
        );
        let other_in_range = (1..=RETRY_MINUTES_MAX).contains(&r.other_minutes);
        if other_in_range && r.other_minutes >= r.connection_minutes {
            p.add(
                "retry.other_minutes",
                format!(
                    "{} is not less than retry.connection_minutes ({})",
                    r.other_minutes, r.connection_minutes
                ),
                "make other_minutes smaller than connection_minutes",
            );
        }
    }

    fn check_throttle(&self, p: &mut Problems) {
        let t = &self.throttle;
        let values = [
            ("throttle.full.source_qps", t.full.source_qps),
            ("throttle.full.rps", t.full.rps),
            ("throttle.full.mb_per_s", t.full.mb_per_s),
            ("throttle.incremental.rps", t.incremental.rps),
            ("throttle.incremental.mb_per_s", t.incremental.mb_per_s),
        ];
        for (path, value) in values {
            if let Some(v) = value {
                if !(v.is_finite() && v > 0.0) {
                    p.add(
                        path,
                        format!("{v} is not a positive number"),
                        format!("set {path} above 0, or remove it for no limit"),
                    );
                }
            }
        }
        // With no migration type at all, that one problem is reported, not these follow-ups.
        let typed = !self.migration_types.is_empty();
        if typed && t.full.is_set() && !self.has(MigrationType::Full) {
            p.add(
                "throttle.full",
                "full-migration throttling is set but \"full\" is not in migration_types",
                "remove throttle.full, or add \"full\" to migration_types",
            );
        }
        if typed && t.incremental.is_set() && !self.has(MigrationType::Incremental) {
            p.add(
                "throttle.incremental",
                "incremental throttling is set but \"incremental\" is not in migration_types",
                "remove throttle.incremental, or add \"incremental\" to migration_types",
            );
        }
    }

    fn check_heartbeat_and_monitoring(&self, p: &mut Problems) {
        let table = &self.heartbeat.table;
        let ok = (1..=MYSQL_NAME_MAX).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            p.add(
                "heartbeat.table",
                format!("\"{table}\" is not 1-64 characters of A-Z a-z 0-9 _"),
                "use a name such as \"tsmigrate_heartbeat\"",
            );
        }
        if self.monitoring.latency_alert_seconds == Some(0) {
            p.add(
                "monitoring.latency_alert_seconds",
                "0 seconds would alert on every measurement",
                "set it to 1 or more, or remove it for no latency alert",
            );
        }
    }

    fn check_full_and_incremental(&self, p: &mut Problems) {
        let f = &self.full;
        p.range("full.chunk_rows", f.chunk_rows, 1, CHUNK_ROWS_MAX, "");
        p.range("full.page_rows", f.page_rows, 1, PAGE_ROWS_MAX, "");
        if f.page_rows > f.chunk_rows && f.chunk_rows >= 1 {
            p.add(
                "full.page_rows",
                format!(
                    "{} is greater than full.chunk_rows ({})",
                    f.page_rows, f.chunk_rows
                ),
                format!("set full.page_rows to at most {}", f.chunk_rows),
            );
        }
        p.range(
            "full.chunks_per_execution",
            f.chunks_per_execution,
            1,
            MAX_CHUNKS_PER_EXECUTION,
            "States.ArrayRange produces at most 1,000 items",
        );
        let i = &self.incremental;
        p.range(
            "incremental.max_events",
            i.max_events,
            1,
            MAX_EVENTS_MAX,
            "",
        );
        p.range(
            "incremental.max_seconds",
            i.max_seconds,
            1,
            MAX_BATCH_SECONDS,
            "a Lambda function runs at most 15 minutes",
        );
        p.range(
            "incremental.idle_wait_seconds",
            i.idle_wait_seconds,
            1,
            IDLE_WAIT_SECONDS_MAX,
            "",
        );
        p.range(
            "incremental.continue_as_new_after",
            i.continue_as_new_after,
            1,
            MAX_BATCHES_PER_EXECUTION,
            "execution history is limited to 25,000 events",
        );
    }

    fn check_float_precision(&self, p: &mut Problems) {
        if let Some(v) = self.float_precision.float {
            p.range(
                "float_precision.float",
                v,
                0,
                FLOAT_DIGITS_MAX,
                "FLOAT keeps at most 38 decimals",
            );
        }
        if let Some(v) = self.float_precision.double {
            p.range(
                "float_precision.double",
                v,
                0,
                DOUBLE_DIGITS_MAX,
                "DOUBLE keeps at most 308 decimals",
            );
        }
    }
}

fn check_secret(p: &mut Problems, path: &str, secret: &SecretRef, local: bool) {
    match secret {
        SecretRef::Env(name) => {
            let ok = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                p.add(
                    format!("{path}.env"),
                    format!("\"{name}\" is not an environment variable name"),
                    "use letters, digits and _, e.g. \"SRC_PASSWORD\"",
                );
            }
        }
        SecretRef::SecretArn { arn, key } => {
            let ok = if arn.starts_with("arn:") {
                arn.split(':').nth(2) == Some("secretsmanager")
            } else {
                !arn.trim().is_empty()
            };
            if !ok {
                p.add(
                    format!("{path}.secret_arn"),
                    format!("\"{arn}\" is not a Secrets Manager secret ARN or name"),
                    "use arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME",
                );
            }
            if key.as_deref().is_some_and(|k| k.is_empty()) {
                p.add(
                    format!("{path}.key"),
                    "the key is empty",
                    "name the JSON field holding the credential (e.g. \"password\"), or remove key",
                );
            }
        }
        SecretRef::Literal(value) => {
            if value.expose() == REDACTED {
                p.add(
                    format!("{path}.value"),
                    "this is the <redacted> placeholder tsmigrate prints instead of a secret, \
                     not the secret",
                    format!("put the real reference back, e.g. {path}: {{\"env\": \"NAME\"}}"),
                );
            } else if !local {
                p.add(
                    path,
                    "a literal secret ({\"value\": …}) in a config for a remote setup; \
                     secrets must not travel in configs and payloads",
                    format!(
                        "use {{\"env\": \"NAME\"}} (or {{\"secret_arn\": \"arn:…\"}} on AWS) for \
                         {path}; literal values are only accepted when destination.endpoint is \
                         embedded: or a host is loopback"
                    ),
                );
            }
        }
    }
}

fn duplicates<'a>(p: &mut Problems, path: &str, items: impl Iterator<Item = &'a str>) {
    let mut seen = BTreeSet::new();
    for (i, item) in items.enumerate() {
        if !seen.insert(item) {
            p.add(
                format!("{path}[{i}]"),
                format!("\"{item}\" is listed twice"),
                format!("remove the duplicate from {path}"),
            );
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

fn is_mysql_name(name: &str) -> bool {
    !name.trim().is_empty() && name.chars().count() <= MYSQL_NAME_MAX
}

/// Tablestore instance names: 3-16 letters, digits and hyphens, starting with a letter, not
/// ending with a hyphen.
fn is_instance_name(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=16).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1] != b'-'
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    fn base() -> MigrationConfig {
        MigrationConfig::new(
            "shop",
            SourceConfig::new("db.internal", "dts", SecretRef::env("SRC_PASSWORD"), "shop"),
            DestinationConfig::new(
                "https://shop.cn-hangzhou.ots.aliyuncs.com",
                "shop",
                SecretRef::env("OTS_AK"),
                SecretRef::env("OTS_SK"),
            ),
        )
    }

    /// The paths `validate` reports after `change`.
    fn paths_after(change: impl FnOnce(&mut MigrationConfig)) -> Vec<String> {
        let mut c = base();
        change(&mut c);
        match c.validate() {
            Ok(()) => Vec::new(),
            Err(e) => e.errors.into_iter().map(|e| e.path).collect(),
        }
    }

    fn spec(name: &str) -> TableSpec {
        TableSpec::new(name)
    }

    fn tables(c: &mut MigrationConfig, specs: Vec<TableSpec>) {
        c.objects.tables = TableSelection::List(specs);
    }

    #[test]
    fn base_is_valid() {
        base().validate().unwrap();
    }

    #[test]
    fn migration_id() {
        for bad in ["", "has space", "dot.ted", &"x".repeat(65), "ünï"] {
            let bad = bad.to_owned();
            assert_eq!(paths_after(|c| c.migration_id = bad), ["migration_id"]);
        }
        for good in ["a", "shop-orders_2", &"x".repeat(64)] {
            let good = good.to_owned();
            assert!(paths_after(|c| c.migration_id = good).is_empty());
        }
    }

    #[test]
    fn source_fields() {
        assert_eq!(
            paths_after(|c| {
                c.source.host = " ".into();
                c.source.port = 0;
                c.source.user = "".into();
                c.source.database = "".into();
            }),
            [
                "source.host",
                "source.port",
                "source.user",
                "source.database"
            ]
        );
        assert_eq!(
            paths_after(|c| c.source.database = "d".repeat(65)),
            ["source.database"]
        );
    }

    #[test]
    fn destination_fields() {
        assert_eq!(
            paths_after(|c| {
                c.destination.endpoint = "ots.aliyuncs.com".into();
                c.destination.instance = "a".into();
                c.destination.region = Some("CN HANGZHOU".into());
                c.destination.max_tables = 0;
                c.destination.state_table = "1state".into();
            }),
            [
                "destination.endpoint",
                "destination.instance",
                "destination.region",
                "destination.max_tables",
                "destination.state_table"
            ]
        );
        for bad in ["ab", "1abc", "abc-", "abc_def", &"a".repeat(17)] {
            assert!(!is_instance_name(bad), "{bad}");
        }
        for good in ["abc", "local", "my-instance-01", &"a".repeat(16)] {
            assert!(is_instance_name(good), "{good}");
        }
        assert!(paths_after(|c| {
            c.destination.endpoint = "embedded:./data".into();
            c.destination.region = Some("cn-hangzhou".into());
        })
        .is_empty());
    }

    #[test]
    fn secret_refs() {
        assert_eq!(
            paths_after(|c| {
                c.source.password = SecretRef::env("1BAD");
                c.destination.access_key_id =
                    SecretRef::secret_arn("arn:aws:s3:::bucket", Some(""));
                c.destination.access_key_secret = SecretRef::literal("sk");
                c.destination.sts_token = Some(SecretRef::literal(REDACTED));
            }),
            [
                "source.password.env",
                "destination.access_key_id.secret_arn",
                "destination.access_key_id.key",
                "destination.access_key_secret",
                "destination.sts_token.value"
            ]
        );
        // Secret names (not ARNs) are accepted by Secrets Manager too.
        assert!(
            paths_after(|c| c.source.password = SecretRef::secret_arn("prod/shop", None))
                .is_empty()
        );
    }

    #[test]
    fn literal_secrets_only_for_local_setups() {
        let literal = |c: &mut MigrationConfig| c.source.password = SecretRef::literal("pw");
        assert_eq!(paths_after(literal), ["source.password"]);
        let e = {
            let mut c = base();
            literal(&mut c);
            c.validate().unwrap_err()
        };
        assert!(e.errors[0].fix.contains("{\"env\""), "{e}");
        assert!(!e.to_string().contains("\"pw\""));
        assert!(paths_after(|c| {
            literal(c);
            c.destination.endpoint = "embedded:./d".into();
        })
        .is_empty());
        assert!(paths_after(|c| {
            literal(c);
            c.source.host = "127.0.0.1".into();
        })
        .is_empty());
        assert!(paths_after(|c| {
            literal(c);
            c.destination.endpoint = "http://localhost:8801".into();
        })
        .is_empty());
    }

    #[test]
    fn type_lists() {
        assert_eq!(
            paths_after(|c| c.migration_types.clear()),
            ["migration_types"]
        );
        assert_eq!(
            paths_after(|c| c.migration_types.push(MigrationType::Full)),
            ["migration_types[3]"]
        );
        assert_eq!(
            paths_after(|c| c.operation_types.clear()),
            ["operation_types"]
        );
        assert!(paths_after(|c| {
            c.operation_types.clear();
            c.migration_types = vec![MigrationType::Schema, MigrationType::Full];
        })
        .is_empty());
        assert_eq!(
            paths_after(|c| c.operation_types.push(OperationType::Insert)),
            ["operation_types[3]"]
        );
    }

    #[test]
    fn writer() {
        assert_eq!(
            paths_after(|c| c.writer.bucket_count = 9),
            ["writer.bucket_count"]
        );
        assert!(paths_after(|c| {
            c.writer.bucket_count = 16;
            c.writer.concurrency = 16;
        })
        .is_empty());
        assert_eq!(
            paths_after(|c| {
                c.writer.queue_size = 0;
                c.writer.thread_count = 65;
                c.writer.concurrency = 0;
                c.writer.bucket_count = 0;
            }),
            [
                "writer.queue_size",
                "writer.thread_count",
                "writer.concurrency",
                "writer.bucket_count"
            ]
        );
        assert_eq!(
            paths_after(|c| c.writer.queue_size = 1 << 20),
            ["writer.queue_size"]
        );
    }

    #[test]
    fn exclude_tables() {
        assert_eq!(
            paths_after(|c| c.objects.exclude_tables = vec!["a".into(), "".into(), "a".into()]),
            ["objects.exclude_tables[1]", "objects.exclude_tables[2]"]
        );
        assert_eq!(
            paths_after(|c| {
                tables(c, vec![spec("a")]);
                c.objects.exclude_tables = vec!["b".into()];
            }),
            ["objects.exclude_tables"]
        );
    }

    #[test]
    fn table_list_sizes() {
        assert_eq!(paths_after(|c| tables(c, vec![])), ["objects.tables"]);
        let many: Vec<TableSpec> = (0..1001).map(|i| spec(&format!("t{i}"))).collect();
        assert_eq!(
            paths_after(|c| {
                c.destination.max_tables = 5000;
                tables(c, many.clone());
            }),
            ["objects.tables"]
        );
        // 64 tables + the state table exceed the default 64-table instance limit.
        let sixty_four: Vec<TableSpec> = (0..64).map(|i| spec(&format!("t{i}"))).collect();
        assert_eq!(
            paths_after(|c| tables(c, sixty_four.clone())),
            ["objects.tables"]
        );
        assert!(paths_after(|c| tables(c, sixty_four[..63].to_vec())).is_empty());
    }

    #[test]
    fn table_names_and_targets() {
        let mut renamed = spec("b");
        renamed.target = Some("a".into());
        let mut bad_target = spec("c");
        bad_target.target = Some("9c".into());
        let mut state = spec("d");
        state.target = Some("tsmigrate_state".into());
        assert_eq!(
            paths_after(|c| tables(
                c,
                vec![
                    spec("a"),
                    spec("a"),
                    renamed,
                    bad_target,
                    spec("order-items"),
                    state,
                    spec("")
                ]
            )),
            [
                "objects.tables[1].name",
                "objects.tables[2].target",
                "objects.tables[3].target",
                "objects.tables[4].name",
                "objects.tables[5].target",
                "objects.tables[6].name"
            ]
        );
        // Targets collide after the name case policy.
        assert_eq!(
            paths_after(|c| {
                c.name_case = NameCase::Lower;
                tables(c, vec![spec("Orders"), spec("orders")]);
            }),
            ["objects.tables[1].name"]
        );
        assert!(paths_after(|c| tables(c, vec![spec("Orders"), spec("orders")])).is_empty());
    }

    #[test]
    fn filters() {
        let with = |f: &str| {
            let mut s = spec("t");
            s.filter = Some(f.into());
            s
        };
        assert!(paths_after(|c| tables(c, vec![with("status <> 'deleted'")])).is_empty());
        for bad in [
            "a = 1; DROP TABLE t",
            "id IN (SELECT id FROM x)",
            "a = = 1",
            "",
        ] {
            let p = paths_after(|c| tables(c, vec![with(bad)]));
            assert_eq!(p, ["objects.tables[0].filter"], "{bad}");
        }
    }

    #[test]
    fn primary_keys_and_columns() {
        let mut s = spec("t");
        s.primary_key = Some(vec![]);
        let mut s2 = spec("u");
        s2.primary_key = Some(vec![
            "a".into(),
            "b".into(),
            "c".into(),
            "d".into(),
            "e".into(),
        ]);
        let mut s3 = spec("v");
        s3.primary_key = Some(vec!["a".into(), "a".into(), "".into()]);
        assert_eq!(
            paths_after(|c| tables(c, vec![s, s2, s3])),
            [
                "objects.tables[0].primary_key",
                "objects.tables[1].primary_key",
                "objects.tables[2].primary_key[2]",
                "objects.tables[2].primary_key[1]"
            ]
        );

        let mut s = spec("t");
        s.primary_key = Some(vec!["id".into(), "ok".into()]);
        let col = |target: Option<&str>, t: Option<ColumnType>| ColumnSpec {
            target: target.map(str::to_owned),
            column_type: t,
        };
        s.columns
            .insert("id".into(), col(None, Some(ColumnType::Double)));
        s.columns
            .insert("ok".into(), col(None, Some(ColumnType::EpochMicros)));
        s.columns.insert("a".into(), col(Some("x"), None));
        s.columns
            .insert("b".into(), col(Some("x"), Some(ColumnType::Boolean)));
        s.columns.insert("c-d".into(), col(None, None));
        s.columns.insert("e".into(), col(Some("bad name"), None));
        s.columns.insert("".into(), col(None, None));
        assert_eq!(
            paths_after(|c| tables(c, vec![s])),
            [
                "objects.tables[0].columns.",
                "objects.tables[0].columns.b.target",
                "objects.tables[0].columns.c-d",
                "objects.tables[0].columns.e.target",
                "objects.tables[0].columns.id.type"
            ]
        );
    }

    #[test]
    fn retry_windows() {
        assert_eq!(
            paths_after(|c| c.retry.other_minutes = 720),
            ["retry.other_minutes"]
        );
        assert_eq!(
            paths_after(|c| {
                c.retry.connection_minutes = 0;
                c.retry.other_minutes = 0;
            }),
            ["retry.connection_minutes", "retry.other_minutes"]
        );
        assert_eq!(
            paths_after(|c| c.retry.connection_minutes = 1441),
            ["retry.connection_minutes"]
        );
        assert!(paths_after(|c| {
            c.retry.connection_minutes = 2;
            c.retry.other_minutes = 1;
        })
        .is_empty());
    }

    #[test]
    fn throttle() {
        assert_eq!(
            paths_after(|c| {
                c.throttle.full.source_qps = Some(0.0);
                c.throttle.full.rps = Some(-1.0);
                c.throttle.full.mb_per_s = Some(f64::NAN);
                c.throttle.incremental.rps = Some(f64::INFINITY);
                c.throttle.incremental.mb_per_s = Some(2.5);
            }),
            [
                "throttle.full.source_qps",
                "throttle.full.rps",
                "throttle.full.mb_per_s",
                "throttle.incremental.rps"
            ]
        );
        assert_eq!(
            paths_after(|c| {
                c.migration_types = vec![MigrationType::Incremental];
                c.throttle.full.rps = Some(100.0);
                c.throttle.incremental.rps = Some(100.0);
            }),
            ["throttle.full"]
        );
        assert_eq!(
            paths_after(|c| {
                c.migration_types = vec![MigrationType::Full];
                c.throttle.incremental.mb_per_s = Some(1.0);
            }),
            ["throttle.incremental"]
        );
    }

    #[test]
    fn heartbeat_and_monitoring() {
        assert_eq!(
            paths_after(|c| {
                c.heartbeat.table = "hb-table".into();
                c.monitoring.latency_alert_seconds = Some(0);
            }),
            ["heartbeat.table", "monitoring.latency_alert_seconds"]
        );
        assert!(paths_after(|c| {
            c.heartbeat.enabled = true;
            c.monitoring.latency_alert_seconds = Some(1);
        })
        .is_empty());
    }

    #[test]
    fn full_and_incremental_numbers() {
        assert_eq!(
            paths_after(|c| {
                c.full.chunk_rows = 1000;
                c.full.page_rows = 5000;
            }),
            ["full.page_rows"]
        );
        assert_eq!(
            paths_after(|c| {
                c.full.chunk_rows = 0;
                c.full.page_rows = 0;
                c.full.chunks_per_execution = 1001;
            }),
            [
                "full.chunk_rows",
                "full.page_rows",
                "full.chunks_per_execution"
            ]
        );
        assert!(paths_after(|c| c.full.chunks_per_execution = 1000).is_empty());
        assert_eq!(
            paths_after(|c| {
                c.incremental.max_events = 0;
                c.incremental.max_seconds = 841;
                c.incremental.idle_wait_seconds = 0;
                c.incremental.continue_as_new_after = 0;
            }),
            [
                "incremental.max_events",
                "incremental.max_seconds",
                "incremental.idle_wait_seconds",
                "incremental.continue_as_new_after"
            ]
        );
        assert!(paths_after(|c| c.incremental.max_seconds = 840).is_empty());
    }

    #[test]
    fn float_precision() {
        assert_eq!(
            paths_after(|c| {
                c.float_precision.float = Some(39);
                c.float_precision.double = Some(309);
            }),
            ["float_precision.float", "float_precision.double"]
        );
        assert!(paths_after(|c| {
            c.float_precision.float = Some(38);
            c.float_precision.double = Some(0);
        })
        .is_empty());
    }

    #[test]
    fn display_lists_every_problem() {
        let mut c = base();
        c.writer.bucket_count = 16;
        c.retry.other_minutes = 800;
        let e = c.validate().unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("2 problems in the migration config:"),
            "{text}"
        );
        assert!(
            text.contains(
                "\n  - writer.bucket_count: 16 is greater than writer.concurrency (8)\n    fix: "
            ),
            "{text}"
        );
        assert!(text.contains("\n  - retry.other_minutes: "), "{text}");
        assert_eq!(e.paths(), ["writer.bucket_count", "retry.other_minutes"]);
    }
}
