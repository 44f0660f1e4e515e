//! Transactions over the store: a write transaction and its session (every change is logged
//! first, then indexed in redb; `finish` writes the frame and commits, durably or not) and a
//! read snapshot. The write side is the engine's writer thread's only way to change storage.

use std::collections::HashMap;
use std::fs::File;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use redb::{
    Durability, ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, TableError,
    WriteTransaction,
};

use super::vlog::{
    decode_entry, encode_inline, encode_live, encode_pointer, encode_position, parse_records,
    pointer_of, read_frame, release, Entry, Record, ValuePtr, FRAME_HEADER, INLINE_MAX, STATE,
    STATE_LIVE, STATE_POSITION,
};
use super::{
    data_table_name, decode_row, encode_record, io_err, DataTable, Journal, Store, StoreError,
    StoredRow, TableRecord, META,
};

pub struct WriteTxn {
    pub(super) txn: WriteTransaction,
}

impl WriteTxn {
    /// Table access within this transaction; drop it before `finish`.
    pub fn session<'t>(&'t self, store: &'t Store, journal: &'t mut Journal) -> WriteSession<'t> {
        WriteSession {
            txn: &self.txn,
            store,
            journal,
            open: HashMap::new(),
            meta: None,
        }
    }

    /// Writes the transaction's log frame and commits. With `checkpoint`, the log is fsynced
    /// and redb commits durably, recording the log position it now contains; otherwise redb
    /// commits without fsync and the caller must fsync the returned file before acknowledging.
    pub fn finish(
        self,
        store: &Store,
        journal: &mut Journal,
        checkpoint: bool,
    ) -> Result<Option<Arc<File>>, StoreError> {
        let written = journal.write_frame()?;
        let mut txn = self.txn;
        if checkpoint {
            journal
                .file
                .sync_data()
                .map_err(|e| StoreError(format!("cannot sync the value log: {e}")))?;
            for id in &journal.emptied {
                journal.live.remove(id);
            }
        }
        // Every commit records the log position it contains and the live bytes: redb also
        // makes pending non-durable commits durable when it closes, and whichever commit ends
        // up durable must say where replay starts.
        let mut state = txn.open_table(STATE)?;
        state.insert(
            STATE_POSITION,
            encode_position(journal.position()).as_slice(),
        )?;
        state.insert(STATE_LIVE, encode_live(&journal.live).as_slice())?;
        drop(state);
        txn.set_durability(if checkpoint {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| StoreError(e.to_string()))?;
        txn.commit()?;
        if checkpoint {
            journal.since_checkpoint = 0;
            journal.last_checkpoint = Instant::now();
            let now = Instant::now();
            let emptied = std::mem::take(&mut journal.emptied);
            journal
                .doomed
                .extend(emptied.into_iter().map(|id| (id, now)));
        }
        journal.rotate_if_full(store)?;
        Ok(written)
    }
}

/// A redb entry being written (see [`WriteSession::logged_entry`]).
enum EntryBuf {
    Inline(Vec<u8>),
    Pointer([u8; 17]),
}

impl EntryBuf {
    fn as_slice(&self) -> &[u8] {
        match self {
            EntryBuf::Inline(b) => b,
            EntryBuf::Pointer(p) => p,
        }
    }
}

/// Keeps the tables touched by a transaction open (opening costs a lookup per call).
pub struct WriteSession<'t> {
    txn: &'t WriteTransaction,
    store: &'t Store,
    journal: &'t mut Journal,
    open: HashMap<String, DataTable<'t>>,
    meta: Option<Table<'t, &'static str, &'static [u8]>>,
}

