//! Row changes in their PlainBuffer wire form: what the batch writer queues and copies into
//! request bodies. Encoding once, when the row is made, means a row costs one buffer from
//! conversion to the request (no per-cell names and values to allocate, measure, encode and
//! drop on the hot path), and a retried request reuses the same bytes.

use super::plainbuffer::{self, ChangeBuilder, OperationKind, PlainBufferError};
use super::row::{PrimaryKey, RowChange};

/// One encoded PUT / UPDATE / DELETE (PlainBuffer row without the buffer header).
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedChange {
    op: OperationKind,
    bytes: Vec<u8>,
    /// Length of the key part at the start of `bytes`.
    key_len: usize,
}

impl EncodedChange {
    /// Encodes a change.
    pub fn new(change: &RowChange) -> Self {
        let mut bytes = Vec::with_capacity(plainbuffer::encoded_change_len(change));
        plainbuffer::encode_change(change, &mut bytes);
        let op = match change {
            RowChange::Put(_) => OperationKind::Put,
            RowChange::Update { .. } => OperationKind::Update,
            RowChange::Delete(_) => OperationKind::Delete,
        };
        EncodedChange {
            op,
            bytes,
            key_len: plainbuffer::encoded_key_len(change.primary_key()),
        }
    }

    /// A PutRow-style change (the row replaced by its cells) from a builder.
    pub fn put(builder: ChangeBuilder) -> Self {
        Self::built(OperationKind::Put, builder)
    }

    /// An UpdateRow-style change (puts and deletes of columns) from a builder.
    pub fn update(builder: ChangeBuilder) -> Self {
        Self::built(OperationKind::Update, builder)
    }

    fn built(op: OperationKind, builder: ChangeBuilder) -> Self {
        let (bytes, key_len) = builder.finish();
        EncodedChange { op, bytes, key_len }
    }

    pub fn op(&self) -> OperationKind {
        self.op
    }

    /// The encoded row (no buffer header).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The encoded key: equal for two changes exactly when their primary keys are equal.
    pub fn key_bytes(&self) -> &[u8] {
        &self.bytes[..self.key_len.min(self.bytes.len())]
    }

    /// The primary key, decoded (for reports; the hot path never needs it).
    pub fn primary_key(&self) -> Result<PrimaryKey, PlainBufferError> {
        let mut buf = Vec::with_capacity(4 + self.bytes.len());
        plainbuffer::write_header(&mut buf);
        buf.extend_from_slice(&self.bytes);
        plainbuffer::decode_single_row(&buf).map(|r| r.primary_key)
    }
}

impl From<RowChange> for EncodedChange {
    fn from(change: RowChange) -> Self {
        EncodedChange::new(&change)
    }
}

impl From<&RowChange> for EncodedChange {
    fn from(change: &RowChange) -> Self {
        EncodedChange::new(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{CellOp, Row};
    use crate::value::ValueRef;
    use crate::Cell;

    fn pk() -> PrimaryKey {
        PrimaryKey::new().with("id", 7i64).with("k", "a")
    }

    #[test]
    fn builder_matches_encode_change() {
        let mut b = ChangeBuilder::new(&pk(), 16);
        b.put("s", &ValueRef::String("é😀".into()));
        b.put("n", &ValueRef::Integer(-3));
        b.delete_all("gone");
        b.put("d", &ValueRef::Double(0.5));
        b.put("b", &ValueRef::Boolean(true));
        b.put("x", &ValueRef::Binary(vec![0u8, 255].into()));
        assert_eq!(b.puts(), 5);
        let built = EncodedChange::update(b);
        let change = RowChange::Update {
            primary_key: pk(),
            ops: vec![
                CellOp::Put(Cell::new("s", "é😀")),
                CellOp::Put(Cell::new("n", -3i64)),
                CellOp::DeleteAllVersions {
                    name: "gone".into(),
                },
                CellOp::Put(Cell::new("d", 0.5f64)),
                CellOp::Put(Cell::new("b", true)),
                CellOp::Put(Cell::new("x", vec![0u8, 255])),
            ],
        };
        assert_eq!(built, EncodedChange::new(&change));
        assert_eq!(built.primary_key().unwrap(), pk());
    }

    #[test]
    fn key_only_put_and_key_bytes() {
        let built = EncodedChange::put(ChangeBuilder::new(&pk(), 0));
        let change = RowChange::Put(Row::new(pk()));
        assert_eq!(built, EncodedChange::new(&change));
        let other = EncodedChange::new(&RowChange::Delete(
            PrimaryKey::new().with("id", 7i64).with("k", "b"),
        ));
        let same = EncodedChange::new(&RowChange::Delete(pk()));
        assert_eq!(built.key_bytes(), same.key_bytes());
        assert_ne!(built.key_bytes(), other.key_bytes());
        assert_eq!(same.op(), OperationKind::Delete);
    }
}
