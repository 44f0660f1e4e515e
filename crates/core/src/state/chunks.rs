//! The chunk plan of the full copy: the `plan` row and one `chunk/<n>` row per chunk.
//!
//! [`StateStore::create_plan`] writes every chunk row, then the plan row with
//! `EXPECT_NOT_EXIST`: the plan row is the commit point. Every row of one plan carries the
//! same random `plan_id`, so chunk rows left by a crashed planning attempt (overwritten by
//! the next attempt anyway) are never mistaken for the committed plan's.

use serde::{Deserialize, Serialize};

use super::columns::{json_cell, to_i64, Cols};
use super::{condition_failed, prefix_end, StateError, StateStore};
use tablestore::{
    Cell, CellOp, ColumnCondition, Comparator, Condition, Row, RowChange, RowExistence, Value,
};

const PLAN_KEY: &str = "plan";
const CHUNK_PREFIX: &str = "chunk/";
/// Chunk numbers have six digits so key order is index order.
pub const MAX_CHUNK_INDEX: u32 = 999_999;

/// The committed chunk plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub chunk_count: u32,
    /// Source tables covered by the plan.
    pub tables: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// Progress of one chunk.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ChunkStatus {
    #[default]
    Pending,
    Running,
    Done,
}

impl ChunkStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkStatus::Pending => "pending",
            ChunkStatus::Running => "running",
            ChunkStatus::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(ChunkStatus::Pending),
            "running" => Some(ChunkStatus::Running),
            "done" => Some(ChunkStatus::Done),
            _ => None,
        }
    }
}

/// One primary-key range of one table, and how far its copy got. Bounds and cursor are opaque
/// to the store (the caller's key encoding).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChunkRecord {
    pub index: u32,
    pub table: String,
    /// Exclusive lower bound; `None` = from the start of the table.
    pub lower: Option<serde_json::Value>,
    /// Inclusive upper bound; `None` = to the end of the table.
    pub upper: Option<serde_json::Value>,
    /// Last key copied (exclusive resume point); `None` = nothing copied yet.
    pub cursor: Option<serde_json::Value>,
    pub rows: u64,
    pub bytes: u64,
    pub status: ChunkStatus,
}

impl ChunkRecord {
    /// A pending chunk with no progress.
    pub fn new(
        index: u32,
        table: impl Into<String>,
        lower: Option<serde_json::Value>,
        upper: Option<serde_json::Value>,
    ) -> Self {
        ChunkRecord {
            index,
            table: table.into(),
            lower,
            upper,
            cursor: None,
            rows: 0,
            bytes: 0,
            status: ChunkStatus::Pending,
        }
    }
}

fn chunk_key(index: u32) -> String {
    format!("{CHUNK_PREFIX}{index:06}")
}

pub(super) fn check_index(index: u32) -> Result<(), StateError> {
    if index > MAX_CHUNK_INDEX {
        return Err(StateError::Invalid(format!(
            "chunk index {index} is above {MAX_CHUNK_INDEX}: use larger chunks (full.chunk_rows)"
        )));
    }
    Ok(())
}

pub(super) fn new_plan_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

impl StateStore {
    /// The committed plan, if any.
    pub async fn plan(&self) -> Result<Option<Plan>, StateError> {
        Ok(self.plan_with_id().await?.map(|(p, _)| p))
    }

    async fn plan_with_id(&self) -> Result<Option<(Plan, String)>, StateError> {
        let Some(row) = self.get(PLAN_KEY).await? else {
            return Ok(None);
        };
        let c = Cols::new(&row);
        Ok(Some((
            Plan {
                chunk_count: c.u32("chunk_count")?,
                tables: c.json("tables")?,
                created_at: c.int("created_at")?,
            },
            c.str("plan_id")?.to_owned(),
        )))
    }

    /// Stores a new plan: every chunk row (BatchWriteRow, ≤ 200 per call), then the plan row.
    /// `chunks` must be numbered `0..plan.chunk_count` in order. An existing plan is kept and
    /// answered with [`StateError::PlanConflict`]: resume it, never replace it silently.
    pub async fn create_plan(&self, plan: &Plan, chunks: &[ChunkRecord]) -> Result<(), StateError> {
        if chunks.len() != plan.chunk_count as usize {
            return Err(StateError::Invalid(format!(
                "the plan says {} chunks but {} chunk records were given",
                plan.chunk_count,
                chunks.len()
            )));
        }
        for (i, c) in chunks.iter().enumerate() {
            check_index(c.index)?;
            if c.index as usize != i {
                return Err(StateError::Invalid(format!(
                    "chunk records must be numbered 0, 1, 2, … in order; record {i} has index {}",
                    c.index
                )));
            }
        }
        if let Some(existing) = self.plan().await? {
            return Err(self.plan_conflict(&existing));
        }
        let plan_id = new_plan_id();
        // Chunk rows a crashed attempt left beyond this plan's end would confuse nobody (reads
        // stop at chunk_count), but they would linger: delete them.
        self.delete_chunks_from(plan.chunk_count).await?;
        let changes = self.chunk_changes(chunks, &plan_id)?;
        self.write_rows(changes).await?;
        self.commit_plan_row(plan, &plan_id).await
    }

