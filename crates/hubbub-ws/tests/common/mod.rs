//! Helpers shared by the integration tests.
#![allow(dead_code)]

use hubbub_ws::{apply_mask, frame_header, Decoder, DecoderConfig, Message, OpCode, WsError};

pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A server-side decoder (mask required) with the given limit.
pub fn server(max: usize) -> Decoder {
    Decoder::new(DecoderConfig {
        max_message_size: max,
        require_mask: true,
        allow_rsv1: false,
    })
}

/// A masked frame with arbitrary fin/opcode bits.
pub fn raw(b0: u8, payload: &[u8]) -> Vec<u8> {
    let (h, n) = frame_header(OpCode::Binary, true, false, payload.len(), Some(MASK));
    let mut v = h[..n].to_vec();
    v[0] = b0;
    let start = v.len();
    v.extend_from_slice(payload);
    apply_mask(&mut v[start..], MASK, 0);
    v
}

/// A masked frame.
pub fn frame(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    raw((u8::from(fin) << 7) | op.bits(), payload)
}

/// Everything the decoder produces from `stream` when the bytes arrive in
/// chunks of the given sizes (cycled), like a connection would drive it.
/// Ends with the error, if any, or with the number of bytes left over.
pub fn run_chunked(
    dec: &mut Decoder,
    stream: &[u8],
    chunks: &[usize],
) -> (Vec<Message>, Result<usize, WsError>) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    loop {
        loop {
            match dec.decode(&buf) {
                Ok((0, msg)) => {
                    assert!(msg.is_none());
                    break;
                }
                Ok((n, msg)) => {
                    assert!(n <= buf.len());
                    buf.drain(..n);
                    out.extend(msg);
                }
                Err(e) => return (out, Err(e)),
            }
        }
        if pos == stream.len() {
            return (out, Ok(buf.len()));
        }
        let step = chunks[i % chunks.len()].max(1).min(stream.len() - pos);
        i += 1;
        buf.extend_from_slice(&stream[pos..pos + step]);
        pos += step;
    }
}

pub fn all_at_once(dec: &mut Decoder, stream: &[u8]) -> (Vec<Message>, Result<usize, WsError>) {
    run_chunked(dec, stream, &[usize::MAX])
}
