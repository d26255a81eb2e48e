//! Any frame payload, as text (JSON) or binary (MessagePack), must decode to
//! a command or an error without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for binary in [false, true] {
        let _ = hubbub_protocol::decode_command(data, binary);
    }
});
