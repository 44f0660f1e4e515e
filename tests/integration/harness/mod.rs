//! Shared harness of the integration tests: `crate::harness::mariadb::MariaDb::shared()` for the
//! private MariaDB of this test binary, `tablestore` for a local server on a free port, `moto`
//! for the Step Functions emulator, `output` for CLI output.
#![allow(dead_code)]

pub mod mariadb;
pub mod moto;
pub mod output;
pub mod tablestore;

use tsmigrate_core::config::{MigrationConfig, SecretResolver};
use tsmigrate_core::steps::Context;

/// A step context as the CLI builds it: an `embedded:DIR` destination is started first.
pub async fn context(mut cfg: MigrationConfig, secrets: &dyn SecretResolver) -> Context {
    tsmigrate::cli::embedded::resolve(&mut cfg, secrets)
        .await
        .expect("embedded destination starts");
    Context::new(cfg, secrets).await.expect("context")
}
