//! # The binlog source (design §2, §4; reference: mysql-binlog-notes.md)
//!
//! A bounded, resumable reader of MySQL and MariaDB binlogs. It knows nothing of Tablestore:
//! it returns committed transactions of row changes (row images read straight from the row
//! events' bytes, with the table map's column metadata) and the position after each.
//!
//! - [`stream`]: one batch over the replication protocol ([`read_batch`]): a replica with the
//!   migration's own server_id, `@mariadb_slave_capability=4` (real GTID events from MariaDB),
//!   BINLOG_DUMP_NON_BLOCK (the stream ends at the end of the log), bounds checked at
//!   transaction boundaries ([`Bounds`]).
//! - [`file`]: the same decoding over a binlog file's bytes ([`decode_file`]): recorded
//!   fixtures of servers this machine cannot run, fuzzing.
//! - [`decoder`]: events → transactions; the position moves only at a transaction boundary.
//! - [`events`]: the decision for every event type (unknown → error, never skipped) and the
//!   bodies mysql_common does not parse.
//! - [`table`]: a TABLE_MAP's column metadata (`binlog_row_metadata=FULL`: names, signedness,
//!   charsets, ENUM/SET labels, visibility, primary key), decoded once per map.
//! - [`image`]: row images read from a row event's bytes by that metadata (where each value
//!   lies; no per-row mysql_common row).
//! - [`text`]: one conversion contract for both phases: a binlog value as the exact bytes the
//!   full copy's text-protocol read delivers for it, so `mapping` converts both the same way;
//!   each type's binary layout is read here.
//! - [`json_text`]: MySQL's binary JSON printed as MySQL prints it (for [`text`]).
//! - `payload`: MySQL's zstd transaction payloads.
//!
//! The five pitfalls of the notes, and where each is handled: compressed MariaDB events are
//! refused ([`events::Refusal::MariaCompressed`]); the artificial Rotate's CRC-suffixed name is
//! repaired ([`events::rotate_file_name`]); artificial events never move the position;
//! `@mariadb_slave_capability` is set; server_id clashes are named (`SourceError::ServerIdClash`).
//! mysql_common can panic on a short event: files are framed before parsing, the stream's
//! decode runs under `catch_unwind`.

pub mod charsets;
pub mod decoder;
pub mod events;
pub mod file;
pub mod image;
pub mod json_text;
mod payload;
pub mod stream;
pub mod table;
pub mod text;

use std::fmt;

pub use decoder::{Change, Image, Statement, TableFilter, Transaction};
pub use events::RowsKind;
pub use file::{decode_file, FileBatch};
pub use image::Value;
pub use stream::{read_batch, Batch, BatchReader, Bounds, Stop};
pub use table::{ColumnMeta, TableMeta};
pub use text::{layout, render, text_row, text_row_at, RowError};

/// A place in the source's binlog: the resume key of incremental migration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}
