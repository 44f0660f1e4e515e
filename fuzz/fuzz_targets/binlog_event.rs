#![no_main]
// Bytes as a binlog file through the reader's decoder.
//
// The decoder runs mysql_common's parser under `catch_unwind` (it panics on some short
// events) and turns such a panic into an error. libFuzzer's panic hook aborts at the panic,
// before that guard can catch it; this target's hook does not, so only a panic that escapes
// the library (caught by libfuzzer-sys, which then aborts) counts as a crash. Set
// FUZZ_PANIC_VERBOSE=1 to print every panic, guarded or not.
libfuzzer_sys::fuzz_target!(
    init: {
        let verbose = std::env::var_os("FUZZ_PANIC_VERBOSE").is_some();
        std::panic::set_hook(Box::new(move |info| {
            if verbose {
                eprintln!("{info}");
            }
        }));
    },
    |data: &[u8]| tsmigrate_core::fuzz::binlog_event(data)
);
