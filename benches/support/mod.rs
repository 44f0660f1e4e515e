//! What the bench binaries share: the private MariaDB of the integration tests, the benches'
//! table of ~200-byte rows and a row-event workload on it, a migration config into the
//! embedded server, and the peak RSS. Each bench uses a part.
#![allow(dead_code)]

#[path = "../../tests/integration/harness/mariadb.rs"]
pub mod mariadb;

use std::path::Path;

use mariadb::{MariaDb, USER, USER_PASSWORD};
use tsmigrate_core::config::{
    DestinationConfig, MigrationConfig, MigrationType, SecretRef, SecretString, SourceConfig,
    TlsMode,
};
use tsmigrate_core::steps::Context;

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
