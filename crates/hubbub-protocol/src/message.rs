//! Commands (client to hub) and messages (hub to client), PROTOCOL.md section 2.
//!
//! The hub's messages live in [`crate::server_message`] and are re-exported
//! here, so both paths name them.
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

    /// Serializes any value; used for data the hub makes itself. The text
    /// serde_json writes is JSON by construction, so it is kept as written,
    /// not parsed again (a job's `graph` event is megabytes).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Self {
        // Serializing only fails for maps with non-string keys, which none
        // of the hub's own types have; fall back to null.
        serde_json::value::to_raw_value(value)
            .map(JsonData)
            .unwrap_or_else(|_| JsonData::null())
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
        raw_json(deserializer).map(JsonData)
    }
}

/// Reads one value of any self-describing format as JSON text: verbatim from
/// `serde_json` (and its `Value`), transcoded from MessagePack and other
/// binary formats, keys in the order they came. Not from inside serde's
/// buffering (`flatten`, `untagged`), which `serde_json` cannot see through.
pub(crate) fn raw_json<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Box<RawValue>, D::Error> {
    if deserializer.is_human_readable() {
        Box::<RawValue>::deserialize(deserializer)
    } else {
        let mut out = Vec::new();
        serde_transcode::transcode(deserializer, &mut serde_json::Serializer::new(&mut out))
            .map_err(D::Error::custom)?;
        let text = String::from_utf8(out).map_err(D::Error::custom)?;
        RawValue::from_string(text).map_err(D::Error::custom)
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

/// A command that names one channel (`presence`, `presence_stats`).
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
    /// Member counts of a presence-enabled channel.
    PresenceStats(ChannelOnly),
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
            Command::PresenceStats(_) => "presence_stats",
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

pub use crate::server_message::{
    ChannelPosition, EventMessage, Publisher, ServerMessage, SubscribedChannel, TimedEvent,
};
