//! `copy_chunk`: copies one primary-key range (design §5). Keyset pages are read while the
//! previous page is being written; the chunk's cursor is saved only after every write of a
//! page was acknowledged, so an interrupted copy resumes without losing or repeating work
//! (and a repeat would be harmless: writes are keyed). It stops at its time budget with
//! `done: false`; a finished chunk is skipped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::context::Context;
use super::error::{ErrorName, StepError};
use super::lifecycle::{state_store, LEASE_TTL};
use crate::config::{BatchWriteMode, DirtyDataPolicy};
use crate::mapping::convert::{select_list, RowConverter};
use crate::mapping::{map_table, TableMapping};
use crate::mysql::chunk_reader::{read_page, KeyValue, PageQuery};
use crate::mysql::{self, describe_table, Conn};
use crate::state::{unix_millis, ChunkRecord, ChunkStatus, DirtyRecord, StateStore};
use crate::throttle::Throttle;
use tablestore::batch::{BatchOptions, BatchWriter, FailedRow, WriteApi};
use tablestore::client::BatchRow;
use tablestore::{PkValue, PrimaryKey};

/// Default time budget of one invocation (Lambda allows 15 minutes; leave room to save).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOutput {
    pub chunk_index: u32,
    /// Rows copied by this chunk so far (all invocations).
    pub rows: u64,
    pub bytes: u64,
    /// Rows recorded as dirty data by this invocation.
    pub dirty: u64,
    pub done: bool,
}

pub async fn copy_chunk(
    ctx: &Context,
    index: u32,
    owner: Option<&str>,
) -> Result<CopyOutput, StepError> {
    copy_chunk_with_budget(ctx, index, owner, DEFAULT_BUDGET).await
}

/// Copies chunk `index` until it is done or `budget` has passed.
pub async fn copy_chunk_with_budget(
    ctx: &Context,
    index: u32,
    owner: Option<&str>,
    budget: Duration,
) -> Result<CopyOutput, StepError> {
    let deadline = Instant::now() + budget;
    let store = state_store(ctx);
    if let Some(owner) = owner {
        store.renew_lease(owner, LEASE_TTL).await?;
    }
    let Some(mut chunk) = store.chunk(index).await? else {
        // Past the end of the plan (a padded wave): nothing to do.
        return Ok(CopyOutput {
            chunk_index: index,
            rows: 0,
            bytes: 0,
            dirty: 0,
            done: true,
        });
    };
    if chunk.status == ChunkStatus::Done {
        return Ok(done_output(&chunk, 0));
    }
    let mut conn = mysql::connect_for_reading(&ctx.source).await?;
    let result = copy_pages(ctx, &store, &mut conn, &mut chunk, deadline).await;
    mysql::close(conn).await;
    let dirty = result?;
    Ok(CopyOutput {
        chunk_index: index,
        rows: chunk.rows,
        bytes: chunk.bytes,
        dirty,
        done: chunk.status == ChunkStatus::Done,
    })
}

fn done_output(c: &ChunkRecord, dirty: u64) -> CopyOutput {
    CopyOutput {
        chunk_index: c.index,
        rows: c.rows,
        bytes: c.bytes,
        dirty,
        done: true,
    }
}

fn key_from(v: &Option<serde_json::Value>, what: &str) -> Result<Option<KeyValue>, StepError> {
    match v {
        None => Ok(None),
        Some(j) => serde_json::from_value(j.clone()).map(Some).map_err(|e| {
            StepError::fatal(format!(
                "the chunk's {what} in the state store is unreadable ({e}); reset the plan"
            ))
        }),
    }
}

