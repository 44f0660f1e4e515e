//! What a TABLE_MAP event says about a table, decoded once per table map instead of once per
//! row (mysql_common re-reads the optional metadata for every row): column names, real types,
//! type metadata, signedness, charsets, ENUM/SET labels, visibility and the primary key. With
//! `binlog_row_metadata=FULL` all of it comes with the event, so names and types are those of
//! the moment the row was written, not of whatever the table looks like when we read.

use mysql_async::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;
use mysql_common::collations::{Collation, CollationId};

use crate::mysql::introspect::ColumnInfo;

/// MySQL's and MariaDB's limit of columns per table: a table map claiming more is corrupt.
const MAX_COLUMNS: usize = 4096;

/// One column of a table map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMeta {
    /// The name (FULL metadata), else `None`.
    pub name: Option<String>,
    /// The real type (ENUM and SET resolved from MYSQL_TYPE_STRING's metadata).
    pub column_type: ColumnType,
    /// The type's metadata bytes from the table map (precision, length, fraction digits…).
    pub metadata: Vec<u8>,
    /// UNSIGNED, from the signedness metadata (MINIMAL or FULL); `false` without it.
    pub unsigned: bool,
    /// Charset/collation id of character, ENUM and SET columns, when the metadata has it.
    pub charset: Option<u16>,
    /// ENUM labels or SET members in definition order (FULL metadata), raw bytes in the
    /// column's charset.
    pub labels: Option<Vec<Vec<u8>>>,
    /// `false` for invisible columns (MySQL 8.0.23+, FULL metadata); `true` otherwise.
    pub visible: bool,
}

#[cfg(test)]
impl ColumnMeta {
    /// A signed column `c` of type `t` with `metadata`, utf8mb4 charset (the row decoder's
    /// tests).
    pub(crate) fn of_type(t: ColumnType, metadata: &[u8]) -> ColumnMeta {
        ColumnMeta {
            name: Some("c".into()),
            column_type: t,
            metadata: metadata.to_vec(),
            unsigned: false,
            charset: Some(45),
            labels: None,
            visible: true,
        }
    }
}

/// A table map, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    pub table_id: u64,
    pub database: String,
    pub table: String,
    pub columns: Vec<ColumnMeta>,
    /// Column indexes of the primary key in key order (FULL metadata), else empty.
    pub primary_key: Vec<usize>,
    /// Every column has its name (binlog_row_metadata=FULL).
    pub has_names: bool,
    /// Signedness was logged (MINIMAL or FULL): unsigned values are read right.
    pub has_signedness: bool,
}

impl TableMeta {
    /// Decodes a table map. Errors name what is malformed.
    pub fn from_event(tme: &TableMapEvent<'_>) -> Result<TableMeta, String> {
        let count = usize::try_from(tme.columns_count())
            .ok()
            .filter(|c| *c <= MAX_COLUMNS)
            .ok_or_else(|| {
                format!(
                    "{} columns (a table has at most {MAX_COLUMNS})",
                    tme.columns_count()
                )
            })?;
        let mut columns = Vec::with_capacity(count);
        for i in 0..count {
            let column_type = tme
                .get_column_type(i)
                .map_err(|e| format!("column {i}: {e}"))?
                .ok_or_else(|| format!("column {i}: no type"))?;
            let metadata = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
            columns.push(ColumnMeta {
                name: None,
                column_type,
                metadata,
                unsigned: false,
                charset: None,
                labels: None,
                visible: true,
            });
        }
        let extractor = OptionalMetaExtractor::new(tme.iter_optional_meta())
            .map_err(|e| format!("optional metadata: {e}"))?;

        let mut has_signedness = false;
        let mut signedness = extractor.iter_signedness();
        for c in columns
            .iter_mut()
            .filter(|c| c.column_type.is_numeric_type())
        {
            if let Some(unsigned) = signedness.next() {
                c.unsigned = unsigned;
                has_signedness = true;
            }
        }
        let mut charsets = extractor.iter_charset();
        let mut enum_set_charsets = extractor.iter_enum_and_set_charset();
        for c in columns.iter_mut() {
            let next = if c.column_type.is_character_type() {
                charsets.next()
            } else if c.column_type.is_enum_or_set_type() {
                enum_set_charsets.next()
            } else {
                None
            };
            c.charset = next
                .transpose()
                .map_err(|e| format!("column charsets: {e}"))?;
        }
        let mut names = extractor.iter_column_name();
        let mut has_names = count > 0;
        for c in columns.iter_mut() {
            match names.next() {
                Some(name) => {
                    let name = name.map_err(|e| format!("column names: {e}"))?;
                    let text = String::from_utf8(name.name_raw().to_vec())
                        .map_err(|_| "a column name is not UTF-8".to_owned())?;
                    c.name = Some(text);
                }
                None => has_names = false,
            }
        }
        let mut primary_key = Vec::new();
        for k in extractor.iter_primary_key() {
            let k = k.map_err(|e| format!("primary key: {e}"))?;
            let k = usize::try_from(k).ok().filter(|k| *k < count);
            primary_key.push(k.ok_or_else(|| "primary key column out of range".to_owned())?);
        }
        labels_and_visibility(tme, &mut columns)?;
        Ok(TableMeta {
            table_id: tme.table_id(),
            database: utf8(tme.database_name_raw(), "database name")?,
            table: utf8(tme.table_name_raw(), "table name")?,
            columns,
            primary_key,
            has_names,
            has_signedness,
        })
    }

