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

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;

use tablestore::error::{code, ServiceError};
use tablestore::row::{Cell, CellOp, Condition, PrimaryKey, Row, RowChange, RowExistence};
use tablestore::schema::{is_valid_name, TableDef, TableDescription, TableOptions};
use tablestore::value::{PkType, PkValue, Value};

use super::condition;
use super::store::{
    self, Journal, Store, StoreError, StoredColumn, StoredRow, TableRecord, WriteSession,
};

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

/// One row write as PutRow / UpdateRow / DeleteRow / BatchWriteRow carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOp {
    pub table: String,
    pub change: RowChange,
    pub condition: Condition,
    /// Return the (resolved) primary key.
    pub return_pk: bool,
    /// Return these columns' newest values after the write.
    pub return_columns: Vec<String>,
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
        let n = ops.len();
        let now = now_ms();
        // Batches usually name one table: look it up once, not per row.
        let mut last: Option<Arc<TableMeta>> = None;
        let prepared: Vec<Result<PreparedOp, ServiceError>> = ops
            .into_iter()
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
            .collect();
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

    /// GetRow: the row as `read` selects it, or None when it does not exist (or is filtered out).
    pub fn get_row(
        &self,
        table: &str,
        pk: &PrimaryKey,
        read: &ReadOptions,
    ) -> Result<Option<Row>, ServiceError> {
        let meta = self.meta(table)?;
        check_pk(&meta.def, pk, PkUse::Read)?;
        check_read_options(read)?;
        let key = store::encode_key(pk);
        let txn = self.inner.store.begin_read()?;
        let t = txn
            .table(table)?
            .ok_or_else(ServiceError::table_not_exist)?;
        Ok(t.get_row(&key)?
            .and_then(|stored| project(&meta.def, pk.clone(), stored, read, now_ms())))
    }

    /// GetRange: one page of `[start, end)` in the request's direction.
    pub fn get_range(&self, table: &str, req: &RangeRequest) -> Result<RangePage, ServiceError> {
        let meta = self.meta(table)?;
        let def = &meta.def;
        check_pk(def, &req.start, PkUse::Bound)?;
        check_pk(def, &req.end, PkUse::Bound)?;
        check_read_options(&req.read)?;
        let limit = match req.limit {
            Some(l) if l <= 0 => {
                return Err(ServiceError::parameter_invalid(
                    "The limit must be greater than 0.",
                ))
            }
            Some(l) => l as usize,
            None => usize::MAX,
        };
        let start = store::encode_key(&req.start);
        let end = store::encode_key(&req.end);
        let (lo, hi, reverse) = match req.direction {
            Direction::Forward => {
                if start >= end {
                    return Err(ServiceError::parameter_invalid(
                        "Begin key must less than end key in FORWARD",
                    ));
                }
                (
                    Bound::Included(&start[..]),
                    Bound::Excluded(&end[..]),
                    false,
                )
            }
            Direction::Backward => {
                if start <= end {
                    return Err(ServiceError::parameter_invalid(
                        "Begin key must more than end key in BACKWARD",
                    ));
                }
                (Bound::Excluded(&end[..]), Bound::Included(&start[..]), true)
            }
        };
        let txn = self.inner.store.begin_read()?;
        let t = txn
            .table(table)?
            .ok_or_else(ServiceError::table_not_exist)?;
        let now = now_ms();
        let mut page = RangePage::default();
        let (mut scanned, mut bytes) = (0usize, 0usize);
        t.scan(lo, hi, reverse, |k, v| -> Result<bool, ServiceError> {
            if page.rows.len() >= limit || scanned >= RANGE_MAX_ROWS || bytes >= RANGE_MAX_BYTES {
                page.next_start = Some(store::decode_key(k, &def.primary_key)?);
                return Ok(false);
            }
            scanned += 1;
            bytes += k.len() + v.len();
            let pk = store::decode_key(k, &def.primary_key)?;
            let stored = store::decode_row(v)?;
            if let Some(row) = project(def, pk, stored, &req.read, now) {
                page.rows.push(row);
            }
            Ok(true)
        })?;
        Ok(page)
    }
}

// ------------------------------------------------------------------ validation

fn merge_options(mut o: TableOptions, u: &TableOptionsUpdate) -> TableOptions {
    if let Some(v) = u.time_to_live {
        o.time_to_live = v;
    }
    if let Some(v) = u.max_versions {
        o.max_versions = v;
    }
    if let Some(v) = u.deviation_cell_version_in_sec {
        o.deviation_cell_version_in_sec = v;
    }
    if let Some(v) = u.allow_update {
        o.allow_update = v;
    }
    o
}

fn validate_options(o: &TableOptions) -> Result<(), ServiceError> {
    if o.time_to_live != -1 && o.time_to_live < MIN_TIME_TO_LIVE {
        return Err(ServiceError::parameter_invalid(format!(
            "TimeToLive must be -1 or at least {MIN_TIME_TO_LIVE} seconds, got {}.",
            o.time_to_live
        )));
    }
    if o.max_versions < 1 {
        return Err(ServiceError::parameter_invalid(format!(
            "MaxVersions must be greater than 0, got {}.",
            o.max_versions
        )));
    }
    if o.deviation_cell_version_in_sec < 1 {
        return Err(ServiceError::parameter_invalid(format!(
            "DeviationCellVersionInSec must be greater than 0, got {}.",
            o.deviation_cell_version_in_sec
        )));
    }
    Ok(())
}

fn validate_table_def(def: &TableDef) -> Result<(), ServiceError> {
    let bad = ServiceError::parameter_invalid;
    if !is_valid_name(&def.name) {
        return Err(bad(format!("Invalid table name: '{}'.", def.name)));
    }
    let n = def.primary_key.len();
    if n == 0 || n > MAX_PK_COLUMNS {
        return Err(bad(format!(
            "The number of primary key columns must be in range: [1, {MAX_PK_COLUMNS}], got {n}."
        )));
    }
    let mut seen = HashSet::new();
    for pk in &def.primary_key {
        if !is_valid_name(&pk.name) {
            return Err(bad(format!("Invalid primary key name: '{}'.", pk.name)));
        }
        if !seen.insert(pk.name.as_str()) {
            return Err(bad(format!("Duplicated primary key name: '{}'.", pk.name)));
        }
    }
    let autos: Vec<_> = def
        .primary_key
        .iter()
        .enumerate()
        .filter(|(_, p)| p.auto_increment)
        .collect();
    if autos.len() > 1 {
        return Err(bad(
            "At most one primary key column can be auto-increment.".to_owned()
        ));
    }
    for (i, p) in autos {
        if i == 0 {
            return Err(bad(format!(
                "The partition key '{}' can not be an auto-increment column.",
                p.name
            )));
        }
        if p.pk_type != PkType::Integer {
            return Err(bad(format!(
                "The auto-increment primary key column '{}' must be INTEGER.",
                p.name
            )));
        }
    }
    if def.defined_columns.len() > MAX_DEFINED_COLUMNS {
        return Err(bad(format!(
            "The number of defined columns exceeds the limit: {MAX_DEFINED_COLUMNS}."
        )));
    }
    let mut defined = HashSet::new();
    for (name, _) in &def.defined_columns {
        if !is_valid_name(name) {
            return Err(bad(format!("Invalid column name: '{name}'.")));
        }
        if seen.contains(name.as_str()) {
            return Err(bad(format!(
                "The defined column '{name}' has the name of a primary key column."
            )));
        }
        if !defined.insert(name.as_str()) {
            return Err(bad(format!("Duplicated defined column name: '{name}'.")));
        }
    }
    validate_options(&def.options)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PkUse {
    Put,
    Update,
    Delete,
    /// GetRow / BatchGetRow key.
    Read,
    /// GetRange bound: INF_MIN / INF_MAX allowed.
    Bound,
}

/// Checks a key against the schema; returns the position of an auto-increment placeholder.
fn check_pk(def: &TableDef, pk: &PrimaryKey, usage: PkUse) -> Result<Option<usize>, ServiceError> {
    let (input, meta) = (pk.0.len(), def.primary_key.len());
    if input != meta {
        return Err(ServiceError::invalid_pk(format!(
            "Validate PK size fail. Input: {input}, Meta: {meta}."
        )));
    }
    let mut auto = None;
    for (i, (c, s)) in pk.0.iter().zip(&def.primary_key).enumerate() {
        if c.name != s.name {
            return Err(ServiceError::invalid_pk(format!(
                "Validate PK name fail. Input: {}, Meta: {}.",
                c.name, s.name
            )));
        }
        match &c.value {
            PkValue::InfMin | PkValue::InfMax => {
                if usage != PkUse::Bound {
                    return Err(ServiceError::parameter_invalid(format!(
                        "INF_MIN or INF_MAX is not allowed in the primary key column '{}' here.",
                        c.name
                    )));
                }
            }
            PkValue::AutoIncrement => {
                if !s.auto_increment {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The primary key column '{}' is not an auto-increment column.",
                        c.name
                    )));
                }
                if !matches!(usage, PkUse::Put | PkUse::Update) {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The auto-increment primary key column '{}' needs a value here.",
                        c.name
                    )));
                }
                auto = Some(i);
            }
            v => {
                let t = v.pk_type().map(PkType::name).unwrap_or("UNKNOWN");
                if v.pk_type() != Some(s.pk_type) {
                    return Err(ServiceError::invalid_pk(format!(
                        "Validate PK type fail. Input: {t}, Meta: {}.",
                        s.pk_type.name()
                    )));
                }
                if s.auto_increment && usage == PkUse::Put {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The auto-increment primary key column '{}' must be written as AUTO_INCREMENT.",
                        c.name
                    )));
                }
                let len = v.data_size();
                if s.pk_type != PkType::Integer && len > MAX_PK_VALUE_BYTES {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The length of primary key column: '{}' exceeds the MaxLength: {MAX_PK_VALUE_BYTES} with CurrentLength: {len}.",
                        c.name
                    )));
                }
            }
        }
    }
    Ok(auto)
}

fn check_attr_name(def: &TableDef, name: &str) -> Result<(), ServiceError> {
    if !is_valid_name(name) {
        return Err(ServiceError::parameter_invalid(format!(
            "Invalid column name: '{name}'."
        )));
    }
    if def.primary_key.iter().any(|p| p.name == name) {
        return Err(ServiceError::parameter_invalid(format!(
            "The attribute column '{name}' has the name of a primary key column."
        )));
    }
    Ok(())
}

fn check_attr_value(name: &str, v: &Value) -> Result<(), ServiceError> {
    let len = v.data_size();
    if matches!(v, Value::String(_) | Value::Binary(_)) && len > MAX_ATTR_VALUE_BYTES {
        return Err(ServiceError::parameter_invalid(format!(
            "The length of attribute column: '{name}' exceeds the MaxLength: {MAX_ATTR_VALUE_BYTES} with CurrentLength: {len}."
        )));
    }
    Ok(())
}

fn check_column_count(n: usize) -> Result<(), ServiceError> {
    if n > MAX_COLUMNS_PER_WRITE {
        return Err(ServiceError::new(
            code::OUT_OF_COLUMN_COUNT_LIMIT,
            format!(
                "The number of columns from the request exceeds the limit, limit count: {MAX_COLUMNS_PER_WRITE}, column count: {n}."
            ),
        ));
    }
    Ok(())
}

/// Oldest visible timestamp under the table's TTL.
fn ttl_floor(o: &TableOptions, now: i64) -> i64 {
    if o.time_to_live == -1 {
        i64::MIN
    } else {
        now.saturating_sub(i64::from(o.time_to_live).saturating_mul(1000))
    }
}

/// A written cell's version: now when absent, else within
/// `[max(now − deviation, now − TTL), now + deviation)`.
fn check_timestamp(
    o: &TableOptions,
    name: &str,
    ts: Option<i64>,
    now: i64,
) -> Result<i64, ServiceError> {
    let Some(ts) = ts else { return Ok(now) };
    let dev = o.deviation_cell_version_in_sec.saturating_mul(1000);
    let lo = now.saturating_sub(dev).max(ttl_floor(o, now)).max(0);
    let hi = now.saturating_add(dev);
    if ts < lo || ts >= hi {
        return Err(ServiceError::parameter_invalid(format!(
            "The timestamp {ts} of column '{name}' is out of the acceptable range [{lo}, {hi})."
        )));
    }
    Ok(ts)
}

