//! Shared harness of the integration tests: `crate::harness::mariadb::MariaDb::shared()` for the
//! private MariaDB of this test binary, `tablestore` for a local server on a free port, `moto`
//! for the Step Functions emulator, `output` for CLI output.
#![allow(dead_code)]

pub mod mariadb;
pub mod moto;
pub mod output;
pub mod sdk_script;
pub mod tablestore;

use std::path::Path;

use tsmigrate_core::config::{
    DestinationConfig, MigrationConfig, SecretRef, SecretResolver, SecretString, SourceConfig,
    TlsMode,
};
use tsmigrate_core::steps::Context;

use self::mariadb::MariaDb;

/// A migration of `database` on the test MariaDB (as the tsmigrate user) into the embedded
/// server in `dest_dir`, with literal secrets and every other setting at its default.
pub fn local_config(
    db: &MariaDb,
    database: &str,
    dest_dir: &Path,
    migration_id: String,
) -> MigrationConfig {
    local_config_as(
        db,
        database,
        dest_dir,
        mariadb::USER,
        mariadb::USER_PASSWORD,
        migration_id,
    )
}

/// [`local_config`] connecting as `user` (literal secrets: local setups only).
pub fn local_config_as(
    db: &MariaDb,
    database: &str,
    dest_dir: &Path,
    user: &str,
    password: &str,
    migration_id: String,
) -> MigrationConfig {
    let mut source = SourceConfig::new(
        "127.0.0.1",
        user,
        SecretRef::Literal(SecretString::new(password)),
        database,
    );
    source.port = db.port();
    source.tls = TlsMode::Disabled;
    let dest = DestinationConfig::new(
        format!("embedded:{}", dest_dir.display()),
        "local",
        SecretRef::Literal(SecretString::new("local-ak")),
        SecretRef::Literal(SecretString::new("local-secret")),
    );
    MigrationConfig::new(migration_id, source, dest)
}

/// Writes `DIR/config.json` for the CLI: `database` on the test MariaDB as `user` (with the
/// tests' password; literal secrets, a local setup) into `endpoint` (default: the embedded
/// server in `DIR/data`), schema and full copy of every table; `extra`'s top-level fields
/// replace or add to those. Returns the path.
pub fn write_local_config(
    dir: &Path,
    db: &MariaDb,
    user: &str,
    database: &str,
    migration_id: &str,
    endpoint: Option<&str>,
    extra: serde_json::Value,
) -> String {
    let endpoint = endpoint.map_or_else(
        || format!("embedded:{}", dir.join("data").display()),
        str::to_owned,
    );
    let mut config = serde_json::json!({
        "migration_id": migration_id,
        "source": {
            "host": "127.0.0.1", "port": db.port(), "user": user,
            "password": {"value": mariadb::USER_PASSWORD}, "database": database,
            "tls": "disabled"
        },
        "destination": {
            "endpoint": endpoint,
            "instance": "local",
            "access_key_id": {"value": "local-ak"},
            "access_key_secret": {"value": "local-secret"}
        },
        "migration_types": ["schema", "full"],
        "objects": {"tables": "*"}
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    path.display().to_string()
}

/// The context of a config with literal secrets, as `tsmigrate` builds it.
pub async fn local_context(mut cfg: MigrationConfig) -> Context {
    let secrets = cfg.detach_literal_secrets();
    context(cfg, &secrets).await
}

/// A step context as the CLI builds it: an `embedded:DIR` destination is started first.
pub async fn context(mut cfg: MigrationConfig, secrets: &dyn SecretResolver) -> Context {
    tsmigrate::cli::embedded::resolve(&mut cfg, secrets)
        .await
        .expect("embedded destination starts");
    Context::new(cfg, secrets).await.expect("context")
}
