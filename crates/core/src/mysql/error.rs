//! Errors of the MySQL source side, classified for retry the way Materialize does it.
//!
//! Two kinds (see [`SourceError::is_transient`]):
//! - **transient**: the network, a connection that broke, a server that is restarting or full
//!   (too many connections), a lock wait or deadlock. Retrying later may succeed; the
//!   orchestrator maps [`SourceError::is_connection_failure`] to `Migration.ConnectionFailed`
//!   (retry window `retry.connection_minutes`) and the other transient errors to
//!   `Migration.Transient` (window `retry.other_minutes`).
//! - **definite**: wrong credentials, a missing grant, an unknown database or table, a TLS
//!   misconfiguration, binary logging switched off, a result the code does not understand.
//!   Retrying cannot help; every message says what to change.
//!
//! Messages never contain a password or row data: server messages are kept (they name users
//! and objects, never secrets), driver errors are reduced to their kind.

use std::time::Duration;

use crate::error::{Class, ErrorName};

/// An error of the MySQL source side. Every variant's message ends with the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The TCP connection or the handshake could not be made.
    #[error(
        "cannot connect to MySQL at {addr}: {detail}. Fix: check source.host and source.port, that \
         the server is running, and that this network may reach it (security group, firewall, VPC \
         routing); the connection is retried"
    )]
    Connect { addr: String, detail: String },

    /// The handshake did not finish within `connect_timeout`.
    #[error(
        "timed out after {}s connecting to MySQL at {addr}. Fix: check that the server is reachable \
         from this network (a silently dropped SYN usually means a security group or firewall); \
         the connection is retried",
        timeout.as_secs_f64()
    )]
    ConnectTimeout { addr: String, timeout: Duration },

    /// An established connection broke (server gone, killed, network error, shutdown).
    #[error(
        "lost the connection to MySQL while {context}: {detail}. Fix: none needed if the server \
         was restarted or failed over; the step is retried"
    )]
    ConnectionLost { context: String, detail: String },

    /// Credentials refused, or a privilege is missing.
    #[error("MySQL refused access while {context}: ERROR {code}: {message}. Fix: {fix}")]
    AccessDenied {
        context: String,
        code: u16,
        message: String,
        fix: String,
    },

    /// The configured database does not exist.
    #[error(
        "MySQL database `{database}` does not exist (ERROR 1049). Fix: correct source.database or \
         create the database"
    )]
    UnknownDatabase { database: String },

    /// A table that should exist does not (or is not a base table).
    #[error(
        "table `{schema}`.`{table}` does not exist on the source or is not a base table. Fix: \
         correct objects.tables, or create the table"
    )]
    TableNotFound { schema: String, table: String },

    /// TLS could not be set up as configured.
    #[error("TLS to MySQL at {addr} failed: {detail}. Fix: {fix}")]
    Tls {
        addr: String,
        detail: String,
        fix: String,
    },

    /// The authentication exchange failed for a reason other than a wrong password.
    #[error("cannot authenticate to MySQL at {addr}: {detail}. Fix: {fix}")]
    Auth {
        addr: String,
        detail: String,
        fix: String,
    },

    /// The options are unusable (empty host, port 0, ...).
    #[error("invalid MySQL connection options: {problem}. Fix: {fix}")]
    InvalidOptions { problem: String, fix: String },

    /// Binary logging is off, so there is no binlog position.
    #[error(
        "binary logging is off on the MySQL source ({detail}). Fix: start the server with \
         log_bin enabled (self-managed: --log-bin --binlog-format=ROW --binlog-row-image=FULL; \
         AWS RDS: enable automated backups), or leave out the incremental migration type"
    )]
    BinlogDisabled { detail: String },

    /// The binlog holds something the reader cannot follow (statement events, compressed or
    /// partial events, a transaction over the size cap).
    #[error("the binlog at {position} holds {reason}")]
    BinlogUnsupported { position: String, reason: String },

    /// A binlog event does not decode.
    #[error(
        "the binlog event after {position} does not decode: {detail}. Fix: if the source is \
         healthy this is a bug: report it with the server's version; the migration resumes from \
         its last checkpoint"
    )]
    BinlogCorrupt { position: String, detail: String },

    /// The checkpoint's binlog position is no longer on the source (purged, or never there).
    #[error(
        "the binlog position {position} is not on the source any more ({detail}): a full \
         re-sync is needed. Fix: run the migration again with full data migration, and keep \
         binlogs longer than the longest pause between catch-ups (binlog_expire_logs_seconds \
         or expire_logs_days; on RDS, 'binlog retention hours')"
    )]
    BinlogPurged { position: String, detail: String },

    /// Another replica (or another reader of this migration) uses the same server_id.
    #[error(
        "another replica is connected to the source with server_id {server_id} ({detail}). \
         Fix: set source.server_id to a value no other replica or migration uses"
    )]
    ServerIdClash { server_id: u32, detail: String },

    /// Any other error answered by the server.
    #[error("MySQL error {code} ({state}) while {context}: {message}{}", server_hint(*code))]
    Server {
        context: String,
        code: u16,
        state: String,
        message: String,
    },

    /// The server answered something this code does not understand.
    #[error(
        "unexpected answer from MySQL while {context}: {detail}. Fix: this is a bug or an \
         unsupported server version; report it with the server's version string"
    )]
    Unexpected { context: String, detail: String },
}

