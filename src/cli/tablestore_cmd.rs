//! `tsmigrate tablestore serve|scan|tables`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use futures_util::StreamExt;

use tablestore::client::{Client, ClientConfig};
use tablestore::read::{Direction, RangeRequest, ReadOptions};
use tablestore::row::PrimaryKey;
use tablestore::{Cell, PkValue, Value};
use tablestore_server::ServerConfig;

#[derive(Debug, Subcommand)]
pub enum TablestoreCommand {
    /// Run the local Tablestore server (prints the endpoint when ready).
    Serve(ServeArgs),
    /// List the tables of an endpoint.
    Tables(EndpointArgs),
    /// Print rows of a table as JSON lines.
    Scan {
        #[command(flatten)]
        endpoint: EndpointArgs,
        #[arg(long)]
        table: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// The instance name and access key pair, shared by the server and its clients.
#[derive(Debug, Args)]
pub struct InstanceArgs {
    #[arg(long, env = "TSMIGRATE_TS_INSTANCE", default_value = "local")]
    instance: String,
    #[arg(long, env = "TSMIGRATE_TS_ACCESS_KEY_ID", default_value = "local-ak")]
    access_key_id: String,
    #[arg(
        long,
        env = "TSMIGRATE_TS_ACCESS_KEY_SECRET",
        default_value = "local-secret",
        hide_env_values = true
    )]
    access_key_secret: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[arg(long, env = "TSMIGRATE_TS_LISTEN", default_value = "127.0.0.1:8801")]
    listen: SocketAddr,
    #[arg(
        long,
        env = "TSMIGRATE_TS_DATA_DIR",
        default_value = "./tsmigrate-data"
    )]
    data_dir: PathBuf,
    #[command(flatten)]
    instance: InstanceArgs,
    /// Tables per instance (the service's default quota is 64).
    #[arg(long, env = "TSMIGRATE_TS_MAX_TABLES", default_value_t = 64)]
    max_tables: usize,
    #[command(flatten)]
    chaos: ChaosArgs,
}

/// The chaos mode: a WAN-like, flaky server for trying migrations (off by default). The
/// same variables configure `embedded:DIR` destinations.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Share of requests (0-1) that fail at random: OTSServerBusy, OTSTimeout after a delay,
    /// connection dropped before or after the write, single rows of a batch busy.
    #[arg(long, env = crate::cli::embedded::ENV_FAULT_RATE, default_value_t = 0.0)]
    fault_rate: f64,
    /// Milliseconds every request waits before it is answered.
    #[arg(long, env = crate::cli::embedded::ENV_LATENCY_MS, default_value_t = 0)]
    latency_ms: u64,
    /// Seed of the random faults (random when absent; logged at start).
    #[arg(long, env = crate::cli::embedded::ENV_SEED)]
    chaos_seed: Option<u64>,
}

impl ChaosArgs {
    fn config(&self) -> Result<Option<tablestore_server::ChaosConfig>, String> {
        let c = tablestore_server::ChaosConfig::new(
            self.fault_rate,
            std::time::Duration::from_millis(self.latency_ms),
            self.chaos_seed,
        )
        .map_err(|e| format!("--fault-rate: {e}"))?;
        Ok(c.is_active().then_some(c))
    }
}

#[derive(Debug, Args)]
pub struct EndpointArgs {
    #[arg(
        long,
        env = "TSMIGRATE_TS_ENDPOINT",
        default_value = "http://127.0.0.1:8801"
    )]
    endpoint: String,
    #[command(flatten)]
    instance: InstanceArgs,
    /// Sign with v4 for this region (v2 when absent).
    #[arg(long, env = "TSMIGRATE_TS_REGION")]
    region: Option<String>,
}

impl EndpointArgs {
    fn client(&self) -> Result<Client, String> {
        let mut cfg = ClientConfig::new(
            &self.endpoint,
            &self.instance.instance,
            &self.instance.access_key_id,
            &self.instance.access_key_secret,
        );
        cfg.region = self.region.clone();
        Client::new(cfg).map_err(|e| e.to_string())
    }
}

pub async fn run(cmd: TablestoreCommand) -> i32 {
    let r = match cmd {
        TablestoreCommand::Serve(a) => serve(a).await,
        TablestoreCommand::Tables(e) => tables(e).await,
        TablestoreCommand::Scan {
            endpoint,
            table,
            limit,
        } => scan(endpoint, &table, limit).await,
    };
    match r {
        Ok(()) => 0,
        Err(msg) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

async fn serve(a: ServeArgs) -> Result<(), String> {
    let cfg = ServerConfig {
        listen: a.listen,
        data_dir: a.data_dir,
        instance: a.instance.instance,
        access_key_id: a.instance.access_key_id,
        access_key_secret: a.instance.access_key_secret,
        max_tables: a.max_tables,
        cache_bytes: 64 * 1024 * 1024,
        chaos: a.chaos.config()?,
    };
    let srv = tablestore_server::start(cfg)
        .await
        .map_err(|e| e.to_string())?;
    // The first stdout line is the endpoint: scripts wait for it.
    println!("{}", srv.endpoint());
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    srv.shutdown().await;
    Ok(())
}

async fn tables(e: EndpointArgs) -> Result<(), String> {
    let c = e.client()?;
    for t in c.list_tables().await.map_err(|e| e.to_string())? {
        println!("{t}");
    }
    Ok(())
}

async fn scan(e: EndpointArgs, table: &str, limit: usize) -> Result<(), String> {
    let c = e.client()?;
    let d = c.describe_table(table).await.map_err(|e| e.to_string())?;
    let bound = |v: PkValue| {
        PrimaryKey(
            d.def
                .primary_key
                .iter()
                .map(|p| tablestore::PkColumn {
                    name: p.name.clone(),
                    value: v.clone(),
                })
                .collect(),
        )
    };
    let req = RangeRequest {
        direction: Direction::Forward,
        start: bound(PkValue::InfMin),
        end: bound(PkValue::InfMax),
        limit: Some(limit.clamp(1, 5000) as i32),
        read: ReadOptions::default(),
    };
    let mut rows = Box::pin(c.range_stream(table, req).take(limit));
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| e.to_string())?;
        let mut obj = serde_json::Map::new();
        for pk in row.primary_key.columns() {
            obj.insert(pk.name.clone(), pk_json(&pk.value));
        }
        for Cell { name, value, .. } in &row.cells {
            obj.insert(name.clone(), value_json(value));
        }
        println!("{}", serde_json::Value::Object(obj));
    }
    Ok(())
}

fn pk_json(v: &PkValue) -> serde_json::Value {
    match v {
        PkValue::Integer(i) => (*i).into(),
        PkValue::String(s) => s.clone().into(),
        PkValue::Binary(b) => format!("0x{}", hex(b)).into(),
        other => format!("{other:?}").into(),
    }
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Integer(i) => (*i).into(),
        Value::Double(d) => serde_json::Number::from_f64(*d)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| d.to_string().into()),
        Value::Boolean(b) => (*b).into(),
        Value::String(s) => s.clone().into(),
        Value::Binary(b) => format!("0x{}", hex(b)).into(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
