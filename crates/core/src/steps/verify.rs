//! `verify`: compares source and destination per chunk: each source row (read like the copy
//! reads it, converted by the same mapping) against the destination row with its key
//! (BatchGetRow), by a hash of the mapped values. Whole-table runs also walk the destination
//! keys, which finds (and names) rows the source does not have. AWS DMS cannot validate
//! DynamoDB targets; this does the equivalent for Tablestore.
//!
//! In `update_row` mode the destination row may carry columns the migration does not own
//! (another writer's); only the mapped columns are compared.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::budget::Budget;
use super::context::Context;
use super::copy::{chunk_query, pk_text, table_mapping};
use super::error::StepError;
use super::lifecycle::state_store;
use crate::config::WriteMode;
use crate::mapping::convert::{row_hash, RowConverter};
use crate::mapping::TableMapping;
use crate::mysql::chunk_reader::read_page;
use crate::mysql::{self, Conn};
use crate::state::ChunkRecord;
use tablestore::read::{Direction, RangeRequest, ReadOptions};
use tablestore::{PkColumn, PkValue, PrimaryKey, Row};

/// Keys listed in the output at most (the counts are always complete).
const MAX_LISTED: usize = 100;
/// BatchGetRow takes at most 100 keys.
const GET_BATCH: usize = 100;
/// Source keys remembered per table to name extra destination rows: 8 bytes each (80 MB at
/// most). Past it, extra rows are counted (destination rows minus source rows), not named.
const MAX_KEYSET: usize = 10_000_000;

/// Source keys of one table seen by a whole-table verify, as 64-bit hashes.
#[derive(Default)]
struct KeySet {
    hashes: Vec<u64>,
    overflow: bool,
}

impl KeySet {
    fn add(&mut self, pk: &PrimaryKey) {
        if self.hashes.len() < MAX_KEYSET {
            self.hashes.push(key_hash(pk));
        } else {
            self.overflow = true;
        }
    }
}

/// A fixed-key SipHash of a mapped primary key (the same in every process).
fn key_hash(pk: &PrimaryKey) -> u64 {
    #[allow(deprecated)] // SipHasher: a stable, fixed-key hash is what we want here.
    let mut h = std::hash::SipHasher::new();
    pk.hash(&mut h);
    h.finish()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VerifyOutput {
    pub matched: u64,
    /// Source rows absent from the destination.
    pub missing: u64,
    /// Rows whose values differ.
    pub different: u64,
    /// Destination rows without a source row (whole-table runs only).
    pub extra: u64,
    /// Source rows that cannot be mapped (recorded as dirty data by the copy).
    pub dirty: u64,
    /// `table key: missing|different` (first 100), and extra-row notes.
    pub mismatched: Vec<String>,
    /// How mismatches of a live source were rechecked, if they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck: Option<String>,
    /// Every mismatch of this pass (up to [`MAX_SUSPECTS`]), for the live-source recheck.
    #[serde(skip)]
    pub(super) suspects: Suspects,
}

/// Mismatches remembered for a recheck: beyond [`MAX_SUSPECTS`] the recheck compares counts
/// only.
const MAX_SUSPECTS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Mismatch {
    Missing,
    Different,
    Extra,
}

/// One mismatching row: its table, the chunk it was read in (extra rows: none) and key hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Suspect {
    pub table: String,
    pub chunk: Option<u32>,
    pub key: u64,
    pub kind: Mismatch,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Suspects {
    pub list: Vec<Suspect>,
    pub overflow: bool,
}

impl VerifyOutput {
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.different == 0 && self.extra == 0
    }

    fn note(&mut self, s: String) {
        if self.mismatched.len() < MAX_LISTED {
            self.mismatched.push(s);
        }
    }

    /// Counts and remembers one mismatch.
    fn mismatch(&mut self, table: &str, chunk: Option<u32>, pk: &PrimaryKey, kind: Mismatch) {
        let text = format!(
            "{table} {}: {}",
            pk_text(pk),
            match kind {
                Mismatch::Missing => "missing",
                Mismatch::Different => "different",
                Mismatch::Extra => "extra (not in the source)",
            }
        );
        match kind {
            Mismatch::Missing => self.missing += 1,
            Mismatch::Different => self.different += 1,
            Mismatch::Extra => self.extra += 1,
        }
        self.note(text.clone());
        if self.suspects.list.len() < MAX_SUSPECTS {
            self.suspects.list.push(Suspect {
                table: table.to_owned(),
                chunk,
                key: key_hash(pk),
                kind,
                text,
            });
        } else {
            self.suspects.overflow = true;
        }
    }
}

/// Verifies one chunk, or every chunk of the plan (plus destination row counts) when `chunk`
/// is `None`: one comparison, as the state machine's Verify step runs it (after the full
/// copy, before the binlog replays the changes made during it).
pub async fn verify(ctx: &Context, chunk: Option<u32>) -> Result<VerifyOutput, StepError> {
    let chunks = chunks_of(ctx, chunk).await?;
    verify_pass(ctx, &chunks, chunk.is_none()).await
}