/// Server error codes that mean the connection is gone or cannot be had right now.
/// The replica protocol's "could not read the binlog" (purged file, unknown position).
const ER_MASTER_FATAL_ERROR_READING_BINLOG: u16 = 1236;

const CONNECTION_CODES: &[u16] = &[
    1040, // ER_CON_COUNT_ERROR: too many connections
    1043, // ER_HANDSHAKE_ERROR: bad handshake
    1053, // ER_SERVER_SHUTDOWN: server shutdown in progress
    1077, // ER_NORMAL_SHUTDOWN
    1078, // ER_GOT_SIGNAL
    1079, // ER_SHUTDOWN_COMPLETE
    1080, // ER_FORCING_CLOSE
    1152, // ER_ABORTING_CONNECTION
    1158, // ER_NET_READ_ERROR
    1159, // ER_NET_READ_INTERRUPTED
    1160, // ER_NET_ERROR_ON_WRITE
    1161, // ER_NET_WRITE_INTERRUPTED
    1184, // ER_NEW_ABORTING_CONNECTION
    1203, // ER_TOO_MANY_USER_CONNECTIONS
    1927, // ER_CONNECTION_KILLED (MariaDB)
    4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+: disconnected for inactivity)
];

/// Server error codes that are worth retrying on the same or a new connection.
const TRANSIENT_CODES: &[u16] = &[
    1037, // ER_OUTOFMEMORY
    1041, // ER_OUT_OF_RESOURCES
    1205, // ER_LOCK_WAIT_TIMEOUT
    1213, // ER_LOCK_DEADLOCK
    1317, // ER_QUERY_INTERRUPTED
    1615, // ER_NEED_REPREPARE
    1637, // ER_TOO_MANY_CONCURRENT_TRXS
    1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
    3572, // ER_LOCK_NOWAIT
];

/// Server error codes that mean "not allowed".
const ACCESS_CODES: &[u16] = &[
    1044, // ER_DBACCESS_DENIED_ERROR
    1045, // ER_ACCESS_DENIED_ERROR
    1130, // ER_HOST_NOT_PRIVILEGED
    1142, // ER_TABLEACCESS_DENIED_ERROR
    1143, // ER_COLUMNACCESS_DENIED_ERROR
    1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR
    1370, // ER_PROCACCESS_DENIED_ERROR
    1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    1820, // ER_MUST_CHANGE_PASSWORD
    1862, // ER_MUST_CHANGE_PASSWORD_LOGIN
    3118, // ER_ACCOUNT_HAS_BEEN_LOCKED
    4151, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
];

