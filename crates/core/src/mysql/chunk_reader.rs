//! Keyset-paged reads of one key range of a table (the full copy's source side), and the key
//! walks the planner uses to split a table into bounded chunks.
//!
//! # Protocol: text, with literals built here
//!
//! Rows are read with the **text protocol** (`COM_QUERY`), not prepared statements. The text
//! protocol hands every value over exactly as the server prints it: DECIMAL with its scale
//! digits, DATE/TIME/DATETIME/TIMESTAMP with as many fraction digits as the column has (TIME
//! negative or past 24h), JSON as the server renders it, ENUM/SET labels, integers in decimal.
//! That is what design §4 asks the destination to hold, so conversion never has to re-format a
//! value (the binary protocol would hand over temporal structs to be re-printed, the one place
//! where two renderings could drift). The one value the plain text form loses, FLOAT (printed
//! with 6 significant digits), is selected as `col * 1e0` by
//! [`crate::mapping::convert::select_expr`]: MySQL and MariaDB print a DOUBLE expression as its
//! shortest round-trip text, which parses back to the exact widened single-precision value.
//!
//! Key values therefore travel inside the SQL text, and they are rendered so that no value can
//! change the statement and every comparison happens in the key column's own type and collation
//! ([`SqlValue::literal`]):
//! - integers, DECIMAL and DOUBLE as numeric literals (checked to be only digits, sign, point,
//!   exponent: they may come from the state store), so BIGINT and DECIMAL compare exactly
//!   (a quoted string would be compared as DOUBLE);
//! - character strings (and DATE/TIME/DATETIME/TIMESTAMP text) as `_utf8mb4 X'..'`: hex needs
//!   no escaping (safe under any `sql_mode`, including `NO_BACKSLASH_ESCAPES`), and a literal is
//!   *coercible*, so the comparison uses the column's collation, the same one `ORDER BY` uses;
//! - binary strings as `X'..'`.
//!
//! # Paging
//!
//! `WHERE <key> > lower AND <key> <= upper [AND (filter)] ORDER BY <key> LIMIT n`, with a
//! composite key compared as the equivalent OR-chain `(k1 > ?) OR (k1 = ? AND k2 > ?)` rather
//! than a row constructor: MariaDB 10.11 answers `(k1,k2) > (?,?)` with a full index scan from
//! the start of the table (EXPLAIN: `type: index`, "Using where"), which makes paging quadratic;
//! the OR-chain is a range scan (`type: range`) on MySQL and MariaDB alike. The next page's
//! lower bound is the key of the last row returned (the filter only removes rows; it never moves
//! the cursor past a row it did not see).
//!
//! Key columns must be NOT NULL (a NULL key is reported, never skipped). ENUM/SET keys (which
//! sort by index, not label) and FLOAT keys (not printed exactly) cannot be paged and are
//! reported with a fix.

use std::fmt;
use std::fmt::Write as _;

use base64::Engine as _;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Row, Value};
use serde::{Deserialize, Serialize};

use super::connect::{quote_ident, Conn};
use super::error::SourceError;

/// One source row as the text protocol delivers it: one entry per selected column, the bytes
/// the server printed (in the session's utf8mb4 for character data, raw for binary data),
/// `None` for NULL.
pub type SourceRow = Vec<Option<Vec<u8>>>;

