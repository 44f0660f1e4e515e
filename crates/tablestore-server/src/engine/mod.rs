//! Semantics of the local Tablestore server, below the HTTP/protobuf layer: table management,
//! row writes with conditions, versions, TTL and auto-increment, point and range reads.
//!
//! Writes go through one dedicated writer thread that owns the write transactions (group
//! commit): concurrent `write` calls validate and encode their rows on the caller's thread,
//! queue them, and the writer drains everything queued, applies it in arrival order in one
//! transaction, appends one log frame, commits, and hands the answers to a syncer thread that
//! fsyncs the log once for all of them before replying (see `store` for the log). Table
//! management goes through the same queue, so the writer alone changes metadata and sees it
//! in order. Reads use redb snapshots and never wait for the writer.
//!
//! This file holds the public API ([`Engine`] and its request/answer types). The layers below
//! it, in the order a write passes them:
//! - `validate`: request and service-limit checks (caller's thread);
//! - `prepare`: a write checked against its table's definition and encoded (caller's thread;
//!   multi-row writes straight from rows borrowed from the request, [`Engine::write_borrowed`]);
//! - `writer`: the writer and syncer threads (batching, commit, group fsync, checkpoints);
//! - `apply`: what one command does to the tables inside the writer's transaction;
//! - `rows`: what writes and conditions do to a stored row's versions;
//! - `read`: GetRow / GetRange on a snapshot.

mod apply;
#[cfg(test)]
mod borrowed_tests;
mod prepare;
mod read;
mod rows;
#[cfg(test)]
mod tests;
mod validate;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use tablestore::error::ServiceError;
use tablestore::row::{Condition, Row, RowChange};
use tablestore::row_ref::RowChangeRef;
use tablestore::schema::{TableDef, TableDescription, TableOptions};

use super::store::Store;
use apply::Tables;
use prepare::{prepare, prepare_ref, PreparedOp};
use validate::{merge_options, validate_options, validate_table_def};
use writer::{run_syncer, AdminOp, AdminReply, Command, Writer};

pub use tablestore::read::{Direction, RangePage, RangeRequest, ReadOptions, TimeRange};

pub use tablestore::limits::MAX_ATTR_VALUE_BYTES;
pub use tablestore::limits::MAX_COLUMNS_PER_WRITE;
pub use tablestore::limits::MAX_COLUMNS_TO_GET;
pub use tablestore::limits::MAX_DEFINED_COLUMNS;
/// Service limits (reference §5).
pub use tablestore::limits::MAX_PK_COLUMNS;
pub use tablestore::limits::MAX_PK_VALUE_BYTES;
pub const MIN_TIME_TO_LIVE: i32 = 86400;
pub use tablestore::limits::RANGE_MAX_BYTES;
/// GetRange page bounds: rows scanned and bytes scanned.
pub use tablestore::limits::RANGE_MAX_ROWS;

pub struct EngineOptions {
    /// Tables allowed (service default 64).
    pub max_tables: usize,
    /// redb page cache, bytes.
    pub cache_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_tables: 64,
            cache_bytes: 64 * 1024 * 1024,
        }
    }
}

/// UpdateTable's option changes; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableOptionsUpdate {
    pub time_to_live: Option<i32>,
    pub max_versions: Option<i32>,
    pub deviation_cell_version_in_sec: Option<i64>,
    pub allow_update: Option<bool>,
}

/// One row write as PutRow / UpdateRow / DeleteRow / BatchWriteRow carry it: an owned change,
/// or (`WriteOp<RowChangeRef>`) one still borrowing from the request's row bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOp<C = RowChange> {
    pub table: String,
    pub change: C,
    pub condition: Condition,
    /// Return the (resolved) primary key.
    pub return_pk: bool,
    /// Return these columns' newest values after the write.
    pub return_columns: Vec<String>,
}

