//! `objects` and `name_case`: which tables to migrate ([`Objects`], [`TableSelection`]), the
//! per-table and per-column overrides ([`TableSpec`], [`ColumnSpec`], [`ColumnType`]) and how
//! destination names are derived ([`NameCase`]). Split from `config/mod.rs` so each config
//! section reads on its own; re-exported as `config::*`.

use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema as schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::validate;

/// Capitalization of destination names not set explicitly with `target`. Explicit `target`
/// names are always used exactly as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NameCase {
    /// DTS's default policy; for Tablestore it keeps the source name unchanged (as `source`).
    #[default]
    Default,
    /// Keep the source name's capitalization.
    Source,
    /// Lowercase the source name.
    Lower,
    /// Uppercase the source name.
    Upper,
}

impl NameCase {
    /// The destination name for source name `name` under this policy.
    pub fn apply(self, name: &str) -> String {
        match self {
            NameCase::Default | NameCase::Source => name.to_owned(),
            NameCase::Lower => name.to_lowercase(),
            NameCase::Upper => name.to_uppercase(),
        }
    }
}

/// Which tables to migrate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objects {
    /// "*" for every base table of source.database, or a list of table specs (at most 1,000:
    /// the DTS limit for edited objects).
    #[serde(default)]
    pub tables: TableSelection,
    /// With "tables": "*", source tables to leave out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_tables: Vec<String>,
}

/// `"*"` or a list of [`TableSpec`]s.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TableSelection {
    /// Every base table of the source database (minus `exclude_tables`).
    #[default]
    All,
    /// Exactly these tables.
    List(Vec<TableSpec>),
}

impl Serialize for TableSelection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TableSelection::All => serializer.serialize_str("*"),
            TableSelection::List(specs) => specs.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TableSelection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TableSelectionVisitor)
    }
}

struct TableSelectionVisitor;

impl<'de> Visitor<'de> for TableSelectionVisitor {
    type Value = TableSelection;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"*\" or a list of table specs ({\"name\": \"orders\", …})")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if v == "*" {
            Ok(TableSelection::All)
        } else {
            Err(E::custom(format!(
                "\"{v}\" is not accepted: use \"*\" for every table, or a list such as \
                 [{{\"name\": \"{v}\"}}]"
            )))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Vec::<TableSpec>::deserialize(de::value::SeqAccessDeserializer::new(seq))
            .map(TableSelection::List)
    }
}

impl JsonSchema for TableSelection {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TableSelection".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let spec = generator.subschema_for::<TableSpec>();
        schema!({
            "description": "\"*\" for every base table of source.database, or a list of table specs.",
            "oneOf": [
                {"const": "*", "description": "Every base table of source.database (minus exclude_tables)."},
                {"type": "array", "items": spec, "maxItems": 1000, "description": "Exactly these tables."}
            ]
        })
    }
}

/// One source table to migrate, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// Source table name in source.database.
    pub name: String,
    /// Destination table name; default: `name` under name_case. Must obey Tablestore naming:
    /// 1-255 characters of A-Z a-z 0-9 _, starting with a letter or underscore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// SQL WHERE expression (MySQL syntax, without the WHERE keyword) selecting the rows to
    /// migrate, e.g. "status <> 'deleted' AND id > 1000". Applied to the full copy and to every
    /// binlog row image; subqueries are not allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Source columns forming the destination primary key (1-4, in key order), instead of the
    /// table's own primary key; needed for tables with only a UNIQUE key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = validate::MAX_PRIMARY_KEY_COLUMNS))]
    pub primary_key: Option<Vec<String>>,
    /// Per-column overrides keyed by source column name: rename and/or destination type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub columns: BTreeMap<String, ColumnSpec>,
}

impl TableSpec {
    /// A spec migrating table `name` with no overrides.
    pub fn new(name: impl Into<String>) -> Self {
        TableSpec {
            name: name.into(),
            target: None,
            filter: None,
            primary_key: None,
            columns: BTreeMap::new(),
        }
    }

    /// The destination table name: `target`, else `name` under `case`.
    pub fn target_name(&self, case: NameCase) -> String {
        match &self.target {
            Some(t) => t.clone(),
            None => case.apply(&self.name),
        }
    }

    /// The destination name of source column `column`: its `target`, else `column` under
    /// `case`.
    pub fn column_target(&self, column: &str, case: NameCase) -> String {
        match self.columns.get(column).and_then(|c| c.target.as_ref()) {
            Some(t) => t.clone(),
            None => case.apply(column),
        }
    }
}

/// Overrides for one column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Destination column name; default: the source name under name_case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Destination type instead of the default mapping.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub column_type: Option<ColumnType>,
}

/// A destination column type override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// STRING: text as MySQL prints it (e.g. BIGINT UNSIGNED beyond 2^63-1, exact DECIMAL).
    String,
    /// INTEGER (signed 64-bit).
    Integer,
    /// DOUBLE (not allowed for primary key columns).
    Double,
    /// BOOLEAN (not allowed for primary key columns).
    Boolean,
    /// BINARY: the raw bytes.
    Binary,
    /// INTEGER microseconds since 1970-01-01 UTC, for DATE/DATETIME/TIMESTAMP columns.
    EpochMicros,
}

impl ColumnType {
    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Double => "double",
            ColumnType::Boolean => "boolean",
            ColumnType::Binary => "binary",
            ColumnType::EpochMicros => "epoch_micros",
        }
    }

    /// Tablestore primary key columns may only be INTEGER, STRING or BINARY.
    pub fn allowed_in_primary_key(self) -> bool {
        !matches!(self, ColumnType::Double | ColumnType::Boolean)
    }
}
