//! Any frame payload, as JSON or MessagePack, must decode to a server
//! message or an error without panicking. A message that decodes encodes
//! again in both encodings, reads back with the same envelope, and encodes
//! to the same bytes once more; from JSON to JSON it reads back equal.
#![no_main]

use hubbub_protocol::{decode_server_message, encode_server, Encoding, FromServer, ServerInbound};
use libfuzzer_sys::fuzz_target;

/// Encodes as the hub does; `None` where MessagePack cannot carry a number
/// of `data` (the hub refuses such payloads at publish).
fn encode(m: &ServerInbound, encoding: Encoding) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let id = m.correlation_id.as_ref();
    let done = match &m.message {
        FromServer::Event(e) => encode_server(e, id, m.timestamp, encoding, &mut out),
        FromServer::Message(x) => encode_server(x, id, m.timestamp, encoding, &mut out),
    };
    done.ok().map(|()| out)
}

fuzz_target!(|data: &[u8]| {
    for from in Encoding::ALL {
        let Ok(msg) = decode_server_message(data, from) else {
            continue;
        };
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
            if from == Encoding::Json && to == Encoding::Json {
                assert_eq!(back, msg);
            }
            assert_eq!(
                encode(&back, to).as_deref(),
                Some(&bytes[..]),
                "{}",
                to.name()
            );
        }
    }
});
