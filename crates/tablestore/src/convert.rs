//! Conversions between our types and the protobuf messages, shared by client and server so a
//! field can never be encoded one way and decoded another.

use super::error::ServiceError;
use super::filter::{decode_condition, encode_condition};
use super::pb;
use super::read::{ReadOptions, TimeRange};
use super::row::{Condition, RowExistence};
use super::schema::{DefinedColumnType, PkSchema, TableDef, TableDescription, TableOptions};
use super::value::PkType;

pub fn pk_type_to_pb(t: PkType) -> pb::PrimaryKeyType {
    match t {
        PkType::Integer => pb::PrimaryKeyType::Integer,
        PkType::String => pb::PrimaryKeyType::String,
        PkType::Binary => pb::PrimaryKeyType::Binary,
    }
}

fn defined_type_to_pb(t: DefinedColumnType) -> pb::DefinedColumnType {
    match t {
        DefinedColumnType::Integer => pb::DefinedColumnType::DctInteger,
        DefinedColumnType::Double => pb::DefinedColumnType::DctDouble,
        DefinedColumnType::Boolean => pb::DefinedColumnType::DctBoolean,
        DefinedColumnType::String => pb::DefinedColumnType::DctString,
        DefinedColumnType::Blob => pb::DefinedColumnType::DctBlob,
    }
}

pub fn table_meta_to_pb(def: &TableDef) -> pb::TableMeta {
    pb::TableMeta {
        table_name: def.name.clone(),
        primary_key: def
            .primary_key
            .iter()
            .map(|c| pb::PrimaryKeySchema {
                name: c.name.clone(),
                r#type: pk_type_to_pb(c.pk_type) as i32,
                option: c
                    .auto_increment
                    .then_some(pb::PrimaryKeyOption::AutoIncrement as i32),
            })
            .collect(),
        defined_column: def
            .defined_columns
            .iter()
            .map(|(n, t)| pb::DefinedColumnSchema {
                name: n.clone(),
                r#type: defined_type_to_pb(*t) as i32,
            })
            .collect(),
        index_meta: Vec::new(),
        table_id: None,
    }
}

/// A table's name, key schema and defined columns, as TableMeta carries them.
pub type MetaParts = (String, Vec<PkSchema>, Vec<(String, DefinedColumnType)>);

pub fn table_meta_from_pb(meta: pb::TableMeta) -> Result<MetaParts, ServiceError> {
    let mut pks = Vec::with_capacity(meta.primary_key.len());
    for c in meta.primary_key {
        let pk_type = match pb::PrimaryKeyType::try_from(c.r#type) {
            Ok(pb::PrimaryKeyType::Integer) => PkType::Integer,
            Ok(pb::PrimaryKeyType::String) => PkType::String,
            Ok(pb::PrimaryKeyType::Binary) => PkType::Binary,
            Err(_) => {
                return Err(ServiceError::parameter_invalid(format!(
                    "{} is an invalid type for the primary key.",
                    c.r#type
                )))
            }
        };
        let auto_increment = match c.option {
            None => false,
            Some(o) if o == pb::PrimaryKeyOption::AutoIncrement as i32 => true,
            Some(o) => {
                return Err(ServiceError::parameter_invalid(format!(
                    "Invalid primary key option: {o}."
                )))
            }
        };
        pks.push(PkSchema {
            name: c.name,
            pk_type,
            auto_increment,
        });
    }
    let mut defined = Vec::with_capacity(meta.defined_column.len());
    for c in meta.defined_column {
        let t = match pb::DefinedColumnType::try_from(c.r#type) {
            Ok(pb::DefinedColumnType::DctInteger) => DefinedColumnType::Integer,
            Ok(pb::DefinedColumnType::DctDouble) => DefinedColumnType::Double,
            Ok(pb::DefinedColumnType::DctBoolean) => DefinedColumnType::Boolean,
            Ok(pb::DefinedColumnType::DctString) => DefinedColumnType::String,
            Ok(pb::DefinedColumnType::DctBlob) => DefinedColumnType::Blob,
            Err(_) => {
                return Err(ServiceError::parameter_invalid(format!(
                    "Invalid defined column type: {}.",
                    c.r#type
                )))
            }
        };
        defined.push((c.name, t));
    }
    Ok((meta.table_name, pks, defined))
}

pub fn options_to_pb(o: &TableOptions) -> pb::TableOptions {
    pb::TableOptions {
        time_to_live: Some(o.time_to_live),
        max_versions: Some(o.max_versions),
        deviation_cell_version_in_sec: Some(o.deviation_cell_version_in_sec),
        allow_update: Some(o.allow_update),
        ..Default::default()
    }
}

/// Options from a CreateTable request; absent fields take the service defaults.
pub fn options_from_pb(o: Option<&pb::TableOptions>) -> TableOptions {
    let d = TableOptions::default();
    match o {
        None => d,
        Some(o) => TableOptions {
            time_to_live: o.time_to_live.unwrap_or(d.time_to_live),
            max_versions: o.max_versions.unwrap_or(d.max_versions),
            deviation_cell_version_in_sec: o
                .deviation_cell_version_in_sec
                .unwrap_or(d.deviation_cell_version_in_sec),
            allow_update: o.allow_update.unwrap_or(d.allow_update),
        },
    }
}

