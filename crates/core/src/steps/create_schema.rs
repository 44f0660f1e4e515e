//! `create_schema`: destination tables (and the state table) from the mapped source tables.
//! Idempotent: tables this migration created are recognised and left as they are.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::budget::Budget;
use super::context::Context;
use super::error::{ErrorName, StepError};
use super::objects;
use super::precheck::{key_text, same_key};
use crate::config::ConflictingTables;
use crate::mapping::TableMapping;
use crate::mysql;
use crate::state::StateStore;
use tablestore::error::code;
use tablestore::read::ReadOptions;
use tablestore::PrimaryKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableOutcome {
    Created,
    Existing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaTable {
    pub source: String,
    pub target: String,
    pub primary_key: Vec<String>,
    pub outcome: TableOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaOutput {
    pub tables: Vec<SchemaTable>,
}

/// Creates every destination table (max_versions 1, TTL -1) and the state table.
pub async fn create_schema(ctx: &Context) -> Result<SchemaOutput, StepError> {
    let slice = create_schema_from(ctx, None, &Budget::unlimited()).await?;
    Ok(SchemaOutput {
        tables: slice.tables,
    })
}

/// What one CreateSchema invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaSlice {
    /// The tables handled by this call, in order.
    pub tables: Vec<SchemaTable>,
    /// The source table the next call starts at; `None` = every table is done.
    pub next_table: Option<String>,
}

/// [`create_schema`] from source table `from` on (`None` = the first), until `budget` is
/// spent. Each table is idempotent, so a call cut off by Lambda is simply repeated.
pub async fn create_schema_from(
    ctx: &Context,
    from: Option<&str>,
    budget: &Budget,
) -> Result<SchemaSlice, StepError> {
    let cfg = &ctx.config;
    let state = StateStore::new(
        ctx.destination.clone(),
        cfg.destination.state_table.clone(),
        cfg.migration_id.clone(),
    );
    state
        .ensure_table()
        .await
        .map_err(|e| StepError::new(ErrorName::Fatal, e.to_string()))?;

    let mut conn = mysql::connect(&ctx.source).await?;
    let selected = objects::select(&mut conn, cfg).await;
    mysql::close(conn).await;
    let selected = selected?;
    let mappings = objects::usable_mappings(&selected, cfg)?;

    let existing = ctx.destination.list_tables().await?;
    let ours = state.created_tables().await?;
    let start = resume_at(&mappings, from);
    let mut out = Vec::new();
    let mut conflicts = Vec::new();
    let mut next_table = None;
    for (done, m) in mappings[start..].iter().enumerate() {
        if budget.spent(done) {
            next_table = Some(m.source_name.clone());
            break;
        }
        let want = m.table_def();
        let outcome = if existing.contains(&m.target_name) {
            let have = ctx.destination.describe_table(&m.target_name).await?;
            if !same_key(&have.def, &want) {
                conflicts.push(format!(
                    "{} exists with key ({}) but the mapping needs ({})",
                    m.target_name,
                    key_text(&have.def),
                    key_text(&want)
                ));
                continue;
            }
            if !ours.contains(&m.target_name)
                && cfg.conflicting_tables == ConflictingTables::PrecheckAndReport
            {
                conflicts.push(format!(
                    "{} already exists (set conflicting_tables to ignore_and_proceed to write into it)",
                    m.target_name
                ));
                continue;
            }
            TableOutcome::Existing
        } else {
            match ctx.destination.create_table(&want).await {
                Ok(()) => {}
                // Created by a concurrent or interrupted earlier attempt: compare again.
                Err(e) if e.code() == Some(code::OBJECT_ALREADY_EXIST) => {
                    let have = ctx.destination.describe_table(&m.target_name).await?;
                    if !same_key(&have.def, &want) {
                        conflicts.push(format!("{} appeared with another key", m.target_name));
                        continue;
                    }
                }
                Err(e) => return Err(e.into()),
            }
            state.mark_table_created(&m.target_name).await?;
            wait_writable(ctx, &m.target_name, &want).await?;
            TableOutcome::Created
        };
        out.push(SchemaTable {
            source: m.source_name.clone(),
            target: m.target_name.clone(),
            primary_key: m.key.iter().map(|k| k.target_name.clone()).collect(),
            outcome,
        });
    }
    if !conflicts.is_empty() {
        return Err(StepError::new(
            ErrorName::SchemaConflict,
            conflicts.join("; "),
        ));
    }
    match &next_table {
        None => tracing::info!(tables = out.len(), "schema ready"),
        Some(_) => tracing::info!(
            tables = out.len(),
            left = mappings.len() - start - out.len(),
            "schema partly ready; the next call continues"
        ),
    }
    Ok(SchemaSlice {
        tables: out,
        next_table,
    })
}

/// Index of source table `from` among `mappings` (`None` → 0). A table that vanished from the
/// selection since the last call starts the walk over: every table is idempotent.
pub(super) fn resume_at(mappings: &[TableMapping], from: Option<&str>) -> usize {
    let Some(from) = from else { return 0 };
    match mappings.iter().position(|m| m.source_name == from) {
        Some(i) => i,
        None => {
            tracing::warn!("the table to resume at is no longer selected; starting over");
            0
        }
    }
}

/// A new table may answer OTSTableNotReady for a short while (real service); wait it out.
async fn wait_writable(
    ctx: &Context,
    table: &str,
    def: &tablestore::schema::TableDef,
) -> Result<(), StepError> {
    let probe = PrimaryKey(
        def.primary_key
            .iter()
            .map(|k| tablestore::PkColumn {
                name: k.name.clone(),
                value: match k.pk_type {
                    tablestore::PkType::Integer => tablestore::PkValue::Integer(0),
                    tablestore::PkType::String => tablestore::PkValue::String(String::new()),
                    tablestore::PkType::Binary => tablestore::PkValue::Binary(Vec::new()),
                },
            })
            .collect(),
    );
    for _ in 0..60 {
        match ctx
            .destination
            .get_row(table, &probe, &ReadOptions::default())
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some(code::TABLE_NOT_READY) => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StepError::new(
        ErrorName::Transient,
        format!("table {table} is still not ready after 60 s; run the step again"),
    ))
}