impl WriteOp<RowChangeRef<'_>> {
    pub fn into_owned(self) -> WriteOp {
        WriteOp {
            table: self.table,
            change: self.change.into_owned(),
            condition: self.condition,
            return_pk: self.return_pk,
            return_columns: self.return_columns,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteOutcome {
    /// The PK plus the requested columns' new values, when `return_pk` / `return_columns` asked.
    pub returned: Option<Row>,
}

/// The storage engine; cheap to clone (one shared instance).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

type Catalog = HashMap<String, Arc<TableMeta>>;

/// What readers and write validation need of a table; replaced (new epoch) on every change.
struct TableMeta {
    def: TableDef,
    creation_time: i64,
    /// Identifies this version of the definition: a write prepared against another epoch is
    /// prepared again by the writer.
    epoch: u64,
}

struct Inner {
    store: Arc<Store>,
    catalog: Arc<RwLock<Catalog>>,
    tx: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue stops the writer; joining it releases the database file so the
        // directory can be opened again right away.
        self.tx.take();
        if let Some(h) = self.writer.take() {
            if h.join().is_err() {
                tracing::error!("tablestore storage writer thread panicked");
            }
        }
    }
}

fn writer_gone() -> ServiceError {
    ServiceError::internal("The storage writer is not running.")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Opens (or creates) the store in `data_dir` and starts the writer thread.
    pub fn open(data_dir: &Path, opts: EngineOptions) -> Result<Engine, ServiceError> {
        let (store, journal) = Store::open(data_dir, opts.cache_bytes)?;
        let records = store.load_tables().map_err(|e| {
            ServiceError::internal(format!(
                "cannot load table metadata from {}: {e}",
                store.path().display()
            ))
        })?;
        let catalog = Arc::new(RwLock::new(Catalog::new()));
        let mut state = Tables {
            tables: HashMap::new(),
            catalog: catalog.clone(),
            max_tables: opts.max_tables,
            next_epoch: 1,
        };
        state.install(records);
        let spawn_err = |e: std::io::Error| {
            ServiceError::internal(format!("cannot start the storage writer: {e}"))
        };
        let failed = Arc::new(AtomicBool::new(false));
        let (sync_tx, sync_rx) = mpsc::channel();
        let syncer = {
            let failed = failed.clone();
            std::thread::Builder::new()
                .name("tablestore-sync".into())
                .spawn(move || run_syncer(sync_rx, failed))
                .map_err(spawn_err)?
        };
        let writer = Writer {
            store: store.clone(),
            journal,
            state,
            sync_tx: Some(sync_tx),
            syncer: Some(syncer),
            failed,
        };
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("tablestore-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(spawn_err)?;
        tracing::info!(path = %store.path().display(), "tablestore storage opened");
        Ok(Engine {
            inner: Arc::new(Inner {
                store,
                catalog,
                tx: Some(tx),
                writer: Some(handle),
            }),
        })
    }

    fn meta(&self, name: &str) -> Result<Arc<TableMeta>, ServiceError> {
        let catalog = self
            .inner
            .catalog
            .read()
            .map_err(|_| ServiceError::internal("table catalog lock poisoned"))?;
        catalog
            .get(name)
            .cloned()
            .ok_or_else(ServiceError::table_not_exist)
    }

    fn send(&self, cmd: Command) -> Result<(), ServiceError> {
        self.inner
            .tx
            .as_ref()
            .ok_or_else(writer_gone)?
            .send(cmd)
            .map_err(|_| writer_gone())
    }

    /// Runs a table-management command on the writer and waits (briefly, one commit) for it.
    fn admin(&self, op: AdminOp) -> Result<AdminReply, ServiceError> {
        let (reply, rx) = mpsc::channel();
        self.send(Command::Admin { op, reply })?;
        rx.recv().map_err(|_| writer_gone())?
    }

    pub fn create_table(&self, def: TableDef) -> Result<(), ServiceError> {
        validate_table_def(&def)?;
        self.admin(AdminOp::Create(def)).map(|_| ())
    }

    pub fn delete_table(&self, name: &str) -> Result<(), ServiceError> {
        self.admin(AdminOp::Delete(name.to_owned())).map(|_| ())
    }

    /// Table names, sorted.
    pub fn list_tables(&self) -> Result<Vec<String>, ServiceError> {
        let catalog = self
            .inner
            .catalog
            .read()
            .map_err(|_| ServiceError::internal("table catalog lock poisoned"))?;
        let mut names: Vec<String> = catalog.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    pub fn describe_table(&self, name: &str) -> Result<TableDescription, ServiceError> {
        let meta = self.meta(name)?;
        Ok(TableDescription {
            def: meta.def.clone(),
            creation_time: meta.creation_time,
        })
    }

    /// Changes options; returns the table's full options afterwards.
    pub fn update_table(
        &self,
        name: &str,
        options: TableOptionsUpdate,
    ) -> Result<TableOptions, ServiceError> {
        let current = self.meta(name)?.def.options;
        validate_options(&merge_options(current, &options))?;
        match self.admin(AdminOp::Update(name.to_owned(), options))? {
            AdminReply::Options(o) => Ok(o),
            AdminReply::Done => Err(ServiceError::internal("unexpected writer reply")),
        }
    }

    /// The table's definition (from the in-memory catalog).
    pub fn table_def(&self, name: &str) -> Result<TableDef, ServiceError> {
        Ok(self.meta(name)?.def.clone())
    }

    /// Applies the ops in order (a later op sees an earlier op's effect); one result per op. A
    /// failed op does not stop the others. Returns once the successful ones are durable.
    pub async fn write(&self, ops: Vec<WriteOp>) -> Vec<Result<WriteOutcome, ServiceError>> {
        let prepared = self.prepare_all(ops, prepare);
        self.submit(prepared).await
    }

    /// [`Engine::write`] of changes borrowing from the request's row bytes (multi-row writes):
    /// the usual rows are checked and encoded without copying their cells.
    pub async fn write_borrowed(
        &self,
        ops: Vec<WriteOp<RowChangeRef<'_>>>,
    ) -> Vec<Result<WriteOutcome, ServiceError>> {
        let prepared = self.prepare_all(ops, prepare_ref);
        self.submit(prepared).await
    }

    fn prepare_all<C>(
        &self,
        ops: Vec<WriteOp<C>>,
        prepare: impl Fn(&TableMeta, WriteOp<C>, i64) -> Result<PreparedOp, ServiceError>,
    ) -> Vec<Result<PreparedOp, ServiceError>> {
        let now = now_ms();
        // Batches usually name one table: look it up once, not per row.
        let mut last: Option<Arc<TableMeta>> = None;
        ops.into_iter()
            .map(|op| {
                let meta = match &last {
                    Some(m) if m.def.name == op.table => m.clone(),
                    _ => {
                        let m = self.meta(&op.table)?;
                        last = Some(m.clone());
                        m
                    }
                };
                prepare(&meta, op, now)
            })
            .collect()
    }

    /// Queues prepared writes for the writer and waits for their answers.
    async fn submit(
        &self,
        prepared: Vec<Result<PreparedOp, ServiceError>>,
    ) -> Vec<Result<WriteOutcome, ServiceError>> {
        let n = prepared.len();
        if prepared.iter().all(|p| p.is_err()) {
            return prepared
                .into_iter()
                .map(|p| p.map(|_| WriteOutcome::default()))
                .collect();
        }
        let (reply, rx) = oneshot::channel();
        if let Err(e) = self.send(Command::Write {
            ops: prepared,
            reply,
        }) {
            return vec![Err(e); n];
        }
        rx.await.unwrap_or_else(|_| vec![Err(writer_gone()); n])
    }
}
