//! WHERE filters evaluated on rows, with MySQL's answer (issue 11, item 3).
//!
//! The full copy hands a table's filter to MySQL; incremental migration applies the same
//! filter to every binlog row image. [`RowFilter::compile`] turns the parsed expression into an
//! evaluator once per table, checked against the table's columns (types, collations); the
//! evaluator then answers per row, on the text-protocol bytes the copy reads (`SourceRow`).
//! A row passes only when the filter is TRUE (NULL and FALSE exclude it).
//!
//! Supported, with MySQL's semantics: columns of integer, DECIMAL (up to 38 digits), FLOAT,
//! DOUBLE, character and binary string, DATE, DATETIME, TIMESTAMP and TIME types; literals
//! (integers, exact decimals, `1e3` doubles, strings, TRUE/FALSE, NULL); `= <> != < <= > >=
//! <=>`; `+ - * DIV`, unary `-`, `%` except on decimals, and `/` when an operand is a double or
//! a string (exact division's rounding and the decimal remainder's negative zero are not
//! reproduced); AND, OR, NOT, XOR with three-valued logic; IN (list),
//! BETWEEN, LIKE with ESCAPE; IS [NOT] NULL/TRUE/FALSE/UNKNOWN. Comparison types follow MySQL:
//! integers exactly (signed and unsigned), integers with decimals as decimals, strings with
//! numbers as doubles (string to number by MySQL's prefix rule), strings by the column's
//! collation (see [`collation`]), a temporal column with a string literal as the column's type
//! (see [`temporal`]).
//!
//! Everything else (functions, other tables' columns, ENUM/SET/BIT/YEAR/JSON columns,
//! collations not reproduced exactly, comparing a temporal value with a number, ...) is refused
//! by `compile` with the reason: a filter is never guessed. Evaluation can still fail on a
//! row (an integer out of BIGINT range, where MySQL fails the query too; a non-ASCII value
//! under a `_general_ci` collation): the caller treats that row as dirty data.

mod bind;
mod collation;
mod number;
mod temporal;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use sqlparser::ast::{BinaryOperator, Expr, InTarget, UnaryOperator, Value};

use crate::config::parse_filter;
use crate::mysql::TableInfo;
use collation::{Coll, Pat};
use number::{exact_int, in_bigint, str_to_f64, Dec, MAX_DEC_DIGITS};
use temporal::Kind;

pub use bind::{for_mapping, BoundFilter, FIX};

/// A filter that cannot be evaluated on row images, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter `{filter}` cannot be applied to binlog rows: {reason}")]
pub struct FilterError {
    pub filter: String,
    pub reason: String,
}

/// A row the filter cannot decide (the reason names no value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the filter cannot be evaluated on this row: {0}")]
pub struct EvalError(pub String);

/// A compiled filter.
#[derive(Debug)]
pub struct RowFilter {
    root: Node,
}

