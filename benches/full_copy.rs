//! Full-copy throughput: one table of ~200-byte rows, private MariaDB → embedded local
//! Tablestore server, side by side in one run: end-to-end copy rows/s, the raw source read
//! rate of the same pages (no writes), and the destination write rate alone; plus peak RSS.
//!
//! `cargo bench --bench full_copy` (env BENCH_ROWS, default 1000000; BENCH_THREADS,
//! BENCH_BUCKETS, BENCH_PAGE override the writer and page defaults for experiments).
//! BENCH_ENDPOINT=http://HOST:PORT writes to a server in its own process instead of the
//! embedded one, e.g. a fresh `tsmigrate tablestore serve --latency-ms 10` (a WAN's round
//! trip; docs/benchmarks.md "Full copy under latency and faults"). BENCH_FIXED_DEPTH=1 runs
//! the write-alone measure with the writer's fixed depth (one request per lane, no adaptation).

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

        let dir = tempfile::tempdir()?;
        // Experiments: BENCH_THREADS / BENCH_BUCKETS / BENCH_PAGE override the defaults.
        let env_u = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
        let ctx = support::embedded_migration(
            &db,
            &d,
            dir.path(),
            vec![MigrationType::Schema, MigrationType::Full],
            |cfg| {
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
                if let Ok(endpoint) = std::env::var("BENCH_ENDPOINT") {
                    cfg.destination.endpoint = endpoint;
                }
            },
        )
        .await?;

        // 1. End to end: schema, plan, every chunk (chunks copied `thread_count` at a time).
        steps::create_schema(&ctx).await?;
        steps::begin(&ctx, "bench").await?;
        let start = Instant::now();
        let plan = steps::plan::plan_chunks(&ctx).await?;
        let threads = ctx.config.writer.thread_count.max(1) as usize;
        // A sliding window of `thread_count` chunks, as the Map state runs them; each chunk on
        // its own task, as `tsmigrate run` (and Lambda) runs each CopyChunk.
        let shared = std::sync::Arc::new(ctx);
        let indexes = plan.wave_start..plan.wave_start + plan.chunk_count;
        let copies = futures_util::stream::iter(indexes).map(|i| {
            let ctx = shared.clone();
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
        for r in results {
            r??;
        }
        let ctx = std::sync::Arc::try_unwrap(shared).map_err(|_| "context still shared")?;
        let e2e = rows as f64 / start.elapsed().as_secs_f64();
        let rss = peak_rss_mb();

        // 2. Source read alone: the same keyset pages, converted, no writes.
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

        // 3. Destination write alone: the same row shape, generated, same writer settings.
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

        let dest =
            std::env::var("BENCH_ENDPOINT").unwrap_or_else(|_| "embedded Tablestore server".into());
        println!("full copy, {rows} rows of ~200 bytes, MariaDB -> {dest}, 2 cores shared");
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
