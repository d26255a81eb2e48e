//! Reading what the hub sends: the Rust client's side of [`crate::codec`],
//! and what one hub node reads from another.
//!
//! Decoding mirrors [`crate::decode_command`]: MessagePack is transcoded to
//! JSON first, then two passes read the JSON, one for the envelope (`type`,
//! `correlation_id`, `timestamp`) and one for exactly the body of that
//! `type`. Reading straight from `serde_json` (rather than through serde's
//! buffering of internally tagged enums) is what lets `data` stay raw JSON
//! text ([`JsonData`]), byte for byte as the hub wrote it.

use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::codec::{msgpack_to_json, parse_id, DecodeError, Encoding};
use crate::message::{raw_json, CorrelationId, JsonData};
use crate::server_message::*;
use crate::ErrorCode;

/// One message from the hub, read back with its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInbound {
    /// The message.
    pub message: FromServer,
    /// The `id` of the command this answers, if any.
    pub correlation_id: Option<CorrelationId>,
    /// When the hub sent it (for an event: accepted it), ms since the epoch.
    pub timestamp: u64,
}

impl ServerInbound {
    /// The event with its timestamp, as history lists it; `None` for any
    /// other message.
    pub fn into_event(self) -> Option<TimedEvent> {
        match self.message {
            FromServer::Event(event) => Some(TimedEvent {
                event,
                timestamp: self.timestamp,
            }),
            FromServer::Message(_) => None,
        }
    }
}

/// What a frame from the hub holds. Events are apart from [`ServerMessage`]
/// because the hub encodes them by reference, once per publication.
#[derive(Debug, Clone, PartialEq)]
pub enum FromServer {
    /// `type: "event"`: something a channel delivered.
    Event(EventMessage),
    /// Any other message: a reply, an error, `connected`, `disconnect`.
    Message(ServerMessage),
}

impl FromServer {
    /// The wire `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            FromServer::Event(_) => "event",
            FromServer::Message(m) => m.type_name(),
        }
    }
}

/// Decodes one frame's payload from the hub in `encoding`: the message with
/// its `correlation_id` and `timestamp`. A `type` the protocol does not have
/// is `unknown_type`; anything else wrong (no `timestamp`, a field of the
/// wrong shape, trailing bytes) is `invalid_message`, with the correlation
/// id when it could be read.
pub fn decode_server_message(
    payload: &[u8],
    encoding: Encoding,
) -> Result<ServerInbound, DecodeError> {
    let transcoded;
    let json = match encoding {
        Encoding::Json => payload,
        Encoding::Msgpack => {
            transcoded = msgpack_to_json(payload)
                .map_err(|e| invalid(format!("not a MessagePack map: {e}"), None))?;
            &transcoded
        }
    };
    // Structs read from arrays too, and the protocol's messages are objects.
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid("not a JSON object", None));
    }
    let head: Head = serde_json::from_slice(json)
        .map_err(|e| invalid(format!("not a JSON object: {e}"), None))?;
    let correlation_id = match head.correlation_id {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(parse_id(v).map_err(|m| invalid(m, None))?),
    };
    let ty = match head.ty {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err(invalid("type must be a string", correlation_id)),
        None => return Err(invalid("missing type", correlation_id)),
    };
    if ty != "event" && !ServerMessage::TYPE_NAMES.contains(&ty.as_str()) {
        return Err(DecodeError {
            code: ErrorCode::UnknownType,
            message: format!("unknown message type {}", crate::excerpt::quote(&ty)),
            correlation_id,
        });
    }
    let timestamp = match head.timestamp {
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
        Some(_) => return Err(invalid("timestamp must be a whole number", correlation_id)),
        None => return Err(invalid("missing timestamp", correlation_id)),
    };
    let message = body(json, &ty)
        .map_err(|e| invalid(format!("bad {ty} message: {e}"), correlation_id.clone()))?;
    Ok(ServerInbound {
        message,
        correlation_id,
        timestamp,
    })
}

fn invalid(message: impl Into<String>, correlation_id: Option<CorrelationId>) -> DecodeError {
    DecodeError {
        code: ErrorCode::InvalidMessage,
        message: crate::excerpt::limit(message.into()),
        correlation_id,
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    ty: Option<serde_json::Value>,
    correlation_id: Option<serde_json::Value>,
    timestamp: Option<serde_json::Value>,
}

/// The second pass: the body of a message whose `type` is `ty`.
fn body(json: &[u8], ty: &str) -> Result<FromServer, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let message = if ty == "event" {
        FromServer::Event(EventMessage::deserialize(&mut de)?)
    } else {
        FromServer::Message(crate::tagless::read_body(ty, &mut de)?)
    };
    de.end()?;
    Ok(message)
}

impl<'de> Deserialize<'de> for ServerMessage {
    /// Reads the message from `serde_json` (text, reader or `Value`) or a
    /// binary format such as MessagePack; not from inside serde's own
    /// buffering (`flatten`, `untagged`), which raw JSON cannot pass.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct TypeOnly {
            #[serde(rename = "type")]
            ty: String,
        }
        let raw = raw_json(deserializer)?;
        let json = raw.get().as_bytes();
        let head: TypeOnly = serde_json::from_slice(json).map_err(D::Error::custom)?;
        match body(json, &head.ty).map_err(D::Error::custom)? {
            FromServer::Message(m) => Ok(m),
            FromServer::Event(_) => Err(D::Error::custom(
                "an event is an EventMessage, not a ServerMessage",
            )),
        }
    }
}

/// The fields an event can carry, envelope included.
#[derive(Deserialize)]
struct EventWire {
    #[serde(rename = "type")]
    ty: Option<String>,
    channel: String,
    event_type: String,
    data: JsonData,
    message_id: String,
    offset: Option<u64>,
    epoch: Option<Arc<str>>,
    publisher: Option<Publisher>,
    timestamp: Option<u64>,
}

impl EventWire {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<(EventMessage, Option<u64>), D::Error> {
        let w = EventWire::deserialize(d)?;
        if let Some(ty) = w.ty.filter(|t| t != "event") {
            return Err(D::Error::custom(format!(
                "expected an event, not type {}",
                crate::excerpt::quote(&ty)
            )));
        }
        let event = EventMessage {
            channel: w.channel,
            event_type: w.event_type,
            data: w.data,
            message_id: w.message_id,
            offset: w.offset,
            epoch: w.epoch,
            publisher: w.publisher,
        };
        Ok((event, w.timestamp))
    }
}

impl<'de> Deserialize<'de> for EventMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EventWire::read(deserializer).map(|(event, _)| event)
    }
}

impl<'de> Deserialize<'de> for TimedEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match EventWire::read(deserializer)? {
            (event, Some(timestamp)) => Ok(TimedEvent { event, timestamp }),
            (_, None) => Err(D::Error::missing_field("timestamp")),
        }
    }
}
