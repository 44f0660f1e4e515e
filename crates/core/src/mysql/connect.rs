//! Opening connections to the source: options, TLS modes, the reading session setup, a pool.
//!
//! Every connection is TCP (never the server's Unix socket, even on loopback: a Lambda has
//! none, and tests should exercise what production uses). Sessions that read rows
//! ([`connect_for_reading`], [`ReadingPool`]) run `SET time_zone='+00:00'` so TIMESTAMP values
//! print in UTC, exactly as the binlog carries them (design §4).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts, Row, Value};

use super::error::{classify, SourceError};
use super::tls::{handshake_failure, rustls_error, TlsSettings};

pub use super::tls::TlsMode;

pub use mysql_async::Conn;

/// Statements run on every reading session (and again after a pooled connection is reset).
pub const READING_SESSION_SETUP: &[&str] = &["SET time_zone = '+00:00'"];

/// Where and how to connect. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Default database of the session, if any.
    pub database: Option<String>,
    pub tls: TlsMode,
    /// Extra trusted CA certificates (PEM file, may be a bundle such as the RDS global
    /// bundle), trusted by `VerifyCa`/`VerifyIdentity` in addition to the built-in roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Limit on TCP connect + handshake + session setup.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            host: "127.0.0.1".to_string(),
            port: 3306,
            user: String::new(),
            password: String::new(),
            database: None,
            tls: TlsMode::Preferred,
            tls_ca_file: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() {
                    "<empty>"
                } else {
                    "<redacted>"
                },
            )
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl ConnectOptions {
    /// Options with the defaults for everything but the address and the credentials.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        ConnectOptions {
            host: host.into(),
            port,
            user: user.into(),
            password: password.into(),
            ..ConnectOptions::default()
        }
    }

    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    pub fn with_tls(mut self, tls: TlsMode) -> Self {
        self.tls = tls;
        self
    }

    /// Trusts the CA certificates of a PEM file (with the verifying TLS modes).
    pub fn with_tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn validate(&self) -> Result<(), SourceError> {
        if self.host.trim().is_empty() {
            return Err(SourceError::InvalidOptions {
                problem: "source.host is empty".to_string(),
                fix: "set source.host to the server's host name or IP address".to_string(),
            });
        }
        if self.port == 0 {
            return Err(SourceError::InvalidOptions {
                problem: "source.port is 0".to_string(),
                fix: "set source.port (MySQL's default is 3306)".to_string(),
            });
        }
        if self.user.is_empty() {
            return Err(SourceError::InvalidOptions {
                problem: "source.user is empty".to_string(),
                fix: "set source.user to the migration account".to_string(),
            });
        }
        if self.connect_timeout.is_zero() {
            return Err(SourceError::InvalidOptions {
                problem: "the connect timeout is 0".to_string(),
                fix: "use a connect timeout of a few seconds".to_string(),
            });
        }
        Ok(())
    }

    fn timeout_error(&self) -> SourceError {
        SourceError::ConnectTimeout {
            addr: self.addr(),
            timeout: self.connect_timeout,
        }
    }

    fn builder(&self, tls: Option<&TlsSettings>, setup: &[&str]) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.clone()))
            .db_name(self.database.clone())
            .prefer_socket(false)
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(30)))
            .ssl_opts(tls.map(|t| t.ssl_opts(self.tls)))
            .setup(setup.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }
}

/// Opens a connection (TLS as configured, no session changes).
pub async fn connect(opts: &ConnectOptions) -> Result<Conn, SourceError> {
    connect_with_setup(opts, &[]).await.map(|(c, _)| c)
}

/// Opens a connection for reading rows: like [`connect`], then `SET time_zone='+00:00'`.
pub async fn connect_for_reading(opts: &ConnectOptions) -> Result<Conn, SourceError> {
    connect_with_setup(opts, READING_SESSION_SETUP)
        .await
        .map(|(c, _)| c)
}