fn server_hint(code: u16) -> &'static str {
    match code {
        1129 => {
            ". Fix: the server blocked this host after too many failed connects; run \
             `FLUSH HOSTS` (or mysqladmin flush-hosts) and raise max_connect_errors"
        }
        1146 => ". Fix: the table is gone; check objects.tables and that nobody dropped it",
        1064 => ". Fix: the server does not understand this statement (unsupported version?)",
        1236 => {
            ". Fix: the requested binlog position is purged or invalid; a full re-sync is \
             needed, and binlog retention must outlast the longest pause"
        }
        1290 | 1836 => ". Fix: the server runs in a mode that forbids this statement",
        c if CONNECTION_CODES.contains(&c) || TRANSIENT_CODES.contains(&c) => "; this is retried",
        _ => "",
    }
}

fn access_fix(code: u16) -> &'static str {
    match code {
        1045 | 1698 => {
            "check source.user and the password it resolves to, and that the user may connect \
             from this host (CREATE USER 'user'@'%')"
        }
        1130 => "create the user for this client's host, e.g. CREATE USER 'user'@'%'",
        1044 => "GRANT SELECT ON the database TO the user, or correct source.database",
        1820 | 1862 => "set a new password for the user (ALTER USER ... IDENTIFIED BY ...)",
        3118 | 4151 => "unlock the account (ALTER USER ... ACCOUNT UNLOCK)",
        _ => {
            "grant the user SELECT on the migrated tables and, for incremental migration, \
             REPLICATION SLAVE and REPLICATION CLIENT (MariaDB >= 10.5: BINLOG MONITOR) ON *.*"
        }
    }
}

impl SourceError {
    /// True when the source could not be reached or the connection broke: the orchestrator
    /// retries these as `Migration.ConnectionFailed` within `retry.connection_minutes`.
    pub fn is_connection_failure(&self) -> bool {
        match self {
            SourceError::Connect { .. }
            | SourceError::ConnectTimeout { .. }
            | SourceError::ConnectionLost { .. } => true,
            SourceError::Server { code, .. } => CONNECTION_CODES.contains(code),
            _ => false,
        }
    }

    /// True when retrying may succeed: connection failures plus lock waits, deadlocks,
    /// timeouts and resource shortages (`Migration.Transient`). Everything else is definite.
    pub fn is_transient(&self) -> bool {
        self.is_connection_failure()
            || matches!(self, SourceError::Server { code, .. } if TRANSIENT_CODES.contains(code))
    }

    /// What this failure means for the migration: connection failures and transient codes are
    /// retried; a purged or unreadable binlog position (1236) and a disabled binlog are
    /// `Migration.BinlogUnavailable`; a migrated table that vanished is
    /// `Migration.SchemaConflict`; a TLS failure is `Migration.ConfigInvalid`; everything else
    /// is definite.
    pub fn class(&self) -> Class {
        if self.is_connection_failure() {
            return Class::Connection;
        }
        if self.is_transient() {
            return Class::Transient;
        }
        if let SourceError::ServerIdClash { .. } = self {
            // A stale invocation still reading: the next attempt succeeds once it is gone.
            return Class::Transient;
        }
        Class::Definite(match self {
            SourceError::BinlogPurged { .. } => ErrorName::BinlogUnavailable,
            SourceError::Server {
                code: ER_MASTER_FATAL_ERROR_READING_BINLOG,
                ..
            }
            | SourceError::BinlogDisabled { .. } => ErrorName::BinlogUnavailable,
            SourceError::TableNotFound { .. } => ErrorName::SchemaConflict,
            // A certificate that does not verify, a missing CA file, a server without TLS:
            // the TLS settings do not match the server, retrying cannot help.
            SourceError::Tls { .. } => ErrorName::ConfigInvalid,
            _ => ErrorName::Fatal,
        })
    }

    /// The server's error code, when the server answered with one.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            SourceError::Server { code, .. } | SourceError::AccessDenied { code, .. } => {
                Some(*code)
            }
            SourceError::UnknownDatabase { .. } => Some(1049),
            _ => None,
        }
    }

    /// Classifies an error of an established connection; `context` says what we were doing
    /// ("reading binlog settings"), it goes into the message.
    pub fn from_mysql(context: &str, err: mysql_async::Error) -> SourceError {
        classify(context, None, err)
    }

    pub(crate) fn unexpected(context: &str, detail: impl Into<String>) -> SourceError {
        SourceError::Unexpected {
            context: context.to_string(),
            detail: detail.into(),
        }
    }
}

