//! The hand-written request path before hyper: finding the first request
//! head in bytes that arrive in pieces (the 16 KiB limit, 400 and 431) and
//! parsing it as a WebSocket upgrade (headers, query, token, subprotocol,
//! `Sec-WebSocket-Key`) must never panic, and an accepted upgrade always
//! has a valid key.
//!
//! Input layout: one byte giving the read size (0 means 1), then the bytes
//! the client sends. The rest is also checked as a `Sec-WebSocket-Key`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    hubbub_server::internals::fuzz_request_head(stream, usize::from(chunk).max(1));
    if let Ok(key) = std::str::from_utf8(stream) {
        if hubbub_ws::handshake::check_key(key).is_ok() {
            assert_eq!(key.len(), 24);
        }
    }
});
