//! Which server this is: MySQL or MariaDB, which version, managed by AWS RDS or not.
//!
//! The version decides which spellings work (`SHOW BINARY LOG STATUS` on MySQL >= 8.2,
//! `binlog_expire_logs_seconds` on MySQL 8 and MariaDB >= 10.6.1, `log_replica_updates` on
//! MySQL >= 8.0.26, invisible columns on MySQL >= 8.0.23 and MariaDB >= 10.3.3, ...), so the
//! probes take a [`ServerInfo`]. Detection of a managed service is best effort: AWS RDS and
//! Aurora install under `/rdsdbbin/` (`basedir`), Aurora has `aurora_version`, Alibaba Cloud
//! RDS (AliSQL) has `rds_*` variables. A wrong guess only changes where the binlog retention is
//! read from and the wording of fixes.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::connect::{col, query_text, Conn};
use super::error::SourceError;

/// MySQL or MariaDB (Percona Server and cloud builds of MySQL count as MySQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    MySql,
    MariaDb,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::MySql => "MySQL",
            Flavor::MariaDb => "MariaDB",
        })
    }
}

/// A server version `(major, minor, patch)`.
pub type Version = (u32, u32, u32);

/// What the probes need to know about the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub flavor: Flavor,
    pub version: Version,
    /// `@@version` as the server prints it, e.g. `10.11.19-MariaDB-0+deb12u1-log`.
    pub version_string: String,
    /// `@@version_comment`, e.g. `MySQL Community Server - GPL`, `Source distribution`.
    pub version_comment: String,
    /// Managed by a cloud RDS service (AWS RDS/Aurora or Alibaba Cloud RDS); best effort.
    pub is_rds: bool,
    /// AWS Aurora MySQL (has `aurora_version`).
    pub is_aurora: bool,
}

impl ServerInfo {
    /// True when the server's version is at least `v` (compare within one flavor only).
    pub fn at_least(&self, v: Version) -> bool {
        self.version >= v
    }

    pub fn is_mariadb(&self) -> bool {
        self.flavor == Flavor::MariaDb
    }

    /// MySQL >= 8.2 spells it `SHOW BINARY LOG STATUS` (8.4 removed `SHOW MASTER STATUS`).
    pub fn uses_show_binary_log_status(&self) -> bool {
        self.flavor == Flavor::MySql && self.at_least((8, 2, 0))
    }

    /// `binlog_expire_logs_seconds` exists (MySQL >= 8.0.1, MariaDB >= 10.6.1).
    pub fn has_binlog_expire_logs_seconds(&self) -> bool {
        match self.flavor {
            Flavor::MySql => self.at_least((8, 0, 1)),
            Flavor::MariaDb => self.at_least((10, 6, 1)),
        }
    }

    /// `binlog_row_metadata` exists (MySQL >= 8.0.1, MariaDB >= 10.5.0).
    pub fn has_binlog_row_metadata(&self) -> bool {
        match self.flavor {
            Flavor::MySql => self.at_least((8, 0, 1)),
            Flavor::MariaDb => self.at_least((10, 5, 0)),
        }
    }

    /// Columns can be INVISIBLE (MySQL >= 8.0.23, MariaDB >= 10.3.3).
    pub fn has_invisible_columns(&self) -> bool {
        match self.flavor {
            Flavor::MySql => self.at_least((8, 0, 23)),
            Flavor::MariaDb => self.at_least((10, 3, 3)),
        }
    }

    /// MySQL 8.0 roles (`SHOW GRANTS ... USING`); MariaDB has its own roles since 10.0.5.
    pub fn has_mysql_roles(&self) -> bool {
        self.flavor == Flavor::MySql && self.at_least((8, 0, 0))
    }

