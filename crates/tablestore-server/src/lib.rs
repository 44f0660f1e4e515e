//! The local Tablestore server: the embedded default destination and the test peer. Speaks the
//! real protocol (signed protobuf + PlainBuffer over HTTP) so official SDKs can use it.
//!
//! Layers, in the order a request passes them:
//! - `service` (HTTP, request signatures via `auth`, signed responses, injected `faults`,
//!   the random `chaos` mode);
//! - `handlers`: one function per action, request-level limits (`tablestore::limits`);
//! - `engine`: the semantics (validate → prepare → one writer thread with group commit; reads
//!   on snapshots), conditions in `condition`;
//! - `store`: durable storage, redb plus a value log; an acknowledged write survives `kill -9`.
//!
//! `launch` starts a server on a listener (`tsmigrate tablestore serve`, tests, benches);
//! `embedded` keeps one per data directory per process for the CLI's `embedded:DIR`
//! destinations. Built on the `tablestore` crate (protocol types, PlainBuffer, signing); knows
//! nothing of MySQL or migrations.

pub mod auth;
pub mod chaos;
pub mod condition;
pub mod embedded;
pub mod engine;
pub mod faults;
#[doc(hidden)]
pub mod fuzz;
pub mod handlers;
pub mod launch;
pub mod service;
pub mod store;

pub use chaos::ChaosConfig;
pub use faults::{Fault, FaultInjector};
pub use launch::{start, RunningServer, ServerConfig, ServerError};
