//! `plan_chunks`: splits every table into primary-key ranges of about `full.chunk_rows` rows
//! (design §5, §6), stores the plan, and hands the state machine one wave at a time.
//!
//! Single integer keys are split by value between the key's min and max (one cheap query; a
//! skewed key gives uneven but still bounded ranges, and a large chunk simply takes several
//! CopyChunk invocations). Other keys (strings, composites) are split by walking the key
//! index. The first chunk of a table has no lower bound and the last no upper bound, so rows
//! inserted outside the planned range are still copied. An existing plan is kept (resume).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::budget::Budget;
use super::context::Context;
use super::error::{ErrorName, StepError};
use super::lifecycle::{set_phase, state_store};
use super::objects;
use crate::mapping::types::Family;
use crate::mapping::TableMapping;
use crate::mysql::chunk_reader::{key_bounds, split_points, KeyValue, SqlValue};
use crate::mysql::{self, Conn};
use crate::state::{unix_millis, ChunkRecord, ChunkStatus, PlanDraft, StateError, StateStore};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOutput {
    /// The plan is complete. `false`: planning stopped before the invocation's deadline with
    /// its progress in the state store (`plan_draft`); call again (the wave fields are 0).
    pub done: bool,
    /// Chunks in this wave (the Map's item count).
    pub chunk_count: u32,
    /// Index of the wave's first chunk; item i copies chunk `wave_start + i`.
    pub wave_start: u32,
    pub total_chunks: u32,
    /// Chunks remain after this wave: the execution continues as new.
    pub more_waves: bool,
}

/// Plans (once) and returns the next wave: the first unfinished chunk onwards, at most
/// `full.chunks_per_execution` chunks. Finished chunks inside a wave are skipped by CopyChunk.
pub async fn plan_chunks(ctx: &Context) -> Result<PlanOutput, StepError> {
    plan_chunks_until(ctx, &Budget::unlimited()).await
}

/// [`plan_chunks`], planning tables until `budget` is spent (`done: false` then).
pub async fn plan_chunks_until(ctx: &Context, budget: &Budget) -> Result<PlanOutput, StepError> {
    let store = state_store(ctx);
    let total = match store.plan().await? {
        Some(p) => p.chunk_count,
        None => match plan_some(ctx, &store, budget).await? {
            Some(total) => total,
            None => {
                return Ok(PlanOutput {
                    done: false,
                    chunk_count: 0,
                    wave_start: 0,
                    total_chunks: 0,
                    more_waves: false,
                });
            }
        },
    };
    let next = store.next_unfinished_chunks(1).await?;
    let wave_start = next.first().map(|c| c.index).unwrap_or(total);
    let per_wave = ctx.config.full.chunks_per_execution.max(1);
    let chunk_count = (total - wave_start.min(total)).min(per_wave);
    set_phase(&store, "full", None, None).await?;
    Ok(PlanOutput {
        done: true,
        chunk_count,
        wave_start,
        total_chunks: total,
        more_waves: wave_start + chunk_count < total,
    })
}

/// Plans the tables the draft does not have yet, until `budget` is spent; commits the plan
/// when every table is planned and answers its chunk count (`None`: call again).
async fn plan_some(
    ctx: &Context,
    store: &StateStore,
    budget: &Budget,
) -> Result<Option<u32>, StepError> {
    let mut conn = mysql::connect_for_reading(&ctx.source).await?;
    let result = plan_tables(ctx, store, &mut conn, budget).await;
    mysql::close(conn).await;
    let Some(draft) = result? else {
        return Ok(None);
    };
    match store
        .commit_plan_draft(&draft, unix_millis(store.now()))
        .await
    {
        Ok(plan) => {
            tracing::info!(chunks = plan.chunk_count, "chunk plan created");
            Ok(Some(plan.chunk_count))
        }
        // Another invocation planned first: keep its plan.
        Err(StateError::PlanConflict { .. }) => match store.plan().await? {
            Some(p) => Ok(Some(p.chunk_count)),
            None => Err(StepError::new(
                ErrorName::Transient,
                "the chunk plan vanished; run the step again",
            )),
        },
        Err(e) => Err(e.into()),
    }
}

/// Extends the plan draft by the next tables; answers the complete draft once every selected
/// table is in it.
async fn plan_tables(
    ctx: &Context,
    store: &StateStore,
    conn: &mut Conn,
    budget: &Budget,
) -> Result<Option<PlanDraft>, StepError> {
    let cfg = &ctx.config;
    let selected = objects::select(conn, cfg).await?;
    let mappings = objects::usable_mappings(&selected, cfg)?;
    let mut draft = store.plan_draft().await?;
    // The draft must be a prefix of this selection, in order; otherwise (tables added or
    // dropped since it was started) plan again from the first table.
    if let Some(d) = &draft {
        let fits = d.tables.len() <= mappings.len()
            && d.tables
                .iter()
                .zip(&mappings)
                .all(|(t, m)| *t == m.source_name);
        if !fits {
            tracing::warn!("the selected tables changed since planning began; planning again");
            store.discard_plan_draft().await?;
            draft = None;
        }
    }
    let start = draft.as_ref().map_or(0, |d| d.tables.len());
    let mut next_index = draft.as_ref().map_or(0, |d| d.chunk_count);
    let mut tables = Vec::new();
    let mut chunks = Vec::new();
    for (done, m) in mappings[start..].iter().enumerate() {
        if budget.spent(done) {
            break;
        }
        tables.push(m.source_name.clone());
        for (lower, upper) in table_ranges(ctx, conn, m).await? {
            chunks.push(ChunkRecord {
                index: next_index,
                table: m.source_name.clone(),
                lower: lower.map(key_json).transpose()?,
                upper: upper.map(key_json).transpose()?,
                cursor: None,
                rows: 0,
                bytes: 0,
                status: ChunkStatus::Pending,
            });
            next_index += 1;
        }
    }
    let all = start + tables.len() == mappings.len();
    if tables.is_empty() && draft.is_some() {
        return Ok(draft.filter(|_| all));
    }
    let Some(next) = store
        .extend_plan_draft(draft.as_ref(), &tables, &chunks)
        .await?
    else {
        return Err(StepError::new(
            ErrorName::Transient,
            "another invocation is planning this migration's chunks at the same time; run the \
             step again",
        ));
    };
    tracing::info!(
        tables = next.tables.len(),
        chunks = next.chunk_count,
        left = mappings.len() - next.tables.len(),
        "planned tables"
    );
    Ok(Some(next).filter(|_| all))
}

