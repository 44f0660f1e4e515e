//! # tsmigrate-core
//!
//! The migration itself: what moves a MySQL database into Alibaba Cloud Tablestore (schema,
//! full copy, binlog replay), as plain async step functions. It starts no server and runs no
//! state machine: the `tsmigrate` CLI (root crate) and the Lambda bootstrap (`functions/`)
//! wrap the steps, and an `embedded:DIR` destination is refused here (the CLI resolves it).
//!
//! Modules (design §1, docs/architecture.md):
//! - [`config`]: the migration config (JSON, the seed's options by name), its JSON Schema,
//!   validation that reports every problem with its path and fix, secret references.
//! - [`mysql`]: the source. Connections, server flavour, introspection, precheck probes,
//!   the keyset chunk reader. Knows nothing of Tablestore.
//! - [`mapping`]: the one place that knows both sides: type mapping (design §4), names and case
//!   policy, and row conversion straight into PlainBuffer changes.
//! - [`state`]: the state store (lease, checkpoint, plan, chunks, dirty rows) in a Tablestore
//!   table; the only module that reads or writes its keys. Knows nothing of MySQL.
//! - [`steps`]: one module per step of design §5 (`precheck`, `create_schema`, `begin`,
//!   `plan`, `copy`, `verify`, `finish`) and [`steps::run_step`], JSON in and JSON out.
//! - [`error`]: the error names and failure classes every module shares; `steps::error` is the
//!   one conversion into step errors.
//! - [`throttle`]: the per-migration rate limits (`throttle.full`, `throttle.incremental`).
//! - `aws` (feature `aws`, default): starting and inspecting Step Functions executions, shared
//!   by the `start-migration` function and `tsmigrate aws start|status`.
//!
//! Invariants the rest of the system builds on (design §2): every write is keyed by the row's
//! primary key (replays are harmless); a checkpoint is written only after every write before it
//! was acknowledged (`tablestore::batch::BatchWriter::flush`); one writer per migration (the
//! lease); secrets travel as references only.

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod mapping;
pub mod mysql;
pub mod state;
pub mod steps;
pub mod throttle;
