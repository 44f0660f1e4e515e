//! Binlog read throughput: row events of one ~200-byte-row table (inserts, updates, deletes in
//! 1,000-row transactions) written by a private MariaDB, read back over the replication
//! protocol by `mysql::binlog::BatchReader` (as incremental migration reads) and rendered as the full copy's text rows
//! (`text_row`: what incremental migration converts), side by side in one run with
//! `mariadb-binlog --verbose --base64-output=decode-rows` decoding the same files from disk.
//! Prints row events/s for both and the reader's peak RSS.
//!
//! `cargo bench --bench binlog_read` (env BENCH_ROWS: row events, default 1000000).

mod support;

use std::time::Instant;

use support::mariadb::MariaDb;
use support::peak_rss_mb;

// The same allocator as the functions and the CLI.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = support::bench_rows(1_000_000);
    let rt = support::runtime()?;
    rt.block_on(async move {
        let db = MariaDb::start_with(&[]);
        let d = db.fresh_database("bench").await;
        db.exec(&support::create_table_sql(&d)).await;
        let opts = db.user_options();
        let start = support::position(&opts).await?;
        let load = Instant::now();
        support::write_row_events(&db, &d, rows).await;
        eprintln!("wrote {rows} row events in {:.1} s", load.elapsed().as_secs_f64());

        // 1. Our reader over the replication protocol, rows rendered as text rows.
        let t0 = Instant::now();
        let read = support::read_and_render(&opts, &d, &start).await?;
        let ours = t0.elapsed().as_secs_f64();
        assert_eq!(read.row_events, rows, "every row event read once");
        let rss = peak_rss_mb();

        // 2. mariadb-binlog over the same files, from disk.
        let files: Vec<String> = std::fs::read_dir(db.data_dir())?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("binlog.0"))
            })
            .map(|p| p.display().to_string())
            .collect();
        let t1 = Instant::now();
        let out = std::process::Command::new("mariadb-binlog")
            .args(["--verbose", "--base64-output=decode-rows"])
            .args(&files)
            .stdout(std::process::Stdio::null())
            .status()?;
        let theirs = t1.elapsed().as_secs_f64();
        assert!(out.success(), "mariadb-binlog failed");

        println!("binlog read, {rows} row events (1/2 insert, 1/4 update, 1/4 delete; 1,000-row transactions), ~200-byte rows, 2 cores shared with MariaDB");
        println!("{:<62} {:>12}", "reader", "row events/s");
        println!("{:<62} {:>12.0}", "tsmigrate BatchReader + text_row (replication protocol)", rows as f64 / ours);
        println!("{:<62} {:>12.0}", "mariadb-binlog --verbose --base64-output=decode-rows (files)", rows as f64 / theirs);
        println!("events read: {} in {} batches of <= 64 MB, text bytes rendered: {:.1} MB", read.events, read.batches, read.text_bytes as f64 / 1e6);
        println!("peak RSS of the reader: {rss:.0} MB");
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
