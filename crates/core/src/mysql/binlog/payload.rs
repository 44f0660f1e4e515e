//! MySQL 8.0.20+ transaction payloads (`binlog_transaction_compression=ON`): one event whose
//! body is a zstd-compressed run of the transaction's events. Shared by the file reader, which
//! decodes the inner events itself, and the stream reader, which checks the payload is whole
//! before it takes the inner events mysql_async yields after it.

use mysql_async::binlog::events::TransactionPayloadEvent;

use super::file::checked_frame;

/// The largest decompressed transaction payload read (MySQL caps events at 1 GiB).
const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// The decompressed payload, read through a size cap (the header's size is not trusted).
pub(super) fn decompress(payload: &TransactionPayloadEvent<'_>) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let expected = payload.uncompressed_size();
    if expected > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "a transaction payload of {expected} bytes is over the {MAX_PAYLOAD_BYTES}-byte cap"
        ));
    }
    let reader = payload
        .decompressed()
        .map_err(|e| format!("transaction payload: {e}"))?;
    let mut out = Vec::new();
    // Never more than the header claims (plus one byte to notice a longer stream).
    reader
        .take(expected + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("transaction payload does not decompress: {e}"))?;
    if out.len() as u64 != expected {
        return Err(format!(
            "transaction payload decompressed to {} bytes, its header says {expected}",
            out.len()
        ));
    }
    Ok(out)
}

/// How many events a decompressed payload holds (inner events carry no checksum).
pub(super) fn count_events(inner: &[u8]) -> Result<usize, String> {
    let mut at = 0usize;
    let mut n = 0usize;
    while at < inner.len() {
        at += checked_frame(inner, at, false)
            .map_err(|e| format!("inside the transaction payload at {at}: {e}"))?;
        n += 1;
    }
    Ok(n)
}
