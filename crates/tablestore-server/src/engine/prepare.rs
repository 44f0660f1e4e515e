//! Write preparation: a `WriteOp` checked against one epoch of its table's definition, its
//! timestamps resolved and its row encoded, on the caller's thread, so the single writer
//! thread does as little per row as possible.
//!
//! Two entries: [`prepare`] for an owned change, and [`prepare_ref`] for a change still
//! borrowing its names and values from the request (multi-row writes). The borrowed one
//! prepares the usual row (a blind PUT or fresh-able UPDATE) straight from the request bytes
//! and hands every other case, and every invalid row, to [`prepare`], so the answers and
//! errors are the owned path's by construction.

use std::collections::HashSet;

use tablestore::error::ServiceError;
use tablestore::row::{Cell, CellOp, Row, RowChange, RowExistence};
use tablestore::row_ref::{CellOpRef, RowChangeRef};
use tablestore::value::ValueRef;

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
    /// UPDATE: its puts were taken out of `op` because `fresh` holds them (one version each,
    /// timestamps resolved); the writer restores them only for a row that exists.
    pub(super) puts_in_fresh: bool,
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
                let v = c.value.as_value_ref();
                c.timestamp = Some(check_put(def, now, &c.name, &v, c.timestamp)?);
            }
        }
        RowChange::Update { ops, .. } => {
            if ops.is_empty() {
                return Err(ServiceError::parameter_invalid(
                    "Attribute column is missing.",
                ));
            }
            check_column_count(ops.len())?;
            distinct = distinct_columns(ops.iter().map(CellOp::column));
            let mut incremented = HashSet::new();
            let mut changed = HashSet::new();
            for cop in ops.iter_mut() {
                check_attr_name(def, cop.column())?;
                match cop {
                    CellOp::Put(c) => {
                        check_attr_value(&c.name, &c.value.as_value_ref())?;
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
    // The puts of a fresh update live on in `fresh`: free them here, off the writer thread.
    let puts_in_fresh = matches!(fresh, Some(Some(_)));
    if let (true, RowChange::Update { ops, .. }) = (puts_in_fresh, &mut op.change) {
        ops.retain(|op| !matches!(op, CellOp::Put(_)));
    }
    Ok(PreparedOp {
        op,
        epoch: meta.epoch,
        now,
        key,
        auto_col,
        put,
        fresh,
        puts_in_fresh,
    })
}

/// A PUT cell's (or an update's put's) checks; returns its timestamp (now when absent).
fn check_put(
    def: &tablestore::schema::TableDef,
    now: i64,
    name: &str,
    value: &ValueRef<'_>,
    timestamp: Option<i64>,
) -> Result<i64, ServiceError> {
    check_attr_name(def, name)?;
    check_attr_value(name, value)?;
    check_timestamp(&def.options, name, timestamp, now)
}

/// [`prepare`] of a change borrowed from the request. A blind PUT or an UPDATE whose new-row
/// form is known (distinct columns, no increment) is checked and encoded from the borrowed
/// names and values, giving exactly the `PreparedOp` that [`prepare`] gives; anything else,
/// including any row a check refuses, goes through [`prepare`] owned.
pub(super) fn prepare_ref(
    meta: &TableMeta,
    op: WriteOp<RowChangeRef<'_>>,
    now: i64,
) -> Result<PreparedOp, ServiceError> {
    let Some(encoded) = encode_borrowed(meta, &op, now) else {
        return prepare(meta, op.into_owned(), now);
    };
    // The key and table move into the prepared write: nothing of the request is copied.
    let WriteOp {
        table,
        change,
        condition,
        ..
    } = op;
    let primary_key = match change {
        RowChangeRef::Put { primary_key, .. }
        | RowChangeRef::Update { primary_key, .. }
        | RowChangeRef::Delete(primary_key) => primary_key,
    };
    let (change, put, fresh) = match encoded.body {
        Encoded::Put(value) => {
            let row = Row {
                primary_key,
                cells: Vec::new(),
            };
            (RowChange::Put(row), Some((Some(value), Vec::new())), None)
        }
        Encoded::Update { fresh, deletes } => {
            let change = RowChange::Update {
                primary_key,
                ops: deletes,
            };
            (change, None, Some(fresh))
        }
    };
    let puts_in_fresh = matches!(fresh, Some(Some(_)));
    Ok(PreparedOp {
        op: WriteOp {
            table,
            change,
            condition,
            return_pk: false,
            return_columns: Vec::new(),
        },
        epoch: meta.epoch,
        now,
        key: Some(encoded.key),
        auto_col: None,
        put,
        fresh,
        puts_in_fresh,
    })
}

/// What [`encode_borrowed`] makes of a row: its stored key and its stored form.
pub(super) struct Borrowed {
    key: Vec<u8>,
    body: Encoded,
}

enum Encoded {
    /// A PUT's stored row.
    Put(Vec<u8>),
    /// An UPDATE's stored row if the row is new (None: no puts), and its deletes.
    Update {
        fresh: Option<Vec<u8>>,
        deletes: Vec<CellOp>,
    },
}

/// The checks and encoding of [`prepare_ref`]'s borrowed path; None when the row needs the
/// owned path (another kind of write, or a check refuses it).
pub(super) fn encode_borrowed(
    meta: &TableMeta,
    op: &WriteOp<RowChangeRef<'_>>,
    now: i64,
) -> Option<Borrowed> {
    let def = &meta.def;
    let blind = op.condition.row_existence == RowExistence::Ignore
        && op.condition.column_condition.is_none();
    if !blind || op.return_pk || !op.return_columns.is_empty() {
        return None;
    }
    let (usage, pk) = match &op.change {
        RowChangeRef::Put { primary_key, .. } => (PkUse::Put, primary_key),
        RowChangeRef::Update { primary_key, .. } if def.options.allow_update => {
            (PkUse::Update, primary_key)
        }
        _ => return None,
    };
    if check_pk(def, pk, usage).ok()?.is_some() {
        // An auto-increment placeholder gets its value on the writer thread.
        return None;
    }
    let mut cols = Vec::new();
    let mut deletes = Vec::new();
    match &op.change {
        RowChangeRef::Put { cells, .. } => {
            if cells.is_empty() {
                return None;
            }
            check_column_count(cells.len()).ok()?;
            for c in cells {
                let ts = check_put(def, now, c.name, &c.value, c.timestamp).ok()?;
                cols.push((c.name, ts, c.value.reborrow()));
            }
        }
        RowChangeRef::Update { ops, .. } => {
            if ops.is_empty() {
                return None;
            }
            check_column_count(ops.len()).ok()?;
            for cop in ops {
                match cop {
                    CellOpRef::Put(c) => {
                        let ts = check_put(def, now, c.name, &c.value, c.timestamp).ok()?;
                        cols.push((c.name, ts, c.value.reborrow()));
                    }
                    CellOpRef::DeleteOneVersion { name, timestamp } if *timestamp >= 0 => {
                        check_attr_name(def, name).ok()?;
                        deletes.push(cop.clone().into_owned());
                    }
                    CellOpRef::DeleteAllVersions { name } => {
                        check_attr_name(def, name).ok()?;
                        deletes.push(cop.clone().into_owned());
                    }
                    CellOpRef::DeleteOneVersion { .. } | CellOpRef::Increment { .. } => {
                        return None
                    }
                }
            }
            // Every column named once: `single_versions` below checks the puts among
            // themselves (sorting them once), so only an update that deletes needs this.
            let names = cols
                .iter()
                .map(|c| c.0)
                .chain(deletes.iter().map(CellOp::column));
            if !deletes.is_empty() && !distinct_columns(names) {
                return None;
            }
        }
        RowChangeRef::Delete(_) => return None,
    }
    let body = match &op.change {
        RowChangeRef::Put { .. } => Encoded::Put(single_versions(cols)?),
        _ => Encoded::Update {
            fresh: if cols.is_empty() {
                None
            } else {
                Some(single_versions(cols)?)
            },
            deletes,
        },
    };
    Some(Borrowed {
        key: store::encode_key(pk),
        body,
    })
}

/// Whether no column is named twice (the usual update).
pub(super) fn distinct_columns<'n>(names: impl Iterator<Item = &'n str>) -> bool {
    let mut names: Vec<&str> = names.collect();
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
            CellOp::Put(c) => cols.push((c.name.as_str(), c.timestamp?, c.value.as_value_ref())),
            CellOp::DeleteOneVersion { .. } | CellOp::DeleteAllVersions { .. } => {}
            CellOp::Increment { .. } => return None,
        }
    }
    if cols.is_empty() {
        return Some(None);
    }
    single_versions(cols).map(Some)
}

