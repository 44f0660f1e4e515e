//! Choice rules: the comparison operators by name, which literal each accepts, and the
//! recursive parser of And/Or/Not/Variable rules with their checks.

use serde_json::Value;

use super::fields::Fields;
use super::{parse_timestamp, Choice, Op, Operand, Rule};

const OPS: &[(&str, Op)] = &[
    ("StringEquals", Op::StringEquals),
    ("StringLessThan", Op::StringLessThan),
    ("StringGreaterThan", Op::StringGreaterThan),
    ("StringLessThanEquals", Op::StringLessThanEquals),
    ("StringGreaterThanEquals", Op::StringGreaterThanEquals),
    ("StringMatches", Op::StringMatches),
    ("NumericEquals", Op::NumericEquals),
    ("NumericLessThan", Op::NumericLessThan),
    ("NumericGreaterThan", Op::NumericGreaterThan),
    ("NumericLessThanEquals", Op::NumericLessThanEquals),
    ("NumericGreaterThanEquals", Op::NumericGreaterThanEquals),
    ("BooleanEquals", Op::BooleanEquals),
    ("TimestampEquals", Op::TimestampEquals),
    ("TimestampLessThan", Op::TimestampLessThan),
    ("TimestampGreaterThan", Op::TimestampGreaterThan),
    ("TimestampLessThanEquals", Op::TimestampLessThanEquals),
    ("TimestampGreaterThanEquals", Op::TimestampGreaterThanEquals),
    ("IsNull", Op::IsNull),
    ("IsPresent", Op::IsPresent),
    ("IsNumeric", Op::IsNumeric),
    ("IsString", Op::IsString),
    ("IsBoolean", Op::IsBoolean),
    ("IsTimestamp", Op::IsTimestamp),
];

impl Op {
    fn literal_ok(self, v: &Value) -> bool {
        use Op::*;
        match self {
            StringEquals
            | StringLessThan
            | StringGreaterThan
            | StringLessThanEquals
            | StringGreaterThanEquals
            | StringMatches => v.is_string(),
            NumericEquals
            | NumericLessThan
            | NumericGreaterThan
            | NumericLessThanEquals
            | NumericGreaterThanEquals => v.is_number(),
            TimestampEquals
            | TimestampLessThan
            | TimestampGreaterThan
            | TimestampLessThanEquals
            | TimestampGreaterThanEquals => {
                v.as_str().is_some_and(|s| parse_timestamp(s).is_some())
            }
            BooleanEquals | IsNull | IsPresent | IsNumeric | IsString | IsBoolean | IsTimestamp => {
                v.is_boolean()
            }
        }
    }

    fn has_path_variant(self) -> bool {
        !matches!(
            self,
            Op::StringMatches
                | Op::IsNull
                | Op::IsPresent
                | Op::IsNumeric
                | Op::IsString
                | Op::IsBoolean
                | Op::IsTimestamp
        )
    }
}

pub(super) fn parse_choice(f: &mut Fields<'_, '_>) -> Choice {
    let mut choices = Vec::new();
    match f.array("Choices").cloned() {
        Some(list) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                let at = f.here(&format!("Choices/{i}"));
                let next = v.get("Next").and_then(Value::as_str).map(str::to_owned);
                if next.is_none() {
                    f.problems
                        .push(format!("{at}/Next: a top-level choice rule needs Next"));
                }
                if let (Some(rule), Some(next)) = (parse_rule(v, &at, true, f.problems), next) {
                    choices.push((rule, next));
                }
            }
        }
        Some(_) => f.problem("Choices", "must not be empty"),
        None => {
            if !f.has("Choices") {
                f.problem("Choices", "is required");
            }
        }
    }
    let default = f.string("Default").map(str::to_owned);
    Choice { choices, default }
}

fn parse_rule(v: &Value, at: &str, top: bool, problems: &mut Vec<String>) -> Option<Rule> {
    let Some(m) = v.as_object() else {
        problems.push(format!("{at}: a choice rule must be an object"));
        return None;
    };
    let mut f = Fields::new(m, at, problems);
    f.take("Comment");
    if top {
        f.take("Next");
    }
    let mut found: Vec<Rule> = Vec::new();
    for combinator in ["And", "Or"] {
        if let Some(list) = f.array(combinator).cloned() {
            if list.is_empty() {
                f.problem(combinator, "must not be empty");
            }
            let here = f.here(combinator);
            let rules: Vec<Rule> = list
                .iter()
                .enumerate()
                .filter_map(|(i, r)| parse_rule(r, &format!("{here}/{i}"), false, f.problems))
                .collect();
            found.push(if combinator == "And" {
                Rule::And(rules)
            } else {
                Rule::Or(rules)
            });
        }
    }
    if let Some(inner) = f.take("Not") {
        let here = f.here("Not");
        if let Some(r) = parse_rule(inner, &here, false, f.problems) {
            found.push(Rule::Not(Box::new(r)));
        }
    }
    let variable = f.path("Variable", true);
    let mut compares = Vec::new();
    for (name, op) in OPS {
        if let Some(v) = f.take(name) {
            if op.literal_ok(v) {
                compares.push((*op, Operand::Literal(v.clone())));
            } else {
                f.problem(name, "operand of the wrong type for this comparison");
            }
        }
        let path_name = format!("{name}Path");
        if op.has_path_variant() && f.has(&path_name) {
            if let Some(p) = f.path(&path_name, true) {
                compares.push((*op, Operand::Path(p)));
            }
        }
    }
    match (variable, compares.len()) {
        (Some(var), 1) => {
            if let Some((op, operand)) = compares.pop() {
                found.push(Rule::Compare {
                    variable: var,
                    op,
                    operand,
                });
            }
        }
        (Some(_), 0) => f.problem("Variable", "needs exactly one comparison operator"),
        (_, n) if n > 1 => f.problem("Variable", "a rule has exactly one comparison operator"),
        (None, 1) => f.problem("Variable", "a comparison needs Variable"),
        _ => {}
    }
    f.finish();
    match found.len() {
        1 => found.pop(),
        0 => {
            problems.push(format!(
                "{at}: a choice rule needs And, Or, Not or Variable with a comparison"
            ));
            None
        }
        _ => {
            problems.push(format!(
                "{at}: a choice rule has exactly one of And, Or, Not, Variable"
            ));
            None
        }
    }
}
