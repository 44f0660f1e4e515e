#![no_main]
// Config JSON text through parse and validation.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tsmigrate_core::fuzz::config_load(data));
