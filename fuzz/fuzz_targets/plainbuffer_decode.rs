#![no_main]
// PlainBuffer decoding (rows, PKs, variants) and the conversions after it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tablestore::fuzz::plainbuffer_decode(data));
