//! Messages the hub sends (PROTOCOL.md section 2, "Server to client").
//!
//! They serialize for the hub and deserialize for whoever reads them: the
//! Rust client, and hub nodes that pass messages to each other. Deserializing
//! lives in [`crate::server_decode`]; the types here only describe the wire.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::message::JsonData;
use crate::rooms::PresenceEntry;

/// Who published an event, when it came from a client connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publisher {
    /// The publishing user, if the connection had one.
    pub user_id: Option<String>,
    /// The publishing connection.
    pub connection_id: String,
}

/// An `event`: everything a channel delivers. It serializes with its own
/// `"type": "event"` so the hub can encode it by reference, and history
/// replies list events exactly as they were delivered.
///
/// Deserializing accepts the object with or without `"type": "event"` (any
/// other `type` is refused) and ignores the envelope's `timestamp`; read an
/// event with its timestamp as a [`TimedEvent`] or through
/// [`crate::decode_server_message`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename = "event")]
pub struct EventMessage {
    /// The channel it was published to.
    pub channel: String,
    /// What it is.
    pub event_type: String,
    /// The payload.
    pub data: JsonData,
    /// Unique id of the publication.
    pub message_id: String,
    /// Position in the channel's history (absent when not kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The history the offset belongs to (shared with the channel's
    /// history, so stamping an event does not copy it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Arc<str>>,
    /// The publishing connection, for events published by clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Publisher>,
}

/// An event as history lists it: with the `timestamp` it carried when it
/// was delivered live, so an event reads the same from history (command or
/// HTTP) as it did over the WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimedEvent {
    /// The event.
    #[serde(flatten)]
    pub event: EventMessage,
    /// When the hub accepted it, ms since the Unix epoch.
    pub timestamp: u64,
}

/// A channel's position in the `subscribed` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedChannel {
    /// The channel.
    pub channel: String,
    /// Newest offset (0 before any event).
    pub offset: u64,
    /// Name of the channel's history.
    pub epoch: String,
    /// Whether everything after the requested `since` is being delivered.
    pub recovered: bool,
    /// How many missed events follow the reply.
    pub missed: u64,
}

/// A channel's newest position, as in `published` and the history reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPosition {
    /// Newest offset.
    pub offset: u64,
    /// Name of the history.
    pub epoch: String,
}

