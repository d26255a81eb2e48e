//! What a connection's bytes look like on the wire, as one small key.
//!
//! A [`Wire`] names the three choices that decide a message's bytes: the
//! protocol (what the message says), the encoding (how the message is
//! serialized) and the framing (how the transport delimits it). A
//! publication caches one complete frame per `Wire` (see
//! [`super::Publication::frame`]), so every subscriber on the same wire
//! shares one allocation, and a new transport or wire protocol (SSE,
//! compressed WebSocket) is a new variant here and a function below, not a
//! change to the publish path.
//!
//! Building a frame is two steps: the protocol encodes the message into a
//! buffer that starts with the framing's headroom, then the framing's
//! function seals it. The WebSocket framing writes its header into that
//! headroom, so the payload is never copied.

use bytes::Bytes;
use hubbub_protocol::{encode_server, CorrelationId, Encoding};
use hubbub_ws::{frame_from_headroom, OpCode, MAX_SERVER_HEADER_LEN};

/// The message protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// hubbub protocol v1 (PROTOCOL.md).
    Hubbub,
}

impl Protocol {
    /// Every protocol, in index order.
    pub const ALL: [Protocol; 1] = [Protocol::Hubbub];
}

/// How a transport delimits messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// One complete, unmasked WebSocket server frame per message: text for
    /// JSON, binary for MessagePack.
    WebSocket,
}

impl Framing {
    /// Every framing, in index order.
    pub const ALL: [Framing; 1] = [Framing::WebSocket];

    /// Bytes a payload leaves in front of itself for this framing's header.
    pub const fn headroom(self) -> usize {
        match self {
            Framing::WebSocket => MAX_SERVER_HEADER_LEN,
        }
    }

    /// Wraps a payload encoded in `encoding` at `buf[self.headroom()..]`.
    fn seal(self, buf: Vec<u8>, encoding: Encoding) -> Bytes {
        match self {
            Framing::WebSocket => websocket(buf, encoding),
        }
    }
}

/// The WebSocket framing: the header goes into the headroom in place.
fn websocket(buf: Vec<u8>, encoding: Encoding) -> Bytes {
    let op = if encoding.is_binary() {
        OpCode::Binary
    } else {
        OpCode::Text
    };
    frame_from_headroom(buf, Framing::WebSocket.headroom(), op)
}

/// A connection's wire: which cached frame of a publication it takes and
/// how its own replies are built. `Copy` and a few bytes, so every
/// connection handle carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wire {
    /// What the messages say.
    pub protocol: Protocol,
    /// How they are serialized.
    pub encoding: Encoding,
    /// How the transport delimits them.
    pub framing: Framing,
}

impl Wire {
    /// How many wires there are: the length of a publication's frame cache.
    /// Every combination has a slot; should the product grow past a
    /// handful with combinations nobody uses, [`Wire::index`] maps only
    /// the ones in use.
    pub const COUNT: usize = Protocol::ALL.len() * Encoding::ALL.len() * Framing::ALL.len();

    /// hubbub v1 in `encoding` over WebSocket: the wire of a `/ws` client.
    pub const fn websocket(encoding: Encoding) -> Self {
        Wire {
            protocol: Protocol::Hubbub,
            encoding,
            framing: Framing::WebSocket,
        }
    }

    /// This wire's slot in a `[_; Wire::COUNT]` cache: fixed, dense, and
    /// computed without a lookup.
    pub const fn index(self) -> usize {
        let p = self.protocol as usize;
        let e = self.encoding as usize;
        let f = self.framing as usize;
        (p * Encoding::ALL.len() + e) * Framing::ALL.len() + f
    }
}

/// A `/ws` client's wire, for callers that only know the encoding.
impl From<Encoding> for Wire {
    fn from(encoding: Encoding) -> Self {
        Wire::websocket(encoding)
    }
}

/// Encodes a server message into one complete frame for `wire`, leaving
/// the framing's headroom in front so the payload is never copied.
pub fn encode_frame<T: serde::Serialize>(
    msg: &T,
    correlation_id: Option<&CorrelationId>,
    timestamp: u64,
    wire: Wire,
) -> Option<Bytes> {
    let room = wire.framing.headroom();
    let mut buf = Vec::with_capacity(256);
    buf.resize(room, 0);
    let encoded = match wire.protocol {
        Protocol::Hubbub => encode_server(msg, correlation_id, timestamp, wire.encoding, &mut buf),
    };
    match encoded {
        Ok(()) => Some(wire.framing.seal(buf, wire.encoding)),
        Err(e) => {
            tracing::warn!(error = %e, "message could not be encoded as {}", wire.encoding.name());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_has_its_own_slot() {
        let mut seen = [false; Wire::COUNT];
        for protocol in Protocol::ALL {
            for encoding in Encoding::ALL {
                for framing in Framing::ALL {
                    let i = Wire {
                        protocol,
                        encoding,
                        framing,
                    }
                    .index();
                    assert!(!seen[i], "two wires share slot {i}");
                    seen[i] = true;
                }
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn websocket_frames_carry_the_payload_after_the_header() {
        let msg = hubbub_protocol::ServerMessage::Pong {};
        for encoding in Encoding::ALL {
            let frame = encode_frame(&msg, None, 7, Wire::websocket(encoding)).unwrap();
            let mut payload = Vec::new();
            encode_server(&msg, None, 7, encoding, &mut payload).unwrap();
            let op = if encoding.is_binary() { 0x82 } else { 0x81 };
            assert_eq!(frame[0], op);
            assert_eq!(&frame[2..], &payload[..]);
        }
    }
}
