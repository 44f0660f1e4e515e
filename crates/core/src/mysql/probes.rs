//! Probes of the server's setup, for the precheck and for `begin`: binlog settings and
//! retention, the current binlog position, and the grants of the migration account.
//!
//! Each probe is a thin async fn around a pure parser of the server's answer, so the branches
//! a local MariaDB cannot show (MySQL 8.x spellings, RDS, roles) are unit-tested from recorded
//! answers.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::connect::{col, exec_text, query_text, Conn, TextRow};
use super::error::SourceError;
use super::flavor::{global_variables, parse_version, Flavor, ServerInfo, Version};

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
fn variable_retention(vars: &HashMap<String, String>) -> (Option<Duration>, RetentionSource) {
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

// ---------------------------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------------------------

/// A user or role as `SHOW GRANTS` prints it: `` `name`@`host` `` (roles in MariaDB have no
/// host).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub host: Option<String>,
}

impl fmt::Display for Account {
    /// Quoted with backticks, usable in SQL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.name.replace('`', "``"))?;
        if let Some(h) = &self.host {
            write!(f, "@`{}`", h.replace('`', "``"))?;
        }
        Ok(())
    }
}

/// What a grant applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantObject {
    /// `ON *.*`
    Global,
    /// `ON db.*`; the name is a LIKE pattern (`_`, `%` wildcards, `\_` a literal `_`).
    Database(String),
    /// `ON db.table` (or `ON TABLE db.table`).
    Table { database: String, table: String },
    /// `ON FUNCTION|PROCEDURE|PACKAGE db.name`.
    Routine {
        kind: String,
        database: String,
        name: String,
    },
    /// `GRANT PROXY ON account`.
    Proxy(Account),
}

/// One privilege of a grant, upper case (`SELECT`, `REPLICATION SLAVE`, `ALL PRIVILEGES`),
/// with its column list for column-level grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Privilege {
    pub name: String,
    pub columns: Option<Vec<String>>,
}

impl Privilege {
    fn is_all(&self) -> bool {
        self.name == "ALL" || self.name == "ALL PRIVILEGES"
    }
}

/// One line of `SHOW GRANTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantStatement {
    /// `GRANT privs ON object TO account` or (MySQL partial revokes) `REVOKE ... FROM ...`.
    Privileges {
        revoke: bool,
        privileges: Vec<Privilege>,
        object: GrantObject,
        grantee: Account,
        with_grant_option: bool,
    },
    /// `GRANT role[, role] TO account` (MySQL 8 and MariaDB roles).
    Roles {
        roles: Vec<Account>,
        grantee: Account,
    },
    /// MariaDB: `SET DEFAULT ROLE role FOR account`.
    DefaultRole { role: Account, grantee: Account },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    /// Backtick-quoted identifier.
    Ident(String),
    /// Single- or double-quoted string.
    Str(String),
    Punct(char),
}

fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = line.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '`' | '\'' | '"' => {
                it.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some(ch) = it.next() {
                    if ch == c {
                        if it.peek() == Some(&c) {
                            it.next();
                            s.push(c);
                        } else {
                            closed = true;
                            break;
                        }
                    } else if ch == '\\' && c != '`' {
                        if let Some(n) = it.next() {
                            s.push(n);
                        }
                    } else {
                        s.push(ch);
                    }
                }
                if !closed {
                    return Err("unterminated quote".to_string());
                }
                out.push(if c == '`' { Tok::Ident(s) } else { Tok::Str(s) });
            }
            '(' | ')' | ',' | '.' | '@' | '*' => {
                it.next();
                out.push(Tok::Punct(c));
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = it.peek() {
                    if ch.is_whitespace() || "()`'\",.@*".contains(ch) {
                        break;
                    }
                    s.push(ch);
                    it.next();
                }
                out.push(Tok::Word(s));
            }
        }
    }
    Ok(out)
}

fn is_kw(t: &Tok, kw: &str) -> bool {
    matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

fn name_of(t: &Tok) -> Option<String> {
    match t {
        Tok::Word(w) | Tok::Ident(w) | Tok::Str(w) => Some(w.clone()),
        _ => None,
    }
}

/// Parses `name[@host]` at the start of `toks`; returns the account and tokens consumed.
fn parse_account(toks: &[Tok]) -> Option<(Account, usize)> {
    let name = name_of(toks.first()?)?;
    if toks.get(1) == Some(&Tok::Punct('@')) {
        let host = name_of(toks.get(2)?)?;
        Some((
            Account {
                name,
                host: Some(host),
            },
            3,
        ))
    } else {
        Some((Account { name, host: None }, 1))
    }
}

/// Index of the first top-level (outside parentheses) token that satisfies `pred`.
fn find_top(toks: &[Tok], pred: impl Fn(&Tok) -> bool) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            _ if depth == 0 && pred(t) => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits at top-level commas.
fn split_top(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                parts.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    parts
}

fn parse_privilege(toks: &[Tok]) -> Result<Privilege, String> {
    let mut words = Vec::new();
    let mut columns = None;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) | Tok::Ident(w) => words.push(w.to_ascii_uppercase()),
            Tok::Punct('(') => {
                let close = toks[i..]
                    .iter()
                    .position(|t| *t == Tok::Punct(')'))
                    .ok_or("unclosed column list")?;
                let cols = toks[i + 1..i + close]
                    .iter()
                    .filter_map(name_of)
                    .collect::<Vec<_>>();
                columns = Some(cols);
                i += close;
            }
            t => return Err(format!("unexpected {t:?} in a privilege")),
        }
        i += 1;
    }
    if words.is_empty() {
        return Err("empty privilege".to_string());
    }
    Ok(Privilege {
        name: words.join(" "),
        columns,
    })
}

