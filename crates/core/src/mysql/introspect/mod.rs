//! Schema introspection from `information_schema`: tables, columns (with everything the type
//! mapping needs), primary and unique keys, size estimates.
//!
//! Sources: `TABLES` (engine, estimates, collation), `COLUMNS` ordered by `ORDINAL_POSITION`,
//! `STATISTICS` (unique indexes in the server's key order: PRIMARY, then UNIQUE NOT NULL keys,
//! then other UNIQUE keys, the order InnoDB uses to pick a clustered index), and on MariaDB
//! `CHECK_CONSTRAINTS` to recognise JSON columns (MariaDB's JSON is LONGTEXT with a
//! `json_valid()` check). Type details are parsed from `COLUMN_TYPE` by pure functions
//! ([`parse_column_type`], [`parse_column_default`]) so MySQL 8 answers are unit-tested.
//!
//! Invisible columns (MySQL >= 8.0.23, MariaDB >= 10.3.3) are listed like any other column,
//! flagged `invisible`: a reader must name them explicitly (`SELECT *` skips them).
//!
//! The unit tests are in `introspect/tests.rs`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::connect::{col, exec_text, query_text, Conn, TextRow};
use super::error::SourceError;
use super::flavor::{parse_version, Flavor};

/// How many table names go into one `IN (...)` list.
const BATCH: usize = 500;

/// A generated column's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generated {
    Virtual,
    /// `STORED` (MariaDB also `PERSISTENT`).
    Stored,
}

/// A column default, normalised across MySQL and MariaDB (MariaDB prints defaults as SQL:
/// `'text'`, `NULL`, `current_timestamp()`; MySQL prints the bare value and flags
/// expressions with `DEFAULT_GENERATED`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnDefault {
    /// A constant, unquoted (`abc`, `0`, `2024-01-01`, `b'101'`).
    Literal(String),
    /// An expression evaluated at insert (`current_timestamp(6)`, `(1 + 1)`, `uuid()`).
    Expression(String),
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// 1-based `ORDINAL_POSITION` (binlog row images follow this order).
    pub ordinal: u32,
    /// `DATA_TYPE`, lower case: `bigint`, `varchar`, `decimal`, `json`, `enum`, ...
    pub data_type: String,
    /// `COLUMN_TYPE`, the full text: `bigint(20) unsigned`, `enum('a','b')`.
    pub column_type: String,
    pub unsigned: bool,
    pub zerofill: bool,
    pub nullable: bool,
    pub char_max_length: Option<u64>,
    pub octet_max_length: Option<u64>,
    pub numeric_precision: Option<u64>,
    pub numeric_scale: Option<u64>,
    pub datetime_precision: Option<u64>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// ENUM labels in order (index 1 = first), unescaped.
    pub enum_values: Vec<String>,
    /// SET labels in bit order (bit 0 = first), unescaped.
    pub set_values: Vec<String>,
    /// `n` of `BIT(n)`.
    pub bit_width: Option<u32>,
    pub invisible: bool,
    pub generated: Option<Generated>,
    pub generation_expression: Option<String>,
    pub auto_increment: bool,
    /// `None` when the column has no default or defaults to NULL.
    pub default: Option<ColumnDefault>,
    /// A JSON column: `json` on MySQL, LONGTEXT with a `json_valid()` check on MariaDB.
    pub json: bool,
}

impl ColumnInfo {
    /// A nullable, visible, non-generated column with only its name, position and type
    /// known (unsigned, zerofill and JSON read off the type); the rest unset.
    pub fn of_type(name: &str, ordinal: u32, data_type: &str, column_type: &str) -> Self {
        ColumnInfo {
            name: name.into(),
            ordinal,
            data_type: data_type.into(),
            column_type: column_type.into(),
            unsigned: column_type.contains("unsigned"),
            zerofill: column_type.contains("zerofill"),
            nullable: true,
            char_max_length: None,
            octet_max_length: None,
            numeric_precision: None,
            numeric_scale: None,
            datetime_precision: None,
            charset: None,
            collation: None,
            enum_values: vec![],
            set_values: vec![],
            bit_width: None,
            invisible: false,
            generated: None,
            generation_expression: None,
            auto_increment: false,
            default: None,
            json: data_type == "json",
        }
    }
}