impl<'t> WriteSession<'t> {
    fn table(&mut self, table: &str) -> Result<&mut DataTable<'t>, StoreError> {
        if !self.open.contains_key(table) {
            let name = data_table_name(table);
            let t = self
                .txn
                .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))?;
            self.open.insert(table.to_owned(), t);
        }
        self.open
            .get_mut(table)
            .ok_or_else(|| StoreError("table handle vanished".to_owned()))
    }

    fn meta(&mut self) -> Result<&mut Table<'t, &'static str, &'static [u8]>, StoreError> {
        if self.meta.is_none() {
            self.meta = Some(self.txn.open_table(META)?);
        }
        self.meta
            .as_mut()
            .ok_or_else(|| StoreError("metadata handle vanished".to_owned()))
    }

    pub fn get_row(&mut self, table: &str, key: &[u8]) -> Result<Option<StoredRow>, StoreError> {
        let entry = match self.table(table)?.get(key)? {
            Some(v) => v.value().to_vec(),
            None => return Ok(None),
        };
        let row = match decode_entry(&entry)? {
            Entry::Inline(row) => decode_row(row)?,
            Entry::Pointer(p) => decode_row(&self.journal.read_value(self.store, p)?)?,
        };
        Ok(Some(row))
    }

    /// Logs an encoded row and returns the redb entry for it: the row itself when small, else
    /// a pointer into the log (held until the entry is replaced).
    fn logged_entry(&mut self, table: &str, key: &[u8], row: &[u8]) -> EntryBuf {
        let p = self.journal.append_put(table, key, row);
        if row.len() <= INLINE_MAX {
            EntryBuf::Inline(encode_inline(row))
        } else {
            self.journal.hold(p);
            EntryBuf::Pointer(encode_pointer(p))
        }
    }

    /// Stores an encoded row (logged; inline in redb when small).
    pub fn insert(&mut self, table: &str, key: &[u8], row: &[u8]) -> Result<(), StoreError> {
        let entry = self.logged_entry(table, key, row);
        let old = self
            .table(table)?
            .insert(key, entry.as_slice())?
            .and_then(|v| pointer_of(v.value()));
        if let Some(old) = old {
            self.journal.release(old);
        }
        Ok(())
    }

    /// `insert`, returning the row it replaced (decoded, and its encoded bytes to put it
    /// back), if any: one tree walk where `get_row` then `insert` take two.
    pub fn replace(
        &mut self,
        table: &str,
        key: &[u8],
        row: &[u8],
    ) -> Result<Option<(StoredRow, Vec<u8>)>, StoreError> {
        let entry = self.logged_entry(table, key, row);
        let old = match self.table(table)?.insert(key, entry.as_slice())? {
            Some(v) => v.value().to_vec(),
            None => return Ok(None),
        };
        let bytes = match decode_entry(&old)? {
            Entry::Inline(row) => row.to_vec(),
            Entry::Pointer(p) => {
                // Read before releasing: the release may let compaction drop the bytes.
                let bytes = self.journal.read_value(self.store, p)?;
                self.journal.release(p);
                bytes
            }
        };
        Ok(Some((decode_row(&bytes)?, bytes)))
    }

    pub fn remove(&mut self, table: &str, key: &[u8]) -> Result<(), StoreError> {
        let old = self
            .table(table)?
            .remove(key)?
            .map(|v| pointer_of(v.value()));
        if let Some(old) = old {
            self.journal.append_delete(table, key);
            if let Some(p) = old {
                self.journal.release(p);
            }
        }
        Ok(())
    }

    /// Records a table's auto-increment counter (metadata and log, so replay restores it).
    pub fn put_counter(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        self.journal
            .append_counter(&rec.def.name, rec.auto_increment);
        self.put_record(rec)
    }

    pub fn put_record(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        let v = encode_record(rec);
        self.meta()?.insert(rec.def.name.as_str(), v.as_slice())?;
        Ok(())
    }

    /// Creates the table's (empty) data table and records its metadata.
    pub fn create_table(&mut self, rec: &TableRecord) -> Result<(), StoreError> {
        // A leftover data table (should not happen) must not leak rows into the new table.
        self.drop_data(&rec.def.name)?;
        self.table(&rec.def.name)?;
        self.put_record(rec)
    }

    /// Drops the table's data and metadata.
    pub fn delete_table(&mut self, table: &str) -> Result<(), StoreError> {
        self.drop_data(table)?;
        self.meta()?.remove(table)?;
        Ok(())
    }

    fn drop_data(&mut self, table: &str) -> Result<(), StoreError> {
        self.open.remove(table);
        let name = data_table_name(table);
        let def = TableDefinition::<&[u8], &[u8]>::new(&name);
        match self.txn.open_table(def) {
            Ok(t) => {
                for item in t.iter()? {
                    let (_, v) = item?;
                    release(&mut self.journal.live, v.value());
                }
            }
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.txn.delete_table(def)?;
        Ok(())
    }

    /// Moves the live values of sealed segment `segment` to the end of the log, so the segment
    /// can be freed after the next checkpoint. `exists` says whether a table still exists.
    pub fn compact_segment(
        &mut self,
        segment: u32,
        exists: impl Fn(&str) -> bool,
    ) -> Result<usize, StoreError> {
        let file = self.store.segment(segment)?;
        let path = self.store.segment_path(segment);
        let len = file
            .metadata()
            .map_err(|e| io_err("cannot stat", &path, e))?
            .len();
        let mut pos = 0u64;
        let mut moved = 0;
        while pos < len {
            let Some(payload) =
                read_frame(&file, pos, len).map_err(|e| io_err("cannot read", &path, e))?
            else {
                return Err(StoreError(format!(
                    "corrupt frame in sealed log segment {segment} at {pos}"
                )));
            };
            let base = pos + FRAME_HEADER as u64;
            for rec in parse_records(&payload)? {
                let Record::Put {
                    table,
                    key,
                    value,
                    value_offset,
                } = rec
                else {
                    continue;
                };
                if value.len() <= INLINE_MAX || !exists(table) {
                    continue;
                }
                let here = ValuePtr {
                    segment,
                    offset: base + value_offset as u64,
                    len: value.len() as u32,
                };
                let current = self.table(table)?.get(key)?.map(|v| v.value().to_vec());
                if current.as_deref().and_then(pointer_of) == Some(here) {
                    self.insert(table, key, value)?;
                    moved += 1;
                }
            }
            pos = base + payload.len() as u64;
        }
        self.journal.emptied.push(segment);
        Ok(moved)
    }
}

