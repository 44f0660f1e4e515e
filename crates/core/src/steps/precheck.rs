//! `precheck`: everything that would make the migration fail later, checked up front; each
//! item names the problem and the fix (DTS's precheck items, plus ours).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::budget::Budget;
use super::context::Context;
use super::lifecycle::state_store;
use super::objects;
use crate::config::{ConflictingTables, Managed, MigrationType};
use crate::error::Class;
use crate::mapping::{MappingProblem, ProblemKind, TableMapping};
use crate::mysql::{self, BinlogSettings, Grants, ServerInfo};
use tablestore::schema::TableDef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Warning,
    Failed,
}

/// One precheck item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckItem {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do; empty when passed.
    pub fix: String,
}

/// The precheck's answer: `passed` unless an item failed (warnings pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrecheckReport {
    pub passed: bool,
    pub items: Vec<CheckItem>,
    /// Set when the source or destination could not be reached at all (a network failure, not
    /// refused credentials): for a migration under way that is an outage to ride out, not a
    /// failed precheck.
    #[serde(skip)]
    pub unreachable: Option<String>,
}

impl PrecheckReport {
    pub fn item(&self, name: &str) -> Option<&CheckItem> {
        self.items.iter().find(|i| i.name == name)
    }
}

#[derive(Default)]
struct Items(Vec<CheckItem>);

impl Items {
    fn add(
        &mut self,
        name: &str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(CheckItem {
            name: name.into(),
            status,
            detail: detail.into(),
            fix: fix.into(),
        });
    }
    fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.add(name, Status::Passed, detail, "");
    }
    fn report(self) -> PrecheckReport {
        PrecheckReport {
            passed: self.0.iter().all(|i| i.status != Status::Failed),
            items: self.0,
            unreachable: None,
        }
    }
    fn report_with(self, unreachable: Option<String>) -> PrecheckReport {
        PrecheckReport {
            unreachable,
            ..self.report()
        }
    }
}

/// Runs every check. Checks that cannot run because an earlier one failed (no connection)
/// are left out; the failed item says why.
pub async fn precheck(ctx: &Context) -> PrecheckReport {
    precheck_from(ctx, None, &Budget::unlimited()).await.report
}

/// What one Precheck invocation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrecheckSlice {
    pub report: PrecheckReport,
    /// The source table whose destination the next call checks first; `None` = done. Only
    /// the per-table destination checks (one DescribeTable each) are spread over calls.
    pub next_table: Option<String>,
}

/// [`precheck`] in parts: the first call (`from` = `None`) runs every check, the per-table
/// destination checks until `budget` is spent; later calls run only the destination checks
/// from source table `from` on. A failed item ends the precheck whatever is left.
pub async fn precheck_from(ctx: &Context, from: Option<&str>, budget: &Budget) -> PrecheckSlice {
    match from {
        None => precheck_first(ctx, budget).await,
        Some(from) => precheck_rest(ctx, from, budget).await,
    }
}

/// Whether `execution_name` continues a run whose precheck already passed: the execution
/// before it handed it the lease (Finish, continue-as-new), which only an execution that
/// passed the precheck holds. Read-only (the precheck runs before Begin takes the lease).
pub async fn continues_run(ctx: &Context, execution_name: &str) -> bool {
    match state_store(ctx).lease().await {
        Ok(Some(lease)) => {
            lease.owner == execution_name && !lease.is_expired_at(std::time::SystemTime::now())
        }
        _ => false,
    }
}

async fn precheck_rest(ctx: &Context, from: &str, budget: &Budget) -> PrecheckSlice {
    let mut items = Items::default();
    let done = |items: Items, unreachable: Option<String>| PrecheckSlice {
        report: items.report_with(unreachable),
        next_table: None,
    };
    let existing = match ctx.destination.list_tables().await {
        Ok(t) => t,
        Err(e) => {
            let unreachable = destination_failed(&mut items, &e);
            return done(items, unreachable);
        }
    };
    let mut conn = match mysql::connect(&ctx.source).await {
        Ok(c) => c,
        Err(e) => {
            let unreachable = source_failed(&mut items, ctx, &e);
            return done(items, unreachable);
        }
    };
    let selected = objects::select(&mut conn, &ctx.config).await;
    mysql::close(conn).await;
    let selected = match selected {
        Ok(s) => s,
        Err(e) => {
            objects_unlisted(&mut items, &ctx.config.source.database, &e);
            return done(items, None);
        }
    };
    let (mappings, _) = objects::map_all(&selected, &ctx.config);
    let ours = state_store(ctx).created_tables().await.unwrap_or_default();
    let start = super::create_schema::resume_at(&mappings, Some(from));
    let next_table = check_conflicts(
        &mut items,
        ctx,
        &mappings[start..],
        budget,
        &existing,
        &ours,
    )
    .await;
    PrecheckSlice {
        report: items.report(),
        next_table,
    }
}

