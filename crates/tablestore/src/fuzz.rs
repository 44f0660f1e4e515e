//! The harness of the `plainbuffer_decode` fuzz target (`fuzz/`), here so that the target and
//! the corpus replay test below run the very same code. Not part of the crate's API.

use crate::plainbuffer::{self, OperationKind, WireRow};

/// Runs one fuzz input through every PlainBuffer decode entry and the conversions after them.
/// Never panics on any input; a panic is a bug (that is what the fuzzer checks). The
/// assertions: what decodes re-encodes to bytes that decode to the same re-encoding (the
/// decoder accepts nothing the encoder cannot write back), and a request row decoded borrowed
/// (the server's multi-row writes) is, owned, the row the owned decode gives.
pub fn plainbuffer_decode(data: &[u8]) {
    if let Ok(rows) = plainbuffer::decode_rows(data) {
        let once = encode(&rows);
        let again = plainbuffer::decode_rows(&once).map(|r| encode(&r));
        assert_eq!(
            again.as_ref(),
            Ok(&once),
            "re-encoded rows do not decode to themselves"
        );
        for row in rows {
            let _ = row.clone().into_row();
            for op in [
                OperationKind::Put,
                OperationKind::Update,
                OperationKind::Delete,
            ] {
                let _ = row.clone().into_change(op);
            }
        }
    }
    // The server's entry for multi-row writes: the borrowed change, owned, is what the owned
    // decode gives (same row, same error).
    for op in [
        OperationKind::Put,
        OperationKind::Update,
        OperationKind::Delete,
    ] {
        let borrowed = plainbuffer::decode_request_change(data, op).map(|c| c.into_owned());
        let owned = plainbuffer::decode_request_row(data).and_then(|w| w.into_change(op));
        // Compared as text: a NaN double is not equal to itself.
        assert_eq!(
            format!("{borrowed:?}"),
            format!("{owned:?}"),
            "borrowed and owned request decodes differ"
        );
    }
    let _ = plainbuffer::decode_single_row(data);
    let _ = plainbuffer::decode_pk(data);
    let _ = plainbuffer::decode_variant(data);
    let _ = plainbuffer::decode_pk_variant(data);
}

fn encode(rows: &[WireRow]) -> Vec<u8> {
    let mut out = Vec::new();
    if rows.is_empty() {
        return out;
    }
    plainbuffer::write_header(&mut out);
    for r in rows {
        plainbuffer::encode_wire_row(r, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    /// Replays the committed corpus of the `plainbuffer_decode` fuzz target (stable, fast).
    #[test]
    fn fuzz_corpus_plainbuffer_decode_replays_without_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/plainbuffer_decode");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
            let data = std::fs::read(entry.expect("corpus entry").path()).expect("corpus file");
            super::plainbuffer_decode(&data);
            n += 1;
        }
        assert!(n > 0, "no corpus files in {}", dir.display());
    }
}

/// Inputs for the starting corpus: rows, changes, keys and variants of every value type, as
/// the client encodes them (written by `write_plainbuffer_seeds` below).
pub fn seed_inputs() -> Vec<Vec<u8>> {
    use crate::row::{Cell, CellOp, PrimaryKey, Row, RowChange};
    use crate::value::{PkValue, Value};
    let pk = PrimaryKey::new()
        .with("id", 7i64)
        .with("s", PkValue::String("k".into()))
        .with("b", PkValue::Binary(vec![0, 255]));
    let row = Row {
        primary_key: pk.clone(),
        cells: vec![
            Cell::new("i", Value::Integer(-1)),
            Cell::new("d", Value::Double(0.25)),
            Cell::new("t", Value::Boolean(true)),
            Cell::new("s", Value::String("héllo".into())),
            Cell::new("b", Value::Binary(vec![1, 2, 3])),
            Cell {
                name: "v".into(),
                value: Value::Integer(5),
                timestamp: Some(1_700_000_000_000),
            },
        ],
    };
    let update = RowChange::Update {
        primary_key: pk.clone(),
        ops: vec![
            CellOp::Put(Cell::new("i", Value::Integer(2))),
            CellOp::DeleteOneVersion {
                name: "v".into(),
                timestamp: 1_700_000_000_000,
            },
            CellOp::DeleteAllVersions { name: "s".into() },
            CellOp::Increment {
                name: "n".into(),
                delta: -3,
            },
        ],
    };
    let range = PrimaryKey::new()
        .with("id", PkValue::InfMin)
        .with("s", PkValue::InfMax);
    vec![
        plainbuffer::rows_buffer(&[row.clone(), Row::new(pk.clone())]),
        plainbuffer::change_buffer(&RowChange::Put(row)),
        plainbuffer::change_buffer(&update),
        plainbuffer::change_buffer(&RowChange::Delete(pk.clone())),
        plainbuffer::pk_buffer(&pk),
        plainbuffer::pk_buffer(&range),
        plainbuffer::encode_variant(&Value::String("v".into())),
        plainbuffer::encode_variant(&Value::Double(-0.0)),
        plainbuffer::encode_pk_variant(&PkValue::InfMax),
        plainbuffer::encode_pk_variant(&PkValue::Integer(i64::MIN)),
    ]
}

#[cfg(test)]
mod seeds {
    /// Writes the seed corpus (`cargo test -p tsmigrate-tablestore --lib
    /// write_plainbuffer_seeds -- --ignored`); libFuzzer minimises it with the rest.
    #[test]
    #[ignore]
    fn write_plainbuffer_seeds() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/plainbuffer_decode");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in super::seed_inputs().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), input).unwrap();
        }
    }

    /// The seeds decode (the corpus starts from valid buffers).
    #[test]
    fn plainbuffer_seeds_decode() {
        let seeds = super::seed_inputs();
        for s in &seeds[..6] {
            assert!(super::plainbuffer::decode_rows(s).is_ok());
        }
        assert!(super::plainbuffer::decode_variant(&seeds[6]).is_ok());
        assert!(super::plainbuffer::decode_pk_variant(&seeds[8]).is_ok());
    }
}
