//! Full-copy throughput: one table of ~200-byte rows in a private MariaDB, side by side in one
//! run (issue 13 item 4):
//! - the raw source read: the `mariadb` client alone, `SELECT * FROM t` to /dev/null, timed;
//! - the full copy end to end into a `tsmigrate tablestore serve` in its own process, started
//!   by the bench (a fresh one per measure) on loopback, at `--latency-ms 10` and at
//!   `--latency-ms 50` (a WAN's round trip), and the ratio loopback / raw read;
//! - then the copy into the embedded server, the source read + convert of the same pages
//!   alone, the destination write alone, and the peak RSS.
//!
//! `cargo bench --bench full_copy` (env BENCH_ROWS, default 1000000; BENCH_THREADS,
//! BENCH_BUCKETS, BENCH_PAGE override the writer and page defaults for experiments;
//! BENCH_LATENCIES=0,10,50 picks the served measures; BENCH_SERVED_ONLY=1 skips the embedded
//! ones). BENCH_FIXED_DEPTH=1 runs the write-alone measure with the writer's fixed depth (one
//! request per lane, no adaptation).

mod support;

use std::time::Instant;

use futures_util::StreamExt;

// glibc's malloc spent a quarter of the copy's CPU in malloc/free (perf, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use support::mariadb::MariaDb;
use support::peak_rss_mb;
use tablestore::batch::BatchWriter;
use tablestore::client::BatchRow;
use tablestore::schema::{PkSchema, TableDef};
use tablestore::{Condition, PkType, PrimaryKey, Row, RowChange};
use tsmigrate_core::config::MigrationType;
use tsmigrate_core::mapping::convert::{select_list, RowConverter};
use tsmigrate_core::mysql::chunk_reader::{read_page, PageQuery};
use tsmigrate_core::steps;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tsmigrate::process::disable_transparent_huge_pages();
    let rows = support::bench_rows(1_000_000);
    let rt = support::runtime()?;
    rt.block_on(async move {
        let db = MariaDb::start_with(&[]);
        let d = db.fresh_database("bench").await;
        db.exec(&support::create_table_sql(&d)).await;
        let load = Instant::now();
        db.exec(&support::insert_sql(&d, 1, rows)).await;
        db.exec(&format!("ANALYZE TABLE `{d}`.t")).await;
        eprintln!(
            "loaded {rows} rows in {:.1} s",
            load.elapsed().as_secs_f64()
        );

        // Experiments: BENCH_THREADS / BENCH_BUCKETS / BENCH_PAGE override the defaults.
        let adjust = |cfg: &mut tsmigrate_core::config::MigrationConfig| {
            let env_u = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
            if let Some(t) = env_u("BENCH_THREADS") {
                cfg.writer.thread_count = t;
            }
            if let Some(b) = env_u("BENCH_BUCKETS") {
                cfg.writer.bucket_count = b;
                cfg.writer.concurrency = b;
            }
            if let Some(p) = env_u("BENCH_PAGE") {
                cfg.full.page_rows = u64::from(p);
            }
        };
        let types = || vec![MigrationType::Schema, MigrationType::Full];
        let load = support::load_average();

        // 1. Side by side: the raw client read, then the copy into a served destination.
        let raw = raw_client_read(&db, &d, rows)?;
        let latencies: Vec<u64> = std::env::var("BENCH_LATENCIES")
            .unwrap_or_else(|_| "0,10,50".into())
            .split(',')
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        let mut served = Vec::new();
        for &ms in &latencies {
            let server = Served::start(ms)?;
            let dir = tempfile::tempdir()?;
            let endpoint = server.endpoint.clone();
            let ctx = support::embedded_migration(&db, &d, dir.path(), types(), |cfg| {
                adjust(cfg);
                cfg.destination.endpoint = endpoint;
            })
            .await?;
            let pids = [
                "self".to_string(),
                server.child.id().to_string(),
                db.pid().map(|p| p.to_string()).unwrap_or_default(),
            ];
            let before = pids.clone().map(|p| support::cpu_seconds_of(&p));
            let rate = copy_all(ctx, rows).await?;
            let after = pids.map(|p| support::cpu_seconds_of(&p));
            let cpu: [f64; 3] =
                std::array::from_fn(|i| (after[i] - before[i]) * 1e6 / rows as f64);
            served.push((ms, rate, server.stop(), cpu));
        }
        println!("full copy, {rows} rows of ~200 bytes, MariaDB -> tsmigrate tablestore serve (own process), 2 cores shared, load average at start {load}");
        println!("{:<52} {:>12} {:>14}", "measure", "rows/s", "server RSS");
        println!(
            "{:<52} {:>12.0}",
            "raw read: mariadb -e 'SELECT * FROM t' > /dev/null", raw
        );
        for (ms, rate, rss, _) in &served {
            let what = match ms {
                0 => "end to end, loopback".to_string(),
                ms => format!("end to end, --latency-ms {ms}"),
            };
            println!("{what:<52} {rate:>12.0} {rss:>11.0} MB");
        }
        if let Some((_, rate, _, _)) = served.iter().find(|(ms, _, _, _)| *ms == 0) {
            println!("loopback / raw read: {:.2}x (target >= 0.6x)", rate / raw);
        }
        // CPU per row of each process (user + system, from /proc): what bounds the loopback
        // rate on a CPU-bound machine, and a figure the load of other processes moves little.
        println!("CPU per row copied (us): copy process / server / mariadbd / all three");
        for (ms, _, _, [c, s, m]) in &served {
            println!(
                "  latency {ms:>2} ms: {c:.2} / {s:.2} / {m:.2} / {:.2}",
                c + s + m
            );
        }
        println!("load average at end: {}", support::load_average());
        if std::env::var_os("BENCH_SERVED_ONLY").is_some() {
            return Ok(());
        }

        // 2. End to end into the embedded server (one process, as the local runner does).
        let dir = tempfile::tempdir()?;
        let ctx = support::embedded_migration(&db, &d, dir.path(), types(), adjust).await?;
        let ctx = std::sync::Arc::new(ctx);
        let e2e = copy_shared(&ctx, rows).await?;
        let ctx = std::sync::Arc::try_unwrap(ctx).map_err(|_| "context still shared")?;
        let rss = peak_rss_mb();

        // 3. Source read alone: the same keyset pages, converted, no writes.
        let mut conn = tsmigrate_core::mysql::connect_for_reading(&ctx.source).await?;
        let info = tsmigrate_core::mysql::describe_table(&mut conn, &d, "t").await?;
        let mapping = tsmigrate_core::mapping::map_table(&info, None, ctx.config.name_case)
            .map_err(|p| format!("{p:?}"))?;
        let conv = RowConverter::new(&mapping);
        let mut q = PageQuery::new(
            "t",
            select_list(&mapping, &ctx.config.float_precision),
            vec!["id".into()],
            ctx.config.full.page_rows,
        );
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            let page = read_page(&mut conn, &d, &q).await?;
            for r in &page.rows {
                conv.encode_change(r, ctx.config.write_mode)
                    .map_err(|e| e.to_string())?;
            }
            n += page.rows.len() as u64;
            match (page.is_last(&q), page.last_key) {
                (false, Some(k)) => q = q.after(k),
                _ => break,
            }
        }
        let read = n as f64 / start.elapsed().as_secs_f64();

        // 4. Destination write alone: the same row shape, generated, same writer settings.
        ctx.destination
            .create_table(&TableDef::new(
                "w",
                vec![PkSchema::new("id", PkType::Integer)],
            ))
            .await?;
        let mut opts = steps::copy::writer_options(&ctx);
        if std::env::var_os("BENCH_FIXED_DEPTH").is_some() {
            // The writer before adaptive depth: one request per lane, `concurrency` in all.
            opts.lane_depth = 1;
            opts.max_concurrency = Some(opts.concurrency);
        }
        let w = BatchWriter::new(ctx.destination.clone(), opts);
        let note = "x".repeat(110);
        let start = Instant::now();
        for id in 0..rows as i64 {
            w.write(BatchRow {
                table: "w".into(),
                change: RowChange::Put(
                    Row::new(PrimaryKey::new().with("id", id))
                        .with("customer", id % 10007)
                        .with("status", "paid")
                        .with("amount", "123.45")
                        .with("note", note.as_str())
                        .with("created", "2024-01-01 00:00:00.000000"),
                )
                .into(),
                condition: Condition::ignore(),
            })
            .await?;
        }
        w.close().await?;
        let write = rows as f64 / start.elapsed().as_secs_f64();

        println!();
        println!("full copy, {rows} rows of ~200 bytes, MariaDB -> embedded Tablestore server, 2 cores shared");
        println!("{:<40} {:>12}", "measure", "rows/s");
        println!("{:<40} {:>12.0}", "end to end (read, convert, write)", e2e);
        println!("{:<40} {:>12.0}", "source read + convert alone", read);
        println!("{:<40} {:>12.0}", "destination write alone", write);
        println!(
            "end to end / min(read, write): {:.0}%",
            100.0 * e2e / read.min(write)
        );
        println!("peak RSS during the end-to-end copy (embedded server included): {rss:.0} MB");
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

/// Schema, plan and every chunk of a fresh migration; rows/s from the plan on.
async fn copy_all(
    ctx: tsmigrate_core::steps::Context,
    rows: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    copy_shared(&std::sync::Arc::new(ctx), rows).await
}

async fn copy_shared(
    ctx: &std::sync::Arc<tsmigrate_core::steps::Context>,
    rows: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    steps::create_schema(ctx).await?;
    steps::begin(ctx, "bench").await?;
    let start = Instant::now();
    let plan = steps::plan::plan_chunks(ctx).await?;
    let threads = ctx.config.writer.thread_count.max(1) as usize;
    // A sliding window of `thread_count` chunks, as the Map state runs them; each chunk on
    // its own task, as `tsmigrate run` (and Lambda) runs each CopyChunk.
    let indexes = plan.wave_start..plan.wave_start + plan.chunk_count;
    let copies = futures_util::stream::iter(indexes).map(|i| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                let out = steps::copy::copy_chunk(&ctx, i, Some("bench")).await?;
                if out.done {
                    return Ok::<_, steps::StepError>(out.rows);
                }
            }
        })
    });
    let results: Vec<_> = copies.buffer_unordered(threads).collect().await;
    let mut copied = 0;
    for r in results {
        copied += r??;
    }
    if copied != rows {
        return Err(format!("copied {copied} rows, expected {rows}").into());
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

/// rows/s of the `mariadb` client reading the whole table to /dev/null (its default mode:
/// the result is buffered, then printed as tab-separated text).
fn raw_client_read(
    db: &MariaDb,
    database: &str,
    rows: u64,
) -> Result<f64, Box<dyn std::error::Error>> {
    let start = Instant::now();
    let status = std::process::Command::new("mariadb")
        .args([
            "--host=127.0.0.1",
            &format!("--port={}", db.port()),
            &format!("--user={}", support::mariadb::USER),
            &format!("--password={}", support::mariadb::USER_PASSWORD),
            "--skip-ssl",
            "-e",
            &format!("SELECT * FROM `{database}`.t"),
        ])
        .stdout(std::fs::File::create("/dev/null")?)
        .status()?;
    if !status.success() {
        return Err(format!("mariadb client failed: {status}").into());
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64())
}

/// A `tsmigrate tablestore serve` of its own (the binary built with this bench), on a free
/// port, in a fresh data directory.
struct Served {
    child: std::process::Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(latency_ms: u64) -> Result<Served, Box<dyn std::error::Error>> {
        use std::io::BufRead;
        let dir = tempfile::tempdir()?;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tsmigrate"))
            .args([
                "tablestore",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--latency-ms",
            ])
            .arg(latency_ms.to_string())
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            std::io::BufReader::new(out).read_line(&mut line)?;
        }
        let endpoint = line.trim().to_owned();
        if !endpoint.starts_with("http://") {
            let _ = child.kill();
            return Err(format!("tsmigrate tablestore serve printed {endpoint:?}").into());
        }
        Ok(Served {
            child,
            endpoint,
            _dir: dir,
        })
    }

    /// Stops the server; returns its peak RSS in MB.
    fn stop(mut self) -> f64 {
        let rss = support::peak_rss_mb_of(&self.child.id().to_string());
        let _ = self.child.kill();
        let _ = self.child.wait();
        rss
    }
}