/// Records a failed destination; returns why when it was unreachable (not refused).
/// The item for a source whose tables could not be listed.
fn objects_unlisted(items: &mut Items, database: &str, e: &dyn std::fmt::Display) {
    items.add(
        "source_objects",
        Status::Failed,
        format!("cannot list the tables of database '{database}': {e}"),
        "check source.database and the SELECT privilege",
    );
}

fn destination_failed(items: &mut Items, e: &tablestore::Error) -> Option<String> {
    let auth = e.code() == Some(tablestore::error::code::AUTH_FAILED);
    items.add(
        "destination_connection",
        Status::Failed,
        format!("cannot use the destination: {e}"),
        if auth {
            "check destination.instance and the access key pair (access_key_id / access_key_secret)"
        } else {
            "check destination.endpoint and that the instance is reachable from here"
        },
    );
    (Class::of_destination(e) == Class::Connection).then(|| format!("destination: {e}"))
}

/// Records a failed source connection; returns why when it was unreachable (not refused).
fn source_failed(items: &mut Items, ctx: &Context, e: &mysql::SourceError) -> Option<String> {
    let fix = if matches!(e, mysql::SourceError::Tls { .. }) {
        format!(
            "the TLS settings do not match the server: check source.tls (now {}) and \
             source.tls_ca_file, as the detail says",
            ctx.source.tls
        )
    } else {
        "check source.host/port/user/password and that this network can reach the server"
            .to_string()
    };
    items.add(
        "source_connection",
        Status::Failed,
        format!("cannot connect to {}: {e}", ctx.source.addr()),
        fix,
    );
    (e.class() == Class::Connection).then(|| format!("source: {e}"))
}