/// The source columns `filter` reads, by their names in `table` (each once, first use first).
pub fn filter_columns(filter: &str, table: &TableInfo) -> Result<Vec<String>, FilterError> {
    let fail = |reason: String| FilterError {
        filter: filter.to_owned(),
        reason,
    };
    let expr = parse_filter(filter).map_err(fail)?;
    let mut names: Vec<String> = Vec::new();
    let mut unknown = None;
    let _ = sqlparser::ast::visit_expressions(&expr, |e| {
        if let Expr::Identifier(id) = e {
            match column_of(table, &id.value) {
                Some(c) if !names.contains(&c.name) => names.push(c.name.clone()),
                Some(_) => {}
                None => unknown = Some(id.value.clone()),
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if let Some(u) = unknown {
        return Err(fail(format!("table {} has no column `{u}`", table.name)));
    }
    Ok(names)
}

fn column_of<'t>(table: &'t TableInfo, name: &str) -> Option<&'t crate::mysql::ColumnInfo> {
    table
        .columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
}

impl RowFilter {
    /// Compiles `filter` for rows of `table` whose values are `row_columns` (by name, in
    /// order); `row_columns` must hold every column of [`filter_columns`].
    pub fn compile(
        filter: &str,
        table: &TableInfo,
        row_columns: &[&str],
    ) -> Result<RowFilter, FilterError> {
        let fail = |reason: String| FilterError {
            filter: filter.to_owned(),
            reason,
        };
        let expr = parse_filter(filter).map_err(fail)?;
        if let Some(why) = ambiguous(&expr, true) {
            return Err(fail(why.to_owned()));
        }
        let c = Compiler { table, row_columns };
        let (root, ty) = c.expr(&expr).map_err(fail)?;
        truthy(ty).map_err(fail)?;
        Ok(RowFilter { root })
    }

    /// Whether the row passes (the filter is TRUE for it).
    pub fn matches(&self, row: &[Option<Vec<u8>>]) -> Result<bool, EvalError> {
        let v = self.root.eval(row)?;
        Ok(truth(&v) == Some(true))
    }
}

/// sqlparser's precedences differ from MySQL's in places: XOR binds tighter than comparisons
/// there but between AND and OR in MySQL, and a comparison before LIKE / BETWEEN / IN groups
/// to the left there but to the right in MySQL. The full copy sends the filter's text to MySQL,
/// so a tree that MySQL would group differently is refused (parentheses make it clear).
/// `xor_ok`: a bare XOR here groups the same way in both.
fn ambiguous(e: &Expr, xor_ok: bool) -> Option<&'static str> {
    let predicate = |x: &Expr| {
        matches!(
            x,
            Expr::BinaryOp {
                op: BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
                    | BinaryOperator::Spaceship
                    | BinaryOperator::Xor,
                ..
            } | Expr::Like { .. }
                | Expr::Between { .. }
                | Expr::In { .. }
        )
    };
    const LEFT: &str = "a comparison, XOR, LIKE, BETWEEN or IN directly before LIKE, BETWEEN or \
                        IN groups differently in MySQL and in tsmigrate's parser; add parentheses";
    match e {
        Expr::Nested(x) => ambiguous(x, true),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::Xor if !xor_ok => Some(
                "XOR binds more loosely than comparisons, AND, NOT and IS in MySQL; put \
                 parentheses around the XOR and around each of its operands",
            ),
            BinaryOperator::Xor | BinaryOperator::Or => {
                ambiguous(left, true).or_else(|| ambiguous(right, true))
            }
            _ => ambiguous(left, false).or_else(|| ambiguous(right, false)),
        },
        Expr::Like { expr, pattern, .. } => {
            if predicate(expr) {
                return Some(LEFT);
            }
            ambiguous(expr, false).or_else(|| ambiguous(pattern, false))
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            if predicate(expr) {
                return Some(LEFT);
            }
            ambiguous(expr, false)
                .or_else(|| ambiguous(low, false))
                .or_else(|| ambiguous(high, false))
        }
        Expr::In { expr, target, .. } => {
            if predicate(expr) {
                return Some(LEFT);
            }
            let items = match target {
                InTarget::List(l) => l.as_slice(),
                _ => &[],
            };
            ambiguous(expr, false).or_else(|| items.iter().find_map(|i| ambiguous(i, false)))
        }
        Expr::UnaryOp { expr, .. }
        | Expr::IsNull(expr)
        | Expr::IsNotNull(expr)
        | Expr::IsTrue(expr)
        | Expr::IsNotTrue(expr)
        | Expr::IsFalse(expr)
        | Expr::IsNotFalse(expr)
        | Expr::IsUnknown(expr)
        | Expr::IsNotUnknown(expr) => ambiguous(expr, false),
        _ => None,
    }
}

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Null,
    Int {
        unsigned: bool,
    },
    Dec,
    Dbl,
    /// A string; `coll` is `None` for a literal (it takes the other side's collation).
    Str {
        coll: Option<Coll>,
    },
    Tmp(Kind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    NullSafeEq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Int,
    Dec,
    Dbl,
    Str(Coll),
    Tmp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AMode {
    Null,
    Int { unsigned: bool },
    Dec,
    Dbl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IsTest {
    Null,
    True,
    False,
}

#[derive(Debug)]
enum Node {
    Null,
    Int(i128),
    Dec(Dec),
    Dbl(f64),
    Str(Vec<u8>),
    Tmp(i128),
    /// A column's value parsed as its type.
    Col {
        slot: usize,
        ty: Ty,
    },
    /// A column's text as a string (LIKE on a number or a date).
    Raw(usize),
    Cmp {
        op: CmpOp,
        mode: Mode,
        l: Box<Node>,
        r: Box<Node>,
    },
    Arith {
        op: ArOp,
        mode: AMode,
        l: Box<Node>,
        r: Box<Node>,
    },
    Neg {
        mode: AMode,
        e: Box<Node>,
    },
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Xor(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Is {
        e: Box<Node>,
        test: IsTest,
        negated: bool,
    },
    Like {
        e: Box<Node>,
        pat: Vec<Pat>,
        coll: Coll,
    },
}

/// A value during evaluation; strings borrow from the row or the compiled filter.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    Null,
    Int(i128),
    Dec(Dec),
    Dbl(f64),
    Str(&'a [u8]),
    Tmp(i128),
}

fn truth(v: &V<'_>) -> Option<bool> {
    match *v {
        V::Null => None,
        V::Int(i) => Some(i != 0),
        V::Dec(d) => Some(!d.is_zero()),
        V::Dbl(f) => Some(f != 0.0),
        V::Str(s) => Some(str_to_f64(s) != 0.0),
        // Refused by `truthy` at compile time.
        V::Tmp(_) => None,
    }
}

fn truthy(ty: Ty) -> Result<(), String> {
    match ty {
        Ty::Tmp(_) => Err(
            "a date or time value is used as a condition; compare it instead \
                           (e.g. `col >= '2024-01-01'`)"
                .into(),
        ),
        _ => Ok(()),
    }
}

fn bool_v(b: bool) -> V<'static> {
    V::Int(i128::from(b))
}

fn internal(what: &str) -> EvalError {
    EvalError(format!("internal: unexpected {what} value"))
}

impl<'a> V<'a> {
    fn int(self) -> Result<i128, EvalError> {
        match self {
            V::Int(i) => Ok(i),
            _ => Err(internal("non-integer")),
        }
    }

    fn dec(self) -> Result<Dec, EvalError> {
        match self {
            V::Int(i) => Ok(Dec::int(i)),
            V::Dec(d) => Ok(d),
            _ => Err(internal("non-decimal")),
        }
    }

    fn dbl(self) -> Result<f64, EvalError> {
        match self {
            V::Int(i) => Ok(i as f64),
            V::Dec(d) => Ok(d.to_f64()),
            V::Dbl(f) => Ok(f),
            V::Str(s) => Ok(str_to_f64(s)),
            _ => Err(internal("non-numeric")),
        }
    }

    fn bytes(self) -> Result<&'a [u8], EvalError> {
        match self {
            V::Str(s) => Ok(s),
            _ => Err(internal("non-string")),
        }
    }

    fn tmp(self) -> Result<i128, EvalError> {
        match self {
            V::Tmp(t) => Ok(t),
            _ => Err(internal("non-temporal")),
        }
    }
}

fn overflow(what: &str) -> EvalError {
    EvalError(format!(
        "{what} value is out of range (MySQL fails the statement too)"
    ))
}

impl Node {
    fn eval<'a>(&'a self, row: &'a [Option<Vec<u8>>]) -> Result<V<'a>, EvalError> {
        Ok(match self {
            Node::Null => V::Null,
            Node::Int(i) => V::Int(*i),
            Node::Dec(d) => V::Dec(*d),
            Node::Dbl(f) => V::Dbl(*f),
            Node::Str(s) => V::Str(s),
            Node::Tmp(t) => V::Tmp(*t),
            Node::Col { slot, ty } => match row.get(*slot) {
                None => return Err(internal("missing column")),
                Some(None) => V::Null,
                Some(Some(b)) => column_value(b, *ty)?,
            },
            Node::Raw(slot) => match row.get(*slot) {
                None => return Err(internal("missing column")),
                Some(None) => V::Null,
                Some(Some(b)) => V::Str(b),
            },
            Node::Cmp { op, mode, l, r } => {
                // Like MySQL, a NULL left side ends the comparison before the right side is
                // evaluated (which matters only for errors the right side would raise).
                let a = l.eval(row)?;
                if matches!(a, V::Null) && *op != CmpOp::NullSafeEq {
                    return Ok(V::Null);
                }
                let b = r.eval(row)?;
                let (an, bn) = (matches!(a, V::Null), matches!(b, V::Null));
                if *op == CmpOp::NullSafeEq && (an || bn) {
                    return Ok(bool_v(an && bn));
                }
                if an || bn {
                    return Ok(V::Null);
                }
                let ord = match mode {
                    Mode::Int => a.int()?.cmp(&b.int()?),
                    Mode::Dec => a.dec()?.cmp(b.dec()?).ok_or_else(|| overflow("DECIMAL"))?,
                    Mode::Dbl => a
                        .dbl()?
                        .partial_cmp(&b.dbl()?)
                        .ok_or_else(|| overflow("DOUBLE"))?,
                    Mode::Str(c) => {
                        collation::compare(*c, a.bytes()?, b.bytes()?).map_err(EvalError)?
                    }
                    Mode::Tmp => a.tmp()?.cmp(&b.tmp()?),
                };
                bool_v(match op {
                    CmpOp::Eq | CmpOp::NullSafeEq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                })
            }
            Node::Arith { op, mode, l, r } => {
                // MySQL's decimal operations stop at a NULL left side; the others evaluate both.
                let a = l.eval(row)?;
                if matches!(a, V::Null) && *mode == AMode::Dec {
                    return Ok(V::Null);
                }
                let b = r.eval(row)?;
                if matches!(a, V::Null) || matches!(b, V::Null) {
                    return Ok(V::Null);
                }
                arith(*op, *mode, a, b)?
            }
            Node::Neg { mode, e } => match e.eval(row)? {
                V::Null => V::Null,
                v => match mode {
                    AMode::Int { .. } => {
                        let n = -v.int()?;
                        if !in_bigint(n, false) {
                            return Err(overflow("BIGINT"));
                        }
                        V::Int(n)
                    }
                    AMode::Dec => {
                        let d = v.dec()?;
                        V::Dec(Dec { m: -d.m, s: d.s })
                    }
                    AMode::Dbl => V::Dbl(-v.dbl()?),
                    AMode::Null => V::Null,
                },
            },
            Node::And(l, r) => {
                let a = truth(&l.eval(row)?);
                if a == Some(false) {
                    return Ok(bool_v(false));
                }
                match (a, truth(&r.eval(row)?)) {
                    (_, Some(false)) => bool_v(false),
                    (Some(true), Some(true)) => bool_v(true),
                    _ => V::Null,
                }
            }
            Node::Or(l, r) => {
                let a = truth(&l.eval(row)?);
                if a == Some(true) {
                    return Ok(bool_v(true));
                }
                match (a, truth(&r.eval(row)?)) {
                    (_, Some(true)) => bool_v(true),
                    (Some(false), Some(false)) => bool_v(false),
                    _ => V::Null,
                }
            }
            Node::Xor(l, r) => {
                // MySQL stops at a NULL left side.
                let Some(a) = truth(&l.eval(row)?) else {
                    return Ok(V::Null);
                };
                match (Some(a), truth(&r.eval(row)?)) {
                    (Some(a), Some(b)) => bool_v(a != b),
                    _ => V::Null,
                }
            }
            Node::Not(e) => match truth(&e.eval(row)?) {
                Some(b) => bool_v(!b),
                None => V::Null,
            },
            Node::Is { e, test, negated } => {
                let v = e.eval(row)?;
                let t = truth(&v);
                let r = match test {
                    IsTest::Null => matches!(v, V::Null),
                    IsTest::True => t == Some(true),
                    IsTest::False => t == Some(false),
                };
                bool_v(r != *negated)
            }
            Node::Like { e, pat, coll } => match e.eval(row)? {
                V::Null => V::Null,
                v => bool_v(collation::like(*coll, v.bytes()?, pat).map_err(EvalError)?),
            },
        })
    }
}

fn column_value(b: &[u8], ty: Ty) -> Result<V<'_>, EvalError> {
    let bad = || EvalError("a column value does not read as its type".into());
    Ok(match ty {
        Ty::Int { .. } => V::Int(exact_int(b).ok_or_else(bad)?),
        Ty::Dec => V::Dec(Dec::parse(b).ok_or_else(bad)?),
        Ty::Dbl => V::Dbl(
            std::str::from_utf8(b)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(bad)?,
        ),
        Ty::Str { .. } => V::Str(b),
        Ty::Tmp(k) => V::Tmp(temporal::from_row(k, b).ok_or_else(bad)?),
        Ty::Null => V::Null,
    })
}

