//! Incremental apply throughput as users run it: row events of one ~200-byte-row table (half
//! inserts, a quarter updates, a quarter deletes, 1,000-row transactions) written by a private
//! MariaDB after the migration's start position, then applied by `tsmigrate run --mode
//! catch_up` (the state machine in-process, default batch bounds) to a local Tablestore server
//! in its own process. In the same run, the binlog source alone reads and converts the same
//! events (`support::read_and_render`, as `cargo bench --bench binlog_read`), so the apply rate
//! is printed beside the rate it is bounded by. Peak RSS of the `tsmigrate run` process and of
//! the server; `tsmigrate verify` at the end.
//!
//! `cargo bench --bench incremental_apply` (env BENCH_ROWS: row events, default 1000000;
//! BENCH_LATENCY_MS: the server delays every answer by that many ms, a WAN's round trip,
//! default 0).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use support::mariadb::{MariaDb, USER, USER_PASSWORD};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TSMIGRATE: &str = env!("CARGO_BIN_EXE_tsmigrate");

fn tsmigrate(args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new(TSMIGRATE).args(args).output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!("tsmigrate {args:?} failed: {text}").into());
    }
    Ok(text)
}

/// Peak RSS (MB) of the children this process has waited for (the largest one).
fn children_peak_rss_mb() -> f64 {
    // SAFETY: getrusage writes into the struct we pass; no other memory is touched.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc == 0 {
        usage.ru_maxrss as f64 / 1024.0
    } else {
        0.0
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = support::bench_rows(1_000_000);
    let rt = support::runtime()?;
    rt.block_on(async move {
        let db = MariaDb::start_with(&[]);
        let d = db.fresh_database("bench").await;
        db.exec(&support::create_table_sql(&d)).await;
        let dir = tempfile::tempdir()?;

        // The local server in its own process, as a remote Tablestore would be.
        let latency_ms: u64 = std::env::var("BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut server = Command::new(TSMIGRATE)
            .args(["tablestore", "serve", "--listen", "127.0.0.1:0"])
            .arg("--latency-ms")
            .arg(latency_ms.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("ts"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut endpoint = String::new();
        if let Some(out) = server.stdout.take() {
            BufReader::new(out).read_line(&mut endpoint)?;
        }
        let config = serde_json::json!({
            "migration_id": "bench_inc",
            "source": {
                "host": "127.0.0.1", "port": db.port(), "user": USER,
                "password": {"value": USER_PASSWORD}, "database": d, "tls": "disabled"
            },
            "destination": {
                "endpoint": endpoint.trim(), "instance": "local",
                "access_key_id": {"value": "local-ak"},
                "access_key_secret": {"value": "local-secret"}
            },
            "migration_types": ["schema", "full", "incremental"],
            "objects": {"tables": "*"}
        });
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
        let config_arg = config_path.display().to_string();
        // Schema, the (empty) table's copy and the start position P0.
        tsmigrate(&["run", "--config", &config_arg, "--mode", "catch_up"])?;

        let opts = db.user_options();
        let start = support::position(&opts).await?;
        let load = Instant::now();
        support::write_row_events(&db, &d, rows).await;
        eprintln!("wrote {rows} row events in {:.1} s", load.elapsed().as_secs_f64());

        // 1. The binlog source alone: read and convert the same events.
        let t0 = Instant::now();
        let read = support::read_and_render(&opts, &d, &start).await?;
        let read_secs = t0.elapsed().as_secs_f64();
        assert_eq!(read.row_events, rows, "every row event read once");

        // 2. tsmigrate run --mode catch_up applies them.
        let t1 = Instant::now();
        tsmigrate(&["run", "--config", &config_arg, "--mode", "catch_up"])?;
        let apply_secs = t1.elapsed().as_secs_f64();
        let run_rss = children_peak_rss_mb();
        let server_rss = support::peak_rss_mb_of(&server.id().to_string());
        let verify = tsmigrate(&["verify", "--config", &config_arg])?;
        let _ = server.kill();
        let _ = server.wait();

        let read_rate = rows as f64 / read_secs;
        let apply_rate = rows as f64 / apply_secs;
        println!("incremental apply, {rows} row events (1/2 insert, 1/4 update, 1/4 delete; 1,000-row transactions), MariaDB -> local Tablestore server in its own process (--latency-ms {latency_ms}), 2 cores shared by all three, load average {}", support::load_average());
        println!("{:<58} {:>12}", "measure", "value");
        println!("{:<58} {:>12.0}", "row events applied / s (tsmigrate run --mode catch_up)", apply_rate);
        println!("{:<58} {:>12.0}", "row events read and converted / s (binlog source alone)", read_rate);
        println!("{:<58} {:>12.2}", "apply / read", apply_rate / read_rate);
        println!("{:<58} {:>12.0}", "peak RSS of tsmigrate run, MB", run_rss);
        println!("{:<58} {:>12.0}", "peak RSS of the server, MB", server_rss);
        for line in verify.lines().filter(|l| l.starts_with("matched") || l.starts_with("verify:")) {
            println!("{line}");
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
