//! Shared test harness: a local Tablestore server in-process on a free port.
#![allow(dead_code)]

use std::time::Duration;

use tempfile::TempDir;
use tsmigrate::tablestore::client::{Client, RetryPolicy};
use tsmigrate::tablestore::schema::{PkSchema, TableDef};
use tsmigrate::tablestore::server::{self, RunningServer, ServerConfig};
use tsmigrate::tablestore::PkType;

pub struct TestServer {
    pub dir: TempDir,
    pub server: RunningServer,
    pub client: Client,
}

/// Retries fast so fault-injection tests stay quick.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 5,
        base_delay: Duration::from_millis(5),
        throttle_base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        deadline: Duration::from_secs(10),
    }
}

pub async fn start() -> TestServer {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = server::start(ServerConfig::local(dir.path()))
        .await
        .expect("server starts");
    let mut cfg = server.client_config();
    cfg.retry = fast_retry();
    let client = Client::new(cfg).expect("client");
    TestServer {
        dir,
        server,
        client,
    }
}

/// A table keyed by one INTEGER column `id`.
pub fn int_table(name: &str) -> TableDef {
    TableDef::new(name, vec![PkSchema::new("id", PkType::Integer)])
}
