//! What writes, conditions and TTL do to a stored row's versions: PUT grouping, version
//! trimming, visibility, update ops, row conditions. Shared by preparation (caller's thread)
//! and application (writer thread), so both compute the same row.

use std::collections::HashSet;

use tablestore::error::ServiceError;
use tablestore::row::{Cell, CellOp, Condition, RowExistence};
use tablestore::schema::TableOptions;
use tablestore::value::Value;

use super::validate::ttl_floor;
use crate::condition;
use crate::store::StoredRow;

/// The stored form of a PUT's cells: grouped by column, a repeated timestamp keeps the last
/// value, at most `max_versions` newest versions.
pub(super) fn put_row(cells: &[Cell], max_versions: i32) -> StoredRow {
    let mut row = StoredRow::default();
    for c in cells {
        row.column_mut(&c.name)
            .put_version(c.timestamp.unwrap_or(0), c.value.clone());
    }
    trim(&mut row, max_versions);
    row
}

/// A stored row as PUT cells (every version, with its timestamp).
pub(super) fn cells_of(row: StoredRow) -> Vec<Cell> {
    row.columns
        .into_iter()
        .flat_map(|c| {
            let name = c.name;
            c.versions.into_iter().map(move |(ts, value)| Cell {
                name: name.clone(),
                value,
                timestamp: Some(ts),
            })
        })
        .collect()
}

fn trim(row: &mut StoredRow, max_versions: i32) {
    let keep = max_versions.max(1) as usize;
    for c in &mut row.columns {
        c.versions.truncate(keep);
    }
    row.columns.retain(|c| !c.versions.is_empty());
}

/// The versions a reader or condition may see: not expired, at most `max_versions` newest.
fn visible(mut row: StoredRow, o: &TableOptions, now: i64) -> StoredRow {
    let floor = ttl_floor(o, now);
    let keep = o.max_versions.max(1) as usize;
    for c in &mut row.columns {
        c.versions.truncate(keep);
        c.versions.retain(|(ts, _)| *ts >= floor);
    }
    row.columns.retain(|c| !c.versions.is_empty());
    row
}

/// The newest version of each requested column (request order, duplicates once).
pub(super) fn returned_cells(row: &StoredRow, names: &[String]) -> Vec<Cell> {
    let mut seen = HashSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .filter_map(|n| {
            let c = row.column(n)?;
            let (ts, v) = c.versions.first()?;
            Some(Cell {
                name: n.clone(),
                value: v.clone(),
                timestamp: Some(*ts),
            })
        })
        .collect()
}

pub(super) fn check_condition(cond: &Condition, old: Option<&StoredRow>) -> bool {
    let exists_ok = match cond.row_existence {
        RowExistence::Ignore => true,
        RowExistence::ExpectExist => old.is_some(),
        RowExistence::ExpectNotExist => old.is_none(),
    };
    exists_ok
        && cond.column_condition.as_ref().is_none_or(|c| {
            let empty = StoredRow::default();
            condition::evaluate(c, old.unwrap_or(&empty))
        })
}

pub(super) fn apply_update(
    row: &mut StoredRow,
    ops: Vec<CellOp>,
    max_versions: i32,
    now: i64,
) -> Result<(), ServiceError> {
    for op in ops {
        match op {
            CellOp::Put(c) => row
                .column_mut(&c.name)
                .put_version(c.timestamp.unwrap_or(now), c.value),
            CellOp::DeleteOneVersion { name, timestamp } => {
                if let Some(i) = row.columns.iter().position(|c| c.name == name) {
                    row.columns[i].delete_version(timestamp);
                }
            }
            CellOp::DeleteAllVersions { name } => row.remove_column(&name),
            CellOp::Increment { name, delta } => {
                let base = match row.column(&name).and_then(|c| c.versions.first()) {
                    None => 0,
                    Some((_, Value::Integer(i))) => *i,
                    Some((_, other)) => {
                        return Err(ServiceError::parameter_invalid(format!(
                            "The column '{name}' to increment is {}, not INTEGER.",
                            other.type_name()
                        )))
                    }
                };
                let v = base.checked_add(delta).ok_or_else(|| {
                    ServiceError::parameter_invalid(format!(
                        "Increment of column '{name}' overflows INTEGER."
                    ))
                })?;
                row.column_mut(&name).put_version(now, Value::Integer(v));
            }
        }
    }
    trim(row, max_versions);
    Ok(())
}

/// A stored row as writes see it: its visible versions, or None when none is left (a
/// key-only row, made by a PutRow without attributes, exists with no columns).
pub(super) fn existing(r: StoredRow, o: &TableOptions, now: i64) -> Option<StoredRow> {
    let key_only = r.columns.is_empty();
    let r = visible(r, o, now);
    (key_only || !r.is_empty()).then_some(r)
}