/// A unique index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueKey {
    pub name: String,
    pub columns: Vec<String>,
    /// Every column of the key is NOT NULL (then the key identifies rows like a PK).
    pub all_not_null: bool,
}

/// One base table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    /// In `ORDINAL_POSITION` order.
    pub columns: Vec<ColumnInfo>,
    /// PRIMARY KEY columns in key order; empty when there is none.
    pub primary_key: Vec<String>,
    /// UNIQUE indexes other than the primary key, in the server's key order.
    pub unique_keys: Vec<UniqueKey>,
    /// `TABLE_ROWS`: an estimate for InnoDB (exact for MyISAM).
    pub row_estimate: u64,
    pub avg_row_length: u64,
    pub data_length: u64,
    pub engine: Option<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
}

impl TableInfo {
    pub fn column(&self, name: &str) -> Option<&ColumnInfo> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The columns that identify a row for the migration: the primary key, else the first
/// unique key whose columns are all NOT NULL; `None` when the table has neither (DTS
/// requires one; the config may name one with `primary_key`).
pub fn key_for_migration(table: &TableInfo) -> Option<Vec<String>> {
    if !table.primary_key.is_empty() {
        return Some(table.primary_key.clone());
    }
    table
        .unique_keys
        .iter()
        .find(|k| k.all_not_null)
        .map(|k| k.columns.clone())
}

// ---------------------------------------------------------------------------------------------
// Pure parsing
// ---------------------------------------------------------------------------------------------

/// `COLUMN_TYPE` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedColumnType {
    /// Lower-case base type: `int`, `decimal`, `enum`, `bit`, `varchar`.
    pub base: String,
    /// The parenthesised arguments: `["10", "2"]` for `decimal(10,2)`; the unescaped labels
    /// for `enum`/`set`.
    pub args: Vec<String>,
    pub unsigned: bool,
    pub zerofill: bool,
}

/// Parses `COLUMN_TYPE` (`bigint(20) unsigned zerofill`, `enum('a','it''s','back\\slash')`,
/// `decimal(65,30)`, `timestamp(6)`). Labels are unescaped the way the server escapes them:
/// `''` and `\'` are a quote, `\\` a backslash, `\0 \n \r \t \Z` control characters.
pub fn parse_column_type(column_type: &str) -> Result<ParsedColumnType, String> {
    let s = column_type.trim();
    let (base, rest) = match s.find(|c: char| c == '(' || c.is_whitespace()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    if base.is_empty() {
        return Err("empty column type".to_string());
    }
    let mut args = Vec::new();
    let mut rest = rest.trim_start();
    if rest.starts_with('(') {
        let mut chars = rest.char_indices().skip(1).peekable();
        let mut cur = String::new();
        let mut in_quote = false;
        let mut quoted = false;
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if in_quote {
                match c {
                    '\'' if chars.peek().map(|p| p.1) == Some('\'') => {
                        chars.next();
                        cur.push('\'');
                    }
                    '\'' => in_quote = false,
                    '\\' => {
                        let (_, n) = chars.next().ok_or("dangling escape")?;
                        cur.push(match n {
                            '0' => '\0',
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            'Z' => '\x1a',
                            other => other,
                        });
                    }
                    other => cur.push(other),
                }
                continue;
            }
            match c {
                '\'' => {
                    in_quote = true;
                    quoted = true;
                }
                ',' => {
                    args.push(if quoted {
                        std::mem::take(&mut cur)
                    } else {
                        std::mem::take(&mut cur).trim().to_string()
                    });
                    quoted = false;
                }
                ')' => {
                    args.push(if quoted {
                        cur.clone()
                    } else {
                        cur.trim().to_string()
                    });
                    end = Some(i);
                    break;
                }
                c if c.is_whitespace() => {}
                other => cur.push(other),
            }
        }
        let end = end.ok_or("unclosed parenthesis")?;
        rest = &rest[end + 1..];
    }
    let words: Vec<String> = rest
        .split_whitespace()
        .map(|w| w.to_ascii_lowercase())
        .collect();
    Ok(ParsedColumnType {
        base: base.to_ascii_lowercase(),
        args,
        unsigned: words.iter().any(|w| w == "unsigned"),
        zerofill: words.iter().any(|w| w == "zerofill"),
    })
}

