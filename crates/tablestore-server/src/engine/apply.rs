//! The writer thread's view of the tables and what one command does to them inside the
//! writer's transaction: table creation, deletion and option changes, and a prepared row write
//! (auto-increment, condition, PUT/UPDATE/DELETE). Runs only on the writer thread, which is
//! why it may change metadata and publish the catalog.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use tablestore::error::{code, ServiceError};
use tablestore::row::{Row, RowChange, RowExistence};
use tablestore::value::PkValue;

use super::prepare::{prepare, restore_puts, PreparedOp};
use super::rows::{apply_update, cells_of, check_condition, existing, returned_cells};
use super::validate::{merge_options, validate_options};
use super::writer::{AdminOp, AdminReply};
use super::{now_ms, Catalog, TableMeta, WriteOutcome};
use crate::store::{self, StoreError, TableRecord, WriteSession};

pub(super) struct WriterTable {
    meta: Arc<TableMeta>,
    auto_increment: i64,
}

/// The writer's view of the tables (changed only on the writer thread).
pub(super) struct Tables {
    pub(super) tables: HashMap<String, WriterTable>,
    pub(super) catalog: Arc<RwLock<Catalog>>,
    pub(super) max_tables: usize,
    pub(super) next_epoch: u64,
}

impl Tables {
    fn epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// Replaces the in-memory state with `records` and publishes it.
    pub(super) fn install(&mut self, records: Vec<TableRecord>) {
        self.tables.clear();
        for r in records {
            let epoch = self.epoch();
            self.tables.insert(
                r.def.name.clone(),
                WriterTable {
                    meta: Arc::new(TableMeta {
                        def: r.def,
                        creation_time: r.creation_time,
                        epoch,
                    }),
                    auto_increment: r.auto_increment,
                },
            );
        }
        self.publish();
    }

    pub(super) fn publish(&self) {
        let snapshot: Catalog = self
            .tables
            .iter()
            .map(|(k, t)| (k.clone(), t.meta.clone()))
            .collect();
        // Only the writer thread writes the catalog, so a poisoned lock holds nothing half-done.
        let mut g = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        *g = snapshot;
    }

    pub(super) fn record(&self, t: &WriterTable) -> TableRecord {
        TableRecord {
            def: t.meta.def.clone(),
            creation_time: t.meta.creation_time,
            auto_increment: t.auto_increment,
        }
    }

    pub(super) fn apply_admin(
        &mut self,
        s: &mut WriteSession<'_>,
        op: AdminOp,
    ) -> Result<Result<AdminReply, ServiceError>, StoreError> {
        match op {
            AdminOp::Create(def) => {
                if self.tables.contains_key(&def.name) {
                    return Ok(Err(ServiceError::table_already_exist()));
                }
                if self.tables.len() >= self.max_tables {
                    return Ok(Err(ServiceError::new(
                        code::QUOTA_EXHAUSTED,
                        "Number of tables exceeded the quota.",
                    )));
                }
                let creation_time = now_ms() / 1000;
                let rec = TableRecord {
                    def,
                    creation_time,
                    auto_increment: 0,
                };
                s.create_table(&rec)?;
                let epoch = self.epoch();
                tracing::info!(table = %rec.def.name, "table created");
                self.tables.insert(
                    rec.def.name.clone(),
                    WriterTable {
                        meta: Arc::new(TableMeta {
                            def: rec.def,
                            creation_time,
                            epoch,
                        }),
                        auto_increment: 0,
                    },
                );
                Ok(Ok(AdminReply::Done))
            }
            AdminOp::Delete(name) => {
                if !self.tables.contains_key(&name) {
                    return Ok(Err(ServiceError::table_not_exist()));
                }
                s.delete_table(&name)?;
                self.tables.remove(&name);
                tracing::info!(table = %name, "table deleted");
                Ok(Ok(AdminReply::Done))
            }
            AdminOp::Update(name, upd) => {
                let epoch = self.epoch();
                let Some(t) = self.tables.get_mut(&name) else {
                    return Ok(Err(ServiceError::table_not_exist()));
                };
                let options = merge_options(t.meta.def.options, &upd);
                if let Err(e) = validate_options(&options) {
                    return Ok(Err(e));
                }
                let mut def = t.meta.def.clone();
                def.options = options;
                t.meta = Arc::new(TableMeta {
                    def,
                    creation_time: t.meta.creation_time,
                    epoch,
                });
                let rec = TableRecord {
                    def: t.meta.def.clone(),
                    creation_time: t.meta.creation_time,
                    auto_increment: t.auto_increment,
                };
                s.put_record(&rec)?;
                Ok(Ok(AdminReply::Options(options)))
            }
        }
    }

