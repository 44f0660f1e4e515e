//! Tablestore wire protocol: values and rows, PlainBuffer, signing, the HTTP client and the batch
//! writer. Knows nothing of MySQL.

pub mod batch;
pub mod client;
pub mod convert;
pub mod crc8;
pub mod encoded;
pub mod error;
pub mod filter;
pub mod limits;
pub mod plainbuffer;
pub mod read;
pub mod row;
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
pub use value::{PkType, PkValue, Value, ValueRef};