/// Classifies a driver error. `connecting` carries the address (and database) while the
/// connection is being made, so refusals during the handshake name them.
pub(crate) fn classify(
    context: &str,
    connecting: Option<(&str, Option<&str>)>,
    err: mysql_async::Error,
) -> SourceError {
    use mysql_async::{DriverError, Error, IoError};
    let addr = connecting.map(|(a, _)| a.to_string()).unwrap_or_default();
    let lost = |detail: String| match connecting {
        Some((a, _)) => SourceError::Connect {
            addr: a.to_string(),
            detail,
        },
        None => SourceError::ConnectionLost {
            context: context.to_string(),
            detail,
        },
    };
    // A failed TLS handshake arrives as I/O but is not the network. (On an established
    // connection a TLS error is a broken connection, classified below.)
    if let (Some(t), Some(_)) = (super::tls::rustls_error(&err), connecting) {
        return super::tls::handshake_failure(&addr, None, t);
    }
    match err {
        Error::Server(e) => classify_server(context, connecting, e.code, e.state, e.message),
        Error::Io(IoError::Io(e)) => lost(format!("{} ({:?})", e, e.kind())),
        Error::Io(IoError::Tls(e)) => SourceError::Tls {
            addr,
            detail: e.to_string(),
            fix: "check source.tls and source.tls_ca_file against the server's TLS setup; \
                  source.tls = required encrypts without verifying"
                .to_string(),
        },
        Error::Driver(DriverError::NoClientSslFlagFromServer) => SourceError::Tls {
            addr,
            detail: "the server does not offer TLS".to_string(),
            fix: "enable TLS on the server (ssl_cert/ssl_key), or set source.tls to preferred or \
                  disabled"
                .to_string(),
        },
        Error::Driver(
            d @ (DriverError::UnknownAuthPlugin { .. }
            | DriverError::MysqlOldPasswordDisabled
            | DriverError::CleartextPluginDisabled
            | DriverError::InvalidParsecSalt),
        ) => SourceError::Auth {
            addr,
            detail: d.to_string(),
            fix: "use an account with mysql_native_password or caching_sha2_password \
                  authentication"
                .to_string(),
        },
        Error::Driver(
            d @ (DriverError::ConnectionClosed
            | DriverError::PacketOutOfOrder
            | DriverError::UnexpectedPacket { .. }
            | DriverError::BadCompressedPacketHeader
            | DriverError::PoolDisconnected),
        ) => lost(driver_kind(&d)),
        Error::Driver(d @ (DriverError::FromValue { .. } | DriverError::FromRow { .. })) => {
            // Never print the value: it may be row data.
            SourceError::unexpected(context, driver_kind(&d))
        }
        Error::Driver(d) => SourceError::unexpected(context, driver_kind(&d)),
        Error::Url(e) => SourceError::InvalidOptions {
            problem: e.to_string(),
            fix: "correct the source connection settings".to_string(),
        },
        // mysql_async uses Other for failures of hooks and of the runtime: retry.
        Error::Other(e) => lost(e.to_string()),
    }
}

/// A driver error's kind without any value it may carry.
fn driver_kind(d: &mysql_async::DriverError) -> String {
    use mysql_async::DriverError;
    match d {
        DriverError::FromValue { .. } => "a value could not be converted".to_string(),
        DriverError::FromRow { .. } => "a row could not be converted".to_string(),
        DriverError::UnexpectedPacket { .. } => "unexpected packet from the server".to_string(),
        other => other.to_string(),
    }
}