async fn precheck_first(ctx: &Context, budget: &Budget) -> PrecheckSlice {
    let mut items = Items::default();
    let mut unreachable = None;
    let cfg = &ctx.config;
    let done = |items: Items, unreachable: Option<String>| PrecheckSlice {
        report: items.report_with(unreachable),
        next_table: None,
    };

    let dest_tables = match ctx.destination.list_tables().await {
        Ok(t) => {
            items.pass(
                "destination_connection",
                format!(
                    "{} answers; {} tables exist",
                    ctx.destination.config().endpoint,
                    t.len()
                ),
            );
            Some(t)
        }
        Err(e) => {
            unreachable = destination_failed(&mut items, &e);
            None
        }
    };

    let mut conn = match mysql::connect(&ctx.source).await {
        Ok(c) => {
            items.pass(
                "source_connection",
                format!("connected to {} as {}", ctx.source.addr(), ctx.source.user),
            );
            c
        }
        Err(e) => {
            unreachable = source_failed(&mut items, ctx, &e);
            return done(items, unreachable);
        }
    };

    let info = match mysql::server_info(&mut conn).await {
        Ok(i) => i,
        Err(e) => {
            items.add(
                "source_version",
                Status::Failed,
                e.to_string(),
                "check the source server",
            );
            mysql::close(conn).await;
            return done(items, unreachable);
        }
    };
    check_version(&mut items, &info);

    let grants = match mysql::grants(&mut conn).await {
        Ok(g) => Some(g),
        Err(e) => {
            items.add(
                "select_privilege",
                Status::Warning,
                format!("cannot read SHOW GRANTS: {e}"),
                "privileges are checked again when the migration reads",
            );
            None
        }
    };

    if cfg.has(MigrationType::Incremental) {
        match mysql::binlog_settings(&mut conn, &info).await {
            Ok(b) => check_binlog(&mut items, &b, &info, cfg.source.managed),
            Err(e) => items.add(
                "binlog_enabled",
                Status::Failed,
                format!("cannot read the binlog settings: {e}"),
                "grant the user access to the server variables, or check the server",
            ),
        }
        if let Some(g) = &grants {
            check_replication_grants(&mut items, g);
        }
    }

    let selected = match objects::select(&mut conn, cfg).await {
        Ok(s) => s,
        Err(e) => {
            objects_unlisted(&mut items, &cfg.source.database, &e);
            mysql::close(conn).await;
            return done(items, unreachable);
        }
    };
    if cfg.has(MigrationType::Incremental) && cfg.heartbeat.enabled {
        check_heartbeat(&mut items, &mut conn, cfg, grants.as_ref()).await;
    }
    mysql::close(conn).await;

    if !selected.missing.is_empty() {
        items.add(
            "source_objects",
            Status::Failed,
            format!(
                "tables not found in '{}': {}",
                cfg.source.database,
                selected.missing.join(", ")
            ),
            "correct objects.tables, or create the tables",
        );
    } else if selected.tables.is_empty() {
        items.add(
            "source_objects",
            Status::Failed,
            format!("no tables selected in database '{}'", cfg.source.database),
            "select tables with objects.tables (\"*\" or a list)",
        );
    } else {
        items.pass(
            "source_objects",
            format!(
                "{} tables selected in '{}'",
                selected.tables.len(),
                cfg.source.database
            ),
        );
    }

    if let Some(g) = &grants {
        let denied: Vec<&str> = selected
            .tables
            .iter()
            .filter(|t| !g.can_select(&cfg.source.database, &t.name))
            .map(|t| t.name.as_str())
            .collect();
        if denied.is_empty() {
            items.pass("select_privilege", "SELECT granted on every selected table");
        } else {
            items.add(
                "select_privilege",
                Status::Failed,
                format!("no SELECT on: {}", denied.join(", ")),
                format!(
                    "GRANT SELECT ON `{}`.* TO the migration user",
                    cfg.source.database
                ),
            );
        }
    }

    let (mappings, problems) = objects::map_all(&selected, cfg);
    report_problems(
        &mut items,
        "primary_keys",
        ProblemKind::Key,
        &problems,
        "every table has a usable key of at most 4 columns",
    );
    report_problems(
        &mut items,
        "object_names",
        ProblemKind::Name,
        &problems,
        "destination names are valid Tablestore names",
    );
    report_problems(
        &mut items,
        "column_types",
        ProblemKind::Type,
        &problems,
        "every column type has a mapping",
    );
    report_problems(
        &mut items,
        "value_sizes",
        ProblemKind::Size,
        &problems,
        "no value can exceed a Tablestore size limit",
    );
    check_invisible(&mut items, &selected.tables);
    if cfg.has(MigrationType::Incremental) {
        check_filters(&mut items, &mappings, &selected.tables);
        check_charsets(&mut items, &mappings);
        check_floats(&mut items, &mappings, &cfg.float_precision);
    }

    let mut next_table = None;
    if let Some(existing) = dest_tables {
        let ours = state_store(ctx).created_tables().await.unwrap_or_default();
        check_table_count(&mut items, ctx, &mappings, &existing);
        next_table = check_conflicts(&mut items, ctx, &mappings, budget, &existing, &ours).await;
    }
    let report = items.report_with(unreachable);
    // A failed item ends the precheck: the rest cannot make it pass.
    PrecheckSlice {
        next_table: next_table.filter(|_| report.passed),
        report,
    }
}

/// `heartbeat.enabled`: the user must be able to write (and, the first time, create) the
/// heartbeat table.
async fn check_heartbeat(
    items: &mut Items,
    conn: &mut mysql::Conn,
    cfg: &crate::config::MigrationConfig,
    grants: Option<&Grants>,
) {
    let (db, table) = (&cfg.source.database, &cfg.heartbeat.table);
    let Some(g) = grants else {
        items.add(
            "heartbeat",
            Status::Warning,
            "cannot read SHOW GRANTS to check the heartbeat table's privileges",
            "make sure the user may INSERT and UPDATE (and CREATE) the heartbeat table",
        );
        return;
    };
    let exists = mysql::list_tables(conn, db)
        .await
        .map(|t| t.iter().any(|t| t == table))
        .unwrap_or(false);
    let mut needed = vec!["INSERT", "UPDATE"];
    if !exists {
        needed.push("CREATE");
    }
    let missing: Vec<&str> = needed
        .into_iter()
        .filter(|p| !g.can(p, db, table))
        .collect();
    if missing.is_empty() {
        items.pass(
            "heartbeat",
            format!(
                "the user may write `{db}`.`{table}`{}",
                if exists {
                    ""
                } else {
                    " (created by the first batch)"
                }
            ),
        );
    } else {
        items.add(
            "heartbeat",
            Status::Failed,
            format!(
                "heartbeat.enabled, but the user lacks {} on `{db}`.`{table}`",
                missing.join(", ")
            ),
            format!(
                "GRANT {} ON `{db}`.`{table}` TO the migration user, or set heartbeat.enabled \
                 to false",
                missing.join(", ")
            ),
        );
    }
}

