//! # The MySQL source side
//!
//! Everything tsmigrate knows about the source database, and nothing about Tablestore
//! (design §1): the mapping module is the one place that knows both.
//!
//! ## Shape
//!
//! Plain async functions over a [`Conn`] plus plain data types, in the manner of Materialize's
//! `mysql-util`: the steps compose them, this module holds no orchestration.
//!
//! - [`connect`](mod@connect): [`ConnectOptions`] (`Debug` never shows the password), [`connect()`],
//!   [`connect_for_reading`] (session `time_zone='+00:00'`, so TIMESTAMP values print in UTC
//!   exactly as the binlog carries them, design §4) and a [`ReadingPool`].
//! - [`tls`]: the one [`TlsMode`] (`disabled | preferred | required | verify_ca |
//!   verify_identity`, config `source.tls`), the CA file and what a failed handshake says.
//! - [`flavor`]: [`ServerInfo`]: MySQL or MariaDB, version, AWS RDS/Aurora or Alibaba RDS
//!   (best effort), and the version gates of every spelling that differs.
//! - [`probes`]: what the precheck verifies (design §5, the DTS precautions): binlog on, ROW
//!   format, FULL row image, `binlog_row_metadata=FULL`, retention (variables, or RDS'
//!   `binlog retention hours`), `log_replica_updates`, GTID mode; the current binlog
//!   position (`SHOW BINARY LOG STATUS` / `SHOW MASTER STATUS`, with the GTID set); and the
//!   account's grants parsed from `SHOW GRANTS` (REPLICATION SLAVE, REPLICATION CLIENT /
//!   BINLOG MONITOR, SELECT per table, roles best effort).
//! - [`introspect`]: tables, columns with everything the type mapping needs (unsigned,
//!   precision, charset, ENUM/SET labels, BIT width, invisible and generated columns, JSON),
//!   primary and unique keys, row estimates; [`key_for_migration`].
//! - [`error`]: [`SourceError`], classified like Materialize's: transient (I/O, refused,
//!   server gone, lock wait: retried as `Migration.ConnectionFailed` / `Migration.Transient`)
//!   or definite (access denied, unknown database, bad configuration: never retried). Every
//!   message names the fix.
//!
//! ## Conventions
//!
//! - Server answers go through pure parsers (`parse_*`, `from_variables`, `from_lines`,
//!   `build_tables`) that are unit-tested with recorded MySQL 8 / RDS answers; the async
//!   functions only run the queries. Integration tests run against a private MariaDB
//!   (`tests/mysql_source.rs`).
//! - No password, password hash or row value is logged or put in an error.
//! - Side connections should be closed with [`close`]; a dropped connection is logged by the
//!   server as aborted.

pub mod binlog;
pub mod chunk_reader;
pub mod connect;
pub mod error;
pub mod flavor;
pub mod heartbeat;
pub mod introspect;
pub mod probes;
pub mod tls;

pub use chunk_reader::{
    count_range, key_at_offset, key_bounds, page_sql, read_page, split_points, KeyValue, Page,
    PageQuery, SourceRow, SqlValue,
};
pub use connect::{
    close, connect, connect_for_reading, quote_ident, Conn, ConnectOptions, ReadingPool, TlsMode,
    READING_SESSION_SETUP,
};
pub use error::SourceError;
pub use flavor::{parse_version, server_info, Flavor, ServerInfo, Version};
pub use introspect::{
    describe_table, describe_tables, key_for_migration, list_tables, parse_column_type,
    ColumnDefault, ColumnInfo, Generated, TableInfo, UniqueKey,
};
pub use probes::{
    binary_logs, binlog_position, binlog_settings, grants, parse_grant_line, Account, BinlogFile,
    BinlogPosition, BinlogSettings, GrantObject, GrantStatement, Grants, Privilege,
    RetentionSource,
};
