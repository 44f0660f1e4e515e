//! The per-table metadata record (definition, creation time, auto-increment counter) and its
//! encoding in redb's metadata table. Separate because it changes on its own schedule (table
//! management, counters) and is read once at open.

use tablestore::schema::{DefinedColumnType, PkSchema, TableDef, TableOptions};
use tablestore::value::PkType;

use super::codec::{put_bytes, put_varint, Reader};
use super::StoreError;

/// What the metadata table keeps per Tablestore table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRecord {
    pub def: TableDef,
    /// Unix seconds.
    pub creation_time: i64,
    /// Last auto-increment value handed out (0 = none yet).
    pub auto_increment: i64,
}

const META_FORMAT: u8 = 1;

fn pk_type_code(t: PkType) -> u8 {
    match t {
        PkType::Integer => 0,
        PkType::String => 1,
        PkType::Binary => 2,
    }
}

fn defined_type_code(t: DefinedColumnType) -> u8 {
    match t {
        DefinedColumnType::Integer => 0,
        DefinedColumnType::Double => 1,
        DefinedColumnType::Boolean => 2,
        DefinedColumnType::String => 3,
        DefinedColumnType::Blob => 4,
    }
}

pub fn encode_record(rec: &TableRecord) -> Vec<u8> {
    let mut out = vec![META_FORMAT];
    let d = &rec.def;
    put_bytes(&mut out, d.name.as_bytes());
    put_varint(&mut out, d.primary_key.len() as u64);
    for pk in &d.primary_key {
        put_bytes(&mut out, pk.name.as_bytes());
        out.push(pk_type_code(pk.pk_type));
        out.push(u8::from(pk.auto_increment));
    }
    put_varint(&mut out, d.defined_columns.len() as u64);
    for (name, t) in &d.defined_columns {
        put_bytes(&mut out, name.as_bytes());
        out.push(defined_type_code(*t));
    }
    let o = &d.options;
    out.extend_from_slice(&i64::from(o.time_to_live).to_le_bytes());
    out.extend_from_slice(&i64::from(o.max_versions).to_le_bytes());
    out.extend_from_slice(&o.deviation_cell_version_in_sec.to_le_bytes());
    out.push(u8::from(o.allow_update));
    out.extend_from_slice(&rec.creation_time.to_le_bytes());
    out.extend_from_slice(&rec.auto_increment.to_le_bytes());
    out
}

pub fn decode_record(b: &[u8]) -> Result<TableRecord, StoreError> {
    let mut r = Reader::new(b);
    if r.u8()? != META_FORMAT {
        return Err(StoreError(
            "unknown table metadata format in storage".to_owned(),
        ));
    }
    let name = r.string()?;
    let npk = r.len()?;
    let mut primary_key = Vec::with_capacity(npk.min(16));
    for _ in 0..npk {
        let name = r.string()?;
        let pk_type = match r.u8()? {
            0 => PkType::Integer,
            1 => PkType::String,
            2 => PkType::Binary,
            _ => return Err(r.corrupt()),
        };
        let auto_increment = r.u8()? != 0;
        primary_key.push(PkSchema {
            name,
            pk_type,
            auto_increment,
        });
    }
    let nd = r.len()?;
    let mut defined_columns = Vec::with_capacity(nd.min(64));
    for _ in 0..nd {
        let name = r.string()?;
        let t = match r.u8()? {
            0 => DefinedColumnType::Integer,
            1 => DefinedColumnType::Double,
            2 => DefinedColumnType::Boolean,
            3 => DefinedColumnType::String,
            4 => DefinedColumnType::Blob,
            _ => return Err(r.corrupt()),
        };
        defined_columns.push((name, t));
    }
    let options = TableOptions {
        time_to_live: r.i64()? as i32,
        max_versions: r.i64()? as i32,
        deviation_cell_version_in_sec: r.i64()?,
        allow_update: r.u8()? != 0,
    };
    let creation_time = r.i64()?;
    let auto_increment = r.i64()?;
    r.finish()?;
    Ok(TableRecord {
        def: TableDef {
            name,
            primary_key,
            defined_columns,
            options,
        },
        creation_time,
        auto_increment,
    })
}
