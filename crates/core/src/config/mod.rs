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
//!   (here and in the section files) is its description there, so write them for users.
//!
//! This file holds loading and the top-level [`MigrationConfig`]; each section of the config has
//! its own file, every item re-exported here (`config::X`):
//!
//! - `source`: [`SourceConfig`], [`TlsMode`], [`Managed`].
//! - `destination`: [`DestinationConfig`], [`Endpoint`].
//! - `objects`: [`Objects`], [`TableSelection`], [`TableSpec`], [`ColumnSpec`], [`ColumnType`],
//!   [`NameCase`].
//! - `options`: the DTS-mirrored choices ([`MigrationType`], [`OperationType`],
//!   [`ConflictingTables`], [`DirtyDataPolicy`], [`WriteMode`], [`BatchWriteMode`]) and the
//!   tuning sections ([`WriterConfig`], [`RetryConfig`], [`ThrottleConfig`],
//!   [`HeartbeatConfig`], [`MonitoringConfig`], [`FullConfig`], [`IncrementalConfig`],
//!   [`FloatPrecision`]) with their defaults.
//! - `secret`, `filter`, `validate`, `json_schema`: as above.

mod destination;
mod filter;
mod json_schema;
mod objects;
mod options;
mod secret;
mod source;
mod validate;

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use destination::{DestinationConfig, Endpoint};
pub use filter::parse_filter;
pub use json_schema::json_schema;
pub use objects::{ColumnSpec, ColumnType, NameCase, Objects, TableSelection, TableSpec};
pub use options::{
    BatchWriteMode, ConflictingTables, DirtyDataPolicy, FloatPrecision, FullConfig, FullThrottle,
    HeartbeatConfig, IncrementalConfig, IncrementalThrottle, MigrationType, MonitoringConfig,
    OperationType, RetryConfig, ThrottleConfig, WriteMode, WriterConfig,
};
pub use secret::{
    LocalSecrets, NoSecretResolver, ResolvedSecrets, SecretError, SecretRef, SecretResolver,
    SecretString, LOCAL_SECRET_PREFIX, REDACTED,
};
pub use source::{Managed, SourceConfig, TlsMode};
pub use validate::{
    ValidationError, ValidationErrors, MAX_BATCHES_PER_EXECUTION, MAX_CHUNKS_PER_EXECUTION,
    RETRY_MINUTES_MAX,
};

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

#[cfg(test)]
mod tests;
