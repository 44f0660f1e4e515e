//! Column conditions: conditional-write checks and read filters, evaluated against a row's
//! attribute columns.

use tablestore::error::ServiceError;
use tablestore::row::{Cell, ColumnCondition, Comparator, LogicalOp};
use tablestore::value::Value;

use super::store::StoredRow;

/// Documented limit: at most 10 conditions in one filter / conditional update.
pub use tablestore::limits::MAX_SINGLE_CONDITIONS;

/// A row's columns as a condition sees them.
pub trait Columns {
    /// The column's values, newest first; empty when the column is absent.
    fn versions(&self, name: &str) -> Vec<&Value>;
}

/// Cells as a read returns them (one cell per version, newest first within a column).
impl Columns for [Cell] {
    fn versions(&self, name: &str) -> Vec<&Value> {
        self.iter()
            .filter(|c| c.name == name)
            .map(|c| &c.value)
            .collect()
    }
}

impl Columns for StoredRow {
    fn versions(&self, name: &str) -> Vec<&Value> {
        self.column(name)
            .map(|c| c.versions.iter().map(|(_, v)| v).collect())
            .unwrap_or_default()
    }
}

/// Structural checks, done before touching any row so a bad condition fails even when the row
/// is missing.
pub fn validate(c: &ColumnCondition) -> Result<(), ServiceError> {
    let n = count_and_check(c)?;
    if n > MAX_SINGLE_CONDITIONS {
        return Err(ServiceError::parameter_invalid(format!(
            "The count of column conditions exceeds the limit: {MAX_SINGLE_CONDITIONS}, current: {n}."
        )));
    }
    Ok(())
}

fn count_and_check(c: &ColumnCondition) -> Result<usize, ServiceError> {
    match c {
        ColumnCondition::Single { .. } => Ok(1),
        ColumnCondition::Composite { op, conditions } => {
            match op {
                LogicalOp::Not if conditions.len() != 1 => {
                    return Err(ServiceError::parameter_invalid(
                        "The logical operator NOT requires exactly one sub condition.",
                    ))
                }
                LogicalOp::And | LogicalOp::Or if conditions.is_empty() => {
                    return Err(ServiceError::parameter_invalid(
                        "The logical operator AND/OR requires sub conditions.",
                    ))
                }
                _ => {}
            }
            conditions
                .iter()
                .try_fold(0usize, |n, s| Ok(n + count_and_check(s)?))
        }
    }
}

/// Whether the row passes. An absent column yields `pass_if_missing`; values of another type
/// than the condition's never match.
pub fn evaluate(c: &ColumnCondition, row: &(impl Columns + ?Sized)) -> bool {
    match c {
        ColumnCondition::Single {
            column,
            comparator,
            value,
            pass_if_missing,
            latest_version_only,
        } => {
            let versions = row.versions(column);
            match versions.first() {
                None => *pass_if_missing,
                Some(newest) if *latest_version_only => matches(newest, *comparator, value),
                Some(_) => versions.iter().any(|v| matches(v, *comparator, value)),
            }
        }
        ColumnCondition::Composite { op, conditions } => match op {
            LogicalOp::Not => !conditions.first().is_some_and(|s| evaluate(s, row)),
            LogicalOp::And => conditions.iter().all(|s| evaluate(s, row)),
            LogicalOp::Or => conditions.iter().any(|s| evaluate(s, row)),
        },
    }
}

fn matches(stored: &Value, comparator: Comparator, operand: &Value) -> bool {
    use std::cmp::Ordering::*;
    let Some(ord) = stored.compare_same_type(operand) else {
        return false;
    };
    match comparator {
        Comparator::Equal => ord == Equal,
        Comparator::NotEqual => ord != Equal,
        Comparator::GreaterThan => ord == Greater,
        Comparator::GreaterEqual => ord != Less,
        Comparator::LessThan => ord == Less,
        Comparator::LessEqual => ord != Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(col: &str, cmp: Comparator, v: impl Into<Value>, pass: bool) -> ColumnCondition {
        ColumnCondition::Single {
            column: col.into(),
            comparator: cmp,
            value: v.into(),
            pass_if_missing: pass,
            latest_version_only: true,
        }
    }

    fn cells() -> Vec<Cell> {
        vec![
            Cell::new("a", 5i64).at(2),
            Cell::new("a", 1i64).at(1),
            Cell::new("s", "x").at(1),
        ]
    }

    #[test]
    fn single_conditions() {
        let row = cells();
        let r = row.as_slice();
        assert!(evaluate(&single("a", Comparator::Equal, 5i64, false), r));
        assert!(!evaluate(&single("a", Comparator::Equal, 1i64, false), r));
        assert!(evaluate(
            &single("a", Comparator::GreaterThan, 4i64, false),
            r
        ));
        assert!(evaluate(
            &single("a", Comparator::GreaterEqual, 5i64, false),
            r
        ));
        assert!(evaluate(
            &single("a", Comparator::LessEqual, 5i64, false),
            r
        ));
        assert!(!evaluate(
            &single("a", Comparator::LessThan, 5i64, false),
            r
        ));
        assert!(evaluate(&single("a", Comparator::NotEqual, 4i64, false), r));
        // Different types never match, not even NOT_EQUAL.
        assert!(!evaluate(&single("a", Comparator::NotEqual, "5", false), r));
        assert!(!evaluate(&single("s", Comparator::Equal, 1i64, true), r));
        // Missing column.
        assert!(evaluate(&single("zz", Comparator::Equal, 1i64, true), r));
        assert!(!evaluate(&single("zz", Comparator::Equal, 1i64, false), r));
        // Any version.
        let any = ColumnCondition::Single {
            column: "a".into(),
            comparator: Comparator::Equal,
            value: Value::Integer(1),
            pass_if_missing: false,
            latest_version_only: false,
        };
        assert!(evaluate(&any, r));
    }

    #[test]
    fn composite_conditions() {
        let row = cells();
        let r = row.as_slice();
        let t = single("a", Comparator::Equal, 5i64, false);
        let f = single("a", Comparator::Equal, 6i64, false);
        let comp = |op, c: Vec<ColumnCondition>| ColumnCondition::Composite { op, conditions: c };
        assert!(evaluate(
            &comp(LogicalOp::And, vec![t.clone(), t.clone()]),
            r
        ));
        assert!(!evaluate(
            &comp(LogicalOp::And, vec![t.clone(), f.clone()]),
            r
        ));
        assert!(evaluate(
            &comp(LogicalOp::Or, vec![f.clone(), t.clone()]),
            r
        ));
        assert!(evaluate(&comp(LogicalOp::Not, vec![f.clone()]), r));
        assert!(validate(&comp(LogicalOp::Not, vec![f.clone(), t.clone()])).is_err());
        assert!(validate(&comp(LogicalOp::Not, vec![])).is_err());
        assert!(validate(&comp(LogicalOp::And, vec![])).is_err());
        assert!(validate(&comp(LogicalOp::And, vec![t.clone(); 10])).is_ok());
        let e = validate(&comp(LogicalOp::And, vec![t; 11])).err();
        assert_eq!(e.map(|e| e.code), Some("OTSParameterInvalid".to_owned()));
    }
}
