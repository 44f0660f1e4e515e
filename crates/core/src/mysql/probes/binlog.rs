//! Binlog probes: the settings incremental migration depends on (format, row image, row
//! metadata, retention from variables or RDS), the current binlog position with its GTID set,
//! and the list of binary logs. Split from the grants probes, which share nothing with these.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mysql::connect::{col, exec_text, query_text, Conn, TextRow};
use crate::mysql::error::SourceError;
use crate::mysql::flavor::{global_variables, Flavor, ServerInfo};

// ---------------------------------------------------------------------------------------------
// Binlog settings
// ---------------------------------------------------------------------------------------------

/// Where [`BinlogSettings::retention`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionSource {
    /// `CALL mysql.rds_show_configuration`, row `binlog retention hours` (AWS RDS/Aurora).
    RdsConfiguration,
    /// `binlog_expire_logs_seconds` (MySQL 8, MariaDB >= 10.6.1); wins over expire_logs_days.
    BinlogExpireLogsSeconds,
    /// `expire_logs_days` (MySQL 5.7, MariaDB < 10.6, or when the seconds variable is 0).
    ExpireLogsDays,
    /// Both variables are 0: binlogs are never purged automatically.
    NoAutomaticPurge,
    /// `binlog_expire_logs_auto_purge = OFF` (MySQL >= 8.0.29): never purged automatically.
    AutoPurgeDisabled,
}

/// The server's binlog configuration, as the precheck needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogSettings {
    /// `log_bin`.
    pub log_bin: bool,
    /// `binlog_format`, upper case (`ROW`, `STATEMENT`, `MIXED`).
    pub binlog_format: Option<String>,
    /// `binlog_row_image`, upper case (`FULL`, `MINIMAL`, `NOBLOB`, MariaDB `FULL_NODUP`).
    pub binlog_row_image: Option<String>,
    /// `binlog_row_metadata` (`NO_LOG`/`MINIMAL`/`FULL`); `None` on servers without it
    /// (MySQL < 8.0.1, MariaDB < 10.5).
    pub binlog_row_metadata: Option<String>,
    /// How long binlogs are kept; `None` when they are never purged automatically (see
    /// `retention_source`). On RDS with `binlog retention hours` NULL this is `Some(0)`:
    /// RDS purges them as soon as it has backed them up.
    pub retention: Option<Duration>,
    pub retention_source: RetentionSource,
    /// `log_replica_updates` (MySQL >= 8.0.26), else `log_slave_updates`.
    pub log_replica_updates: Option<bool>,
    /// MySQL `gtid_mode` (`OFF`, `ON`, ...); MariaDB has none (its GTIDs are always on).
    pub gtid_mode: Option<String>,
    /// MariaDB `gtid_strict_mode`.
    pub gtid_strict_mode: Option<bool>,
    /// `server_id` of the source (a reader must register with a different one).
    pub server_id: u32,
    /// `binlog_checksum` (`CRC32`, `NONE`).
    pub binlog_checksum: Option<String>,
    /// MariaDB `log_bin_compress`: compressed row events the reader cannot decode.
    pub log_bin_compress: Option<bool>,
    /// MySQL `binlog_transaction_compression` (8.0.20+): zstd transaction payloads.
    pub binlog_transaction_compression: Option<bool>,
    /// MySQL `binlog_encryption` / MariaDB `encrypt_binlog`.
    pub binlog_encryption: Option<bool>,
    /// MySQL `binlog_row_value_options` (`PARTIAL_JSON` writes partial JSON updates).
    pub binlog_row_value_options: Option<String>,
    /// Things the caller should show as warnings (e.g. RDS retention could not be read).
    pub warnings: Vec<String>,
}

/// The answer of `CALL mysql.rds_show_configuration`, as far as retention goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdsRetention {
    /// Not an RDS server, or not asked.
    NotAsked,
    /// `binlog retention hours`: `None` when NULL (purged as soon as possible).
    Hours(Option<u64>),
    /// The call failed (not RDS after all, no privilege, ...): the message.
    Failed(String),
}