/// The stored form of a PUT whose cells name distinct columns (the usual case), encoded
/// straight from the cells: one version per column, so `put_row`'s grouping and trimming are
/// no-ops. None when a name repeats. Timestamps are set by `prepare` before this.
pub(super) fn encode_distinct_put(cells: &[Cell]) -> Option<Vec<u8>> {
    single_versions(
        cells
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.timestamp.unwrap_or(0),
                    c.value.as_value_ref(),
                )
            })
            .collect(),
    )
}

/// The stored form of columns of one version each, given as (name, timestamp, value) in any
/// order; None when a name repeats.
fn single_versions(mut cols: Vec<(&str, i64, ValueRef<'_>)>) -> Option<Vec<u8>> {
    cols.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if cols.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(store::encode_single_versions(&cols))
}

/// Puts a fresh update's puts back into its ops (see [`PreparedOp::puts_in_fresh`]), for a
/// writer that applies them to a row that exists. Names are distinct, so order is free.
pub(super) fn restore_puts(ops: &mut Vec<CellOp>, fresh: &[u8]) -> Result<(), store::StoreError> {
    for c in store::decode_row(fresh)?.columns {
        if let Some((ts, value)) = c.versions.into_iter().next() {
            ops.push(CellOp::Put(Cell {
                name: c.name,
                value,
                timestamp: Some(ts),
            }));
        }
    }
    Ok(())
}
