#![no_main]
// The local server's request path in-process: method, path, headers, signatures, protobuf
// bodies of every action and the PlainBuffer inside them, on a scratch store.
use std::sync::Mutex;

use tablestore_server::fuzz::FuzzServer;

static SERVER: Mutex<Option<FuzzServer>> = Mutex::new(None);

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut guard = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    let server = guard.get_or_insert_with(|| FuzzServer::new().expect("fuzz server store"));
    server.request(data);
});