fn parse_object(toks: &[Tok]) -> Result<GrantObject, String> {
    let (kind, rest) = match toks.first() {
        Some(t) if is_kw(t, "TABLE") => (None, &toks[1..]),
        Some(t) if is_kw(t, "FUNCTION") || is_kw(t, "PROCEDURE") => {
            (name_of(t).map(|k| k.to_ascii_uppercase()), &toks[1..])
        }
        Some(t) if is_kw(t, "PACKAGE") => {
            if toks.get(1).is_some_and(|t| is_kw(t, "BODY")) {
                (Some("PACKAGE BODY".to_string()), &toks[2..])
            } else {
                (Some("PACKAGE".to_string()), &toks[1..])
            }
        }
        _ => (None, toks),
    };
    let part = |t: &Tok| -> Option<String> {
        match t {
            Tok::Punct('*') => Some("*".to_string()),
            other => name_of(other),
        }
    };
    match rest {
        [a, Tok::Punct('.'), b] => {
            let (db, name) = (part(a).ok_or("bad object")?, part(b).ok_or("bad object")?);
            match (kind, db.as_str(), name.as_str()) {
                (None, "*", "*") => Ok(GrantObject::Global),
                (None, _, "*") => Ok(GrantObject::Database(db)),
                (None, _, _) => Ok(GrantObject::Table {
                    database: db,
                    table: name,
                }),
                (Some(kind), _, _) => Ok(GrantObject::Routine {
                    kind,
                    database: db,
                    name,
                }),
            }
        }
        _ => Err("cannot read the object of the grant".to_string()),
    }
}

