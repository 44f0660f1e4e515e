//! The zero padding the official Node.js SDK (npm `tablestore` 5.6.5) leaves after a request
//! row's checksum, byte for byte as that SDK serialises it: requests accept it
//! (`decode_request_*`), responses and non-zero trailing bytes do not.

use super::*;
use crate::row::{Cell, CellOp, PrimaryKey, RowChange};
use crate::value::{PkValue, Value};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `serializePrimaryKey([{a: INF_MIN}, {b: INF_MAX}])`: a GetRange bound, two padding bytes
/// (one per INF cell) after the row checksum 0x96.
const NODE_INF_KEY: &str =
    "7500000001030401000000610501000000090adf0304010000006205010000000a0ae909960000";

/// `serializeForUpdateRow([{a: 'x'}], [{PUT: [{c: 1}]}, {DELETE: [{d: Long(1700000000000)}]},
/// {DELETE_ALL: ['e']}, {INCREMENT: [{n: Long(3)}]}])`: five padding bytes (the SDK sizes the
/// delete-one-version cell as if it held a value).
const NODE_UPDATE: &str = "75000000010304010000006105060000000301000000780a4d0203040100000063050900000001000000000000f03f0a0d030401000000640603070068e5cf8b0100000a110304010000006506010ab30304010000006e050900000000030000000000000006040a1109240000000000";

#[test]
fn node_sdk_inf_key_padding_is_accepted_in_requests_only() {
    let b = hex(NODE_INF_KEY);
    let want = PrimaryKey::new()
        .with("a", PkValue::InfMin)
        .with("b", PkValue::InfMax);
    assert_eq!(decode_request_pk(&b).unwrap(), want);
    assert_eq!(
        decode_pk(&b),
        Err(PlainBufferError::TrailingData {
            offset: b.len() - 2
        })
    );
    // Without the padding both read the same key.
    assert_eq!(decode_pk(&b[..b.len() - 2]).unwrap(), want);
}

#[test]
fn node_sdk_update_padding_is_accepted_in_requests() {
    let b = hex(NODE_UPDATE);
    let change = decode_request_row(&b)
        .unwrap()
        .into_change(OperationKind::Update)
        .unwrap();
    assert_eq!(
        change,
        RowChange::Update {
            primary_key: PrimaryKey::new().with("a", "x"),
            ops: vec![
                CellOp::Put(Cell::new("c", Value::Double(1.0))),
                CellOp::DeleteOneVersion {
                    name: "d".into(),
                    timestamp: 1_700_000_000_000
                },
                CellOp::DeleteAllVersions { name: "e".into() },
                CellOp::Increment {
                    name: "n".into(),
                    delta: 3
                },
            ],
        }
    );
    assert!(matches!(
        decode_single_row(&b),
        Err(PlainBufferError::TrailingData { .. })
    ));
}

#[test]
fn non_zero_bytes_after_a_request_row_are_refused() {
    let mut b = hex(NODE_INF_KEY);
    let end = b.len() - 2;
    *b.last_mut().unwrap() = 0x01;
    assert_eq!(
        decode_request_pk(&b),
        Err(PlainBufferError::TrailingData { offset: end })
    );
    // A second row after the first is data, not padding.
    let mut two = hex(NODE_INF_KEY)[..end].to_vec();
    two.extend_from_slice(&hex(NODE_INF_KEY)[4..end]);
    assert_eq!(
        decode_request_pk(&two),
        Err(PlainBufferError::TrailingData { offset: end })
    );
    // Padding never stands in for a row.
    assert!(matches!(
        decode_request_row(&hex("750000000000")),
        Err(PlainBufferError::BadTag { found: 0, .. })
    ));
}
