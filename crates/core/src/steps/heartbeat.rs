//! The heartbeat write of a binlog batch (`heartbeat.enabled`; see `mysql::heartbeat`).

use super::context::Context;
use crate::mysql::{self, Conn};

/// Upserts the migration's heartbeat row on the source, on the batch's own connection. A
/// failure is logged, not raised: the heartbeat only makes lag measurable on an idle source,
/// and the batch that follows reads the same server (a broken connection fails it there, with
/// the usual retry); precheck reports missing privileges before the migration starts.
pub async fn beat(ctx: &Context, conn: &mut Conn) {
    let hb = &ctx.config.heartbeat;
    if !hb.enabled {
        return;
    }
    let result = mysql::heartbeat::beat(
        conn,
        &ctx.config.source.database,
        &hb.table,
        &ctx.config.migration_id,
    )
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, table = %hb.table, "heartbeat not written");
    }
}
