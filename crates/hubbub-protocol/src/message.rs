//! Commands (client to hub) and messages (hub to client), PROTOCOL.md section 2.
//!
//! Every command body is its own struct so that the hub can parse exactly the
//! fields of the `type` it read, and report `invalid_message` with the
//! command's `id` when they are wrong. `Command` ties them together for
//! clients, which serialize it with the `type` tag inline.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Largest integer `id` allowed: the integers JavaScript represents exactly.
pub const MAX_INTEGER_ID: i64 = 1 << 53;

/// A command's `id`, echoed as `correlation_id` on every reply and error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CorrelationId {
    /// An integer id (at most 2^53 in magnitude).
    Int(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorrelationId::Int(i) => write!(f, "{i}"),
            CorrelationId::Str(s) => f.write_str(s),
        }
    }
}

/// Application data carried as raw JSON text.
///
/// Publications keep their payload exactly as it arrived; JSON output embeds
/// it verbatim and MessagePack output is transcoded from it, so the hub never
/// builds a value tree for data it only forwards.
#[derive(Clone)]
pub struct JsonData(Box<RawValue>);

impl JsonData {
    /// Parses and keeps `text`, refusing anything that is not one JSON value.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text.trim().to_owned()).map(JsonData)
    }

    /// Serializes any value; used for data the hub makes itself.
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Self {
        // Serializing to a string only fails for maps with non-string keys,
        // which none of the hub's own types have; fall back to null.
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        JsonData::from_json(&text).unwrap_or_else(|_| JsonData::null())
    }

    /// JSON `null`.
    pub fn null() -> Self {
        JsonData(RawValue::from_string("null".to_owned()).expect("null is JSON"))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Checks that every encoding the hub offers carries this payload alike
    /// (see [`crate::data`]). Publishing calls it once per publication, so
    /// no delivery depends on a subscriber's encoding.
    pub fn check(&self) -> Result<(), crate::DataError> {
        crate::data::check(self.0.get())
    }

    /// Parses the text into a value tree, for code that must look inside.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.0.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for JsonData {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for JsonData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl Serialize for JsonData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            let mut de = serde_json::Deserializer::from_str(self.0.get());
            serde_transcode::transcode(&mut de, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for JsonData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            Box::<RawValue>::deserialize(deserializer).map(JsonData)
        } else {
            let value = serde_json::Value::deserialize(deserializer)?;
            let text = serde_json::to_string(&value).map_err(D::Error::custom)?;
            JsonData::from_json(&text).map_err(D::Error::custom)
        }
    }
}

/// A position in a channel's history: recover everything after `offset`
/// provided the history is still the one named `epoch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Last offset the client has seen.
    pub offset: u64,
    /// The history it was seen in.
    pub epoch: String,
}

/// `subscribe`: join channels, optionally recovering from positions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subscribe {
    /// Channels to join.
    pub channels: Vec<String>,
    /// Per channel, where to recover from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<BTreeMap<String, StreamPosition>>,
    /// Deliver only these event types on these channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
}

/// `unsubscribe`: leave channels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unsubscribe {
    /// Channels to leave.
    pub channels: Vec<String>,
}

/// `publish`: send an event to a channel whose namespace allows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publish {
    /// Target channel.
    pub channel: String,
    /// What the event is (`task_updated`, `room_message`, ...).
    pub event_type: String,
    /// The payload, any JSON value.
    pub data: JsonData,
}

/// A command that names one channel (`presence`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelOnly {
    /// The channel.
    pub channel: String,
}

/// `history`: read a channel's retained events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    /// The channel.
    pub channel: String,
    /// Exclusive lower bound; without it the newest events are returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_offset: Option<u64>,
    /// How many events at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// `join_room`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRoom {
    /// Room name.
    pub room: String,
    /// Shown to other members in presence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<JsonData>,
}

/// `leave_room`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaveRoom {
    /// Room name.
    pub room: String,
}

/// `algorithm_start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlgorithmStart {
    /// `bfs`, `dfs`, `dijkstra`, ...
    pub algorithm: String,
    /// Graph and algorithm parameters.
    pub parameters: JsonData,
}

/// `algorithm_stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlgorithmStop {
    /// The job to stop.
    pub job_id: String,
}

/// `auth`: swap in a fresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Auth {
    /// The new JWT.
    pub token: String,
}

/// `rpc`: call an application-defined method.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rpc {
    /// Method name.
    pub method: String,
    /// Arguments.
    pub data: JsonData,
}

/// Empty body of commands with no fields (`ping`, `get_subscriptions`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Empty {}

/// Every command of the protocol, tagged by `type` on the wire.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Join channels.
    Subscribe(Subscribe),
    /// Leave channels.
    Unsubscribe(Unsubscribe),
    /// Publish an event.
    Publish(Publish),
    /// Application-level liveness check.
    Ping(Empty),
    /// List this connection's channels.
    GetSubscriptions(Empty),
    /// Members of a presence-enabled channel.
    Presence(ChannelOnly),
    /// Retained events of a channel.
    History(History),
    /// Join a room.
    JoinRoom(JoinRoom),
    /// Leave a room.
    LeaveRoom(LeaveRoom),
    /// Start a graph algorithm job.
    AlgorithmStart(AlgorithmStart),
    /// Stop a graph algorithm job.
    AlgorithmStop(AlgorithmStop),
    /// Refresh the connection's token.
    Auth(Auth),
    /// Call an application method.
    Rpc(Rpc),
}

impl Command {
    /// The wire `type` of the command, for metrics and logs.
    pub fn type_name(&self) -> &'static str {
        match self {
            Command::Subscribe(_) => "subscribe",
            Command::Unsubscribe(_) => "unsubscribe",
            Command::Publish(_) => "publish",
            Command::Ping(_) => "ping",
            Command::GetSubscriptions(_) => "get_subscriptions",
            Command::Presence(_) => "presence",
            Command::History(_) => "history",
            Command::JoinRoom(_) => "join_room",
            Command::LeaveRoom(_) => "leave_room",
            Command::AlgorithmStart(_) => "algorithm_start",
            Command::AlgorithmStop(_) => "algorithm_stop",
            Command::Auth(_) => "auth",
            Command::Rpc(_) => "rpc",
        }
    }
}

/// A decoded command with its correlation id.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// `id` of the command, if it had one.
    pub id: Option<CorrelationId>,
    /// The command.
    pub command: Command,
}

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
#[derive(Debug, Clone, Serialize)]
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
    pub epoch: Option<std::sync::Arc<str>>,
    /// The publishing connection, for events published by clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<Publisher>,
}

/// An event as history lists it: with the `timestamp` it carried when it
/// was delivered live, so an event reads the same from history (command or
/// HTTP) as it did over the WebSocket.
#[derive(Debug, Clone, Serialize)]
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

/// Every message the hub sends, tagged by `type` on the wire.
#[derive(Debug, Clone, Serialize)]
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
        /// `json` or `msgpack`.
        encoding: &'static str,
        /// Optional features this hub offers.
        features: Vec<&'static str>,
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
}

impl ServerMessage {
    /// An `error` message. The message is cut to a bounded length
    /// ([`crate::excerpt::limit`]), so no error echoes a large input back.
    pub fn error(code: crate::ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: crate::excerpt::limit(message.into()),
        }
    }
}
