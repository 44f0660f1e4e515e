//! The read path: GetRow and GetRange on a redb snapshot, and the projection of a stored row
//! onto what a read asked for. Kept apart from the writes because reads never touch the
//! writer thread: they only need the catalog and a snapshot.

use std::ops::Bound;

use tablestore::error::ServiceError;
use tablestore::row::{Cell, PrimaryKey, Row};
use tablestore::schema::TableDef;

use super::validate::{check_pk, check_read_options, ttl_floor, PkUse};
use super::{
    now_ms, Direction, Engine, RangePage, RangeRequest, ReadOptions, TimeRange, RANGE_MAX_BYTES,
    RANGE_MAX_ROWS,
};
use crate::condition;
use crate::store::{self, StoredColumn, StoredRow};

impl Engine {
    /// GetRow: the row as `read` selects it, or None when it does not exist (or is filtered out).
    pub fn get_row(
        &self,
        table: &str,
        pk: &PrimaryKey,
        read: &ReadOptions,
    ) -> Result<Option<Row>, ServiceError> {
        let meta = self.meta(table)?;
        check_pk(&meta.def, pk, PkUse::Read)?;
        check_read_options(read)?;
        let key = store::encode_key(pk);
        let txn = self.inner.store.begin_read()?;
        let t = txn
            .table(table)?
            .ok_or_else(ServiceError::table_not_exist)?;
        Ok(t.get_row(&key)?
            .and_then(|stored| project(&meta.def, pk.clone(), stored, read, now_ms())))
    }

    /// GetRange: one page of `[start, end)` in the request's direction.
    pub fn get_range(&self, table: &str, req: &RangeRequest) -> Result<RangePage, ServiceError> {
        let meta = self.meta(table)?;
        let def = &meta.def;
        check_pk(def, &req.start, PkUse::Bound)?;
        check_pk(def, &req.end, PkUse::Bound)?;
        check_read_options(&req.read)?;
        let limit = match req.limit {
            Some(l) if l <= 0 => {
                return Err(ServiceError::parameter_invalid(
                    "The limit must be greater than 0.",
                ))
            }
            Some(l) => l as usize,
            None => usize::MAX,
        };
        let start = store::encode_key(&req.start);
        let end = store::encode_key(&req.end);
        let (lo, hi, reverse) = match req.direction {
            Direction::Forward => {
                if start >= end {
                    return Err(ServiceError::parameter_invalid(
                        "Begin key must less than end key in FORWARD",
                    ));
                }
                (
                    Bound::Included(&start[..]),
                    Bound::Excluded(&end[..]),
                    false,
                )
            }
            Direction::Backward => {
                if start <= end {
                    return Err(ServiceError::parameter_invalid(
                        "Begin key must more than end key in BACKWARD",
                    ));
                }
                (Bound::Excluded(&end[..]), Bound::Included(&start[..]), true)
            }
        };
        let txn = self.inner.store.begin_read()?;
        let t = txn
            .table(table)?
            .ok_or_else(ServiceError::table_not_exist)?;
        let now = now_ms();
        let mut page = RangePage::default();
        let (mut scanned, mut bytes) = (0usize, 0usize);
        t.scan(lo, hi, reverse, |k, v| -> Result<bool, ServiceError> {
            if page.rows.len() >= limit || scanned >= RANGE_MAX_ROWS || bytes >= RANGE_MAX_BYTES {
                page.next_start = Some(store::decode_key(k, &def.primary_key)?);
                return Ok(false);
            }
            scanned += 1;
            bytes += k.len() + v.len();
            let pk = store::decode_key(k, &def.primary_key)?;
            let stored = store::decode_row(v)?;
            if let Some(row) = project(def, pk, stored, &req.read, now) {
                page.rows.push(row);
            }
            Ok(true)
        })?;
        Ok(page)
    }
}

/// A stored row as `read` selects it. None when the row has no visible column, is filtered
/// out, or nothing is selected and no PK column was asked for.
fn project(
    def: &TableDef,
    primary_key: PrimaryKey,
    stored: StoredRow,
    read: &ReadOptions,
    now: i64,
) -> Option<Row> {
    let o = &def.options;
    let floor = ttl_floor(o, now);
    let table_max = o.max_versions.max(1) as usize;
    let per_column = match (read.max_versions, read.time_range) {
        (Some(m), _) => m.max(1) as usize,
        (None, Some(_)) => usize::MAX,
        (None, None) => 1,
    };
    let in_range = |ts: i64| match read.time_range {
        None => true,
        Some(TimeRange::Between { start, end }) => start <= ts && ts < end,
        Some(TimeRange::Specific(t)) => ts == t,
    };
    let wanted = |name: &str| {
        read.columns_to_get.is_empty() || read.columns_to_get.iter().any(|c| c == name)
    };
    // A row stored without columns was written by a key-only PutRow: it exists.
    let key_only = stored.columns.is_empty();
    let mut exists = key_only;
    let mut cells = Vec::new();
    for StoredColumn { name, versions } in stored.columns {
        let mut vis = versions
            .into_iter()
            .take(table_max)
            .filter(|(ts, _)| *ts >= floor)
            .peekable();
        if vis.peek().is_none() {
            continue;
        }
        exists = true;
        if !wanted(&name) {
            continue;
        }
        for (ts, value) in vis.filter(|(ts, _)| in_range(*ts)).take(per_column) {
            cells.push(Cell {
                name: name.clone(),
                value,
                timestamp: Some(ts),
            });
        }
    }
    if !exists {
        return None;
    }
    if let Some(f) = &read.filter {
        if !condition::evaluate(f, cells.as_slice()) {
            return None;
        }
    }
    let wants_pk = read
        .columns_to_get
        .iter()
        .any(|c| def.primary_key.iter().any(|p| &p.name == c));
    if cells.is_empty() && !wants_pk && !(key_only && read.columns_to_get.is_empty()) {
        return None;
    }
    Some(Row { primary_key, cells })
}
