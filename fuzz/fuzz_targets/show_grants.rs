#![no_main]
// SHOW GRANTS lines into the precheck's privilege questions.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tsmigrate_core::fuzz::show_grants(data));
