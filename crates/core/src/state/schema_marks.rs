//! Which destination tables this migration created (key `table/<name>`), so re-running schema
//! creation or the precheck recognises its own tables. Lives in `state/` because only the state
//! module reads or writes state-store keys (design §7).
//!
//! Both calls answer `tablestore::Error` (not [`StateError`](super::StateError)): the steps
//! report these failures as destination errors, as they did before the move.

use futures_util::StreamExt;

use super::{prefix_end, StateStore};
use tablestore::read::{Direction, RangeRequest, ReadOptions};
use tablestore::{Condition, Row};

const PREFIX: &str = "table/";

impl StateStore {
    /// Records that this migration created (or adopted) destination table `table`.
    pub(crate) async fn mark_table_created(&self, table: &str) -> Result<(), tablestore::Error> {
        let row = Row::new(self.pk(&format!("{PREFIX}{table}"))).with("table", table);
        self.client
            .put_row(&self.table, &row, &Condition::ignore())
            .await
    }

    /// Destination tables this migration created; empty when the state table does not exist
    /// yet.
    pub(crate) async fn created_tables(&self) -> Result<Vec<String>, tablestore::Error> {
        let req = RangeRequest {
            direction: Direction::Forward,
            start: self.pk(PREFIX),
            end: self.pk(&prefix_end(PREFIX)),
            limit: None,
            read: ReadOptions::default(),
        };
        let mut out = Vec::new();
        let mut rows = Box::pin(self.client.range_stream(&self.table, req));
        while let Some(r) = rows.next().await {
            match r {
                Ok(row) => {
                    if let Some(tablestore::Value::String(t)) = row.get("table") {
                        out.push(t.clone());
                    }
                }
                Err(e) if e.code() == Some(tablestore::error::code::OBJECT_NOT_EXIST) => {
                    return Ok(Vec::new())
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
