#![no_main]
// ASL JSONPath and intrinsic-function parsing and evaluation.
libfuzzer_sys::fuzz_target!(|data: &[u8]| asl::fuzz::path_expr(data));
