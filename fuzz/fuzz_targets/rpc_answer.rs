//! What an RPC backend answers (`{"data": ...}` or `{"error": {code,
//! message}}`) is read by the hub from a process it does not control:
//! any bytes must give a reply to relay or a refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hubbub_server::internals::fuzz_rpc_answer(data);
});