fn check_version(items: &mut Items, info: &ServerInfo) {
    let supported = if info.is_mariadb() {
        info.at_least((10, 2, 0))
    } else {
        info.at_least((5, 7, 0))
    };
    let what = format!(
        "{} {} ({}){}",
        info.flavor,
        info.version_string,
        info.version_comment,
        if info.is_rds { ", managed (RDS)" } else { "" }
    );
    if supported {
        items.pass("source_version", what);
    } else {
        items.add(
            "source_version",
            Status::Warning,
            format!("{what}: older than tsmigrate is tested with (MySQL 5.7+, MariaDB 10.2+)"),
            "upgrade the source, or test the migration on a copy first",
        );
    }
}

fn check_binlog(items: &mut Items, b: &BinlogSettings, info: &ServerInfo, managed: Managed) {
    if !b.log_bin {
        items.add(
            "binlog_enabled",
            Status::Failed,
            "log_bin is OFF: the server writes no binlog, so changes cannot be followed",
            "start the server with log_bin (and server_id) set; on RDS enable automated backups",
        );
    } else {
        items.pass("binlog_enabled", "log_bin is ON");
    }
    let fmt = b.binlog_format.clone().unwrap_or_default();
    if fmt == "ROW" {
        items.pass("binlog_format", "binlog_format is ROW");
    } else {
        items.add(
            "binlog_format",
            Status::Failed,
            format!("binlog_format is {fmt}; row images are needed to apply changes"),
            "SET GLOBAL binlog_format = 'ROW' (and in the server config); reconnect writers",
        );
    }
    let image = b.binlog_row_image.clone().unwrap_or_default();
    if image == "FULL" {
        items.pass("binlog_row_image", "binlog_row_image is FULL");
    } else {
        items.add(
            "binlog_row_image",
            Status::Failed,
            format!("binlog_row_image is {image}; updates would carry only some columns"),
            "SET GLOBAL binlog_row_image = 'FULL' (and in the server config)",
        );
    }
    match &b.binlog_row_metadata {
        Some(m) if m == "FULL" => items.pass("binlog_row_metadata", "binlog_row_metadata is FULL"),
        Some(m) => items.add(
            "binlog_row_metadata",
            Status::Failed,
            format!("binlog_row_metadata is {m}; row events would not name their columns"),
            "SET GLOBAL binlog_row_metadata = 'FULL' (and in the server config)",
        ),
        None => items.add(
            "binlog_row_metadata",
            Status::Warning,
            format!(
                "{} {} has no binlog_row_metadata; column names come from the schema",
                info.flavor, info.version_string
            ),
            "do not change the schema of migrated tables while the migration runs",
        ),
    }
    let rds = managed == Managed::Rds || info.is_rds;
    let need = Duration::from_secs(if rds { 3 } else { 7 } * 86400);
    match b.retention {
        None => items.pass("binlog_retention", "binlogs are never purged automatically"),
        Some(r) if r >= need => items.pass(
            "binlog_retention",
            format!("binlogs are kept {:.1} days", r.as_secs_f64() / 86400.0),
        ),
        Some(r) => items.add(
            "binlog_retention",
            Status::Failed,
            format!(
                "binlogs are kept {:.1} days; at least {} days are needed ({})",
                r.as_secs_f64() / 86400.0,
                need.as_secs() / 86400,
                if rds {
                    "managed server"
                } else {
                    "self-managed server"
                }
            ),
            if rds {
                "CALL mysql.rds_set_configuration('binlog retention hours', 168)"
            } else {
                "SET GLOBAL binlog_expire_logs_seconds = 604800 (or expire_logs_days = 7)"
            },
        ),
    }
    match b.log_replica_updates {
        Some(true) => items.pass("log_slave_updates", "log_slave_updates is ON"),
        _ => items.add(
            "log_slave_updates",
            Status::Warning,
            "log_slave_updates is OFF: changes replicated into this server from another primary are not in its binlog",
            "if the source is one of two primaries, SET log_slave_updates = ON",
        ),
    }
    check_binlog_readable(items, b);
    for w in &b.warnings {
        items.add(
            "binlog_settings",
            Status::Warning,
            w.clone(),
            "see the detail",
        );
    }
}