    /// Builds the info from `SHOW GLOBAL VARIABLES` rows (name → value). Pure, for tests.
    pub fn from_variables(vars: &HashMap<String, String>) -> Result<ServerInfo, SourceError> {
        let get = |k: &str| vars.get(k).map(String::as_str);
        let version_string = get("version").unwrap_or_default().to_string();
        let version_comment = get("version_comment").unwrap_or_default().to_string();
        let (flavor, version) =
            parse_version(&version_string, &version_comment).ok_or_else(|| {
                SourceError::unexpected(
                    "detecting the server version",
                    format!("cannot parse the version string {version_string:?}"),
                )
            })?;
        let basedir = get("basedir").unwrap_or_default();
        let is_aurora = vars.contains_key("aurora_version");
        let has_rds_variables = vars.keys().any(|k| k.starts_with("rds_"));
        let is_rds = is_aurora
            || basedir.contains("/rdsdbbin/")
            || has_rds_variables
            || version_string.to_ascii_lowercase().contains("aurora");
        Ok(ServerInfo {
            flavor,
            version,
            version_string,
            version_comment,
            is_rds,
            is_aurora,
        })
    }
}

impl fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "{} {a}.{b}.{c}", self.flavor)?;
        if self.is_aurora {
            f.write_str(" (Aurora)")?;
        } else if self.is_rds {
            f.write_str(" (RDS)")?;
        }
        Ok(())
    }
}

/// Parses a version string into flavor and `(major, minor, patch)`.
///
/// Accepts `8.0.36`, `8.4.0`, `5.7.44-log`, `8.0.36-0ubuntu0.22.04.1`, `11.4.2-MariaDB`,
/// `10.11.19-MariaDB-0+deb12u1-log`, and the `5.5.5-` prefix old MariaDB servers put in the
/// handshake (`5.5.5-10.3.39-MariaDB`). A missing patch number reads as 0.
pub fn parse_version(version: &str, version_comment: &str) -> Option<(Flavor, Version)> {
    let v = version.trim();
    let is_maria = v.to_ascii_lowercase().contains("mariadb")
        || version_comment.to_ascii_lowercase().contains("mariadb");
    let v = match v.strip_prefix("5.5.5-") {
        Some(rest) if is_maria => rest,
        _ => v,
    };
    let numeric: &str = v.split(['-', '+', ' ', '_']).next().unwrap_or_default();
    let mut parts = numeric.split('.');
    let major = parts.next()?.parse::<u32>().ok()?;
    let minor = parts.next()?.parse::<u32>().ok()?;
    let patch = parts
        .next()
        .and_then(|p| {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<u32>().ok()
        })
        .unwrap_or(0);
    let flavor = if is_maria {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    };
    Some((flavor, (major, minor, patch)))
}

/// Reads `SHOW GLOBAL VARIABLES` rows into a map; names lower-cased.
pub(crate) async fn global_variables(
    conn: &mut Conn,
    where_clause: &str,
    context: &str,
) -> Result<HashMap<String, String>, SourceError> {
    let sql = format!("SHOW GLOBAL VARIABLES WHERE {where_clause}");
    let rows = query_text(conn, &sql, context).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let name = col(r, "Variable_name")?.to_ascii_lowercase();
            Some((name, col(r, "Value").unwrap_or_default().to_string()))
        })
        .collect())
}