const BINLOG_VARIABLES: &[&str] = &[
    "log_bin",
    "binlog_format",
    "binlog_row_image",
    "binlog_row_metadata",
    "binlog_expire_logs_seconds",
    "binlog_expire_logs_auto_purge",
    "expire_logs_days",
    "log_slave_updates",
    "log_replica_updates",
    "gtid_mode",
    "gtid_strict_mode",
    "server_id",
    "binlog_checksum",
    "log_bin_compress",
    "binlog_transaction_compression",
    "binlog_encryption",
    "encrypt_binlog",
    "binlog_row_value_options",
];

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_uppercase().as_str() {
        "ON" | "1" | "YES" | "TRUE" => Some(true),
        "OFF" | "0" | "NO" | "FALSE" | "" => Some(false),
        _ => None,
    }
}

impl BinlogSettings {
    /// Builds the settings from `SHOW GLOBAL VARIABLES` (names lower case) and the RDS
    /// configuration answer. Pure, for tests.
    pub fn from_variables(
        vars: &HashMap<String, String>,
        info: &ServerInfo,
        rds: &RdsRetention,
    ) -> BinlogSettings {
        let get = |k: &str| vars.get(k).map(|v| v.trim());
        let upper = |k: &str| get(k).map(|v| v.to_ascii_uppercase());
        let flag = |k: &str| get(k).and_then(parse_bool);
        let mut warnings = Vec::new();

        let (retention, retention_source) = match rds {
            RdsRetention::Hours(Some(h)) => (
                Some(Duration::from_secs(h.saturating_mul(3600))),
                RetentionSource::RdsConfiguration,
            ),
            RdsRetention::Hours(None) => {
                warnings.push(
                    "RDS 'binlog retention hours' is NULL: RDS purges binlogs as soon as they \
                     are backed up. Fix: CALL mysql.rds_set_configuration('binlog retention \
                     hours', 168)"
                        .to_string(),
                );
                (Some(Duration::ZERO), RetentionSource::RdsConfiguration)
            }
            RdsRetention::NotAsked | RdsRetention::Failed(_) => {
                if let RdsRetention::Failed(e) = rds {
                    warnings.push(format!(
                        "the server looks like RDS but CALL mysql.rds_show_configuration failed \
                         ({e}); the retention below comes from the server variables, which RDS \
                         may override. Fix: check 'binlog retention hours' with CALL \
                         mysql.rds_show_configuration"
                    ));
                }
                variable_retention(vars)
            }
        };

        let row_metadata =
            if info.has_binlog_row_metadata() || vars.contains_key("binlog_row_metadata") {
                upper("binlog_row_metadata")
            } else {
                None
            };

        BinlogSettings {
            log_bin: flag("log_bin").unwrap_or(false),
            binlog_format: upper("binlog_format"),
            binlog_row_image: upper("binlog_row_image"),
            binlog_row_metadata: row_metadata,
            retention,
            retention_source,
            log_replica_updates: flag("log_replica_updates").or_else(|| flag("log_slave_updates")),
            gtid_mode: upper("gtid_mode"),
            gtid_strict_mode: flag("gtid_strict_mode"),
            server_id: get("server_id").and_then(|v| v.parse().ok()).unwrap_or(0),
            binlog_checksum: upper("binlog_checksum"),
            log_bin_compress: flag("log_bin_compress"),
            binlog_transaction_compression: flag("binlog_transaction_compression"),
            binlog_encryption: flag("binlog_encryption").or_else(|| flag("encrypt_binlog")),
            binlog_row_value_options: get("binlog_row_value_options").map(str::to_string),
            warnings,
        }
    }

    /// True when the binlog can feed an incremental migration: on, ROW, FULL images.
    pub fn is_row_based_full(&self) -> bool {
        self.log_bin
            && self.binlog_format.as_deref() == Some("ROW")
            && self.binlog_row_image.as_deref() == Some("FULL")
    }
}

