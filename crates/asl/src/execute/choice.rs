//! Choice states: the first rule that matches picks the next state; rules are evaluated with
//! AWS's semantics (a missing Variable is an error except for IsPresent, And/Or short-circuit),
//! comparisons and the StringMatches glob.

use serde_json::Value;

use super::super::asl::{parse_timestamp, Choice, Op, Operand, Rule};
use super::Failure;

pub(super) fn choose<'s>(
    name: &str,
    c: &'s Choice,
    input: &Value,
    ctx: &Value,
) -> Result<&'s str, Failure> {
    for (rule, next) in &c.choices {
        if eval_rule(rule, input, ctx).map_err(|e| Failure::runtime(name, e))? {
            return Ok(next);
        }
    }
    c.default.as_deref().ok_or_else(|| {
        Failure::new(
            "States.NoChoiceMatched",
            format!("state `{name}`: no choice rule matched and there is no Default"),
        )
    })
}

/// Evaluates a Choice rule. A Variable that does not exist is an error (as on AWS), except for
/// IsPresent; And/Or stop at the first rule that decides.
pub(super) fn eval_rule(rule: &Rule, input: &Value, ctx: &Value) -> Result<bool, String> {
    match rule {
        Rule::And(rules) => {
            for r in rules {
                if !eval_rule(r, input, ctx)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::Or(rules) => {
            for r in rules {
                if eval_rule(r, input, ctx)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Rule::Not(r) => Ok(!eval_rule(r, input, ctx)?),
        Rule::Compare {
            variable,
            op,
            operand,
        } => {
            let rhs = match operand {
                Operand::Literal(v) => v.clone(),
                Operand::Path(p) => p.resolve(input, ctx)?.clone(),
            };
            let found = variable.get(input, ctx);
            if *op == Op::IsPresent {
                return Ok(found.is_some() == (rhs == Value::Bool(true)));
            }
            let Some(v) = found else {
                return Err(format!(
                    "the choice rule's Variable `{}` does not exist in the input",
                    variable.text()
                ));
            };
            Ok(compare(*op, v, &rhs))
        }
    }
}

fn compare(op: Op, v: &Value, rhs: &Value) -> bool {
    use std::cmp::Ordering as O;
    use Op::*;
    let flag = rhs.as_bool() == Some(true);
    let ord = |o: Option<O>, want: &[O]| o.is_some_and(|o| want.contains(&o));
    let num_cmp = || -> Option<O> {
        match (v.as_i64(), rhs.as_i64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => v.as_f64()?.partial_cmp(&rhs.as_f64()?),
        }
    };
    let str_cmp = || -> Option<O> { Some(v.as_str()?.cmp(rhs.as_str()?)) };
    let ts_cmp = || -> Option<O> {
        Some(parse_timestamp(v.as_str()?)?.cmp(&parse_timestamp(rhs.as_str()?)?))
    };
    match op {
        StringEquals => ord(str_cmp(), &[O::Equal]),
        StringLessThan => ord(str_cmp(), &[O::Less]),
        StringGreaterThan => ord(str_cmp(), &[O::Greater]),
        StringLessThanEquals => ord(str_cmp(), &[O::Less, O::Equal]),
        StringGreaterThanEquals => ord(str_cmp(), &[O::Greater, O::Equal]),
        StringMatches => match (v.as_str(), rhs.as_str()) {
            (Some(s), Some(p)) => glob_match(p, s),
            _ => false,
        },
        NumericEquals => ord(num_cmp(), &[O::Equal]),
        NumericLessThan => ord(num_cmp(), &[O::Less]),
        NumericGreaterThan => ord(num_cmp(), &[O::Greater]),
        NumericLessThanEquals => ord(num_cmp(), &[O::Less, O::Equal]),
        NumericGreaterThanEquals => ord(num_cmp(), &[O::Greater, O::Equal]),
        BooleanEquals => v.is_boolean() && v == rhs,
        TimestampEquals => ord(ts_cmp(), &[O::Equal]),
        TimestampLessThan => ord(ts_cmp(), &[O::Less]),
        TimestampGreaterThan => ord(ts_cmp(), &[O::Greater]),
        TimestampLessThanEquals => ord(ts_cmp(), &[O::Less, O::Equal]),
        TimestampGreaterThanEquals => ord(ts_cmp(), &[O::Greater, O::Equal]),
        IsNull => v.is_null() == flag,
        IsNumeric => v.is_number() == flag,
        IsString => v.is_string() == flag,
        IsBoolean => v.is_boolean() == flag,
        IsTimestamp => v.as_str().and_then(parse_timestamp).is_some() == flag,
        IsPresent => flag,
    }
}

/// StringMatches: `*` matches any run of characters; `\*` and `\\` are literal.
pub(super) fn glob_match(pattern: &str, s: &str) -> bool {
    enum P {
        Star,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match c {
            '\\' => pat.push(P::Char(it.next().unwrap_or('\\'))),
            '*' => pat.push(P::Star),
            c => pat.push(P::Char(c)),
        }
    }
    let s: Vec<char> = s.chars().collect();
    // classic two-pointer wildcard match with backtracking to the last star
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match pat.get(pi) {
            Some(P::Char(c)) if *c == s[si] => {
                pi += 1;
                si += 1;
            }
            Some(P::Star) => {
                star = Some((pi, si));
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    pat[pi..].iter().all(|p| matches!(p, P::Star))
}
