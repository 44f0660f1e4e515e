//! Row images read from a row event's row data: the null bitmap, the present-columns bitmap
//! (partial images), each layout's width, and short input.

use mysql_async::consts::ColumnType;
use mysql_async::consts::ColumnType::*;
use proptest::prelude::*;

use super::*;

fn col(t: ColumnType, metadata: &[u8]) -> ColumnMeta {
    ColumnMeta::of_type(t, metadata)
}

#[test]
fn layouts_by_type_and_metadata() {
    let cases: &[(ColumnType, &[u8], Layout)] = &[
        (MYSQL_TYPE_TINY, &[], Layout::Fixed(1)),
        (MYSQL_TYPE_SHORT, &[], Layout::Fixed(2)),
        (MYSQL_TYPE_INT24, &[], Layout::Fixed(3)),
        (MYSQL_TYPE_LONG, &[], Layout::Fixed(4)),
        (MYSQL_TYPE_LONGLONG, &[], Layout::Fixed(8)),
        (MYSQL_TYPE_FLOAT, &[4], Layout::Fixed(4)),
        (MYSQL_TYPE_DOUBLE, &[8], Layout::Fixed(8)),
        (MYSQL_TYPE_YEAR, &[], Layout::Fixed(1)),
        (MYSQL_TYPE_NEWDATE, &[], Layout::Fixed(3)),
        (MYSQL_TYPE_TIME2, &[0], Layout::Fixed(3)),
        (MYSQL_TYPE_TIME2, &[1], Layout::Fixed(4)),
        (MYSQL_TYPE_TIME2, &[4], Layout::Fixed(5)),
        (MYSQL_TYPE_TIME2, &[6], Layout::Fixed(6)),
        (MYSQL_TYPE_DATETIME2, &[0], Layout::Fixed(5)),
        (MYSQL_TYPE_DATETIME2, &[6], Layout::Fixed(8)),
        (MYSQL_TYPE_TIMESTAMP2, &[3], Layout::Fixed(6)),
        (MYSQL_TYPE_NEWDECIMAL, &[14, 4], Layout::Fixed(7)),
        (MYSQL_TYPE_NEWDECIMAL, &[65, 30], Layout::Fixed(30)),
        (MYSQL_TYPE_NEWDECIMAL, &[65, 0], Layout::Fixed(29)),
        (MYSQL_TYPE_NEWDECIMAL, &[66, 0], Layout::Unknown),
        (MYSQL_TYPE_NEWDECIMAL, &[4, 5], Layout::Unknown),
        (MYSQL_TYPE_BIT, &[4, 1], Layout::Fixed(2)),
        (MYSQL_TYPE_BIT, &[0, 8], Layout::Fixed(8)),
        (MYSQL_TYPE_BIT, &[1, 0], Layout::Fixed(1)),
        (MYSQL_TYPE_ENUM, &[247, 1], Layout::Fixed(1)),
        (MYSQL_TYPE_ENUM, &[247, 2], Layout::Fixed(2)),
        (MYSQL_TYPE_ENUM, &[247, 3], Layout::Unknown),
        (MYSQL_TYPE_SET, &[248, 8], Layout::Fixed(8)),
        (MYSQL_TYPE_STRING, &[254, 10], Layout::Prefixed(1)),
        (MYSQL_TYPE_STRING, &[0xce, 0xfc], Layout::Prefixed(2)),
        (MYSQL_TYPE_VARCHAR, &[255, 0], Layout::Prefixed(1)),
        (MYSQL_TYPE_VARCHAR, &[0, 1], Layout::Prefixed(2)),
        (MYSQL_TYPE_BLOB, &[1], Layout::Prefixed(1)),
        (MYSQL_TYPE_BLOB, &[3], Layout::Prefixed(3)),
        (MYSQL_TYPE_BLOB, &[4], Layout::Prefixed(4)),
        (MYSQL_TYPE_BLOB, &[5], Layout::Unknown),
        (MYSQL_TYPE_JSON, &[4], Layout::Prefixed(4)),
        (MYSQL_TYPE_GEOMETRY, &[4], Layout::Prefixed(4)),
        (MYSQL_TYPE_VARCHAR, &[], Layout::Unknown),
        (MYSQL_TYPE_TYPED_ARRAY, &[3], Layout::Unknown),
    ];
    for (t, m, want) in cases {
        assert_eq!(Layout::of(&col(*t, m)), *want, "{t:?} {m:?}");
    }
}

/// An INT, a VARCHAR(10) and a DATETIME2(0) table.
fn layouts() -> Vec<Layout> {
    [
        col(MYSQL_TYPE_LONG, &[]),
        col(MYSQL_TYPE_VARCHAR, &[40, 0]),
        col(MYSQL_TYPE_DATETIME2, &[0]),
    ]
    .iter()
    .map(Layout::of)
    .collect()
}

