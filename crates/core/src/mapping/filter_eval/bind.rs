//! A table mapping's filter prepared for binlog rows: the evaluator and the source columns it
//! reads that the mapping does not migrate (the binlog reader renders those too).

use super::{filter_columns, FilterError, RowFilter};
use crate::mapping::TableMapping;
use crate::mysql::TableInfo;

/// A mapping's compiled filter. Rows given to it hold the mapping's source columns
/// ([`TableMapping::source_columns`]) followed by `extra`.
#[derive(Debug)]
pub struct BoundFilter {
    pub filter: RowFilter,
    /// Columns the filter reads beyond the migrated ones, in order.
    pub extra: Vec<String>,
}

/// Compiles the mapping's filter, if it has one, against the table as it is now.
pub fn for_mapping(m: &TableMapping, info: &TableInfo) -> Result<Option<BoundFilter>, FilterError> {
    let Some(text) = m.filter.as_deref() else {
        return Ok(None);
    };
    let mut row = m.source_columns();
    let extra: Vec<String> = filter_columns(text, info)?
        .into_iter()
        .filter(|c| !row.contains(&c.as_str()))
        .collect();
    row.extend(extra.iter().map(String::as_str));
    let filter = RowFilter::compile(text, info, &row)?;
    Ok(Some(BoundFilter { filter, extra }))
}

/// What to do about a filter that cannot be compiled (precheck and the binlog step).
pub const FIX: &str = "rewrite the filter with what the binlog evaluator supports (see \
                       docs/configuration.md, \"Filters\"), or migrate this table without \
                       \"incremental\" in migration_types";
