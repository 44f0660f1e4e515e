//! Incremental apply throughput: row events of one ~200-byte-row table (half inserts, a quarter
//! updates, a quarter deletes, 1,000-row transactions) written by a private MariaDB after the
//! migration's start position, then applied to the embedded Tablestore server by
//! `steps::binlog::binlog_batch` until caught up (default batch bounds), as each BinlogBatch
//! invocation does. Prints applied row events/s and the peak RSS; the read-and-convert rate
//! alone is `cargo bench --bench binlog_read`.
//!
//! `cargo bench --bench incremental_apply` (env BENCH_ROWS: row events, default 1000000).

mod support;

use std::time::Instant;

use support::mariadb::MariaDb;
use support::peak_rss_mb;
use tsmigrate_core::config::MigrationType;
use tsmigrate_core::steps::{self, binlog::binlog_batch};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let db = MariaDb::start_with(&[]);
        let d = db.fresh_database("bench").await;
        db.exec(&support::create_table_sql(&d)).await;
        let dir = tempfile::tempdir()?;
        let ctx = support::embedded_migration(
            &db,
            &d,
            dir.path(),
            vec![
                MigrationType::Schema,
                MigrationType::Full,
                MigrationType::Incremental,
            ],
            |_| {},
        )
        .await?;
        steps::create_schema(&ctx).await?;
        steps::begin(&ctx, "bench").await?; // P0
        // The (empty) table's full copy, so verify has its plan to compare by.
        let plan = steps::plan::plan_chunks(&ctx).await?;
        for i in plan.wave_start..plan.wave_start + plan.chunk_count {
            while !steps::copy::copy_chunk(&ctx, i, Some("bench")).await?.done {}
        }

        let load = Instant::now();
        support::write_row_events(&db, &d, rows).await;
        eprintln!("wrote {rows} row events in {:.1} s", load.elapsed().as_secs_f64());

        let start = Instant::now();
        let (mut batches, mut events, mut written) = (0u64, 0u64, 0u64);
        loop {
            let out = binlog_batch(&ctx, Some("bench"), None).await?;
            batches += 1;
            events += out.events;
            written += out.rows_written;
            if out.caught_up {
                break;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let rss = peak_rss_mb();
        let v = steps::verify::verify(&ctx, None).await?;

        println!("incremental apply, {rows} row events (1/2 insert, 1/4 update, 1/4 delete; 1,000-row transactions), MariaDB -> embedded Tablestore server, 2 cores shared");
        println!("{:<48} {:>12}", "measure", "value");
        println!("{:<48} {:>12.0}", "row events applied / s", rows as f64 / secs);
        println!("{:<48} {:>12}", "batches (default bounds)", batches);
        println!("{:<48} {:>12}", "binlog events read", events);
        println!("{:<48} {:>12}", "rows written (after coalescing)", written);
        println!("{:<48} {:>12.0}", "peak RSS, MB (embedded server included)", rss);
        println!("verify: matched {}, missing {}, different {}, extra {}", v.matched, v.missing, v.different, v.extra);
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
