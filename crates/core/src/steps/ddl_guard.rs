//! DDL read from the binlog, checked against the migrated tables. Column changes go on (the
//! next TABLE_MAP carries the new columns); anything that replaces, renames, empties or drops a
//! migrated table, or changes its primary key, stops the migration: applying rows past it
//! would write them under the wrong key or to a table that no longer means the same thing.
//!
//! The check reads the statement's leading keywords after removing comments: MySQL's
//! versioned comments (`/*!50001 ... */`, MariaDB's `/*M!100100 ... */`) run on the server,
//! so their text counts as code; plain comments do not.

use super::error::{ErrorName, StepError};
use crate::mysql::binlog;

/// Stops with `Migration.SchemaConflict` when `statement` breaks one of `tables` (the
/// migrated tables of `database`, by source name).
pub(crate) fn check_statement(
    statement: &binlog::Statement,
    database: &str,
    tables: &[String],
) -> Result<(), StepError> {
    let code = strip_comments(&statement.sql);
    let upper = code.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| c.is_whitespace() || c == '(' || c == ',' || c == ';')
        .filter(|w| !w.is_empty())
        .collect();
    let Some(kind) = kind_of(&words) else {
        return Ok(());
    };
    let mentioned: Vec<&str> = if kind == Kind::DropDatabase {
        // Every migrated table lives in `database`.
        let dropped = words
            .iter()
            .rev()
            .find(|w| !matches!(**w, "IF" | "EXISTS"))
            .map(|w| w.trim_matches('`'));
        if dropped.is_some_and(|d| d.eq_ignore_ascii_case(database)) {
            tables.iter().map(String::as_str).collect()
        } else {
            Vec::new()
        }
    } else {
        let in_database = statement.schema == database;
        tables
            .iter()
            .filter(|t| {
                mentions_qualified(&code, database, t) || (in_database && mentions(&code, t))
            })
            .map(String::as_str)
            .collect()
    };
    if mentioned.is_empty() {
        return Ok(());
    }
    if kind == Kind::Alter && !alter_conflicts(&words) {
        return Ok(());
    }
    let mut mentioned = mentioned;
    mentioned.sort_unstable();
    Err(StepError::new(
        ErrorName::SchemaConflict,
        format!(
            "the source ran `{}` on migrated table {}: the binlog cannot be applied past it. \
             Fix: start a new migration (schema and full) for the table as it is now",
            statement.sql.chars().take(200).collect::<String>(),
            mentioned.join(", ")
        ),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Alter,
    /// DROP / RENAME / TRUNCATE TABLE, CREATE OR REPLACE TABLE: always a conflict.
    Replace,
    DropDatabase,
}

fn kind_of(words: &[&str]) -> Option<Kind> {
    match words {
        ["ALTER", rest @ ..] => {
            let skip = rest
                .iter()
                .take_while(|w| matches!(**w, "ONLINE" | "OFFLINE" | "IGNORE"))
                .count();
            (rest.get(skip) == Some(&"TABLE")).then_some(Kind::Alter)
        }
        ["DROP", "TABLE" | "TABLES" | "TEMPORARY", ..] => Some(Kind::Replace),
        ["DROP", "DATABASE" | "SCHEMA", ..] => Some(Kind::DropDatabase),
        ["RENAME", "TABLE" | "TABLES", ..] => Some(Kind::Replace),
        ["TRUNCATE", ..] => Some(Kind::Replace),
        ["CREATE", "OR", "REPLACE", rest @ ..] => rest.contains(&"TABLE").then_some(Kind::Replace),
        _ => None,
    }
}

/// An ALTER TABLE conflicts when it renames the table (`RENAME [TO|AS] x`, unlike `RENAME
/// COLUMN|INDEX|KEY`) or touches the primary key.
fn alter_conflicts(words: &[&str]) -> bool {
    let renames_table = words
        .windows(2)
        .any(|w| w[0] == "RENAME" && !matches!(w[1], "COLUMN" | "INDEX" | "KEY"))
        || words.last() == Some(&"RENAME");
    let primary_key = words.windows(2).any(|w| w == ["PRIMARY", "KEY"]);
    renames_table || primary_key
}

/// The statement without comments; the body of a versioned comment is kept as code.
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    // Depth of versioned comments whose `*/` must be dropped.
    let mut versioned = 0usize;
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && q != '`' {
                if let Some((_, n)) = chars.next() {
                    out.push(n);
                }
            } else if c == q {
                quote = None;
            }
            continue;
        }
        let rest = &sql[i..];
        if rest.starts_with("/*!") || rest.starts_with("/*M!") {
            let skip = if rest.starts_with("/*!") { 3 } else { 4 };
            let digits = rest[skip..]
                .chars()
                .take_while(char::is_ascii_digit)
                .count();
            for _ in 1..skip + digits {
                chars.next();
            }
            versioned += 1;
            out.push(' ');
        } else if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/").map_or(rest.len(), |e| e + 4);
            while chars.peek().is_some_and(|(j, _)| *j < i + end) {
                chars.next();
            }
            out.push(' ');
        } else if rest.starts_with("*/") && versioned > 0 {
            chars.next();
            versioned -= 1;
            out.push(' ');
        } else if c == '#' || rest.starts_with("-- ") || rest.starts_with("--\t") || rest == "--" {
            while chars.peek().is_some_and(|(_, n)| *n != '\n') {
                chars.next();
            }
            out.push(' ');
        } else {
            if matches!(c, '\'' | '"' | '`') {
                quote = Some(c);
            }
            out.push(c);
        }
    }
    out
}

