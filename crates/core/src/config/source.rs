//! `source`: the MySQL connection settings ([`SourceConfig`]), its TLS mode and who manages the
//! server. Split from `config/mod.rs` so each config section reads on its own; re-exported as
//! `config::*`.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretRef;

/// The one TLS mode type, shared with the MySQL layer (`mysql::tls`).
pub use crate::mysql::tls::TlsMode;

/// The MySQL source (MySQL 5.7/8.x or MariaDB). Incremental migration needs binlog_format=ROW
/// and binlog_row_image=FULL; the precheck verifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Host name or IP address of the MySQL server.
    pub host: String,
    /// TCP port of the MySQL server.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Database account. Needs SELECT for schema and full migration, plus REPLICATION SLAVE and
    /// REPLICATION CLIENT for incremental migration.
    pub user: String,
    /// Password of `user`, as a secret reference.
    pub password: SecretRef,
    /// The one database whose tables are migrated (DTS migrates tables of a single database).
    pub database: String,
    /// TLS on the MySQL connection (the MySQL client's --ssl-mode). "preferred": TLS if the
    /// server offers it, else plaintext; "required": TLS or fail; neither verifies the server
    /// certificate. "verify_ca": the certificate must chain to a trusted CA (the built-in
    /// Mozilla roots plus tls_ca_file); "verify_identity": also name `host`. "disabled":
    /// plaintext.
    #[serde(default)]
    pub tls: TlsMode,
    /// Path of a PEM file of CA certificates trusted besides the built-in roots (may be a
    /// bundle, e.g. the RDS global bundle); only with tls verify_ca or verify_identity. In a
    /// Lambda function, package the file with it (or mount it) and give its path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// Server id of tsmigrate's binlog connection; must differ from every server and replica of
    /// the source. 0 derives a stable id from migration_id.
    #[serde(default)]
    pub server_id: u32,
    /// Who runs the source: "self" (self-managed) or "rds" (Amazon RDS/Aurora or ApsaraDB RDS:
    /// binlog retention and privileges are managed through the provider, and the precheck
    /// gives provider-specific fixes).
    #[serde(default)]
    pub managed: Managed,
}

fn default_port() -> u16 {
    3306
}

impl SourceConfig {
    /// A source with the default port, TLS, server id and management.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        password: SecretRef,
        database: impl Into<String>,
    ) -> Self {
        SourceConfig {
            host: host.into(),
            port: default_port(),
            user: user.into(),
            password,
            database: database.into(),
            tls: TlsMode::default(),
            tls_ca_file: None,
            server_id: 0,
            managed: Managed::default(),
        }
    }
}

/// Who runs the source database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Managed {
    /// A self-managed MySQL server.
    #[default]
    #[serde(rename = "self")]
    SelfManaged,
    /// A managed service (Amazon RDS/Aurora MySQL, ApsaraDB RDS for MySQL).
    #[serde(rename = "rds")]
    Rds,
}
