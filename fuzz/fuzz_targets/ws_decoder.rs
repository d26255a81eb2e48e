//! Arbitrary bytes, cut into arbitrary chunks, must never panic the
//! WebSocket decoder; it never claims more bytes than it was given; and the
//! chunking never changes what it decodes.
//!
//! Input layout: one control byte (low 4 bits: how many chunk-size bytes
//! follow; 0x10: allow RSV1; 0x20: tiny size limit), the chunk sizes, then
//! the stream. Each run happens with `require_mask` false and true.
#![no_main]

use hubbub_ws::{Decoder, DecoderConfig, Message, WsError};
use libfuzzer_sys::fuzz_target;

/// Drives the decoder like a connection: append a chunk, decode while bytes
/// are consumed, keep the rest. `chunks` empty means everything at once.
fn run(
    config: DecoderConfig,
    stream: &[u8],
    chunks: &[u8],
) -> (Vec<Message>, Result<usize, WsError>) {
    let mut dec = Decoder::new(config);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    loop {
        loop {
            match dec.decode(&buf) {
                Ok((0, msg)) => {
                    assert!(msg.is_none(), "a message without consuming bytes");
                    if let Some(n) = dec.needed(&buf) {
                        assert!(n > 0, "needed() says complete but decode() waits");
                    }
                    break;
                }
                Ok((n, msg)) => {
                    assert!(n <= buf.len(), "consumed {n} of {}", buf.len());
                    buf.drain(..n);
                    out.extend(msg);
                }
                Err(e) => {
                    assert!(!dec.in_message());
                    return (out, Err(e));
                }
            }
        }
        if pos == stream.len() {
            return (out, Ok(buf.len()));
        }
        let step = if chunks.is_empty() {
            stream.len() - pos
        } else {
            (usize::from(chunks[i % chunks.len()]) + 1).min(stream.len() - pos)
        };
        i += 1;
        buf.extend_from_slice(&stream[pos..pos + step]);
        pos += step;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let (chunks, stream) = rest.split_at(usize::from(ctl & 0x0F).min(rest.len()));
    for require_mask in [false, true] {
        let config = DecoderConfig {
            max_message_size: if ctl & 0x20 != 0 { 64 } else { 1 << 20 },
            require_mask,
            allow_rsv1: ctl & 0x10 != 0,
        };
        let whole = run(config, stream, &[]);
        let split = run(config, stream, chunks);
        assert_eq!(whole, split, "chunking changed the result");
        let single = run(config, stream, &[0]);
        assert_eq!(whole, single, "byte-at-a-time changed the result");
    }
});