/// Normalises `COLUMN_DEFAULT` (see [`ColumnDefault`]); `extra` is the column's `EXTRA`.
pub fn parse_column_default(
    flavor: Flavor,
    raw: Option<&str>,
    extra: &str,
    data_type: &str,
) -> Option<ColumnDefault> {
    let raw = raw?;
    match flavor {
        Flavor::MariaDb => {
            let t = raw.trim();
            if t.eq_ignore_ascii_case("NULL") {
                None
            } else if t.len() >= 2 && t.starts_with('\'') && t.ends_with('\'') {
                Some(ColumnDefault::Literal(unquote_sql_string(
                    &t[1..t.len() - 1],
                )))
            } else if t.parse::<f64>().is_ok()
                || ((t.starts_with("b'") || t.starts_with("x'") || t.starts_with("0x"))
                    && !t.contains('('))
            {
                Some(ColumnDefault::Literal(t.to_string()))
            } else {
                Some(ColumnDefault::Expression(t.to_string()))
            }
        }
        Flavor::MySql => {
            let generated = extra
                .split_whitespace()
                .any(|w| w.eq_ignore_ascii_case("DEFAULT_GENERATED"));
            let is_now = matches!(data_type, "timestamp" | "datetime")
                && raw.to_ascii_uppercase().starts_with("CURRENT_TIMESTAMP");
            if generated || is_now {
                Some(ColumnDefault::Expression(raw.to_string()))
            } else {
                Some(ColumnDefault::Literal(raw.to_string()))
            }
        }
    }
}

fn unquote_sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\'' if it.peek() == Some(&'\'') => {
                it.next();
                out.push('\'');
            }
            '\\' => match it.next() {
                Some('0') => out.push('\0'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('Z') => out.push('\x1a'),
                Some(o) => out.push(o),
                None => out.push('\\'),
            },
            o => out.push(o),
        }
    }
    out
}

/// The character set a collation belongs to (`utf8mb4_0900_ai_ci` → `utf8mb4`; `binary`).
pub fn charset_of_collation(collation: &str) -> String {
    collation
        .split('_')
        .next()
        .unwrap_or(collation)
        .to_ascii_lowercase()
}