fn check_read_options(read: &ReadOptions) -> Result<(), ServiceError> {
    if read.columns_to_get.len() > MAX_COLUMNS_TO_GET {
        return Err(ServiceError::parameter_invalid(format!(
            "The number of columns to get exceeds the limit: {MAX_COLUMNS_TO_GET}, got {}.",
            read.columns_to_get.len()
        )));
    }
    if let Some(m) = read.max_versions {
        if m <= 0 {
            return Err(ServiceError::parameter_invalid(
                "max_versions must be greater than 0.",
            ));
        }
    }
    match read.time_range {
        Some(TimeRange::Between { start, end }) if start < 0 || start >= end => {
            return Err(ServiceError::parameter_invalid(
                "Invalid time range: start_time must be >= 0 and less than end_time.",
            ))
        }
        Some(TimeRange::Specific(t)) if t < 0 => {
            return Err(ServiceError::parameter_invalid(
                "Invalid time range: specific_time must be >= 0.",
            ))
        }
        _ => {}
    }
    if let Some(f) = &read.filter {
        condition::validate(f)?;
    }
    Ok(())
}

// ------------------------------------------------------------------ write preparation

/// A write validated against one epoch of its table's definition, timestamps resolved and (for
/// PUT) the row already encoded, so the writer thread does as little as possible.
struct PreparedOp {
    op: WriteOp,
    epoch: u64,
    now: i64,
    /// None while an auto-increment placeholder awaits its value.
    key: Option<Vec<u8>>,
    auto_col: Option<usize>,
    /// PUT only: the encoded row (None = no attribute columns = no row) and the cells to return.
    put: Option<(Option<Vec<u8>>, Vec<Cell>)>,
    /// UPDATE only, when it can be known up front: the encoded row the update yields if the
    /// row does not exist yet (None = no row). Spares the writer thread the work for new rows.
    fresh: Option<Option<Vec<u8>>>,
}

fn prepare(meta: &TableMeta, mut op: WriteOp, now: i64) -> Result<PreparedOp, ServiceError> {
    let def = &meta.def;
    let o = &def.options;
    let usage = match &op.change {
        RowChange::Put(_) => PkUse::Put,
        RowChange::Update { .. } => PkUse::Update,
        RowChange::Delete(_) => PkUse::Delete,
    };
    if usage == PkUse::Update && !o.allow_update {
        return Err(ServiceError::parameter_invalid(
            "UpdateRow is not allowed on this table: allow_update is false.",
        ));
    }
    let auto_col = check_pk(def, op.change.primary_key(), usage)?;
    let mut distinct = false;
    match &mut op.change {
        RowChange::Put(row) => {
            check_column_count(row.cells.len())?;
            for c in &mut row.cells {
                check_attr_name(def, &c.name)?;
                check_attr_value(&c.name, &c.value)?;
                c.timestamp = Some(check_timestamp(o, &c.name, c.timestamp, now)?);
            }
        }
        RowChange::Update { ops, .. } => {
            if ops.is_empty() {
                return Err(ServiceError::parameter_invalid(
                    "Attribute column is missing.",
                ));
            }
            check_column_count(ops.len())?;
            distinct = distinct_columns(ops);
            let mut incremented = HashSet::new();
            let mut changed = HashSet::new();
            for cop in ops.iter_mut() {
                check_attr_name(def, cop.column())?;
                match cop {
                    CellOp::Put(c) => {
                        check_attr_value(&c.name, &c.value)?;
                        c.timestamp = Some(check_timestamp(o, &c.name, c.timestamp, now)?);
                    }
                    CellOp::DeleteOneVersion { name, timestamp } => {
                        if *timestamp < 0 {
                            return Err(ServiceError::parameter_invalid(format!(
                                "The timestamp of column '{name}' must not be negative."
                            )));
                        }
                    }
                    CellOp::DeleteAllVersions { .. } | CellOp::Increment { .. } => {}
                }
                if distinct {
                    // No column is named twice: no increment can clash with another change.
                    continue;
                }
                let name = cop.column().to_owned();
                let conflict = match cop {
                    CellOp::Increment { .. } => {
                        changed.contains(&name) || !incremented.insert(name.clone())
                    }
                    _ => {
                        changed.insert(name.clone());
                        incremented.contains(&name)
                    }
                };
                if conflict {
                    return Err(ServiceError::parameter_invalid(format!(
                        "The column '{name}' can not be both incremented and otherwise changed in one request."
                    )));
                }
            }
        }
        RowChange::Delete(_) => {}
    }
    if let Some(c) = &op.condition.column_condition {
        condition::validate(c)?;
    }
    let key = match auto_col {
        None => Some(store::encode_key(op.change.primary_key())),
        Some(_) => None,
    };
    let put = match &mut op.change {
        RowChange::Put(row) if op.return_columns.is_empty() && !row.cells.is_empty() => {
            let value = match encode_distinct_put(&row.cells) {
                Some(v) => v,
                None => store::encode_row(&put_row(&row.cells, o.max_versions)),
            };
            row.cells = Vec::new();
            Some((Some(value), Vec::new()))
        }
        RowChange::Put(row) => {
            let stored = put_row(&row.cells, o.max_versions);
            let returned = returned_cells(&stored, &op.return_columns);
            // Attribute columns are optional: a key-only PutRow makes a row that exists (its
            // stored form has no columns), unlike an update that deletes the last column.
            let value = Some(store::encode_row(&stored));
            // The encoded row carries the cells from here on; freeing them on the caller's
            // thread keeps that work off the single writer thread.
            row.cells = Vec::new();
            Some((value, returned))
        }
        _ => None,
    };
    let fresh = match &op.change {
        RowChange::Update { ops, .. } if op.return_columns.is_empty() => {
            fresh_update(ops, distinct)
        }
        _ => None,
    };
    Ok(PreparedOp {
        op,
        epoch: meta.epoch,
        now,
        key,
        auto_col,
        put,
        fresh,
    })
}

/// Whether no column is named by two ops (the usual update).
fn distinct_columns(ops: &[CellOp]) -> bool {
    let mut names: Vec<&str> = ops.iter().map(CellOp::column).collect();
    names.sort_unstable();
    !names.windows(2).any(|w| w[0] == w[1])
}

/// What an update of a row that does not exist yet stores, when that does not depend on the
/// clock: ops naming distinct columns (`distinct` = `distinct_columns(ops)`), no increment.
/// Deletes then do nothing, puts (timestamps set by `prepare`) give one version each. None
/// when the writer must apply the ops itself.
fn fresh_update(ops: &[CellOp], distinct: bool) -> Option<Option<Vec<u8>>> {
    if !distinct {
        return None;
    }
    let mut cols = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            CellOp::Put(c) => cols.push((c.name.as_str(), c.timestamp?, &c.value)),
            CellOp::DeleteOneVersion { .. } | CellOp::DeleteAllVersions { .. } => {}
            CellOp::Increment { .. } => return None,
        }
    }
    if cols.is_empty() {
        return Some(None);
    }
    cols.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Some(Some(store::encode_single_versions(&cols)))
}

/// The stored form of a PUT whose cells name distinct columns (the usual case), encoded
/// straight from the cells: one version per column, so `put_row`'s grouping and trimming are
/// no-ops. None when a name repeats. Timestamps are set by `prepare` before this.
fn encode_distinct_put(cells: &[Cell]) -> Option<Vec<u8>> {
    let mut cols: Vec<(&str, i64, &Value)> = cells
        .iter()
        .map(|c| (c.name.as_str(), c.timestamp.unwrap_or(0), &c.value))
        .collect();
    cols.sort_unstable_by(|a, b| a.0.cmp(b.0));
    if cols.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(store::encode_single_versions(&cols))
}

/// The stored form of a PUT's cells: grouped by column, a repeated timestamp keeps the last
/// value, at most `max_versions` newest versions.
fn put_row(cells: &[Cell], max_versions: i32) -> StoredRow {
    let mut row = StoredRow::default();
    for c in cells {
        row.column_mut(&c.name)
            .put_version(c.timestamp.unwrap_or(0), c.value.clone());
    }
    trim(&mut row, max_versions);
    row
}

/// A stored row as PUT cells (every version, with its timestamp).
fn cells_of(row: StoredRow) -> Vec<Cell> {
    row.columns
        .into_iter()
        .flat_map(|c| {
            let name = c.name;
            c.versions.into_iter().map(move |(ts, value)| Cell {
                name: name.clone(),
                value,
                timestamp: Some(ts),
            })
        })
        .collect()
}

fn trim(row: &mut StoredRow, max_versions: i32) {
    let keep = max_versions.max(1) as usize;
    for c in &mut row.columns {
        c.versions.truncate(keep);
    }
    row.columns.retain(|c| !c.versions.is_empty());
}

/// The versions a reader or condition may see: not expired, at most `max_versions` newest.
fn visible(mut row: StoredRow, o: &TableOptions, now: i64) -> StoredRow {
    let floor = ttl_floor(o, now);
    let keep = o.max_versions.max(1) as usize;
    for c in &mut row.columns {
        c.versions.truncate(keep);
        c.versions.retain(|(ts, _)| *ts >= floor);
    }
    row.columns.retain(|c| !c.versions.is_empty());
    row
}

/// The newest version of each requested column (request order, duplicates once).
fn returned_cells(row: &StoredRow, names: &[String]) -> Vec<Cell> {
    let mut seen = HashSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .filter_map(|n| {
            let c = row.column(n)?;
            let (ts, v) = c.versions.first()?;
            Some(Cell {
                name: n.clone(),
                value: v.clone(),
                timestamp: Some(*ts),
            })
        })
        .collect()
}

fn check_condition(cond: &Condition, old: Option<&StoredRow>) -> bool {
    let exists_ok = match cond.row_existence {
        RowExistence::Ignore => true,
        RowExistence::ExpectExist => old.is_some(),
        RowExistence::ExpectNotExist => old.is_none(),
    };
    exists_ok
        && cond.column_condition.as_ref().is_none_or(|c| {
            let empty = StoredRow::default();
            condition::evaluate(c, old.unwrap_or(&empty))
        })
}

fn apply_update(
    row: &mut StoredRow,
    ops: Vec<CellOp>,
    max_versions: i32,
    now: i64,
) -> Result<(), ServiceError> {
    for op in ops {
        match op {
            CellOp::Put(c) => row
                .column_mut(&c.name)
                .put_version(c.timestamp.unwrap_or(now), c.value),
            CellOp::DeleteOneVersion { name, timestamp } => {
                if let Some(i) = row.columns.iter().position(|c| c.name == name) {
                    row.columns[i].delete_version(timestamp);
                }
            }
            CellOp::DeleteAllVersions { name } => row.remove_column(&name),
            CellOp::Increment { name, delta } => {
                let base = match row.column(&name).and_then(|c| c.versions.first()) {
                    None => 0,
                    Some((_, Value::Integer(i))) => *i,
                    Some((_, other)) => {
                        return Err(ServiceError::parameter_invalid(format!(
                            "The column '{name}' to increment is {}, not INTEGER.",
                            other.type_name()
                        )))
                    }
                };
                let v = base.checked_add(delta).ok_or_else(|| {
                    ServiceError::parameter_invalid(format!(
                        "Increment of column '{name}' overflows INTEGER."
                    ))
                })?;
                row.column_mut(&name).put_version(now, Value::Integer(v));
            }
        }
    }
    trim(row, max_versions);
    Ok(())
}

/// A stored row as writes see it: its visible versions, or None when none is left (a
/// key-only row, made by a PutRow without attributes, exists with no columns).
fn existing(r: StoredRow, o: &TableOptions, now: i64) -> Option<StoredRow> {
    let key_only = r.columns.is_empty();
    let r = visible(r, o, now);
    (key_only || !r.is_empty()).then_some(r)
}