    /// Applies one write. Buffers it no longer needs go to `trash`, freed off this thread.
    pub(super) fn apply_write(
        &mut self,
        s: &mut WriteSession<'_>,
        p: PreparedOp,
        dirty: &mut HashSet<String>,
        trash: &mut Vec<Vec<u8>>,
    ) -> Result<Result<WriteOutcome, ServiceError>, StoreError> {
        let Some(t) = self.tables.get_mut(&p.op.table) else {
            return Ok(Err(ServiceError::table_not_exist()));
        };
        let mut p = p;
        if p.epoch != t.meta.epoch {
            // The table changed since the caller validated: validate again (a PUT's cells come
            // back from its encoded row).
            if let (RowChange::Put(row), Some((Some(v), _))) = (&mut p.op.change, &p.put) {
                row.cells = match store::decode_row(v) {
                    Ok(r) => cells_of(r),
                    Err(e) => return Ok(Err(e.into())),
                };
            }
            if let (true, RowChange::Update { ops, .. }, Some(Some(v))) =
                (p.puts_in_fresh, &mut p.op.change, &p.fresh)
            {
                if let Err(e) = restore_puts(ops, v) {
                    return Ok(Err(e.into()));
                }
            }
            p = match prepare(&t.meta, p.op, now_ms()) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
        }
        let PreparedOp {
            mut op,
            now,
            key,
            auto_col,
            put,
            fresh,
            puts_in_fresh,
            ..
        } = p;
        let key = match (key, auto_col) {
            (Some(k), _) => k,
            (None, Some(i)) => {
                let Some(next) = t.auto_increment.checked_add(1) else {
                    return Ok(Err(ServiceError::internal("auto-increment exhausted")));
                };
                t.auto_increment = next;
                dirty.insert(op.table.clone());
                let pk = match &mut op.change {
                    RowChange::Put(r) => &mut r.primary_key,
                    RowChange::Update { primary_key, .. } => primary_key,
                    RowChange::Delete(pk) => pk,
                };
                if let Some(c) = pk.0.get_mut(i) {
                    c.value = PkValue::Integer(next);
                }
                store::encode_key(pk)
            }
            (None, None) => return Ok(Err(ServiceError::internal("write without a key"))),
        };
        let table = op.table.as_str();
        let o = t.meta.def.options;
        let cond = &op.condition;
        let blind = cond.row_existence == RowExistence::Ignore && cond.column_condition.is_none();
        let is_update = matches!(op.change, RowChange::Update { .. });
        // A blind update whose result for a new row is known is written first; the row it
        // replaced, if any, is then merged and written again (a copy's rows are all new).
        let fresh_first = blind && is_update && matches!(fresh, Some(Some(_)));
        let old = if (blind && !is_update) || fresh_first {
            None
        } else {
            s.get_row(table, &key)?.and_then(|r| existing(r, &o, now))
        };
        if !blind && !check_condition(cond, old.as_ref()) {
            return Ok(Err(ServiceError::condition_check_fail()));
        }
        let (primary_key, cells) = match op.change {
            RowChange::Put(row) => {
                let (value, cells) = put.unwrap_or((None, Vec::new()));
                match value {
                    Some(v) => {
                        s.insert(table, &key, &v)?;
                        trash.push(v);
                    }
                    None => s.remove(table, &key)?,
                }
                trash.push(key);
                (row.primary_key, cells)
            }
            RowChange::Update {
                primary_key,
                mut ops,
            } if fresh_first => {
                let Some(Some(v)) = fresh else {
                    return Ok(Err(ServiceError::internal("fresh update without its row")));
                };
                let replaced = s.replace(table, &key, &v)?;
                match replaced {
                    None => {}
                    Some((stored, before)) => match existing(stored, &o, now) {
                        None => {}
                        Some(mut row) => {
                            let restored = if puts_in_fresh {
                                restore_puts(&mut ops, &v).map_err(ServiceError::from)
                            } else {
                                Ok(())
                            };
                            let applied = restored
                                .and_then(|()| apply_update(&mut row, ops, o.max_versions, now));
                            if let Err(e) = applied {
                                s.insert(table, &key, &before)?;
                                return Ok(Err(e));
                            }
                            if row.is_empty() {
                                s.remove(table, &key)?;
                            } else {
                                s.insert(table, &key, &store::encode_row(&row))?;
                            }
                        }
                    },
                }
                trash.push(v);
                trash.push(key);
                (primary_key, Vec::new())
            }
            RowChange::Update { primary_key, .. } if old.is_none() && fresh.is_some() => {
                match fresh.flatten() {
                    Some(v) => {
                        s.insert(table, &key, &v)?;
                        trash.push(v);
                    }
                    None => s.remove(table, &key)?,
                }
                trash.push(key);
                (primary_key, Vec::new())
            }
            RowChange::Update {
                primary_key,
                mut ops,
            } => {
                if let (true, Some(Some(v))) = (puts_in_fresh, &fresh) {
                    if let Err(e) = restore_puts(&mut ops, v) {
                        return Ok(Err(e.into()));
                    }
                }
                let mut row = old.unwrap_or_default();
                if let Err(e) = apply_update(&mut row, ops, o.max_versions, now) {
                    return Ok(Err(e));
                }
                if row.is_empty() {
                    s.remove(table, &key)?;
                } else {
                    s.insert(table, &key, &store::encode_row(&row))?;
                }
                (primary_key, returned_cells(&row, &op.return_columns))
            }
            RowChange::Delete(pk) => {
                s.remove(table, &key)?;
                (pk, Vec::new())
            }
        };
        let returned =
            (op.return_pk || !op.return_columns.is_empty()).then_some(Row { primary_key, cells });
        Ok(Ok(WriteOutcome { returned }))
    }
}
