//! Write preparation: a `WriteOp` checked against one epoch of its table's definition, its
//! timestamps resolved and its row encoded, on the caller's thread, so the single writer
//! thread does as little per row as possible.

use std::collections::HashSet;

use tablestore::error::ServiceError;
use tablestore::row::{Cell, CellOp, RowChange};
use tablestore::value::Value;

use super::rows::{put_row, returned_cells};
use super::validate::{
    check_attr_name, check_attr_value, check_column_count, check_pk, check_timestamp, PkUse,
};
use super::{TableMeta, WriteOp};
use crate::condition;
use crate::store;

/// A write validated against one epoch of its table's definition, timestamps resolved and (for
/// PUT) the row already encoded, so the writer thread does as little as possible.
pub(super) struct PreparedOp {
    pub(super) op: WriteOp,
    pub(super) epoch: u64,
    pub(super) now: i64,
    /// None while an auto-increment placeholder awaits its value.
    pub(super) key: Option<Vec<u8>>,
    pub(super) auto_col: Option<usize>,
    /// PUT only: the encoded row (None = no attribute columns = no row) and the cells to return.
    pub(super) put: Option<(Option<Vec<u8>>, Vec<Cell>)>,
    /// UPDATE only, when it can be known up front: the encoded row the update yields if the
    /// row does not exist yet (None = no row). Spares the writer thread the work for new rows.
    pub(super) fresh: Option<Option<Vec<u8>>>,
}

pub(super) fn prepare(
    meta: &TableMeta,
    mut op: WriteOp,
    now: i64,
) -> Result<PreparedOp, ServiceError> {
    let def = &meta.def;
    let o = &def.options;
    let usage = match &op.change {
        RowChange::Put(_) => PkUse::Put,
        RowChange::Update { .. } => PkUse::Update,
        RowChange::Delete(_) => PkUse::Delete,
    };
    if usage == PkUse::Update && !o.allow_update {
        return Err(ServiceError::parameter_invalid(
            "UpdateRow is not allowed on this table: allow_update is false.",
        ));
    }
    let auto_col = check_pk(def, op.change.primary_key(), usage)?;
    let mut distinct = false;
    match &mut op.change {
        RowChange::Put(row) => {
            check_column_count(row.cells.len())?;
            for c in &mut row.cells {
                check_attr_name(def, &c.name)?;
                check_attr_value(&c.name, &c.value)?;
                c.timestamp = Some(check_timestamp(o, &c.name, c.timestamp, now)?);
            }
        }
        RowChange::Update { ops, .. } => {
            if ops.is_empty() {
                return Err(ServiceError::parameter_invalid(
                    "Attribute column is missing.",
                ));
            }
            check_column_count(ops.len())?;
            distinct = distinct_columns(ops);
            let mut incremented = HashSet::new();
            let mut changed = HashSet::new();
            for cop in ops.iter_mut() {
                check_attr_name(def, cop.column())?;
                match cop {
                    CellOp::Put(c) => {
                        check_attr_value(&c.name, &c.value)?;
                        c.timestamp = Some(check_timestamp(o, &c.name, c.timestamp, now)?);
                    }
                    CellOp::DeleteOneVersion { name, timestamp } => {
                        if *timestamp < 0 {
                            return Err(ServiceError::parameter_invalid(format!(
                                "The timestamp of column '{name}' must not be negative."
                            )));
                        }
                    }
                    CellOp::DeleteAllVersions { .. } | CellOp::Increment { .. } => {}
                }
                if distinct {
                    // No column is named twice: no increment can clash with another change.
                    continue;
                }
                let name = cop.column().to_owned();
                let conflict = match cop {
                    CellOp::Increment { .. } => {
                        changed.contains(&name) || !incremented.insert(name.clone())
                    }
                    _ => {
                        changed.insert(name.clone());
                        incremented.contains(&name)
                    }
                };
                if conflict {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The column '{name}' can not be both incremented and otherwise changed in one request."
                    )));
                }
            }
        }
        RowChange::Delete(_) => {}
    }
    if let Some(c) = &op.condition.column_condition {
        condition::validate(c)?;
    }
    let key = match auto_col {
        None => Some(store::encode_key(op.change.primary_key())),
        Some(_) => None,
    };
    let put = match &mut op.change {
        RowChange::Put(row) if op.return_columns.is_empty() && !row.cells.is_empty() => {
            let value = match encode_distinct_put(&row.cells) {
                Some(v) => v,
                None => store::encode_row(&put_row(&row.cells, o.max_versions)),
            };
            row.cells = Vec::new();
            Some((Some(value), Vec::new()))
        }
        RowChange::Put(row) => {
            let stored = put_row(&row.cells, o.max_versions);
            let returned = returned_cells(&stored, &op.return_columns);
            // Attribute columns are optional: a key-only PutRow makes a row that exists (its
            // stored form has no columns), unlike an update that deletes the last column.
            let value = Some(store::encode_row(&stored));
            // The encoded row carries the cells from here on; freeing them on the caller's
            // thread keeps that work off the single writer thread.
            row.cells = Vec::new();
            Some((value, returned))
        }
        _ => None,
    };
    let fresh = match &op.change {
        RowChange::Update { ops, .. } if op.return_columns.is_empty() => {
            fresh_update(ops, distinct)
        }
        _ => None,
    };
    Ok(PreparedOp {
        op,
        epoch: meta.epoch,
        now,
        key,
        auto_col,
        put,
        fresh,
    })
}

/// Whether no column is named by two ops (the usual update).
pub(super) fn distinct_columns(ops: &[CellOp]) -> bool {
    let mut names: Vec<&str> = ops.iter().map(CellOp::column).collect();
    names.sort_unstable();
    !names.windows(2).any(|w| w[0] == w[1])
}

/// What an update of a row that does not exist yet stores, when that does not depend on the
/// clock: ops naming distinct columns (`distinct` = `distinct_columns(ops)`), no increment.
/// Deletes then do nothing, puts (timestamps set by `prepare`) give one version each. None
/// when the writer must apply the ops itself.
pub(super) fn fresh_update(ops: &[CellOp], distinct: bool) -> Option<Option<Vec<u8>>> {
    if !distinct {
        return None;
    }
    let mut cols = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            CellOp::Put(c) => cols.push((c.name.as_str(), c.timestamp?, &c.value)),
            CellOp::DeleteOneVersion { .. } | CellOp::DeleteAllVersions { .. } => {}
            CellOp::Increment { .. } => return None,
        }
    }
    if cols.is_empty() {
        return Some(None);
    }
    cols.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Some(Some(store::encode_single_versions(&cols)))
}

/// The stored form of a PUT whose cells name distinct columns (the usual case), encoded
/// straight from the cells: one version per column, so `put_row`'s grouping and trimming are
/// no-ops. None when a name repeats. Timestamps are set by `prepare` before this.
pub(super) fn encode_distinct_put(cells: &[Cell]) -> Option<Vec<u8>> {
    let mut cols: Vec<(&str, i64, &Value)> = cells
        .iter()
        .map(|c| (c.name.as_str(), c.timestamp.unwrap_or(0), &c.value))
        .collect();
    cols.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if cols.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(store::encode_single_versions(&cols))
}
