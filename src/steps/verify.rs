//! `verify`: compares source and destination per chunk: each source row (read like the copy
//! reads it, converted by the same mapping) against the destination row with its key
//! (BatchGetRow), by a hash of the mapped values. Whole-table runs also count destination
//! rows, which finds rows the source no longer has. AWS DMS cannot validate DynamoDB
//! targets; this does the equivalent for Tablestore.

use std::collections::BTreeSet;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::context::Context;
use super::copy::{chunk_query, pk_text, table_mapping};
use super::error::StepError;
use super::lifecycle::state_store;
use crate::mapping::convert::{row_hash, RowConverter};
use crate::mysql::chunk_reader::read_page;
use crate::mysql::{self, Conn};
use crate::state::ChunkRecord;
use crate::tablestore::read::{Direction, RangeRequest, ReadOptions};
use crate::tablestore::{PkColumn, PkValue, PrimaryKey, Row};

/// Keys listed in the output at most (the counts are always complete).
const MAX_LISTED: usize = 100;
/// BatchGetRow takes at most 100 keys.
const GET_BATCH: usize = 100;

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
}

/// Verifies one chunk, or every chunk of the plan (plus destination row counts) when `chunk`
/// is `None`.
pub async fn verify(ctx: &Context, chunk: Option<u32>) -> Result<VerifyOutput, StepError> {
    let store = state_store(ctx);
    let chunks: Vec<ChunkRecord> = match chunk {
        Some(i) => store.chunk(i).await?.into_iter().collect(),
        None => store.chunks().await?,
    };
    let mut out = VerifyOutput::default();
    let mut conn = mysql::connect_for_reading(&ctx.source).await?;
    let result = async {
        let mut per_table: Vec<(String, u64)> = Vec::new();
        for c in &chunks {
            let seen = verify_chunk(ctx, &mut conn, c, &mut out).await?;
            match per_table.iter_mut().find(|(t, _)| *t == c.table) {
                Some((_, n)) => *n += seen,
                None => per_table.push((c.table.clone(), seen)),
            }
        }
        if chunk.is_none() {
            for (table, source_rows) in per_table {
                let m = table_mapping(ctx, &mut conn, &table).await?;
                let dest = count_destination(ctx, &m.target_name, &m).await?;
                if dest > source_rows {
                    out.extra += dest - source_rows;
                    out.note(format!(
                        "{table}: destination has {dest} rows, source {source_rows}"
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
) -> Result<u64, StepError> {
    let mapping = table_mapping(ctx, conn, &chunk.table).await?;
    let converter = RowConverter::new(&mapping);
    let db = ctx.config.source.database.clone();
    let mut from_start = chunk.clone();
    from_start.cursor = None;
    let mut query = chunk_query(ctx, &mapping, &from_start)?;
    let read = ReadOptions::default();
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
        for group in expected.chunks(GET_BATCH) {
            let keys: Vec<PrimaryKey> = group.iter().map(|r| r.primary_key.clone()).collect();
            let got = ctx
                .destination
                .batch_get_row(&mapping.target_name, &keys, &read)
                .await?;
            for (want, got) in group.iter().zip(got) {
                match got.map_err(crate::tablestore::Error::Service)? {
                    None => {
                        out.missing += 1;
                        out.note(format!(
                            "{} {}: missing",
                            chunk.table,
                            pk_text(&want.primary_key)
                        ));
                    }
                    Some(row) if row_hash(&row) != row_hash(want) => {
                        out.different += 1;
                        out.note(format!(
                            "{} {}: different",
                            chunk.table,
                            pk_text(&want.primary_key)
                        ));
                    }
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

/// Rows in a destination table (keys only).
async fn count_destination(
    ctx: &Context,
    table: &str,
    m: &crate::mapping::TableMapping,
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
    let mut rows = Box::pin(ctx.destination.range_stream(table, req));
    while let Some(r) = rows.next().await {
        r?;
        n += 1;
    }
    Ok(n)
}