/// Every message the hub sends but `event`, tagged by `type` on the wire.
///
/// A new variant goes into [`ServerMessage::TYPE_NAMES`] and into the
/// deserializing mirror in `tagless.rs` too (the round-trip tests
/// fail until it does).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every connection.
    Connected {
        /// This connection's id.
        connection_id: String,
        /// The authenticated user, or null.
        user_id: Option<String>,
        /// Server clock, ms since the epoch.
        server_time: u64,
        /// How often the server pings.
        heartbeat_interval_ms: u64,
        /// Largest message the server accepts, in bytes.
        max_message_size: usize,
        /// `json` or `msgpack` (borrowed when the hub builds it, owned
        /// when read from the wire).
        encoding: Cow<'static, str>,
        /// Optional features this hub offers.
        features: Vec<Cow<'static, str>>,
    },
    /// A command failed.
    Error {
        /// What went wrong.
        code: crate::ErrorCode,
        /// Human-readable detail.
        message: String,
    },
    /// The server is about to close the connection.
    Disconnect {
        /// The close code that follows.
        code: u16,
        /// Why.
        reason: String,
        /// Whether to reconnect.
        reconnect: bool,
    },
    /// Reply to `subscribe`.
    Subscribed {
        /// Per channel position and recovery outcome.
        channels: Vec<SubscribedChannel>,
    },
    /// Reply to `unsubscribe`.
    Unsubscribed {
        /// Channels left.
        channels: Vec<String>,
    },
    /// Reply to `publish`.
    Published {
        /// The channel.
        channel: String,
        /// The event's offset, where the channel keeps history.
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<u64>,
    },
    /// Reply to `ping`.
    Pong {},
    /// Reply to `auth`: the refreshed token was accepted.
    Authenticated {
        /// The connection's user (unchanged by a refresh).
        user_id: Option<String>,
        /// When the new token expires, ms since the epoch (its `exp`),
        /// or null for a token without one.
        expires_at: Option<u64>,
    },
    /// Reply to `get_subscriptions`.
    Subscriptions {
        /// The connection's channels.
        channels: Vec<String>,
    },
    /// Reply to `history`.
    History {
        /// The channel.
        channel: String,
        /// Its history's name.
        epoch: String,
        /// Its newest offset.
        offset: u64,
        /// The events, in increasing offset order.
        events: Vec<TimedEvent>,
    },
    /// Reply to `presence`.
    Presence {
        /// The presence-enabled channel.
        channel: String,
        /// One entry per connection present.
        members: Vec<PresenceEntry>,
    },
    /// Reply to `presence_stats`.
    PresenceStats {
        /// The presence-enabled channel.
        channel: String,
        /// Connections present, anonymous ones included.
        num_clients: u64,
        /// Distinct users present (anonymous connections not counted).
        num_users: u64,
    },
    /// Reply to `join_room`.
    RoomJoined {
        /// The room (bare name, without `room:`).
        room: String,
        /// Its presence entries, the joiner's included.
        members: Vec<PresenceEntry>,
    },
    /// Reply to `leave_room`.
    RoomLeft {
        /// The room left.
        room: String,
    },
    /// Reply to `algorithm_start`.
    AlgorithmStarted {
        /// The new job.
        job_id: String,
        /// Where its events go (`algorithm_<job_id>`), already subscribed.
        channel: String,
    },
    /// Reply to `algorithm_stop`.
    AlgorithmStopped {
        /// The stopped job.
        job_id: String,
    },
    /// Reply to `rpc`.
    RpcResult {
        /// What the method answered.
        data: JsonData,
    },
}

impl ServerMessage {
    /// Every `type` a [`ServerMessage`] has on the wire (`event` is an
    /// [`EventMessage`] and not among them).
    pub const TYPE_NAMES: [&'static str; 17] = [
        "connected",
        "error",
        "disconnect",
        "subscribed",
        "unsubscribed",
        "published",
        "pong",
        "authenticated",
        "subscriptions",
        "history",
        "presence",
        "presence_stats",
        "room_joined",
        "room_left",
        "algorithm_started",
        "algorithm_stopped",
        "rpc_result",
    ];

    /// An `error` message. The message is cut to a bounded length
    /// ([`crate::excerpt::limit`]), so no error echoes a large input back.
    pub fn error(code: crate::ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: crate::excerpt::limit(message.into()),
        }
    }

    /// The wire `type` of the message, for metrics and logs.
    pub fn type_name(&self) -> &'static str {
        let i = match self {
            ServerMessage::Connected { .. } => 0,
            ServerMessage::Error { .. } => 1,
            ServerMessage::Disconnect { .. } => 2,
            ServerMessage::Subscribed { .. } => 3,
            ServerMessage::Unsubscribed { .. } => 4,
            ServerMessage::Published { .. } => 5,
            ServerMessage::Pong {} => 6,
            ServerMessage::Authenticated { .. } => 7,
            ServerMessage::Subscriptions { .. } => 8,
            ServerMessage::History { .. } => 9,
            ServerMessage::Presence { .. } => 10,
            ServerMessage::PresenceStats { .. } => 11,
            ServerMessage::RoomJoined { .. } => 12,
            ServerMessage::RoomLeft { .. } => 13,
            ServerMessage::AlgorithmStarted { .. } => 14,
            ServerMessage::AlgorithmStopped { .. } => 15,
            ServerMessage::RpcResult { .. } => 16,
        };
        Self::TYPE_NAMES[i]
    }
}