    /// `database.table`, for messages.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// This table map completed from the table's columns as `information_schema` lists them
    /// now, for sources that log no column metadata (MySQL 5.7, MariaDB before 10.5, or
    /// `binlog_row_metadata` not FULL): names, signedness, charsets and ENUM/SET labels. Only
    /// when the map still fits the columns (same count, each type the one the column logs as);
    /// otherwise the table changed since the event was written and no name can be trusted.
    pub fn with_schema(&self, columns: &[ColumnInfo]) -> Result<TableMeta, String> {
        let refuse = |why: String| {
            format!(
                "the binlog's table map of {} does not fit the table's columns now ({why}): \
                 without binlog_row_metadata=FULL the reader cannot tell which value belongs to \
                 which column. Fix: set binlog_row_metadata=FULL on the source (MariaDB 10.5+, \
                 MySQL 8.0.1+) and start a full migration again",
                self.qualified_name()
            )
        };
        let mut ordered: Vec<&ColumnInfo> = columns.iter().collect();
        ordered.sort_by_key(|c| c.ordinal);
        if ordered.len() != self.columns.len() {
            return Err(refuse(format!(
                "{} columns logged, {} in the table",
                self.columns.len(),
                ordered.len()
            )));
        }
        let mut meta = self.clone();
        for (c, info) in meta.columns.iter_mut().zip(ordered) {
            if !logs_as(&info.data_type, info.json, c.column_type) {
                return Err(refuse(format!(
                    "column `{}` is {} but the event logs a {:?}",
                    info.name, info.data_type, c.column_type
                )));
            }
            c.name = Some(info.name.clone());
            c.unsigned = info.unsigned;
            if c.column_type.is_enum_or_set_type() {
                // Labels from information_schema are UTF-8 text.
                c.labels = Some(
                    if c.column_type.is_enum_type() {
                        &info.enum_values
                    } else {
                        &info.set_values
                    }
                    .iter()
                    .map(|l| l.as_bytes().to_vec())
                    .collect(),
                );
                c.charset = Some(UTF8MB4_GENERAL_CI);
            } else if c.charset.is_none() {
                c.charset = info.charset.as_deref().and_then(charset_id);
            }
        }
        meta.has_names = true;
        meta.has_signedness = true;
        Ok(meta)
    }
}

const UTF8MB4_GENERAL_CI: u16 = 45;

/// A collation id of a charset named by information_schema (what decoding needs is the
/// charset; any of its collations will do): the first of MySQL's numbered collations that
/// belongs to it.
fn charset_id(name: &str) -> Option<u16> {
    let name = if name == "utf8" { "utf8mb3" } else { name };
    (1..=255u16).find(|&id| Collation::resolve(CollationId::from(id)).charset() == name)
}

