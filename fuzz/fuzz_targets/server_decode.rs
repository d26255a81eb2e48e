//! Any frame payload, as JSON or MessagePack, must decode to a server
//! message or an error without panicking. A message that decodes, and whose
//! payloads the hub would have accepted (`JsonData::check`), encodes in both
//! encodings and decodes from each with the same envelope and the same tree
//! (floats to the last bit or two: decimal text parsed to a float is the one
//! freedom, which is also why this compares trees and not bytes).
#![no_main]

#[path = "common.rs"]
mod common;

use hubbub_protocol::codec::decode_server;
use hubbub_protocol::{
    decode_server_message, encode_server, Encoding, FromServer, JsonData, ServerInbound,
    ServerMessage,
};
use libfuzzer_sys::fuzz_target;

/// Encodes as the hub does; `None` where MessagePack cannot carry a number.
fn encode(m: &ServerInbound, encoding: Encoding) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let id = m.correlation_id.as_ref();
    let done = match &m.message {
        FromServer::Event(e) => encode_server(e, id, m.timestamp, encoding, &mut out),
        FromServer::Message(x) => encode_server(x, id, m.timestamp, encoding, &mut out),
    };
    done.ok().map(|()| out)
}

/// Every raw payload the message carries.
fn payloads(m: &FromServer) -> Vec<&JsonData> {
    match m {
        FromServer::Event(e) => vec![&e.data],
        FromServer::Message(ServerMessage::History { events, .. }) => {
            events.iter().map(|t| &t.event.data).collect()
        }
        FromServer::Message(ServerMessage::RpcResult { data }) => vec![data],
        FromServer::Message(_) => vec![],
    }
}

fuzz_target!(|data: &[u8]| {
    for from in Encoding::ALL {
        let Ok(msg) = decode_server_message(data, from) else {
            continue;
        };
        if payloads(&msg.message).iter().any(|d| d.check().is_err()) {
            continue;
        }
        let json = encode(&msg, Encoding::Json).expect("JSON carries any decoded message");
        let want = decode_server(&json, Encoding::Json).expect("the hub's JSON parses");
        for to in Encoding::ALL {
            let Some(bytes) = encode(&msg, to) else {
                continue;
            };
            let back = decode_server_message(&bytes, to).unwrap_or_else(|e| {
                panic!(
                    "{} as {} does not decode: {e:?}",
                    msg.message.type_name(),
                    to.name()
                )
            });
            assert_eq!(back.correlation_id, msg.correlation_id);
            assert_eq!(back.timestamp, msg.timestamp);
            assert_eq!(back.message.type_name(), msg.message.type_name());
            let again = encode(&back, Encoding::Json).expect("it encoded before");
            let got = decode_server(&again, Encoding::Json).unwrap();
            assert!(
                common::same(&want, &got),
                "{}: {want} became {got}",
                to.name()
            );
        }
    }
});
