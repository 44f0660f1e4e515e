//! The migration config (design §3): what to migrate, from where, to where, and how.
//!
//! One JSON document drives every step. Field names follow the DTS console options (the seed) so
//! DTS users recognise them; every field except the connection basics has a default, so a
//! minimal config is
//!
//! ```json
//! {"migration_id": "shop",
//!  "source": {"host": "db.internal", "user": "dts", "password": {"env": "SRC_PASSWORD"},
//!             "database": "shop"},
//!  "destination": {"endpoint": "https://shop.cn-hangzhou.ots.aliyuncs.com", "instance": "shop",
//!                  "access_key_id": {"env": "OTS_AK"}, "access_key_secret": {"env": "OTS_SK"}}}
//! ```
//!
//! - Parsing ([`load`], [`from_json_str`]) rejects unknown fields everywhere (typos are caught)
//!   and names the JSON path of the problem.
//! - [`MigrationConfig::validate`] then reports every remaining problem at once, each with its
//!   path and a fix ([`ValidationErrors`]).
//! - Credentials are [`SecretRef`]s, resolved inside the function that needs them (design
//!   invariant 5); literal values are redacted whenever a config is printed or serialized.
//! - [`json_schema`] is the JSON Schema printed by `tsmigrate schema`; every field's doc comment
//!   below is its description there, so write them for users.

mod filter;
mod json_schema;
mod secret;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use schemars::{json_schema as schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use filter::parse_filter;
pub use json_schema::json_schema;
pub use secret::{
    LocalSecrets, NoSecretResolver, ResolvedSecrets, SecretError, SecretRef, SecretResolver,
    SecretString, LOCAL_SECRET_PREFIX, REDACTED,
};
pub use validate::{ValidationError, ValidationErrors};

// ---------------------------------------------------------------------------------------------
// Loading

/// Why a config file could not be loaded. Validation problems are [`ValidationErrors`].
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The JSON is malformed or does not fit the config's shape.
    #[error("{}", parse_error_text(file.as_deref(), path, *line, *column, message, hint.as_deref()))]
    Parse {
        /// The file, when loaded from one.
        file: Option<PathBuf>,
        /// JSON path of the problem (`writer.bucket_count`, `objects.tables[0].name`), `.` for
        /// the top level.
        path: String,
        line: usize,
        column: usize,
        /// serde's message; for unknown fields it lists the expected field names.
        message: String,
        /// A nearby expected name, for a misspelt field or value.
        hint: Option<String>,
    },
}

impl ConfigError {
    /// True when the file could not be read (as opposed to read but rejected).
    pub fn is_unreadable(&self) -> bool {
        matches!(self, ConfigError::Io { .. })
    }
}

fn parse_error_text(
    file: Option<&Path>,
    path: &str,
    line: usize,
    column: usize,
    message: &str,
    hint: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(file) = file {
        out.push_str(&format!("{}:", file.display()));
    }
    out.push_str(&format!("{line}:{column}: "));
    if path != "." {
        out.push_str(&format!("at {path}: "));
    }
    out.push_str(message);
    if let Some(hint) = hint {
        out.push_str(&format!(" (did you mean `{hint}`?)"));
    }
    out
}

/// Reads and parses a config file. Does not validate: call [`MigrationConfig::validate`].
pub fn load(path: impl AsRef<Path>) -> Result<MigrationConfig, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, Some(path))
}

/// Parses a config from JSON text. Does not validate: call [`MigrationConfig::validate`].
pub fn from_json_str(text: &str) -> Result<MigrationConfig, ConfigError> {
    parse(text, None)
}

/// Parses a config from a JSON value (a step's `config` payload field).
pub fn from_json_value(value: &serde_json::Value) -> Result<MigrationConfig, ConfigError> {
    // Going through text keeps one code path (and its error paths) for every input.
    parse(&value.to_string(), None)
}

