//! Request and service-limit validation: table definitions and options, primary keys,
//! attribute columns, timestamps and read options. Pure checks with the service's error
//! codes and messages, run on the caller's thread before anything reaches the writer.

use std::collections::HashSet;

use tablestore::error::{code, ServiceError};
use tablestore::row::PrimaryKey;
use tablestore::schema::{is_valid_name, TableDef, TableOptions};
use tablestore::value::{PkType, PkValue, ValueRef};

use super::{
    ReadOptions, TableOptionsUpdate, TimeRange, MAX_ATTR_VALUE_BYTES, MAX_COLUMNS_PER_WRITE,
    MAX_COLUMNS_TO_GET, MAX_DEFINED_COLUMNS, MAX_PK_COLUMNS, MAX_PK_VALUE_BYTES, MIN_TIME_TO_LIVE,
};
use crate::condition;

pub(super) fn merge_options(mut o: TableOptions, u: &TableOptionsUpdate) -> TableOptions {
    if let Some(v) = u.time_to_live {
        o.time_to_live = v;
    }
    if let Some(v) = u.max_versions {
        o.max_versions = v;
    }
    if let Some(v) = u.deviation_cell_version_in_sec {
        o.deviation_cell_version_in_sec = v;
    }
    if let Some(v) = u.allow_update {
        o.allow_update = v;
    }
    o
}

pub(super) fn validate_options(o: &TableOptions) -> Result<(), ServiceError> {
    if o.time_to_live != -1 && o.time_to_live < MIN_TIME_TO_LIVE {
        return Err(ServiceError::parameter_invalid(format!(
            "TimeToLive must be -1 or at least {MIN_TIME_TO_LIVE} seconds, got {}.",
            o.time_to_live
        )));
    }
    if o.max_versions < 1 {
        return Err(ServiceError::parameter_invalid(format!(
            "MaxVersions must be greater than 0, got {}.",
            o.max_versions
        )));
    }
    if o.deviation_cell_version_in_sec < 1 {
        return Err(ServiceError::parameter_invalid(format!(
            "DeviationCellVersionInSec must be greater than 0, got {}.",
            o.deviation_cell_version_in_sec
        )));
    }
    Ok(())
}

pub(super) fn validate_table_def(def: &TableDef) -> Result<(), ServiceError> {
    let bad = ServiceError::parameter_invalid;
    if !is_valid_name(&def.name) {
        return Err(bad(format!("Invalid table name: '{}'.", def.name)));
    }
    let n = def.primary_key.len();
    if n == 0 || n > MAX_PK_COLUMNS {
        return Err(bad(format!(
            "The number of primary key columns must be in range: [1, {MAX_PK_COLUMNS}], got {n}."
        )));
    }
    let mut seen = HashSet::new();
    for pk in &def.primary_key {
        if !is_valid_name(&pk.name) {
            return Err(bad(format!("Invalid primary key name: '{}'.", pk.name)));
        }
        if !seen.insert(pk.name.as_str()) {
            return Err(bad(format!("Duplicated primary key name: '{}'.", pk.name)));
        }
    }
    let autos: Vec<_> = def
        .primary_key
        .iter()
        .enumerate()
        .filter(|(_, p)| p.auto_increment)
        .collect();
    if autos.len() > 1 {
        return Err(bad(
            "At most one primary key column can be auto-increment.".to_owned()
        ));
    }
    for (i, p) in autos {
        if i == 0 {
            return Err(bad(format!(
                "The partition key '{}' can not be an auto-increment column.",
                p.name
            )));
        }
        if p.pk_type != PkType::Integer {
            return Err(bad(format!(
                "The auto-increment primary key column '{}' must be INTEGER.",
                p.name
            )));
        }
    }
    if def.defined_columns.len() > MAX_DEFINED_COLUMNS {
        return Err(bad(format!(
            "The number of defined columns exceeds the limit: {MAX_DEFINED_COLUMNS}."
        )));
    }
    let mut defined = HashSet::new();
    for (name, _) in &def.defined_columns {
        if !is_valid_name(name) {
            return Err(bad(format!("Invalid column name: '{name}'.")));
        }
        if seen.contains(name.as_str()) {
            return Err(bad(format!(
                "The defined column '{name}' has the name of a primary key column."
            )));
        }
        if !defined.insert(name.as_str()) {
            return Err(bad(format!("Duplicated defined column name: '{name}'.")));
        }
    }
    validate_options(&def.options)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PkUse {
    Put,
    Update,
    Delete,
    /// GetRow / BatchGetRow key.
    Read,
    /// GetRange bound: INF_MIN / INF_MAX allowed.
    Bound,
}

/// Checks a key against the schema; returns the position of an auto-increment placeholder.
pub(super) fn check_pk(
    def: &TableDef,
    pk: &PrimaryKey,
    usage: PkUse,
) -> Result<Option<usize>, ServiceError> {
    let (input, meta) = (pk.0.len(), def.primary_key.len());
    if input != meta {
        return Err(ServiceError::invalid_pk(format!(
            "Validate PK size fail. Input: {input}, Meta: {meta}."
        )));
    }
    let mut auto = None;
    for (i, (c, s)) in pk.0.iter().zip(&def.primary_key).enumerate() {
        if c.name != s.name {
            return Err(ServiceError::invalid_pk(format!(
                "Validate PK name fail. Input: {}, Meta: {}.",
                c.name, s.name
            )));
        }
        match &c.value {
            PkValue::InfMin | PkValue::InfMax => {
                if usage != PkUse::Bound {
                    return Err(ServiceError::parameter_invalid(format!(
                        "INF_MIN or INF_MAX is not allowed in the primary key column '{}' here.",
                        c.name
                    )));
                }
            }
            PkValue::AutoIncrement => {
                if !s.auto_increment {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The primary key column '{}' is not an auto-increment column.",
                        c.name
                    )));
                }
                if !matches!(usage, PkUse::Put | PkUse::Update) {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The auto-increment primary key column '{}' needs a value here.",
                        c.name
                    )));
                }
                auto = Some(i);
            }
            v => {
                let t = v.pk_type().map(PkType::name).unwrap_or("UNKNOWN");
                if v.pk_type() != Some(s.pk_type) {
                    return Err(ServiceError::invalid_pk(format!(
                        "Validate PK type fail. Input: {t}, Meta: {}.",
                        s.pk_type.name()
                    )));
                }
                if s.auto_increment && usage == PkUse::Put {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The auto-increment primary key column '{}' must be written as AUTO_INCREMENT.",
                        c.name
                    )));
                }
                let len = v.data_size();
                if s.pk_type != PkType::Integer && len > MAX_PK_VALUE_BYTES {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The length of primary key column: '{}' exceeds the MaxLength: {MAX_PK_VALUE_BYTES} with CurrentLength: {len}.",
                        c.name
                    )));
                }
            }
        }
    }
    Ok(auto)
}