fn extra_words(extra: &str) -> Vec<String> {
    extra
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

fn num(r: &TextRow, name: &str) -> Option<u64> {
    col(r, name).and_then(|v| v.trim().parse::<u64>().ok())
}

/// Builds a column from an `information_schema.COLUMNS` row (the names selected in
/// [`COLUMNS_SQL`]). Pure, for tests.
pub fn column_from_row(flavor: Flavor, r: &TextRow) -> Result<ColumnInfo, SourceError> {
    const CTX: &str = "reading information_schema.COLUMNS";
    let name = col(r, "COLUMN_NAME")
        .ok_or_else(|| SourceError::unexpected(CTX, "a column without a name"))?
        .to_string();
    let column_type = col(r, "COLUMN_TYPE").unwrap_or_default().to_string();
    let data_type = col(r, "DATA_TYPE").unwrap_or_default().to_ascii_lowercase();
    let parsed = parse_column_type(&column_type).map_err(|e| {
        SourceError::unexpected(
            CTX,
            format!("column `{name}`: cannot parse {column_type:?}: {e}"),
        )
    })?;
    let extra = col(r, "EXTRA").unwrap_or_default();
    let words = extra_words(extra);
    let has = |w: &str| words.iter().any(|x| x == w);
    let generated = if has("VIRTUAL") {
        Some(Generated::Virtual)
    } else if has("STORED") || has("PERSISTENT") {
        Some(Generated::Stored)
    } else {
        None
    };
    let (enum_values, set_values) = match data_type.as_str() {
        "enum" => (parsed.args.clone(), Vec::new()),
        "set" => (Vec::new(), parsed.args.clone()),
        _ => (Vec::new(), Vec::new()),
    };
    let bit_width = if data_type == "bit" {
        parsed.args.first().and_then(|a| a.parse().ok()).or(Some(1))
    } else {
        None
    };
    Ok(ColumnInfo {
        ordinal: num(r, "ORDINAL_POSITION").unwrap_or(0) as u32,
        nullable: col(r, "IS_NULLABLE").is_some_and(|v| v.eq_ignore_ascii_case("YES")),
        char_max_length: num(r, "CHARACTER_MAXIMUM_LENGTH"),
        octet_max_length: num(r, "CHARACTER_OCTET_LENGTH"),
        numeric_precision: num(r, "NUMERIC_PRECISION"),
        numeric_scale: num(r, "NUMERIC_SCALE"),
        datetime_precision: num(r, "DATETIME_PRECISION"),
        charset: col(r, "CHARACTER_SET_NAME").map(str::to_string),
        collation: col(r, "COLLATION_NAME").map(str::to_string),
        unsigned: parsed.unsigned,
        zerofill: parsed.zerofill,
        enum_values,
        set_values,
        bit_width,
        invisible: has("INVISIBLE"),
        generation_expression: if generated.is_some() {
            col(r, "GENERATION_EXPRESSION")
                .filter(|e| !e.is_empty())
                .map(str::to_string)
        } else {
            None
        },
        generated,
        auto_increment: has("AUTO_INCREMENT"),
        default: parse_column_default(flavor, col(r, "COLUMN_DEFAULT"), extra, &data_type),
        json: data_type == "json",
        data_type,
        column_type,
        name,
    })
}

/// The column named by a MariaDB JSON check clause `json_valid(`col`)`.
pub fn json_check_column(check_clause: &str) -> Option<String> {
    let c = check_clause.trim();
    let inner = c
        .get(..11)
        .filter(|p| p.eq_ignore_ascii_case("json_valid("))
        .and(c.get(11..))?
        .strip_suffix(')')?
        .trim();
    if let Some(q) = inner.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        Some(q.replace("``", "`"))
    } else if !inner.is_empty()
        && inner
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '$')
    {
        Some(inner.to_string())
    } else {
        None
    }
}

