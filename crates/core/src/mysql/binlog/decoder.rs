//! The transport-independent half of the reader: events in (from a replication stream or a
//! binlog file), committed transactions and the position after each out. It decides every
//! event through [`Kind::of`], so nothing is skipped that was not meant to be, and it moves the
//! position only at a transaction boundary (design invariant 2):
//!
//! - an XID, or a QUERY `COMMIT` / `ROLLBACK` (non-transactional tables log those);
//! - a QUERY that is a statement of its own (DDL: MySQL logs it after a GTID without BEGIN,
//!   MariaDB after a standalone GTID);
//! - outside a transaction, a real ROTATE (→ the new file at its position), a MariaDB
//!   GTID_LIST or BINLOG_CHECKPOINT.
//!
//! Inside a MySQL TRANSACTION_PAYLOAD (zstd) the inner events carry no usable position: the
//! transaction's end is the payload event's end. Events of artificial origin (`log_pos` 0: the
//! Rotate and FORMAT_DESCRIPTION that open a stream) never move the position.

use std::collections::HashMap;
use std::sync::Arc;

use mysql_async::binlog::events::{Event, EventData, GtidEvent, RotateEvent, TableMapEvent};
use mysql_async::binlog::BinlogChecksumAlg;

use super::events::{self, Kind, MariaGtid, QueryKind, RowsKind};
use super::image::{Layout, RowsReader};
use super::table::TableMeta;
use super::Position;

pub use super::image::Image;

/// One row change, values by column index. A column the image leaves out is `None`: the
/// hidden column of a MySQL functional index always, every non-key column under
/// `binlog_row_image=MINIMAL`. The reader does not judge that (it does not know which columns
/// are migrated); the applier refuses a change that lacks a migrated column.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub table: Arc<TableMeta>,
    pub kind: RowsKind,
    /// The row before (UPDATE, DELETE).
    pub before: Option<Image>,
    /// The row after (INSERT, UPDATE).
    pub after: Option<Image>,
}

/// A statement logged as such (DDL, or SAVEPOINT inside a transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The default database the statement ran in.
    pub schema: String,
    pub sql: String,
}

/// One committed transaction (or statement of its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// Row changes of the tables the filter accepts, in log order.
    pub changes: Vec<Change>,
    /// Statements logged as text (DDL; SAVEPOINT inside transactions).
    pub statements: Vec<Statement>,
    /// The position after this transaction: where the next read starts.
    pub end: Position,
    /// `uuid:gno` (MySQL) or `domain-server-seq` (MariaDB), when the source logs GTIDs.
    pub gtid: Option<String>,
    /// Unix seconds of the commit event (the source's clock).
    pub timestamp: u32,
}

/// What [`Decoder::feed`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Inside a transaction, or an event that does not move the position.
    Continue,
    /// A transaction ended or the position moved: a safe place to stop.
    Boundary,
}

/// Why decoding stopped. The reader turns these into `SourceError`s with the position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The log holds something the reader cannot follow; the text names the fix.
    Unsupported(String),
    /// An event does not decode.
    Corrupt(String),
}

/// Which tables' rows to decode (`database`, `table`); rows of others are counted, not read.
pub type TableFilter = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// A table id's map as last logged: its bytes (to skip decoding an identical map again) and,
/// when the filter wants the table, its decoded form.
struct Table {
    raw: Vec<u8>,
    mapped: Option<Mapped>,
}

/// A wanted table's map: its metadata and each column's layout in row images.
struct Mapped {
    meta: Arc<TableMeta>,
    layouts: Vec<Layout>,
}