/// Parses one line of `SHOW GRANTS`. Pure; the error never repeats the line (it may hold a
/// password hash).
pub fn parse_grant_line(line: &str) -> Result<GrantStatement, String> {
    let toks = tokenize(line.trim().trim_end_matches(';'))?;
    let first = toks.first().ok_or("empty line")?;
    if is_kw(first, "SET") {
        // SET DEFAULT ROLE role FOR account
        if toks.len() >= 4 && is_kw(&toks[1], "DEFAULT") && is_kw(&toks[2], "ROLE") {
            let (role, n) = parse_account(&toks[3..]).ok_or("bad role")?;
            let rest = &toks[3 + n..];
            if rest.first().is_some_and(|t| is_kw(t, "FOR")) {
                let (grantee, _) = parse_account(&rest[1..]).ok_or("bad grantee")?;
                return Ok(GrantStatement::DefaultRole { role, grantee });
            }
        }
        return Err("unknown SET statement".to_string());
    }
    let revoke = if is_kw(first, "GRANT") {
        false
    } else if is_kw(first, "REVOKE") {
        true
    } else {
        return Err("not a GRANT or REVOKE statement".to_string());
    };
    let body = &toks[1..];
    let to_kw = if revoke { "FROM" } else { "TO" };
    let to = find_top(body, |t| is_kw(t, to_kw)).ok_or("no TO/FROM")?;
    let (grantee, used) = parse_account(&body[to + 1..]).ok_or("bad grantee")?;
    let tail = &body[to + 1 + used..];
    let with_grant_option = tail
        .windows(3)
        .any(|w| is_kw(&w[0], "WITH") && is_kw(&w[1], "GRANT") && is_kw(&w[2], "OPTION"));
    match find_top(&body[..to], |t| is_kw(t, "ON")) {
        Some(on) => {
            let privileges = split_top(&body[..on])
                .into_iter()
                .map(parse_privilege)
                .collect::<Result<Vec<_>, _>>()?;
            let obj_toks = &body[on + 1..to];
            let object = if privileges.len() == 1 && privileges[0].name == "PROXY" {
                GrantObject::Proxy(parse_account(obj_toks).ok_or("bad proxy account")?.0)
            } else {
                parse_object(obj_toks)?
            };
            Ok(GrantStatement::Privileges {
                revoke,
                privileges,
                object,
                grantee,
                with_grant_option,
            })
        }
        None if !revoke => {
            let roles = split_top(&body[..to])
                .into_iter()
                .map(|p| match parse_account(p) {
                    Some((a, n)) if n == p.len() => Ok(a),
                    _ => Err("bad role name".to_string()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(GrantStatement::Roles { roles, grantee })
        }
        None => Err("REVOKE without ON".to_string()),
    }
}

/// A `SHOW GRANTS` line safe to show: anything from `IDENTIFIED` on is cut.
pub fn redact_grant_line(line: &str) -> String {
    let upper = line.to_ascii_uppercase();
    match upper.find(" IDENTIFIED ") {
        Some(i) => format!("{} IDENTIFIED <redacted>", &line[..i]),
        None => line.to_string(),
    }
}

/// MySQL LIKE with `%`, `_` and `\` escapes (database-level grants are patterns).
fn like_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                t.first() == Some(&rest[0]) && go(&rest[1..], &t[1..])
            }
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// The privileges of the migration account.
///
/// Roles, best effort: MySQL 8 privileges of the roles *active in a new session* (default
/// roles, or all with `activate_all_roles_on_login`) are included via `SHOW GRANTS FOR
/// CURRENT_USER() USING ...`; MariaDB's `SHOW GRANTS` already includes the current (default)
/// role's grants, and if not, `SHOW GRANTS FOR role` is added. Roles that are granted but not
/// active are listed in `inactive_roles()`: a new session (e.g. the binlog reader's) would not
/// have their privileges; the fix is `SET DEFAULT ROLE`. Nested roles are not expanded on
/// MariaDB. MySQL's `partial_revokes` are honoured for database-level REVOKEs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// `CURRENT_USER()`, e.g. `tsmigrate@%`.
    pub current_user: String,
    pub flavor: Flavor,
    pub version: Version,
    pub statements: Vec<GrantStatement>,
    /// Roles granted to the user.
    pub granted_roles: Vec<Account>,
    /// Roles active in a new session (`CURRENT_ROLE()`).
    pub active_roles: Vec<Account>,
    /// Lines that could not be parsed (redacted).
    pub unparsed: Vec<String>,
}

impl Grants {
    /// Builds from `SHOW GRANTS` lines. Pure, for tests.
    pub fn from_lines(
        current_user: &str,
        flavor: Flavor,
        version: Version,
        lines: &[String],
        active_roles: Vec<Account>,
    ) -> Grants {
        let mut g = Grants {
            current_user: current_user.to_string(),
            flavor,
            version,
            statements: Vec::new(),
            granted_roles: Vec::new(),
            active_roles,
            unparsed: Vec::new(),
        };
        g.add_lines(lines);
        g
    }

    fn add_lines(&mut self, lines: &[String]) {
        for line in lines {
            match parse_grant_line(line) {
                Ok(st) => {
                    if let GrantStatement::Roles { roles, .. } = &st {
                        for r in roles {
                            if !self.granted_roles.contains(r) {
                                self.granted_roles.push(r.clone());
                            }
                        }
                    }
                    if !self.statements.contains(&st) {
                        self.statements.push(st);
                    }
                }
                Err(e) => {
                    tracing::debug!(problem = %e, "could not parse a SHOW GRANTS line");
                    self.unparsed.push(redact_grant_line(line));
                }
            }
        }
    }

    /// Granted roles that a new session does not activate.
    pub fn inactive_roles(&self) -> Vec<&Account> {
        self.granted_roles
            .iter()
            .filter(|r| {
                !self.active_roles.iter().any(|a| {
                    a.name == r.name && (a.host == r.host || a.host.is_none() || r.host.is_none())
                })
            })
            .collect()
    }

    fn grants(&self) -> impl Iterator<Item = (&[Privilege], &GrantObject, bool)> {
        self.statements.iter().filter_map(|s| match s {
            GrantStatement::Privileges {
                revoke,
                privileges,
                object,
                ..
            } => Some((privileges.as_slice(), object, *revoke)),
            _ => None,
        })
    }

    /// True when `name` (upper case) or ALL is granted `ON *.*`.
    pub fn has_global(&self, name: &str) -> bool {
        self.grants().any(|(privs, obj, revoke)| {
            !revoke
                && *obj == GrantObject::Global
                && privs
                    .iter()
                    .any(|p| p.columns.is_none() && (p.is_all() || p.name == name))
        })
    }

    /// REPLICATION SLAVE (MariaDB alias REPLICATION REPLICA) or ALL on `*.*`: needed to read
    /// the binlog stream.
    pub fn has_replication_slave(&self) -> bool {
        self.has_global("REPLICATION SLAVE") || self.has_global("REPLICATION REPLICA")
    }

    /// REPLICATION CLIENT or ALL on `*.*`, needed for `SHOW MASTER STATUS` / `SHOW BINARY
    /// LOGS`. On MariaDB >= 10.5 REPLICATION CLIENT is an alias of BINLOG MONITOR (SHOW GRANTS
    /// prints the latter). SUPER counts on MySQL and MariaDB < 10.5.2. REPLICA MONITOR does
    /// not count: it only allows SHOW REPLICA STATUS (see `has_replica_monitor`).
    pub fn has_replication_client(&self) -> bool {
        let super_counts = match self.flavor {
            Flavor::MySql => true,
            Flavor::MariaDb => self.version < (10, 5, 2),
        };
        self.has_global("REPLICATION CLIENT")
            || self.has_global("BINLOG MONITOR")
            || (super_counts && self.has_global("SUPER"))
    }

    /// MariaDB >= 10.5.9 REPLICA MONITOR (or ALL): SHOW REPLICA STATUS. Not needed here.
    pub fn has_replica_monitor(&self) -> bool {
        self.has_global("REPLICA MONITOR")
    }

    /// True when the account may `SELECT` every column of `database.table`: SELECT or ALL on
    /// `*.*` (unless a partial REVOKE removes it for the database), on a database pattern that
    /// matches, or on the table itself. Column-level grants do not count (a full copy reads
    /// every column).
    pub fn can_select(&self, database: &str, table: &str) -> bool {
        let gives_select = |privs: &[Privilege]| {
            privs
                .iter()
                .any(|p| p.columns.is_none() && (p.is_all() || p.name == "SELECT"))
        };
        let revoked_for_db = self.grants().any(|(privs, obj, revoke)| {
            revoke
                && gives_select(privs)
                && matches!(obj, GrantObject::Database(d) if d == database)
        });
        self.grants().any(|(privs, obj, revoke)| {
            !revoke
                && gives_select(privs)
                && match obj {
                    GrantObject::Global => !revoked_for_db,
                    GrantObject::Database(pattern) => like_match(pattern, database),
                    GrantObject::Table {
                        database: d,
                        table: t,
                    } => d == database && t == table,
                    _ => false,
                }
        })
    }
}

fn parse_role_list(s: &str) -> Vec<Account> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("NONE") {
        return Vec::new();
    }
    match tokenize(s) {
        Ok(toks) => split_top(&toks)
            .into_iter()
            .filter_map(|p| parse_account(p).map(|(a, _)| a))
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn show_grants(conn: &mut Conn, sql: &str) -> Result<Vec<String>, SourceError> {
    let rows = query_text(conn, sql, "reading the account's grants").await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.into_iter().next().and_then(|(_, v)| v))
        .collect())
}