pub fn create_table_request(def: &TableDef) -> pb::CreateTableRequest {
    pb::CreateTableRequest {
        table_meta: table_meta_to_pb(def),
        reserved_throughput: pb::ReservedThroughput {
            capacity_unit: zero_cu(),
        },
        table_options: Some(options_to_pb(&def.options)),
        ..Default::default()
    }
}

pub fn zero_cu() -> pb::CapacityUnit {
    pb::CapacityUnit {
        read: Some(0),
        write: Some(0),
    }
}

pub fn describe_response(d: &TableDescription) -> pb::DescribeTableResponse {
    pb::DescribeTableResponse {
        table_meta: table_meta_to_pb(&d.def),
        reserved_throughput_details: pb::ReservedThroughputDetails {
            capacity_unit: zero_cu(),
            last_increase_time: d.creation_time,
            last_decrease_time: None,
        },
        table_options: options_to_pb(&d.def.options),
        table_status: pb::TableStatus::Active as i32,
        creation_time: Some(d.creation_time),
        ..Default::default()
    }
}

pub fn describe_from_pb(r: pb::DescribeTableResponse) -> Result<TableDescription, ServiceError> {
    let options = options_from_pb(Some(&r.table_options));
    let (name, primary_key, defined_columns) = table_meta_from_pb(r.table_meta)?;
    Ok(TableDescription {
        def: TableDef {
            name,
            primary_key,
            defined_columns,
            options,
        },
        creation_time: r
            .creation_time
            .unwrap_or(r.reserved_throughput_details.last_increase_time),
    })
}

pub fn condition_to_pb(c: &Condition) -> pb::Condition {
    pb::Condition {
        row_existence: match c.row_existence {
            RowExistence::Ignore => pb::RowExistenceExpectation::Ignore,
            RowExistence::ExpectExist => pb::RowExistenceExpectation::ExpectExist,
            RowExistence::ExpectNotExist => pb::RowExistenceExpectation::ExpectNotExist,
        } as i32,
        column_condition: c.column_condition.as_ref().map(encode_condition),
    }
}

pub fn condition_from_pb(c: &pb::Condition) -> Result<Condition, ServiceError> {
    let row_existence = match pb::RowExistenceExpectation::try_from(c.row_existence) {
        Ok(pb::RowExistenceExpectation::Ignore) => RowExistence::Ignore,
        Ok(pb::RowExistenceExpectation::ExpectExist) => RowExistence::ExpectExist,
        Ok(pb::RowExistenceExpectation::ExpectNotExist) => RowExistence::ExpectNotExist,
        Err(_) => {
            return Err(ServiceError::parameter_invalid(format!(
                "Invalid row existence expectation: {}.",
                c.row_existence
            )))
        }
    };
    let column_condition = match &c.column_condition {
        Some(b) if !b.is_empty() => Some(decode_condition(b)?),
        _ => None,
    };
    Ok(Condition {
        row_existence,
        column_condition,
    })
}

pub fn time_range_to_pb(t: &TimeRange) -> pb::TimeRange {
    match *t {
        TimeRange::Between { start, end } => pb::TimeRange {
            start_time: Some(start),
            end_time: Some(end),
            specific_time: None,
        },
        TimeRange::Specific(ts) => pb::TimeRange {
            start_time: None,
            end_time: None,
            specific_time: Some(ts),
        },
    }
}

/// Builds read options from the common fields of GetRow / GetRange / BatchGetRow requests.
pub fn read_options_from_pb(
    columns_to_get: Vec<String>,
    max_versions: Option<i32>,
    time_range: Option<&pb::TimeRange>,
    filter: Option<&[u8]>,
) -> Result<ReadOptions, ServiceError> {
    let time_range = match time_range {
        None => None,
        Some(t) => Some(match (t.specific_time, t.start_time, t.end_time) {
            (Some(s), _, _) => TimeRange::Specific(s),
            (None, Some(start), Some(end)) if start < end => TimeRange::Between { start, end },
            _ => {
                return Err(ServiceError::parameter_invalid(
                    "Invalid time range: give specific_time, or start_time < end_time.",
                ))
            }
        }),
    };
    if max_versions.is_some() && time_range.is_some() {
        return Err(ServiceError::parameter_invalid(
            "Only one of max_versions and time_range may be set.",
        ));
    }
    if let Some(m) = max_versions {
        if m <= 0 {
            return Err(ServiceError::parameter_invalid(
                "max_versions must be greater than 0.",
            ));
        }
    }
    let filter = match filter {
        Some(b) if !b.is_empty() => Some(decode_condition(b)?),
        _ => None,
    };
    Ok(ReadOptions {
        columns_to_get,
        max_versions,
        time_range,
        filter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn describe_round_trip() {
        let mut def = TableDef::new(
            "t",
            vec![
                PkSchema::new("a", PkType::String),
                PkSchema {
                    name: "b".into(),
                    pk_type: PkType::Integer,
                    auto_increment: true,
                },
            ],
        );
        def.defined_columns
            .push(("x".into(), DefinedColumnType::Double));
        let d = TableDescription {
            def,
            creation_time: 1700000000,
        };
        let bytes = describe_response(&d).encode_to_vec();
        let back =
            describe_from_pb(pb::DescribeTableResponse::decode(bytes.as_slice()).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