/// Connects; returns the connection and the TLS settings it uses (`None`: plaintext).
async fn connect_with_setup(
    opts: &ConnectOptions,
    setup: &[&str],
) -> Result<(Conn, Option<TlsSettings>), SourceError> {
    opts.validate()?;
    tracing::debug!(
        host = %opts.host,
        port = opts.port,
        user = %opts.user,
        tls = %opts.tls,
        "connecting to MySQL"
    );
    let addr = opts.addr();
    let tls = match opts.tls {
        TlsMode::Disabled => None,
        mode => Some(TlsSettings::load(mode, opts.tls_ca_file.as_deref(), &addr).await?),
    };
    let fail = |f: ConnectFailure| match f {
        ConnectFailure::Timeout => opts.timeout_error(),
        ConnectFailure::Driver(e) => match rustls_error(&e) {
            // A certificate or handshake failure is not the network: never retried.
            Some(t) => handshake_failure(&addr, Some((opts.tls, &opts.host)), t),
            None => classify("connecting", Some((&addr, opts.database.as_deref())), e),
        },
    };
    match connect_once(opts, tls.as_ref(), setup).await {
        Ok(conn) => Ok((conn, tls)),
        Err(ConnectFailure::Driver(mysql_async::Error::Driver(
            mysql_async::DriverError::NoClientSslFlagFromServer,
        ))) if opts.tls == TlsMode::Preferred => {
            tracing::info!(
                addr = %addr,
                "server does not offer TLS; continuing unencrypted as tls = preferred allows"
            );
            match connect_once(opts, None, setup).await {
                Ok(conn) => Ok((conn, None)),
                Err(f) => Err(fail(f)),
            }
        }
        Err(f) => Err(fail(f)),
    }
}

enum ConnectFailure {
    Timeout,
    Driver(mysql_async::Error),
}

async fn connect_once(
    opts: &ConnectOptions,
    tls: Option<&TlsSettings>,
    setup: &[&str],
) -> Result<Conn, ConnectFailure> {
    let builder = opts.builder(tls, setup);
    match tokio::time::timeout(opts.connect_timeout, Conn::new(builder)).await {
        Err(_) => Err(ConnectFailure::Timeout),
        Ok(Err(e)) => Err(ConnectFailure::Driver(e)),
        Ok(Ok(conn)) => Ok(conn),
    }
}

/// Closes a connection politely (COM_QUIT), so the server does not log an aborted
/// connection. Errors are only logged: the connection is gone either way.
pub async fn close(conn: Conn) {
    if let Err(e) = conn.disconnect().await {
        tracing::debug!(error = %e, "closing a MySQL connection failed");
    }
}

/// A pool of reading sessions (`time_zone='+00:00'`), for steps that read several ranges at
/// once. With `tls = preferred` the first connection decides whether the pool uses TLS.
#[derive(Clone)]
pub struct ReadingPool {
    pool: Pool,
    addr: String,
    host: String,
    tls: TlsMode,
    timeout: Duration,
}

impl fmt::Debug for ReadingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadingPool")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ReadingPool {
    /// Opens one connection to check the options (and settle `preferred` TLS), then builds a
    /// pool of at most `max_connections` (at least 1).
    pub async fn connect(
        opts: &ConnectOptions,
        max_connections: usize,
    ) -> Result<ReadingPool, SourceError> {
        let (probe, tls) = connect_with_setup(opts, READING_SESSION_SETUP).await?;
        close(probe).await;
        let max = max_connections.max(1);
        let constraints =
            PoolConstraints::new(0, max).ok_or_else(|| SourceError::InvalidOptions {
                problem: format!("pool size {max} is invalid"),
                fix: "use a pool size of at least 1".to_string(),
            })?;
        let builder = opts
            .builder(tls.as_ref(), READING_SESSION_SETUP)
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        Ok(ReadingPool {
            pool: Pool::new(builder),
            addr: opts.addr(),
            host: opts.host.clone(),
            tls: opts.tls,
            timeout: opts.connect_timeout,
        })
    }

    /// A connection from the pool (a new one within the connect timeout if none is idle).
    pub async fn get(&self) -> Result<Conn, SourceError> {
        match tokio::time::timeout(self.timeout, self.pool.get_conn()).await {
            Err(_) => Err(SourceError::ConnectTimeout {
                addr: self.addr.clone(),
                timeout: self.timeout,
            }),
            Ok(Err(e)) => Err(match rustls_error(&e) {
                Some(t) => handshake_failure(&self.addr, Some((self.tls, &self.host)), t),
                None => classify("connecting", Some((&self.addr, None)), e),
            }),
            Ok(Ok(c)) => Ok(c),
        }
    }

    /// Closes every connection of the pool; call it before the function returns.
    pub async fn close(self) {
        if let Err(e) = self.pool.disconnect().await {
            tracing::debug!(error = %e, "closing the MySQL pool failed");
        }
    }
}