/// [`verify`] for a source that keeps changing while incremental migration runs (`tsmigrate
/// verify`): mismatches are compared again once the binlog has been applied past the first
/// comparison, and only the ones that persist are reported (`verify_recheck`).
pub async fn verify_live(ctx: &Context, chunk: Option<u32>) -> Result<VerifyOutput, StepError> {
    let chunks = chunks_of(ctx, chunk).await?;
    let first = verify_pass(ctx, &chunks, chunk.is_none()).await?;
    super::verify_recheck::recheck(ctx, &chunks, chunk.is_none(), first).await
}

/// Where a whole-plan verify spread over several invocations stands: totals so far and the
/// next chunk. The state machine hands it from one Verify call to the next (a few numbers and
/// one table name: the mismatched keys stay in each call's own output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VerifyProgress {
    #[serde(default)]
    pub next_chunk: u32,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub matched: u64,
    /// Missing, different and extra rows so far.
    #[serde(default)]
    pub mismatched: u64,
    #[serde(default)]
    pub dirty: u64,
    /// The table the last call stopped inside of, and the source rows it saw of it: a table
    /// compared over several calls has its extra destination rows counted, not named.
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub table_rows: u64,
}

/// A whole-plan [`verify`] from `progress` on, chunk by chunk until `budget` is spent.
/// Answers this call's comparison and the progress to hand to the next call.
pub async fn verify_from(
    ctx: &Context,
    mut progress: VerifyProgress,
    budget: &Budget,
) -> Result<(VerifyOutput, VerifyProgress), StepError> {
    let chunks = state_store(ctx).chunks().await?;
    let start = (progress.next_chunk as usize).min(chunks.len());
    let mut out = VerifyOutput::default();
    let mut conn = mysql::connect_for_reading(&ctx.source).await?;
    let result = async {
        // The table in progress: name, source rows seen, its keys when this call saw all.
        let mut current: Option<(String, u64, Option<KeySet>)> = progress
            .table
            .take()
            .filter(|t| chunks.get(start).is_some_and(|c| c.table == *t))
            .map(|t| (t, progress.table_rows, None));
        let mut i = start;
        while i < chunks.len() && !budget.spent(i - start) {
            let c = &chunks[i];
            if current.as_ref().is_none_or(|(t, _, _)| *t != c.table) {
                current = Some((c.table.clone(), 0, Some(KeySet::default())));
            }
            let Some((table, rows, keys)) = current.as_mut() else {
                break;
            };
            *rows += verify_chunk(ctx, &mut conn, c, &mut out, keys.as_mut()).await?;
            i += 1;
            let last_of_table = chunks.get(i).is_none_or(|n| n.table != *table);
            if last_of_table {
                let m = table_mapping(ctx, &mut conn, table).await?;
                let mut keys = keys.take().unwrap_or(KeySet {
                    hashes: Vec::new(),
                    overflow: true,
                });
                keys.hashes.sort_unstable();
                let dest = walk_destination(ctx, &m, &keys, &mut out).await?;
                if keys.overflow && dest > *rows {
                    out.extra += dest - *rows;
                    out.suspects.overflow = true;
                    out.note(format!(
                        "{table}: destination has {dest} rows, source {rows} (extra rows are \
                         counted, not named, for a table this large)"
                    ));
                }
                current = None;
            }
        }
        Ok::<_, StepError>((i, current))
    }
    .await;
    mysql::close(conn).await;
    let (next, current) = result?;
    progress.next_chunk = next as u32;
    progress.done = next >= chunks.len();
    progress.matched += out.matched;
    progress.mismatched += out.missing + out.different + out.extra;
    progress.dirty += out.dirty;
    (progress.table, progress.table_rows) = match current {
        Some((t, rows, _)) => (Some(t), rows),
        None => (None, 0),
    };
    Ok((out, progress))
}

async fn chunks_of(ctx: &Context, chunk: Option<u32>) -> Result<Vec<ChunkRecord>, StepError> {
    let store = state_store(ctx);
    Ok(match chunk {
        Some(i) => store.chunk(i).await?.into_iter().collect(),
        None => store.chunks().await?,
    })
}

