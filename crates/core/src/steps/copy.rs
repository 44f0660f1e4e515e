//! `copy_chunk`: copies one primary-key range (design §5). Keyset pages are read and sent
//! while up to `PAGES_IN_FLIGHT` earlier pages are being written; the chunk's cursor moves past
//! a page only after every write of it (and of every page before it) was acknowledged, so an
//! interrupted copy resumes without losing or repeating work (and a repeat would be
//! harmless: writes are keyed). It stops at its time budget with
//! `done: false`; a finished chunk is skipped.

use std::collections::VecDeque;
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
use tablestore::batch::{Ack, BatchOptions, BatchWriter, FailedRow, WriteApi};
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

/// Pages written and not yet acknowledged, per chunk. Two hide a round trip: page k+1 is read,
/// converted and sent while page k's requests are out. Memory per chunk stays under
/// (PAGES_IN_FLIGHT + 1) x `full.page_rows` rows: the pages in the writer and the one read.
const PAGES_IN_FLIGHT: usize = 2;

/// A page handed to the writer, waiting for its acknowledgement.
struct SentPage {
    ack: Ack,
    rows: u64,
    bytes: u64,
    last_key: Option<KeyValue>,
    /// The chunk ends with this page.
    last: bool,
}

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
    let mut sent: VecDeque<SentPage> = VecDeque::with_capacity(PAGES_IN_FLIGHT);
    loop {
        let last = page.is_last(&query);
        let next_query = page.last_key.clone().map(|k| query.after(k));
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
        let done = last || next_query.is_none();
        sent.push_back(SentPage {
            ack: writer.mark().await.map_err(StepError::from)?,
            rows: page.rows.len() as u64,
            bytes: page.bytes,
            last_key: page.last_key.take(),
            last: done,
        });
        drop(page);
        let next_query = match next_query {
            Some(q) if !done && Instant::now() < deadline => q,
            // The chunk is read (or the budget spent): what is sent is acknowledged below.
            _ => break,
        };
        // Read the next page while the pages sent are written; once PAGES_IN_FLIGHT are
        // out, the oldest must be acknowledged (and checkpointed) before another is sent.
        let read_next = async {
            throttle.query().await;
            read_page(conn, &db, &next_query).await
        };
        let settle = async {
            if sent.len() >= PAGES_IN_FLIGHT {
                if let Some(p) = sent.pop_front() {
                    return settle_page(ctx, store, &mapping.source_name, chunk, p)
                        .await
                        .map(Some);
                }
            }
            Ok(None)
        };
        let (next_page, settled) = tokio::join!(read_next, settle);
        if let Some((n, rows, bytes)) = settled? {
            dirty += n;
            throttle.rows_and_bytes(rows, bytes).await;
        }
        page = next_page?;
        query = next_query;
    }
    // Pages still out, oldest first: each checkpoint only after its own acknowledgement.
    while let Some(p) = sent.pop_front() {
        let (n, rows, bytes) = settle_page(ctx, store, &mapping.source_name, chunk, p).await?;
        dirty += n;
        throttle.rows_and_bytes(rows, bytes).await;
    }
    let _ = writer.close().await;
    Ok(dirty)
}

/// Waits for a sent page's acknowledgement, applies the dirty-data policy to the rows the
/// destination refused, and moves the chunk's cursor past the page. Returns the dirty rows,
/// the page's rows and bytes.
async fn settle_page(
    ctx: &Context,
    store: &StateStore,
    table: &str,
    chunk: &mut ChunkRecord,
    page: SentPage,
) -> Result<(u64, u64, u64), StepError> {
    let report = page.ack.wait().await.map_err(StepError::from)?;
    for f in &report.failed {
        record_failed_row(ctx, store, table, f).await?;
    }
    // Every write of the page (and of every page before it) is acknowledged.
    chunk.rows += page.rows;
    chunk.bytes += page.bytes;
    if let Some(k) = &page.last_key {
        chunk.cursor = Some(serde_json::to_value(k).map_err(|e| StepError::fatal(e.to_string()))?);
    }
    if page.last {
        chunk.status = ChunkStatus::Done;
    }
    store.save_chunk_progress(chunk).await?;
    Ok((report.failed.len() as u64, page.rows, page.bytes))
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
