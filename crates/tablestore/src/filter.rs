//! Column conditions on the wire: a `Filter` message wrapping a single-column or composite
//! filter, carried as bytes in `Condition.column_condition` and the reads' `filter` fields.

use prost::Message;

use super::error::ServiceError;
use super::pb;
use super::plainbuffer::{decode_variant, encode_variant};
use super::row::{ColumnCondition, Comparator, LogicalOp};

/// Serializes a condition as the bytes of a `Filter` message.
pub fn encode_condition(c: &ColumnCondition) -> Vec<u8> {
    to_filter(c).encode_to_vec()
}

fn to_filter(c: &ColumnCondition) -> pb::Filter {
    match c {
        ColumnCondition::Single {
            column,
            comparator,
            value,
            pass_if_missing,
            latest_version_only,
        } => pb::Filter {
            r#type: pb::FilterType::FtSingleColumnValue as i32,
            filter: pb::SingleColumnValueFilter {
                comparator: comparator_to_pb(*comparator) as i32,
                column_name: column.clone(),
                column_value: encode_variant(value),
                filter_if_missing: !pass_if_missing,
                latest_version_only: *latest_version_only,
                value_trans_rule: None,
            }
            .encode_to_vec(),
        },
        ColumnCondition::Composite { op, conditions } => pb::Filter {
            r#type: pb::FilterType::FtCompositeColumnValue as i32,
            filter: pb::CompositeColumnValueFilter {
                combinator: match op {
                    LogicalOp::Not => pb::LogicalOperator::LoNot,
                    LogicalOp::And => pb::LogicalOperator::LoAnd,
                    LogicalOp::Or => pb::LogicalOperator::LoOr,
                } as i32,
                sub_filters: conditions.iter().map(to_filter).collect(),
            }
            .encode_to_vec(),
        },
    }
}

fn comparator_to_pb(c: Comparator) -> pb::ComparatorType {
    match c {
        Comparator::Equal => pb::ComparatorType::CtEqual,
        Comparator::NotEqual => pb::ComparatorType::CtNotEqual,
        Comparator::GreaterThan => pb::ComparatorType::CtGreaterThan,
        Comparator::GreaterEqual => pb::ComparatorType::CtGreaterEqual,
        Comparator::LessThan => pb::ComparatorType::CtLessThan,
        Comparator::LessEqual => pb::ComparatorType::CtLessEqual,
    }
}

/// Deepest nesting accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;
/// The service accepts at most 10 column conditions in one conditional update; filters allow
/// more, but a bound keeps evaluation cheap.
const MAX_LEAVES: usize = 128;

/// Parses the bytes of a `Filter` message. Errors are the service's OTSParameterInvalid.
pub fn decode_condition(bytes: &[u8]) -> Result<ColumnCondition, ServiceError> {
    let f = pb::Filter::decode(bytes).map_err(|e| bad(format!("cannot parse filter: {e}")))?;
    let mut leaves = 0;
    from_filter(&f, 0, &mut leaves)
}

fn bad(msg: impl Into<String>) -> ServiceError {
    ServiceError::parameter_invalid(msg)
}

fn from_filter(
    f: &pb::Filter,
    depth: usize,
    leaves: &mut usize,
) -> Result<ColumnCondition, ServiceError> {
    if depth > MAX_DEPTH {
        return Err(bad("The filter is nested too deeply."));
    }
    match pb::FilterType::try_from(f.r#type) {
        Ok(pb::FilterType::FtSingleColumnValue) => {
            *leaves += 1;
            if *leaves > MAX_LEAVES {
                return Err(bad("The filter has too many conditions."));
            }
            let s = pb::SingleColumnValueFilter::decode(f.filter.as_slice())
                .map_err(|e| bad(format!("cannot parse single column filter: {e}")))?;
            if s.value_trans_rule.is_some() {
                return Err(bad("value_trans_rule is not supported by this server."));
            }
            let comparator = match pb::ComparatorType::try_from(s.comparator) {
                Ok(pb::ComparatorType::CtEqual) => Comparator::Equal,
                Ok(pb::ComparatorType::CtNotEqual) => Comparator::NotEqual,
                Ok(pb::ComparatorType::CtGreaterThan) => Comparator::GreaterThan,
                Ok(pb::ComparatorType::CtGreaterEqual) => Comparator::GreaterEqual,
                Ok(pb::ComparatorType::CtLessThan) => Comparator::LessThan,
                Ok(pb::ComparatorType::CtLessEqual) => Comparator::LessEqual,
                _ => return Err(bad(format!("Unsupported comparator: {}.", s.comparator))),
            };
            let value = decode_variant(&s.column_value)
                .map_err(|e| bad(format!("invalid filter value: {e}")))?;
            Ok(ColumnCondition::Single {
                column: s.column_name,
                comparator,
                value,
                pass_if_missing: !s.filter_if_missing,
                latest_version_only: s.latest_version_only,
            })
        }
        Ok(pb::FilterType::FtCompositeColumnValue) => {
            let c = pb::CompositeColumnValueFilter::decode(f.filter.as_slice())
                .map_err(|e| bad(format!("cannot parse composite filter: {e}")))?;
            let op = match pb::LogicalOperator::try_from(c.combinator) {
                Ok(pb::LogicalOperator::LoNot) => LogicalOp::Not,
                Ok(pb::LogicalOperator::LoAnd) => LogicalOp::And,
                Ok(pb::LogicalOperator::LoOr) => LogicalOp::Or,
                Err(_) => return Err(bad(format!("Unsupported combinator: {}.", c.combinator))),
            };
            match (op, c.sub_filters.len()) {
                (LogicalOp::Not, 1) => {}
                (LogicalOp::Not, _) => {
                    return Err(bad("NOT takes exactly one sub filter."));
                }
                (_, n) if n < 2 => {
                    return Err(bad("AND/OR take at least two sub filters."));
                }
                _ => {}
            }
            let conditions = c
                .sub_filters
                .iter()
                .map(|s| from_filter(s, depth + 1, leaves))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ColumnCondition::Composite { op, conditions })
        }
        _ => Err(bad(format!(
            "Unsupported filter type: {} (column pagination is not supported by this server).",
            f.r#type
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn round_trip() {
        let c = ColumnCondition::Composite {
            op: LogicalOp::And,
            conditions: vec![
                ColumnCondition::Single {
                    column: "a".into(),
                    comparator: Comparator::GreaterEqual,
                    value: Value::Integer(5),
                    pass_if_missing: true,
                    latest_version_only: true,
                },
                ColumnCondition::Composite {
                    op: LogicalOp::Not,
                    conditions: vec![ColumnCondition::Single {
                        column: "b".into(),
                        comparator: Comparator::Equal,
                        value: Value::String("x".into()),
                        pass_if_missing: false,
                        latest_version_only: false,
                    }],
                },
            ],
        };
        assert_eq!(decode_condition(&encode_condition(&c)).unwrap(), c);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode_condition(&[0xff, 0x01, 0x02]).is_err());
        assert!(decode_condition(&[]).is_err());
    }
}