/// One value of a key, typed so it can be put back into SQL as a literal that compares like
/// the column does, and stored as JSON (the chunk cursor in the state store) without loss.
///
/// JSON form (externally tagged, numbers as strings so no JSON reader can round them):
/// `"null"`, `{"int":"-5"}`, `{"uint":"18446744073709551615"}`, `{"decimal":"12.50"}`,
/// `{"double":"1e-1"}`, `{"text":"abc"}`, `{"bytes":"<base64>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SqlValueRepr", into = "SqlValueRepr")]
pub enum SqlValue {
    Null,
    Int(i64),
    UInt(u64),
    /// An exact numeric literal: `-?digits[.digits]`.
    Decimal(String),
    Double(f64),
    /// A character string (also DATE/TIME/DATETIME/TIMESTAMP text), UTF-8.
    Text(String),
    /// A binary string (BINARY/VARBINARY/BLOB).
    Bytes(Vec<u8>),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SqlValueRepr {
    Null,
    Int(String),
    Uint(String),
    Decimal(String),
    Double(String),
    Text(String),
    Bytes(String),
}

impl From<SqlValue> for SqlValueRepr {
    fn from(v: SqlValue) -> Self {
        match v {
            SqlValue::Null => SqlValueRepr::Null,
            SqlValue::Int(i) => SqlValueRepr::Int(i.to_string()),
            SqlValue::UInt(u) => SqlValueRepr::Uint(u.to_string()),
            SqlValue::Decimal(d) => SqlValueRepr::Decimal(d),
            // `{:e}` is the shortest text that parses back to the same bits.
            SqlValue::Double(f) => SqlValueRepr::Double(format!("{f:e}")),
            SqlValue::Text(s) => SqlValueRepr::Text(s),
            SqlValue::Bytes(b) => {
                SqlValueRepr::Bytes(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }
}

impl TryFrom<SqlValueRepr> for SqlValue {
    type Error = String;
    fn try_from(r: SqlValueRepr) -> Result<Self, Self::Error> {
        Ok(match r {
            SqlValueRepr::Null => SqlValue::Null,
            SqlValueRepr::Int(s) => SqlValue::Int(
                s.parse()
                    .map_err(|_| "an int key value is not a 64-bit integer".to_string())?,
            ),
            SqlValueRepr::Uint(s) => {
                SqlValue::UInt(s.parse().map_err(|_| {
                    "a uint key value is not an unsigned 64-bit integer".to_string()
                })?)
            }
            SqlValueRepr::Decimal(s) => {
                if !is_decimal_literal(&s) {
                    return Err("a decimal key value is not a decimal number".to_string());
                }
                SqlValue::Decimal(s)
            }
            SqlValueRepr::Double(s) => {
                let f: f64 = s
                    .parse()
                    .map_err(|_| "a double key value is not a number".to_string())?;
                if !f.is_finite() {
                    return Err("a double key value is not finite".to_string());
                }
                SqlValue::Double(f)
            }
            SqlValueRepr::Text(s) => SqlValue::Text(s),
            SqlValueRepr::Bytes(s) => SqlValue::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| "a bytes key value is not base64".to_string())?,
            ),
        })
    }
}

/// `-?[0-9]+(\.[0-9]+)?`: what MySQL prints for DECIMAL, and safe to put into SQL unquoted.
fn is_decimal_literal(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

impl SqlValue {
    /// The value as an SQL literal that compares like the key column (see the module doc).
    pub fn literal(&self) -> String {
        match self {
            SqlValue::Null => "NULL".to_string(),
            SqlValue::Int(i) => i.to_string(),
            SqlValue::UInt(u) => u.to_string(),
            // Checked on construction from JSON; a value built in code is checked again here so
            // nothing but a number can ever reach the statement.
            SqlValue::Decimal(d) if is_decimal_literal(d) => d.clone(),
            SqlValue::Decimal(_) => "NULL".to_string(),
            SqlValue::Double(f) if f.is_finite() => format!("{f:e}"),
            SqlValue::Double(_) => "NULL".to_string(),
            SqlValue::Text(s) if s.is_empty() => "_utf8mb4''".to_string(),
            SqlValue::Text(s) => format!("_utf8mb4 X'{}'", hex(s.as_bytes())),
            SqlValue::Bytes(b) if b.is_empty() => "_binary''".to_string(),
            SqlValue::Bytes(b) => format!("X'{}'", hex(b)),
        }
    }
}

impl fmt::Display for SqlValue {
    /// The type only: key values are row data and do not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SqlValue::Null => "NULL",
            SqlValue::Int(_) => "int",
            SqlValue::UInt(_) => "uint",
            SqlValue::Decimal(_) => "decimal",
            SqlValue::Double(_) => "double",
            SqlValue::Text(_) => "text",
            SqlValue::Bytes(_) => "bytes",
        })
    }
}

/// A (possibly composite) key: one value per key column, in key order. Serialized as a JSON
/// array of [`SqlValue`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyValue(pub Vec<SqlValue>);