/// Whether `sql` names `database.table` (quoted or not).
fn mentions_qualified(sql: &str, database: &str, table: &str) -> bool {
    let lower = sql.to_ascii_lowercase().replace('`', "");
    mentions(
        &lower,
        &format!("{}.{}", database.to_ascii_lowercase(), table),
    )
}

/// Whether `sql` names `table` as an identifier (bare, quoted, or qualified).
fn mentions(sql: &str, table: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let t = table.to_ascii_lowercase();
    lower.match_indices(&t).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + t.len()..].chars().next();
        let boundary =
            |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'));
        boundary(before) && boundary(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(schema: &str, sql: &str) -> Result<(), String> {
        let tables = ["orders".to_string(), "items".to_string()];
        let statement = binlog::Statement {
            schema: schema.to_string(),
            sql: sql.to_string(),
        };
        check_statement(&statement, "shop", &tables).map_err(|e| e.to_string())
    }

    #[test]
    fn table_names_match_as_identifiers_only() {
        assert!(mentions("ALTER TABLE `orders` ADD c INT", "orders"));
        assert!(mentions("drop table shop.orders", "orders"));
        assert!(!mentions("ALTER TABLE orders_archive ADD c INT", "orders"));
        assert!(!mentions("ALTER TABLE my_orders ADD c INT", "orders"));
        assert!(mentions_qualified(
            "TRUNCATE `shop`.`orders`",
            "shop",
            "orders"
        ));
        assert!(!mentions_qualified(
            "TRUNCATE `other`.`orders`",
            "shop",
            "orders"
        ));
    }

    #[test]
    fn column_changes_go_on() {
        for sql in [
            "ALTER TABLE orders ADD COLUMN note TEXT",
            "ALTER TABLE orders RENAME COLUMN a TO b",
            "alter table orders rename index i1 to i2",
            "ALTER TABLE orders MODIFY note VARCHAR(10) COMMENT 'drop table orders'",
            "ALTER TABLE orders_archive RENAME TO old",
            "DROP TABLE other_table",
            "DROP DATABASE other",
            "CREATE TABLE orders_copy LIKE orders_template",
        ] {
            assert_eq!(check("shop", sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn statements_that_replace_rename_empty_or_rekey_a_table_stop() {
        for sql in [
            "ALTER TABLE orders RENAME TO orders_old",
            "ALTER TABLE orders RENAME orders_old",
            "ALTER TABLE orders RENAME AS orders_old",
            "ALTER ONLINE IGNORE TABLE orders DROP PRIMARY KEY, ADD PRIMARY KEY (id, at)",
            "ALTER TABLE `orders`\n  ADD PRIMARY   KEY(id)",
            "DROP TABLE IF EXISTS `orders` /* generated by server */",
            "DROP TABLES items, orders",
            "RENAME TABLE orders TO orders_old, x TO y",
            "TRUNCATE TABLE orders",
            "CREATE OR REPLACE TABLE orders (id INT PRIMARY KEY)",
            "/* app v2 */ RENAME TABLE orders TO orders_old",
            "-- migration 12\nTRUNCATE orders",
            "# hash comment\nDROP TABLE orders",
            "/*!40000 ALTER TABLE orders RENAME TO x */",
            "/*M!100100 DROP TABLE orders */",
            "DROP DATABASE shop",
            "DROP SCHEMA IF EXISTS `shop`",
        ] {
            let err = check("shop", sql).expect_err(sql);
            assert!(err.contains("start a new migration"), "{sql}: {err}");
        }
        // Qualified from another default database.
        assert!(check("other", "TRUNCATE shop.orders").is_err());
        assert_eq!(check("other", "TRUNCATE orders"), Ok(()));
    }

    #[test]
    fn comments_and_quotes_are_told_apart() {
        assert_eq!(
            strip_comments("a /* x */ b")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            strip_comments("'/* not a comment */' x").trim(),
            "'/* not a comment */' x"
        );
        assert_eq!(
            strip_comments("/*!50001 DROP TABLE t */").trim(),
            "DROP TABLE t"
        );
        assert_eq!(
            strip_comments("x -- y\nz")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["x", "z"]
        );
        assert_eq!(strip_comments("unterminated /* x").trim(), "unterminated");
    }
}
