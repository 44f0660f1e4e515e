//! Column type mapping (design §4): lossless defaults, per-column overrides, and which
//! destination types a primary key may use.

use crate::config::ColumnType;
use crate::mysql::ColumnInfo;
use tablestore::schema::DefinedColumnType;
use tablestore::PkType;

/// The MySQL type families the mapping distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Integer,
    Bit,
    Year,
    Decimal,
    Float,
    Double,
    Text,
    Enum,
    Set,
    Json,
    Binary,
    Spatial,
    Date,
    Time,
    DateTime,
    Timestamp,
}

/// The family of a column, or `None` for a type tsmigrate does not know.
pub fn family(col: &ColumnInfo) -> Option<Family> {
    if col.json {
        return Some(Family::Json);
    }
    Some(match col.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => Family::Integer,
        "bit" => Family::Bit,
        "year" => Family::Year,
        "decimal" | "numeric" | "dec" | "fixed" => Family::Decimal,
        "float" => Family::Float,
        "double" | "real" | "double precision" => Family::Double,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "uuid" | "inet4"
        | "inet6" => Family::Text,
        "enum" => Family::Enum,
        "set" => Family::Set,
        "json" => Family::Json,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "vector" => {
            Family::Binary
        }
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => Family::Spatial,
        "date" => Family::Date,
        "time" => Family::Time,
        "datetime" => Family::DateTime,
        "timestamp" => Family::Timestamp,
        _ => return None,
    })
}

/// The default destination type of a family (design §4).
pub fn default_type(f: Family) -> ColumnType {
    match f {
        Family::Integer | Family::Bit | Family::Year => ColumnType::Integer,
        Family::Float | Family::Double => ColumnType::Double,
        Family::Binary | Family::Spatial => ColumnType::Binary,
        Family::Decimal
        | Family::Text
        | Family::Enum
        | Family::Set
        | Family::Json
        | Family::Date
        | Family::Time
        | Family::DateTime
        | Family::Timestamp => ColumnType::String,
    }
}

/// Whether `target` can carry values of family `f` without inventing a meaning. STRING and
/// BINARY carry anything (the text MySQL prints); the others need a numeric or temporal source.
pub fn override_allowed(f: Family, target: ColumnType) -> bool {
    match target {
        ColumnType::String | ColumnType::Binary => true,
        ColumnType::Integer => matches!(f, Family::Integer | Family::Bit | Family::Year),
        ColumnType::Double => matches!(
            f,
            Family::Integer | Family::Decimal | Family::Float | Family::Double | Family::Year
        ),
        ColumnType::Boolean => matches!(f, Family::Integer | Family::Bit),
        ColumnType::EpochMicros => {
            matches!(f, Family::Date | Family::DateTime | Family::Timestamp)
        }
    }
}

/// The primary-key type for a destination type (`None`: not allowed in a key).
pub fn pk_type(t: ColumnType) -> Option<PkType> {
    match t {
        ColumnType::Integer | ColumnType::EpochMicros => Some(PkType::Integer),
        ColumnType::String => Some(PkType::String),
        ColumnType::Binary => Some(PkType::Binary),
        ColumnType::Double | ColumnType::Boolean => None,
    }
}

/// The Tablestore attribute type a destination type is stored as.
pub fn attribute_type(t: ColumnType) -> DefinedColumnType {
    match t {
        ColumnType::Integer | ColumnType::EpochMicros => DefinedColumnType::Integer,
        ColumnType::Double => DefinedColumnType::Double,
        ColumnType::Boolean => DefinedColumnType::Boolean,
        ColumnType::String => DefinedColumnType::String,
        ColumnType::Binary => DefinedColumnType::Blob,
    }
}

/// Largest value a column of this type can hold, in bytes, when it is bounded (for the
/// primary-key 1 KB and attribute 2 MB limits). `None` = unbounded or unknown.
pub fn max_value_bytes(col: &ColumnInfo, target: ColumnType) -> Option<u64> {
    match target {
        ColumnType::Integer | ColumnType::EpochMicros | ColumnType::Double => Some(8),
        ColumnType::Boolean => Some(1),
        ColumnType::String | ColumnType::Binary => match family(col)? {
            Family::Text | Family::Binary => col.octet_max_length,
            Family::Enum => col.enum_values.iter().map(|v| v.len() as u64).max(),
            Family::Set => Some(
                col.set_values
                    .iter()
                    .map(|v| v.len() as u64 + 1)
                    .sum::<u64>(),
            ),
            Family::Decimal => Some(col.numeric_precision.unwrap_or(65) + 2),
            Family::Integer | Family::Bit | Family::Year => Some(20),
            Family::Date => Some(10),
            Family::Time => Some(17),
            Family::DateTime | Family::Timestamp => Some(26),
            Family::Float | Family::Double => Some(32),
            Family::Json | Family::Spatial => col.octet_max_length,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str) -> ColumnInfo {
        ColumnInfo::of_type("c", 1, data_type, data_type)
    }

    #[test]
    fn defaults_follow_the_design() {
        let cases = [
            ("bigint", ColumnType::Integer),
            ("bit", ColumnType::Integer),
            ("year", ColumnType::Integer),
            ("decimal", ColumnType::String),
            ("float", ColumnType::Double),
            ("double", ColumnType::Double),
            ("varchar", ColumnType::String),
            ("enum", ColumnType::String),
            ("set", ColumnType::String),
            ("json", ColumnType::String),
            ("blob", ColumnType::Binary),
            ("geometry", ColumnType::Binary),
            ("datetime", ColumnType::String),
            ("timestamp", ColumnType::String),
            ("time", ColumnType::String),
        ];
        for (t, want) in cases {
            assert_eq!(default_type(family(&col(t)).unwrap()), want, "{t}");
        }
        assert_eq!(family(&col("hyperloglog")), None);
        let mut j = col("longtext");
        j.json = true;
        assert_eq!(family(&j), Some(Family::Json));
    }

    #[test]
    fn overrides_must_make_sense() {
        assert!(override_allowed(Family::DateTime, ColumnType::EpochMicros));
        assert!(!override_allowed(Family::Text, ColumnType::EpochMicros));
        assert!(override_allowed(Family::Integer, ColumnType::String));
        assert!(!override_allowed(Family::Json, ColumnType::Integer));
        assert_eq!(pk_type(ColumnType::Double), None);
        assert_eq!(pk_type(ColumnType::EpochMicros), Some(PkType::Integer));
    }
}
