//! The local Tablestore server: the embedded default destination and the test peer. Speaks the
//! real protocol (signed protobuf + PlainBuffer over HTTP) so official SDKs can use it.
//!
//! Layers: `service` (HTTP, auth, signed responses, faults) → `handlers` (one fn per action,
//! request-level limits) → `engine` (semantics) → `store` (durable redb storage).

pub mod auth;
pub mod condition;
pub mod embedded;
pub mod engine;
pub mod faults;
pub mod handlers;
pub mod launch;
pub mod service;
pub mod store;

pub use faults::{Fault, FaultInjector};
pub use launch::{start, RunningServer, ServerConfig, ServerError};
