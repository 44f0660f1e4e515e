//! The heartbeat write of a binlog batch (`heartbeat.enabled`; see `mysql::heartbeat`).

use super::context::Context;
use crate::mysql;

/// Upserts the migration's heartbeat row on the source. A failure is logged, not raised: the
/// heartbeat only makes lag measurable on an idle source, and the batch that follows reads
/// the same server (a broken connection fails it there, with the usual retry); precheck
/// reports missing privileges before the migration starts.
pub async fn beat(ctx: &Context) {
    let hb = &ctx.config.heartbeat;
    if !hb.enabled {
        return;
    }
    let result = match mysql::connect(&ctx.source).await {
        Ok(mut conn) => {
            let r = mysql::heartbeat::beat(
                &mut conn,
                &ctx.config.source.database,
                &hb.table,
                &ctx.config.migration_id,
            )
            .await;
            mysql::close(conn).await;
            r
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, table = %hb.table, "heartbeat not written");
    }
}