/// Decodes events into transactions.
pub struct Decoder {
    file: String,
    /// The last safe position: the start, or the end of the last boundary.
    safe: Position,
    tables: HashMap<u64, Table>,
    filter: TableFilter,
    in_tx: bool,
    /// MariaDB standalone GTID: the group is one statement and ends with it.
    standalone: bool,
    /// Inside a transaction payload: the payload event's end position.
    payload_end: Option<u64>,
    current: Transaction,
    /// The next transaction's GTID (MySQL logs it before BEGIN).
    next_gtid: Option<String>,
    /// The last GTID per MariaDB replication domain, or MySQL's last `uuid:gno`.
    maria_gtids: Vec<MariaGtid>,
    last_mysql_gtid: Option<String>,
    committed: Vec<Transaction>,
    /// Events and bytes fed (payload contents not counted twice).
    pub events: u64,
    pub bytes: u64,
    pending_bytes: u64,
}

impl Decoder {
    /// Starts at `start` (the stored checkpoint).
    pub fn new(start: Position, filter: TableFilter) -> Decoder {
        Decoder {
            file: start.file.clone(),
            current: empty_transaction(&start),
            safe: start,
            tables: HashMap::new(),
            filter,
            in_tx: false,
            standalone: false,
            payload_end: None,
            next_gtid: None,
            maria_gtids: Vec::new(),
            last_mysql_gtid: None,
            committed: Vec::new(),
            events: 0,
            bytes: 0,
            pending_bytes: 0,
        }
    }

    /// The position after the last committed transaction.
    pub fn position(&self) -> &Position {
        &self.safe
    }