/// Assembles tables from the `information_schema` answers. Pure, for tests.
pub fn build_tables(
    flavor: Flavor,
    schema: &str,
    table_rows: &[TextRow],
    column_rows: &[TextRow],
    unique_rows: &[TextRow],
    json_columns: &[(String, String)],
) -> Result<Vec<TableInfo>, SourceError> {
    let mut tables: Vec<TableInfo> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for r in table_rows {
        let Some(name) = col(r, "TABLE_NAME") else {
            continue;
        };
        let collation = col(r, "TABLE_COLLATION").map(str::to_string);
        index.insert(name.to_string(), tables.len());
        tables.push(TableInfo {
            schema: schema.to_string(),
            name: name.to_string(),
            columns: Vec::new(),
            primary_key: Vec::new(),
            unique_keys: Vec::new(),
            row_estimate: num(r, "TABLE_ROWS").unwrap_or(0),
            avg_row_length: num(r, "AVG_ROW_LENGTH").unwrap_or(0),
            data_length: num(r, "DATA_LENGTH").unwrap_or(0),
            engine: col(r, "ENGINE").map(str::to_string),
            charset: collation.as_deref().map(charset_of_collation),
            collation,
        });
    }
    for r in column_rows {
        let Some(&i) = col(r, "TABLE_NAME").and_then(|t| index.get(t)) else {
            continue;
        };
        let mut c = column_from_row(flavor, r)?;
        if json_columns
            .iter()
            .any(|(t, cn)| *t == tables[i].name && *cn == c.name)
        {
            c.json = true;
        }
        tables[i].columns.push(c);
    }
    for t in &mut tables {
        t.columns.sort_by_key(|c| c.ordinal);
    }
    // Unique indexes: keep the server's index order, columns by SEQ_IN_INDEX; drop indexes
    // with an expression part (COLUMN_NAME NULL, MySQL 8 functional indexes).
    // (table index, index name, [(SEQ_IN_INDEX, COLUMN_NAME)])
    type KeyParts = (usize, String, Vec<(u64, Option<String>)>);
    let mut keys: Vec<KeyParts> = Vec::new();
    for r in unique_rows {
        let Some(&i) = col(r, "TABLE_NAME").and_then(|t| index.get(t)) else {
            continue;
        };
        let Some(idx) = col(r, "INDEX_NAME") else {
            continue;
        };
        let part = (
            num(r, "SEQ_IN_INDEX").unwrap_or(0),
            col(r, "COLUMN_NAME").map(str::to_string),
        );
        match keys.iter_mut().find(|(t, n, _)| *t == i && n == idx) {
            Some(k) => k.2.push(part),
            None => keys.push((i, idx.to_string(), vec![part])),
        }
    }
    for (i, name, mut parts) in keys {
        parts.sort_by_key(|p| p.0);
        let Some(columns) = parts.into_iter().map(|p| p.1).collect::<Option<Vec<_>>>() else {
            continue;
        };
        let t = &mut tables[i];
        if name == "PRIMARY" {
            t.primary_key = columns;
        } else {
            let all_not_null = columns
                .iter()
                .all(|c| t.column(c).is_some_and(|ci| !ci.nullable));
            t.unique_keys.push(UniqueKey {
                name,
                columns,
                all_not_null,
            });
        }
    }
    Ok(tables)
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

/// The `COLUMNS` query; `{in}` is replaced by the placeholder list.
pub const COLUMNS_SQL: &str = "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, \
     IS_NULLABLE, DATA_TYPE, CHARACTER_MAXIMUM_LENGTH, CHARACTER_OCTET_LENGTH, \
     NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, COLLATION_NAME, \
     COLUMN_TYPE, EXTRA, GENERATION_EXPRESSION \
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ({in}) \
     ORDER BY TABLE_NAME, ORDINAL_POSITION";

const TABLES_SQL: &str = "SELECT TABLE_NAME, ENGINE, TABLE_ROWS, AVG_ROW_LENGTH, DATA_LENGTH, \
     TABLE_COLLATION FROM information_schema.TABLES \
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ({in}) \
     AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')";

const UNIQUE_SQL: &str = "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME \
     FROM information_schema.STATISTICS \
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN ({in}) AND NON_UNIQUE = 0";

const CHECKS_SQL: &str =
    "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
     WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME IN ({in})";

fn with_in(sql: &str, n: usize) -> String {
    sql.replace("{in}", &vec!["?"; n].join(", "))
}

async fn flavor_of(conn: &mut Conn) -> Result<(Flavor, (u32, u32, u32)), SourceError> {
    let rows = query_text(conn, "SELECT VERSION()", "detecting the server version").await?;
    let v = rows
        .first()
        .and_then(|r| r.first())
        .and_then(|(_, v)| v.clone())
        .unwrap_or_default();
    parse_version(&v, "").ok_or_else(|| {
        SourceError::unexpected(
            "detecting the server version",
            format!("cannot parse {v:?}"),
        )
    })
}

/// The base tables of `database` (MariaDB system-versioned tables included; views,
/// sequences and temporary tables not), sorted by name.
pub async fn list_tables(conn: &mut Conn, database: &str) -> Result<Vec<String>, SourceError> {
    let rows = exec_text(
        conn,
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? \
         AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_NAME",
        vec![database.into()],
        "listing tables",
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.first().and_then(|(_, v)| v.clone()))
        .collect())
}

