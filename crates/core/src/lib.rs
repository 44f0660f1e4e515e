//! # tsmigrate
//!
//! Moves a MySQL database into Alibaba Cloud Tablestore and keeps it in sync: schema
//! migration, full data migration and incremental (binlog) migration, each optional, as
//! short-lived AWS Lambda functions chained by an AWS Step Functions state machine, or in one
//! process against the embedded local Tablestore server.
//!
//! Modules (design §1):
//! - [`tablestore`]: the Tablestore wire protocol (protobuf + PlainBuffer over signed HTTP):
//!   client, batch writer and the local server. Knows nothing of MySQL.
//! - [`cli`]: the `tsmigrate` command line.
//! - [`aws`] (feature `aws`, default): starting and inspecting Step Functions executions, shared
//!   by the `start-migration` function and `tsmigrate aws start|status`.
//!
//! Invariants the rest of the system builds on: every write is keyed by the row's primary key
//! (replays are harmless); a checkpoint is written only after every write before it was
//! acknowledged (`tablestore::batch::BatchWriter::flush`).

#[cfg(feature = "aws")]
pub mod aws;
pub mod config;
pub mod error;
pub mod mapping;
pub mod mysql;
pub mod state;
pub mod steps;
pub mod throttle;