    /// Deletes the chunk rows numbered `from` and above (left by an unfinished planning
    /// attempt).
    pub(super) async fn delete_chunks_from(&self, from: u32) -> Result<(), StateError> {
        let mut stale = Vec::new();
        self.scan(
            &chunk_key(from),
            &prefix_end(CHUNK_PREFIX),
            vec!["plan_id".into()],
            None,
            |row| {
                stale.push(RowChange::Delete(row.primary_key));
                Ok(true)
            },
        )
        .await?;
        if !stale.is_empty() {
            tracing::info!(
                migration = %self.migration_id,
                rows = stale.len(),
                "deleting chunk rows left by an unfinished planning attempt"
            );
            self.write_rows(stale).await?;
        }
        Ok(())
    }

    /// The rows of `chunks`, stamped with `plan_id`.
    pub(super) fn chunk_changes(
        &self,
        chunks: &[ChunkRecord],
        plan_id: &str,
    ) -> Result<Vec<RowChange>, StateError> {
        let now = self.now_ms();
        let mut changes = Vec::with_capacity(chunks.len());
        for c in chunks {
            check_index(c.index)?;
            let mut cells = vec![
                Cell::new("index", i64::from(c.index)),
                Cell::new("table", c.table.as_str()),
                Cell::new("rows", to_i64("chunk rows", c.rows)?),
                Cell::new("bytes", to_i64("chunk bytes", c.bytes)?),
                Cell::new("status", c.status.as_str()),
                Cell::new("plan_id", plan_id),
                Cell::new("updated_at", now),
            ];
            if let Some(v) = &c.lower {
                cells.push(json_cell("lower", v)?);
            }
            if let Some(v) = &c.upper {
                cells.push(json_cell("upper", v)?);
            }
            if let Some(v) = &c.cursor {
                cells.push(json_cell("cursor", v)?);
            }
            changes.push(RowChange::Put(self.row(&chunk_key(c.index), cells)));
        }
        Ok(changes)
    }