impl KeyValue {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One page request: a key range (lower exclusive, upper inclusive, `None` = unbounded),
/// an optional filter, at most `limit` rows in key order.
#[derive(Debug, Clone, PartialEq)]
pub struct PageQuery {
    pub table: String,
    /// The select list, one SQL expression per output column: `quote_ident(name)` for a plain
    /// column, or [`crate::mapping::convert::select_expr`] for a mapped one. List every column
    /// explicitly (invisible columns included; `SELECT *` skips them).
    pub columns: Vec<String>,
    /// Key column names, in key order (at least one).
    pub key: Vec<String>,
    pub lower_exclusive: Option<KeyValue>,
    pub upper_inclusive: Option<KeyValue>,
    /// A WHERE expression (validated by the config), ANDed to the range.
    pub filter: Option<String>,
    /// Page size; 0 is treated as 1.
    pub limit: u64,
}

impl PageQuery {
    /// A query for the whole table, no filter.
    pub fn new(
        table: impl Into<String>,
        columns: Vec<String>,
        key: Vec<String>,
        limit: u64,
    ) -> Self {
        PageQuery {
            table: table.into(),
            columns,
            key,
            lower_exclusive: None,
            upper_inclusive: None,
            filter: None,
            limit,
        }
    }

    /// The next page of the same range: lower bound moved to `last_key`.
    pub fn after(&self, last_key: KeyValue) -> PageQuery {
        PageQuery {
            lower_exclusive: Some(last_key),
            ..self.clone()
        }
    }
}

/// One page of rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    /// In key order; each row has one entry per `PageQuery::columns`.
    pub rows: Vec<SourceRow>,
    /// The key of the last row; `None` when the page is empty.
    pub last_key: Option<KeyValue>,
    /// Sum of the value lengths of the rows (for throughput accounting and throttling).
    pub bytes: u64,
}

impl Page {
    /// True when this page ended the range (fewer rows than asked for).
    pub fn is_last(&self, q: &PageQuery) -> bool {
        (self.rows.len() as u64) < q.limit.max(1)
    }
}

fn table_ref(db: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(table))
}

fn check_key(key: &[String], value: Option<&KeyValue>, what: &str) -> Result<(), SourceError> {
    if key.is_empty() {
        return Err(SourceError::InvalidOptions {
            problem: "keyset paging needs at least one key column".to_string(),
            fix: "give the table a primary key or name key columns in the config".to_string(),
        });
    }
    if let Some(v) = value {
        if v.len() != key.len() {
            return Err(SourceError::InvalidOptions {
                problem: format!(
                    "the {what} has {} values for a key of {} columns",
                    v.len(),
                    key.len()
                ),
                fix: "re-plan the chunks: the stored cursor does not match the table's key"
                    .to_string(),
            });
        }
        if v.0.iter().any(|x| matches!(x, SqlValue::Null)) {
            return Err(SourceError::InvalidOptions {
                problem: format!("the {what} contains NULL"),
                fix: "re-plan the chunks: key columns must be NOT NULL".to_string(),
            });
        }
    }
    Ok(())
}

/// `key > value` for a composite key as an OR-chain (index-friendly on MySQL and MariaDB):
/// `(k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...`. With `inclusive`, the last column uses `>=`.
fn key_compare(key: &[String], value: &KeyValue, greater: bool, inclusive: bool) -> String {
    let (strict, last) = match (greater, inclusive) {
        (true, false) => (">", ">"),
        (true, true) => (">", ">="),
        (false, false) => ("<", "<"),
        (false, true) => ("<", "<="),
    };
    let cols: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
    let lits: Vec<String> = value.0.iter().map(SqlValue::literal).collect();
    let n = cols.len();
    let terms: Vec<String> = (0..n)
        .map(|i| {
            let mut parts: Vec<String> = (0..i)
                .map(|j| format!("{} = {}", cols[j], lits[j]))
                .collect();
            let op = if i + 1 == n { last } else { strict };
            parts.push(format!("{} {} {}", cols[i], op, lits[i]));
            parts.join(" AND ")
        })
        .collect();
    if n == 1 {
        terms.join("")
    } else {
        format!(
            "({})",
            terms
                .iter()
                .map(|t| format!("({t})"))
                .collect::<Vec<_>>()
                .join(" OR ")
        )
    }
}