/// Settings that write events the binlog reader refuses (it stops rather than skip them).
fn check_binlog_readable(items: &mut Items, b: &BinlogSettings) {
    let mut failed = false;
    if b.log_bin_compress == Some(true) {
        failed = true;
        items.add(
            "binlog_readable",
            Status::Failed,
            "log_bin_compress is ON: MariaDB writes compressed row events, which the reader \
             cannot decode",
            "SET GLOBAL log_bin_compress = OFF (and in the server config)",
        );
    }
    if b.binlog_row_value_options
        .as_deref()
        .is_some_and(|o| o.to_ascii_uppercase().contains("PARTIAL_JSON"))
    {
        failed = true;
        items.add(
            "binlog_readable",
            Status::Failed,
            "binlog_row_value_options is PARTIAL_JSON: JSON updates would carry only the \
             changed part of the value",
            "SET GLOBAL binlog_row_value_options = '' (and in the server config)",
        );
    }
    if !failed {
        items.pass(
            "binlog_readable",
            "no compressed or partial-JSON row events (log_bin_compress, \
             binlog_row_value_options)",
        );
    }
}

fn check_replication_grants(items: &mut Items, g: &Grants) {
    let mut missing = Vec::new();
    if !g.has_replication_slave() {
        missing.push("REPLICATION SLAVE");
    }
    if !g.has_replication_client() {
        missing.push("REPLICATION CLIENT");
    }
    if missing.is_empty() {
        items.pass(
            "replication_privileges",
            "REPLICATION SLAVE and REPLICATION CLIENT granted",
        );
    } else {
        items.add(
            "replication_privileges",
            Status::Failed,
            format!(
                "missing {} for incremental migration",
                missing.join(" and ")
            ),
            format!("GRANT {} ON *.* TO the migration user", missing.join(", ")),
        );
    }
}

fn report_problems(
    items: &mut Items,
    name: &str,
    kind: ProblemKind,
    problems: &[MappingProblem],
    ok: &str,
) {
    let mine: Vec<&MappingProblem> = problems.iter().filter(|p| p.kind == kind).collect();
    if mine.is_empty() {
        items.pass(name, ok);
        return;
    }
    let status = if kind == ProblemKind::Size {
        Status::Warning
    } else {
        Status::Failed
    };
    let at = |p: &MappingProblem| match &p.column {
        Some(c) => format!("{}.{}", p.table, c),
        None => p.table.clone(),
    };
    items.add(
        name,
        status,
        mine.iter()
            .map(|p| format!("{}: {}", at(p), p.problem))
            .collect::<Vec<_>>()
            .join("; "),
        mine.iter()
            .map(|p| format!("{}: {}", at(p), p.fix))
            .collect::<Vec<_>>()
            .join("; "),
    );
}

fn check_invisible(items: &mut Items, tables: &[mysql::TableInfo]) {
    let cols: Vec<String> = tables
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .filter(|c| c.invisible)
                .map(move |c| format!("{}.{}", t.name, c.name))
        })
        .collect();
    if cols.is_empty() {
        items.pass("invisible_columns", "no invisible columns");
    } else {
        items.add(
            "invisible_columns",
            Status::Warning,
            format!(
                "invisible columns will be migrated (selected by name): {}",
                cols.join(", ")
            ),
            "nothing to do; listed because DTS would lose them",
        );
    }
}