// ---- small helpers shared by the probes and the introspection ----

/// A result row as (column name, text value) pairs; NULL is `None`.
pub(crate) type TextRow = Vec<(String, Option<String>)>;

/// The text form of a value as MySQL's text protocol would print it (lossy for invalid
/// UTF-8, which never occurs in the metadata this is used for).
pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

pub(crate) fn row_text(row: &Row) -> TextRow {
    row.columns_ref()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                c.name_str().into_owned(),
                row.as_ref(i).and_then(value_text),
            )
        })
        .collect()
}

/// Runs a text query and returns its first result set as text rows.
pub(crate) async fn query_text(
    conn: &mut Conn,
    sql: &str,
    context: &str,
) -> Result<Vec<TextRow>, SourceError> {
    let rows: Vec<Row> = conn
        .query(sql)
        .await
        .map_err(|e| SourceError::from_mysql(context, e))?;
    Ok(rows.iter().map(row_text).collect())
}

/// Runs a prepared statement and returns the rows as text (column order kept).
pub(crate) async fn exec_text(
    conn: &mut Conn,
    sql: &str,
    params: Vec<Value>,
    context: &str,
) -> Result<Vec<TextRow>, SourceError> {
    let rows: Vec<Row> = conn
        .exec(sql, params)
        .await
        .map_err(|e| SourceError::from_mysql(context, e))?;
    Ok(rows.iter().map(row_text).collect())
}

/// The value of a named column (case-insensitive), NULL and missing both `None`.
pub(crate) fn col<'a>(row: &'a TextRow, name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_deref())
}

/// Quotes an identifier with backticks.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password() {
        let o = ConnectOptions::new("db.example", 3306, "dts", "s3cret-pw");
        let d = format!("{o:?}");
        assert!(!d.contains("s3cret-pw"), "{d}");
        assert!(d.contains("<redacted>") && d.contains("dts") && d.contains("db.example"));
        let empty = ConnectOptions::new("h", 1, "u", "");
        assert!(format!("{empty:?}").contains("<empty>"));
    }

    #[test]
    fn options_validation_and_addr() {
        assert!(ConnectOptions::new("", 3306, "u", "p").validate().is_err());
        assert!(ConnectOptions::new("h", 0, "u", "p").validate().is_err());
        assert!(ConnectOptions::new("h", 3306, "", "p").validate().is_err());
        assert!(ConnectOptions::new("h", 3306, "u", "p").validate().is_ok());
        assert_eq!(ConnectOptions::new("h", 3307, "u", "p").addr(), "h:3307");
        assert_eq!(
            ConnectOptions::new("::1", 3307, "u", "p").addr(),
            "[::1]:3307"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
    }

    #[test]
    fn value_text_forms() {
        assert_eq!(value_text(&Value::NULL), None);
        assert_eq!(
            value_text(&Value::Bytes(b"ROW".to_vec())).as_deref(),
            Some("ROW")
        );
        assert_eq!(value_text(&Value::Int(-4)).as_deref(), Some("-4"));
        assert_eq!(value_text(&Value::UInt(4)).as_deref(), Some("4"));
    }
}
