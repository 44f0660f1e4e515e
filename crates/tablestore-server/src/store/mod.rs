//! Durable storage of the local server: one redb file (table metadata, and per Tablestore table
//! one redb table indexing its rows by primary key) plus a value log that makes writes durable
//! and holds the bytes of all but small rows (see [`Store`] for why).
//!
//! This file holds the [`Store`] (opening, log segment files, transactions) and its error. The
//! rest, one concern per file:
//! - `keys`: the order-preserving primary key encoding (redb's key order is PK order);
//! - `rows`: the stored row (every attribute column with all its versions) and its encoding;
//! - `meta`: the per-table metadata record;
//! - `codec`: the varint / length-prefixed byte helpers the encodings share;
//! - `vlog`: the value log (frames, segments, index entries) and its writer side, [`Journal`];
//! - `recovery`: replaying the log after the last checkpoint when the store opens;
//! - `txn`: write transactions and sessions (log, then index) and read snapshots.

mod codec;
mod keys;
mod meta;
mod recovery;
mod rows;
#[cfg(test)]
mod tests;
mod txn;
mod vlog;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};

use tablestore::error::ServiceError;

pub use keys::{decode_key, encode_key};
pub use meta::{decode_record, encode_record, TableRecord};
pub use rows::{decode_row, encode_row, encode_single_versions, StoredColumn, StoredRow};
pub use txn::{ReadTable, ReadTxn, WriteSession, WriteTxn};
pub use vlog::{Journal, Position};

use vlog::{decode_entry, segment_file_name, Entry, ValuePtr};

/// The database file inside the data directory.
pub const DB_FILE: &str = "tablestore.redb";

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// redb name of a Tablestore table's data (table names are `[A-Za-z0-9_]`, so no clash with
/// "meta").
fn data_table_name(table: &str) -> String {
    format!("t/{table}")
}

/// A storage failure (I/O, corruption). The engine answers it with OTSInternalServerError.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::internal(format!("storage error: {}", e.0))
    }
}

macro_rules! store_err_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(e.to_string())
            }
        }
    )*};
}
store_err_from!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::DatabaseError
);

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("{what} {}: {e}", path.display()))
}

type DataTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// Storage of one data directory: `tablestore.redb` (table metadata, and per table an index
/// from encoded PK to the row, inline when small or as a pointer into the value log) plus the
/// value log `vlog-*.log`.
///
/// Why a log: with rows of ~1 KB stored in redb's 4 KiB B-tree pages, every commit rewrites
/// about a page per row and tops out far below the throughput the server needs. Instead each
/// group commit appends one frame (all rows it wrote) to the log and fsyncs it: that append
/// is what makes a write durable. redb then commits without fsync, and every so often (or on a
/// table change, or on shutdown) durably, recording the log position it has absorbed (the
/// checkpoint). Opening replays the frames after the checkpoint. Sealed segments that are
/// mostly garbage are compacted by moving their live rows to the end of the log.
pub struct Store {
    db: Database,
    path: PathBuf,
    dir: PathBuf,
    segments: RwLock<BTreeMap<u32, Arc<File>>>,
}

impl Store {
    /// Opens (or creates) the store in `dir` with a bounded redb page cache, replaying the log
    /// written since the last checkpoint. Returns the store and the log's writer side.
    pub fn open(dir: &Path, cache_bytes: usize) -> Result<(Arc<Store>, Journal), ServiceError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            ServiceError::internal(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(DB_FILE);
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(&path)
            .map_err(|e| {
                ServiceError::internal(format!("cannot open database {}: {e}", path.display()))
            })?;
        let store = Arc::new(Store {
            db,
            path,
            dir: dir.to_owned(),
            segments: RwLock::new(BTreeMap::new()),
        });
        let journal = store.recover().map_err(|e| {
            ServiceError::internal(format!(
                "cannot recover the store in {}: {e}",
                dir.display()
            ))
        })?;
        Ok((store, journal))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn segment_path(&self, segment: u32) -> PathBuf {
        self.dir.join(segment_file_name(segment))
    }

    fn segment(&self, segment: u32) -> Result<Arc<File>, StoreError> {
        let map = self
            .segments
            .read()
            .map_err(|_| StoreError("segment map lock poisoned".to_owned()))?;
        map.get(&segment)
            .cloned()
            .ok_or_else(|| StoreError(format!("value log segment {segment} is missing")))
    }

    fn register(&self, segment: u32, file: Arc<File>) {
        let mut map = self.segments.write().unwrap_or_else(|p| p.into_inner());
        map.insert(segment, file);
    }

    fn unregister(&self, segment: u32) {
        let mut map = self.segments.write().unwrap_or_else(|p| p.into_inner());
        map.remove(&segment);
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("cannot sync directory", &self.dir, e))
    }

    fn create_segment(&self, segment: u32) -> Result<Arc<File>, StoreError> {
        let path = self.segment_path(segment);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err("cannot create log segment", &path, e))?;
        // The new file's directory entry must be durable before anything in it is acknowledged.
        self.sync_dir()?;
        let file = Arc::new(file);
        self.register(segment, file.clone());
        Ok(file)
    }

    fn read_value(&self, p: ValuePtr) -> Result<Vec<u8>, StoreError> {
        let file = self.segment(p.segment)?;
        let mut buf = vec![0u8; p.len as usize];
        file.read_exact_at(&mut buf, p.offset).map_err(|e| {
            StoreError(format!(
                "cannot read value log segment {} at {}: {e}",
                p.segment, p.offset
            ))
        })?;
        Ok(buf)
    }

    /// The row bytes behind a redb entry.
    fn entry_row<'a>(&self, entry: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, StoreError> {
        match decode_entry(entry)? {
            Entry::Inline(row) => Ok(std::borrow::Cow::Borrowed(row)),
            Entry::Pointer(p) => Ok(std::borrow::Cow::Owned(self.read_value(p)?)),
        }
    }

    /// Every table's metadata.
    pub fn load_tables(&self) -> Result<Vec<TableRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let mut out = Vec::new();
        for item in meta.iter()? {
            let (_, v) = item?;
            out.push(decode_record(v.value())?);
        }
        Ok(out)
    }

    /// A write transaction; [`WriteTxn::finish`] makes it durable (or not) and commits.
    pub fn begin_write(&self) -> Result<WriteTxn, StoreError> {
        Ok(WriteTxn {
            txn: self.db.begin_write()?,
        })
    }

    /// A consistent snapshot for reads (does not block writers).
    pub fn begin_read(&self) -> Result<ReadTxn<'_>, StoreError> {
        Ok(ReadTxn {
            txn: self.db.begin_read()?,
            store: self,
        })
    }
}
