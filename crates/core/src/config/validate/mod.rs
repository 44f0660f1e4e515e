//! `MigrationConfig::validate`: every problem at once, each with its JSON path and a fix.
//!
//! Parsing already enforced the shape (types, enum spellings, no unknown fields); this checks
//! values and their relations. Checks that need the source or destination (tables exist, have
//! keys, binlog settings) belong to the precheck step, not here.
//!
//! This file holds the error types, the limits and the checks of the scalar sections; the
//! `objects` checks (table list, targets, filters, keys, column overrides) are in
//! `validate/objects.rs`, the unit tests in `validate/tests.rs`.

use std::collections::BTreeSet;
use std::fmt;

use super::{MigrationConfig, MigrationType, SecretRef, TableSelection, REDACTED};
use tablestore::schema::is_valid_name;

mod objects;

/// Most table specs one migration may list (the DTS limit for edited objects).
pub const MAX_TABLE_SPECS: usize = 1000;
/// Tablestore primary keys have 1-4 columns.
pub const MAX_PRIMARY_KEY_COLUMNS: usize = tablestore::limits::MAX_PK_COLUMNS;
/// Longest binlog batch: the 15-minute Lambda limit minus a margin for applying and
/// checkpointing.
pub const MAX_BATCH_SECONDS: u32 = 840;
/// States.ArrayRange produces at most 1,000 items.
pub const MAX_CHUNKS_PER_EXECUTION: u32 = 1000;
/// Keeps an execution's history below the 25,000-event limit: a batch writes about 12 events
/// (the task, the loop's Pass and Choice, an idle Wait when caught up), plus 3 per retry
/// during an outage. 2,000 crossed the limit in the scale simulation
/// (tests/integration/runner_scale.rs); 1,500 leaves room for a long outage.
pub const MAX_BATCHES_PER_EXECUTION: u32 = 1500;
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
/// `incremental.max_bytes`: a Lambda function has at most 10 GB of memory.
pub const MAX_BYTES_MAX: u64 = 2 << 30;
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
        // A CA file with a mode that verifies nothing would read as protection it is not.
        match &s.tls_ca_file {
            Some(path) if path.as_os_str().is_empty() => p.add(
                "source.tls_ca_file",
                "the path is empty",
                "set source.tls_ca_file to the PEM file of the server's CA, or leave it out",
            ),
            Some(_) if !s.tls.verifies() => p.add(
                "source.tls_ca_file",
                format!(
                    "a CA file is set but source.tls = {} does not verify the server certificate",
                    s.tls
                ),
                "set source.tls to verify_ca or verify_identity, or leave out source.tls_ca_file",
            ),
            _ => {}
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
        let listed = match &self.objects.tables {
            TableSelection::List(specs) => specs.iter().any(|s| s.name == *table),
            TableSelection::All => false,
        };
        if self.heartbeat.enabled && listed {
            p.add(
                "heartbeat.table",
                format!("\"{table}\" is also listed in objects.tables: the heartbeat table is tsmigrate's own and is never migrated"),
                "give heartbeat.table a name no migrated table has",
            );
        }
        if !self.has(MigrationType::Incremental) && self.heartbeat.enabled {
            p.add(
                "heartbeat.enabled",
                "the heartbeat is written by binlog batches, but \"incremental\" is not in migration_types",
                "set heartbeat.enabled to false, or add \"incremental\" to migration_types",
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
            "incremental.max_bytes",
            i.max_bytes,
            65536,
            MAX_BYTES_MAX,
            "one transaction may take four times this in memory",
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
mod tests;