/// Retention from `binlog_expire_logs_seconds` / `expire_logs_days`: seconds win when
/// non-zero (MySQL 8 ignores the days then; MariaDB >= 10.6 keeps both in step).
pub(super) fn variable_retention(
    vars: &HashMap<String, String>,
) -> (Option<Duration>, RetentionSource) {
    let get = |k: &str| vars.get(k).map(|v| v.trim());
    if get("binlog_expire_logs_auto_purge").and_then(parse_bool) == Some(false) {
        return (None, RetentionSource::AutoPurgeDisabled);
    }
    let secs = get("binlog_expire_logs_seconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if secs > 0 {
        return (
            Some(Duration::from_secs(secs)),
            RetentionSource::BinlogExpireLogsSeconds,
        );
    }
    // MariaDB >= 10.6 prints days with decimals ("0.500000").
    let days = get("expire_logs_days")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0);
    match days {
        Some(d) => (
            Some(Duration::from_secs_f64(d * 86_400.0)),
            RetentionSource::ExpireLogsDays,
        ),
        None => (None, RetentionSource::NoAutomaticPurge),
    }
}

/// Finds `binlog retention hours` in the rows of `CALL mysql.rds_show_configuration`
/// (columns `name`, `value`, `description`). Pure, for tests.
pub fn parse_rds_configuration(rows: &[TextRow]) -> RdsRetention {
    for r in rows {
        if col(r, "name").map(|n| n.trim().eq_ignore_ascii_case("binlog retention hours"))
            == Some(true)
        {
            let hours = col(r, "value").and_then(|v| {
                let v = v.trim();
                if v.eq_ignore_ascii_case("null") {
                    None
                } else {
                    v.parse::<u64>().ok()
                }
            });
            return RdsRetention::Hours(hours);
        }
    }
    RdsRetention::Failed("no 'binlog retention hours' row in the answer".to_string())
}

/// Reads the binlog settings. On RDS it also tries `CALL mysql.rds_show_configuration`
/// (failures become a warning, never an error).
pub async fn binlog_settings(
    conn: &mut Conn,
    info: &ServerInfo,
) -> Result<BinlogSettings, SourceError> {
    let names = BINLOG_VARIABLES
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let vars = global_variables(
        conn,
        &format!("Variable_name IN ({names})"),
        "reading the binlog settings",
    )
    .await?;
    let rds = if info.is_rds {
        match query_text(
            conn,
            "CALL mysql.rds_show_configuration",
            "reading the RDS configuration",
        )
        .await
        {
            Ok(rows) => parse_rds_configuration(&rows),
            Err(e) => {
                tracing::warn!(error = %e, "CALL mysql.rds_show_configuration failed");
                RdsRetention::Failed(e.to_string())
            }
        }
    } else {
        RdsRetention::NotAsked
    };
    Ok(BinlogSettings::from_variables(&vars, info, &rds))
}

// ---------------------------------------------------------------------------------------------
// Binlog position
// ---------------------------------------------------------------------------------------------

/// A position in the binlog: `(file, pos)` plus the GTID set at that point when known
/// (MySQL `Executed_Gtid_Set`, MariaDB `BINLOG_GTID_POS(file, pos)` or `gtid_binlog_pos`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
    pub gtid_set: Option<String>,
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if let Some(g) = &self.gtid_set {
            write!(f, " (gtid {g})")?;
        }
        Ok(())
    }
}

fn normalize_gtid_set(s: Option<&str>) -> Option<String> {
    let s: String = s?.chars().filter(|c| !c.is_whitespace()).collect();
    (!s.is_empty()).then_some(s)
}