fn parse(text: &str, file: Option<&Path>) -> Result<MigrationConfig, ConfigError> {
    let parse_error = |path: String, inner: serde_json::Error| {
        let message = strip_position(&inner.to_string());
        let hint = nearest_expected(&message);
        ConfigError::Parse {
            file: file.map(Path::to_owned),
            path,
            line: inner.line(),
            column: inner.column(),
            message,
            hint,
        }
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let config = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        parse_error(path, e.into_inner())
    })?;
    // Trailing characters after the document.
    de.end().map_err(|e| parse_error(".".to_owned(), e))?;
    Ok(config)
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// For "unknown field `x`, expected one of `a`, `b`" (or "unknown variant …"), the expected
/// name closest to `x`, if it is close enough to be a typo.
fn nearest_expected(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (got, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let got_lower = got.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&got_lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------------------------
// The config

/// A tsmigrate migration: MySQL database → Tablestore instance. Field names follow the Alibaba
/// Cloud DTS console options. Unknown fields are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigrationConfig {
    /// Names this migration: 1-64 characters of A-Z a-z 0-9 _ -. It becomes part of Step
    /// Functions execution names and of the state-store keys, so keep it stable for the life of
    /// the migration.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub migration_id: String,
    /// The MySQL (or MariaDB) source database.
    pub source: SourceConfig,
    /// The Tablestore instance to write to.
    pub destination: DestinationConfig,
    /// Which phases to run: any non-empty subset of "schema" (create the Tablestore tables),
    /// "full" (copy existing rows) and "incremental" (replay the binlog). Without "incremental",
    /// do not write to the source during the migration. "incremental" alone is the scheduled
    /// catch-up mode.
    #[serde(default = "default_migration_types")]
    pub migration_types: Vec<MigrationType>,
    /// What to do when a destination table already exists (DTS: Processing Mode of Conflicting
    /// Tables).
    #[serde(default)]
    pub conflicting_tables: ConflictingTables,
    /// Which binlog row operations incremental migration applies (DTS: Synchronization
    /// Operation Types). DTS also offers DDL types; tsmigrate applies DML only: a DDL on a
    /// migrated table is never applied, it follows `dirty_data` or stops the migration with an
    /// error naming the table. Must be non-empty when "incremental" is selected.
    #[serde(default = "default_operation_types")]
    pub operation_types: Vec<OperationType>,
    /// What to do with a row that cannot be written (unmappable value, rejected by Tablestore)
    /// (DTS: Dirty Data Handling Policy). Skipped rows are recorded in the state store and
    /// counted, never dropped silently.
    #[serde(default)]
    pub dirty_data: DirtyDataPolicy,
    /// How a row is written (DTS: Data Write Mode).
    #[serde(default)]
    pub write_mode: WriteMode,
    /// Which Tablestore API carries batched writes (DTS: Batch Write Mode).
    #[serde(default)]
    pub batch_write_mode: BatchWriteMode,
    /// Writer tuning (DTS: More Settings).
    #[serde(default)]
    pub writer: WriterConfig,
    /// Capitalization of destination table and column names that are not given explicitly by a
    /// `target` (DTS: Case Sensitivity For Destination Object Names).
    #[serde(default)]
    pub name_case: NameCase,
    /// Which tables to migrate, and per-table renames, filters, keys and column overrides (DTS:
    /// Source Objects / Selected Objects). Default: every table of `source.database`.
    #[serde(default)]
    pub objects: Objects,
    /// How long failing work is retried before the migration fails (DTS: Retry Time for Failed
    /// Connections / for Other Issues).
    #[serde(default)]
    pub retry: RetryConfig,
    /// Optional rate limits (DTS: Enable Throttling for Full / Incremental Data Migration).
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// Heartbeat writes to the source so the binlog keeps moving and latency stays measurable
    /// when the source is idle.
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    /// Alerting thresholds (DTS: Monitoring and Alerting).
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    /// Full-copy chunking and pacing.
    #[serde(default)]
    pub full: FullConfig,
    /// Binlog batch sizing and the incremental loop.
    #[serde(default)]
    pub incremental: IncrementalConfig,
    /// Optional rounding of FLOAT/DOUBLE values (DTS reads them with ROUND(column, precision)).
    /// Off by default: values are copied exactly.
    #[serde(default)]
    pub float_precision: FloatPrecision,
}

fn default_migration_types() -> Vec<MigrationType> {
    vec![
        MigrationType::Schema,
        MigrationType::Full,
        MigrationType::Incremental,
    ]
}

fn default_operation_types() -> Vec<OperationType> {
    vec![
        OperationType::Insert,
        OperationType::Update,
        OperationType::Delete,
    ]
}

impl MigrationConfig {
    /// A config with every optional field at its default.
    pub fn new(
        migration_id: impl Into<String>,
        source: SourceConfig,
        destination: DestinationConfig,
    ) -> Self {
        MigrationConfig {
            migration_id: migration_id.into(),
            source,
            destination,
            migration_types: default_migration_types(),
            conflicting_tables: ConflictingTables::default(),
            operation_types: default_operation_types(),
            dirty_data: DirtyDataPolicy::default(),
            write_mode: WriteMode::default(),
            batch_write_mode: BatchWriteMode::default(),
            writer: WriterConfig::default(),
            name_case: NameCase::default(),
            objects: Objects::default(),
            retry: RetryConfig::default(),
            throttle: ThrottleConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            monitoring: MonitoringConfig::default(),
            full: FullConfig::default(),
            incremental: IncrementalConfig::default(),
            float_precision: FloatPrecision::default(),
        }
    }

    /// True when `migration_types` selects `t`.
    pub fn has(&self, t: MigrationType) -> bool {
        self.migration_types.contains(&t)
    }

    /// True when incremental migration applies row operations of kind `op`.
    pub fn applies(&self, op: OperationType) -> bool {
        self.operation_types.contains(&op)
    }

    /// The replica server id used on the binlog connection: `source.server_id`, or when that is
    /// 0, a stable id derived from `migration_id` in 2..=2^31 (never 0, which MySQL rejects for
    /// replicas, nor 1, the usual id of a primary).
    pub fn effective_server_id(&self) -> u32 {
        if self.source.server_id != 0 {
            return self.source.server_id;
        }
        derive_server_id(&self.migration_id)
    }

    /// The table specs of the list form of `objects.tables` (empty for `"*"`).
    pub fn table_specs(&self) -> &[TableSpec] {
        match &self.objects.tables {
            TableSelection::All => &[],
            TableSelection::List(specs) => specs,
        }
    }

    /// A local setup: embedded destination, or a loopback source host or destination endpoint.
    /// Only local setups may carry literal `{"value": …}` secrets.
    pub fn is_local_setup(&self) -> bool {
        let destination_local = match self.destination.endpoint() {
            Ok(Endpoint::Embedded { .. }) => true,
            Ok(Endpoint::Http { host, .. }) => is_loopback_host(&host),
            Err(_) => false,
        };
        destination_local || is_loopback_host(&self.source.host)
    }

    /// Every secret reference with its config path.
    pub fn secret_refs(&self) -> Vec<(&'static str, &SecretRef)> {
        let mut refs = vec![
            ("source.password", &self.source.password),
            ("destination.access_key_id", &self.destination.access_key_id),
            (
                "destination.access_key_secret",
                &self.destination.access_key_secret,
            ),
        ];
        if let Some(token) = &self.destination.sts_token {
            refs.push(("destination.sts_token", token));
        }
        refs
    }

    /// Resolves every credential without Secrets Manager (env and literal references only).
    pub fn resolve_secrets_env(&self) -> Result<ResolvedSecrets, SecretError> {
        let d = &self.destination;
        Ok(ResolvedSecrets {
            source_password: self.source.password.resolve_env("source.password")?,
            access_key_id: d.access_key_id.resolve_env("destination.access_key_id")?,
            access_key_secret: d
                .access_key_secret
                .resolve_env("destination.access_key_secret")?,
            sts_token: match &d.sts_token {
                Some(t) => Some(t.resolve_env("destination.sts_token")?),
                None => None,
            },
        })
    }

    /// Resolves every credential; `secret_arn` references go through `resolver`.
    pub async fn resolve_secrets(
        &self,
        resolver: &dyn SecretResolver,
    ) -> Result<ResolvedSecrets, SecretError> {
        let d = &self.destination;
        Ok(ResolvedSecrets {
            source_password: self
                .source
                .password
                .resolve("source.password", resolver)
                .await?,
            access_key_id: d
                .access_key_id
                .resolve("destination.access_key_id", resolver)
                .await?,
            access_key_secret: d
                .access_key_secret
                .resolve("destination.access_key_secret", resolver)
                .await?,
            sts_token: match &d.sts_token {
                Some(t) => Some(t.resolve("destination.sts_token", resolver).await?),
                None => None,
            },
        })
    }

    /// Replaces every literal `{"value": …}` secret by a `{"secret_arn": "local:<path>"}`
    /// reference and returns the resolver that answers them. The local runner calls this before
    /// putting the config into step payloads (which serialize literals as `<redacted>`), and
    /// hands the returned resolver to the steps in-process.
    pub fn detach_literal_secrets(&mut self) -> LocalSecrets {
        let mut secrets = LocalSecrets::new();
        let d = &mut self.destination;
        let slots: [(&str, Option<&mut SecretRef>); 4] = [
            ("source.password", Some(&mut self.source.password)),
            ("destination.access_key_id", Some(&mut d.access_key_id)),
            (
                "destination.access_key_secret",
                Some(&mut d.access_key_secret),
            ),
            ("destination.sts_token", d.sts_token.as_mut()),
        ];
        for (path, slot) in slots {
            let Some(slot) = slot else { continue };
            if let SecretRef::Literal(value) = slot {
                let id = format!("{LOCAL_SECRET_PREFIX}{path}");
                secrets.insert(id.clone(), value.clone());
                *slot = SecretRef::SecretArn { arn: id, key: None };
            }
        }
        secrets
    }
}

/// FNV-1a 64 of the id, folded into 2..=2^31.
fn derive_server_id(migration_id: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in migration_id.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // 2^31 - 1 values, shifted to start at 2: 2..=2^31.
    let span: u64 = (1 << 31) - 1;
    let id = 2 + hash % span;
    u32::try_from(id).unwrap_or(2)
}

/// `localhost`, 127.0.0.0/8 and ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Source

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
    /// TLS on the MySQL connection (the MySQL client's --ssl-mode).
    #[serde(default)]
    pub tls: TlsMode,
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
            server_id: 0,
            managed: Managed::default(),
        }
    }
}