/// A stored row as `read` selects it. None when the row has no visible column, is filtered
/// out, or nothing is selected and no PK column was asked for.
fn project(
    def: &TableDef,
    primary_key: PrimaryKey,
    stored: StoredRow,
    read: &ReadOptions,
    now: i64,
) -> Option<Row> {
    let o = &def.options;
    let floor = ttl_floor(o, now);
    let table_max = o.max_versions.max(1) as usize;
    let per_column = match (read.max_versions, read.time_range) {
        (Some(m), _) => m.max(1) as usize,
        (None, Some(_)) => usize::MAX,
        (None, None) => 1,
    };
    let in_range = |ts: i64| match read.time_range {
        None => true,
        Some(TimeRange::Between { start, end }) => start <= ts && ts < end,
        Some(TimeRange::Specific(t)) => ts == t,
    };
    let wanted = |name: &str| {
        read.columns_to_get.is_empty() || read.columns_to_get.iter().any(|c| c == name)
    };
    // A row stored without columns was written by a key-only PutRow: it exists.
    let key_only = stored.columns.is_empty();
    let mut exists = key_only;
    let mut cells = Vec::new();
    for StoredColumn { name, versions } in stored.columns {
        let mut vis = versions
            .into_iter()
            .take(table_max)
            .filter(|(ts, _)| *ts >= floor)
            .peekable();
        if vis.peek().is_none() {
            continue;
        }
        exists = true;
        if !wanted(&name) {
            continue;
        }
        for (ts, value) in vis.filter(|(ts, _)| in_range(*ts)).take(per_column) {
            cells.push(Cell {
                name: name.clone(),
                value,
                timestamp: Some(ts),
            });
        }
    }
    if !exists {
        return None;
    }
    if let Some(f) = &read.filter {
        if !condition::evaluate(f, cells.as_slice()) {
            return None;
        }
    }
    let wants_pk = read
        .columns_to_get
        .iter()
        .any(|c| def.primary_key.iter().any(|p| &p.name == c));
    if cells.is_empty() && !wants_pk && !(key_only && read.columns_to_get.is_empty()) {
        return None;
    }
    Some(Row { primary_key, cells })
}

// ------------------------------------------------------------------ the writer thread

/// Upper bound of row operations and bytes folded into one transaction (bounds memory).
const MAX_OPS_PER_COMMIT: usize = 8192;
const MAX_BYTES_PER_COMMIT: usize = 32 * 1024 * 1024;
/// Durable redb checkpoints: after this much log, this much time, on idle, on table changes.
const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
const IDLE_TICK: Duration = Duration::from_secs(1);

enum AdminOp {
    Create(TableDef),
    Delete(String),
    Update(String, TableOptionsUpdate),
}

enum AdminReply {
    Done,
    Options(TableOptions),
}

type WriteResults = Vec<Result<WriteOutcome, ServiceError>>;

enum Command {
    Write {
        ops: Vec<Result<PreparedOp, ServiceError>>,
        reply: oneshot::Sender<WriteResults>,
    },
    Admin {
        op: AdminOp,
        reply: mpsc::Sender<Result<AdminReply, ServiceError>>,
    },
}

impl Command {
    /// (operations, approximate bytes) for batching limits.
    fn weight(&self) -> (usize, usize) {
        match self {
            Command::Write { ops, .. } => (
                ops.len(),
                ops.iter()
                    .map(|p| match p {
                        Ok(PreparedOp {
                            put: Some((Some(v), _)),
                            ..
                        }) => v.len(),
                        _ => 64,
                    })
                    .sum(),
            ),
            Command::Admin { .. } => (1, 0),
        }
    }
}

/// A processed command whose answer waits until its log frame is durable.
enum Done {
    Write {
        reply: oneshot::Sender<WriteResults>,
        results: WriteResults,
        n: usize,
    },
    Admin {
        reply: mpsc::Sender<Result<AdminReply, ServiceError>>,
        result: Result<AdminReply, ServiceError>,
    },
}

impl Done {
    fn send(self) {
        // A caller that gave up (dropped its future) is no error.
        match self {
            Done::Write { reply, results, .. } => {
                let _ = reply.send(results);
            }
            Done::Admin { reply, result } => {
                let _ = reply.send(result);
            }
        }
    }

