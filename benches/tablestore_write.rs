//! BatchWriteRow throughput of 1 KB rows on loopback: our client → our server, and the
//! official Python SDK → our server, side by side in one run.
//!
//! `cargo bench --bench tablestore_write` (env: BENCH_ROWS, default 200000; BENCH_PY_ROWS,
//! default 20000; TSMIGRATE_PYTHON or .venv/bin/python for the SDK half).

use std::time::Instant;

// glibc's malloc spent a quarter of the copy's CPU in malloc/free (perf, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use tablestore::batch::{BatchOptions, BatchWriter, WriteApi};
use tablestore::client::{BatchRow, Client};
use tablestore::schema::{PkSchema, TableDef};
use tablestore::{Condition, PkType, PrimaryKey, Row, RowChange};
use tablestore_server::ServerConfig;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A ~1 KB row: a 1,000-byte string plus a few small columns.
fn row(id: i64, payload: &str) -> BatchRow {
    BatchRow {
        table: "".into(),
        change: RowChange::Put(
            Row::new(PrimaryKey::new().with("id", id))
                .with("payload", payload)
                .with("n", id)
                .with("f", id as f64 * 0.5)
                .with("flag", id % 2 == 0),
        )
        .into(),
        condition: Condition::ignore(),
    }
}

async fn run_rust(
    client: &Client,
    table: &str,
    rows: usize,
    api: WriteApi,
    concurrency: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    client
        .create_table(&TableDef::new(
            table,
            vec![PkSchema::new("id", PkType::Integer)],
        ))
        .await?;
    let payload = "p".repeat(1000);
    let w = BatchWriter::new(
        client.clone(),
        BatchOptions {
            api,
            lanes: concurrency,
            concurrency,
            ..Default::default()
        },
    );
    let start = Instant::now();
    for id in 0..rows as i64 {
        let mut r = row(id, &payload);
        r.table = table.into();
        w.write(r).await?;
    }
    let report = w.close().await?;
    let secs = start.elapsed().as_secs_f64();
    if report.rows_written != rows as u64 || !report.failed.is_empty() {
        return Err(format!("wrote {} of {rows} rows", report.rows_written).into());
    }
    client.delete_table(table).await?;
    Ok(rows as f64 / secs)
}

fn run_python(endpoint: &str, rows: usize) -> Result<f64, String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let python =
        std::env::var("TSMIGRATE_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    let out = std::process::Command::new(&python)
        .arg(format!("{root}/benches/python_sdk_write.py"))
        .env("TS_ENDPOINT", endpoint)
        .env("TS_INSTANCE", "local")
        .env("TS_AK", "local-ak")
        .env("TS_SK", "local-secret")
        .env("BENCH_ROWS", rows.to_string())
        .output()
        .map_err(|e| format!("cannot run {python}: {e} (run .ci/run to create .venv)"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| {
            format!(
                "no result from the Python SDK: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    v["rows_per_s"]
        .as_f64()
        .ok_or_else(|| format!("bad result line {line}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = env_usize("BENCH_ROWS", 200_000);
    let py_rows = env_usize("BENCH_PY_ROWS", 20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let srv = tablestore_server::start(ServerConfig::local(dir.path())).await?;
        let client = Client::new(srv.client_config())?;
        println!("BatchWriteRow, ~1 KB rows, loopback, local server on the same 2-core machine");
        println!("{:<44} {:>10} {:>12}", "writer", "rows", "rows/s");
        let mut results = Vec::new();
        for (label, api, conc) in [
            (
                "tsmigrate client, BatchWriteRow, 1 request",
                WriteApi::BatchWriteRow,
                1,
            ),
            (
                "tsmigrate client, BatchWriteRow, 4 requests",
                WriteApi::BatchWriteRow,
                4,
            ),
            (
                "tsmigrate client, BulkImport, 4 requests",
                WriteApi::BulkImport,
                4,
            ),
        ] {
            let r = run_rust(&client, "bench_rust", rows, api, conc).await?;
            println!("{label:<44} {rows:>10} {r:>12.0}");
            results.push(r);
        }
        let endpoint = srv.endpoint();
        let py = tokio::task::spawn_blocking(move || run_python(&endpoint, py_rows)).await?;
        match py {
            Ok(p) => {
                println!(
                    "{:<44} {py_rows:>10} {p:>12.0}",
                    "official Python SDK 6.x, 1 client"
                );
                let best = results.iter().cloned().fold(0.0, f64::max);
                println!("ratio tsmigrate best / Python SDK: {:.1}x", best / p);
            }
            Err(e) => println!("official Python SDK: not measured: {e}"),
        }
        srv.shutdown().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