/// Reads the grants of the connected account (see [`Grants`] for how roles are handled).
pub async fn grants(conn: &mut Conn) -> Result<Grants, SourceError> {
    const CTX: &str = "reading the account's grants";
    let rows = query_text(conn, "SELECT VERSION(), CURRENT_USER()", CTX).await?;
    let row = rows
        .first()
        .ok_or_else(|| SourceError::unexpected(CTX, "SELECT VERSION() returned no row"))?;
    let version_string = row.first().and_then(|(_, v)| v.clone()).unwrap_or_default();
    let current_user = row.get(1).and_then(|(_, v)| v.clone()).unwrap_or_default();
    let (flavor, version) = parse_version(&version_string, "").ok_or_else(|| {
        SourceError::unexpected(CTX, format!("cannot parse the version {version_string:?}"))
    })?;
    // CURRENT_ROLE() exists on MySQL 8 and MariaDB >= 10.0.5; elsewhere there are no roles.
    let active_roles = match query_text(conn, "SELECT CURRENT_ROLE()", CTX).await {
        Ok(rows) => rows
            .first()
            .and_then(|r| r.first())
            .and_then(|(_, v)| v.as_deref())
            .map(parse_role_list)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let lines = show_grants(conn, "SHOW GRANTS").await?;
    let mut g = Grants::from_lines(&current_user, flavor, version, &lines, active_roles);
    if g.active_roles.is_empty() {
        return Ok(g);
    }
    match flavor {
        Flavor::MySql => {
            let using = g
                .active_roles
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            match show_grants(
                conn,
                &format!("SHOW GRANTS FOR CURRENT_USER() USING {using}"),
            )
            .await
            {
                Ok(more) => g.add_lines(&more),
                Err(e) => {
                    tracing::warn!(error = %e, "SHOW GRANTS ... USING failed; role privileges not included")
                }
            }
        }
        Flavor::MariaDb => {
            for role in g.active_roles.clone() {
                let listed = g.statements.iter().any(|s| {
                    matches!(s, GrantStatement::Privileges { grantee, .. } if grantee.name == role.name && grantee.host.is_none())
                });
                if !listed {
                    match show_grants(conn, &format!("SHOW GRANTS FOR {role}")).await {
                        Ok(more) => g.add_lines(&more),
                        Err(e) => tracing::warn!(error = %e, "SHOW GRANTS FOR role failed"),
                    }
                }
            }
        }
    }
    Ok(g)
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

    fn info(flavor: Flavor, version: Version) -> ServerInfo {
        ServerInfo {
            flavor,
            version,
            version_string: String::new(),
            version_comment: String::new(),
            is_rds: false,
            is_aurora: false,
        }
    }

    fn row(pairs: &[(&str, Option<&str>)]) -> TextRow {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    /// Recorded from MySQL 8.0.36 (`SHOW GLOBAL VARIABLES WHERE Variable_name IN (...)`).
    fn mysql8_vars() -> HashMap<String, String> {
        vars(&[
            ("binlog_checksum", "CRC32"),
            ("binlog_encryption", "OFF"),
            ("binlog_expire_logs_auto_purge", "ON"),
            ("binlog_expire_logs_seconds", "2592000"),
            ("binlog_format", "ROW"),
            ("binlog_row_image", "FULL"),
            ("binlog_row_metadata", "MINIMAL"),
            ("binlog_row_value_options", ""),
            ("binlog_transaction_compression", "OFF"),
            ("expire_logs_days", "0"),
            ("gtid_mode", "OFF"),
            ("log_bin", "ON"),
            ("log_replica_updates", "ON"),
            ("log_slave_updates", "ON"),
            ("server_id", "1"),
        ])
    }

    #[test]
    fn mysql8_settings() {
        let s = BinlogSettings::from_variables(
            &mysql8_vars(),
            &info(Flavor::MySql, (8, 0, 36)),
            &RdsRetention::NotAsked,
        );
        assert!(s.log_bin && s.is_row_based_full());
        assert_eq!(s.binlog_row_metadata.as_deref(), Some("MINIMAL"));
        assert_eq!(s.retention, Some(Duration::from_secs(2_592_000)));
        assert_eq!(s.retention_source, RetentionSource::BinlogExpireLogsSeconds);
        assert_eq!(s.log_replica_updates, Some(true));
        assert_eq!(s.gtid_mode.as_deref(), Some("OFF"));
        assert_eq!(s.gtid_strict_mode, None);
        assert_eq!(s.server_id, 1);
        assert_eq!(s.binlog_transaction_compression, Some(false));
        assert_eq!(s.binlog_encryption, Some(false));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn retention_precedence() {
        // seconds win over days when both are set (MySQL 8 ignores the days then)
        let mut v = mysql8_vars();
        v.insert("binlog_expire_logs_seconds".into(), "604800".into());
        v.insert("expire_logs_days".into(), "3".into());
        assert_eq!(
            variable_retention(&v),
            (
                Some(Duration::from_secs(604_800)),
                RetentionSource::BinlogExpireLogsSeconds
            )
        );
        // seconds 0 → days apply
        v.insert("binlog_expire_logs_seconds".into(), "0".into());
        assert_eq!(
            variable_retention(&v),
            (
                Some(Duration::from_secs(3 * 86_400)),
                RetentionSource::ExpireLogsDays
            )
        );
        // both 0 → never purged
        v.insert("expire_logs_days".into(), "0".into());
        assert_eq!(
            variable_retention(&v),
            (None, RetentionSource::NoAutomaticPurge)
        );
        // auto purge off wins over everything (MySQL >= 8.0.29)
        v.insert("binlog_expire_logs_seconds".into(), "3600".into());
        v.insert("binlog_expire_logs_auto_purge".into(), "OFF".into());
        assert_eq!(
            variable_retention(&v),
            (None, RetentionSource::AutoPurgeDisabled)
        );
        // MySQL 5.7: only expire_logs_days
        let v57 = vars(&[("expire_logs_days", "7"), ("log_bin", "ON")]);
        assert_eq!(
            variable_retention(&v57),
            (
                Some(Duration::from_secs(7 * 86_400)),
                RetentionSource::ExpireLogsDays
            )
        );
        // MariaDB 10.6+: days with decimals
        let vm = vars(&[
            ("binlog_expire_logs_seconds", "0"),
            ("expire_logs_days", "0.500000"),
        ]);
        assert_eq!(
            variable_retention(&vm),
            (
                Some(Duration::from_secs(43_200)),
                RetentionSource::ExpireLogsDays
            )
        );
    }

    #[test]
    fn old_servers_have_no_row_metadata_and_slave_spelling() {
        let v = vars(&[
            ("log_bin", "ON"),
            ("binlog_format", "MIXED"),
            ("binlog_row_image", "FULL"),
            ("expire_logs_days", "10"),
            ("log_slave_updates", "OFF"),
            ("gtid_mode", "ON"),
            ("server_id", "42"),
        ]);
        let s = BinlogSettings::from_variables(
            &v,
            &info(Flavor::MySql, (5, 7, 44)),
            &RdsRetention::NotAsked,
        );
        assert_eq!(s.binlog_row_metadata, None);
        assert_eq!(s.log_replica_updates, Some(false));
        assert_eq!(s.binlog_format.as_deref(), Some("MIXED"));
        assert!(!s.is_row_based_full());
        assert_eq!(s.server_id, 42);
    }

    #[test]
    fn rds_retention_from_show_configuration() {
        // Recorded from AWS RDS for MySQL 8.0: CALL mysql.rds_show_configuration
        let rows = vec![
            row(&[
                ("name", Some("binlog retention hours")),
                ("value", Some("168")),
                ("description", Some("binlog retention hours specifies the duration in hours before binary logs are automatically deleted.")),
            ]),
            row(&[
                ("name", Some("source delay")),
                ("value", Some("0")),
                ("description", Some("source delay specifies how many seconds the replica should delay replication from source.")),
            ]),
            row(&[
                ("name", Some("target delay")),
                ("value", Some("0")),
                ("description", Some("target delay specifies ...")),
            ]),
        ];
        let rds = parse_rds_configuration(&rows);
        assert_eq!(rds, RdsRetention::Hours(Some(168)));
        let mut i = info(Flavor::MySql, (8, 0, 35));
        i.is_rds = true;
        let s = BinlogSettings::from_variables(&mysql8_vars(), &i, &rds);
        assert_eq!(s.retention, Some(Duration::from_secs(168 * 3600)));
        assert_eq!(s.retention_source, RetentionSource::RdsConfiguration);

        // NULL (the RDS default): purged as soon as possible
        let null_rows = vec![row(&[
            ("name", Some("binlog retention hours")),
            ("value", None),
            ("description", Some("...")),
        ])];
        let rds = parse_rds_configuration(&null_rows);
        assert_eq!(rds, RdsRetention::Hours(None));
        let s = BinlogSettings::from_variables(&mysql8_vars(), &i, &rds);
        assert_eq!(s.retention, Some(Duration::ZERO));
        assert!(s.warnings[0].contains("rds_set_configuration"));

        // the call failed: variables used, with a warning
        let s = BinlogSettings::from_variables(
            &mysql8_vars(),
            &i,
            &RdsRetention::Failed("ERROR 1370".into()),
        );
        assert_eq!(s.retention_source, RetentionSource::BinlogExpireLogsSeconds);
        assert_eq!(s.warnings.len(), 1);
        assert_eq!(
            parse_rds_configuration(&[]),
            RdsRetention::Failed("no 'binlog retention hours' row in the answer".into())
        );
    }

    #[test]
    fn show_binary_log_status_shapes() {
        // MySQL 8.4 SHOW BINARY LOG STATUS with GTIDs (multi-line set as the server prints it)
        let rows = vec![row(&[
            ("File", Some("binlog.000007")),
            ("Position", Some("1574")),
            ("Binlog_Do_DB", Some("")),
            ("Binlog_Ignore_DB", Some("")),
            (
                "Executed_Gtid_Set",
                Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23,\n4b1e2e4e-71ca-11e1-9e33-c80aa9429562:1-5"),
            ),
        ])];
        let p = parse_binlog_status(&rows).unwrap();
        assert_eq!(p.file, "binlog.000007");
        assert_eq!(p.pos, 1574);
        assert_eq!(
            p.gtid_set.as_deref(),
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-23,4b1e2e4e-71ca-11e1-9e33-c80aa9429562:1-5")
        );
        // MySQL 8.0 with gtid_mode=OFF: empty set
        let rows = vec![row(&[
            ("File", Some("mysql-bin-changelog.000123")),
            ("Position", Some("157")),
            ("Binlog_Do_DB", Some("")),
            ("Binlog_Ignore_DB", Some("")),
            ("Executed_Gtid_Set", Some("")),
        ])];
        let p = parse_binlog_status(&rows).unwrap();
        assert_eq!(p.gtid_set, None);
        assert_eq!(p.to_string(), "mysql-bin-changelog.000123:157");
        // MariaDB: no GTID column
        let rows = vec![row(&[
            ("File", Some("binlog.000001")),
            ("Position", Some("329")),
            ("Binlog_Do_DB", Some("")),
            ("Binlog_Ignore_DB", Some("")),
        ])];
        assert_eq!(parse_binlog_status(&rows).unwrap().gtid_set, None);
        // binlog off: no row
        assert!(matches!(
            parse_binlog_status(&[]),
            Err(SourceError::BinlogDisabled { .. })
        ));
        assert!(matches!(
            parse_binlog_status(&[row(&[("File", Some("x")), ("Position", Some("abc"))])]),
            Err(SourceError::Unexpected { .. })
        ));
    }

    #[test]
    fn status_statement_by_version() {
        assert_eq!(
            binlog_status_statement(&info(Flavor::MySql, (8, 4, 0))),
            "SHOW BINARY LOG STATUS"
        );
        assert_eq!(
            binlog_status_statement(&info(Flavor::MySql, (8, 0, 36))),
            "SHOW MASTER STATUS"
        );
        assert_eq!(
            binlog_status_statement(&info(Flavor::MariaDb, (11, 4, 2))),
            "SHOW MASTER STATUS"
        );
    }

    fn acct(name: &str, host: &str) -> Account {
        Account {
            name: name.into(),
            host: Some(host.into()),
        }
    }

    #[test]
    fn parse_mysql8_grant_lines() {
        let st = parse_grant_line(
            "GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `dts`@`%`",
        )
        .unwrap();
        match st {
            GrantStatement::Privileges {
                revoke,
                privileges,
                object,
                grantee,
                with_grant_option,
            } => {
                assert!(!revoke && !with_grant_option);
                let names: Vec<_> = privileges.iter().map(|p| p.name.as_str()).collect();
                assert_eq!(
                    names,
                    [
                        "SELECT",
                        "RELOAD",
                        "REPLICATION SLAVE",
                        "REPLICATION CLIENT"
                    ]
                );
                assert_eq!(object, GrantObject::Global);
                assert_eq!(grantee, acct("dts", "%"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_grant_line("GRANT `app_read`@`%`,`repl_role`@`%` TO `dts`@`%`").unwrap(),
            GrantStatement::Roles {
                roles: vec![acct("app_read", "%"), acct("repl_role", "%")],
                grantee: acct("dts", "%"),
            }
        );
        match parse_grant_line(
            "GRANT APPLICATION_PASSWORD_ADMIN,AUDIT_ABORT_EXEMPT,BACKUP_ADMIN ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        )
        .unwrap()
        {
            GrantStatement::Privileges {
                privileges,
                with_grant_option,
                ..
            } => {
                assert!(with_grant_option);
                assert_eq!(privileges.len(), 3);
                assert_eq!(privileges[2].name, "BACKUP_ADMIN");
            }
            other => panic!("{other:?}"),
        }
        match parse_grant_line(
            "GRANT SELECT (`id`, `to`), INSERT ON `shop`.`orders` TO `app`@`10.0.%`",
        )
        .unwrap()
        {
            GrantStatement::Privileges {
                privileges,
                object,
                grantee,
                ..
            } => {
                assert_eq!(
                    privileges[0],
                    Privilege {
                        name: "SELECT".into(),
                        columns: Some(vec!["id".into(), "to".into()])
                    }
                );
                assert_eq!(privileges[1].columns, None);
                assert_eq!(
                    object,
                    GrantObject::Table {
                        database: "shop".into(),
                        table: "orders".into()
                    }
                );
                assert_eq!(grantee, acct("app", "10.0.%"));
            }
            other => panic!("{other:?}"),
        }
        match parse_grant_line("REVOKE SELECT ON `mysql`.* FROM `dts`@`%`").unwrap() {
            GrantStatement::Privileges { revoke, object, .. } => {
                assert!(revoke);
                assert_eq!(object, GrantObject::Database("mysql".into()));
            }
            other => panic!("{other:?}"),
        }
        match parse_grant_line("GRANT PROXY ON ``@`` TO `root`@`localhost` WITH GRANT OPTION")
            .unwrap()
        {
            GrantStatement::Privileges { object, .. } => {
                assert_eq!(object, GrantObject::Proxy(acct("", "")))
            }
            other => panic!("{other:?}"),
        }
        match parse_grant_line("GRANT EXECUTE ON PROCEDURE `shop`.`refresh` TO `app`@`%`").unwrap()
        {
            GrantStatement::Privileges { object, .. } => assert_eq!(
                object,
                GrantObject::Routine {
                    kind: "PROCEDURE".into(),
                    database: "shop".into(),
                    name: "refresh".into()
                }
            ),
            other => panic!("{other:?}"),
        }
        // MySQL 5.7 quoting
        match parse_grant_line("GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%'")
            .unwrap()
        {
            GrantStatement::Privileges { grantee, .. } => assert_eq!(grantee, acct("repl", "%")),
            other => panic!("{other:?}"),
        }
        assert!(parse_grant_line("SELECT 1").is_err());
        assert!(parse_grant_line("GRANT SELECT ON `unterminated TO x").is_err());
    }

    #[test]
    fn parse_mariadb_grant_lines() {
        let line = "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `tsmigrate`@`%` IDENTIFIED BY PASSWORD '*E3FB1D4B4B0F8C0B3C4B1A58E4C4D9D6A0B0A3C1'";
        match parse_grant_line(line).unwrap() {
            GrantStatement::Privileges { privileges, .. } => {
                assert_eq!(privileges[2].name, "BINLOG MONITOR")
            }
            other => panic!("{other:?}"),
        }
        let red = redact_grant_line(line);
        assert!(!red.contains("*E3FB"), "{red}");
        assert_eq!(
            parse_grant_line("GRANT `r_repl` TO `u`@`%`").unwrap(),
            GrantStatement::Roles {
                roles: vec![Account {
                    name: "r_repl".into(),
                    host: None
                }],
                grantee: acct("u", "%"),
            }
        );
        assert_eq!(
            parse_grant_line("SET DEFAULT ROLE `r_repl` FOR `u`@`%`").unwrap(),
            GrantStatement::DefaultRole {
                role: Account {
                    name: "r_repl".into(),
                    host: None
                },
                grantee: acct("u", "%"),
            }
        );
        match parse_grant_line("GRANT USAGE ON *.* TO `r_repl`").unwrap() {
            GrantStatement::Privileges { grantee, .. } => assert_eq!(grantee.host, None),
            other => panic!("{other:?}"),
        }
    }

    fn grants_of(flavor: Flavor, version: Version, lines: &[&str]) -> Grants {
        let lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        Grants::from_lines("dts@%", flavor, version, &lines, Vec::new())
    }

    #[test]
    fn replication_privileges() {
        let g = grants_of(
            Flavor::MySql,
            (8, 0, 36),
            &["GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `dts`@`%`"],
        );
        assert!(g.has_replication_slave() && g.has_replication_client());
        assert!(g.can_select("shop", "orders"));

        let g = grants_of(
            Flavor::MySql,
            (8, 0, 36),
            &["GRANT ALL PRIVILEGES ON *.* TO `root`@`%` WITH GRANT OPTION"],
        );
        assert!(g.has_replication_slave() && g.has_replication_client());
        assert!(g.can_select("any", "thing"));

        let g = grants_of(
            Flavor::MySql,
            (8, 0, 36),
            &[
                "GRANT USAGE ON *.* TO `app`@`%`",
                "GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%`",
            ],
        );
        assert!(!g.has_replication_slave() && !g.has_replication_client());
        assert!(g.can_select("shop", "orders"));
        assert!(!g.can_select("other", "orders"));

        // MariaDB >= 10.5 prints BINLOG MONITOR for REPLICATION CLIENT
        let g = grants_of(
            Flavor::MariaDb,
            (10, 11, 19),
            &["GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `tsmigrate`@`%`"],
        );
        assert!(g.has_replication_slave() && g.has_replication_client());
        assert!(!g.has_replica_monitor());

        // SUPER: counts on MySQL, not on MariaDB >= 10.5.2
        let sup = ["GRANT SUPER ON *.* TO `x`@`%`"];
        assert!(grants_of(Flavor::MySql, (5, 7, 44), &sup).has_replication_client());
        assert!(!grants_of(Flavor::MariaDb, (10, 11, 0), &sup).has_replication_client());
        assert!(grants_of(Flavor::MariaDb, (10, 4, 0), &sup).has_replication_client());
        // REPLICA MONITOR alone is not enough for SHOW MASTER STATUS
        let g = grants_of(
            Flavor::MariaDb,
            (10, 11, 0),
            &["GRANT REPLICA MONITOR ON *.* TO `x`@`%`"],
        );
        assert!(g.has_replica_monitor() && !g.has_replication_client());
        // MariaDB alias REPLICATION REPLICA
        let g = grants_of(
            Flavor::MariaDb,
            (10, 11, 0),
            &["GRANT REPLICATION REPLICA ON *.* TO `x`@`%`"],
        );
        assert!(g.has_replication_slave());
        // replication privileges on a database do not count
        let g = grants_of(
            Flavor::MySql,
            (8, 0, 0),
            &["GRANT SELECT ON `shop`.* TO `x`@`%`"],
        );
        assert!(!g.has_replication_slave());
    }

    #[test]
    fn mysql8_roles_grants() {
        // SHOW GRANTS, then SHOW GRANTS FOR CURRENT_USER() USING `repl_role`@`%` (MySQL 8.0)
        let lines: Vec<String> = [
            "GRANT USAGE ON *.* TO `dts`@`%`",
            "GRANT `app_read`@`%`,`repl_role`@`%` TO `dts`@`%`",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut g = Grants::from_lines(
            "dts@%",
            Flavor::MySql,
            (8, 0, 36),
            &lines,
            parse_role_list("`repl_role`@`%`"),
        );
        assert!(!g.has_replication_slave());
        assert_eq!(g.granted_roles.len(), 2);
        assert_eq!(g.inactive_roles(), vec![&acct("app_read", "%")]);
        g.add_lines(&[
            "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `dts`@`%`".to_string(),
            "GRANT `app_read`@`%`,`repl_role`@`%` TO `dts`@`%`".to_string(),
        ]);
        assert!(g.has_replication_slave() && g.has_replication_client());
        assert_eq!(parse_role_list("NONE"), Vec::<Account>::new());
        assert_eq!(
            parse_role_list("`a`@`%`,`b`@`localhost`"),
            vec![acct("a", "%"), acct("b", "localhost")]
        );
        assert_eq!(acct("r`x", "%").to_string(), "`r``x`@`%`");
    }

    #[test]
    fn database_patterns_and_partial_revokes() {
        let g = grants_of(
            Flavor::MySql,
            (8, 0, 36),
            &[
                "GRANT SELECT ON `shop\\_db`.* TO `a`@`%`",
                "GRANT SELECT ON `log%`.* TO `a`@`%`",
            ],
        );
        assert!(g.can_select("shop_db", "t"));
        assert!(!g.can_select("shopXdb", "t"));
        assert!(g.can_select("logs_2024", "t"));
        let g = grants_of(
            Flavor::MySql,
            (8, 0, 36),
            &[
                "GRANT SELECT ON *.* TO `a`@`%`",
                "REVOKE SELECT ON `secret`.* FROM `a`@`%`",
            ],
        );
        assert!(g.can_select("shop", "t"));
        assert!(!g.can_select("secret", "t"));
        // column-level only does not allow a full copy
        let g = grants_of(
            Flavor::MySql,
            (8, 0, 36),
            &[
                "GRANT SELECT (`id`) ON `shop`.`orders` TO `a`@`%`",
                "GRANT SELECT ON `shop`.`items` TO `a`@`%`",
            ],
        );
        assert!(!g.can_select("shop", "orders"));
        assert!(g.can_select("shop", "items"));
        assert!(like_match("a\\%b", "a%b") && !like_match("a\\%b", "axb"));
    }

    #[test]
    fn unparsed_lines_are_kept_redacted() {
        let g = grants_of(
            Flavor::MariaDb,
            (10, 11, 0),
            &["GRANT WEIRD THING TO IDENTIFIED BY PASSWORD '*SECRET'"],
        );
        assert_eq!(g.unparsed.len(), 1);
        assert!(!g.unparsed[0].contains("SECRET"));
    }
}