/// The mapping of `table` as the plan saw it.
pub async fn table_mapping(
    ctx: &Context,
    conn: &mut Conn,
    table: &str,
) -> Result<TableMapping, StepError> {
    let cfg = &ctx.config;
    let info = describe_table(conn, &cfg.source.database, table).await?;
    let spec = cfg.table_specs().iter().find(|s| s.name == table);
    map_table(&info, spec, cfg.name_case).map_err(|problems| {
        StepError::new(
            ErrorName::SchemaConflict,
            format!(
                "table {table} no longer maps as planned: {}",
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    })
}

/// The page query of a chunk, starting after its cursor.
pub fn chunk_query(
    ctx: &Context,
    m: &TableMapping,
    chunk: &ChunkRecord,
) -> Result<PageQuery, StepError> {
    Ok(PageQuery {
        table: m.source_name.clone(),
        columns: select_list(m, &ctx.config.float_precision),
        key: m.key.iter().map(|k| k.source.name.clone()).collect(),
        lower_exclusive: match key_from(&chunk.cursor, "cursor")? {
            Some(c) => Some(c),
            None => key_from(&chunk.lower, "lower bound")?,
        },
        upper_inclusive: key_from(&chunk.upper, "upper bound")?,
        filter: m.filter.clone(),
        limit: ctx.config.full.page_rows.max(1),
    })
}

/// Rows converted before they are handed to the writer's lanes in one go.
const HANDOFF_ROWS: usize = 1000;

async fn copy_pages(
    ctx: &Context,
    store: &StateStore,
    conn: &mut Conn,
    chunk: &mut ChunkRecord,
    deadline: Instant,
) -> Result<u64, StepError> {
    let cfg = &ctx.config;
    let mapping = table_mapping(ctx, conn, &chunk.table).await?;
    let converter = RowConverter::new(&mapping);
    let db = cfg.source.database.clone();
    let mut query = chunk_query(ctx, &mapping, chunk)?;
    let writer = BatchWriter::new(ctx.destination.clone(), writer_options(ctx));
    let t = &cfg.throttle.full;
    // Limits are per migration; up to thread_count chunks run at once (the Map's
    // MaxConcurrency), each taking an equal share.
    let mut throttle = Throttle::share_of(t.source_qps, t.rps, t.mb_per_s, cfg.writer.thread_count);
    let mut dirty = 0u64;
    if chunk.status == ChunkStatus::Pending {
        chunk.status = ChunkStatus::Running;
    }

    throttle.query().await;
    let mut page = read_page(conn, &db, &query).await?;
    let table: Arc<str> = mapping.target_name.as_str().into();
    loop {
        let last = page.is_last(&query);
        let next_query = page.last_key.clone().map(|k| query.after(k));
        let rows = page.rows.len() as u64;
        let bytes = page.bytes;
        let mut changes = Vec::with_capacity(HANDOFF_ROWS.min(page.rows.len()));
        for row in &page.rows {
            match converter.encode_change(row, cfg.write_mode) {
                Ok(change) => {
                    changes.push(BatchRow::new(table.clone(), change));
                    // Hand rows over in slices, so the lanes write while the page converts.
                    if changes.len() >= HANDOFF_ROWS {
                        let slice = std::mem::take(&mut changes);
                        writer.write_all(slice).await.map_err(StepError::from)?;
                    }
                }
                Err(e) => {
                    let key = key_text(&converter, row);
                    dirty += 1;
                    handle_dirty(
                        ctx,
                        store,
                        &mapping.source_name,
                        &key,
                        &format!("column {}: {}", e.column, e.reason),
                    )
                    .await?;
                }
            }
        }
        writer.write_all(changes).await.map_err(StepError::from)?;
        // Write this page while the next one is read.
        let read_next = async {
            match (&next_query, last) {
                (Some(q), false) => {
                    throttle.query().await;
                    read_page(conn, &db, q).await.map(Some)
                }
                _ => Ok(None),
            }
        };
        let (flushed, next_page) = tokio::join!(writer.flush(), read_next);
        let report = flushed.map_err(StepError::from)?;
        for f in &report.failed {
            dirty += 1;
            record_failed_row(ctx, store, &mapping.source_name, f).await?;
        }
        // Every write of the page is acknowledged: the cursor may move past it.
        chunk.rows += rows;
        chunk.bytes += bytes;
        if let Some(k) = &page.last_key {
            chunk.cursor =
                Some(serde_json::to_value(k).map_err(|e| StepError::fatal(e.to_string()))?);
        }
        if last || next_query.is_none() {
            chunk.status = ChunkStatus::Done;
        }
        store.save_chunk_progress(chunk).await?;
        throttle.rows_and_bytes(rows, bytes).await;
        if chunk.status == ChunkStatus::Done {
            break;
        }
        match next_page? {
            Some(p) => page = p,
            None => break,
        }
        if let Some(q) = next_query {
            query = q;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let _ = writer.close().await;
    Ok(dirty)
}

pub fn writer_options(ctx: &Context) -> BatchOptions {
    let w = &ctx.config.writer;
    BatchOptions {
        api: match ctx.config.batch_write_mode {
            BatchWriteMode::BulkImport => WriteApi::BulkImport,
            BatchWriteMode::BatchWriteRow => WriteApi::BatchWriteRow,
        },
        lanes: w.bucket_count.max(1) as usize,
        concurrency: w.concurrency.max(1) as usize,
        queue_size: w.queue_size.max(1) as usize,
        ..Default::default()
    }
}

/// A human-readable key for dirty-data records (never logged).
fn key_text(converter: &RowConverter<'_>, row: &crate::mysql::chunk_reader::SourceRow) -> String {
    match converter.primary_key(row) {
        Ok(pk) => pk_text(&pk),
        Err(_) => "(unreadable key)".into(),
    }
}

pub fn pk_text(pk: &PrimaryKey) -> String {
    pk.columns()
        .iter()
        .map(|c| match &c.value {
            PkValue::Integer(i) => format!("{}={i}", c.name),
            PkValue::String(s) => format!("{}={s:?}", c.name),
            PkValue::Binary(b) => format!(
                "{}=0x{}",
                c.name,
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
            other => format!("{}={other:?}", c.name),
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) async fn record_failed_row(
    ctx: &Context,
    store: &StateStore,
    table: &str,
    f: &FailedRow,
) -> Result<(), StepError> {
    let key = match f.row.change.primary_key() {
        Ok(pk) => pk_text(&pk),
        Err(_) => "(unreadable key)".into(),
    };
    let reason = format!(
        "destination refused the row: {} {}",
        f.error.code, f.error.message
    );
    handle_dirty(ctx, store, table, &key, &reason).await
}

/// Applies the dirty-data policy: `skip` records and counts, `block` stops the migration.
pub(super) async fn handle_dirty(
    ctx: &Context,
    store: &StateStore,
    table: &str,
    key: &str,
    reason: &str,
) -> Result<(), StepError> {
    match ctx.config.dirty_data {
        DirtyDataPolicy::Skip => {
            store
                .record_dirty(&DirtyRecord {
                    table: table.to_owned(),
                    primary_key: key.to_owned(),
                    reason: reason.to_owned(),
                    at: unix_millis(store.now()),
                })
                .await?;
            tracing::warn!(table, "dirty row skipped and recorded");
            Ok(())
        }
        DirtyDataPolicy::Block => Err(StepError::new(
            ErrorName::DirtyData,
            format!(
                "table {table}, key {key}: {reason}. Fix the row in the source or map the column to another type (columns.<name>.type), or set dirty_data to skip to record such rows and go on"
            ),
        )),
    }
}