/// Parses the answer of `SHOW BINARY LOG STATUS` / `SHOW MASTER STATUS`
/// (`File`, `Position`, `Binlog_Do_DB`, `Binlog_Ignore_DB`[, `Executed_Gtid_Set`]). No row
/// means binary logging is off. Pure, for tests.
pub fn parse_binlog_status(rows: &[TextRow]) -> Result<BinlogPosition, SourceError> {
    const CTX: &str = "reading the binlog position";
    let row = rows.first().ok_or_else(|| SourceError::BinlogDisabled {
        detail: "SHOW MASTER STATUS returned no row".to_string(),
    })?;
    let file = col(row, "File")
        .filter(|f| !f.is_empty())
        .ok_or_else(|| SourceError::unexpected(CTX, "no File column"))?
        .to_string();
    let pos = col(row, "Position")
        .and_then(|p| p.trim().parse::<u64>().ok())
        .ok_or_else(|| SourceError::unexpected(CTX, "no numeric Position column"))?;
    Ok(BinlogPosition {
        file,
        pos,
        gtid_set: normalize_gtid_set(col(row, "Executed_Gtid_Set")),
    })
}

/// The statement that shows the current binlog position on this server.
pub fn binlog_status_statement(info: &ServerInfo) -> &'static str {
    if info.uses_show_binary_log_status() {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    }
}

/// The current binlog position. Needs REPLICATION CLIENT (MariaDB >= 10.5: BINLOG MONITOR).
///
/// Uses `SHOW BINARY LOG STATUS` on MySQL >= 8.2, else `SHOW MASTER STATUS`, and falls back
/// to the other spelling on a syntax error (1064; MariaDB rejects the new one). The GTID set
/// comes from the same answer on MySQL; on MariaDB from `BINLOG_GTID_POS(file, pos)` (the set
/// at exactly that position), else `@@GLOBAL.gtid_binlog_pos`.
pub async fn binlog_position(
    conn: &mut Conn,
    info: &ServerInfo,
) -> Result<BinlogPosition, SourceError> {
    const CTX: &str = "reading the binlog position";
    let first = binlog_status_statement(info);
    let rows = match query_text(conn, first, CTX).await {
        Err(e) if e.server_code() == Some(1064) => {
            let other = if first == "SHOW MASTER STATUS" {
                "SHOW BINARY LOG STATUS"
            } else {
                "SHOW MASTER STATUS"
            };
            tracing::debug!(statement = first, "syntax error; trying {other}");
            query_text(conn, other, CTX).await?
        }
        other => other?,
    };
    let mut position = parse_binlog_status(&rows)?;
    if position.gtid_set.is_none() {
        position.gtid_set = match info.flavor {
            Flavor::MariaDb => mariadb_gtid_at(conn, &position).await,
            Flavor::MySql => scalar(conn, "SELECT @@GLOBAL.gtid_executed").await,
        };
    }
    Ok(position)
}

async fn mariadb_gtid_at(conn: &mut Conn, p: &BinlogPosition) -> Option<String> {
    let at = exec_text(
        conn,
        "SELECT BINLOG_GTID_POS(?, ?)",
        vec![p.file.clone().into(), p.pos.into()],
        "reading the GTID position",
    )
    .await
    .ok()
    .and_then(|rows| {
        rows.first()
            .and_then(|r| r.first())
            .and_then(|(_, v)| v.clone())
    });
    match normalize_gtid_set(at.as_deref()) {
        Some(g) => Some(g),
        None => scalar(conn, "SELECT @@GLOBAL.gtid_binlog_pos").await,
    }
}

/// First column of the first row, best effort (`None` on error, NULL or empty).
async fn scalar(conn: &mut Conn, sql: &str) -> Option<String> {
    let rows = query_text(conn, sql, "reading a server value").await.ok()?;
    let v = rows.first()?.first()?.1.clone();
    normalize_gtid_set(v.as_deref())
}

/// One binlog file of `SHOW BINARY LOGS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogFile {
    pub name: String,
    pub size: u64,
}

/// The binlog files the server still has (`SHOW BINARY LOGS`, needs REPLICATION CLIENT):
/// a checkpoint whose file is not listed was purged.
pub async fn binary_logs(conn: &mut Conn) -> Result<Vec<BinlogFile>, SourceError> {
    let rows = query_text(conn, "SHOW BINARY LOGS", "listing the binlog files").await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some(BinlogFile {
                name: col(r, "Log_name")?.to_string(),
                size: col(r, "File_size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            })
        })
        .collect())
}