pub struct ReadTxn<'s> {
    pub(super) txn: ReadTransaction,
    pub(super) store: &'s Store,
}

impl<'s> ReadTxn<'s> {
    /// The table's data, or None when it does not exist in this snapshot.
    pub fn table(&self, table: &str) -> Result<Option<ReadTable<'s>>, StoreError> {
        let name = data_table_name(table);
        match self
            .txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new(&name))
        {
            Ok(t) => Ok(Some(ReadTable {
                t,
                store: self.store,
            })),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

pub struct ReadTable<'s> {
    t: ReadOnlyTable<&'static [u8], &'static [u8]>,
    store: &'s Store,
}

impl ReadTable<'_> {
    pub fn get_row(&self, key: &[u8]) -> Result<Option<StoredRow>, StoreError> {
        match self.t.get(key)? {
            Some(v) => Ok(Some(decode_row(&self.store.entry_row(v.value())?)?)),
            None => Ok(None),
        }
    }

    /// Visits `(key, encoded row)` pairs within the bounds in key order (descending when
    /// `reverse`) until `f` returns false.
    pub fn scan<E: From<StoreError>>(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, E>,
    ) -> Result<(), E> {
        let range = self.t.range::<&[u8]>((lo, hi)).map_err(StoreError::from)?;
        let mut visit = |item: Result<_, redb::StorageError>| -> Result<bool, E> {
            let (k, v): (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>) =
                item.map_err(StoreError::from)?;
            let row = self.store.entry_row(v.value())?;
            f(k.value(), &row)
        };
        if reverse {
            for item in range.rev() {
                if !visit(item)? {
                    break;
                }
            }
        } else {
            for item in range {
                if !visit(item)? {
                    break;
                }
            }
        }
        Ok(())
    }
}