/// Whether a column of `data_type` (information_schema) is logged with the real type `t`.
fn logs_as(data_type: &str, json: bool, t: ColumnType) -> bool {
    use ColumnType::*;
    match data_type {
        "tinyint" => t == MYSQL_TYPE_TINY,
        "smallint" => t == MYSQL_TYPE_SHORT,
        "mediumint" => t == MYSQL_TYPE_INT24,
        "int" | "integer" => t == MYSQL_TYPE_LONG,
        "bigint" => t == MYSQL_TYPE_LONGLONG,
        "decimal" | "numeric" => matches!(t, MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL),
        "float" => t == MYSQL_TYPE_FLOAT,
        "double" | "real" => t == MYSQL_TYPE_DOUBLE,
        "bit" => t == MYSQL_TYPE_BIT,
        "year" => t == MYSQL_TYPE_YEAR,
        "date" => matches!(t, MYSQL_TYPE_NEWDATE | MYSQL_TYPE_DATE),
        "time" => matches!(t, MYSQL_TYPE_TIME2 | MYSQL_TYPE_TIME),
        "datetime" => matches!(t, MYSQL_TYPE_DATETIME2 | MYSQL_TYPE_DATETIME),
        "timestamp" => matches!(t, MYSQL_TYPE_TIMESTAMP2 | MYSQL_TYPE_TIMESTAMP),
        "char" | "binary" => t == MYSQL_TYPE_STRING,
        "varchar" | "varbinary" => matches!(t, MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING),
        "enum" => t == MYSQL_TYPE_ENUM,
        "set" => t == MYSQL_TYPE_SET,
        "json" => t == MYSQL_TYPE_JSON,
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => {
            matches!(
                t,
                MYSQL_TYPE_BLOB
                    | MYSQL_TYPE_TINY_BLOB
                    | MYSQL_TYPE_MEDIUM_BLOB
                    | MYSQL_TYPE_LONG_BLOB
            ) || (json && t == MYSQL_TYPE_JSON)
        }
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => t == MYSQL_TYPE_GEOMETRY,
        _ => false,
    }
}

/// ENUM labels, SET members and column visibility, which the extractor does not expose.
fn labels_and_visibility(
    tme: &TableMapEvent<'_>,
    columns: &mut [ColumnMeta],
) -> Result<(), String> {
    for field in tme.iter_optional_meta() {
        match field.map_err(|e| format!("optional metadata: {e}"))? {
            OptionalMetadataField::EnumStrValue(values) => {
                let mut targets = columns.iter_mut().filter(|c| c.column_type.is_enum_type());
                for labels in values.iter_values() {
                    let labels = labels.map_err(|e| format!("ENUM labels: {e}"))?;
                    let column = targets
                        .next()
                        .ok_or_else(|| "more ENUM label lists than ENUM columns".to_owned())?;
                    column.labels = Some(
                        labels
                            .values()
                            .iter()
                            .map(|v| v.value_raw().to_vec())
                            .collect(),
                    );
                }
            }
            OptionalMetadataField::SetStrValue(values) => {
                let mut targets = columns.iter_mut().filter(|c| c.column_type.is_set_type());
                for members in values.iter_values() {
                    let members = members.map_err(|e| format!("SET members: {e}"))?;
                    let column = targets
                        .next()
                        .ok_or_else(|| "more SET member lists than SET columns".to_owned())?;
                    column.labels = Some(
                        members
                            .values()
                            .iter()
                            .map(|v| v.value_raw().to_vec())
                            .collect(),
                    );
                }
            }
            OptionalMetadataField::ColumnVisibility(flags) => {
                for (c, visible) in columns.iter_mut().zip(flags.iter().by_vals()) {
                    c.visible = visible;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn utf8(raw: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(raw.to_vec()).map_err(|_| format!("the {what} is not UTF-8"))
}

#[cfg(test)]
mod charset_id_tests {
    use super::*;
    use crate::mysql::binlog::charsets;

    /// Without logged charsets (no FULL metadata) a column's charset comes from its
    /// information_schema name: every charset the decoder knows must resolve to itself.
    #[test]
    fn every_decoded_charset_has_a_collation_id() {
        let others = [
            "utf8mb4", "utf8mb3", "latin1", "binary", "utf16", "utf16le", "ucs2", "utf32",
        ];
        for name in charsets::MAPPED.iter().chain(&others) {
            let id = charset_id(name).unwrap_or_else(|| panic!("{name} has no collation id"));
            assert_eq!(Collation::resolve(CollationId::from(id)).charset(), *name);
        }
        let utf8 = charset_id("utf8").map(|id| {
            Collation::resolve(CollationId::from(id))
                .charset()
                .to_string()
        });
        assert_eq!(utf8.as_deref(), Some("utf8mb3"));
        assert_eq!(charset_id("no_such_charset"), None);
    }
}