/// Describes one table; `TableNotFound` when it does not exist or is not a base table.
pub async fn describe_table(
    conn: &mut Conn,
    database: &str,
    table: &str,
) -> Result<TableInfo, SourceError> {
    let mut v = describe_tables(conn, database, &[table.to_string()]).await?;
    v.pop().ok_or_else(|| SourceError::TableNotFound {
        schema: database.to_string(),
        table: table.to_string(),
    })
}

/// Describes several tables of one database with a few batched queries; the result follows
/// the order of `tables`. Any table that does not exist is an error naming it.
pub async fn describe_tables(
    conn: &mut Conn,
    database: &str,
    tables: &[String],
) -> Result<Vec<TableInfo>, SourceError> {
    let (flavor, version) = flavor_of(conn).await?;
    if flavor == Flavor::MySql && version >= (8, 0, 3) {
        // MySQL 8 caches TABLE_ROWS for a day by default; ask for fresh estimates.
        if let Err(e) =
            conn_query_drop(conn, "SET SESSION information_schema_stats_expiry = 0").await
        {
            tracing::debug!(error = %e, "could not disable information_schema stats caching");
        }
    }
    let mut out = Vec::with_capacity(tables.len());
    for batch in tables.chunks(BATCH) {
        let params = |extra: &[String]| -> Vec<mysql_async::Value> {
            std::iter::once(database.into())
                .chain(extra.iter().map(|t| t.as_str().into()))
                .collect()
        };
        let n = batch.len();
        let table_rows = exec_text(
            conn,
            &with_in(TABLES_SQL, n),
            params(batch),
            "reading information_schema.TABLES",
        )
        .await?;
        let column_rows = exec_text(
            conn,
            &with_in(COLUMNS_SQL, n),
            params(batch),
            "reading information_schema.COLUMNS",
        )
        .await?;
        let unique_rows = exec_text(
            conn,
            &with_in(UNIQUE_SQL, n),
            params(batch),
            "reading information_schema.STATISTICS",
        )
        .await?;
        let json_columns = if flavor == Flavor::MariaDb {
            match exec_text(
                conn,
                &with_in(CHECKS_SQL, n),
                params(batch),
                "reading information_schema.CHECK_CONSTRAINTS",
            )
            .await
            {
                Ok(rows) => rows
                    .iter()
                    .filter_map(|r| {
                        Some((
                            col(r, "TABLE_NAME")?.to_string(),
                            json_check_column(col(r, "CHECK_CLAUSE")?)?,
                        ))
                    })
                    .collect(),
                Err(e) => {
                    tracing::debug!(error = %e, "could not read CHECK_CONSTRAINTS; JSON columns show as longtext");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let built = build_tables(
            flavor,
            database,
            &table_rows,
            &column_rows,
            &unique_rows,
            &json_columns,
        )?;
        let mut by_name: HashMap<String, TableInfo> =
            built.into_iter().map(|t| (t.name.clone(), t)).collect();
        for name in batch {
            let t = by_name
                .remove(name)
                .ok_or_else(|| SourceError::TableNotFound {
                    schema: database.to_string(),
                    table: name.clone(),
                })?;
            out.push(t);
        }
    }
    Ok(out)
}

async fn conn_query_drop(conn: &mut Conn, sql: &str) -> Result<(), SourceError> {
    use mysql_async::prelude::Queryable;
    conn.query_drop(sql)
        .await
        .map_err(|e| SourceError::from_mysql("setting up the session", e))
}

#[cfg(test)]
mod tests;
