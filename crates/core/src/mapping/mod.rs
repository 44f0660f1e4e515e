//! The one place that knows both MySQL and Tablestore: type mapping (design §4), table and
//! column names with the case policy, and (with the full copy) row conversion.

pub mod convert;
pub mod filter_eval;
pub mod table;
pub mod types;

pub use table::{map_table, ColumnMapping, MappingProblem, ProblemKind, TableMapping};