    /// Bytes of row events held for the open transaction (rows of filtered-out tables are
    /// not held and not counted).
    pub fn open_bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.in_tx
    }

    /// The GTID position after the last committed transaction: MySQL's last `uuid:gno`, or
    /// MariaDB's `domain-server-seq` list (one per domain), for `tsmigrate status` and failover.
    pub fn gtid_position(&self) -> Option<String> {
        if !self.maria_gtids.is_empty() {
            let list: Vec<String> = self.maria_gtids.iter().map(|g| g.to_string()).collect();
            return Some(list.join(","));
        }
        self.last_mysql_gtid.clone()
    }

    /// The committed transactions so far, in order (the decoder keeps its position).
    pub fn take(&mut self) -> Vec<Transaction> {
        std::mem::take(&mut self.committed)
    }

    /// Feeds one event. `inner` is true for the events of a transaction payload.
    pub fn feed(&mut self, ev: &Event, inner: bool) -> Result<Fed, DecodeError> {
        if !inner {
            verify_checksum(ev)?;
        }
        let h = ev.header();
        let size = u64::from(h.event_size());
        if !inner {
            self.events += 1;
            self.bytes += size;
        }
        let log_pos = u64::from(h.log_pos());
        match Kind::of(h.event_type_raw()) {
            Kind::FormatDescription
            | Kind::Heartbeat
            | Kind::Stop
            | Kind::StatementText
            | Kind::PreviousGtids => Ok(Fed::Continue),
            Kind::Refused(r) => Err(DecodeError::Unsupported(r.explain())),
            Kind::Rotate => self.rotate(ev, log_pos),
            Kind::TransactionPayload => {
                if log_pos == 0 {
                    return Err(DecodeError::Corrupt(
                        "a transaction payload event without a position".into(),
                    ));
                }
                self.payload_end = Some(log_pos);
                Ok(Fed::Continue)
            }
            Kind::MysqlGtid => {
                self.next_gtid = match ev.read_event::<GtidEvent>() {
                    Ok(g) if h.event_type_raw() == 33 => Some(format_mysql_gtid(&g)),
                    Ok(_) => None,
                    Err(e) => return Err(DecodeError::Corrupt(format!("GTID event: {e}"))),
                };
                Ok(Fed::Continue)
            }
            Kind::MariaGtid => {
                let (gtid, standalone) = events::parse_maria_gtid(h.server_id(), ev.data())
                    .ok_or_else(|| DecodeError::Corrupt("a short MariaDB GTID event".into()))?;
                if self.in_tx {
                    return Err(DecodeError::Corrupt(format!(
                        "GTID {gtid} starts a transaction inside another one"
                    )));
                }
                self.begin(Some(gtid.to_string()));
                self.standalone = standalone;
                self.note_maria_gtid(gtid);
                Ok(Fed::Continue)
            }
            Kind::MariaBookkeeping => {
                if h.event_type_raw() == events::code::MARIA_GTID_LIST {
                    let list = events::parse_maria_gtid_list(ev.data()).ok_or_else(|| {
                        DecodeError::Corrupt("a short MariaDB GTID_LIST event".into())
                    })?;
                    for g in list {
                        self.note_maria_gtid(g);
                    }
                }
                self.safe_point(log_pos)
            }
            Kind::TableMap => self.table_map(ev),
            Kind::Rows(kind) => {
                self.require_tx("a row event")?;
                self.rows(ev, kind)
            }
            Kind::Query => self.query(ev, log_pos, h.timestamp()),
            Kind::Xid => {
                self.require_tx("an XID")?;
                self.commit(log_pos, h.timestamp())
            }
        }
    }

    fn rotate(&mut self, ev: &Event, log_pos: u64) -> Result<Fed, DecodeError> {
        let h = ev.header();
        let artificial = log_pos == 0 || h.timestamp() == 0 || h.flags_raw() & 0x20 != 0;
        let r = ev
            .read_event::<RotateEvent>()
            .map_err(|e| DecodeError::Corrupt(format!("ROTATE event: {e}")))?;
        let name = events::rotate_file_name(&header_bytes(ev), ev.data())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| DecodeError::Corrupt("a ROTATE event without a file name".into()))?;
        self.file = name;
        if artificial {
            // The stream's opening rotate names the file we are reading; from an empty
            // start file (start of the oldest log) it is where the position begins.
            if self.safe.file.is_empty() {
                self.safe = Position {
                    file: self.file.clone(),
                    pos: r.position(),
                };
            }
            return Ok(Fed::Continue);
        }
        if self.in_tx {
            return Err(DecodeError::Corrupt(
                "the binlog rotated inside a transaction".into(),
            ));
        }
        // Table ids are per file.
        self.tables.clear();
        self.safe = Position {
            file: self.file.clone(),
            pos: r.position(),
        };
        self.current.end = self.safe.clone();
        Ok(Fed::Boundary)
    }

    fn table_map(&mut self, ev: &Event) -> Result<Fed, DecodeError> {
        // Servers log the same map before every statement of a table: decode it once per file
        // while its id and bytes stay the same.
        let raw = ev.data();
        let id = raw
            .get(..6)
            .map(|b| b.iter().rev().fold(0u64, |acc, x| acc << 8 | u64::from(*x)));
        if let Some(cached) = id.and_then(|id| self.tables.get(&id)) {
            if cached.raw.as_slice() == raw {
                return Ok(Fed::Continue);
            }
        }
        let tme = ev
            .read_event::<TableMapEvent>()
            .map_err(|e| DecodeError::Corrupt(format!("TABLE_MAP event: {e}")))?;
        let table_id = tme.table_id();
        let wanted = (self.filter)(&tme.database_name(), &tme.table_name());
        let entry = if wanted {
            let meta = TableMeta::from_event(&tme).map_err(|e| {
                DecodeError::Corrupt(format!(
                    "TABLE_MAP of {}.{}: {e}",
                    tme.database_name(),
                    tme.table_name()
                ))
            })?;
            let layouts = meta.columns.iter().map(Layout::of).collect();
            Some(Mapped {
                meta: Arc::new(meta),
                layouts,
            })
        } else {
            None
        };
        let raw = raw.to_vec();
        self.tables.insert(table_id, Table { raw, mapped: entry });
        Ok(Fed::Continue)
    }

    /// A row event's rows, read straight from its bytes with the table map decoded once.
    fn rows(&mut self, ev: &Event, kind: RowsKind) -> Result<Fed, DecodeError> {
        let data = match ev.read_data() {
            Ok(Some(EventData::RowsEvent(r))) => r,
            Ok(_) => return Err(DecodeError::Corrupt("a row event that is not one".into())),
            Err(e) => return Err(DecodeError::Corrupt(format!("row event: {e}"))),
        };
        let entry = self.tables.get(&data.table_id()).ok_or_else(|| {
            DecodeError::Corrupt(format!(
                "a row event for table id {} without its TABLE_MAP",
                data.table_id()
            ))
        })?;
        let Some(Mapped { meta, layouts }) = &entry.mapped else {
            return Ok(Fed::Continue);
        };
        let corrupt = |what: String| {
            DecodeError::Corrupt(format!("a row of {}: {what}", meta.qualified_name()))
        };
        let width = usize::try_from(data.num_columns())
            .ok()
            .filter(|n| *n <= layouts.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "{} columns in a row event for a table map of {}",
                    data.num_columns(),
                    layouts.len()
                ))
            })?;
        // Column indexes of each image, worked out once per event.
        let before_cols: Vec<usize> = data
            .columns_before_image()
            .map(|b| b.iter_ones().filter(|i| *i < width).collect())
            .unwrap_or_default();
        let after_cols: Vec<usize> = data
            .columns_after_image()
            .map(|b| b.iter_ones().filter(|i| *i < width).collect())
            .unwrap_or_default();
        let (has_before, has_after) = match kind {
            RowsKind::Insert => (false, true),
            RowsKind::Update => (true, true),
            RowsKind::Delete => (true, false),
        };
        if (has_before && data.columns_before_image().is_none())
            || (has_after && data.columns_after_image().is_none())
        {
            return Err(corrupt(format!(
                "a {kind:?} event without its column bitmap"
            )));
        }
        // A row whose images name no column takes no bytes: reading rows would never end
        // (found by fuzzing: `binlog_event_rows_without_columns`). No server logs such an event.
        if before_cols.is_empty() && after_cols.is_empty() {
            return Err(corrupt(
                "a row event whose row images name no column".to_string(),
            ));
        }
        // Only decoded rows are held until the commit: they are what the cap bounds.
        self.pending_bytes += u64::from(ev.header().event_size());
        let mut reader = RowsReader::new(data.rows_data(), layouts);
        while !reader.done() {
            let before = if has_before {
                Some(reader.image(&before_cols).map_err(corrupt)?)
            } else {
                None
            };
            let after = if has_after {
                Some(reader.image(&after_cols).map_err(corrupt)?)
            } else {
                None
            };
            self.current.changes.push(Change {
                table: meta.clone(),
                kind,
                before,
                after,
            });
        }
        Ok(Fed::Continue)
    }

    fn query(&mut self, ev: &Event, log_pos: u64, timestamp: u32) -> Result<Fed, DecodeError> {
        let q = match ev.read_data() {
            Ok(Some(EventData::QueryEvent(q))) => q,
            Ok(_) => return Err(DecodeError::Corrupt("a QUERY event that is not one".into())),
            Err(e) => return Err(DecodeError::Corrupt(format!("QUERY event: {e}"))),
        };
        let sql = q.query();
        match events::query_kind(&sql) {
            QueryKind::Begin => {
                if !self.in_tx {
                    let gtid = self.next_gtid.take();
                    self.begin(gtid);
                }
                Ok(Fed::Continue)
            }
            QueryKind::Commit | QueryKind::Rollback => {
                self.require_tx("a COMMIT")?;
                self.commit(log_pos, timestamp)
            }
            QueryKind::Statement => {
                let statement = Statement {
                    schema: q.schema().into_owned(),
                    sql: sql.into_owned(),
                };
                if self.in_tx && !self.standalone {
                    // SAVEPOINT and friends inside a transaction.
                    self.current.statements.push(statement);
                    return Ok(Fed::Continue);
                }
                if !self.in_tx {
                    let gtid = self.next_gtid.take();
                    self.begin(gtid);
                }
                self.current.statements.push(statement);
                self.commit(log_pos, timestamp)
            }
        }
    }

    fn begin(&mut self, gtid: Option<String>) {
        self.pending_bytes = 0;
        self.in_tx = true;
        self.standalone = false;
        self.current = empty_transaction(&self.safe);
        self.current.gtid = gtid;
    }

    fn require_tx(&self, what: &str) -> Result<(), DecodeError> {
        if self.in_tx {
            Ok(())
        } else {
            Err(DecodeError::Corrupt(format!(
                "{what} outside a transaction (the start position is not at a transaction \
                 boundary)"
            )))
        }
    }

    fn commit(&mut self, log_pos: u64, timestamp: u32) -> Result<Fed, DecodeError> {
        let end = match self.payload_end.take() {
            Some(p) => p,
            None if log_pos > 0 => log_pos,
            None => {
                return Err(DecodeError::Corrupt(
                    "a transaction end without a position".into(),
                ))
            }
        };
        self.safe = Position {
            file: self.file.clone(),
            pos: end,
        };
        let mut tx = std::mem::replace(&mut self.current, empty_transaction(&self.safe));
        tx.end = self.safe.clone();
        tx.timestamp = timestamp;
        if let Some(g) = &tx.gtid {
            if g.contains(':') {
                self.last_mysql_gtid = Some(g.clone());
            }
        }
        self.in_tx = false;
        self.standalone = false;
        self.pending_bytes = 0;
        self.committed.push(tx);
        Ok(Fed::Boundary)
    }

    fn safe_point(&mut self, log_pos: u64) -> Result<Fed, DecodeError> {
        if self.in_tx || log_pos == 0 {
            return Ok(Fed::Continue);
        }
        self.safe = Position {
            file: self.file.clone(),
            pos: log_pos,
        };
        Ok(Fed::Boundary)
    }

    fn note_maria_gtid(&mut self, g: MariaGtid) {
        match self.maria_gtids.iter_mut().find(|x| x.domain == g.domain) {
            Some(x) => *x = g,
            None => self.maria_gtids.push(g),
        }
    }
}