fn arith<'a>(op: ArOp, mode: AMode, a: V<'a>, b: V<'a>) -> Result<V<'a>, EvalError> {
    Ok(match mode {
        AMode::Null => V::Null,
        AMode::Int { unsigned } => {
            let (x, y) = (a.int()?, b.int()?);
            let r = match op {
                ArOp::Add => x + y,
                ArOp::Sub => x - y,
                ArOp::Mul => x.checked_mul(y).ok_or_else(|| overflow("BIGINT"))?,
                ArOp::IntDiv | ArOp::Rem if y == 0 => return Ok(V::Null),
                ArOp::IntDiv => x / y,
                // The sign of the dividend; never out of range.
                ArOp::Rem => return Ok(V::Int(x % y)),
                ArOp::Div => return Err(internal("exact division")),
            };
            if !in_bigint(r, unsigned) {
                return Err(overflow(if unsigned {
                    "BIGINT UNSIGNED"
                } else {
                    "BIGINT"
                }));
            }
            V::Int(r)
        }
        AMode::Dec => {
            let (x, y) = (a.dec()?, b.dec()?);
            let r = match op {
                ArOp::Add => x.add(y),
                ArOp::Sub => x.sub(y),
                ArOp::Mul => x.mul(y),
                ArOp::Rem => match x.rem(y) {
                    Some(None) => return Ok(V::Null),
                    Some(Some(r)) => Some(r),
                    None => None,
                },
                ArOp::Div | ArOp::IntDiv => return Err(internal("exact division")),
            };
            V::Dec(r.ok_or_else(|| overflow("DECIMAL"))?)
        }
        AMode::Dbl => {
            let (x, y) = (a.dbl()?, b.dbl()?);
            let r = match op {
                ArOp::Add => x + y,
                ArOp::Sub => x - y,
                ArOp::Mul => x * y,
                ArOp::Div | ArOp::Rem if y == 0.0 => return Ok(V::Null),
                ArOp::Div => x / y,
                ArOp::Rem => x % y,
                ArOp::IntDiv => return Err(internal("DIV on doubles")),
            };
            if !r.is_finite() {
                return Err(overflow("DOUBLE"));
            }
            V::Dbl(r)
        }
    })
}