/// TLS on the MySQL connection; the values are MySQL's --ssl-mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS if the server offers it, otherwise plaintext (the MySQL client default).
    #[default]
    Preferred,
    /// TLS or fail; the server certificate is not verified.
    Required,
    /// TLS or fail; the server certificate must be signed by a trusted CA.
    VerifyCa,
    /// TLS or fail; the certificate must be trusted and name the host.
    VerifyIdentity,
    /// Plaintext only.
    Disabled,
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

// ---------------------------------------------------------------------------------------------
// Destination

/// The Tablestore destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// "https://INSTANCE.REGION.ots.aliyuncs.com" (or any http(s)://host[:port] Tablestore
    /// endpoint), or "embedded:DIR" to run the local Tablestore server in-process with its data
    /// in DIR.
    pub endpoint: String,
    /// Tablestore instance name (3-16 letters, digits and hyphens, starting with a letter).
    pub instance: String,
    /// AccessKey ID, as a secret reference.
    pub access_key_id: SecretRef,
    /// AccessKey secret, as a secret reference.
    pub access_key_secret: SecretRef,
    /// STS security token for temporary credentials, as a secret reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_token: Option<SecretRef>,
    /// Region id (e.g. "cn-hangzhou"). When set, requests use V4 signing scoped to this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Table limit of the instance (Tablestore's default is 64, raised on request). The
    /// precheck fails when the migrated tables plus the state table would exceed it.
    #[serde(default = "default_max_tables")]
    #[schemars(range(min = 1))]
    pub max_tables: u32,
    /// Name of the Tablestore table that holds migration state (checkpoints, chunk plan,
    /// lease). Several migrations may share it: rows are keyed by migration_id.
    #[serde(default = "default_state_table")]
    pub state_table: String,
}

fn default_max_tables() -> u32 {
    tablestore::limits::DEFAULT_MAX_TABLES as u32
}

fn default_state_table() -> String {
    "tsmigrate_state".to_owned()
}

impl DestinationConfig {
    /// A destination with default region, limits and state table.
    pub fn new(
        endpoint: impl Into<String>,
        instance: impl Into<String>,
        access_key_id: SecretRef,
        access_key_secret: SecretRef,
    ) -> Self {
        DestinationConfig {
            endpoint: endpoint.into(),
            instance: instance.into(),
            access_key_id,
            access_key_secret,
            sts_token: None,
            region: None,
            max_tables: default_max_tables(),
            state_table: default_state_table(),
        }
    }

    /// The parsed endpoint; the error text says what is wrong.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        Endpoint::parse(&self.endpoint)
    }
}

/// A parsed `destination.endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A remote (or separately started local) Tablestore endpoint.
    Http {
        /// The endpoint as configured, without a trailing `/`.
        url: String,
        https: bool,
        host: String,
        port: Option<u16>,
    },
    /// The local Tablestore server, started in-process with its data in `dir`.
    Embedded { dir: PathBuf },
}

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        const SHAPE: &str = "expected http(s)://host[:port] or embedded:DIR";
        if let Some(dir) = text.strip_prefix("embedded:") {
            if dir.trim().is_empty() {
                return Err(format!("embedded: needs a data directory ({SHAPE})"));
            }
            return Ok(Endpoint::Embedded {
                dir: PathBuf::from(dir),
            });
        }
        let (https, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "\"{text}\" has no http://, https:// or embedded: prefix ({SHAPE})"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "\"{text}\" has a path, query or user part; a Tablestore endpoint is only \
                 scheme://host[:port]"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("\"{text}\" does not end in a valid host[:port] ({SHAPE})"))?;
        Ok(Endpoint::Http {
            url: text.strip_suffix('/').unwrap_or(text).to_owned(),
            https,
            host,
            port,
        })
    }
}

fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    if !host.starts_with('[')
        && (host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'))
    {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return None,
        },
    };
    Some((host, port))
}

// ---------------------------------------------------------------------------------------------
// Options mirrored from DTS

/// A migration phase.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MigrationType {
    /// Create the destination tables from the source schema.
    Schema,
    /// Copy the rows that exist when the migration starts.
    Full,
    /// Replay binlog changes (after the full copy, from the position recorded before it began).
    Incremental,
}

impl MigrationType {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationType::Schema => "schema",
            MigrationType::Full => "full",
            MigrationType::Incremental => "incremental",
        }
    }
}

/// A binlog row operation applied by incremental migration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OperationType {
    /// INSERT (and the insert half of REPLACE).
    Insert,
    /// UPDATE.
    Update,
    /// DELETE (and the delete half of REPLACE).
    Delete,
}

impl OperationType {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Insert => "insert",
            OperationType::Update => "update",
            OperationType::Delete => "delete",
        }
    }
}

/// What to do when a destination table already exists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictingTables {
    /// The precheck fails if a destination table already exists (rename it with a `target`).
    #[default]
    PrecheckAndReport,
    /// Write into existing tables. Rows with the same primary key are overwritten by both the
    /// full copy and incremental replay; a table whose primary key differs fails the migration.
    IgnoreAndProceed,
}

/// What to do with a row that cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirtyDataPolicy {
    /// Record the row (table, key, reason) in the state store, count it, and go on.
    #[default]
    Skip,
    /// Stop the migration with an error naming the table, key and fix.
    Block,
}

/// How a row is written to Tablestore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// UpdateRow: put the migrated columns, delete those that are NULL; attribute columns that
    /// the source does not have are kept. A row whose migrated columns are all NULL is written
    /// with PutRow (key only), since Tablestore keeps no row that an update left without columns.
    #[default]
    UpdateRow,
    /// PutRow: replace the whole row with the migrated columns.
    OverwriteRow,
}

/// The Tablestore API used for batched writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchWriteMode {
    /// BulkImport (offline write): higher throughput and lower cost; DTS's recommendation.
    #[default]
    BulkImport,
    /// BatchWriteRow: up to 200 rows / 4 MB per request.
    BatchWriteRow,
}

/// Writer tuning (DTS: More Settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriterConfig {
    /// Length of the queue of rows waiting to be written (1-65536).
    #[serde(default = "default_queue_size")]
    #[schemars(range(min = 1, max = validate::QUEUE_SIZE_MAX))]
    pub queue_size: u32,
    /// Threads handling write responses (1-64).
    #[serde(default = "default_thread_count")]
    #[schemars(range(min = 1, max = validate::THREAD_COUNT_MAX))]
    pub thread_count: u32,
    /// Write requests in flight to Tablestore at once (1-256).
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = validate::CONCURRENCY_MAX))]
    pub concurrency: u32,
    /// Incremental writes are split into this many buckets by primary key, each written in
    /// order, so changes to one key never race; more buckets, more parallelism. Must be <=
    /// concurrency.
    #[serde(default = "default_bucket_count")]
    #[schemars(range(min = 1, max = validate::CONCURRENCY_MAX))]
    pub bucket_count: u32,
}

fn default_queue_size() -> u32 {
    1024
}
fn default_thread_count() -> u32 {
    4
}
fn default_concurrency() -> u32 {
    8
}
fn default_bucket_count() -> u32 {
    8
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_size: default_queue_size(),
            thread_count: default_thread_count(),
            concurrency: default_concurrency(),
            bucket_count: default_bucket_count(),
        }
    }
}

/// Capitalization of destination names not set explicitly with `target`. Explicit `target`
/// names are always used exactly as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NameCase {
    /// DTS's default policy; for Tablestore it keeps the source name unchanged (as `source`).
    #[default]
    Default,
    /// Keep the source name's capitalization.
    Source,
    /// Lowercase the source name.
    Lower,
    /// Uppercase the source name.
    Upper,
}

impl NameCase {
    /// The destination name for source name `name` under this policy.
    pub fn apply(self, name: &str) -> String {
        match self {
            NameCase::Default | NameCase::Source => name.to_owned(),
            NameCase::Lower => name.to_lowercase(),
            NameCase::Upper => name.to_uppercase(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects

/// Which tables to migrate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objects {
    /// "*" for every base table of source.database, or a list of table specs (at most 1,000:
    /// the DTS limit for edited objects).
    #[serde(default)]
    pub tables: TableSelection,
    /// With "tables": "*", source tables to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tables: Vec<String>,
}

/// `"*"` or a list of [`TableSpec`]s.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TableSelection {
    /// Every base table of the source database (minus `exclude_tables`).
    #[default]
    All,
    /// Exactly these tables.
    List(Vec<TableSpec>),
}

impl Serialize for TableSelection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TableSelection::All => serializer.serialize_str("*"),
            TableSelection::List(specs) => specs.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TableSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TableSelectionVisitor)
    }
}

struct TableSelectionVisitor;

impl<'de> Visitor<'de> for TableSelectionVisitor {
    type Value = TableSelection;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"*\" or a list of table specs ({\"name\": \"orders\", …})")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v == "*" {
            Ok(TableSelection::All)
        } else {
            Err(E::custom(format!(
                "\"{v}\" is not accepted: use \"*\" for every table, or a list such as \
                 [{{\"name\": \"{v}\"}}]"
            )))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Vec::<TableSpec>::deserialize(de::value::SeqAccessDeserializer::new(seq))
            .map(TableSelection::List)
    }
}

impl JsonSchema for TableSelection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TableSelection".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let spec = generator.subschema_for::<TableSpec>();
        schema!({
            "description": "\"*\" for every base table of source.database, or a list of table specs.",
            "oneOf": [
                {"const": "*", "description": "Every base table of source.database (minus exclude_tables)."},
                {"type": "array", "items": spec, "maxItems": 1000, "description": "Exactly these tables."}
            ]
        })
    }
}