fn empty_transaction(at: &Position) -> Transaction {
    Transaction {
        changes: Vec::new(),
        statements: Vec::new(),
        end: at.clone(),
        gtid: None,
        timestamp: 0,
    }
}

/// mysql_common keeps each event's CRC32 but never checks it: a damaged event must stop the
/// reader before any of its values are decoded.
fn verify_checksum(ev: &Event) -> Result<(), DecodeError> {
    let footer = ev.footer();
    let crc32 = matches!(
        footer.get_checksum_alg(),
        Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32))
    );
    if !crc32 || !footer.get_checksum_enabled() {
        return Ok(());
    }
    match ev.checksum() {
        Some(stored)
            if ev.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)
                != u32::from_le_bytes(stored) =>
        {
            Err(DecodeError::Corrupt(format!(
                "event type {} fails its CRC32 checksum",
                ev.header().event_type_raw()
            )))
        }
        _ => Ok(()),
    }
}

/// The 19-byte header as it was on the wire (for the artificial Rotate's CRC check).
fn header_bytes(ev: &Event) -> [u8; 19] {
    let h = ev.header();
    let mut b = [0u8; 19];
    b[0..4].copy_from_slice(&h.timestamp().to_le_bytes());
    b[4] = h.event_type_raw();
    b[5..9].copy_from_slice(&h.server_id().to_le_bytes());
    b[9..13].copy_from_slice(&h.event_size().to_le_bytes());
    b[13..17].copy_from_slice(&h.log_pos().to_le_bytes());
    b[17..19].copy_from_slice(&h.flags_raw().to_le_bytes());
    b
}

/// `3e11fa47-71ca-11e1-9e33-c80aa9429562:23`.
fn format_mysql_gtid(g: &GtidEvent) -> String {
    let s = g.sid();
    let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}:{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
        g.gno()
    )
}