/// Incremental migration evaluates each table's filter on binlog rows: a filter the
/// evaluator cannot compile for the table's columns fails here rather than at the first batch.
fn check_filters(items: &mut Items, mappings: &[TableMapping], tables: &[mysql::TableInfo]) {
    let mut refused = Vec::new();
    let mut count = 0;
    for m in mappings.iter().filter(|m| m.filter.is_some()) {
        count += 1;
        let Some(info) = tables.iter().find(|t| t.name == m.source_name) else {
            continue;
        };
        if let Err(e) = crate::mapping::filter_eval::for_mapping(m, info) {
            refused.push(format!("table {}: {e}", m.source_name));
        }
    }
    if refused.is_empty() {
        items.pass(
            "binlog_filters",
            format!("{count} table filters can be evaluated on binlog rows"),
        );
    } else {
        items.add(
            "binlog_filters",
            Status::Failed,
            refused.join("; "),
            crate::mapping::filter_eval::FIX,
        );
    }
}

/// Incremental migration decodes character data from the binlog in each column's charset
/// (`mysql::binlog::charsets`): a migrated column in a charset it cannot decode fails here
/// rather than at the first change to its table, hours into the migration.
fn check_charsets(items: &mut Items, mappings: &[TableMapping]) {
    let refused: Vec<String> = mappings
        .iter()
        .flat_map(|m| {
            m.columns().filter_map(move |c| {
                let charset = c.source.charset.as_deref()?;
                (!mysql::binlog::charsets::decodes(charset))
                    .then(|| format!("{}.{} ({charset})", m.source_name, c.source.name))
            })
        })
        .collect();
    if refused.is_empty() {
        items.pass(
            "binlog_charsets",
            "every migrated character column's charset is decoded from the binlog",
        );
    } else {
        items.add(
            "binlog_charsets",
            Status::Failed,
            format!(
                "incremental migration cannot decode these columns' charsets from the binlog: {}",
                refused.join(", ")
            ),
            "convert the columns to utf8mb4 (ALTER TABLE ... CONVERT TO CHARACTER SET utf8mb4), \
             leave them out of the migration, or migrate without incremental",
        );
    }
}

/// FLOAT/DOUBLE columns written as text or rounded are not replayed from the binlog yet:
/// refused here rather than at the first batch, after the full copy.
fn check_floats(items: &mut Items, mappings: &[TableMapping], fp: &crate::config::FloatPrecision) {
    let refused = super::binlog::unrendered_floats(mappings, fp);
    if refused.is_empty() {
        items.pass(
            "binlog_floats",
            "every FLOAT/DOUBLE column is replayed from the binlog",
        );
    } else {
        items.add(
            "binlog_floats",
            Status::Failed,
            format!("{}: {}", refused.join(", "), super::binlog::FLOAT_REFUSAL),
            "map these columns to \"double\" (the default) and leave float_precision unset, or \
             migrate without incremental",
        );
    }
}

fn check_table_count(
    items: &mut Items,
    ctx: &Context,
    mappings: &[TableMapping],
    existing: &[String],
) {
    let cfg = &ctx.config;
    let mut needed: Vec<&str> = mappings
        .iter()
        .map(|m| m.target_name.as_str())
        .filter(|t| !existing.iter().any(|e| e == t))
        .collect();
    if !existing.contains(&cfg.destination.state_table) {
        needed.push(&cfg.destination.state_table);
    }
    if cfg.heartbeat.enabled && !existing.contains(&cfg.heartbeat.table) {
        needed.push(&cfg.heartbeat.table);
    }
    let max = cfg.destination.max_tables as usize;
    let total = existing.len() + needed.len();
    if total <= max {
        items.pass(
            "table_count",
            format!(
                "{} tables to create, {} exist, quota {max}",
                needed.len(),
                existing.len()
            ),
        );
    } else {
        items.add(
            "table_count",
            Status::Failed,
            format!(
                "{} tables to create (incl. the state table) + {} existing = {total}, over the instance quota of {max}",
                needed.len(),
                existing.len()
            ),
            "migrate fewer tables per instance, delete unused tables, or raise the quota and destination.max_tables",
        );
    }
}

