//! # tablestore
//!
//! The Alibaba Cloud Tablestore wire protocol, as the official SDKs speak it (checked against
//! them, `tests/integration/sdk_conformance.rs`): protobuf requests over HTTP, rows in
//! PlainBuffer, every request and response signed. Knows nothing of MySQL or migrations; the
//! local server (`tablestore-server`) and the migration core both build on it.
//!
//! - [`pb`]: the messages, compiled by `build.rs` from our own transcription in `src/proto/`.
//! - [`value`], [`row`]: cell values, primary keys, rows and row changes; [`row_ref`]: the
//!   changes borrowed from a request row's bytes.
//! - [`plainbuffer`]: rows on the wire (encode, decode, the change builder that encodes a row
//!   without building it first), checksummed with [`crc8`].
//! - [`sign`]: v2 and v4 request signatures and response signature checks.
//! - [`client`]: one method per operation, a signed call with retries
//!   ([`client::RetryPolicy`]; what is retried follows [`error::Replay`]).
//! - [`batch`]: the batch writer: changes in `bucket_count` lanes hashed by primary key (per-key
//!   order kept), requests of at most 200 rows / 4 MB, `concurrency` in flight, per-row
//!   retries and a report of refused rows; [`encoded`] is its unit, a change encoded once.
//! - [`read`]: GetRange paging; [`filter`]: column-condition filters; [`schema`]: table
//!   definitions; [`convert`]: between our types and the protobuf messages.
//! - [`limits`]: the service's limits, written once; [`error`]: service and transport errors
//!   and their class (connection, transient, definite).

pub mod batch;
pub mod client;
pub mod convert;
pub mod crc8;
pub mod encoded;
pub mod error;
pub mod filter;
#[doc(hidden)]
pub mod fuzz;
pub mod limits;
pub mod plainbuffer;
pub mod read;
pub mod row;
pub mod row_ref;
pub mod schema;
pub mod sign;
pub mod value;

/// Generated protobuf messages (proto2, compiled by build.rs with protox + prost).
#[allow(clippy::all, missing_docs)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/tsmigrate.tablestore.rs"));
}

pub use error::{Class, Error, Replay, ServiceError};
pub use row::*;
pub use row_ref::{CellOpRef, CellRef, RowChangeRef};
pub use value::{PkType, PkValue, Value, ValueRef};
