//! Typed event payloads: the `data` of events whose shape the protocol
//! fixes (PROTOCOL.md sections 6 to 8).
//!
//! The hub forwards `data` as raw JSON ([`JsonData`]) and never needs these
//! types to deliver an event; they exist so that whoever publishes or reads
//! a hub-defined event (the hub's own streams, the Rust client, an
//! application embedding the hub) agrees on its shape and its `event_type`
//! at compile time instead of by string.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::message::{JsonData, Publish};
use crate::server_message::EventMessage;

/// A payload published under one fixed `event_type`.
///
/// ```
/// use hubbub_protocol::payload::EventPayload;
/// use hubbub_protocol::rooms::RoomDeleted;
///
/// let data = RoomDeleted { room: "lobby".into() }.to_data();
/// assert_eq!(RoomDeleted::EVENT_TYPE, "room_deleted");
/// assert_eq!(data.get(), r#"{"room":"lobby"}"#);
/// ```
pub trait EventPayload: Serialize + DeserializeOwned {
    /// The `event_type` the payload travels under.
    const EVENT_TYPE: &'static str;

    /// The `event_type`, for code that holds a value rather than the type.
    fn event_type(&self) -> &'static str {
        Self::EVENT_TYPE
    }

    /// The payload as an event's `data`.
    fn to_data(&self) -> JsonData {
        JsonData::from_serialize(self)
    }

    /// Reads the payload from an event's `data`.
    fn from_data(data: &JsonData) -> Result<Self, serde_json::Error> {
        serde_json::from_str(data.get())
    }
}

impl EventMessage {
    /// The event's `data` as `T`, when the event is of `T`'s type (`None`
    /// otherwise; `Some(Err)` when it is but its data does not fit).
    pub fn payload<T: EventPayload>(&self) -> Option<Result<T, serde_json::Error>> {
        (self.event_type == T::EVENT_TYPE).then(|| T::from_data(&self.data))
    }
}

impl Publish {
    /// A `publish` command carrying `payload` under its own event type.
    pub fn event<T: EventPayload>(channel: impl Into<String>, payload: &T) -> Self {
        Publish {
            channel: channel.into(),
            event_type: T::EVENT_TYPE.to_owned(),
            data: payload.to_data(),
        }
    }
}

/// Implements [`EventPayload`] for each `Type => "event_type"` pair.
macro_rules! event_payloads {
    ($($ty:ty => $name:literal),* $(,)?) => {
        $(impl $crate::payload::EventPayload for $ty {
            const EVENT_TYPE: &'static str = $name;
        })*
    };
}
pub(crate) use event_payloads;

/// For optional fields that hold any JSON value: absent reads as `None` (with
/// `#[serde(default)]`) but `null` as `Some(Null)`, so a value that was set
/// to null stays present when written out again.
pub(crate) fn some_value<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}
