//! Borrowed twins of the write types in [`crate::row`]: a change decoded from a request row
//! whose column names and values still point into the request's bytes. A server validates and
//! stores most rows straight from these (no allocation per cell); `into_owned` gives the
//! [`crate::row`] types when a write needs them. The key stays owned: it is small, and request
//! checks use it as a map key.

use super::row::{Cell, CellOp, PrimaryKey, Row, RowChange};
use super::value::ValueRef;

/// [`Cell`], borrowed.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRef<'a> {
    pub name: &'a str,
    pub value: ValueRef<'a>,
    pub timestamp: Option<i64>,
}

/// [`CellOp`], borrowed.
#[derive(Debug, Clone, PartialEq)]
pub enum CellOpRef<'a> {
    Put(CellRef<'a>),
    DeleteOneVersion { name: &'a str, timestamp: i64 },
    DeleteAllVersions { name: &'a str },
    Increment { name: &'a str, delta: i64 },
}

/// [`RowChange`], borrowed.
#[derive(Debug, Clone, PartialEq)]
pub enum RowChangeRef<'a> {
    Put {
        primary_key: PrimaryKey,
        cells: Vec<CellRef<'a>>,
    },
    Update {
        primary_key: PrimaryKey,
        ops: Vec<CellOpRef<'a>>,
    },
    Delete(PrimaryKey),
}

impl CellRef<'_> {
    pub fn into_owned(self) -> Cell {
        Cell {
            name: self.name.to_owned(),
            value: self.value.into_owned(),
            timestamp: self.timestamp,
        }
    }
}

impl CellOpRef<'_> {
    pub fn column(&self) -> &str {
        match self {
            CellOpRef::Put(c) => c.name,
            CellOpRef::DeleteOneVersion { name, .. }
            | CellOpRef::DeleteAllVersions { name }
            | CellOpRef::Increment { name, .. } => name,
        }
    }

    pub fn into_owned(self) -> CellOp {
        match self {
            CellOpRef::Put(c) => CellOp::Put(c.into_owned()),
            CellOpRef::DeleteOneVersion { name, timestamp } => CellOp::DeleteOneVersion {
                name: name.to_owned(),
                timestamp,
            },
            CellOpRef::DeleteAllVersions { name } => CellOp::DeleteAllVersions {
                name: name.to_owned(),
            },
            CellOpRef::Increment { name, delta } => CellOp::Increment {
                name: name.to_owned(),
                delta,
            },
        }
    }
}

impl RowChangeRef<'_> {
    pub fn primary_key(&self) -> &PrimaryKey {
        match self {
            RowChangeRef::Put { primary_key, .. } | RowChangeRef::Update { primary_key, .. } => {
                primary_key
            }
            RowChangeRef::Delete(pk) => pk,
        }
    }

    /// Bytes the service counts for this change: the key, and each named column's name plus
    /// the value it writes (a delete or increment counts its name).
    pub fn data_size(&self) -> usize {
        let cells: usize = match self {
            RowChangeRef::Put { cells, .. } => cells
                .iter()
                .map(|c| c.name.len() + c.value.data_size())
                .sum(),
            RowChangeRef::Update { ops, .. } => ops
                .iter()
                .map(|o| match o {
                    CellOpRef::Put(c) => c.name.len() + c.value.data_size(),
                    other => other.column().len(),
                })
                .sum(),
            RowChangeRef::Delete(_) => 0,
        };
        self.primary_key().data_size() + cells
    }

    pub fn into_owned(self) -> RowChange {
        match self {
            RowChangeRef::Put { primary_key, cells } => RowChange::Put(Row {
                primary_key,
                cells: cells.into_iter().map(CellRef::into_owned).collect(),
            }),
            RowChangeRef::Update { primary_key, ops } => RowChange::Update {
                primary_key,
                ops: ops.into_iter().map(CellOpRef::into_owned).collect(),
            },
            RowChangeRef::Delete(pk) => RowChange::Delete(pk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{PkValue, Value};
    use std::borrow::Cow;

    #[test]
    fn sizes_count_the_key_names_and_written_values() {
        let pk = PrimaryKey::new().with("id", PkValue::Integer(1));
        let put = RowChangeRef::Put {
            primary_key: pk.clone(),
            cells: vec![CellRef {
                name: "note",
                value: ValueRef::String(Cow::Borrowed("hello")),
                timestamp: None,
            }],
        };
        assert_eq!(put.data_size(), 2 + 8 + 4 + 5);
        let update = RowChangeRef::Update {
            primary_key: pk.clone(),
            ops: vec![
                CellOpRef::DeleteAllVersions { name: "gone" },
                CellOpRef::Increment {
                    name: "n",
                    delta: 3,
                },
            ],
        };
        assert_eq!(update.data_size(), 2 + 8 + 4 + 1);
        assert_eq!(RowChangeRef::Delete(pk).data_size(), 10);
    }

    #[test]
    fn into_owned_keeps_every_field() {
        let pk = PrimaryKey::new().with("id", PkValue::Integer(1));
        let change = RowChangeRef::Update {
            primary_key: pk.clone(),
            ops: vec![
                CellOpRef::Put(CellRef {
                    name: "a",
                    value: ValueRef::Binary(Cow::Borrowed(b"xy")),
                    timestamp: Some(7),
                }),
                CellOpRef::DeleteOneVersion {
                    name: "b",
                    timestamp: 9,
                },
            ],
        };
        assert_eq!(
            change.into_owned(),
            RowChange::Update {
                primary_key: pk,
                ops: vec![
                    CellOp::Put(Cell::new("a", Value::Binary(b"xy".to_vec())).at(7)),
                    CellOp::DeleteOneVersion {
                        name: "b".to_owned(),
                        timestamp: 9
                    },
                ],
            }
        );
    }
}