struct Compiler<'t> {
    table: &'t TableInfo,
    row_columns: &'t [&'t str],
}

type Compiled = (Node, Ty);

impl Compiler<'_> {
    fn expr(&self, e: &Expr) -> Result<Compiled, String> {
        match e {
            Expr::Nested(inner) => self.expr(inner),
            Expr::Identifier(id) => self.column(&id.value),
            Expr::CompoundIdentifier(parts) => Err(format!(
                "`{}`: name columns without a table or database prefix",
                e_text(parts.iter().map(|p| p.value.as_str()))
            )),
            Expr::Value(v) => literal(&v.value),
            Expr::UnaryOp { op, expr } => {
                let (n, ty) = self.expr(expr)?;
                match op {
                    UnaryOperator::Plus => Ok((n, ty)),
                    UnaryOperator::Not => {
                        truthy(ty)?;
                        Ok((Node::Not(Box::new(n)), Ty::Int { unsigned: false }))
                    }
                    UnaryOperator::Minus => {
                        let (mode, ty) = match ty {
                            Ty::Null => (AMode::Null, Ty::Null),
                            Ty::Int { .. } => {
                                (AMode::Int { unsigned: false }, Ty::Int { unsigned: false })
                            }
                            Ty::Dec => (AMode::Dec, Ty::Dec),
                            Ty::Dbl | Ty::Str { .. } => (AMode::Dbl, Ty::Dbl),
                            Ty::Tmp(_) => return Err(no_temporal_arith()),
                        };
                        Ok((
                            Node::Neg {
                                mode,
                                e: Box::new(n),
                            },
                            ty,
                        ))
                    }
                    other => Err(format!("the operator `{other}` is not supported")),
                }
            }
            Expr::BinaryOp { left, op, right } => self.binary(left, op, right),
            Expr::IsNull(x) => self.is(x, IsTest::Null, false),
            Expr::IsNotNull(x) => self.is(x, IsTest::Null, true),
            Expr::IsUnknown(x) => self.is(x, IsTest::Null, false),
            Expr::IsNotUnknown(x) => self.is(x, IsTest::Null, true),
            Expr::IsTrue(x) => self.is(x, IsTest::True, false),
            Expr::IsNotTrue(x) => self.is(x, IsTest::True, true),
            Expr::IsFalse(x) => self.is(x, IsTest::False, false),
            Expr::IsNotFalse(x) => self.is(x, IsTest::False, true),
            Expr::In {
                expr,
                target: InTarget::List(list),
                negated,
                global: false,
            } => {
                let mut acc: Option<Node> = None;
                for item in list {
                    let eq = self.compare(CmpOp::Eq, expr, item)?;
                    acc = Some(match acc {
                        None => eq,
                        Some(a) => Node::Or(Box::new(a), Box::new(eq)),
                    });
                }
                let node = acc.ok_or("an empty IN list")?;
                Ok((not_if(node, *negated), Ty::Int { unsigned: false }))
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let ge = self.compare(CmpOp::Ge, expr, low)?;
                let le = self.compare(CmpOp::Le, expr, high)?;
                let node = Node::And(Box::new(ge), Box::new(le));
                Ok((not_if(node, *negated), Ty::Int { unsigned: false }))
            }
            Expr::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char,
            } => self.like(expr, pattern, escape_char.as_deref(), *negated),
            Expr::Function(f) => Err(format!(
                "functions such as {}() are not evaluated on binlog rows",
                f.name
            )),
            other => Err(format!("`{other}` is not supported on binlog rows")),
        }
    }

    fn column(&self, name: &str) -> Result<Compiled, String> {
        let c = column_of(self.table, name)
            .ok_or_else(|| format!("table {} has no column `{name}`", self.table.name))?;
        let slot = self
            .row_columns
            .iter()
            .position(|n| *n == c.name)
            .ok_or_else(|| format!("internal: column `{}` is not rendered", c.name))?;
        let ty = column_type(c)?;
        Ok((Node::Col { slot, ty }, ty))
    }

    fn is(&self, x: &Expr, test: IsTest, negated: bool) -> Result<Compiled, String> {
        let (n, ty) = self.expr(x)?;
        if test != IsTest::Null {
            truthy(ty)?;
        }
        Ok((
            Node::Is {
                e: Box::new(n),
                test,
                negated,
            },
            Ty::Int { unsigned: false },
        ))
    }

    fn binary(&self, l: &Expr, op: &BinaryOperator, r: &Expr) -> Result<Compiled, String> {
        use BinaryOperator as B;
        let cmp = match op {
            B::Eq => Some(CmpOp::Eq),
            B::NotEq => Some(CmpOp::Ne),
            B::Lt => Some(CmpOp::Lt),
            B::LtEq => Some(CmpOp::Le),
            B::Gt => Some(CmpOp::Gt),
            B::GtEq => Some(CmpOp::Ge),
            B::Spaceship => Some(CmpOp::NullSafeEq),
            _ => None,
        };
        if let Some(c) = cmp {
            return Ok((self.compare(c, l, r)?, Ty::Int { unsigned: false }));
        }
        let logic = |make: fn(Box<Node>, Box<Node>) -> Node| -> Result<Compiled, String> {
            let (a, at) = self.expr(l)?;
            let (b, bt) = self.expr(r)?;
            truthy(at)?;
            truthy(bt)?;
            Ok((make(Box::new(a), Box::new(b)), Ty::Int { unsigned: false }))
        };
        let ar = match op {
            B::And => return logic(Node::And),
            B::Or => return logic(Node::Or),
            B::Xor => return logic(Node::Xor),
            B::Plus => ArOp::Add,
            B::Minus => ArOp::Sub,
            B::Multiply => ArOp::Mul,
            B::Divide => ArOp::Div,
            B::MyIntegerDivide => ArOp::IntDiv,
            B::Modulo => ArOp::Rem,
            other => return Err(format!("the operator `{other}` is not supported")),
        };
        let (a, at) = self.expr(l)?;
        let (b, bt) = self.expr(r)?;
        let num = |t: Ty| -> Result<Ty, String> {
            match t {
                Ty::Tmp(_) => Err(no_temporal_arith()),
                // Strings in arithmetic are read as doubles.
                Ty::Str { .. } => Ok(Ty::Dbl),
                t => Ok(t),
            }
        };
        let (at2, bt2) = (num(at)?, num(bt)?);
        let (mode, ty) = match (at2, bt2) {
            (Ty::Null, _) | (_, Ty::Null) => (AMode::Null, Ty::Null),
            (Ty::Int { unsigned: x }, Ty::Int { unsigned: y }) => {
                let unsigned = if ar == ArOp::Rem { x } else { x || y };
                (AMode::Int { unsigned }, Ty::Int { unsigned })
            }
            (Ty::Dbl, _) | (_, Ty::Dbl) => (AMode::Dbl, Ty::Dbl),
            _ => (AMode::Dec, Ty::Dec),
        };
        match (ar, mode) {
            (ArOp::Div, AMode::Int { .. } | AMode::Dec) => {
                return Err(
                    "`/` on integers or decimals is not supported (MySQL's decimal \
                            division rounding is not reproduced); use DIV for integer division"
                        .into(),
                )
            }
            (ArOp::Rem, AMode::Dec) => {
                return Err(
                    "`%` on decimals is not supported (MySQL's decimal remainder keeps \
                            a negative zero that compares below zero); use it on integers or \
                            doubles"
                        .into(),
                )
            }
            (ArOp::IntDiv, AMode::Dec | AMode::Dbl) => {
                return Err("DIV is supported on integers only".into())
            }
            _ => {}
        }
        Ok((
            Node::Arith {
                op: ar,
                mode,
                l: Box::new(a),
                r: Box::new(b),
            },
            ty,
        ))
    }

    /// A comparison, with MySQL's choice of how to compare the two sides.
    fn compare(&self, op: CmpOp, l: &Expr, r: &Expr) -> Result<Node, String> {
        let (mut a, at) = self.expr(l)?;
        let (mut b, bt) = self.expr(r)?;
        let mode = match (at, bt) {
            (Ty::Null, _) | (_, Ty::Null) => Mode::Dbl,
            (Ty::Tmp(x), Ty::Tmp(y)) => {
                if (x == Kind::Time) != (y == Kind::Time) {
                    return Err("a TIME is compared with a DATE/DATETIME".into());
                }
                Mode::Tmp
            }
            (Ty::Tmp(k), _) => {
                b = temporal_literal(k, b)?;
                Mode::Tmp
            }
            (_, Ty::Tmp(k)) => {
                a = temporal_literal(k, a)?;
                Mode::Tmp
            }
            (Ty::Str { coll: x }, Ty::Str { coll: y }) => match (x, y) {
                (Some(x), Some(y)) if x != y => {
                    return Err("two string columns of different collations are compared".into())
                }
                (Some(c), _) | (_, Some(c)) => Mode::Str(c),
                (None, None) => {
                    return Err("two string constants are compared (the session collation \
                                decides)"
                        .into())
                }
            },
            (Ty::Int { .. }, Ty::Int { .. }) => Mode::Int,
            // An integer column against a string constant that is exactly an integer: MySQL
            // converts the constant to the column's type.
            (Ty::Int { .. }, Ty::Str { coll: None }) if int_const(&mut b, &a) => Mode::Int,
            (Ty::Str { coll: None }, Ty::Int { .. }) if int_const(&mut a, &b) => Mode::Int,
            (Ty::Int { .. } | Ty::Dec, Ty::Int { .. } | Ty::Dec) => Mode::Dec,
            _ => Mode::Dbl,
        };
        Ok(Node::Cmp {
            op,
            mode,
            l: Box::new(a),
            r: Box::new(b),
        })
    }

    fn like(
        &self,
        expr: &Expr,
        pattern: &Expr,
        escape: Option<&Expr>,
        negated: bool,
    ) -> Result<Compiled, String> {
        let (n, ty) = self.expr(expr)?;
        let (subject, coll) = match (n, ty) {
            (n, Ty::Str { coll }) => (n, coll.unwrap_or(Coll::BinPad)),
            (n @ Node::Null, _) => (n, Coll::BinPad),
            // A number or date column is matched as the text MySQL prints for it.
            (Node::Col { slot, .. }, Ty::Int { .. } | Ty::Dec | Ty::Tmp(_)) => {
                (Node::Raw(slot), Coll::BinPad)
            }
            _ => {
                return Err("LIKE applies to a column of a string, integer, decimal or \
                            temporal type"
                    .into())
            }
        };
        let text = match pattern {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                _ => return Err("a LIKE pattern must be a string literal".into()),
            },
            _ => return Err("a LIKE pattern must be a string literal".into()),
        };
        let escape = match escape {
            None => Some(b'\\'),
            Some(Expr::Value(v)) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s)
                    if s.len() == 1 && s.is_ascii() =>
                {
                    Some(s.as_bytes()[0])
                }
                _ => return Err("ESCAPE takes one ASCII character".into()),
            },
            Some(_) => return Err("ESCAPE takes one ASCII character".into()),
        };
        let pat = collation::pattern(coll, text.as_bytes(), escape)?;
        let node = Node::Like {
            e: Box::new(subject),
            pat,
            coll,
        };
        Ok((not_if(node, negated), Ty::Int { unsigned: false }))
    }
}

