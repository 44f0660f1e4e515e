//! What the bench binaries share: the private MariaDB of the integration tests, the benches'
//! table of ~200-byte rows and a row-event workload on it, a migration config into the
//! embedded server, and the peak RSS. Each bench uses a part.
#![allow(dead_code)]

#[path = "../../tests/integration/harness/mariadb.rs"]
pub mod mariadb;

use std::path::Path;
use std::time::Duration;

use mariadb::{MariaDb, USER, USER_PASSWORD};
use tsmigrate_core::config::{
    DestinationConfig, MigrationConfig, MigrationType, SecretRef, SecretString, SourceConfig,
    TlsMode,
};
use tsmigrate_core::mysql::binlog::{text_row, BatchReader, Bounds, Position, Stop};
use tsmigrate_core::mysql::{self, binlog_position, server_info, ConnectOptions};
use tsmigrate_core::steps::Context;

/// `BENCH_ROWS` from the environment, else `default`.
pub fn bench_rows(default: u64) -> u64 {
    std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The multi-threaded runtime every bench runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// The benches' table: BIGINT key, INT, VARCHAR, DECIMAL, VARCHAR(120), DATETIME(6).
pub fn create_table_sql(database: &str) -> String {
    format!(
        "CREATE TABLE `{database}`.t (id BIGINT PRIMARY KEY, customer INT, status VARCHAR(16), amount DECIMAL(12,2), note VARCHAR(120), created DATETIME(6))"
    )
}

/// Inserts rows `from..=to` of the benches' table in one statement.
pub fn insert_sql(database: &str, from: u64, to: u64) -> String {
    format!(
        "INSERT INTO `{database}`.t SELECT seq, seq % 10007, ELT(1 + seq % 3, 'new', 'paid', 'shipped'), (seq % 100000) / 100, REPEAT(CHAR(97 + seq % 26), 110), '2024-01-01' + INTERVAL seq SECOND FROM `{database}`.seq_{from}_to_{to}"
    )
}

/// `rows` row events on the benches' table: half inserts, a quarter updates, a quarter
/// deletes, in transactions of 1,000 rows.
pub async fn write_row_events(db: &MariaDb, database: &str, rows: u64) {
    let inserts = rows / 2;
    for from in (1..=inserts).step_by(1000) {
        db.exec(&insert_sql(database, from, (from + 999).min(inserts)))
            .await;
    }
    let quarter = rows / 4;
    for from in (1..=quarter).step_by(1000) {
        let to = (from + 999).min(quarter);
        db.exec(&format!(
            "UPDATE `{database}`.t SET status = 'refunded', amount = amount + 1 WHERE id BETWEEN {from} AND {to}"
        ))
        .await;
        db.exec(&format!(
            "DELETE FROM `{database}`.t WHERE id BETWEEN {} AND {}",
            inserts - to + 1,
            inserts - from + 1
        ))
        .await;
    }
}

/// A migration of `database` into the embedded server in `dir` (started here, as the CLI
/// does), with `types`, and its context.
pub async fn embedded_migration(
    db: &MariaDb,
    database: &str,
    dir: &Path,
    types: Vec<MigrationType>,
    adjust: impl FnOnce(&mut MigrationConfig),
) -> Result<Context, Box<dyn std::error::Error>> {
    let mut source = SourceConfig::new(
        "127.0.0.1",
        USER,
        SecretRef::Literal(SecretString::new(USER_PASSWORD)),
        database,
    );
    source.port = db.port();
    source.tls = TlsMode::Disabled;
    let dest = DestinationConfig::new(
        format!("embedded:{}", dir.display()),
        "local",
        SecretRef::Literal(SecretString::new("local-ak")),
        SecretRef::Literal(SecretString::new("local-secret")),
    );
    let mut cfg = MigrationConfig::new("bench", source, dest);
    cfg.migration_types = types;
    adjust(&mut cfg);
    let secrets = cfg.detach_literal_secrets();
    tsmigrate::cli::embedded::resolve(&mut cfg, &secrets).await?;
    Ok(Context::new(cfg, &secrets).await?)
}

/// This process's peak resident set (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    peak_rss_mb_of("self")
}

/// The peak resident set (VmHWM) of process `pid` (`"self"`: this one), in MB.
pub fn peak_rss_mb_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// CPU time (user + system) process `pid` (`"self"`: this one) has used so far, in seconds;
/// 0 when /proc cannot tell. Benches divide its growth by rows to compare CPU per row across
/// processes, a figure the load of a shared machine moves far less than wall clock.
pub fn cpu_seconds_of(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            // SAFETY: sysconf reads a constant of the running system.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
            Some(ticks / hz.max(1.0))
        })
        .unwrap_or(0.0)
}

/// The source's binlog position now (where a workload written next begins).
pub async fn position(opts: &ConnectOptions) -> Result<Position, Box<dyn std::error::Error>> {
    let mut conn = mysql::connect(opts).await?;
    let info = server_info(&mut conn).await?;
    let p = binlog_position(&mut conn, &info).await?;
    mysql::close(conn).await;
    Ok(Position {
        file: p.file,
        pos: p.pos,
    })
}

/// What [`read_and_render`] read.
pub struct ReadFigures {
    pub row_events: u64,
    pub events: u64,
    pub batches: u64,
    pub text_bytes: u64,
}

/// Reads `database`'s row events from `start` to the end of the log over the replication
/// protocol, in batches of 64 MB (the default `incremental.max_bytes`) as incremental
/// migration reads them, and renders every image as the full copy's text row (what
/// incremental migration converts).
pub async fn read_and_render(
    opts: &ConnectOptions,
    database: &str,
    start: &Position,
) -> Result<ReadFigures, Box<dyn std::error::Error>> {
    let columns = ["id", "customer", "status", "amount", "note", "created"];
    let bounds = Bounds {
        max_events: u64::MAX,
        max_bytes: 64 << 20,
        max_duration: Duration::from_secs(3600),
        max_transaction_bytes: 256 << 20,
        deadline: None,
    };
    let mut f = ReadFigures {
        row_events: 0,
        events: 0,
        batches: 0,
        text_bytes: 0,
    };
    let mut at = start.clone();
    loop {
        let db_name = database.to_owned();
        let mut reader = BatchReader::open(
            opts,
            4242,
            &at,
            bounds.clone(),
            Box::new(move |x, _| x == db_name),
        )
        .await?;
        while let Some(tx) = reader.next().await? {
            for c in &tx.changes {
                for image in [&c.before, &c.after].into_iter().flatten() {
                    let row = text_row(image, &c.table, &columns).map_err(|e| format!("{e:?}"))?;
                    f.text_bytes += row.iter().flatten().map(|v| v.len() as u64).sum::<u64>();
                }
                f.row_events += 1;
            }
        }
        let batch = reader.close().await;
        f.events += batch.events;
        f.batches += 1;
        at = batch.end.clone();
        if batch.stop == Stop::EndOfLog {
            return Ok(f);
        }
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`): printed next to wall-clock
/// figures taken on a shared machine.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