fn order_by(key: &[String], desc: bool) -> String {
    key.iter()
        .map(|k| {
            if desc {
                format!("{} DESC", quote_ident(k))
            } else {
                quote_ident(k)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where each key column is in the select list: an exact `quote_ident(key)` entry of
/// `columns` is reused, other key columns are appended.
fn key_positions(columns: &[String], key: &[String]) -> (Vec<usize>, Vec<String>) {
    let mut extra = Vec::new();
    let positions = key
        .iter()
        .map(|k| {
            let q = quote_ident(k);
            match columns.iter().position(|c| *c == q) {
                Some(p) => p,
                None => {
                    extra.push(q);
                    columns.len() + extra.len() - 1
                }
            }
        })
        .collect();
    (positions, extra)
}

/// The SELECT statement of a page (exposed for tests and EXPLAIN).
pub fn page_sql(db: &str, q: &PageQuery) -> Result<String, SourceError> {
    check_key(&q.key, q.lower_exclusive.as_ref(), "lower bound")?;
    check_key(&q.key, q.upper_inclusive.as_ref(), "upper bound")?;
    if q.columns.is_empty() {
        return Err(SourceError::InvalidOptions {
            problem: format!("no columns to read from `{}`", q.table),
            fix: "select at least one column".to_string(),
        });
    }
    let (_, extra) = key_positions(&q.columns, &q.key);
    let mut conds = Vec::new();
    if let Some(lo) = &q.lower_exclusive {
        conds.push(key_compare(&q.key, lo, true, false));
    }
    if let Some(hi) = &q.upper_inclusive {
        conds.push(key_compare(&q.key, hi, false, true));
    }
    if let Some(f) = q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        conds.push(format!("({f})"));
    }
    let mut sql = format!(
        "SELECT {} FROM {}",
        q.columns
            .iter()
            .chain(extra.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        table_ref(db, &q.table)
    );
    if !conds.is_empty() {
        let _ = write!(sql, " WHERE {}", conds.join(" AND "));
    }
    let _ = write!(
        sql,
        " ORDER BY {} LIMIT {}",
        order_by(&q.key, false),
        q.limit.max(1)
    );
    Ok(sql)
}

fn context_of(what: &str, db: &str, table: &str) -> String {
    format!("{what} `{db}`.`{table}`")
}

/// Reads one page: rows of the range in key order, at most `q.limit`.
pub async fn read_page(conn: &mut Conn, db: &str, q: &PageQuery) -> Result<Page, SourceError> {
    let sql = page_sql(db, q)?;
    let context = context_of("reading rows of", db, &q.table);
    let rows: Vec<Row> = conn
        .query(sql)
        .await
        .map_err(|e| SourceError::from_mysql(&context, e))?;
    let (positions, _) = key_positions(&q.columns, &q.key);
    // A NULL key sorts first and fails every range comparison: report it wherever it shows up
    // rather than let the bounded chunks skip such rows.
    if let Some(row) = rows.iter().find(|r| {
        positions
            .iter()
            .any(|&p| matches!(r.as_ref(p), Some(Value::NULL) | None))
    }) {
        key_of_row(row, &positions, &q.key, &context)?;
    }
    let mut last_key = None;
    if let Some(last) = rows.last() {
        last_key = Some(key_of_row(last, &positions, &q.key, &context)?);
    }
    let n = q.columns.len();
    let mut out = Vec::with_capacity(rows.len());
    let mut bytes = 0u64;
    for row in rows {
        let mut values = text_values(row, &context)?;
        values.truncate(n);
        bytes += values
            .iter()
            .map(|v| v.as_ref().map_or(0, |b| b.len() as u64))
            .sum::<u64>();
        out.push(values);
    }
    Ok(Page {
        rows: out,
        last_key,
        bytes,
    })
}

/// The values of a text-protocol row (every value is bytes or NULL).
fn text_values(row: Row, context: &str) -> Result<SourceRow, SourceError> {
    row.unwrap_raw()
        .into_iter()
        .map(|v| match v {
            Some(Value::NULL) => Ok(None),
            Some(Value::Bytes(b)) => Ok(Some(b)),
            None => Err(SourceError::unexpected(
                context,
                "a value was missing from a row",
            )),
            Some(_) => Err(SourceError::unexpected(
                context,
                "a value arrived in binary-protocol form on a text query",
            )),
        })
        .collect()
}

fn key_of_row(
    row: &Row,
    positions: &[usize],
    key: &[String],
    context: &str,
) -> Result<KeyValue, SourceError> {
    let columns = row.columns_ref();
    positions
        .iter()
        .zip(key)
        .map(|(&p, name)| {
            let col = columns.get(p).ok_or_else(|| {
                SourceError::unexpected(
                    context,
                    format!("key column `{name}` missing from the result"),
                )
            })?;
            let bytes = match row.as_ref(p) {
                Some(Value::Bytes(b)) => Some(b.as_slice()),
                Some(Value::NULL) | None => None,
                Some(_) => {
                    return Err(SourceError::unexpected(
                        context,
                        "a key value arrived in binary-protocol form on a text query",
                    ))
                }
            };
            key_value_from_text(col, name, bytes, context)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(KeyValue)
}

/// Binary collation/charset id: a binary string column.
const BINARY_CHARSET: u16 = 63;

/// Types a key value from the result metadata of the key column and the printed text.
fn key_value_from_text(
    col: &Column,
    name: &str,
    bytes: Option<&[u8]>,
    context: &str,
) -> Result<SqlValue, SourceError> {
    let unsupported = |what: &str, fix: &str| SourceError::InvalidOptions {
        problem: format!(
            "key column `{name}` is {what}, which keyset paging cannot order exactly ({context})"
        ),
        fix: fix.to_string(),
    };
    let bytes = bytes.ok_or_else(|| SourceError::InvalidOptions {
        problem: format!("key column `{name}` is NULL in a row ({context})"),
        fix: "key columns must be NOT NULL: use the primary key or a NOT NULL unique key as primary_key"
            .to_string(),
    })?;
    let bad = || {
        SourceError::unexpected(
            context,
            format!("key column `{name}` printed a value that does not parse as its type"),
        )
    };
    let text = || std::str::from_utf8(bytes).map_err(|_| bad());
    let flags = col.flags();
    Ok(match col.column_type() {
        ColumnType::MYSQL_TYPE_TINY
        | ColumnType::MYSQL_TYPE_SHORT
        | ColumnType::MYSQL_TYPE_INT24
        | ColumnType::MYSQL_TYPE_LONG
        | ColumnType::MYSQL_TYPE_LONGLONG
        | ColumnType::MYSQL_TYPE_YEAR => {
            let t = text()?;
            if flags.contains(ColumnFlags::UNSIGNED_FLAG) {
                SqlValue::UInt(t.parse().map_err(|_| bad())?)
            } else {
                SqlValue::Int(t.parse().map_err(|_| bad())?)
            }
        }
        ColumnType::MYSQL_TYPE_BIT => {
            if bytes.len() > 8 {
                return Err(bad());
            }
            SqlValue::UInt(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
        }
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let t = text()?;
            if !is_decimal_literal(t) {
                return Err(bad());
            }
            SqlValue::Decimal(t.to_string())
        }
        ColumnType::MYSQL_TYPE_DOUBLE => {
            let f: f64 = text()?.parse().map_err(|_| bad())?;
            if !f.is_finite() {
                return Err(bad());
            }
            SqlValue::Double(f)
        }
        ColumnType::MYSQL_TYPE_FLOAT => {
            return Err(unsupported(
                "FLOAT (printed with 6 digits)",
                "name another key column in the config (primary_key)",
            ))
        }
        ColumnType::MYSQL_TYPE_DATE
        | ColumnType::MYSQL_TYPE_NEWDATE
        | ColumnType::MYSQL_TYPE_TIME
        | ColumnType::MYSQL_TYPE_TIME2
        | ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_DATETIME2
        | ColumnType::MYSQL_TYPE_TIMESTAMP
        | ColumnType::MYSQL_TYPE_TIMESTAMP2 => SqlValue::Text(text()?.to_string()),
        ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_ENUM
        | ColumnType::MYSQL_TYPE_SET => {
            if flags.intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG)
                || matches!(
                    col.column_type(),
                    ColumnType::MYSQL_TYPE_ENUM | ColumnType::MYSQL_TYPE_SET
                )
            {
                return Err(unsupported(
                    "an ENUM or SET (sorted by index, compared by label)",
                    "name another key column in the config (primary_key), or change the column to VARCHAR",
                ));
            }
            if col.character_set() == BINARY_CHARSET {
                SqlValue::Bytes(bytes.to_vec())
            } else {
                SqlValue::Text(text()?.to_string())
            }
        }
        other => {
            return Err(unsupported(
                &format!("of type {other:?}"),
                "name another key column in the config (primary_key)",
            ))
        }
    })
}

async fn key_query(
    conn: &mut Conn,
    sql: String,
    key: &[String],
    context: &str,
) -> Result<Option<KeyValue>, SourceError> {
    let rows: Vec<Row> = conn
        .query(sql)
        .await
        .map_err(|e| SourceError::from_mysql(context, e))?;
    match rows.first() {
        None => Ok(None),
        Some(r) => {
            let positions: Vec<usize> = (0..key.len()).collect();
            key_of_row(r, &positions, key, context).map(Some)
        }
    }
}

fn key_list(key: &[String]) -> String {
    key.iter()
        .map(|k| quote_ident(k))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The smallest and largest key of the table; `None` when the table is empty.
pub async fn key_bounds(
    conn: &mut Conn,
    db: &str,
    table: &str,
    key: &[String],
) -> Result<Option<(KeyValue, KeyValue)>, SourceError> {
    check_key(key, None, "key")?;
    let context = context_of("reading the key range of", db, table);
    let t = table_ref(db, table);
    let cols = key_list(key);
    let min = key_query(
        conn,
        format!(
            "SELECT {cols} FROM {t} ORDER BY {} LIMIT 1",
            order_by(key, false)
        ),
        key,
        &context,
    )
    .await?;
    let Some(min) = min else { return Ok(None) };
    let max = key_query(
        conn,
        format!(
            "SELECT {cols} FROM {t} ORDER BY {} LIMIT 1",
            order_by(key, true)
        ),
        key,
        &context,
    )
    .await?;
    Ok(max.map(|max| (min, max)))
}

/// The key `offset` rows (0-based) after `after` (exclusive; `None` = from the start), walking
/// the key index: `SELECT k FROM t WHERE k > after ORDER BY k LIMIT 1 OFFSET offset`.
pub async fn key_at_offset(
    conn: &mut Conn,
    db: &str,
    table: &str,
    key: &[String],
    after: Option<&KeyValue>,
    offset: u64,
) -> Result<Option<KeyValue>, SourceError> {
    check_key(key, after, "start key")?;
    let context = context_of("walking the key index of", db, table);
    let mut sql = format!("SELECT {} FROM {}", key_list(key), table_ref(db, table));
    if let Some(a) = after {
        let _ = write!(sql, " WHERE {}", key_compare(key, a, true, false));
    }
    let _ = write!(
        sql,
        " ORDER BY {} LIMIT 1 OFFSET {offset}",
        order_by(key, false)
    );
    key_query(conn, sql, key, &context).await
}

/// Chunk boundaries every `every_n_rows` rows after `after` (exclusive; `None` = from the
/// start), at most `limit` of them, found by walking the key index (works for any key type,
/// sparse or composite). With boundaries `b1 < b2 < ... < bk` the chunks are `(after, b1]`,
/// `(b1, b2]`, ..., `(bk, end)`: each but the last holds `every_n_rows` rows at planning time.
/// Fewer than `limit` boundaries means the walk reached the end of the table; otherwise call
/// again with `after = bk` for the next wave.
pub async fn split_points(
    conn: &mut Conn,
    db: &str,
    table: &str,
    key: &[String],
    after: Option<&KeyValue>,
    every_n_rows: u64,
    limit: usize,
) -> Result<Vec<KeyValue>, SourceError> {
    let step = every_n_rows.max(1);
    let mut points: Vec<KeyValue> = Vec::new();
    let mut cursor = after.cloned();
    while points.len() < limit {
        match key_at_offset(conn, db, table, key, cursor.as_ref(), step - 1).await? {
            Some(k) => {
                cursor = Some(k.clone());
                points.push(k);
            }
            None => break,
        }
    }
    Ok(points)
}

/// Counts the rows of a range (with the query's filter), for verification.
pub async fn count_range(conn: &mut Conn, db: &str, q: &PageQuery) -> Result<u64, SourceError> {
    check_key(&q.key, q.lower_exclusive.as_ref(), "lower bound")?;
    check_key(&q.key, q.upper_inclusive.as_ref(), "upper bound")?;
    let mut conds = Vec::new();
    if let Some(lo) = &q.lower_exclusive {
        conds.push(key_compare(&q.key, lo, true, false));
    }
    if let Some(hi) = &q.upper_inclusive {
        conds.push(key_compare(&q.key, hi, false, true));
    }
    if let Some(f) = q.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        conds.push(format!("({f})"));
    }
    let mut sql = format!("SELECT COUNT(*) FROM {}", table_ref(db, &q.table));
    if !conds.is_empty() {
        let _ = write!(sql, " WHERE {}", conds.join(" AND "));
    }
    let context = context_of("counting rows of", db, &q.table);
    let rows: Vec<Row> = conn
        .query(sql)
        .await
        .map_err(|e| SourceError::from_mysql(&context, e))?;
    let n = rows
        .first()
        .and_then(|r| r.as_ref(0))
        .and_then(|v| match v {
            Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse::<u64>().ok(),
            Value::UInt(u) => Some(*u),
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        })
        .ok_or_else(|| SourceError::unexpected(&context, "COUNT(*) returned no number"))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn json_round_trip_is_lossless() {
        let k = KeyValue(vec![
            SqlValue::Null,
            SqlValue::Int(i64::MIN),
            SqlValue::Int(-5),
            SqlValue::UInt(u64::MAX),
            SqlValue::Decimal(
                "-12345678901234567890123456789012345.123456789012345678901234567890".into(),
            ),
            SqlValue::Double(0.1 + 0.2),
            SqlValue::Double(f64::MAX),
            SqlValue::Double(-f64::MAX),
            SqlValue::Double(5e-324),
            SqlValue::Double(2.2250738585072014e-308),
            SqlValue::Double(-0.0),
            SqlValue::Text("café 😀 'quote' \\ `tick`".into()),
            SqlValue::Text(String::new()),
            SqlValue::Bytes(vec![0, 255, 10, 39, 92]),
            SqlValue::Bytes(vec![]),
        ]);
        let json = serde_json::to_string(&k).unwrap();
        let back: KeyValue = serde_json::from_str(&json).unwrap();
        assert_eq!(back, k);
        for (a, b) in back.0.iter().zip(&k.0) {
            if let (SqlValue::Double(x), SqlValue::Double(y)) = (a, b) {
                assert_eq!(x.to_bits(), y.to_bits());
            }
        }
        assert!(
            json.contains(r#"{"uint":"18446744073709551615"}"#),
            "{json}"
        );
        assert!(json.contains(r#"{"int":"-9223372036854775808"}"#), "{json}");
        assert!(json.starts_with(r#"["null","#), "{json}");
        // through a generic JSON value too (as the state store may do)
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let back2: KeyValue = serde_json::from_value(v).unwrap();
        assert_eq!(back2, k);
    }

    #[test]
    fn json_rejects_injection_and_garbage() {
        for bad in [
            r#"[{"decimal":"1 OR 1=1"}]"#,
            r#"[{"decimal":"1e5"}]"#,
            r#"[{"decimal":""}]"#,
            r#"[{"int":"1; DROP TABLE t"}]"#,
            r#"[{"uint":"-1"}]"#,
            r#"[{"double":"inf"}]"#,
            r#"[{"double":"NaN"}]"#,
            r#"[{"bytes":"!!"}]"#,
            r#"[{"what":"x"}]"#,
        ] {
            assert!(serde_json::from_str::<KeyValue>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn literals_cannot_escape() {
        assert_eq!(SqlValue::Int(-3).literal(), "-3");
        assert_eq!(SqlValue::UInt(u64::MAX).literal(), "18446744073709551615");
        assert_eq!(SqlValue::Decimal("-1.50".into()).literal(), "-1.50");
        assert_eq!(SqlValue::Decimal("1) OR (1".into()).literal(), "NULL");
        assert_eq!(SqlValue::Double(0.1).literal(), "1e-1");
        assert_eq!(
            SqlValue::Double(f64::MAX).literal(),
            "1.7976931348623157e308"
        );
        assert_eq!(SqlValue::Double(5e-324).literal(), "5e-324");
        assert_eq!(SqlValue::Double(f64::NAN).literal(), "NULL");
        assert_eq!(
            SqlValue::Text("a'b\\".into()).literal(),
            "_utf8mb4 X'6127625C'"
        );
        assert_eq!(SqlValue::Text(String::new()).literal(), "_utf8mb4''");
        assert_eq!(SqlValue::Bytes(vec![0, 0xab]).literal(), "X'00AB'");
        assert_eq!(SqlValue::Bytes(vec![]).literal(), "_binary''");
        assert_eq!(SqlValue::Text("secret".into()).to_string(), "text");
    }

    #[test]
    fn page_sql_single_key() {
        let mut q = PageQuery::new(
            "t`x",
            vec!["`id`".into(), "`v` * 1e0".into()],
            key(&["id"]),
            100,
        );
        assert_eq!(
            page_sql("db", &q).unwrap(),
            "SELECT `id`, `v` * 1e0 FROM `db`.`t``x` ORDER BY `id` LIMIT 100"
        );
        q.lower_exclusive = Some(KeyValue(vec![SqlValue::Int(5)]));
        q.upper_inclusive = Some(KeyValue(vec![SqlValue::Int(10)]));
        q.filter = Some("status <> 'x'".into());
        assert_eq!(
            page_sql("db", &q).unwrap(),
            "SELECT `id`, `v` * 1e0 FROM `db`.`t``x` WHERE `id` > 5 AND `id` <= 10 AND (status <> 'x') ORDER BY `id` LIMIT 100"
        );
    }

    #[test]
    fn page_sql_composite_key_uses_or_chain_and_appends_missing_key_columns() {
        let mut q = PageQuery::new("t", vec!["`v`".into()], key(&["a", "b"]), 0);
        q.lower_exclusive = Some(KeyValue(vec![SqlValue::Int(1), SqlValue::Text("x".into())]));
        q.upper_inclusive = Some(KeyValue(vec![SqlValue::Int(9), SqlValue::Text("y".into())]));
        assert_eq!(
            page_sql("d", &q).unwrap(),
            "SELECT `v`, `a`, `b` FROM `d`.`t` WHERE ((`a` > 1) OR (`a` = 1 AND `b` > _utf8mb4 X'78')) \
             AND ((`a` < 9) OR (`a` = 9 AND `b` <= _utf8mb4 X'79')) ORDER BY `a`, `b` LIMIT 1"
        );
        let three = key_compare(
            &key(&["a", "b", "c"]),
            &KeyValue(vec![SqlValue::Int(1), SqlValue::Int(2), SqlValue::Int(3)]),
            true,
            false,
        );
        assert_eq!(
            three,
            "((`a` > 1) OR (`a` = 1 AND `b` > 2) OR (`a` = 1 AND `b` = 2 AND `c` > 3))"
        );
        assert_eq!(
            key_positions(&["`b`".into(), "`v`".into()], &key(&["a", "b"])),
            (vec![2, 0], vec!["`a`".to_string()])
        );
    }

    #[test]
    fn page_sql_checks_the_key() {
        let mut q = PageQuery::new("t", vec!["`v`".into()], vec![], 10);
        assert!(page_sql("d", &q).is_err());
        q.key = key(&["a", "b"]);
        q.lower_exclusive = Some(KeyValue(vec![SqlValue::Int(1)]));
        assert!(page_sql("d", &q).is_err());
        q.lower_exclusive = Some(KeyValue(vec![SqlValue::Int(1), SqlValue::Null]));
        assert!(page_sql("d", &q).is_err());
        q.lower_exclusive = None;
        q.columns.clear();
        assert!(page_sql("d", &q).is_err());
    }

    #[test]
    fn decimal_literal_shapes() {
        for ok in [
            "0",
            "-0",
            "12.50",
            "-123.000000",
            "99999999999999999999999999999999999",
        ] {
            assert!(is_decimal_literal(ok), "{ok}");
        }
        for bad in ["", "-", ".5", "5.", "1e3", "1.2.3", " 1", "+1", "0x10"] {
            assert!(!is_decimal_literal(bad), "{bad}");
        }
    }
}
