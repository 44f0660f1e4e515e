//! Which destination tables this migration created, kept in the state table (key
//! `table/<name>`), so re-running schema creation or the precheck recognises its own tables.

use futures_util::StreamExt;

use super::context::Context;
use tablestore::read::{Direction, RangeRequest, ReadOptions};
use tablestore::{Condition, PrimaryKey, Row};

const PREFIX: &str = "table/";

fn key(ctx: &Context, k: impl Into<String>) -> PrimaryKey {
    PrimaryKey::new()
        .with("migration_id", ctx.config.migration_id.as_str())
        .with("key", k.into())
}

/// Records that this migration created (or adopted) `table`.
pub async fn mark_created(ctx: &Context, table: &str) -> Result<(), tablestore::Error> {
    let row = Row::new(key(ctx, format!("{PREFIX}{table}"))).with("table", table);
    ctx.destination
        .put_row(
            &ctx.config.destination.state_table,
            &row,
            &Condition::ignore(),
        )
        .await
}

/// Tables this migration created; empty when the state table does not exist yet.
pub async fn created_tables(ctx: &Context) -> Result<Vec<String>, tablestore::Error> {
    let req = RangeRequest {
        direction: Direction::Forward,
        start: key(ctx, PREFIX),
        end: key(ctx, "table0"), // '0' follows '/': the end of the prefix
        limit: None,
        read: ReadOptions::default(),
    };
    let mut out = Vec::new();
    let mut rows = Box::pin(
        ctx.destination
            .range_stream(&ctx.config.destination.state_table, req),
    );
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
