//! A chunk plan built over several PlanChunks invocations (1,000 tables do not fit in one
//! Lambda invocation for sure): the `plan_draft` row says which tables are planned so far and
//! how many chunk rows (all stamped with the draft's `plan_id`) they hold. Each invocation
//! writes its tables' chunk rows, then moves the draft on under a condition on the draft it
//! read, so two planners cannot both extend it. The last one commits the draft as the plan row
//! ([`StateStore::commit_plan_draft`]): no plan row, no plan, as for a plan made in one call.

use super::chunks::{check_index, new_plan_id};
use super::columns::{json_cell, Cols};
use super::lease::equals;
use super::{condition_failed, ChunkRecord, Plan, StateError, StateStore};
use tablestore::{Cell, ColumnCondition, Condition, LogicalOp, RowChange, RowExistence};

const DRAFT_KEY: &str = "plan_draft";

/// The plan being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDraft {
    pub plan_id: String,
    /// Chunk rows written so far: `0..chunk_count`.
    pub chunk_count: u32,
    /// Source tables planned so far, in planning order.
    pub tables: Vec<String>,
}

impl StateStore {
    /// The draft in progress, if any.
    pub async fn plan_draft(&self) -> Result<Option<PlanDraft>, StateError> {
        let Some(row) = self.get(DRAFT_KEY).await? else {
            return Ok(None);
        };
        let c = Cols::new(&row);
        Ok(Some(PlanDraft {
            plan_id: c.str("plan_id")?.to_owned(),
            chunk_count: c.u32("chunk_count")?,
            tables: c.json("tables")?,
        }))
    }

    /// Adds `tables` and their `chunks` (numbered on from `prev`'s chunk count) to the draft
    /// `prev` (`None` = start one). Answers the new draft, or `None` when the draft is no longer
    /// `prev` (another planner moved it on): read it again.
    pub async fn extend_plan_draft(
        &self,
        prev: Option<&PlanDraft>,
        tables: &[String],
        chunks: &[ChunkRecord],
    ) -> Result<Option<PlanDraft>, StateError> {
        let base = prev.map_or(0, |d| d.chunk_count);
        for (i, c) in chunks.iter().enumerate() {
            if c.index as usize != base as usize + i {
                return Err(StateError::Invalid(format!(
                    "draft chunk records must be numbered from {base} in order; record {i} has \
                     index {}",
                    c.index
                )));
            }
            check_index(c.index)?;
        }
        let next = PlanDraft {
            plan_id: prev.map_or_else(new_plan_id, |d| d.plan_id.clone()),
            chunk_count: base + chunks.len() as u32,
            tables: prev
                .map(|d| d.tables.clone())
                .unwrap_or_default()
                .into_iter()
                .chain(tables.iter().cloned())
                .collect(),
        };
        if prev.is_none() {
            // A draft made from scratch overwrites whatever a crashed attempt left.
            self.delete_chunks_from(0).await?;
        }
        let changes = self.chunk_changes(chunks, &next.plan_id)?;
        self.write_rows(changes).await?;

        let row = self.row(
            DRAFT_KEY,
            vec![
                Cell::new("plan_id", next.plan_id.as_str()),
                Cell::new("chunk_count", i64::from(next.chunk_count)),
                json_cell("tables", &next.tables)?,
            ],
        );
        let cond = match prev {
            None => Condition::expect(RowExistence::ExpectNotExist),
            Some(p) => Condition::expect(RowExistence::ExpectExist).with_column(
                ColumnCondition::Composite {
                    op: LogicalOp::And,
                    conditions: vec![
                        equals("plan_id", p.plan_id.as_str()),
                        equals("chunk_count", i64::from(p.chunk_count)),
                    ],
                },
            ),
        };
        match self.client.put_row(&self.table, &row, &cond).await {
            Ok(()) => Ok(Some(next)),
            // Our own write, applied before the client retried it, or another planner's.
            Err(e) if condition_failed(&e) => match self.plan_draft().await? {
                Some(d) if d == next => Ok(Some(next)),
                _ => Ok(None),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Drops a draft that no longer fits the selected tables (the next draft starts over).
    pub async fn discard_plan_draft(&self) -> Result<(), StateError> {
        self.write_rows(vec![RowChange::Delete(self.pk(DRAFT_KEY))])
            .await
    }

    /// Commits `draft` as the plan (created at `created_at`, unix ms) and removes the draft.
    /// An existing plan is kept: [`StateError::PlanConflict`].
    pub async fn commit_plan_draft(
        &self,
        draft: &PlanDraft,
        created_at: i64,
    ) -> Result<Plan, StateError> {
        if let Some(existing) = self.plan().await? {
            return Err(self.plan_conflict(&existing));
        }
        let plan = Plan {
            chunk_count: draft.chunk_count,
            tables: draft.tables.clone(),
            created_at,
        };
        self.delete_chunks_from(draft.chunk_count).await?;
        self.commit_plan_row(&plan, &draft.plan_id).await?;
        // Best effort: a leftover draft is ignored once the plan exists.
        if let Err(e) = self.discard_plan_draft().await {
            tracing::debug!(error = %e, "could not delete the committed plan draft");
        }
        Ok(plan)
    }
}