/// One source table to migrate, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Source table name in source.database.
    pub name: String,
    /// Destination table name; default: `name` under name_case. Must obey Tablestore naming:
    /// 1-255 characters of A-Z a-z 0-9 _, starting with a letter or underscore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// SQL WHERE expression (MySQL syntax, without the WHERE keyword) selecting the rows to
    /// migrate, e.g. "status <> 'deleted' AND id > 1000". Applied to the full copy and to every
    /// binlog row image; subqueries are not allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Source columns forming the destination primary key (1-4, in key order), instead of the
    /// table's own primary key; needed for tables with only a UNIQUE key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = validate::MAX_PRIMARY_KEY_COLUMNS))]
    pub primary_key: Option<Vec<String>>,
    /// Per-column overrides keyed by source column name: rename and/or destination type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnSpec>,
}

impl TableSpec {
    /// A spec migrating table `name` with no overrides.
    pub fn new(name: impl Into<String>) -> Self {
        TableSpec {
            name: name.into(),
            target: None,
            filter: None,
            primary_key: None,
            columns: BTreeMap::new(),
        }
    }

    /// The destination table name: `target`, else `name` under `case`.
    pub fn target_name(&self, case: NameCase) -> String {
        match &self.target {
            Some(t) => t.clone(),
            None => case.apply(&self.name),
        }
    }

    /// The destination name of source column `column`: its `target`, else `column` under
    /// `case`.
    pub fn column_target(&self, column: &str, case: NameCase) -> String {
        match self.columns.get(column).and_then(|c| c.target.as_ref()) {
            Some(t) => t.clone(),
            None => case.apply(column),
        }
    }
}

/// Overrides for one column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Destination column name; default: the source name under name_case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Destination type instead of the default mapping.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub column_type: Option<ColumnType>,
}

/// A destination column type override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// STRING: text as MySQL prints it (e.g. BIGINT UNSIGNED beyond 2^63-1, exact DECIMAL).
    String,
    /// INTEGER (signed 64-bit).
    Integer,
    /// DOUBLE (not allowed for primary key columns).
    Double,
    /// BOOLEAN (not allowed for primary key columns).
    Boolean,
    /// BINARY: the raw bytes.
    Binary,
    /// INTEGER microseconds since 1970-01-01 UTC, for DATE/DATETIME/TIMESTAMP columns.
    EpochMicros,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Binary => "binary",
            ColumnType::EpochMicros => "epoch_micros",
        }
    }

    /// Tablestore primary key columns may only be INTEGER, STRING or BINARY.
    pub fn allowed_in_primary_key(self) -> bool {
        !matches!(self, ColumnType::Double | ColumnType::Boolean)
    }
}

// ---------------------------------------------------------------------------------------------
// Advanced settings

/// Retry windows (DTS: Retry Time for Failed Connections / for Other Issues).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Minutes (1-1440) a step keeps retrying while the source or destination is unreachable,
    /// counted from the first consecutive failure; then the migration fails with
    /// Migration.RetryWindowExceeded.
    #[serde(default = "default_connection_minutes")]
    #[schemars(range(min = 1, max = validate::RETRY_MINUTES_MAX))]
    pub connection_minutes: u32,
    /// Minutes (1-1440) other retriable problems (throttling, busy, lock waits) are retried.
    /// Must be less than connection_minutes.
    #[serde(default = "default_other_minutes")]
    #[schemars(range(min = 1, max = validate::RETRY_MINUTES_MAX))]
    pub other_minutes: u32,
}

fn default_connection_minutes() -> u32 {
    720
}
fn default_other_minutes() -> u32 {
    10
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            connection_minutes: default_connection_minutes(),
            other_minutes: default_other_minutes(),
        }
    }
}

/// Optional rate limits; unset means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Limits for full migration (only with "full" in migration_types).
    #[serde(default)]
    pub full: FullThrottle,
    /// Limits for incremental migration (only with "incremental" in migration_types).
    #[serde(default)]
    pub incremental: IncrementalThrottle,
}

/// Full-migration limits, each for the whole migration: the chunks copied at once
/// (writer.thread_count) each take an equal share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FullThrottle {
    /// Queries per second sent to the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_qps: Option<f64>,
    /// Rows per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// Megabytes per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_per_s: Option<f64>,
}

impl FullThrottle {
    pub fn is_set(&self) -> bool {
        self.source_qps.is_some() || self.rps.is_some() || self.mb_per_s.is_some()
    }
}

/// Incremental-migration limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrementalThrottle {
    /// Rows per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps: Option<f64>,
    /// Megabytes per second written to the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mb_per_s: Option<f64>,
}

impl IncrementalThrottle {
    pub fn is_set(&self) -> bool {
        self.rps.is_some() || self.mb_per_s.is_some()
    }
}

/// Heartbeat writes to the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Periodically upsert a row in `table` in source.database, so the binlog moves forward
    /// and replication latency stays measurable while the source is idle. Needs write access
    /// to that table; it is never migrated.
    #[serde(default)]
    pub enabled: bool,
    /// The heartbeat table in source.database (created if missing).
    #[serde(default = "default_heartbeat_table")]
    pub table: String,
}

fn default_heartbeat_table() -> String {
    "tsmigrate_heartbeat".to_owned()
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            enabled: false,
            table: default_heartbeat_table(),
        }
    }
}

/// Alerting thresholds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Alert (CloudWatch alarm on the lag metric) when incremental migration lags the source by
    /// more than this many seconds. Unset: no latency alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub latency_alert_seconds: Option<u64>,
}

/// Full-copy chunking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FullConfig {
    /// Rows per chunk: each table is split into primary-key ranges of at most about this many
    /// rows, each copied (and resumed) independently. A table of several chunks gets a multiple
    /// of writer.thread_count of them, so its last wave keeps every thread busy.
    #[serde(default = "default_chunk_rows")]
    #[schemars(range(min = 1, max = validate::CHUNK_ROWS_MAX))]
    pub chunk_rows: u64,
    /// Rows per keyset page read from the source within a chunk. Must be <= chunk_rows.
    #[serde(default = "default_page_rows")]
    #[schemars(range(min = 1, max = validate::PAGE_ROWS_MAX))]
    pub page_rows: u64,
    /// Chunks one state-machine execution copies (1-1000, the States.ArrayRange limit) before
    /// continuing as a new execution.
    #[serde(default = "default_chunks_per_execution")]
    #[schemars(range(min = 1, max = validate::MAX_CHUNKS_PER_EXECUTION))]
    pub chunks_per_execution: u32,
}

