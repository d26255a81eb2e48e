//! A publication: one event, encoded at most once per wire.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hubbub_protocol::{EventMessage, TimedEvent};

use super::wire::{encode_frame, Wire};

/// One event on its way to subscribers. Its frame is built on first use
/// per [`Wire`] and then shared: every subscriber's queue holds a `Bytes`
/// clone of the same allocation.
pub struct Publication {
    /// The event as it goes on the wire.
    pub event: EventMessage,
    /// When the hub accepted it, ms since the epoch (the `timestamp` field).
    pub timestamp: u64,
    /// One slot per wire, at [`Wire::index`]: no map and no lock to read
    /// a frame once it is built.
    frames: [OnceLock<Option<Bytes>>; Wire::COUNT],
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
            frames: [const { OnceLock::new() }; Wire::COUNT],
        }
    }

    /// Shorthand for this crate's unit tests.
    #[allow(clippy::too_many_arguments)]
    #[cfg(test)]
    pub(crate) fn make(
        channel: &str,
        event_type: &str,
        data: hubbub_protocol::JsonData,
        message_id: String,
        offset: Option<u64>,
        epoch: Option<Arc<str>>,
        publisher: Option<hubbub_protocol::Publisher>,
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

    /// The complete frame for `wire`, built once. Every payload was
    /// checked at publish ([`JsonData::check`]), so every encoding carries
    /// it; `None` would be a bug, logged once.
    pub(crate) fn frame(&self, wire: Wire) -> Option<&Bytes> {
        self.frames[wire.index()]
            .get_or_init(|| encode_frame(&self.event, None, self.timestamp, wire))
            .as_ref()
    }
}
