//! What a TABLE_MAP event says about a table, decoded once per table map instead of once per
//! row (mysql_common re-reads the optional metadata for every row): column names, real types,
//! type metadata, signedness, charsets, ENUM/SET labels, visibility and the primary key. With
//! `binlog_row_metadata=FULL` all of it comes with the event, so names and types are those of
//! the moment the row was written, not of whatever the table looks like when we read.

use mysql_async::binlog::events::{OptionalMetaExtractor, OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;

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