fn not_if(n: Node, negated: bool) -> Node {
    if negated {
        Node::Not(Box::new(n))
    } else {
        n
    }
}

fn no_temporal_arith() -> String {
    "arithmetic on a date or time value is not supported".into()
}

fn e_text<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts.collect::<Vec<_>>().join(".")
}

/// A string literal compared with a temporal value becomes a value of its type.
fn temporal_literal(kind: Kind, n: Node) -> Result<Node, String> {
    match n {
        Node::Str(s) => {
            let text = String::from_utf8(s).map_err(|_| "a non-UTF-8 literal".to_owned())?;
            Ok(Node::Tmp(temporal::literal(kind, &text)?))
        }
        _ => Err(
            "a date or time value can be compared only with a string literal or a \
                  column of a compatible temporal type"
                .into(),
        ),
    }
}

/// Turns the string constant `c` into an integer constant when `other` is an integer column
/// and the string is exactly an integer in BIGINT range.
fn int_const(c: &mut Node, other: &Node) -> bool {
    if !matches!(other, Node::Col { .. }) {
        return false;
    }
    if let Node::Str(s) = c {
        if let Some(i) = exact_int(s).filter(|i| in_bigint(*i, *i >= 0)) {
            *c = Node::Int(i);
            return true;
        }
    }
    false
}