pub(crate) fn classify_server(
    context: &str,
    connecting: Option<(&str, Option<&str>)>,
    code: u16,
    state: String,
    message: String,
) -> SourceError {
    if code == 1049 {
        let database = connecting
            .and_then(|(_, db)| db)
            .map(str::to_string)
            .unwrap_or_else(|| message.clone());
        return SourceError::UnknownDatabase { database };
    }
    if ACCESS_CODES.contains(&code) {
        return SourceError::AccessDenied {
            context: context.to_string(),
            code,
            message,
            fix: access_fix(code).to_string(),
        };
    }
    SourceError::Server {
        context: context.to_string(),
        code,
        state,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> SourceError {
        classify_server("testing", None, code, "HY000".into(), "msg".into())
    }

    #[test]
    fn lock_wait_and_deadlock_are_transient_not_connection() {
        for code in [1205, 1213] {
            let e = server(code);
            assert!(e.is_transient(), "{code}");
            assert!(!e.is_connection_failure(), "{code}");
            assert!(e.to_string().contains("retried"), "{e}");
        }
    }

    #[test]
    fn server_gone_codes_are_connection_failures() {
        for code in [1040, 1053, 1927, 4031] {
            let e = server(code);
            assert!(e.is_connection_failure(), "{code}");
            assert!(e.is_transient(), "{code}");
        }
    }

    #[test]
    fn access_denied_and_unknown_db_are_definite() {
        let e = classify_server(
            "connecting",
            Some(("h:3306", Some("shop"))),
            1045,
            "28000".into(),
            "Access denied for user 'u'@'10.0.0.1' (using password: YES)".into(),
        );
        assert!(matches!(e, SourceError::AccessDenied { code: 1045, .. }));
        assert!(!e.is_transient());
        assert!(e.to_string().contains("Fix: check source.user"));
        let e = classify_server(
            "connecting",
            Some(("h:3306", Some("shop"))),
            1049,
            "42000".into(),
            "Unknown database 'shop'".into(),
        );
        assert_eq!(
            e,
            SourceError::UnknownDatabase {
                database: "shop".into()
            }
        );
        assert!(!e.is_transient());
        assert_eq!(e.server_code(), Some(1049));
        let e = server(1227);
        assert!(matches!(e, SourceError::AccessDenied { .. }));
        assert!(e.to_string().contains("REPLICATION SLAVE"));
    }

    #[test]
    fn io_errors_classify_by_phase() {
        let io = || {
            mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "refused",
            )))
        };
        let e = classify("connecting", Some(("127.0.0.1:1", None)), io());
        assert!(matches!(e, SourceError::Connect { .. }));
        assert!(e.is_connection_failure());
        let e = SourceError::from_mysql("reading rows", io());
        assert!(matches!(e, SourceError::ConnectionLost { .. }));
        assert!(e.is_connection_failure() && e.is_transient());
        let e = SourceError::from_mysql(
            "reading rows",
            mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed),
        );
        assert!(e.is_connection_failure());
    }

    #[test]
    fn tls_unavailable_is_definite_with_fix() {
        let e = classify(
            "connecting",
            Some(("h:3306", None)),
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer),
        );
        assert!(matches!(e, SourceError::Tls { .. }));
        assert!(!e.is_transient());
        assert!(e.to_string().contains("source.tls"));
    }

    #[test]
    fn other_server_errors_are_definite() {
        let e = server(1146);
        assert!(!e.is_transient());
        assert!(e.to_string().contains("table is gone"));
    }

    #[test]
    fn classes_name_what_the_migration_does_next() {
        let purged = SourceError::Server {
            code: 1236,
            context: "reading the binlog".into(),
            state: "HY000".into(),
            message: "Could not find first log file name in binary log index file".into(),
        };
        assert_eq!(
            purged.class(),
            Class::Definite(ErrorName::BinlogUnavailable)
        );
        let gone = SourceError::TableNotFound {
            schema: "shop".into(),
            table: "orders".into(),
        };
        assert_eq!(gone.class(), Class::Definite(ErrorName::SchemaConflict));
        let lock = SourceError::Server {
            code: 1205,
            context: "reading the binlog".into(),
            state: "HY000".into(),
            message: "Lock wait timeout exceeded".into(),
        };
        assert_eq!(lock.class(), Class::Transient);
        let refused = SourceError::Connect {
            addr: "127.0.0.1:1".into(),
            detail: "refused".into(),
        };
        assert_eq!(refused.class(), Class::Connection);
    }
}
