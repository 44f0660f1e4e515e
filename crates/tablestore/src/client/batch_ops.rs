//! Hand-rolled protobuf encoding of the two bulk write requests, byte-identical to prost's
//! (the tests compare). Each PlainBuffer row is written straight into the request body, where
//! prost would need one Vec per row and then copy it into the body.

use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use super::{convert, op_type, pb, plainbuffer, BatchRow, EncodedChange};

/// A message field's bytes: key + length varint + payload.
fn field_len(payload: usize) -> usize {
    1 + encoded_len_varint(payload as u64) + payload
}

fn put_len_field(out: &mut Vec<u8>, key: u8, len: usize) {
    out.push(key);
    encode_varint(len as u64, out);
}

/// The row_change field: header + the encoded row.
fn put_change(out: &mut Vec<u8>, change: &EncodedChange) {
    put_len_field(out, 0x12, 4 + change.len());
    plainbuffer::write_header(out);
    out.extend_from_slice(change.bytes());
}

/// `RowInBatchWriteRowRequest` fields: type, row_change, condition (no return_content).
struct RowSize {
    /// Only rows with a column condition need prost for their condition.
    condition: Option<pb::Condition>,
    condition_len: usize,
    body: usize,
}

pub(super) fn batch_write_row(rows: &[BatchRow], tables: &[(&str, Vec<usize>)]) -> Vec<u8> {
    let sizes: Vec<RowSize> = rows
        .iter()
        .map(|r| {
            let change = 4 + r.change.len();
            let condition = r
                .condition
                .column_condition
                .is_some()
                .then(|| convert::condition_to_pb(&r.condition));
            // Without a column condition: row_existence alone (key + 1-byte enum).
            let condition_len = condition.as_ref().map_or(2, Message::encoded_len);
            let body = 2 + field_len(change) + field_len(condition_len);
            RowSize {
                condition,
                condition_len,
                body,
            }
        })
        .collect();
    let table_len = |name: &str, idx: &[usize]| {
        field_len(name.len()) + idx.iter().map(|&i| field_len(sizes[i].body)).sum::<usize>()
    };
    let total: usize = tables
        .iter()
        .map(|(t, idx)| field_len(table_len(t, idx)))
        .sum();
    let mut out = Vec::with_capacity(total);
    for (t, idx) in tables {
        put_len_field(&mut out, 0x0a, table_len(t, idx));
        put_len_field(&mut out, 0x0a, t.len());
        out.extend_from_slice(t.as_bytes());
        for &i in idx {
            let (r, s) = (&rows[i], &sizes[i]);
            put_len_field(&mut out, 0x12, s.body);
            out.push(0x08);
            encode_varint(op_type(r.change.op()) as i32 as u64, &mut out);
            put_change(&mut out, &r.change);
            put_len_field(&mut out, 0x1a, s.condition_len);
            match &s.condition {
                Some(c) => c.encode_raw(&mut out),
                None => {
                    out.push(0x08);
                    encode_varint(
                        convert::condition_to_pb(&r.condition).row_existence as u64,
                        &mut out,
                    );
                }
            }
        }
    }
    debug_assert_eq!(out.len(), total, "BatchWriteRow size disagrees");
    out
}

pub(super) fn bulk_import(table: &str, changes: &[&EncodedChange]) -> Vec<u8> {
    let total = field_len(table.len())
        + changes
            .iter()
            .map(|c| field_len(2 + field_len(4 + c.len())))
            .sum::<usize>();
    let mut out = Vec::with_capacity(total);
    put_len_field(&mut out, 0x0a, table.len());
    out.extend_from_slice(table.as_bytes());
    for c in changes {
        put_len_field(&mut out, 0x12, 2 + field_len(4 + c.len()));
        out.push(0x08);
        encode_varint(op_type(c.op()) as i32 as u64, &mut out);
        put_change(&mut out, c);
    }
    debug_assert_eq!(out.len(), total, "BulkImport size disagrees");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plainbuffer::OperationKind;
    use crate::row::{
        CellOp, ColumnCondition, Comparator, Condition, PrimaryKey, Row, RowChange, RowExistence,
    };

    /// (table, change, condition): prost encodes these, our encoder the BatchRows of them.
    fn changes() -> Vec<(&'static str, RowChange, Condition)> {
        let long = "x".repeat(300);
        let cond =
            Condition::expect(RowExistence::ExpectExist).with_column(ColumnCondition::Single {
                column: "a".into(),
                comparator: Comparator::Equal,
                value: 1i64.into(),
                pass_if_missing: false,
                latest_version_only: true,
            });
        vec![
            (
                "t1",
                RowChange::Put(
                    Row::new(PrimaryKey::new().with("id", 1i64))
                        .with("a", long.as_str())
                        .with("b", 2.5f64),
                ),
                Condition::ignore(),
            ),
            (
                "t2",
                RowChange::Delete(PrimaryKey::new().with("id", "k")),
                cond,
            ),
            (
                "t1",
                RowChange::Update {
                    primary_key: PrimaryKey::new().with("id", 2i64),
                    ops: vec![CellOp::Increment {
                        name: "n".into(),
                        delta: -3,
                    }],
                },
                Condition {
                    row_existence: RowExistence::ExpectNotExist,
                    column_condition: None,
                },
            ),
        ]
    }

    fn rows() -> Vec<BatchRow> {
        changes()
            .into_iter()
            .map(|(table, change, condition)| BatchRow {
                table: table.into(),
                change: change.into(),
                condition,
            })
            .collect()
    }

    fn kind(c: &RowChange) -> OperationKind {
        match c {
            RowChange::Put(_) => OperationKind::Put,
            RowChange::Update { .. } => OperationKind::Update,
            RowChange::Delete(_) => OperationKind::Delete,
        }
    }

    fn prost_row(
        (_, change, condition): &(&str, RowChange, Condition),
    ) -> pb::RowInBatchWriteRowRequest {
        pb::RowInBatchWriteRowRequest {
            r#type: op_type(kind(change)) as i32,
            row_change: plainbuffer::change_buffer(change).into(),
            condition: convert::condition_to_pb(condition),
            return_content: None,
        }
    }

    #[test]
    fn batch_write_row_matches_prost() {
        let (rows, changes) = (rows(), changes());
        let tables = vec![("t1", vec![0, 2]), ("t2", vec![1])];
        let expected = pb::BatchWriteRowRequest {
            tables: tables
                .iter()
                .map(|(t, idx)| pb::TableInBatchWriteRowRequest {
                    table_name: (*t).to_owned(),
                    rows: idx.iter().map(|&i| prost_row(&changes[i])).collect(),
                })
                .collect(),
            transaction_id: None,
            is_atomic: None,
        }
        .encode_to_vec();
        assert_eq!(batch_write_row(&rows, &tables), expected);
    }

    #[test]
    fn bulk_import_matches_prost() {
        let rows = rows();
        let encoded: Vec<&EncodedChange> = rows.iter().map(|r| &r.change).collect();
        let expected = pb::BulkImportRequest {
            table_name: "t1".into(),
            rows: changes()
                .iter()
                .map(|(_, c, _)| pb::RowInBulkImportRequest {
                    r#type: op_type(kind(c)) as i32,
                    row_change: plainbuffer::change_buffer(c).into(),
                })
                .collect(),
        }
        .encode_to_vec();
        assert_eq!(bulk_import("t1", &encoded), expected);
    }
}