/// The destination checks of `mappings`, one DescribeTable per existing table, until `budget`
/// is spent: answers the source table to continue at, if any is left.
async fn check_conflicts(
    items: &mut Items,
    ctx: &Context,
    mappings: &[TableMapping],
    budget: &Budget,
    existing: &[String],
    ours: &[String],
) -> Option<String> {
    let mode = ctx.config.conflicting_tables;
    let mut report_mode_conflicts = Vec::new();
    let mut reused = Vec::new();
    let mut different = Vec::new();
    let mut described = 0;
    let mut next_table = None;
    for m in mappings {
        if !existing.contains(&m.target_name) {
            continue;
        }
        if budget.spent(described) {
            next_table = Some(m.source_name.clone());
            break;
        }
        described += 1;
        let want = m.table_def();
        let same = match ctx.destination.describe_table(&m.target_name).await {
            Ok(d) => same_key(&d.def, &want),
            Err(_) => false,
        };
        if !same {
            different.push(format!(
                "{} (key {} expected)",
                m.target_name,
                key_text(&want)
            ));
        } else if ours.contains(&m.target_name) {
            continue;
        } else if mode == ConflictingTables::PrecheckAndReport {
            report_mode_conflicts.push(m.target_name.clone());
        } else {
            reused.push(m.target_name.clone());
        }
    }
    if !different.is_empty() {
        items.add(
            "conflicting_tables",
            Status::Failed,
            format!(
                "destination tables exist with a different primary key: {}",
                different.join(", ")
            ),
            "delete or rename those destination tables, or map the source tables to other targets",
        );
    } else if !report_mode_conflicts.is_empty() {
        items.add(
            "conflicting_tables",
            Status::Failed,
            format!("destination tables already exist: {}", report_mode_conflicts.join(", ")),
            "delete them, map to other targets, or set conflicting_tables to ignore_and_proceed to write into them",
        );
    } else if !reused.is_empty() {
        items.add(
            "conflicting_tables",
            Status::Warning,
            format!(
                "existing destination tables with the same key will be written into: {}",
                reused.join(", ")
            ),
            "rows with the same key are overwritten; make sure that is intended",
        );
    } else {
        items.pass("conflicting_tables", "no destination table conflicts");
    }
    next_table
}

/// Same key columns, names and types, in order.
pub fn same_key(a: &TableDef, b: &TableDef) -> bool {
    a.primary_key.len() == b.primary_key.len()
        && a.primary_key
            .iter()
            .zip(&b.primary_key)
            .all(|(x, y)| x.name == y.name && x.pk_type == y.pk_type)
}

pub fn key_text(d: &TableDef) -> String {
    d.primary_key
        .iter()
        .map(|k| format!("{} {}", k.name, k.pk_type.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ColumnType;
    use crate::mapping::ColumnMapping;
    use crate::mysql::ColumnInfo;

    fn column(name: &str, ordinal: u32, charset: Option<&str>) -> ColumnMapping {
        let mut source = ColumnInfo::of_type(name, ordinal, "varchar", "varchar(20)");
        source.charset = charset.map(str::to_owned);
        ColumnMapping {
            family: crate::mapping::types::family(&source).expect("varchar maps"),
            source,
            target_name: name.to_owned(),
            target_type: ColumnType::String,
        }
    }

    fn table(attributes: Vec<ColumnMapping>) -> TableMapping {
        TableMapping {
            source_schema: "db".into(),
            source_name: "t".into(),
            target_name: "t".into(),
            key: vec![column("id", 1, None)],
            attributes,
            filter: None,
            row_estimate: 0,
            warnings: vec![],
        }
    }

    /// Every charset MariaDB has is decoded; MySQL 8's gb18030 is not, and the item names the
    /// column, its charset and the fix.
    #[test]
    fn charsets_the_binlog_decoder_lacks_fail_their_item() {
        let mut items = Items::default();
        let decodable = ["utf8mb4", "gbk", "big5", "sjis", "euckr", "utf32", "latin1"];
        let cols = (0..)
            .zip(decodable)
            .map(|(i, cs)| column(cs, i + 2, Some(cs)));
        check_charsets(&mut items, &[table(cols.collect())]);
        assert_eq!(items.0[0].status, Status::Passed, "{:?}", items.0);

        let mut items = Items::default();
        let cols = vec![column("a", 2, Some("gbk")), column("b", 3, Some("gb18030"))];
        check_charsets(&mut items, &[table(cols)]);
        let item = &items.0[0];
        assert_eq!(item.status, Status::Failed, "{item:?}");
        assert!(item.detail.ends_with(": t.b (gb18030)"), "{item:?}");
        assert!(item.fix.contains("utf8mb4"), "{item:?}");
    }
}