#[test]
fn rows_with_nulls_and_partial_images() {
    let mut data = Vec::new();
    // Row 1, all columns: no NULLs; 7, "ab", 5 datetime bytes.
    data.push(0b000);
    data.extend_from_slice(&7i32.to_le_bytes());
    data.extend_from_slice(&[2, b'a', b'b']);
    data.extend_from_slice(&[0x99, 0xb2, 0x42, 0x00, 0x00]);
    // Row 2, all columns: the VARCHAR is NULL.
    data.push(0b010);
    data.extend_from_slice(&8i32.to_le_bytes());
    data.extend_from_slice(&[0x99, 0xb2, 0x42, 0x00, 0x00]);
    // Row 3, a partial image of columns 0 and 2: column 2 NULL.
    data.push(0b10);
    data.extend_from_slice(&9i32.to_le_bytes());
    let layouts = layouts();
    let mut r = RowsReader::new(&data, &layouts);
    let one = r.image(&[0, 1, 2]).unwrap();
    assert_eq!(one.len(), 3);
    assert_eq!(one.get(0), Some(Value::Bytes(&7i32.to_le_bytes())));
    assert_eq!(one.get(1), Some(Value::Bytes(b"ab")));
    assert_eq!(one.get(2), Some(Value::Bytes(&[0x99, 0xb2, 0x42, 0, 0])));
    let two = r.image(&[0, 1, 2]).unwrap();
    assert_eq!(two.get(1), Some(Value::Null));
    assert_eq!(two.get(0), Some(Value::Bytes(&8i32.to_le_bytes())));
    assert!(!r.done());
    let three = r.image(&[0, 2]).unwrap();
    assert_eq!(three.get(0), Some(Value::Bytes(&9i32.to_le_bytes())));
    assert_eq!(three.get(1), None, "left out of the image");
    assert_eq!(three.get(2), Some(Value::Null));
    assert_eq!(three.get(3), None, "past the table map");
    assert!(r.done());
    assert_eq!(format!("{three:?}"), "[\"4 bytes\", \"absent\", \"NULL\"]");
    // Images share the event's bytes and compare by value.
    assert_eq!(one.clone(), one);
    assert_ne!(one, two);
}

#[test]
fn every_truncation_is_an_error() {
    let mut data = vec![0u8];
    data.extend_from_slice(&7i32.to_le_bytes());
    data.extend_from_slice(&[2, b'a', b'b']);
    data.extend_from_slice(&[0x99, 0xb2, 0x42, 0x00, 0x00]);
    let layouts = layouts();
    for cut in 0..data.len() {
        let mut r = RowsReader::new(&data[..cut], &layouts);
        assert!(r.image(&[0, 1, 2]).is_err(), "cut at {cut}");
    }
    // A length prefix past the end.
    let mut r = RowsReader::new(&[0, 1, 0, 0, 0, 200, b'x'], &layouts);
    assert!(r.image(&[0, 1]).is_err());
    // A column the table map does not have.
    let mut r = RowsReader::new(&[0, 1, 0, 0, 0], &layouts);
    assert!(r.image(&[5]).is_err());
    // A type the reader cannot size.
    let unknown = [Layout::Unknown];
    let mut r = RowsReader::new(&[0, 1], &unknown);
    assert!(r.image(&[0]).is_err());
    // ...unless its value is NULL.
    let mut r = RowsReader::new(&[1], &unknown);
    assert_eq!(r.image(&[0]).unwrap().get(0), Some(Value::Null));
}

#[test]
fn wide_length_prefixes() {
    let layouts = [Layout::Prefixed(3), Layout::Prefixed(4)];
    let data = [0u8, 2, 0, 0, b'h', b'i', 1, 0, 0, 0, b'!'];
    let mut r = RowsReader::new(&data, &layouts);
    let img = r.image(&[0, 1]).unwrap();
    assert_eq!(img.get(0), Some(Value::Bytes(b"hi")));
    assert_eq!(img.get(1), Some(Value::Bytes(b"!")));
    // A 4 GiB length claim in a short event: an error, no allocation.
    let mut r = RowsReader::new(&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], &layouts);
    assert!(r.image(&[0, 1]).is_err());
}

proptest! {
    /// Random row data against random layouts: images or errors, never a panic, and every
    /// value lies inside the data.
    #[test]
    fn random_rows_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64),
                               kinds in proptest::collection::vec(0u8..5, 1..12)) {
        let layouts: Vec<Layout> = kinds
            .iter()
            .map(|k| match k {
                0 => Layout::Fixed(4),
                1 => Layout::Prefixed(1),
                2 => Layout::Prefixed(2),
                3 => Layout::Prefixed(4),
                _ => Layout::Unknown,
            })
            .collect();
        let present: Vec<usize> = (0..layouts.len()).collect();
        let mut r = RowsReader::new(&data, &layouts);
        while !r.done() {
            match r.image(&present) {
                Ok(img) => {
                    for v in img.iter().flatten() {
                        if let Value::Bytes(b) = v {
                            prop_assert!(b.len() <= data.len());
                        }
                    }
                }
                Err(_) => break,
            }
        }
    }
}
