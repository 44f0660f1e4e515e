//! Incremental apply throughput: row events of one ~200-byte-row table (half inserts, a quarter
//! updates, a quarter deletes, 1,000-row transactions) written by a private MariaDB after the
//! migration's start position, then applied to the embedded Tablestore server by
//! `steps::binlog::binlog_batch` until caught up (default batch bounds), as each BinlogBatch
//! invocation does. Prints applied row events/s and the peak RSS; the read-and-convert rate
//! alone is `cargo bench --bench binlog_read`.
//!
//! `cargo bench --bench incremental_apply` (env BENCH_ROWS: row events, default 1000000).

#[path = "../tests/integration/harness/mariadb.rs"]
#[allow(dead_code)]
mod mariadb;

use std::time::Instant;

use mariadb::{MariaDb, USER, USER_PASSWORD};
use tsmigrate_core::config::{
    DestinationConfig, MigrationConfig, MigrationType, SecretRef, SecretString, SourceConfig,
    TlsMode,
};
use tsmigrate_core::steps::{self, binlog::binlog_batch, Context};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

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
        db.exec(&format!(
            "CREATE TABLE `{d}`.t (id BIGINT PRIMARY KEY, customer INT, status VARCHAR(16), amount DECIMAL(12,2), note VARCHAR(120), created DATETIME(6))"
        ))
        .await;

        let dir = tempfile::tempdir()?;
        let mut source = SourceConfig::new("127.0.0.1", USER, SecretRef::Literal(SecretString::new(USER_PASSWORD)), d.clone());
        source.port = db.port();
        source.tls = TlsMode::Disabled;
        let dest = DestinationConfig::new(
            format!("embedded:{}", dir.path().display()),
            "local",
            SecretRef::Literal(SecretString::new("local-ak")),
            SecretRef::Literal(SecretString::new("local-secret")),
        );
        let mut cfg = MigrationConfig::new("bench", source, dest);
        cfg.migration_types = vec![
            MigrationType::Schema,
            MigrationType::Full,
            MigrationType::Incremental,
        ];
        let secrets = cfg.detach_literal_secrets();
        tsmigrate::cli::embedded::resolve(&mut cfg, &secrets).await?;
        let ctx = Context::new(cfg, &secrets).await?;
        steps::create_schema(&ctx).await?;
        steps::begin(&ctx, "bench").await?; // P0
        // The (empty) table's full copy, so verify has its plan to compare by.
        let plan = steps::plan::plan_chunks(&ctx).await?;
        for i in plan.wave_start..plan.wave_start + plan.chunk_count {
            while !steps::copy::copy_chunk(&ctx, i, Some("bench")).await?.done {}
        }

        let load = Instant::now();
        let inserts = rows / 2;
        for from in (1..=inserts).step_by(1000) {
            let to = (from + 999).min(inserts);
            db.exec(&format!(
                "INSERT INTO `{d}`.t SELECT seq, seq % 10007, ELT(1 + seq % 3, 'new', 'paid', 'shipped'), (seq % 100000) / 100, REPEAT(CHAR(97 + seq % 26), 110), '2024-01-01' + INTERVAL seq SECOND FROM `{d}`.seq_{from}_to_{to}"
            ))
            .await;
        }
        let quarter = rows / 4;
        for from in (1..=quarter).step_by(1000) {
            let to = (from + 999).min(quarter);
            db.exec(&format!(
                "UPDATE `{d}`.t SET status = 'refunded', amount = amount + 1 WHERE id BETWEEN {from} AND {to}"
            ))
            .await;
            db.exec(&format!(
                "DELETE FROM `{d}`.t WHERE id BETWEEN {} AND {}",
                inserts - to + 1,
                inserts - from + 1
            ))
            .await;
        }
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