fn default_chunk_rows() -> u64 {
    200_000
}
fn default_page_rows() -> u64 {
    5_000
}
fn default_chunks_per_execution() -> u32 {
    200
}

impl Default for FullConfig {
    fn default() -> Self {
        FullConfig {
            chunk_rows: default_chunk_rows(),
            page_rows: default_page_rows(),
            chunks_per_execution: default_chunks_per_execution(),
        }
    }
}

/// The incremental (binlog) loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrementalConfig {
    /// Binlog events read by one batch at most (it then ends at the next commit).
    #[serde(default = "default_max_events")]
    #[schemars(range(min = 1, max = validate::MAX_EVENTS_MAX))]
    pub max_events: u64,
    /// Seconds one batch reads at most (1-840: the 15-minute Lambda limit minus a margin).
    #[serde(default = "default_max_seconds")]
    #[schemars(range(min = 1, max = validate::MAX_BATCH_SECONDS))]
    pub max_seconds: u32,
    /// Seconds to wait before the next batch once caught up.
    #[serde(default = "default_idle_wait_seconds")]
    #[schemars(range(min = 1, max = validate::IDLE_WAIT_SECONDS_MAX))]
    pub idle_wait_seconds: u32,
    /// Batches one execution runs before continuing as a new execution, keeping its history
    /// far below the 25,000-event limit.
    #[serde(default = "default_continue_as_new_after")]
    #[schemars(range(min = 1, max = validate::MAX_BATCHES_PER_EXECUTION))]
    pub continue_as_new_after: u32,
}

fn default_max_events() -> u64 {
    50_000
}
fn default_max_seconds() -> u32 {
    60
}
fn default_idle_wait_seconds() -> u32 {
    5
}
fn default_continue_as_new_after() -> u32 {
    500
}

impl Default for IncrementalConfig {
    fn default() -> Self {
        IncrementalConfig {
            max_events: default_max_events(),
            max_seconds: default_max_seconds(),
            idle_wait_seconds: default_idle_wait_seconds(),
            continue_as_new_after: default_continue_as_new_after(),
        }
    }
}