pub(super) fn check_attr_name(def: &TableDef, name: &str) -> Result<(), ServiceError> {
    if !is_valid_name(name) {
        return Err(ServiceError::parameter_invalid(format!(
            "Invalid column name: '{name}'."
        )));
    }
    if def.primary_key.iter().any(|p| p.name == name) {
        return Err(ServiceError::parameter_invalid(format!(
            "The attribute column '{name}' has the name of a primary key column."
        )));
    }
    Ok(())
}

pub(super) fn check_attr_value(name: &str, v: &ValueRef<'_>) -> Result<(), ServiceError> {
    let len = v.data_size();
    if matches!(v, ValueRef::String(_) | ValueRef::Binary(_)) && len > MAX_ATTR_VALUE_BYTES {
        return Err(ServiceError::parameter_invalid(format!(
            "The length of attribute column: '{name}' exceeds the MaxLength: {MAX_ATTR_VALUE_BYTES} with CurrentLength: {len}."
        )));
    }
    Ok(())
}

pub(super) fn check_column_count(n: usize) -> Result<(), ServiceError> {
    if n > MAX_COLUMNS_PER_WRITE {
        return Err(ServiceError::new(
            code::OUT_OF_COLUMN_COUNT_LIMIT,
            format!(
                "The number of columns from the request exceeds the limit, limit count: {MAX_COLUMNS_PER_WRITE}, column count: {n}."
            ),
        ));
    }
    Ok(())
}

/// Oldest visible timestamp under the table's TTL.
pub(super) fn ttl_floor(o: &TableOptions, now: i64) -> i64 {
    if o.time_to_live == -1 {
        i64::MIN
    } else {
        now.saturating_sub(i64::from(o.time_to_live).saturating_mul(1000))
    }
}

/// A written cell's version: now when absent, else within
/// `[max(now − deviation, now − TTL), now + deviation)`.
pub(super) fn check_timestamp(
    o: &TableOptions,
    name: &str,
    ts: Option<i64>,
    now: i64,
) -> Result<i64, ServiceError> {
    let Some(ts) = ts else { return Ok(now) };
    let dev = o.deviation_cell_version_in_sec.saturating_mul(1000);
    let lo = now.saturating_sub(dev).max(ttl_floor(o, now)).max(0);
    let hi = now.saturating_add(dev);
    if ts < lo || ts >= hi {
        return Err(ServiceError::parameter_invalid(format!(
            "The timestamp {ts} of column '{name}' is out of the acceptable range [{lo}, {hi})."
        )));
    }
    Ok(ts)
}

pub(super) fn check_read_options(read: &ReadOptions) -> Result<(), ServiceError> {
    if read.columns_to_get.len() > MAX_COLUMNS_TO_GET {
        return Err(ServiceError::parameter_invalid(format!(
            "The number of columns to get exceeds the limit: {MAX_COLUMNS_TO_GET}, got {}.",
            read.columns_to_get.len()
        )));
    }
    if let Some(m) = read.max_versions {
        if m <= 0 {
            return Err(ServiceError::parameter_invalid(
                "max_versions must be greater than 0.",
            ));
        }
    }
    match read.time_range {
        Some(TimeRange::Between { start, end }) if start < 0 || start >= end => {
            return Err(ServiceError::parameter_invalid(
                "Invalid time range: start_time must be >= 0 and less than end_time.",
            ))
        }
        Some(TimeRange::Specific(t)) if t < 0 => {
            return Err(ServiceError::parameter_invalid(
                "Invalid time range: specific_time must be >= 0.",
            ))
        }
        _ => {}
    }
    if let Some(f) = &read.filter {
        condition::validate(f)?;
    }
    Ok(())
}