fn key_json(k: KeyValue) -> Result<Value, StepError> {
    serde_json::to_value(k)
        .map_err(|e| StepError::fatal(format!("cannot store a chunk bound: {e}")))
}

type Range = (Option<KeyValue>, Option<KeyValue>);

/// The key ranges of one table: `(lower exclusive, upper inclusive)`, `None` = open.
async fn table_ranges(
    ctx: &Context,
    conn: &mut Conn,
    m: &TableMapping,
) -> Result<Vec<Range>, StepError> {
    let db = &ctx.config.source.database;
    let key: Vec<String> = m.key.iter().map(|k| k.source.name.clone()).collect();
    let chunk_rows = ctx.config.full.chunk_rows.max(1);
    if m.row_estimate <= chunk_rows {
        return Ok(vec![(None, None)]);
    }
    let n = chunk_count(m.row_estimate, chunk_rows, ctx.config.writer.thread_count);
    let step = m.row_estimate.div_ceil(n);
    let bounds: Vec<KeyValue> = if key.len() == 1 && m.key[0].family == Family::Integer {
        match key_bounds(conn, db, &m.source_name, &key).await? {
            None => Vec::new(),
            Some((min, max)) => integer_splits(&min, &max, n),
        }
    } else {
        split_points(conn, db, &m.source_name, &key, None, step, 100_000).await?
    };
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for b in bounds {
        ranges.push((lower.take(), Some(b.clone())));
        lower = Some(b);
    }
    ranges.push((lower, None));
    Ok(ranges)
}

/// Chunks for a table of `rows` rows: at most `chunk_rows` each, and a multiple of the
/// `threads` chunks copied at once, so the table's last wave keeps every thread busy (5 chunks
/// on 4 threads would end with one chunk copied alone, the others idle).
fn chunk_count(rows: u64, chunk_rows: u64, threads: u32) -> u64 {
    let n = rows.div_ceil(chunk_rows.max(1)).max(1);
    let t = u64::from(threads.max(1));
    if n == 1 {
        1
    } else {
        n.div_ceil(t) * t
    }
}

/// `n - 1` evenly spaced boundaries strictly between min and max of an integer key.
fn integer_splits(min: &KeyValue, max: &KeyValue, n: u64) -> Vec<KeyValue> {
    let as_i128 = |k: &KeyValue| match k.0.first() {
        Some(SqlValue::Int(v)) => Some(i128::from(*v)),
        Some(SqlValue::UInt(v)) => Some(i128::from(*v)),
        _ => None,
    };
    let (Some(lo), Some(hi)) = (as_i128(min), as_i128(max)) else {
        return Vec::new();
    };
    let unsigned = matches!(min.0.first(), Some(SqlValue::UInt(_)));
    let n = i128::from(n.max(1));
    let span = hi - lo;
    let mut out: Vec<KeyValue> = Vec::new();
    for i in 1..n {
        let b = lo + span * i / n;
        if b <= lo || b >= hi || out.last().is_some_and(|l| as_i128(l) == Some(b)) {
            continue;
        }
        let v = if unsigned {
            u64::try_from(b).map(SqlValue::UInt)
        } else {
            i64::try_from(b).map(SqlValue::Int)
        };
        if let Ok(v) = v {
            out.push(KeyValue(vec![v]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_counts_fill_the_last_wave() {
        // 1M rows of 200k chunks on 4 threads: 8 chunks of 125k, not 4 + 1 alone.
        assert_eq!(chunk_count(1_000_000, 200_000, 4), 8);
        assert_eq!(chunk_count(800_000, 200_000, 4), 4);
        assert_eq!(chunk_count(150_000, 200_000, 4), 1);
        assert_eq!(chunk_count(250_000, 200_000, 1), 2);
        assert_eq!(chunk_count(250_000, 200_000, 0), 2);
        assert_eq!(chunk_count(5, 0, 3), 6);
    }

    #[test]
    fn integer_splits_are_strictly_inside_and_increasing() {
        let k = |v: i64| KeyValue(vec![SqlValue::Int(v)]);
        let s = integer_splits(&k(1), &k(1000), 4);
        assert_eq!(s, vec![k(250), k(500), k(750)]);
        assert!(integer_splits(&k(5), &k(6), 10).is_empty());
        let u = |v: u64| KeyValue(vec![SqlValue::UInt(v)]);
        let s = integer_splits(&u(0), &u(u64::MAX), 2);
        assert_eq!(s, vec![u(u64::MAX / 2)]);
    }
}
