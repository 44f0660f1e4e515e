//! Shared test harness: a local Tablestore server in-process on a free port.

use std::time::Duration;

use tablestore::client::{Client, RetryPolicy};
use tablestore::schema::{PkSchema, TableDef};
use tablestore::PkType;
use tablestore_server::{RunningServer, ServerConfig};
use tempfile::TempDir;

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
    let server = tablestore_server::start(ServerConfig::local(dir.path()))
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