    /// Writes the plan row (the commit point) once its chunk rows are written; recognises its
    /// own write when the client retried it.
    pub(super) async fn commit_plan_row(
        &self,
        plan: &Plan,
        plan_id: &str,
    ) -> Result<(), StateError> {
        let plan_row = self.row(
            PLAN_KEY,
            vec![
                Cell::new("chunk_count", i64::from(plan.chunk_count)),
                json_cell("tables", &plan.tables)?,
                Cell::new("created_at", plan.created_at),
                Cell::new("plan_id", plan_id),
            ],
        );
        match self
            .client
            .put_row(
                &self.table,
                &plan_row,
                &Condition::expect(RowExistence::ExpectNotExist),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if condition_failed(&e) => match self.plan_with_id().await? {
                // Our own write, applied before the client retried it.
                Some((_, id)) if id == plan_id => {}
                Some((existing, _)) => {
                    tracing::warn!(
                        migration = %self.migration_id,
                        "another execution committed a chunk plan concurrently"
                    );
                    return Err(self.plan_conflict(&existing));
                }
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
        tracing::info!(
            migration = %self.migration_id,
            chunks = plan.chunk_count,
            tables = plan.tables.len(),
            "created the chunk plan"
        );
        Ok(())
    }

    /// One chunk of the plan (`None` when there is no such chunk row).
    pub async fn chunk(&self, index: u32) -> Result<Option<ChunkRecord>, StateError> {
        check_index(index)?;
        match self.get(&chunk_key(index)).await? {
            None => Ok(None),
            Some(row) => Ok(Some(decode_chunk(&row)?.0)),
        }
    }

    /// Stores a chunk's progress: cursor, rows, bytes and status (its table and bounds are
    /// the plan's and stay as they are). The chunk must exist, else
    /// [`StateError::ChunkNotFound`]. Saving the same progress twice is harmless.
    pub async fn save_chunk_progress(&self, chunk: &ChunkRecord) -> Result<(), StateError> {
        check_index(chunk.index)?;
        let cursor = match &chunk.cursor {
            Some(v) => CellOp::Put(json_cell("cursor", v)?),
            None => CellOp::DeleteAllVersions {
                name: "cursor".into(),
            },
        };
        let ops = vec![
            cursor,
            CellOp::Put(Cell::new("rows", to_i64("chunk rows", chunk.rows)?)),
            CellOp::Put(Cell::new("bytes", to_i64("chunk bytes", chunk.bytes)?)),
            CellOp::Put(Cell::new("status", chunk.status.as_str())),
            CellOp::Put(Cell::new("updated_at", self.now_ms())),
        ];
        match self
            .client
            .update_row(
                &self.table,
                &self.pk(&chunk_key(chunk.index)),
                &ops,
                &Condition::expect(RowExistence::ExpectExist),
            )
            .await
        {
            Ok(()) => {
                tracing::debug!(
                    migration = %self.migration_id,
                    chunk = chunk.index,
                    rows = chunk.rows,
                    status = chunk.status.as_str(),
                    "saved chunk progress"
                );
                Ok(())
            }
            Err(e) if condition_failed(&e) => Err(StateError::ChunkNotFound {
                migration_id: self.migration_id.clone(),
                index: chunk.index,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Every chunk of the committed plan, in index order (empty when there is no plan).
    pub async fn chunks(&self) -> Result<Vec<ChunkRecord>, StateError> {
        let Some((plan, plan_id)) = self.plan_with_id().await? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<ChunkRecord> = Vec::with_capacity(plan.chunk_count as usize);
        self.scan(
            &chunk_key(0),
            &chunk_key(plan.chunk_count),
            vec![],
            None,
            |row| {
                let (chunk, id) = decode_chunk(&row)?;
                check_plan_id(&row, &id, &plan_id)?;
                if chunk.index as usize != out.len() {
                    return Err(StateError::corrupt(
                        &chunk_key(out.len() as u32),
                        "this chunk row of the plan is missing",
                    ));
                }
                out.push(chunk);
                Ok(true)
            },
        )
        .await?;
        if out.len() != plan.chunk_count as usize {
            return Err(StateError::corrupt(
                &chunk_key(out.len() as u32),
                format!(
                    "the plan has {} chunks but only {} chunk rows exist",
                    plan.chunk_count,
                    out.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Up to `limit` chunks that are not done (pending, or running when an earlier wave
    /// stopped), in index order: the next wave (design §6). Empty when there is no plan or
    /// every chunk is done.
    pub async fn next_unfinished_chunks(
        &self,
        limit: usize,
    ) -> Result<Vec<ChunkRecord>, StateError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some((plan, plan_id)) = self.plan_with_id().await? else {
            return Ok(Vec::new());
        };
        let filter = ColumnCondition::Single {
            column: "status".into(),
            comparator: Comparator::NotEqual,
            value: Value::String(ChunkStatus::Done.as_str().into()),
            // A row without status is corrupt: let decoding report it.
            pass_if_missing: true,
            latest_version_only: true,
        };
        let mut out = Vec::new();
        self.scan(
            &chunk_key(0),
            &chunk_key(plan.chunk_count),
            vec![],
            Some(filter),
            |row| {
                let (chunk, id) = decode_chunk(&row)?;
                check_plan_id(&row, &id, &plan_id)?;
                if chunk.status != ChunkStatus::Done {
                    out.push(chunk);
                }
                Ok(out.len() < limit)
            },
        )
        .await?;
        Ok(out)
    }

    pub(super) fn plan_conflict(&self, existing: &Plan) -> StateError {
        StateError::PlanConflict {
            migration_id: self.migration_id.clone(),
            chunk_count: existing.chunk_count,
        }
    }
}

fn check_plan_id(row: &Row, found: &str, expected: &str) -> Result<(), StateError> {
    if found != expected {
        return Err(StateError::corrupt(
            &Cols::new(row).key,
            "this chunk row belongs to another chunk plan than the committed one (two planners \
             ran at once); reset the migration's state and plan again",
        ));
    }
    Ok(())
}

/// A chunk row and its plan id.
fn decode_chunk(row: &Row) -> Result<(ChunkRecord, String), StateError> {
    let c = Cols::new(row);
    let status_text = c.str("status")?;
    let status = ChunkStatus::parse(status_text).ok_or_else(|| {
        StateError::corrupt(
            &c.key,
            format!("status {status_text:?} is not pending, running or done"),
        )
    })?;
    let chunk = ChunkRecord {
        index: c.u32("index")?,
        table: c.str("table")?.to_owned(),
        lower: c.opt_json("lower")?,
        upper: c.opt_json("upper")?,
        cursor: c.opt_json("cursor")?,
        rows: c.u64("rows")?,
        bytes: c.u64("bytes")?,
        status,
    };
    if chunk_key(chunk.index) != c.key {
        return Err(StateError::corrupt(
            &c.key,
            format!("the row says it is chunk {}", chunk.index),
        ));
    }
    Ok((chunk, c.str("plan_id")?.to_owned()))
}
