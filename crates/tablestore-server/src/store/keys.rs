//! The primary key encoding. Its own file because its ordering property is what range reads
//! rely on: keys are the primary key in an order-preserving byte encoding, so redb's bytewise
//! key order is the service's PK order (§3.9) and range bounds with INF_MIN/INF_MAX in any
//! column are plain byte bounds. Per column: a tag (0x00 INF_MIN, 0x01 value, 0x02 INF_MAX),
//! then for a value an INTEGER as 8 bytes big-endian with the sign bit flipped, a
//! STRING/BINARY as its bytes with 0x00 escaped as 0x00 0xFF and terminated by 0x00 0x00 (the
//! terminator sorts below any continuation, so a prefix sorts first and the next column never
//! leaks into the comparison).

use tablestore::row::{PkColumn, PrimaryKey};
use tablestore::schema::PkSchema;
use tablestore::value::{PkType, PkValue};

use super::StoreError;

const TAG_INF_MIN: u8 = 0x00;
const TAG_VALUE: u8 = 0x01;
const TAG_INF_MAX: u8 = 0x02;
/// Never stored: the engine resolves placeholders before encoding. Sorts above everything.
const TAG_AUTO_INCREMENT: u8 = 0x03;

/// Encodes a primary key (or range bound) so that byte order equals PK order.
pub fn encode_key(pk: &PrimaryKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(pk.0.iter().map(|c| c.value.data_size() + 3).sum());
    for c in &pk.0 {
        encode_pk_value(&c.value, &mut out);
    }
    out
}

fn encode_pk_value(v: &PkValue, out: &mut Vec<u8>) {
    match v {
        PkValue::InfMin => out.push(TAG_INF_MIN),
        PkValue::InfMax => out.push(TAG_INF_MAX),
        PkValue::AutoIncrement => out.push(TAG_AUTO_INCREMENT),
        PkValue::Integer(i) => {
            out.push(TAG_VALUE);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        PkValue::String(s) => {
            out.push(TAG_VALUE);
            escape_bytes(s.as_bytes(), out);
        }
        PkValue::Binary(b) => {
            out.push(TAG_VALUE);
            escape_bytes(b, out);
        }
    }
}

fn escape_bytes(b: &[u8], out: &mut Vec<u8>) {
    for &x in b {
        out.push(x);
        if x == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

/// Decodes a key written by [`encode_key`] with the table's PK schema.
pub fn decode_key(mut b: &[u8], schema: &[PkSchema]) -> Result<PrimaryKey, StoreError> {
    let bad = || StoreError("corrupt primary key in storage".to_owned());
    let mut cols = Vec::with_capacity(schema.len());
    for s in schema {
        let (&tag, rest) = b.split_first().ok_or_else(bad)?;
        b = rest;
        let value = match tag {
            TAG_INF_MIN => PkValue::InfMin,
            TAG_INF_MAX => PkValue::InfMax,
            TAG_AUTO_INCREMENT => PkValue::AutoIncrement,
            TAG_VALUE => match s.pk_type {
                PkType::Integer => {
                    let (n, rest) = b.split_first_chunk::<8>().ok_or_else(bad)?;
                    b = rest;
                    PkValue::Integer((u64::from_be_bytes(*n) ^ (1 << 63)) as i64)
                }
                PkType::String | PkType::Binary => {
                    let mut raw = Vec::new();
                    loop {
                        match b {
                            [0, 0, rest @ ..] => {
                                b = rest;
                                break;
                            }
                            [0, 0xFF, rest @ ..] => {
                                raw.push(0);
                                b = rest;
                            }
                            [x, rest @ ..] if *x != 0 => {
                                raw.push(*x);
                                b = rest;
                            }
                            _ => return Err(bad()),
                        }
                    }
                    if s.pk_type == PkType::String {
                        PkValue::String(String::from_utf8(raw).map_err(|_| bad())?)
                    } else {
                        PkValue::Binary(raw)
                    }
                }
            },
            _ => return Err(bad()),
        };
        cols.push(PkColumn {
            name: s.name.clone(),
            value,
        });
    }
    if !b.is_empty() {
        return Err(bad());
    }
    Ok(PrimaryKey(cols))
}
