//! Probes of the server's setup, for the precheck and for `begin`: binlog settings and
//! retention, the current binlog position, and the grants of the migration account.
//!
//! Each probe is a thin async fn around a pure parser of the server's answer, so the branches
//! a local MariaDB cannot show (MySQL 8.x spellings, RDS, roles) are unit-tested from recorded
//! answers.
//!
//! - `binlog`: binlog settings and retention ([`binlog_settings`]), the current position
//!   ([`binlog_position`]) and the binary log list ([`binary_logs`]).
//! - `grants`: `SHOW GRANTS` parsing ([`parse_grant_line`]) and the account's privileges
//!   ([`grants()`]).
//!
//! Every public item is re-exported here, so paths stay `mysql::probes::X`.

mod binlog;
mod grants;
#[cfg(test)]
mod tests;

pub use binlog::{
    binary_logs, binlog_position, binlog_settings, binlog_status_statement, parse_binlog_status,
    parse_rds_configuration, BinlogFile, BinlogPosition, BinlogSettings, RdsRetention,
    RetentionSource,
};
pub use grants::{
    grants, parse_grant_line, redact_grant_line, Account, GrantObject, GrantStatement, Grants,
    Privilege,
};