/// Rounding of floating-point columns, as DTS's ROUND(column, precision).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FloatPrecision {
    /// Decimal places kept for FLOAT columns (0-38). Unset: the exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = validate::FLOAT_DIGITS_MAX))]
    pub float: Option<u32>,
    /// Decimal places kept for DOUBLE columns (0-308). Unset: the exact value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = validate::DOUBLE_DIGITS_MAX))]
    pub double: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const MINIMAL: &str = r#"{
        "migration_id": "shop",
        "source": {"host": "db.internal", "user": "dts", "password": {"env": "SRC_PASSWORD"},
                   "database": "shop"},
        "destination": {"endpoint": "https://shop.cn-hangzhou.ots.aliyuncs.com",
                        "instance": "shop",
                        "access_key_id": {"env": "OTS_AK"},
                        "access_key_secret": {"env": "OTS_SK"}}
    }"#;

    fn minimal() -> MigrationConfig {
        from_json_str(MINIMAL).unwrap()
    }

    #[test]
    fn minimal_config_gets_every_default() {
        let c = minimal();
        assert_eq!(c.source.port, 3306);
        assert_eq!(c.source.tls, TlsMode::Preferred);
        assert_eq!(c.source.server_id, 0);
        assert_eq!(c.source.managed, Managed::SelfManaged);
        assert_eq!(c.destination.sts_token, None);
        assert_eq!(c.destination.region, None);
        assert_eq!(c.destination.max_tables, 64);
        assert_eq!(c.destination.state_table, "tsmigrate_state");
        assert_eq!(
            c.migration_types,
            [
                MigrationType::Schema,
                MigrationType::Full,
                MigrationType::Incremental
            ]
        );
        assert_eq!(c.conflicting_tables, ConflictingTables::PrecheckAndReport);
        assert_eq!(
            c.operation_types,
            [
                OperationType::Insert,
                OperationType::Update,
                OperationType::Delete
            ]
        );
        assert_eq!(c.dirty_data, DirtyDataPolicy::Skip);
        assert_eq!(c.write_mode, WriteMode::UpdateRow);
        assert_eq!(c.batch_write_mode, BatchWriteMode::BulkImport);
        assert_eq!(
            c.writer,
            WriterConfig {
                queue_size: 1024,
                thread_count: 4,
                concurrency: 8,
                bucket_count: 8
            }
        );
        assert_eq!(c.name_case, NameCase::Default);
        assert_eq!(c.objects.tables, TableSelection::All);
        assert!(c.objects.exclude_tables.is_empty());
        assert_eq!(
            c.retry,
            RetryConfig {
                connection_minutes: 720,
                other_minutes: 10
            }
        );
        assert_eq!(c.throttle, ThrottleConfig::default());
        assert!(!c.throttle.full.is_set() && !c.throttle.incremental.is_set());
        assert_eq!(
            c.heartbeat,
            HeartbeatConfig {
                enabled: false,
                table: "tsmigrate_heartbeat".into()
            }
        );
        assert_eq!(c.monitoring.latency_alert_seconds, None);
        assert_eq!(
            c.full,
            FullConfig {
                chunk_rows: 200_000,
                page_rows: 5_000,
                chunks_per_execution: 200
            }
        );
        assert_eq!(
            c.incremental,
            IncrementalConfig {
                max_events: 50_000,
                max_seconds: 60,
                idle_wait_seconds: 5,
                continue_as_new_after: 500
            }
        );
        assert_eq!(c.float_precision, FloatPrecision::default());
        assert!(c.has(MigrationType::Full) && c.applies(OperationType::Delete));
        c.validate().unwrap();
    }

    #[test]
    fn new_matches_the_serde_defaults() {
        let c = minimal();
        let built = MigrationConfig::new(
            "shop",
            SourceConfig::new("db.internal", "dts", SecretRef::env("SRC_PASSWORD"), "shop"),
            DestinationConfig::new(
                "https://shop.cn-hangzhou.ots.aliyuncs.com",
                "shop",
                SecretRef::env("OTS_AK"),
                SecretRef::env("OTS_SK"),
            ),
        );
        assert_eq!(built, c);
    }

    #[test]
    fn serializes_and_parses_back() {
        let mut c = minimal();
        c.objects.tables = TableSelection::List(vec![TableSpec {
            name: "orders".into(),
            target: Some("orders_v2".into()),
            filter: Some("status <> 'deleted'".into()),
            primary_key: Some(vec!["id".into()]),
            columns: [(
                "amount".to_owned(),
                ColumnSpec {
                    target: None,
                    column_type: Some(ColumnType::String),
                },
            )]
            .into(),
        }]);
        c.throttle.full.rps = Some(1000.0);
        c.destination.sts_token = Some(SecretRef::secret_arn("arn:aws:secretsmanager:x", None));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json["objects"]["tables"][0]["columns"]["amount"]["type"],
            "string"
        );
        assert_eq!(json["source"]["managed"], "self");
        assert_eq!(from_json_value(&json).unwrap(), c);
        let all = serde_json::to_value(minimal()).unwrap();
        assert_eq!(all["objects"]["tables"], "*");
    }

    #[test]
    fn enum_spellings() {
        let text = MINIMAL.replacen(
            "\"migration_id\": \"shop\",",
            r#""migration_id": "shop",
               "conflicting_tables": "ignore_and_proceed", "dirty_data": "block",
               "write_mode": "overwrite_row", "batch_write_mode": "batch_write_row",
               "name_case": "upper", "migration_types": ["incremental"],
               "operation_types": ["insert", "update"],"#,
            1,
        );
        let c = from_json_str(&text).unwrap();
        assert_eq!(c.conflicting_tables, ConflictingTables::IgnoreAndProceed);
        assert_eq!(c.dirty_data, DirtyDataPolicy::Block);
        assert_eq!(c.write_mode, WriteMode::OverwriteRow);
        assert_eq!(c.batch_write_mode, BatchWriteMode::BatchWriteRow);
        assert_eq!(c.name_case, NameCase::Upper);
        assert!(!c.has(MigrationType::Full));
        assert!(!c.applies(OperationType::Delete));
        let rds = MINIMAL.replace(
            "\"database\": \"shop\"",
            "\"database\": \"shop\", \"managed\": \"rds\", \"tls\": \"verify_identity\"",
        );
        let c = from_json_str(&rds).unwrap();
        assert_eq!(c.source.managed, Managed::Rds);
        assert_eq!(c.source.tls, TlsMode::VerifyIdentity);
    }

    #[test]
    fn unknown_fields_name_their_path_and_suggest() {
        let text = MINIMAL.replacen(
            "\"migration_id\": \"shop\",",
            r#""migration_id": "shop", "writer": {"bucket_cont": 4},"#,
            1,
        );
        let e = from_json_str(&text).unwrap_err();
        let ConfigError::Parse {
            path,
            message,
            hint,
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(path, "writer.bucket_cont");
        assert!(
            message.contains("expected one of `queue_size`"),
            "{message}"
        );
        assert_eq!(hint.as_deref(), Some("bucket_count"));
        assert!(e.to_string().contains("did you mean `bucket_count`"), "{e}");

        let text = MINIMAL.replace(r#"{"env": "SRC_PASSWORD"}"#, r#"{"envv": "SRC_PASSWORD"}"#);
        let e = from_json_str(&text).unwrap_err();
        let ConfigError::Parse { path, hint, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(path, "source.password.envv");
        assert_eq!(hint.as_deref(), Some("env"));

        let text = MINIMAL.replace(
            "\"database\": \"shop\"",
            "\"database\": \"shop\", \"tls\": \"requird\"",
        );
        let e = from_json_str(&text).unwrap_err();
        let ConfigError::Parse { path, hint, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(path, "source.tls");
        assert_eq!(hint.as_deref(), Some("required"));
    }

    #[test]
    fn parse_errors_name_paths_inside_lists_and_maps() {
        let text = MINIMAL.replacen(
            "\"migration_id\": \"shop\",",
            r#""migration_id": "shop", "objects": {"tables": [{"name": "a"},
               {"name": "b", "columns": {"c": {"type": "decimal"}}}]},"#,
            1,
        );
        let e = from_json_str(&text).unwrap_err();
        let ConfigError::Parse { path, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(path, "objects.tables[1].columns.c.type");

        let text = MINIMAL.replacen(
            "\"migration_id\": \"shop\",",
            r#""migration_id": "shop", "objects": {"tables": "orders"},"#,
            1,
        );
        let e = from_json_str(&text).unwrap_err();
        assert!(e.to_string().contains("objects.tables"), "{e}");
        assert!(e.to_string().contains("\"*\""), "{e}");

        let e = from_json_str("{\"migration_id\": \"x\"").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }));
        let e = from_json_str(&format!("{MINIMAL} trailing")).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        let e = from_json_str(r#"{"migration_id": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `source`"), "{e}");
    }

    #[test]
    fn plain_string_password_is_rejected_without_echo() {
        let text = MINIMAL.replace(r#"{"env": "SRC_PASSWORD"}"#, r#""hunter2""#);
        let e = from_json_str(&text).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("source.password"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn load_reports_unreadable_files() {
        let e = load("/nonexistent/tsmigrate/config.json").unwrap_err();
        assert!(e.is_unreadable());
        assert!(e.to_string().contains("/nonexistent/tsmigrate/config.json"));
    }

    #[test]
    fn server_id_is_derived_stably_and_in_range() {
        let mut c = minimal();
        let id = c.effective_server_id();
        assert_eq!(id, derive_server_id("shop"));
        assert_eq!(id, c.effective_server_id());
        assert!((2..=1u32 << 31).contains(&id));
        assert_ne!(derive_server_id("shop"), derive_server_id("shop2"));
        for i in 0..10_000 {
            let id = derive_server_id(&format!("m{i}"));
            assert!((2..=1u32 << 31).contains(&id), "{id}");
        }
        // Pinned: the id must not change between releases (it names the replica on the source).
        assert_eq!(
            derive_server_id(""),
            2 + (0xcbf2_9ce4_8422_2325u64 % ((1 << 31) - 1)) as u32
        );
        c.source.server_id = 77;
        assert_eq!(c.effective_server_id(), 77);
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("embedded:./data").unwrap(),
            Endpoint::Embedded {
                dir: "./data".into()
            }
        );
        assert_eq!(
            Endpoint::parse("https://i.cn-hangzhou.ots.aliyuncs.com/").unwrap(),
            Endpoint::Http {
                url: "https://i.cn-hangzhou.ots.aliyuncs.com".into(),
                https: true,
                host: "i.cn-hangzhou.ots.aliyuncs.com".into(),
                port: None
            }
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:8801").unwrap(),
            Endpoint::Http {
                url: "http://127.0.0.1:8801".into(),
                https: false,
                host: "127.0.0.1".into(),
                port: Some(8801)
            }
        );
        assert!(matches!(
            Endpoint::parse("http://[::1]:8801"),
            Ok(Endpoint::Http {
                port: Some(8801),
                ..
            })
        ));
        for bad in [
            "embedded:",
            "ftp://x",
            "i.ots.aliyuncs.com",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://h/path",
            "http://u@h",
            "http://h h",
            "http://[zz]:1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_and_local_setup() {
        for h in ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["db.internal", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback_host(h), "{h}");
        }
        let mut c = minimal();
        assert!(!c.is_local_setup());
        c.destination.endpoint = "embedded:./d".into();
        assert!(c.is_local_setup());
        c.destination.endpoint = "http://localhost:8801".into();
        assert!(c.is_local_setup());
        let mut c = minimal();
        c.source.host = "127.0.0.1".into();
        assert!(c.is_local_setup());
    }

    #[test]
    fn name_case_and_targets() {
        assert_eq!(NameCase::Default.apply("Orders"), "Orders");
        assert_eq!(NameCase::Source.apply("Orders"), "Orders");
        assert_eq!(NameCase::Lower.apply("Orders"), "orders");
        assert_eq!(NameCase::Upper.apply("Orders"), "ORDERS");
        let mut spec = TableSpec::new("Orders");
        spec.columns.insert(
            "Note".into(),
            ColumnSpec {
                target: Some("Remark".into()),
                column_type: None,
            },
        );
        assert_eq!(spec.target_name(NameCase::Lower), "orders");
        assert_eq!(spec.column_target("Note", NameCase::Lower), "Remark");
        assert_eq!(spec.column_target("Amount", NameCase::Lower), "amount");
        spec.target = Some("Orders_V2".into());
        assert_eq!(spec.target_name(NameCase::Lower), "Orders_V2");
    }

    #[test]
    fn secrets_resolve_from_env_for_the_whole_config() {
        let mut c = minimal();
        c.source.password = SecretRef::env("TSMIGRATE_TEST_CFG_PW_51A0");
        c.destination.access_key_id = SecretRef::env("TSMIGRATE_TEST_CFG_AK_51A0");
        c.destination.access_key_secret = SecretRef::literal("sk");
        std::env::set_var("TSMIGRATE_TEST_CFG_PW_51A0", "pw");
        let e = c.resolve_secrets_env().unwrap_err();
        assert_eq!(e.path, "destination.access_key_id");
        assert!(e.to_string().contains("TSMIGRATE_TEST_CFG_AK_51A0"));
        std::env::set_var("TSMIGRATE_TEST_CFG_AK_51A0", "ak");
        let s = c.resolve_secrets_env().unwrap();
        assert_eq!(s.source_password.expose(), "pw");
        assert_eq!(s.access_key_id.expose(), "ak");
        assert_eq!(s.access_key_secret.expose(), "sk");
        assert!(s.sts_token.is_none());
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn detached_literals_survive_a_payload_round_trip() {
        let mut c = minimal();
        c.source.password = SecretRef::env("TSMIGRATE_TEST_CFG_PW_DETACH_3B7E");
        std::env::set_var("TSMIGRATE_TEST_CFG_PW_DETACH_3B7E", "pw");
        c.destination.endpoint = "embedded:./d".into();
        c.destination.access_key_id = SecretRef::literal("local-ak");
        c.destination.access_key_secret = SecretRef::literal("local-secret");
        // Serialized as is, literals are redacted.
        let redacted = serde_json::to_string(&c).unwrap();
        assert!(!redacted.contains("local-secret"));
        let secrets = c.detach_literal_secrets();
        assert_eq!(secrets.len(), 2);
        let payload = serde_json::to_value(&c).unwrap();
        assert_eq!(
            payload["destination"]["access_key_secret"]["secret_arn"],
            "local:destination.access_key_secret"
        );
        let back = from_json_value(&payload).unwrap();
        back.validate().unwrap();
        let resolved = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(back.resolve_secrets(&secrets))
            .unwrap();
        assert_eq!(resolved.access_key_secret.expose(), "local-secret");
        assert_eq!(resolved.source_password.expose(), "pw");
    }

    #[test]
    fn debug_output_redacts_literals() {
        let mut c = minimal();
        c.source.password = SecretRef::literal("hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{c:#?}").contains("hunter2"));
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
    }

    #[test]
    fn edit_distance_and_hints() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            nearest_expected(
                "unknown field `bucket_cont`, expected one of `queue_size`, `bucket_count`"
            ),
            Some("bucket_count".into())
        );
        assert_eq!(
            nearest_expected("unknown field `zzz`, expected one of `queue_size`, `bucket_count`"),
            None
        );
        assert_eq!(nearest_expected("missing field `x`"), None);
    }
}
