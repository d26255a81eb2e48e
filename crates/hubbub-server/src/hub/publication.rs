//! A publication: one event, encoded at most once per encoding.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hubbub_protocol::{encode_server, Encoding, EventMessage, JsonData, Publisher, TimedEvent};
use hubbub_ws::{frame_from_headroom, OpCode, MAX_SERVER_HEADER_LEN};

/// One event on its way to subscribers. Its WebSocket frame is built on
/// first use per encoding and then shared: every subscriber's queue holds a
/// `Bytes` clone of the same allocation.
pub struct Publication {
    /// The event as it goes on the wire.
    pub event: EventMessage,
    /// When the hub accepted it, ms since the epoch (the `timestamp` field).
    pub timestamp: u64,
    frames: [OnceLock<Option<Bytes>>; 2],
}

impl Publication {
    /// Wraps an event accepted at `timestamp`.
    pub fn new(event: EventMessage, timestamp: u64) -> Arc<Self> {
        Arc::new(Self::draft(event, timestamp))
    }

    /// An event not yet shared: what a broker receives to number (it sets
    /// `event.offset` and `event.epoch`) before wrapping it in an `Arc`.
    pub fn draft(event: EventMessage, timestamp: u64) -> Self {
        Publication {
            event,
            timestamp,
            frames: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// Convenience for events the hub makes itself.
    #[allow(clippy::too_many_arguments)]
    pub fn make(
        channel: &str,
        event_type: &str,
        data: JsonData,
        message_id: String,
        offset: Option<u64>,
        epoch: Option<Arc<str>>,
        publisher: Option<Publisher>,
        timestamp: u64,
    ) -> Arc<Self> {
        Self::new(
            EventMessage {
                channel: channel.to_owned(),
                event_type: event_type.to_owned(),
                data,
                message_id,
                offset,
                epoch,
                publisher,
            },
            timestamp,
        )
    }

    /// The event as history lists it, with its `timestamp`.
    pub fn timed(&self) -> TimedEvent {
        TimedEvent {
            event: self.event.clone(),
            timestamp: self.timestamp,
        }
    }

    /// The complete WebSocket frame in `encoding`, built once. Every
    /// payload was checked at publish ([`JsonData::check`]), so both
    /// encodings carry it; `None` would be a bug, logged once.
    pub fn frame(&self, encoding: Encoding) -> Option<&Bytes> {
        self.frames[encoding.index()]
            .get_or_init(|| encode_frame(&self.event, None, self.timestamp, encoding))
            .as_ref()
    }
}

/// Encodes a server message straight into a WebSocket frame, leaving room in
/// front for the header so the payload is never copied.
pub fn encode_frame<T: serde::Serialize>(
    msg: &T,
    correlation_id: Option<&hubbub_protocol::CorrelationId>,
    timestamp: u64,
    encoding: Encoding,
) -> Option<Bytes> {
    let mut buf = Vec::with_capacity(256);
    buf.resize(MAX_SERVER_HEADER_LEN, 0);
    match encode_server(msg, correlation_id, timestamp, encoding, &mut buf) {
        Ok(()) => {
            let op = if encoding.is_binary() {
                OpCode::Binary
            } else {
                OpCode::Text
            };
            Some(frame_from_headroom(buf, MAX_SERVER_HEADER_LEN, op))
        }
        Err(e) => {
            tracing::warn!(error = %e, "message could not be encoded as {}", encoding.name());
            None
        }
    }
}
