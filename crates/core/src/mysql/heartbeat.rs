//! The heartbeat (`heartbeat.enabled`): before each binlog batch, one row per migration in a
//! small table on the source is upserted with the source's UTC time. The write goes through
//! the binlog like any other, so an idle source still produces a recent commit for the batch
//! to read: lag stays measurable (and the checkpoint keeps moving, so a purge cannot overtake
//! an idle migration). The table is never migrated (`objects` leaves it out of `"*"`).

use mysql_async::prelude::Queryable;

use super::connect::{quote_ident, Conn};
use super::error::SourceError;

/// MySQL's "table doesn't exist".
const ER_NO_SUCH_TABLE: u16 = 1146;

/// The heartbeat table's definition: one row per migration.
pub fn create_sql(database: &str, table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (migration_id VARCHAR(64) NOT NULL PRIMARY KEY, \
         beat_at DATETIME(6) NOT NULL) COMMENT 'tsmigrate heartbeat: safe to drop after the \
         migration'",
        quote_ident(database),
        quote_ident(table)
    )
}

/// Upserts `migration_id`'s heartbeat row, creating the table the first time.
pub async fn beat(
    conn: &mut Conn,
    database: &str,
    table: &str,
    migration_id: &str,
) -> Result<(), SourceError> {
    let upsert = format!(
        "INSERT INTO {}.{} (migration_id, beat_at) VALUES (?, UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE beat_at = VALUES(beat_at)",
        quote_ident(database),
        quote_ident(table)
    );
    let context = "writing the heartbeat row (heartbeat.enabled)";
    match conn.exec_drop(&upsert, (migration_id,)).await {
        Ok(()) => Ok(()),
        Err(mysql_async::Error::Server(e)) if e.code == ER_NO_SUCH_TABLE => {
            conn.query_drop(create_sql(database, table))
                .await
                .map_err(|e| SourceError::from_mysql("creating the heartbeat table", e))?;
            conn.exec_drop(&upsert, (migration_id,))
                .await
                .map_err(|e| SourceError::from_mysql(context, e))
        }
        Err(e) => Err(SourceError::from_mysql(context, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_quotes_names() {
        let sql = create_sql("app`db", "hb");
        assert!(
            sql.starts_with("CREATE TABLE IF NOT EXISTS `app``db`.`hb` ("),
            "{sql}"
        );
    }
}
