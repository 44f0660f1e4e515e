//! PlainBuffer: Tablestore's row encoding inside the protobuf messages (reference §3).
//!
//! A buffer is a 4-byte header (`0x75` as int32 LE) followed by rows; a row is a PK cell list,
//! an optional attribute cell list, an optional delete marker and a CRC-8 over the cell CRCs.
//! Encoding writes straight into a caller's `Vec<u8>` and computes CRCs on the way; decoding
//! walks a borrowed slice with a cursor, verifies every checksum and never panics.
//!
//! Files: `wire` (tags, value types, the error and wire-row types, the write and cursor
//! primitives), `encode` (rows and changes to bytes, [`ChangeBuilder`]), `decode` (bytes to
//! rows, and wire rows to [`crate::row`] types), `tests` (the test vectors and proptests),
//! `request_padding_tests` (the Node.js SDK's padded request rows). Every
//! public item is re-exported here, so callers use `tablestore::plainbuffer::X` only.

mod decode;
mod encode;
mod wire;

#[cfg(test)]
mod request_padding_tests;
#[cfg(test)]
mod tests;

pub use decode::{
    decode_pk, decode_pk_variant, decode_request_change, decode_request_pk, decode_request_row,
    decode_request_row_ref, decode_rows, decode_single_row, decode_variant,
};
pub use encode::{
    change_buffer, encode_change, encode_pk, encode_pk_variant, encode_row, encode_variant,
    encode_wire_row, encoded_change_len, encoded_key_len, encoded_row_len, pk_buffer, rows_buffer,
    write_header, ChangeBuilder,
};
pub use wire::{
    CellOpType, OperationKind, PlainBufferError, WireCell, WireCellRef, WireRow, WireRowRef, HEADER,
};