/// Asks the server what it is.
pub async fn server_info(conn: &mut Conn) -> Result<ServerInfo, SourceError> {
    let vars = global_variables(
        conn,
        "Variable_name IN ('version', 'version_comment', 'basedir', 'aurora_version') \
         OR Variable_name LIKE 'rds\\_%'",
        "detecting the server version",
    )
    .await?;
    let info = ServerInfo::from_variables(&vars)?;
    tracing::debug!(server = %info, version = %info.version_string, "detected the source server");
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn version_strings() {
        let cases = [
            (
                "10.11.19-MariaDB-0+deb12u1-log",
                "",
                Flavor::MariaDb,
                (10, 11, 19),
            ),
            (
                "8.0.36",
                "MySQL Community Server - GPL",
                Flavor::MySql,
                (8, 0, 36),
            ),
            (
                "8.4.0",
                "MySQL Community Server - GPL",
                Flavor::MySql,
                (8, 4, 0),
            ),
            (
                "5.7.44-log",
                "MySQL Community Server (GPL)",
                Flavor::MySql,
                (5, 7, 44),
            ),
            (
                "11.4.2-MariaDB",
                "mariadb.org binary distribution",
                Flavor::MariaDb,
                (11, 4, 2),
            ),
            ("5.5.5-10.3.39-MariaDB", "", Flavor::MariaDb, (10, 3, 39)),
            (
                "8.0.36-0ubuntu0.22.04.1",
                "(Ubuntu)",
                Flavor::MySql,
                (8, 0, 36),
            ),
            (
                "8.0.35-27",
                "Percona Server (GPL), Release 27",
                Flavor::MySql,
                (8, 0, 35),
            ),
            ("8.0.28-google", "(Google)", Flavor::MySql, (8, 0, 28)),
            (
                "8.0.mysql_aurora.3.04.0",
                "Source distribution",
                Flavor::MySql,
                (8, 0, 0),
            ),
            ("10.6.16", "MariaDB Server", Flavor::MariaDb, (10, 6, 16)),
            ("8.0", "", Flavor::MySql, (8, 0, 0)),
        ];
        for (v, c, flavor, version) in cases {
            assert_eq!(parse_version(v, c), Some((flavor, version)), "{v}");
        }
        assert_eq!(parse_version("", ""), None);
        assert_eq!(parse_version("garbage", ""), None);
        assert_eq!(parse_version("8", ""), None);
    }

    #[test]
    fn rds_detection_from_variables() {
        // Recorded from an AWS RDS for MySQL 8.0 instance.
        let rds = ServerInfo::from_variables(&vars(&[
            ("version", "8.0.35"),
            ("version_comment", "Source distribution"),
            ("basedir", "/rdsdbbin/mysql-8.0.35.R2/"),
        ]))
        .unwrap();
        assert!(rds.is_rds && !rds.is_aurora);
        assert_eq!(rds.to_string(), "MySQL 8.0.35 (RDS)");
        let aurora = ServerInfo::from_variables(&vars(&[
            ("version", "8.0.28"),
            ("version_comment", "Source distribution"),
            ("basedir", "/rdsdbbin/oscar-8.0.mysql_aurora.3.04.0.0.1234/"),
            ("aurora_version", "3.04.0"),
        ]))
        .unwrap();
        assert!(aurora.is_rds && aurora.is_aurora);
        let alisql = ServerInfo::from_variables(&vars(&[
            ("version", "8.0.25"),
            ("version_comment", "Source distribution"),
            ("basedir", "/u01/mysql/"),
            ("rds_audit_log_enabled", "OFF"),
        ]))
        .unwrap();
        assert!(alisql.is_rds);
        let local = ServerInfo::from_variables(&vars(&[
            ("version", "10.11.19-MariaDB-0+deb12u1-log"),
            ("version_comment", "Debian 12"),
            ("basedir", "/usr"),
        ]))
        .unwrap();
        assert!(!local.is_rds && local.is_mariadb());
        assert!(ServerInfo::from_variables(&vars(&[("version", "x")])).is_err());
    }

    #[test]
    fn feature_gates() {
        let info = |flavor, version| ServerInfo {
            flavor,
            version,
            version_string: String::new(),
            version_comment: String::new(),
            is_rds: false,
            is_aurora: false,
        };
        assert!(info(Flavor::MySql, (8, 4, 0)).uses_show_binary_log_status());
        assert!(info(Flavor::MySql, (8, 2, 0)).uses_show_binary_log_status());
        assert!(!info(Flavor::MySql, (8, 0, 36)).uses_show_binary_log_status());
        assert!(!info(Flavor::MariaDb, (11, 4, 2)).uses_show_binary_log_status());
        assert!(info(Flavor::MariaDb, (10, 6, 1)).has_binlog_expire_logs_seconds());
        assert!(!info(Flavor::MariaDb, (10, 5, 9)).has_binlog_expire_logs_seconds());
        assert!(!info(Flavor::MySql, (5, 7, 44)).has_binlog_expire_logs_seconds());
        assert!(info(Flavor::MySql, (8, 0, 23)).has_invisible_columns());
        assert!(!info(Flavor::MySql, (8, 0, 22)).has_invisible_columns());
        assert!(info(Flavor::MariaDb, (10, 5, 0)).has_binlog_row_metadata());
    }
}
