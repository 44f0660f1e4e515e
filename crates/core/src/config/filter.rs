//! Parsing of per-table WHERE filters (`objects.tables[i].filter`).
//!
//! A filter is evaluated twice: by MySQL in the full copy's `SELECT … WHERE filter`, and by
//! tsmigrate on every binlog row image during incremental migration. Both must agree, so a
//! filter must depend on the row alone. That is why subqueries are rejected: a subquery reads
//! other tables, whose state at the time of a binlog event is unknown (and reading the source
//! per event would be slow and still racy), so full copy and replay would disagree.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Query, Visit, Visitor};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// Parses `filter` as exactly one MySQL expression (a WHERE condition without the `WHERE`
/// keyword). Rejects `;`, several statements, trailing text and subqueries. The error text
/// explains the problem.
pub fn parse_filter(filter: &str) -> Result<Expr, String> {
    let text = filter.trim();
    if text.is_empty() {
        return Err("the filter is empty".to_owned());
    }
    if text
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("where "))
    {
        return Err("leave out the WHERE keyword: the filter is the condition only".to_owned());
    }
    let dialect = MySqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| format!("not valid SQL: {e}"))?;
    let expr = parser
        .parse_expr()
        .map_err(|e| format!("not a valid SQL expression: {e}"))?;
    match parser.peek_token().token {
        Token::EOF => {}
        Token::SemiColon => {
            return Err(
                "`;` is not allowed: a filter is one WHERE expression, not statements".to_owned(),
            )
        }
        other => {
            return Err(format!(
                "unexpected `{other}` after the expression: a filter is exactly one WHERE \
                 expression"
            ))
        }
    }
    if expr.visit(&mut SubqueryFinder).is_break() {
        return Err(
            "subqueries are not allowed: the filter is also evaluated on binlog row \
                    images, where only the row's own columns are known"
                .to_owned(),
        );
    }
    Ok(expr)
}

struct SubqueryFinder;

impl Visitor for SubqueryFinder {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        ControlFlow::Break(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_single_expressions() {
        for ok in [
            "status <> 'deleted'",
            "id > 1000 AND `order date` >= '2024-01-01'",
            "  deleted_at IS NULL  ",
            "region IN ('eu', 'us') OR amount BETWEEN 1 AND 10",
            "name LIKE 'a%' -- trailing comment",
            "NOT (a = 1)",
        ] {
            parse_filter(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = parse_filter("a = 1").unwrap();
        assert_eq!(e.to_string(), "a = 1");
    }

    #[test]
    fn rejects_everything_else() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("WHERE a = 1", "WHERE keyword"),
            ("a = 1;", "`;`"),
            ("a = 1; DROP TABLE t", "`;`"),
            ("a = 1 b = 2", "unexpected"),
            ("a = (SELECT max(x) FROM t)", "subqueries"),
            ("EXISTS (SELECT 1 FROM t WHERE t.id = id)", "subqueries"),
            ("id IN (SELECT id FROM t)", "subqueries"),
            ("a = ", "not a valid SQL expression"),
            ("'unterminated", "not valid SQL"),
        ];
        for (bad, why) in cases {
            let e = parse_filter(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
