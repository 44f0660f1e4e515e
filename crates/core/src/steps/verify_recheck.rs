//! Verify on a live source: while incremental migration runs, a row changed on the source
//! reaches the destination only when its binlog batch is applied, so a first comparison sees
//! "mismatches" that are just lag. Those are compared again once the binlog checkpoint has
//! passed the source's log position at the end of the first comparison (every change the
//! first pass could have read is applied by then); only keys that mismatch both times are
//! reported. A key that changes continuously can mismatch twice; that is rare and says so.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::context::Context;
use super::error::StepError;
use super::lifecycle::state_store;
use super::verify::{verify_pass, Mismatch, VerifyOutput};
use crate::config::MigrationType;
use crate::mysql::{self, BinlogPosition};
use crate::state::ChunkRecord;

/// How often the checkpoint is read while waiting.
const POLL: Duration = Duration::from_secs(1);

pub(super) async fn recheck(
    ctx: &Context,
    chunks: &[ChunkRecord],
    whole: bool,
    mut first: VerifyOutput,
) -> Result<VerifyOutput, StepError> {
    if first.is_clean() || !ctx.config.has(MigrationType::Incremental) {
        return Ok(first);
    }
    let store = state_store(ctx);
    if store.checkpoint().await?.is_none() {
        return Ok(first);
    }
    let target = source_position(ctx).await?;
    let inc = &ctx.config.incremental;
    let wait = Duration::from_secs(
        (2 * u64::from(inc.max_seconds) + u64::from(inc.idle_wait_seconds)).max(60),
    );
    let started = Instant::now();
    loop {
        let cp = store.checkpoint().await?;
        if cp
            .as_ref()
            .is_some_and(|c| (c.file.as_str(), c.pos) >= (target.file.as_str(), target.pos))
        {
            break;
        }
        if started.elapsed() >= wait {
            first.recheck = Some(format!(
                "not rechecked: the binlog was not applied up to {target} within {} s (is the \
                 incremental migration running?); mismatches may be changes not applied yet",
                wait.as_secs()
            ));
            return Ok(first);
        }
        tokio::time::sleep(POLL).await;
    }

    // What to compare again: the chunks holding mismatches; whole tables (every chunk and the
    // destination walk) where extra rows were found, since the walk needs all source keys.
    let suspects = first.suspects.clone();
    let walk_tables: HashSet<&str> = suspects
        .list
        .iter()
        .filter(|s| s.kind == Mismatch::Extra)
        .map(|s| s.table.as_str())
        .collect();
    let walk = whole && (suspects.overflow || !walk_tables.is_empty());
    let again: Vec<ChunkRecord> = chunks
        .iter()
        .filter(|c| {
            suspects.overflow
                || walk_tables.contains(c.table.as_str())
                || suspects.list.iter().any(|s| s.chunk == Some(c.index))
        })
        .cloned()
        .collect();
    let walk = walk
        && again
            .iter()
            .all(|c| suspects.overflow || walk_tables.contains(c.table.as_str()));
    let second = verify_pass(ctx, &again, walk).await?;

    if suspects.overflow || second.suspects.overflow {
        let mut out = second;
        out.matched += first.matched;
        out.recheck = Some(format!(
            "rechecked after the binlog was applied up to {target}: too many mismatches to \
             compare key by key; the counts are the second comparison's"
        ));
        return Ok(out);
    }
    let before: HashSet<(&str, u64)> = suspects
        .list
        .iter()
        .map(|s| (s.table.as_str(), s.key))
        .collect();
    let persistent: Vec<_> = second
        .suspects
        .list
        .iter()
        .filter(|s| before.contains(&(s.table.as_str(), s.key)))
        .cloned()
        .collect();
    let count = |k: Mismatch| persistent.iter().filter(|s| s.kind == k).count() as u64;
    let mut out = VerifyOutput {
        missing: count(Mismatch::Missing),
        different: count(Mismatch::Different),
        extra: count(Mismatch::Extra),
        dirty: first.dirty,
        mismatched: persistent
            .iter()
            .take(100)
            .map(|s| s.text.clone())
            .collect(),
        ..Default::default()
    };
    // Rows first seen missing or different that now match are matches.
    let resolved = (first.missing + first.different).saturating_sub(out.missing + out.different);
    out.matched = first.matched + resolved;
    out.recheck = Some(format!(
        "rechecked {} mismatch(es) of the first comparison after the binlog was applied up to \
         {target}: {} persist",
        suspects.list.len(),
        persistent.len()
    ));
    out.suspects.list = persistent;
    Ok(out)
}

async fn source_position(ctx: &Context) -> Result<BinlogPosition, StepError> {
    let mut conn = mysql::connect(&ctx.source).await?;
    let pos = match mysql::server_info(&mut conn).await {
        Ok(info) => mysql::binlog_position(&mut conn, &info).await,
        Err(e) => Err(e),
    };
    mysql::close(conn).await;
    Ok(pos?)
}