/// One comparison of `chunks`; `whole` also walks the destination tables for extra rows.
pub(super) async fn verify_pass(
    ctx: &Context,
    chunks: &[ChunkRecord],
    whole: bool,
) -> Result<VerifyOutput, StepError> {
    let mut out = VerifyOutput::default();
    let mut conn = mysql::connect_for_reading(&ctx.source).await?;
    let result = async {
        // Whole-table runs remember source keys per table to name extra destination rows.
        let mut per_table: Vec<(String, u64, KeySet)> = Vec::new();
        for c in chunks {
            let i = match per_table.iter().position(|(t, _, _)| *t == c.table) {
                Some(i) => i,
                None => {
                    per_table.push((c.table.clone(), 0, KeySet::default()));
                    per_table.len() - 1
                }
            };
            let keys = if whole {
                Some(&mut per_table[i].2)
            } else {
                None
            };
            let seen = verify_chunk(ctx, &mut conn, c, &mut out, keys).await?;
            per_table[i].1 += seen;
        }
        if whole {
            for (table, source_rows, mut keys) in per_table {
                let m = table_mapping(ctx, &mut conn, &table).await?;
                keys.hashes.sort_unstable();
                let dest = walk_destination(ctx, &m, &keys, &mut out).await?;
                if keys.overflow && dest > source_rows {
                    out.extra += dest - source_rows;
                    out.suspects.overflow = true;
                    out.note(format!(
                        "{table}: destination has {dest} rows, source {source_rows} \
                         (too many rows to name the extra ones)"
                    ));
                }
            }
        }
        Ok::<_, StepError>(())
    }
    .await;
    mysql::close(conn).await;
    result?;
    Ok(out)
}

/// Returns the number of mappable source rows seen.
async fn verify_chunk(
    ctx: &Context,
    conn: &mut Conn,
    chunk: &ChunkRecord,
    out: &mut VerifyOutput,
    mut keys: Option<&mut KeySet>,
) -> Result<u64, StepError> {
    let mapping = table_mapping(ctx, conn, &chunk.table).await?;
    let converter = RowConverter::new(&mapping);
    let db = ctx.config.source.database.clone();
    let mut from_start = chunk.clone();
    from_start.cursor = None;
    let mut query = chunk_query(ctx, &mapping, &from_start)?;
    let read = ReadOptions {
        columns_to_get: owned_columns(ctx, &mapping),
        ..Default::default()
    };
    let mut seen = 0u64;
    loop {
        let page = read_page(conn, &db, &query).await?;
        let mut expected: Vec<Row> = Vec::with_capacity(page.rows.len());
        for r in &page.rows {
            match converter.to_put_row(r) {
                Ok(row) => expected.push(row),
                Err(_) => out.dirty += 1,
            }
        }
        seen += expected.len() as u64;
        if let Some(keys) = keys.as_deref_mut() {
            for r in &expected {
                keys.add(&r.primary_key);
            }
        }
        for group in expected.chunks(GET_BATCH) {
            let keys: Vec<PrimaryKey> = group.iter().map(|r| r.primary_key.clone()).collect();
            let got = ctx
                .destination
                .batch_get_row(&mapping.target_name, &keys, &read)
                .await?;
            for (want, got) in group.iter().zip(got) {
                match got.map_err(tablestore::Error::Service)? {
                    None => out.mismatch(
                        &chunk.table,
                        Some(chunk.index),
                        &want.primary_key,
                        Mismatch::Missing,
                    ),
                    Some(row) if row_hash(&row) != row_hash(want) => out.mismatch(
                        &chunk.table,
                        Some(chunk.index),
                        &want.primary_key,
                        Mismatch::Different,
                    ),
                    Some(_) => out.matched += 1,
                }
            }
        }
        let last = page.is_last(&query);
        match (last, page.last_key) {
            (false, Some(k)) => query = query.after(k),
            _ => break,
        }
    }
    Ok(seen)
}

/// The columns verify reads: all (empty list) in `overwrite_row` mode, where the migration
/// owns whole rows; the mapped ones in `update_row` mode (key columns included, so a row
/// whose mapped attributes are all NULL still comes back).
fn owned_columns(ctx: &Context, m: &TableMapping) -> Vec<String> {
    match ctx.config.write_mode {
        WriteMode::OverwriteRow => Vec::new(),
        WriteMode::UpdateRow => m.columns().map(|c| c.target_name.clone()).collect(),
    }
}

/// Walks a destination table's keys: returns its row count; rows whose key is not among the
/// source's (`keys`, sorted) are counted as extra and named.
async fn walk_destination(
    ctx: &Context,
    m: &TableMapping,
    keys: &KeySet,
    out: &mut VerifyOutput,
) -> Result<u64, StepError> {
    let bound = |v: PkValue| {
        PrimaryKey(
            m.key
                .iter()
                .map(|k| PkColumn {
                    name: k.target_name.clone(),
                    value: v.clone(),
                })
                .collect(),
        )
    };
    let key_names: BTreeSet<String> = m.key.iter().map(|k| k.target_name.clone()).collect();
    let req = RangeRequest {
        direction: Direction::Forward,
        start: bound(PkValue::InfMin),
        end: bound(PkValue::InfMax),
        limit: None,
        read: ReadOptions {
            columns_to_get: key_names.into_iter().take(1).collect(),
            ..Default::default()
        },
    };
    let mut n = 0u64;
    let mut rows = Box::pin(ctx.destination.range_stream(&m.target_name, req));
    while let Some(r) = rows.next().await {
        let row = r?;
        n += 1;
        if !keys.overflow
            && keys
                .hashes
                .binary_search(&key_hash(&row.primary_key))
                .is_err()
        {
            out.mismatch(&m.source_name, None, &row.primary_key, Mismatch::Extra);
        }
    }
    Ok(n)
}