fn literal(v: &Value) -> Result<Compiled, String> {
    Ok(match v {
        Value::Null => (Node::Null, Ty::Null),
        Value::Boolean(b) => (Node::Int(i128::from(*b)), Ty::Int { unsigned: false }),
        // The parser reads `\a` and `\f` as control characters; MySQL reads them as `a` and `f`.
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s)
            if s.contains(['\u{7}', '\u{c}']) =>
        {
            return Err(format!(
                "the string literal {v} holds \\a or \\f, which MySQL reads differently; \
                 write the character itself"
            ))
        }
        Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
            (Node::Str(s.as_bytes().to_vec()), Ty::Str { coll: None })
        }
        Value::Number(text, _) => {
            let bad = || format!("the number {text} is out of the supported range");
            if text.contains(['e', 'E']) {
                let f: f64 = text.parse().map_err(|_| bad())?;
                if !f.is_finite() {
                    return Err(bad());
                }
                (Node::Dbl(f), Ty::Dbl)
            } else if text.contains('.') {
                let d = Dec::parse(text.as_bytes()).ok_or_else(bad)?;
                (Node::Dec(d), Ty::Dec)
            } else {
                let i: i128 = text.parse().map_err(|_| bad())?;
                if i <= i128::from(i64::MAX) {
                    (Node::Int(i), Ty::Int { unsigned: false })
                } else if i <= i128::from(u64::MAX) {
                    (Node::Int(i), Ty::Int { unsigned: true })
                } else {
                    let d = Dec::parse(text.as_bytes()).ok_or_else(bad)?;
                    (Node::Dec(d), Ty::Dec)
                }
            }
        }
        other => return Err(format!("the literal {other} is not supported")),
    })
}

