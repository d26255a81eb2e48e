//! A client command the hub accepts must survive every encoding: decode it
//! (from text or MessagePack), encode it as JSON and as MessagePack, decode
//! each again, and get the same command back. Commands whose payloads the
//! hub refuses at publish (`JsonData::check`) are skipped: those never reach
//! a subscriber.
#![no_main]

#[path = "common.rs"]
mod common;

use hubbub_protocol::codec::encode_command;
use hubbub_protocol::{decode_command, Command, Encoding, JsonData};
use libfuzzer_sys::fuzz_target;

/// Every payload the command carries.
fn payloads(c: &Command) -> Vec<&JsonData> {
    match c {
        Command::Publish(p) => vec![&p.data],
        Command::Rpc(r) => vec![&r.data],
        Command::AlgorithmStart(a) => vec![&a.parameters],
        Command::JoinRoom(j) => j.info.iter().collect(),
        _ => vec![],
    }
}

fuzz_target!(|data: &[u8]| {
    for binary in [false, true] {
        let Ok(first) = decode_command(data, binary) else {
            continue;
        };
        if payloads(&first.command).iter().any(|d| d.check().is_err()) {
            continue;
        }
        let want = serde_json::to_value(&first.command).expect("a command is a JSON value");
        for encoding in Encoding::ALL {
            let bytes = encode_command(&first.command, first.id.as_ref(), encoding)
                .unwrap_or_else(|e| panic!("{} cannot encode {first:?}: {e}", encoding.name()));
            let back = decode_command(&bytes, encoding.is_binary())
                .unwrap_or_else(|e| panic!("{} does not decode again: {e:?}", encoding.name()));
            assert_eq!(back.id, first.id, "{}", encoding.name());
            let got = serde_json::to_value(&back.command).unwrap();
            assert!(
                common::same(&want, &got),
                "{}: {want} became {got}",
                encoding.name()
            );
        }
    }
});
