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
