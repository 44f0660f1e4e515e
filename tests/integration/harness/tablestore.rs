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

/// Every row of `table` (key columns `key`), in key order, cell timestamps cleared: what a
/// test compares with the source.
pub async fn all_rows(client: &Client, table: &str, key: &[&str]) -> Vec<tablestore::Row> {
    use futures_util::StreamExt;
    use tablestore::read::{Direction, RangeRequest, ReadOptions};
    use tablestore::{PkColumn, PkValue, PrimaryKey};
    let bound = |v: PkValue| {
        PrimaryKey(
            key.iter()
                .map(|k| PkColumn {
                    name: k.to_string(),
                    value: v.clone(),
                })
                .collect(),
        )
    };
    let req = RangeRequest {
        direction: Direction::Forward,
        start: bound(PkValue::InfMin),
        end: bound(PkValue::InfMax),
        limit: None,
        read: ReadOptions::default(),
    };
    client
        .range_stream(table, req)
        .map(|r| {
            let mut r = r.expect("range read");
            for c in &mut r.cells {
                c.timestamp = None;
            }
            r
        })
        .collect()
        .await
}

/// `tsmigrate tablestore serve --listen LISTEN --data-dir DATA` in its own process (the
/// binary of this build); returns the child and the endpoint it printed.
pub fn serve_process(data: &std::path::Path, listen: &str) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_tsmigrate"))
        .args(["tablestore", "serve", "--listen", listen, "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tsmigrate tablestore serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("endpoint line");
    assert!(line.starts_with("http://127.0.0.1:"), "got {line:?}");
    (child, line.trim().to_owned())
}

/// A client of a local server with the local keys.
pub fn local_client(endpoint: &str) -> Client {
    Client::new(tablestore::client::ClientConfig::new(
        endpoint,
        "local",
        "local-ak",
        "local-secret",
    ))
    .expect("client")
}