    fn fail(self, e: &ServiceError) {
        match self {
            Done::Write { reply, n, .. } => {
                let _ = reply.send(vec![Err(e.clone()); n]);
            }
            Done::Admin { reply, .. } => {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// A command that was not applied because its batch failed.
fn pending(cmd: Command) -> Done {
    match cmd {
        Command::Write { ops, reply } => Done::Write {
            reply,
            n: ops.len(),
            results: Vec::new(),
        },
        Command::Admin { reply, .. } => Done::Admin {
            reply,
            result: Err(writer_gone()),
        },
    }
}

fn storage_failed() -> ServiceError {
    ServiceError::internal(
        "The storage failed earlier and refuses writes; restart the server (see its log).",
    )
}

/// Answers to send once `file` (the log segment written) is fsynced.
struct SyncJob {
    file: Option<Arc<File>>,
    done: Vec<Done>,
    /// Freed by the syncer rather than the writer.
    trash: Vec<Vec<u8>>,
}

/// Group fsync: syncs the log once for every job queued meanwhile, then answers them. A failed
/// fsync fails its jobs and every later one (after a failed fsync the page cache can no longer
/// be trusted to reach the disk).
fn run_syncer(rx: mpsc::Receiver<SyncJob>, failed: Arc<AtomicBool>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        let mut synced: Vec<&Arc<File>> = Vec::new();
        let mut ok = !failed.load(Ordering::Acquire);
        for f in jobs.iter().filter_map(|j| j.file.as_ref()) {
            if !ok || synced.iter().any(|s| Arc::ptr_eq(s, f)) {
                continue;
            }
            if let Err(e) = f.sync_data() {
                tracing::error!(error = %e, "cannot fsync the value log; refusing further writes");
                failed.store(true, Ordering::Release);
                ok = false;
            }
            synced.push(f);
        }
        for j in jobs {
            for d in j.done {
                if ok {
                    d.send();
                } else {
                    d.fail(&storage_failed());
                }
            }
            drop(j.trash);
        }
    }
}

struct WriterTable {
    meta: Arc<TableMeta>,
    auto_increment: i64,
}

/// The writer's view of the tables (changed only on the writer thread).
struct Tables {
    tables: HashMap<String, WriterTable>,
    catalog: Arc<RwLock<Catalog>>,
    max_tables: usize,
    next_epoch: u64,
}

/// Owns all metadata changes and write transactions (runs on its own thread).
struct Writer {
    store: Arc<Store>,
    journal: Journal,
    state: Tables,
    sync_tx: Option<mpsc::Sender<SyncJob>>,
    syncer: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        loop {
            match rx.recv_timeout(IDLE_TICK) {
                Ok(first) => {
                    let (mut ops, mut bytes) = first.weight();
                    let mut cmds = vec![first];
                    while ops < MAX_OPS_PER_COMMIT && bytes < MAX_BYTES_PER_COMMIT {
                        match rx.try_recv() {
                            Ok(c) => {
                                let (o, b) = c.weight();
                                ops += o;
                                bytes += b;
                                cmds.push(c);
                            }
                            Err(_) => break,
                        }
                    }
                    if self.run_batch(cmds) {
                        self.compact_one();
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => self.maintain(),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Shutting down: a last checkpoint makes the next open fast.
        if !self.is_failed() && self.journal.dirty() {
            self.checkpoint();
        }
        self.sync_tx.take();
        if let Some(h) = self.syncer.take() {
            if h.join().is_err() {
                tracing::error!("tablestore log syncer thread panicked");
            }
        }
        tracing::debug!("tablestore storage writer stopped");
    }

    fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Storage errors are not retried here: the writer stops accepting writes (reads go on)
    /// and a restart recovers from the log.
    fn fail(&mut self, e: &StoreError) {
        tracing::error!(error = %e, "tablestore storage write failed; refusing further writes");
        self.failed.store(true, Ordering::Release);
        self.journal.discard_frame();
    }

    /// Idle work: checkpoint, compact a segment, unlink freed segments.
    fn maintain(&mut self) {
        if self.is_failed() {
            return;
        }
        if self.journal.dirty() {
            self.checkpoint();
        }
        self.compact_one();
        self.journal.unlink_doomed(&self.store);
    }

    fn checkpoint(&mut self) {
        let r = self
            .store
            .begin_write()
            .and_then(|txn| txn.finish(&self.store, &mut self.journal, true));
        if let Err(e) = r {
            self.fail(&e);
        }
    }

    /// Compacts one mostly-garbage segment, if any, and checkpoints so it can be freed.
    fn compact_one(&mut self) {
        if self.is_failed() {
            return;
        }
        let Some(segment) = self.journal.gc_candidate(&self.store) else {
            return;
        };
        let started = Instant::now();
        let tables = &self.state.tables;
        let r = self.store.begin_write().and_then(|txn| {
            let moved = {
                let mut s = txn.session(&self.store, &mut self.journal);
                s.compact_segment(segment, |t| tables.contains_key(t))?
            };
            txn.finish(&self.store, &mut self.journal, true)?;
            Ok(moved)
        });
        match r {
            Ok(moved) => tracing::info!(
                segment,
                moved,
                ms = started.elapsed().as_millis() as u64,
                "compacted a value log segment"
            ),
            Err(e) => self.fail(&e),
        }
    }

    /// Applies a batch; returns whether it checkpointed.
    fn run_batch(&mut self, cmds: Vec<Command>) -> bool {
        if self.is_failed() {
            let err = storage_failed();
            cmds.into_iter().for_each(|c| pending(c).fail(&err));
            return false;
        }
        let checkpoint = cmds.iter().any(|c| matches!(c, Command::Admin { .. }))
            || self.journal.since_checkpoint() >= CHECKPOINT_BYTES
            || self.journal.last_checkpoint().elapsed() >= CHECKPOINT_INTERVAL;
        let mut done = Vec::with_capacity(cmds.len());
        let mut trash = Vec::new();
        match self.apply_batch(cmds, &mut done, &mut trash, checkpoint) {
            Ok((catalog_changed, file)) => {
                if catalog_changed {
                    self.state.publish();
                }
                let job = SyncJob { file, done, trash };
                if let Some(tx) = &self.sync_tx {
                    if let Err(mpsc::SendError(job)) = tx.send(job) {
                        job.done.into_iter().for_each(|d| d.fail(&writer_gone()));
                    }
                }
                checkpoint
            }
            Err(e) => {
                self.fail(&e);
                // Metadata changed in memory during the failed batch: show what is durable.
                if let Ok(records) = self.store.load_tables() {
                    self.state.install(records);
                }
                let err = ServiceError::from(e);
                done.into_iter().for_each(|d| d.fail(&err));
                false
            }
        }
    }

    /// Applies every command in one transaction and commits it. On a storage error every
    /// command still gets a `Done` (answered with the error by the caller of this fn).
    fn apply_batch(
        &mut self,
        cmds: Vec<Command>,
        done: &mut Vec<Done>,
        trash: &mut Vec<Vec<u8>>,
        checkpoint: bool,
    ) -> Result<(bool, Option<Arc<File>>), StoreError> {
        let txn = match self.store.begin_write() {
            Ok(t) => t,
            Err(e) => {
                done.extend(cmds.into_iter().map(pending));
                return Err(e);
            }
        };
        let mut failed: Option<StoreError> = None;
        let mut catalog_changed = false;
        let mut dirty: HashSet<String> = HashSet::new();
        let state = &mut self.state;
        {
            let mut s = txn.session(&self.store, &mut self.journal);
            for cmd in cmds {
                if failed.is_some() {
                    done.push(pending(cmd));
                    continue;
                }
                match cmd {
                    Command::Write { ops, reply } => {
                        let n = ops.len();
                        let mut results = Vec::with_capacity(n);
                        for op in ops {
                            let r = match op {
                                Err(e) => Err(e),
                                Ok(p) => match state.apply_write(&mut s, p, &mut dirty, trash) {
                                    Ok(r) => r,
                                    Err(e) => {
                                        failed = Some(e);
                                        break;
                                    }
                                },
                            };
                            results.push(r);
                        }
                        done.push(Done::Write { reply, results, n });
                    }
                    Command::Admin { op, reply } => match state.apply_admin(&mut s, op) {
                        Ok(result) => {
                            catalog_changed |= result.is_ok();
                            done.push(Done::Admin { reply, result });
                        }
                        Err(e) => {
                            failed = Some(e);
                            done.push(Done::Admin {
                                reply,
                                result: Err(writer_gone()),
                            });
                        }
                    },
                }
            }
            if failed.is_none() {
                for name in &dirty {
                    if let Some(t) = state.tables.get(name) {
                        if let Err(e) = s.put_counter(&state.record(t)) {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        if let Some(e) = failed {
            return Err(e); // dropping `txn` aborts it
        }
        let file = txn.finish(&self.store, &mut self.journal, checkpoint)?;
        Ok((catalog_changed, file))
    }
}

impl Tables {
    fn epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// Replaces the in-memory state with `records` and publishes it.
    fn install(&mut self, records: Vec<TableRecord>) {
        self.tables.clear();
        for r in records {
            let epoch = self.epoch();
            self.tables.insert(
                r.def.name.clone(),
                WriterTable {
                    meta: Arc::new(TableMeta {
                        def: r.def,
                        creation_time: r.creation_time,
                        epoch,
                    }),
                    auto_increment: r.auto_increment,
                },
            );
        }
        self.publish();
    }

    fn publish(&self) {
        let snapshot: Catalog = self
            .tables
            .iter()
            .map(|(k, t)| (k.clone(), t.meta.clone()))
            .collect();
        // Only the writer thread writes the catalog, so a poisoned lock holds nothing half-done.
        let mut g = self.catalog.write().unwrap_or_else(|p| p.into_inner());
        *g = snapshot;
    }

    fn record(&self, t: &WriterTable) -> TableRecord {
        TableRecord {
            def: t.meta.def.clone(),
            creation_time: t.meta.creation_time,
            auto_increment: t.auto_increment,
        }
    }

    fn apply_admin(
        &mut self,
        s: &mut WriteSession<'_>,
        op: AdminOp,
    ) -> Result<Result<AdminReply, ServiceError>, StoreError> {
        match op {
            AdminOp::Create(def) => {
                if self.tables.contains_key(&def.name) {
                    return Ok(Err(ServiceError::table_already_exist()));
                }
                if self.tables.len() >= self.max_tables {
                    return Ok(Err(ServiceError::new(
                        code::QUOTA_EXHAUSTED,
                        "Number of tables exceeded the quota.",
                    )));
                }
                let creation_time = now_ms() / 1000;
                let rec = TableRecord {
                    def,
                    creation_time,
                    auto_increment: 0,
                };
                s.create_table(&rec)?;
                let epoch = self.epoch();
                tracing::info!(table = %rec.def.name, "table created");
                self.tables.insert(
                    rec.def.name.clone(),
                    WriterTable {
                        meta: Arc::new(TableMeta {
                            def: rec.def,
                            creation_time,
                            epoch,
                        }),
                        auto_increment: 0,
                    },
                );
                Ok(Ok(AdminReply::Done))
            }
            AdminOp::Delete(name) => {
                if !self.tables.contains_key(&name) {
                    return Ok(Err(ServiceError::table_not_exist()));
                }
                s.delete_table(&name)?;
                self.tables.remove(&name);
                tracing::info!(table = %name, "table deleted");
                Ok(Ok(AdminReply::Done))
            }
            AdminOp::Update(name, upd) => {
                let epoch = self.epoch();
                let Some(t) = self.tables.get_mut(&name) else {
                    return Ok(Err(ServiceError::table_not_exist()));
                };
                let options = merge_options(t.meta.def.options, &upd);
                if let Err(e) = validate_options(&options) {
                    return Ok(Err(e));
                }
                let mut def = t.meta.def.clone();
                def.options = options;
                t.meta = Arc::new(TableMeta {
                    def,
                    creation_time: t.meta.creation_time,
                    epoch,
                });
                let rec = TableRecord {
                    def: t.meta.def.clone(),
                    creation_time: t.meta.creation_time,
                    auto_increment: t.auto_increment,
                };
                s.put_record(&rec)?;
                Ok(Ok(AdminReply::Options(options)))
            }
        }
    }

    /// Applies one write. Buffers it no longer needs go to `trash`, freed off this thread.
    fn apply_write(
        &mut self,
        s: &mut WriteSession<'_>,
        p: PreparedOp,
        dirty: &mut HashSet<String>,
        trash: &mut Vec<Vec<u8>>,
    ) -> Result<Result<WriteOutcome, ServiceError>, StoreError> {
        let Some(t) = self.tables.get_mut(&p.op.table) else {
            return Ok(Err(ServiceError::table_not_exist()));
        };
        let mut p = p;
        if p.epoch != t.meta.epoch {
            // The table changed since the caller validated: validate again (a PUT's cells come
            // back from its encoded row).
            if let (RowChange::Put(row), Some((Some(v), _))) = (&mut p.op.change, &p.put) {
                row.cells = match store::decode_row(v) {
                    Ok(r) => cells_of(r),
                    Err(e) => return Ok(Err(e.into())),
                };
            }
            p = match prepare(&t.meta, p.op, now_ms()) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
        }
        let PreparedOp {
            mut op,
            now,
            key,
            auto_col,
            put,
            fresh,
            ..
        } = p;
        let key = match (key, auto_col) {
            (Some(k), _) => k,
            (None, Some(i)) => {
                let Some(next) = t.auto_increment.checked_add(1) else {
                    return Ok(Err(ServiceError::internal("auto-increment exhausted")));
                };
                t.auto_increment = next;
                dirty.insert(op.table.clone());
                let pk = match &mut op.change {
                    RowChange::Put(r) => &mut r.primary_key,
                    RowChange::Update { primary_key, .. } => primary_key,
                    RowChange::Delete(pk) => pk,
                };
                if let Some(c) = pk.0.get_mut(i) {
                    c.value = PkValue::Integer(next);
                }
                store::encode_key(pk)
            }
            (None, None) => return Ok(Err(ServiceError::internal("write without a key"))),
        };
        let table = op.table.as_str();
        let o = t.meta.def.options;
        let cond = &op.condition;
        let blind = cond.row_existence == RowExistence::Ignore && cond.column_condition.is_none();
        let is_update = matches!(op.change, RowChange::Update { .. });
        // A blind update whose result for a new row is known is written first; the row it
        // replaced, if any, is then merged and written again (a copy's rows are all new).
        let fresh_first = blind && is_update && matches!(fresh, Some(Some(_)));
        let old = if (blind && !is_update) || fresh_first {
            None
        } else {
            s.get_row(table, &key)?.and_then(|r| existing(r, &o, now))
        };
        if !blind && !check_condition(cond, old.as_ref()) {
            return Ok(Err(ServiceError::condition_check_fail()));
        }
        let (primary_key, cells) = match op.change {
            RowChange::Put(row) => {
                let (value, cells) = put.unwrap_or((None, Vec::new()));
                match value {
                    Some(v) => {
                        s.insert(table, &key, &v)?;
                        trash.push(v);
                    }
                    None => s.remove(table, &key)?,
                }
                trash.push(key);
                (row.primary_key, cells)
            }
            RowChange::Update { primary_key, ops } if fresh_first => {
                let Some(Some(v)) = fresh else {
                    return Ok(Err(ServiceError::internal("fresh update without its row")));
                };
                let replaced = s.replace(table, &key, &v)?;
                trash.push(v);
                match replaced {
                    None => {}
                    Some((stored, before)) => match existing(stored, &o, now) {
                        None => {}
                        Some(mut row) => {
                            if let Err(e) = apply_update(&mut row, ops, o.max_versions, now) {
                                s.insert(table, &key, &before)?;
                                return Ok(Err(e));
                            }
                            if row.is_empty() {
                                s.remove(table, &key)?;
                            } else {
                                s.insert(table, &key, &store::encode_row(&row))?;
                            }
                        }
                    },
                }
                trash.push(key);
                (primary_key, Vec::new())
            }
            RowChange::Update { primary_key, .. } if old.is_none() && fresh.is_some() => {
                match fresh.flatten() {
                    Some(v) => {
                        s.insert(table, &key, &v)?;
                        trash.push(v);
                    }
                    None => s.remove(table, &key)?,
                }
                trash.push(key);
                (primary_key, Vec::new())
            }
            RowChange::Update { primary_key, ops } => {
                let mut row = old.unwrap_or_default();
                if let Err(e) = apply_update(&mut row, ops, o.max_versions, now) {
                    return Ok(Err(e));
                }
                if row.is_empty() {
                    s.remove(table, &key)?;
                } else {
                    s.insert(table, &key, &store::encode_row(&row))?;
                }
                (primary_key, returned_cells(&row, &op.return_columns))
            }
            RowChange::Delete(pk) => {
                s.remove(table, &key)?;
                (pk, Vec::new())
            }
        };
        let returned =
            (op.return_pk || !op.return_columns.is_empty()).then_some(Row { primary_key, cells });
        Ok(Ok(WriteOutcome { returned }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tablestore::row::{ColumnCondition, Comparator, PkColumn};
    use tablestore::schema::{DefinedColumnType, PkSchema};
    use tempfile::TempDir;

    fn open(dir: &TempDir) -> Engine {
        Engine::open(dir.path(), EngineOptions::default()).expect("open")
    }

    fn setup() -> (TempDir, Engine) {
        let dir = TempDir::new().expect("tempdir");
        let e = open(&dir);
        (dir, e)
    }

    /// Table `t`: PK (pk STRING, n INTEGER).
    fn def_t() -> TableDef {
        TableDef::new(
            "t",
            vec![
                PkSchema::new("pk", PkType::String),
                PkSchema::new("n", PkType::Integer),
            ],
        )
    }

    fn key(s: &str, n: i64) -> PrimaryKey {
        PrimaryKey::new().with("pk", s).with("n", n)
    }

    fn pkv(cols: &[(&str, PkValue)]) -> PrimaryKey {
        PrimaryKey(
            cols.iter()
                .map(|(n, v)| PkColumn {
                    name: (*n).into(),
                    value: v.clone(),
                })
                .collect(),
        )
    }

    fn op(table: &str, change: RowChange) -> WriteOp {
        WriteOp {
            table: table.into(),
            change,
            condition: Condition::ignore(),
            return_pk: false,
            return_columns: Vec::new(),
        }
    }

    fn put_op(pk: PrimaryKey, cells: Vec<Cell>) -> WriteOp {
        op(
            "t",
            RowChange::Put(Row {
                primary_key: pk,
                cells,
            }),
        )
    }

    fn update_op(pk: PrimaryKey, ops: Vec<CellOp>) -> WriteOp {
        op(
            "t",
            RowChange::Update {
                primary_key: pk,
                ops,
            },
        )
    }

    #[test]
    fn distinct_put_encoding_matches_stored_row() {
        let cells = vec![
            Cell::new("b", "x".repeat(200)).at(5),
            Cell::new("a", 7i64).at(9),
            Cell::new("c", true).at(1),
        ];
        assert_eq!(
            encode_distinct_put(&cells),
            Some(store::encode_row(&put_row(&cells, 1)))
        );
        let repeated = vec![Cell::new("a", 1i64).at(1), Cell::new("a", 2i64).at(2)];
        assert_eq!(encode_distinct_put(&repeated), None);
    }

    #[test]
    fn fresh_update_matches_applied_update() {
        let ops = vec![
            CellOp::Put(Cell::new("z", "x".repeat(150)).at(3)),
            CellOp::DeleteAllVersions { name: "m".into() },
            CellOp::Put(Cell::new("a", 1.5f64).at(4)),
        ];
        let mut row = StoredRow::default();
        apply_update(&mut row, ops.clone(), 1, 99).expect("apply");
        assert_eq!(
            fresh_update(&ops, distinct_columns(&ops)),
            Some(Some(store::encode_row(&row)))
        );
        let deletes = vec![CellOp::DeleteAllVersions { name: "m".into() }];
        assert_eq!(fresh_update(&deletes, true), Some(None));
        let twice = vec![
            CellOp::Put(Cell::new("a", 1i64).at(1)),
            CellOp::DeleteAllVersions { name: "a".into() },
        ];
        assert_eq!(fresh_update(&twice, distinct_columns(&twice)), None);
        let inc = vec![CellOp::Increment {
            name: "n".into(),
            delta: 1,
        }];
        assert_eq!(fresh_update(&inc, true), None);
    }

    async fn write1(e: &Engine, op: WriteOp) -> Result<WriteOutcome, ServiceError> {
        let mut r = e.write(vec![op]).await;
        assert_eq!(r.len(), 1);
        r.remove(0)
    }

    fn get(e: &Engine, pk: &PrimaryKey) -> Option<Row> {
        e.get_row("t", pk, &ReadOptions::default())
            .expect("get_row")
    }

    fn get_all_versions(e: &Engine, pk: &PrimaryKey) -> Option<Row> {
        let read = ReadOptions {
            max_versions: Some(100),
            ..Default::default()
        };
        e.get_row("t", pk, &read).expect("get_row")
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> (u16, String, String) {
        let e = r.expect_err("expected an error");
        (e.http_status, e.code, e.message)
    }

    fn code_of<T: std::fmt::Debug>(r: Result<T, ServiceError>) -> String {
        err_of(r).1
    }

    fn values(row: &Row) -> Vec<(String, Value)> {
        row.cells
            .iter()
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }

    // ------------------------------------------------------------------ tables

    #[test]
    fn create_table_validation() {
        let (_d, e) = setup();
        let bad = |def: TableDef| code_of(e.create_table(def));
        let mut d = def_t();
        d.name = "1bad".into();
        assert_eq!(bad(d), "OTSParameterInvalid");
        assert_eq!(bad(TableDef::new("x", vec![])), "OTSParameterInvalid");
        let five = (0..5)
            .map(|i| PkSchema::new(format!("p{i}"), PkType::Integer))
            .collect();
        assert_eq!(bad(TableDef::new("x", five)), "OTSParameterInvalid");
        let dup = TableDef::new(
            "x",
            vec![
                PkSchema::new("PK0", PkType::Integer),
                PkSchema::new("PK0", PkType::String),
            ],
        );
        assert_eq!(
            err_of(e.create_table(dup)),
            (
                400,
                "OTSParameterInvalid".into(),
                "Duplicated primary key name: 'PK0'.".into()
            )
        );
        let auto = |i: usize, t: PkType| {
            let mut p = PkSchema::new(format!("a{i}"), t);
            p.auto_increment = true;
            p
        };
        let first_auto = TableDef::new("x", vec![auto(0, PkType::Integer)]);
        assert_eq!(bad(first_auto), "OTSParameterInvalid");
        let two = TableDef::new(
            "x",
            vec![
                PkSchema::new("p", PkType::String),
                auto(1, PkType::Integer),
                auto(2, PkType::Integer),
            ],
        );
        assert_eq!(bad(two), "OTSParameterInvalid");
        let string_auto = TableDef::new(
            "x",
            vec![PkSchema::new("p", PkType::String), auto(1, PkType::String)],
        );
        assert_eq!(bad(string_auto), "OTSParameterInvalid");
        for (ttl, ok) in [(100, false), (0, false), (-1, true), (86400, true)] {
            let mut d = def_t();
            d.name = format!("ttl{}", ttl.max(0));
            d.options.time_to_live = ttl;
            assert_eq!(e.create_table(d).is_ok(), ok, "ttl {ttl}");
        }
        let mut d = def_t();
        d.options.max_versions = 0;
        assert_eq!(bad(d), "OTSParameterInvalid");
        let mut d = def_t();
        d.defined_columns = vec![("pk".into(), DefinedColumnType::String)];
        assert_eq!(bad(d), "OTSParameterInvalid");
    }

    #[test]
    fn table_lifecycle() {
        let (_d, e) = setup();
        let mut d = def_t();
        d.defined_columns = vec![
            ("c1".into(), DefinedColumnType::Integer),
            ("c2".into(), DefinedColumnType::Blob),
        ];
        e.create_table(d.clone()).expect("create");
        assert_eq!(
            err_of(e.create_table(d.clone())),
            (
                409,
                "OTSObjectAlreadyExist".into(),
                "Requested table already exists.".into()
            )
        );
        let desc = e.describe_table("t").expect("describe");
        assert_eq!(desc.def, d);
        assert!(desc.creation_time > 1_600_000_000);
        assert_eq!(e.table_def("t").expect("def"), d);
        let mut d2 = def_t();
        d2.name = "a_first".into();
        e.create_table(d2).expect("create");
        assert_eq!(e.list_tables().expect("list"), vec!["a_first", "t"]);

        let o = e
            .update_table(
                "t",
                TableOptionsUpdate {
                    max_versions: Some(3),
                    time_to_live: Some(86400 * 2),
                    ..Default::default()
                },
            )
            .expect("update");
        assert_eq!(o.max_versions, 3);
        assert_eq!(o.time_to_live, 172800);
        assert_eq!(o.deviation_cell_version_in_sec, 86400);
        assert!(o.allow_update);
        assert_eq!(e.describe_table("t").expect("describe").def.options, o);
        let bad_ttl = TableOptionsUpdate {
            time_to_live: Some(5),
            ..Default::default()
        };
        assert_eq!(code_of(e.update_table("t", bad_ttl)), "OTSParameterInvalid");

        e.delete_table("t").expect("delete");
        let not_exist = (
            404,
            "OTSObjectNotExist".to_owned(),
            "Requested table does not exist.".to_owned(),
        );
        assert_eq!(err_of(e.describe_table("t")), not_exist);
        assert_eq!(err_of(e.delete_table("t")), not_exist);
        assert_eq!(
            err_of(e.update_table("t", TableOptionsUpdate::default())),
            not_exist
        );
        assert_eq!(
            err_of(e.get_row("t", &key("a", 1), &ReadOptions::default())),
            not_exist
        );
        assert_eq!(e.list_tables().expect("list"), vec!["a_first"]);
    }

    #[tokio::test]
    async fn deleted_table_loses_rows() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        write1(&e, put_op(key("a", 1), vec![Cell::new("c", 1i64)]))
            .await
            .expect("put");
        e.delete_table("t").expect("delete");
        assert_eq!(
            code_of(write1(&e, put_op(key("a", 1), vec![Cell::new("c", 1i64)])).await),
            "OTSObjectNotExist"
        );
        e.create_table(def_t()).expect("create");
        assert_eq!(get(&e, &key("a", 1)), None);
    }

    #[test]
    fn table_quota() {
        let dir = TempDir::new().expect("tempdir");
        let e = Engine::open(
            dir.path(),
            EngineOptions {
                max_tables: 2,
                cache_bytes: 1 << 20,
            },
        )
        .expect("open");
        for name in ["a", "b"] {
            let mut d = def_t();
            d.name = name.into();
            e.create_table(d).expect("create");
        }
        let mut d = def_t();
        d.name = "c".into();
        assert_eq!(
            err_of(e.create_table(d.clone())),
            (
                403,
                "OTSQuotaExhausted".into(),
                "Number of tables exceeded the quota.".into()
            )
        );
        e.delete_table("a").expect("delete");
        e.create_table(d).expect("create after delete");
    }

    // ------------------------------------------------------------------ write validation

    #[tokio::test]
    async fn write_pk_validation() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let c = || vec![Cell::new("c", 1i64)];
        let r = write1(&e, put_op(PrimaryKey::new().with("pk", "a"), c())).await;
        assert_eq!(
            err_of(r),
            (
                400,
                "OTSInvalidPK".into(),
                "Validate PK size fail. Input: 1, Meta: 2.".into()
            )
        );
        let r = write1(
            &e,
            put_op(PrimaryKey::new().with("pk", "a").with("m", 1i64), c()),
        )
        .await;
        assert_eq!(err_of(r).2, "Validate PK name fail. Input: m, Meta: n.");
        let r = write1(
            &e,
            put_op(PrimaryKey::new().with("pk", 1i64).with("n", 1i64), c()),
        )
        .await;
        assert_eq!(
            err_of(r),
            (
                400,
                "OTSInvalidPK".into(),
                "Validate PK type fail. Input: INTEGER, Meta: STRING.".into()
            )
        );
        for inf in [PkValue::InfMin, PkValue::InfMax, PkValue::AutoIncrement] {
            let pk = pkv(&[("pk", "a".into()), ("n", inf)]);
            assert_eq!(
                code_of(write1(&e, put_op(pk, c())).await),
                "OTSParameterInvalid"
            );
        }
        let long = "x".repeat(1025);
        let r = write1(&e, put_op(key(&long, 1), c())).await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let ok = "x".repeat(1024);
        write1(&e, put_op(key(&ok, 1), c()))
            .await
            .expect("1024-byte PK");
        let r = write1(&e, op("nope", RowChange::Delete(key("a", 1)))).await;
        assert_eq!(code_of(r), "OTSObjectNotExist");
        // Reads check the key the same way.
        let r = e.get_row(
            "t",
            &PrimaryKey::new().with("pk", "a"),
            &ReadOptions::default(),
        );
        assert_eq!(code_of(r), "OTSInvalidPK");
        let r = e.get_row(
            "t",
            &pkv(&[("pk", "a".into()), ("n", PkValue::InfMax)]),
            &ReadOptions::default(),
        );
        assert_eq!(code_of(r), "OTSParameterInvalid");
    }

    #[tokio::test]
    async fn write_attribute_validation() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let k = || key("a", 1);
        let r = write1(&e, put_op(k(), vec![Cell::new("bad-name", 1i64)])).await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let r = write1(&e, put_op(k(), vec![Cell::new("n", 1i64)])).await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let big = "x".repeat(MAX_ATTR_VALUE_BYTES + 1);
        let r = write1(&e, put_op(k(), vec![Cell::new("c", big.as_str())])).await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let r = write1(
            &e,
            put_op(
                k(),
                vec![Cell::new("c", vec![0u8; MAX_ATTR_VALUE_BYTES + 1])],
            ),
        )
        .await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        write1(&e, put_op(k(), vec![Cell::new("c", &big[1..])]))
            .await
            .expect("2 MiB value");
        let many: Vec<Cell> = (0..1025)
            .map(|i| Cell::new(format!("c{i}"), 1i64))
            .collect();
        let r = write1(&e, put_op(k(), many.clone())).await;
        assert_eq!(err_of(r).0, 400);
        let r = write1(&e, put_op(k(), many.clone())).await;
        assert_eq!(code_of(r), "OTSOutOfColumnCountLimit");
        write1(&e, put_op(k(), many[..1024].to_vec()))
            .await
            .expect("1024 columns");
        let ops: Vec<CellOp> = many.into_iter().map(CellOp::Put).collect();
        let r = write1(&e, update_op(k(), ops)).await;
        assert_eq!(code_of(r), "OTSOutOfColumnCountLimit");
        let r = write1(&e, update_op(k(), vec![])).await;
        assert_eq!(err_of(r).2, "Attribute column is missing.");

        // Timestamps: within ±deviation (default 1 day) of now.
        let now = now_ms();
        let day = 86_400_000;
        for (ts, ok) in [
            (now - day - 60_000, false),
            (now + day + 60_000, false),
            (-1, false),
            (now - day + 60_000, true),
            (now + day - 60_000, true),
        ] {
            let r = write1(&e, put_op(k(), vec![Cell::new("c", 1i64).at(ts)])).await;
            assert_eq!(r.is_ok(), ok, "ts {ts}: {r:?}");
        }
        let r = write1(
            &e,
            update_op(
                k(),
                vec![CellOp::Put(Cell::new("c", 1i64).at(now - 2 * day))],
            ),
        )
        .await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
    }

    #[tokio::test]
    async fn allow_update_false_rejects_update_row() {
        let (_d, e) = setup();
        let mut d = def_t();
        d.options.allow_update = false;
        e.create_table(d).expect("create");
        let r = write1(
            &e,
            update_op(key("a", 1), vec![CellOp::Put(Cell::new("c", 1i64))]),
        )
        .await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        write1(&e, put_op(key("a", 1), vec![Cell::new("c", 1i64)]))
            .await
            .expect("put still allowed");
        e.update_table(
            "t",
            TableOptionsUpdate {
                allow_update: Some(true),
                ..Default::default()
            },
        )
        .expect("update");
        write1(
            &e,
            update_op(key("a", 1), vec![CellOp::Put(Cell::new("c", 2i64))]),
        )
        .await
        .expect("update now allowed");
    }

    // ------------------------------------------------------------------ write semantics

    #[tokio::test]
    async fn put_replaces_the_row() {
        let (_d, e) = setup();
        let mut d = def_t();
        d.options.max_versions = 5;
        e.create_table(d).expect("create");
        let k = key("a", 1);
        write1(
            &e,
            put_op(k.clone(), vec![Cell::new("a", 1i64), Cell::new("b", "x")]),
        )
        .await
        .expect("put");
        write1(&e, put_op(k.clone(), vec![Cell::new("c", true)]))
            .await
            .expect("put");
        let row = get_all_versions(&e, &k).expect("row");
        assert_eq!(row.primary_key, k);
        assert_eq!(values(&row), vec![("c".into(), Value::Boolean(true))]);
        assert!(row.cells[0].timestamp.is_some());
        // A PUT without attribute columns replaces the row with a key-only row (attribute
        // columns are optional; a MySQL table of key columns only migrates to such rows).
        write1(&e, put_op(k.clone(), vec![])).await.expect("put");
        assert_eq!(get(&e, &k).map(|r| r.cells), Some(vec![]));
        // Several versions of one column in one PUT; a repeated timestamp keeps the last value.
        let now = now_ms();
        write1(
            &e,
            put_op(
                k.clone(),
                vec![
                    Cell::new("v", 1i64).at(now - 3),
                    Cell::new("v", 2i64).at(now - 1),
                    Cell::new("v", 3i64).at(now - 2),
                    Cell::new("v", 4i64).at(now - 1),
                ],
            ),
        )
        .await
        .expect("put");
        let row = get_all_versions(&e, &k).expect("row");
        let got: Vec<_> = row
            .cells
            .iter()
            .map(|c| (c.timestamp, c.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(now - 1), Value::Integer(4)),
                (Some(now - 2), Value::Integer(3)),
                (Some(now - 3), Value::Integer(1)),
            ]
        );
    }

    #[tokio::test]
    async fn update_operations() {
        let (_d, e) = setup();
        let mut d = def_t();
        d.options.max_versions = 3;
        e.create_table(d).expect("create");
        let k = key("a", 1);
        let now = now_ms();
        // Creates the row.
        write1(
            &e,
            update_op(
                k.clone(),
                vec![
                    CellOp::Put(Cell::new("v", 1i64).at(now - 10)),
                    CellOp::Put(Cell::new("v", 2i64).at(now - 9)),
                    CellOp::Put(Cell::new("w", "x").at(now - 9)),
                ],
            ),
        )
        .await
        .expect("update");
        // Same timestamp replaces; more than max_versions drops the oldest.
        write1(
            &e,
            update_op(
                k.clone(),
                vec![
                    CellOp::Put(Cell::new("v", 20i64).at(now - 9)),
                    CellOp::Put(Cell::new("v", 3i64).at(now - 8)),
                    CellOp::Put(Cell::new("v", 4i64).at(now - 7)),
                ],
            ),
        )
        .await
        .expect("update");
        let row = get_all_versions(&e, &k).expect("row");
        assert_eq!(
            values(&row),
            vec![
                ("v".into(), Value::Integer(4)),
                ("v".into(), Value::Integer(3)),
                ("v".into(), Value::Integer(20)),
                ("w".into(), Value::String("x".into())),
            ]
        );
        write1(
            &e,
            update_op(
                k.clone(),
                vec![CellOp::DeleteOneVersion {
                    name: "v".into(),
                    timestamp: now - 8,
                }],
            ),
        )
        .await
        .expect("delete one version");
        let row = get_all_versions(&e, &k).expect("row");
        assert_eq!(row.cells.iter().filter(|c| c.name == "v").count(), 2);
        write1(
            &e,
            update_op(
                k.clone(),
                vec![CellOp::DeleteAllVersions { name: "v".into() }],
            ),
        )
        .await
        .expect("delete all versions");
        let row = get_all_versions(&e, &k).expect("row");
        assert_eq!(values(&row), vec![("w".into(), Value::String("x".into()))]);
        // Removing the last column removes the row.
        write1(
            &e,
            update_op(
                k.clone(),
                vec![CellOp::DeleteAllVersions { name: "w".into() }],
            ),
        )
        .await
        .expect("delete all versions");
        assert_eq!(get(&e, &k), None);
        // An update that only deletes on a missing row leaves it missing.
        write1(
            &e,
            update_op(
                k.clone(),
                vec![CellOp::DeleteAllVersions { name: "w".into() }],
            ),
        )
        .await
        .expect("delete on missing row");
        assert_eq!(get(&e, &k), None);
        // Attribute columns are optional: a key-only PutRow makes a row that exists.
        write1(&e, put_op(k.clone(), vec![]))
            .await
            .expect("key-only put");
        let row = get(&e, &k).expect("a key-only row exists");
        assert!(row.cells.is_empty());
        assert_eq!(row.primary_key, k);
        let (keys, _) = read_all(
            &e,
            range(Direction::Forward, min_max(true), min_max(false), None),
        );
        assert_eq!(keys.len(), 1, "a key-only row is in ranges too");
    }

    #[tokio::test]
    async fn increments() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let k = key("a", 1);
        let inc = |name: &str, delta: i64| CellOp::Increment {
            name: name.into(),
            delta,
        };
        let mut o = update_op(k.clone(), vec![inc("c", 5)]);
        o.return_pk = true;
        o.return_columns = vec!["c".into()];
        let out = write1(&e, o.clone()).await.expect("increment missing");
        let ret = out.returned.expect("returned");
        assert_eq!(ret.primary_key, k);
        assert_eq!(values(&ret), vec![("c".into(), Value::Integer(5))]);
        let out = write1(&e, o).await.expect("increment");
        assert_eq!(
            out.returned.and_then(|r| r.get("c").cloned()),
            Some(Value::Integer(10))
        );
        write1(&e, update_op(k.clone(), vec![inc("c", -30)]))
            .await
            .expect("negative");
        assert_eq!(
            get(&e, &k).and_then(|r| r.get("c").cloned()),
            Some(Value::Integer(-20))
        );

        write1(
            &e,
            update_op(k.clone(), vec![CellOp::Put(Cell::new("s", "x"))]),
        )
        .await
        .expect("put");
        assert_eq!(
            code_of(write1(&e, update_op(k.clone(), vec![inc("s", 1)])).await),
            "OTSParameterInvalid"
        );
        write1(
            &e,
            update_op(k.clone(), vec![CellOp::Put(Cell::new("m", i64::MAX))]),
        )
        .await
        .expect("put");
        assert_eq!(
            code_of(write1(&e, update_op(k.clone(), vec![inc("m", 1)])).await),
            "OTSParameterInvalid"
        );
        for ops in [
            vec![inc("x", 1), CellOp::Put(Cell::new("x", 1i64))],
            vec![CellOp::Put(Cell::new("x", 1i64)), inc("x", 1)],
            vec![CellOp::DeleteAllVersions { name: "x".into() }, inc("x", 1)],
            vec![inc("x", 1), inc("x", 1)],
        ] {
            assert_eq!(
                code_of(write1(&e, update_op(k.clone(), ops)).await),
                "OTSParameterInvalid"
            );
        }
        // A failed op leaves the row untouched.
        assert_eq!(
            get(&e, &k).and_then(|r| r.get("c").cloned()),
            Some(Value::Integer(-20))
        );
        write1(&e, update_op(k.clone(), vec![inc("x", 1), inc("y", 2)]))
            .await
            .expect("two columns");
    }

    #[tokio::test]
    async fn conditions() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let k = key("a", 1);
        let with = |mut o: WriteOp, c: Condition| {
            o.condition = c;
            o
        };
        let put = || put_op(key("a", 1), vec![Cell::new("c", 5i64)]);
        let r = write1(
            &e,
            with(put(), Condition::expect(RowExistence::ExpectExist)),
        )
        .await;
        assert_eq!(
            err_of(r),
            (
                403,
                "OTSConditionCheckFail".into(),
                "Condition check failed.".into()
            )
        );
        write1(
            &e,
            with(put(), Condition::expect(RowExistence::ExpectNotExist)),
        )
        .await
        .expect("not exist");
        let r = write1(
            &e,
            with(put(), Condition::expect(RowExistence::ExpectNotExist)),
        )
        .await;
        assert_eq!(code_of(r), "OTSConditionCheckFail");
        write1(
            &e,
            with(put(), Condition::expect(RowExistence::ExpectExist)),
        )
        .await
        .expect("exist");

        let single = |cmp, v: i64, pass| ColumnCondition::Single {
            column: "c".into(),
            comparator: cmp,
            value: Value::Integer(v),
            pass_if_missing: pass,
            latest_version_only: true,
        };
        let upd = || update_op(key("a", 1), vec![CellOp::Put(Cell::new("d", 1i64))]);
        let c = Condition::ignore().with_column(single(Comparator::GreaterThan, 5, false));
        assert_eq!(
            code_of(write1(&e, with(upd(), c)).await),
            "OTSConditionCheckFail"
        );
        let c = Condition::expect(RowExistence::ExpectExist).with_column(single(
            Comparator::Equal,
            5,
            false,
        ));
        write1(&e, with(upd(), c))
            .await
            .expect("column condition passes");
        // Different type never matches.
        let c = Condition::ignore().with_column(ColumnCondition::Single {
            column: "c".into(),
            comparator: Comparator::NotEqual,
            value: Value::String("5".into()),
            pass_if_missing: true,
            latest_version_only: true,
        });
        assert_eq!(
            code_of(write1(&e, with(upd(), c)).await),
            "OTSConditionCheckFail"
        );
        // Missing row: columns are missing.
        let missing = || update_op(key("b", 1), vec![CellOp::Put(Cell::new("d", 1i64))]);
        let c = Condition::ignore().with_column(single(Comparator::Equal, 5, false));
        assert_eq!(
            code_of(write1(&e, with(missing(), c)).await),
            "OTSConditionCheckFail"
        );
        let c = Condition::ignore().with_column(single(Comparator::Equal, 5, true));
        write1(&e, with(missing(), c))
            .await
            .expect("pass if missing");
        // Invalid composite fails even for a missing row.
        let c = Condition::ignore().with_column(ColumnCondition::Composite {
            op: tablestore::row::LogicalOp::Not,
            conditions: vec![],
        });
        assert_eq!(
            code_of(write1(&e, with(missing(), c)).await),
            "OTSParameterInvalid"
        );
        // Conditional delete.
        let del = || op("t", RowChange::Delete(key("a", 1)));
        let c = Condition::expect(RowExistence::ExpectExist).with_column(single(
            Comparator::LessThan,
            5,
            false,
        ));
        assert_eq!(
            code_of(write1(&e, with(del(), c)).await),
            "OTSConditionCheckFail"
        );
        write1(
            &e,
            with(del(), Condition::expect(RowExistence::ExpectExist)),
        )
        .await
        .expect("delete");
        assert_eq!(get(&e, &k), None);
        let r = write1(
            &e,
            with(del(), Condition::expect(RowExistence::ExpectExist)),
        )
        .await;
        assert_eq!(code_of(r), "OTSConditionCheckFail");
        write1(&e, del())
            .await
            .expect("delete of a missing row is fine");
    }

    #[tokio::test]
    async fn ops_apply_in_order_and_fail_alone() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let inc = |delta| CellOp::Increment {
            name: "c".into(),
            delta,
        };
        let mut expect_exist = update_op(key("a", 1), vec![inc(100)]);
        expect_exist.condition = Condition::expect(RowExistence::ExpectExist);
        let results = e
            .write(vec![
                put_op(key("a", 1), vec![Cell::new("c", 1i64)]),
                update_op(key("a", 1), vec![inc(2)]),
                put_op(PrimaryKey::new().with("pk", "a"), vec![]),
                op("missing", RowChange::Delete(key("a", 1))),
                update_op(key("a", 1), vec![inc(3)]),
                op("t", RowChange::Delete(key("b", 1))),
                expect_exist,
            ])
            .await;
        let codes: Vec<Option<String>> = results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.code.clone()))
            .collect();
        assert_eq!(
            codes,
            vec![
                None,
                None,
                Some("OTSInvalidPK".into()),
                Some("OTSObjectNotExist".into()),
                None,
                None,
                None
            ]
        );
        assert_eq!(
            get(&e, &key("a", 1)).and_then(|r| r.get("c").cloned()),
            Some(Value::Integer(106))
        );
        assert!(e.write(vec![]).await.is_empty());
    }

    #[tokio::test]
    async fn auto_increment() {
        let dir = TempDir::new().expect("tempdir");
        let mut d = TableDef::new(
            "t",
            vec![
                PkSchema::new("pk", PkType::String),
                PkSchema::new("n", PkType::Integer),
            ],
        );
        d.primary_key[1].auto_increment = true;
        let auto_pk = || pkv(&[("pk", "a".into()), ("n", PkValue::AutoIncrement)]);
        let put = |pk: PrimaryKey| {
            let mut o = put_op(pk, vec![Cell::new("c", 1i64)]);
            o.return_pk = true;
            o
        };
        let mut seen = Vec::new();
        {
            let e = open(&dir);
            e.create_table(d).expect("create");
            let results = e.write((0..5).map(|_| put(auto_pk())).collect()).await;
            for r in results {
                let pk = r.expect("put").returned.expect("returned").primary_key;
                match &pk.0[1].value {
                    PkValue::Integer(i) => seen.push(*i),
                    other => panic!("not generated: {other:?}"),
                }
                assert!(get(&e, &pk).is_some());
            }
            // An explicit value on PUT, or the placeholder elsewhere, is refused.
            assert_eq!(
                code_of(write1(&e, put(key("a", 7))).await),
                "OTSParameterInvalid"
            );
            let r = write1(&e, op("t", RowChange::Delete(auto_pk()))).await;
            assert_eq!(code_of(r), "OTSParameterInvalid");
            let r = e.get_row("t", &auto_pk(), &ReadOptions::default());
            assert_eq!(code_of(r), "OTSParameterInvalid");
            // Updates and deletes address generated rows by value.
            let k = key("a", seen[0]);
            write1(
                &e,
                update_op(k.clone(), vec![CellOp::Put(Cell::new("d", 2i64))]),
            )
            .await
            .expect("update by value");
            write1(&e, op("t", RowChange::Delete(k.clone())))
                .await
                .expect("delete");
            assert_eq!(get(&e, &k), None);
        }
        // The counter survives a restart.
        let e = open(&dir);
        let r = write1(&e, put(auto_pk())).await.expect("put");
        match r.returned.map(|r| r.primary_key.0[1].value.clone()) {
            Some(PkValue::Integer(i)) => seen.push(i),
            other => panic!("not generated: {other:?}"),
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }

    // ------------------------------------------------------------------ reads

    #[tokio::test]
    async fn read_selection() {
        let (_d, e) = setup();
        let mut d = def_t();
        d.options.max_versions = 10;
        e.create_table(d).expect("create");
        let k = key("a", 1);
        let now = now_ms();
        let cells = vec![
            Cell::new("z", 1i64).at(now - 3),
            Cell::new("z", 2i64).at(now - 2),
            Cell::new("z", 3i64).at(now - 1),
            Cell::new("b", "x").at(now - 2),
            Cell::new("m", 1.5).at(now - 5),
        ];
        write1(&e, put_op(k.clone(), cells)).await.expect("put");
        let read = |r: ReadOptions| e.get_row("t", &k, &r);
        // Default: newest version of every column, sorted by name, with timestamps.
        let row = read(ReadOptions::default()).expect("read").expect("row");
        assert_eq!(
            row.cells,
            vec![
                Cell::new("b", "x").at(now - 2),
                Cell::new("m", 1.5).at(now - 5),
                Cell::new("z", 3i64).at(now - 1),
            ]
        );
        let row = read(ReadOptions {
            columns_to_get: vec!["z".into(), "pk".into()],
            max_versions: Some(2),
            ..Default::default()
        })
        .expect("read")
        .expect("row");
        assert_eq!(
            row.cells,
            vec![
                Cell::new("z", 3i64).at(now - 1),
                Cell::new("z", 2i64).at(now - 2)
            ]
        );
        // Only PK columns: the row with no cells.
        let row = read(ReadOptions {
            columns_to_get: vec!["n".into()],
            ..Default::default()
        })
        .expect("read")
        .expect("row");
        assert!(row.cells.is_empty());
        assert_eq!(row.primary_key, k);
        // Only absent columns: nothing.
        let r = read(ReadOptions {
            columns_to_get: vec!["nope".into()],
            ..Default::default()
        });
        assert_eq!(r.expect("read"), None);
        // Time ranges.
        let row = read(ReadOptions {
            time_range: Some(TimeRange::Between {
                start: now - 3,
                end: now - 1,
            }),
            ..Default::default()
        })
        .expect("read")
        .expect("row");
        assert_eq!(
            row.cells,
            vec![
                Cell::new("b", "x").at(now - 2),
                Cell::new("z", 2i64).at(now - 2),
                Cell::new("z", 1i64).at(now - 3),
            ]
        );
        let row = read(ReadOptions {
            time_range: Some(TimeRange::Specific(now - 5)),
            ..Default::default()
        })
        .expect("read")
        .expect("row");
        assert_eq!(row.cells, vec![Cell::new("m", 1.5).at(now - 5)]);
        let r = read(ReadOptions {
            time_range: Some(TimeRange::Specific(now - 100)),
            ..Default::default()
        });
        assert_eq!(r.expect("read"), None);
        // Limits.
        let r = read(ReadOptions {
            columns_to_get: (0..129).map(|i| format!("c{i}")).collect(),
            ..Default::default()
        });
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let r = read(ReadOptions {
            max_versions: Some(0),
            ..Default::default()
        });
        assert_eq!(code_of(r), "OTSParameterInvalid");
        // Missing row.
        assert_eq!(get(&e, &key("zz", 1)), None);
    }

    #[tokio::test]
    async fn read_filter() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let k = key("a", 1);
        write1(
            &e,
            put_op(k.clone(), vec![Cell::new("c", 5i64), Cell::new("d", "x")]),
        )
        .await
        .expect("put");
        let filter = |v: i64| ColumnCondition::Single {
            column: "c".into(),
            comparator: Comparator::Equal,
            value: Value::Integer(v),
            pass_if_missing: false,
            latest_version_only: true,
        };
        let read = |f, cols: Vec<&str>| {
            e.get_row(
                "t",
                &k,
                &ReadOptions {
                    filter: Some(f),
                    columns_to_get: cols.into_iter().map(String::from).collect(),
                    ..Default::default()
                },
            )
            .expect("read")
        };
        assert!(read(filter(5), vec![]).is_some());
        assert!(read(filter(6), vec![]).is_none());
        // The filter sees the columns read: "c" not read counts as missing.
        assert!(read(filter(5), vec!["d"]).is_none());
        assert!(read(filter(5), vec!["c", "d"]).is_some());
    }

    #[tokio::test]
    async fn ttl_hides_expired_cells() {
        let (_d, e) = setup();
        let mut d = def_t();
        d.options.deviation_cell_version_in_sec = 10 * 86400;
        e.create_table(d).expect("create");
        let k = key("a", 1);
        let now = now_ms();
        write1(
            &e,
            put_op(
                k.clone(),
                vec![
                    Cell::new("old", 1i64).at(now - 2 * 86_400_000),
                    Cell::new("new", 2i64),
                ],
            ),
        )
        .await
        .expect("put");
        assert_eq!(get(&e, &k).map(|r| r.cells.len()), Some(2));
        e.update_table(
            "t",
            TableOptionsUpdate {
                time_to_live: Some(86400),
                ..Default::default()
            },
        )
        .expect("ttl");
        let row = get(&e, &k).expect("row");
        assert_eq!(values(&row), vec![("new".into(), Value::Integer(2))]);
        // Writes older than the TTL are refused now.
        let r = write1(
            &e,
            put_op(
                k.clone(),
                vec![Cell::new("x", 1i64).at(now - 2 * 86_400_000)],
            ),
        )
        .await;
        assert_eq!(code_of(r), "OTSParameterInvalid");
        // A row whose cells all expired does not exist.
        let k2 = key("b", 1);
        e.update_table(
            "t",
            TableOptionsUpdate {
                time_to_live: Some(-1),
                ..Default::default()
            },
        )
        .expect("ttl off");
        write1(
            &e,
            put_op(
                k2.clone(),
                vec![Cell::new("old", 1i64).at(now - 2 * 86_400_000)],
            ),
        )
        .await
        .expect("put");
        e.update_table(
            "t",
            TableOptionsUpdate {
                time_to_live: Some(86400),
                ..Default::default()
            },
        )
        .expect("ttl");
        assert_eq!(get(&e, &k2), None);
        let mut cond = put_op(k2.clone(), vec![Cell::new("x", 1i64)]);
        cond.condition = Condition::expect(RowExistence::ExpectNotExist);
        write1(&e, cond).await.expect("expired row does not exist");
    }

    // ------------------------------------------------------------------ ranges

    /// Rows ("k0".."k{s-1}") × (0..n).
    async fn fill(e: &Engine, strings: usize, ints: i64) {
        let mut ops = Vec::new();
        for s in 0..strings {
            for n in 0..ints {
                ops.push(put_op(
                    key(&format!("k{s}"), n - ints / 2),
                    vec![Cell::new("v", (s as i64) * 1000 + n)],
                ));
            }
        }
        for chunk in ops.chunks(200) {
            for r in e.write(chunk.to_vec()).await {
                r.expect("put");
            }
        }
    }

    fn range(
        dir: Direction,
        start: PrimaryKey,
        end: PrimaryKey,
        limit: Option<i32>,
    ) -> RangeRequest {
        RangeRequest {
            direction: dir,
            start,
            end,
            limit,
            read: ReadOptions::default(),
        }
    }

    fn min_max(min: bool) -> PrimaryKey {
        let v = if min {
            PkValue::InfMin
        } else {
            PkValue::InfMax
        };
        pkv(&[("pk", v.clone()), ("n", v)])
    }

    /// Reads the whole range page by page.
    fn read_all(e: &Engine, mut req: RangeRequest) -> (Vec<PrimaryKey>, usize) {
        let mut keys = Vec::new();
        let mut pages = 0;
        loop {
            let page = e.get_range("t", &req).expect("range");
            pages += 1;
            keys.extend(page.rows.into_iter().map(|r| r.primary_key));
            match page.next_start {
                Some(n) => req.start = n,
                None => return (keys, pages),
            }
        }
    }

    #[tokio::test]
    async fn range_paging_composite_keys() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        fill(&e, 5, 6).await; // k0..k4 × -3..2
        let mut all = Vec::new();
        for s in 0..5 {
            for n in -3..3 {
                all.push(key(&format!("k{s}"), n));
            }
        }
        // Forward, INF bounds, pages of 7.
        let (keys, pages) = read_all(
            &e,
            range(Direction::Forward, min_max(true), min_max(false), Some(7)),
        );
        assert_eq!(keys, all);
        assert_eq!(pages, 5); // 30 rows / 7 = 4 full pages + 1
                              // Exactly filling the last page: no next_start.
        let page = e
            .get_range(
                "t",
                &range(Direction::Forward, min_max(true), min_max(false), Some(30)),
            )
            .expect("range");
        assert_eq!(page.rows.len(), 30);
        assert_eq!(page.next_start, None);
        let page = e
            .get_range(
                "t",
                &range(Direction::Forward, min_max(true), min_max(false), Some(29)),
            )
            .expect("range");
        assert_eq!(page.next_start, Some(key("k4", 2)));
        // Backward.
        let (keys, _) = read_all(
            &e,
            range(Direction::Backward, min_max(false), min_max(true), Some(4)),
        );
        let mut rev = all.clone();
        rev.reverse();
        assert_eq!(keys, rev);
        // INF in the second column: all of k1 and k2.
        let start = pkv(&[("pk", "k1".into()), ("n", PkValue::InfMin)]);
        let end = pkv(&[("pk", "k2".into()), ("n", PkValue::InfMax)]);
        let (keys, _) = read_all(
            &e,
            range(Direction::Forward, start.clone(), end.clone(), Some(5)),
        );
        assert_eq!(keys, all[6..18].to_vec());
        let (keys, _) = read_all(&e, range(Direction::Backward, end, start, Some(5)));
        assert_eq!(keys, all[6..18].iter().rev().cloned().collect::<Vec<_>>());
        // Real-key bounds: start inclusive, end exclusive (both directions).
        let (keys, _) = read_all(
            &e,
            range(Direction::Forward, key("k1", 0), key("k2", -2), None),
        );
        assert_eq!(keys, all[9..13].to_vec());
        let (keys, _) = read_all(
            &e,
            range(Direction::Backward, key("k2", -2), key("k1", 0), None),
        );
        assert_eq!(keys, all[10..14].iter().rev().cloned().collect::<Vec<_>>());
        // Rows carry their cells.
        let page = e
            .get_range(
                "t",
                &range(Direction::Forward, key("k3", 1), key("k3", 2), None),
            )
            .expect("range");
        assert_eq!(page.rows.len(), 1);
        assert_eq!(page.rows[0].get("v"), Some(&Value::Integer(3004)));
        // An empty table range.
        let page = e
            .get_range(
                "t",
                &range(Direction::Forward, key("x", 0), min_max(false), None),
            )
            .expect("range");
        assert_eq!(page, RangePage::default());
    }

    #[tokio::test]
    async fn range_validation() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let r = e.get_range(
            "t",
            &range(Direction::Forward, key("b", 1), key("a", 1), None),
        );
        assert_eq!(
            err_of(r),
            (
                400,
                "OTSParameterInvalid".into(),
                "Begin key must less than end key in FORWARD".into()
            )
        );
        let r = e.get_range(
            "t",
            &range(Direction::Forward, key("a", 1), key("a", 1), None),
        );
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let r = e.get_range(
            "t",
            &range(Direction::Backward, key("a", 1), key("b", 1), None),
        );
        assert_eq!(err_of(r).2, "Begin key must more than end key in BACKWARD");
        let r = e.get_range(
            "t",
            &range(Direction::Forward, key("a", 1), key("b", 1), Some(0)),
        );
        assert_eq!(code_of(r), "OTSParameterInvalid");
        let short = PrimaryKey(vec![PkColumn {
            name: "pk".into(),
            value: PkValue::InfMin,
        }]);
        let r = e.get_range("t", &range(Direction::Forward, short, min_max(false), None));
        assert_eq!(err_of(r).2, "Validate PK size fail. Input: 1, Meta: 2.");
        let wrong = pkv(&[("pk", PkValue::InfMin), ("x", PkValue::InfMin)]);
        let r = e.get_range("t", &range(Direction::Forward, wrong, min_max(false), None));
        assert_eq!(code_of(r), "OTSInvalidPK");
        let r = e.get_range(
            "nope",
            &range(Direction::Forward, min_max(true), min_max(false), None),
        );
        assert_eq!(code_of(r), "OTSObjectNotExist");
    }

    #[tokio::test]
    async fn range_page_bounds() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        // 5200 rows: one page stops at 5000.
        fill(&e, 2, 2600).await;
        let page = e
            .get_range(
                "t",
                &range(Direction::Forward, min_max(true), min_max(false), None),
            )
            .expect("range");
        assert_eq!(page.rows.len(), RANGE_MAX_ROWS);
        assert_eq!(page.next_start, Some(key("k1", 2400 - 1300)));
        let (keys, pages) = read_all(
            &e,
            range(Direction::Forward, min_max(true), min_max(false), None),
        );
        assert_eq!((keys.len(), pages), (5200, 2));
        // A filter that matches little: scanning still stops at 5000 rows, possibly empty pages.
        let mut req = range(Direction::Forward, min_max(true), min_max(false), None);
        req.read.filter = Some(ColumnCondition::Single {
            column: "v".into(),
            comparator: Comparator::Equal,
            value: Value::Integer(1000 + 2599),
            pass_if_missing: false,
            latest_version_only: true,
        });
        let page = e.get_range("t", &req).expect("range");
        assert!(page.rows.is_empty());
        assert_eq!(page.next_start, Some(key("k1", 2400 - 1300)));
        let (keys, pages) = read_all(&e, req);
        assert_eq!((keys, pages), (vec![key("k1", 1299)], 2));
    }

    #[tokio::test]
    async fn range_byte_bound() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let blob = "x".repeat(200 * 1024);
        let ops: Vec<WriteOp> = (0..30)
            .map(|i| put_op(key("a", i), vec![Cell::new("b", blob.as_str())]))
            .collect();
        for r in e.write(ops).await {
            r.expect("put");
        }
        let page = e
            .get_range(
                "t",
                &range(Direction::Forward, min_max(true), min_max(false), None),
            )
            .expect("range");
        // ~4 MB: the page stops after the row that crosses 4 MiB.
        assert_eq!(page.rows.len(), 21);
        assert_eq!(page.next_start, Some(key("a", 21)));
        let (keys, _) = read_all(
            &e,
            range(Direction::Forward, min_max(true), min_max(false), None),
        );
        assert_eq!(keys.len(), 30);
    }

    // ------------------------------------------------------------------ durability, concurrency

    #[tokio::test]
    async fn survives_reopen() {
        let dir = TempDir::new().expect("tempdir");
        let mut d = def_t();
        d.options.max_versions = 2;
        d.defined_columns = vec![("c".into(), DefinedColumnType::String)];
        {
            let e = open(&dir);
            e.create_table(d.clone()).expect("create");
            write1(
                &e,
                put_op(
                    key("a", 1),
                    vec![Cell::new("c", "v1").at(now_ms() - 5), Cell::new("c", "v2")],
                ),
            )
            .await
            .expect("put");
            write1(&e, put_op(key("b", 2), vec![Cell::new("x", 2i64)]))
                .await
                .expect("put");
            write1(&e, op("t", RowChange::Delete(key("b", 2))))
                .await
                .expect("delete");
        }
        let e = open(&dir);
        assert_eq!(e.describe_table("t").expect("describe").def, d);
        let row = get_all_versions(&e, &key("a", 1)).expect("row");
        assert_eq!(
            values(&row),
            vec![
                ("c".into(), Value::String("v2".into())),
                ("c".into(), Value::String("v1".into()))
            ]
        );
        assert_eq!(get(&e, &key("b", 2)), None);
    }

    /// A blind update naming distinct columns is written as if the row were new and merged
    /// when it was not (one tree walk for new rows): the result, durable across a reopen, is
    /// the merge, for rows stored inline and in the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blind_update_of_an_existing_row_merges() {
        let dir = TempDir::new().expect("tempdir");
        let mut d = def_t();
        d.options.max_versions = 2;
        let big = "b".repeat(300);
        let now = now_ms();
        {
            let e = open(&dir);
            e.create_table(d).expect("create");
            for (k, keep) in [(key("small", 1), "k"), (key("big", 2), big.as_str())] {
                write1(
                    &e,
                    put_op(
                        k.clone(),
                        vec![
                            Cell::new("v", 1i64).at(now - 10),
                            Cell::new("gone", "x").at(now - 10),
                            Cell::new("keep", keep).at(now - 10),
                        ],
                    ),
                )
                .await
                .expect("put");
                write1(
                    &e,
                    update_op(
                        k,
                        vec![
                            CellOp::Put(Cell::new("v", 2i64).at(now - 5)),
                            CellOp::DeleteAllVersions {
                                name: "gone".into(),
                            },
                            CellOp::Put(Cell::new("new", 7i64).at(now - 5)),
                        ],
                    ),
                )
                .await
                .expect("update");
            }
            // A new row takes the fresh path and is just the update's columns.
            write1(
                &e,
                update_op(
                    key("fresh", 3),
                    vec![CellOp::Put(Cell::new("v", 9i64).at(now - 5))],
                ),
            )
            .await
            .expect("update");
        }
        let e = open(&dir);
        for (k, keep) in [(key("small", 1), "k"), (key("big", 2), big.as_str())] {
            let row = get_all_versions(&e, &k).expect("row");
            assert_eq!(
                values(&row),
                vec![
                    ("keep".into(), Value::String(keep.into())),
                    ("new".into(), Value::Integer(7)),
                    ("v".into(), Value::Integer(2)),
                    ("v".into(), Value::Integer(1)),
                ]
            );
        }
        let row = get_all_versions(&e, &key("fresh", 3)).expect("row");
        assert_eq!(values(&row), vec![("v".into(), Value::Integer(9))]);
    }

    const KILL9_DIR: &str = "TSMIGRATE_ENGINE_KILL9_DIR";

    /// Child half of `acknowledged_writes_survive_kill_9`: writes until killed, printing each
    /// acknowledged call.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn kill9_child() {
        let Ok(dir) = std::env::var(KILL9_DIR) else {
            return;
        };
        let e = Engine::open(Path::new(&dir), EngineOptions::default()).expect("open");
        e.create_table(def_t()).expect("create");
        let mut tasks = Vec::new();
        for w in 0..4i64 {
            let e = e.clone();
            tasks.push(tokio::spawn(async move {
                for call in 0i64.. {
                    let ops = (0..50)
                        .map(|i| {
                            let size = if i % 2 == 0 { 20 } else { 1000 };
                            put_op(
                                key(&format!("w{w}"), call * 50 + i),
                                vec![Cell::new("v", call), Cell::new("p", "x".repeat(size))],
                            )
                        })
                        .collect();
                    for r in e.write(ops).await {
                        r.expect("put");
                    }
                    println!("acked {w} {call}");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    }

    #[test]
    fn acknowledged_writes_survive_kill_9() {
        use std::io::BufRead;
        let dir = TempDir::new().expect("tempdir");
        let exe = std::env::current_exe().expect("test binary");
        let mut child = std::process::Command::new(exe)
            .args([
                "--exact",
                "engine::tests::kill9_child",
                "--ignored",
                "--nocapture",
            ])
            .env(KILL9_DIR, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut acked = [-1i64; 4];
        let mut count = 0;
        let parse = |line: &str, acked: &mut [i64; 4]| {
            let mut it = line.strip_prefix("acked ")?.split(' ');
            let w: usize = it.next()?.parse().ok()?;
            let call: i64 = it.next()?.parse().ok()?;
            acked[w] = acked[w].max(call);
            Some(())
        };
        for line in lines.by_ref() {
            if parse(&line.expect("line"), &mut acked).is_some() {
                count += 1;
                if count >= 60 {
                    break;
                }
            }
        }
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        // Acknowledgements already in the pipe count too.
        for line in lines {
            let Ok(line) = line else { break };
            parse(&line, &mut acked);
        }
        assert!(acked.iter().all(|a| *a >= 0), "{acked:?}");
        let e = open(&dir);
        for (w, last) in acked.iter().enumerate() {
            for call in 0..=*last {
                for i in [0, 1, 49] {
                    let row = get(&e, &key(&format!("w{w}"), call * 50 + i));
                    assert_eq!(
                        row.and_then(|r| r.get("v").cloned()),
                        Some(Value::Integer(call)),
                        "writer {w} call {call} row {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn open_reports_path_on_error() {
        let dir = TempDir::new().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let err = Engine::open(&file.join("sub"), EngineOptions::default())
            .err()
            .expect("error");
        assert_eq!(err.code, "OTSInternalServerError");
        assert!(err.message.contains("sub"), "{}", err.message);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_group_commit() {
        let (_d, e) = setup();
        e.create_table(def_t()).expect("create");
        let mut tasks = Vec::new();
        for w in 0..8 {
            let e = e.clone();
            tasks.push(tokio::spawn(async move {
                for call in 0..10 {
                    let ops = (0..200)
                        .map(|i| {
                            put_op(
                                key(&format!("w{w}"), call * 200 + i),
                                vec![Cell::new("v", i)],
                            )
                        })
                        .collect();
                    for r in e.write(ops).await {
                        r.expect("put");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let (keys, _) = read_all(
            &e,
            range(Direction::Forward, min_max(true), min_max(false), None),
        );
        assert_eq!(keys.len(), 8 * 10 * 200);
    }

    /// Throughput of ~1 KB PUT rows, 200-row calls, concurrent callers (keys ascending per
    /// caller, as a migration writes them; then random keys):
    /// `cargo test --release -p tsmigrate-tablestore-server --lib engine::tests::throughput -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn throughput() {
        // /tmp is on the same disk here (not tmpfs), so fsync costs are real.
        let dir = TempDir::new().expect("tempdir");
        let e = open(&dir);
        e.create_table(def_t()).expect("create");
        // CPU seconds (user + system) of this process and of its writer thread, from /proc:
        // wall-clock rates are noisy on a shared machine, CPU per row is not.
        fn cpu() -> (f64, f64) {
            let ticks = |stat: &str| -> f64 {
                let after = stat.rsplit(')').next().unwrap_or("");
                let f: Vec<&str> = after.split_whitespace().collect();
                let t: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
                    + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                t / 100.0
            };
            let process = std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| ticks(&s));
            let mut writer = 0.0;
            for t in std::fs::read_dir("/proc/self/task")
                .into_iter()
                .flatten()
                .flatten()
            {
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                if comm.trim() == "tablestore-writ" {
                    writer =
                        std::fs::read_to_string(t.path().join("stat")).map_or(0.0, |s| ticks(&s));
                }
            }
            (process, writer)
        }
        for (callers, random) in [(4usize, false), (8, false), (8, true)] {
            let calls = 200usize;
            let (cpu0, writer0) = cpu();
            let start = std::time::Instant::now();
            let mut tasks = Vec::new();
            for w in 0..callers {
                let e = e.clone();
                tasks.push(tokio::spawn(async move {
                    for call in 0..calls {
                        let ops = (0..200)
                            .map(|i| {
                                let mut n = (call * 200 + i) as i64;
                                if random {
                                    n = n.wrapping_mul(0x9E37_79B9_7F4A_7C15u64 as i64);
                                }
                                put_op(
                                    key(&format!("c{callers}{random}w{w}"), n),
                                    vec![
                                        Cell::new("payload", "p".repeat(1000)),
                                        Cell::new("id", n),
                                    ],
                                )
                            })
                            .collect();
                        for r in e.write(ops).await {
                            r.expect("put");
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.expect("task");
            }
            let rows = callers * calls * 200;
            let secs = start.elapsed().as_secs_f64();
            let (cpu1, writer1) = cpu();
            println!(
                "{callers} callers, {} keys: {rows} rows in {secs:.2}s = {:.0} rows/s; CPU per row: process {:.1} us, writer thread {:.1} us",
                if random { "random" } else { "ascending" },
                rows as f64 / secs,
                (cpu1 - cpu0) * 1e6 / rows as f64,
                (writer1 - writer0) * 1e6 / rows as f64,
            );
        }
    }
}
