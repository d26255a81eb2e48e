//! RFC 6455 WebSocket framing and server handshake helpers for hubbub.
//!
//! This crate exists so that the hub controls exactly where bytes are copied:
//!
//! - Outbound, the hub encodes a publication once into a buffer with
//!   headroom, [`frame_from_headroom`] writes the unmasked header in front of
//!   it, and every subscriber's queue gets a cheap [`bytes::Bytes`] clone of
//!   that single allocation.
//! - Inbound, [`Decoder`] is a pure state machine over byte slices: it never
//!   owns a socket or reads, so the connection task can parse frames straight
//!   out of a reused scratch buffer and only the finished message payloads
//!   are copied out (and unmasked) into owned `Bytes`.
//!
//! Nothing here panics on any input: every malformed frame becomes a
//! [`WsError`] whose [`WsError::close_code`] tells the caller how to fail the
//! connection.
//!
//! ```
//! use hubbub_ws::{client_frame, Decoder, DecoderConfig, Message, OpCode};
//!
//! let mut decoder = Decoder::new(DecoderConfig::default());
//! // Bytes read from the socket so far (two frames and the start of a third).
//! let mut buf = client_frame(OpCode::Text, b"hello", [1, 2, 3, 4]);
//! buf.extend(client_frame(OpCode::Ping, b"", [5, 6, 7, 8]));
//! buf.extend(&client_frame(OpCode::Binary, b"later", [0; 4])[..3]);
//!
//! let mut used = 0;
//! let mut got = Vec::new();
//! loop {
//!     let (n, message) = decoder.decode(&buf[used..])?;
//!     if n == 0 {
//!         break; // keep buf[used..], append the next read, call again
//!     }
//!     used += n;
//!     got.extend(message);
//! }
//! assert_eq!(got, [Message::Text("hello".into()), Message::Ping(Default::default())]);
//! assert_eq!(buf.len() - used, 3);
//! # Ok::<(), hubbub_ws::WsError>(())
//! ```

mod close;
mod decode;
mod error;
mod frame;
pub mod handshake;
mod header;
mod mask;
mod partial;
mod utf8;

pub use close::{close_frame, close_payload, is_valid_close_code, CloseFrame, MAX_CLOSE_REASON};
pub use decode::{Decoder, DecoderConfig, Message};
pub use error::WsError;
pub use frame::{
    client_frame, frame_from_headroom, frame_header, server_frame, OpCode, MAX_HEADER_LEN,
    MAX_SERVER_HEADER_LEN,
};
pub use mask::apply_mask;