fn column_type(c: &crate::mysql::ColumnInfo) -> Result<Ty, String> {
    let unsupported = || {
        format!(
            "column `{}` has type {}, which filters on binlog rows do not support",
            c.name, c.column_type
        )
    };
    if c.json || c.generated.is_some() {
        return Err(unsupported());
    }
    let coll = |binary: bool| {
        collation::of_column(c.collation.as_deref(), binary)
            .map(|coll| Ty::Str { coll: Some(coll) })
            .map_err(|e| format!("column `{}`: {e}", c.name))
    };
    match c.data_type.to_ascii_lowercase().as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => Ok(Ty::Int {
            unsigned: c.unsigned,
        }),
        "decimal" | "numeric" => match c.numeric_precision {
            Some(p) if p <= u64::from(MAX_DEC_DIGITS) => Ok(Ty::Dec),
            _ => Err(format!(
                "column `{}`: DECIMAL wider than {MAX_DEC_DIGITS} digits is not supported",
                c.name
            )),
        },
        "float" | "double" | "real" | "double precision" => Ok(Ty::Dbl),
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => coll(false),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => coll(true),
        "date" => Ok(Ty::Tmp(Kind::Date)),
        "datetime" | "timestamp" => Ok(Ty::Tmp(Kind::DateTime)),
        "time" => Ok(Ty::Tmp(Kind::Time)),
        _ => Err(unsupported()),
    }
}
