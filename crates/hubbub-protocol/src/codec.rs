//! Frames to commands and messages to bytes, in both encodings.
//!
//! Decoding is two passes over a small command: first `type` and `id`, so
//! that every later failure can carry the command's `correlation_id`; then
//! exactly the body struct of that type. MessagePack input is transcoded to
//! JSON first, so both encodings share one set of rules and error texts.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::message::*;
use crate::ErrorCode;

/// The two encodings of PROTOCOL.md section 1, chosen per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `hubbub.json.v1`: one JSON object per text frame.
    Json,
    /// `hubbub.msgpack.v1`: one MessagePack map per binary frame.
    Msgpack,
}

impl Encoding {
    /// Both encodings, in the order the server prefers them.
    pub const ALL: [Encoding; 2] = [Encoding::Json, Encoding::Msgpack];

    /// The `Sec-WebSocket-Protocol` token.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Json => "hubbub.json.v1",
            Encoding::Msgpack => "hubbub.msgpack.v1",
        }
    }

    /// The short name used in `connected.encoding` and the HTTP API.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Msgpack => "msgpack",
        }
    }

    /// Looks up a subprotocol token.
    pub fn from_subprotocol(token: &str) -> Option<Self> {
        Encoding::ALL
            .into_iter()
            .find(|e| e.subprotocol().eq_ignore_ascii_case(token.trim()))
    }

    /// Whether messages travel in binary frames.
    pub fn is_binary(self) -> bool {
        matches!(self, Encoding::Msgpack)
    }

    /// Index for per-encoding caches (`[T; 2]`).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a frame is not a command; becomes an `error` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// `invalid_message` or `unknown_type`.
    pub code: ErrorCode,
    /// Detail for the client.
    pub message: String,
    /// The command's `id`, when it could be read.
    pub correlation_id: Option<CorrelationId>,
}

impl DecodeError {
    fn invalid(message: impl Into<String>, correlation_id: Option<CorrelationId>) -> Self {
        DecodeError {
            code: ErrorCode::InvalidMessage,
            message: crate::excerpt::limit(message.into()),
            correlation_id,
        }
    }
}

/// Decodes one frame's payload. `binary` says which frame type carried it:
/// text frames are JSON and binary frames MessagePack, whatever encoding the
/// connection negotiated (replies still use the negotiated one).
pub fn decode_command(payload: &[u8], binary: bool) -> Result<Inbound, DecodeError> {
    if binary {
        let json = msgpack_to_json(payload)
            .map_err(|e| DecodeError::invalid(format!("not a MessagePack map: {e}"), None))?;
        decode_json_command(&json)
    } else {
        decode_json_command(payload)
    }
}

/// Transcodes one MessagePack value to JSON text.
pub fn msgpack_to_json(payload: &[u8]) -> Result<Vec<u8>, String> {
    let mut de = rmp_serde::Deserializer::new(payload);
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 2);
    let mut ser = serde_json::Serializer::new(&mut out);
    serde_transcode::transcode(&mut de, &mut ser).map_err(|e| e.to_string())?;
    if (de.into_inner() as &[u8]).is_empty() {
        Ok(out)
    } else {
        Err("trailing bytes after the message".to_owned())
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    ty: Option<serde_json::Value>,
    id: Option<serde_json::Value>,
}

pub(crate) fn parse_id(v: serde_json::Value) -> Result<CorrelationId, String> {
    match v {
        serde_json::Value::String(s) => Ok(CorrelationId::Str(s)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if i.abs() <= MAX_INTEGER_ID => Ok(CorrelationId::Int(i)),
            _ => Err(format!("id {n} is not an integer within ±2^53")),
        },
        other => Err(format!("id must be a string or an integer, not {other}")),
    }
}

fn body<T: DeserializeOwned>(
    json: &[u8],
    id: &Option<CorrelationId>,
    ty: &str,
) -> Result<T, DecodeError> {
    serde_json::from_slice(json)
        .map_err(|e| DecodeError::invalid(format!("bad {ty} command: {e}"), id.clone()))
}

fn decode_json_command(json: &[u8]) -> Result<Inbound, DecodeError> {
    let head: Head = serde_json::from_slice(json)
        .map_err(|e| DecodeError::invalid(format!("not a JSON object: {e}"), None))?;
    let id = match head.id {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(parse_id(v).map_err(|m| DecodeError::invalid(m, None))?),
    };
    let ty = match head.ty {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err(DecodeError::invalid("type must be a string", id)),
        None => return Err(DecodeError::invalid("missing type", id)),
    };
    let command = match ty.as_str() {
        "subscribe" => Command::Subscribe(body(json, &id, &ty)?),
        "unsubscribe" => Command::Unsubscribe(body(json, &id, &ty)?),
        "publish" => Command::Publish(body(json, &id, &ty)?),
        "ping" => Command::Ping(Empty {}),
        "get_subscriptions" => Command::GetSubscriptions(Empty {}),
        "presence" => Command::Presence(body(json, &id, &ty)?),
        "presence_stats" => Command::PresenceStats(body(json, &id, &ty)?),
        "history" => Command::History(body(json, &id, &ty)?),
        "join_room" => Command::JoinRoom(body(json, &id, &ty)?),
        "leave_room" => Command::LeaveRoom(body(json, &id, &ty)?),
        "algorithm_start" => Command::AlgorithmStart(body(json, &id, &ty)?),
        "algorithm_stop" => Command::AlgorithmStop(body(json, &id, &ty)?),
        "auth" => Command::Auth(body(json, &id, &ty)?),
        "rpc" => Command::Rpc(body(json, &id, &ty)?),
        other => {
            return Err(DecodeError {
                code: ErrorCode::UnknownType,
                message: format!("unknown message type {}", crate::excerpt::quote(other)),
                correlation_id: id,
            });
        }
    };
    Ok(Inbound { id, command })
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(flatten)]
    msg: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a CorrelationId>,
    timestamp: u64,
}

/// Why a message could not be encoded (only MessagePack transcoding of
/// exotic JSON numbers can fail; the hub drops such a message and logs it).
#[derive(Debug)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

/// Appends `msg` in `encoding` to `out`, with `correlation_id` and
/// `timestamp` added as the protocol requires. Appending (rather than
/// returning a buffer) lets the caller reserve room for a frame header in
/// front, so a WebSocket frame is built without a second copy.
pub fn encode_server<T: Serialize>(
    msg: &T,
    correlation_id: Option<&CorrelationId>,
    timestamp: u64,
    encoding: Encoding,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let env = Envelope {
        msg,
        correlation_id,
        timestamp,
    };
    match encoding {
        Encoding::Json => serde_json::to_writer(out, &env).map_err(|e| EncodeError(e.to_string())),
        Encoding::Msgpack => {
            let mut ser = rmp_serde::Serializer::new(out).with_struct_map();
            env.serialize(&mut ser)
                .map_err(|e| EncodeError(e.to_string()))
        }
    }
}

/// Encodes a client command (used by the Rust client, the CLI and tests).
pub fn encode_command(
    inbound: &Command,
    id: Option<&CorrelationId>,
    encoding: Encoding,
) -> Result<Vec<u8>, EncodeError> {
    #[derive(Serialize)]
    struct Cmd<'a> {
        #[serde(flatten)]
        command: &'a Command,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a CorrelationId>,
    }
    let cmd = Cmd {
        command: inbound,
        id,
    };
    match encoding {
        Encoding::Json => serde_json::to_vec(&cmd).map_err(|e| EncodeError(e.to_string())),
        Encoding::Msgpack => {
            let mut out = Vec::new();
            let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
            cmd.serialize(&mut ser)
                .map_err(|e| EncodeError(e.to_string()))?;
            Ok(out)
        }
    }
}

/// Decodes a server message into a JSON value tree (for clients and tests,
/// which look at fields by name; both encodings give the same tree).
pub fn decode_server(payload: &[u8], encoding: Encoding) -> Result<serde_json::Value, String> {
    match encoding {
        Encoding::Json => serde_json::from_slice(payload).map_err(|e| e.to_string()),
        Encoding::Msgpack => {
            let json = msgpack_to_json(payload)?;
            serde_json::from_slice(&json).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Inbound, DecodeError> {
        decode_command(s.as_bytes(), false)
    }

    #[test]
    fn subscribe_with_everything() {
        let i = dec(r#"{"type":"subscribe","id":7,"channels":["a","b"],"since":{"a":{"offset":41,"epoch":"x7f"}},"event_types":["t"],"extra":1}"#).unwrap();
        assert_eq!(i.id, Some(CorrelationId::Int(7)));
        match i.command {
            Command::Subscribe(s) => {
                assert_eq!(s.channels, vec!["a", "b"]);
                assert_eq!(s.since.unwrap()["a"].offset, 41);
                assert_eq!(s.event_types.unwrap(), vec!["t"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_carry_the_id() {
        let e = dec(r#"{"type":"subscribe","id":"x","channels":"nope"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidMessage);
        assert_eq!(e.correlation_id, Some(CorrelationId::Str("x".into())));
        let e = dec(r#"{"type":"frobnicate","id":3}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert_eq!(e.correlation_id, Some(CorrelationId::Int(3)));
        assert_eq!(dec("[1]").unwrap_err().code, ErrorCode::InvalidMessage);
        assert_eq!(dec("{}").unwrap_err().code, ErrorCode::InvalidMessage);
        assert_eq!(
            dec(r#"{"type":1}"#).unwrap_err().code,
            ErrorCode::InvalidMessage
        );
        assert!(dec(r#"{"type":"ping","id":9007199254740993}"#).is_err());
        assert!(dec(r#"{"type":"ping","id":1.5}"#).is_err());
        assert!(dec(r#"{"type":"ping","id":9007199254740992}"#).is_ok());
    }

    #[test]
    fn publish_keeps_raw_data() {
        let i =
            dec(r#"{"type":"publish","channel":"c","event_type":"e","data":{"b":1, "a":[1,2]}}"#)
                .unwrap();
        match i.command {
            Command::Publish(p) => assert_eq!(p.data.get(), r#"{"b":1, "a":[1,2]}"#),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn msgpack_round_trip() {
        let cmd = Command::Publish(Publish {
            channel: "c".into(),
            event_type: "e".into(),
            data: JsonData::from_json(r#"{"x":[1,"y",null,2.5]}"#).unwrap(),
        });
        let id = CorrelationId::Str("q".into());
        let bytes = encode_command(&cmd, Some(&id), Encoding::Msgpack).unwrap();
        let back = decode_command(&bytes, true).unwrap();
        assert_eq!(back.id, Some(id));
        match back.command {
            Command::Publish(p) => {
                assert_eq!(p.data.to_value(), serde_json::json!({"x":[1,"y",null,2.5]}))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_messages_in_both_encodings_agree() {
        let msg = EventMessage {
            channel: "c".into(),
            event_type: "e".into(),
            data: JsonData::from_json(r#"{"n":1}"#).unwrap(),
            message_id: "m".into(),
            offset: Some(3),
            epoch: Some("ep".into()),
            publisher: None,
        };
        let id = CorrelationId::Int(5);
        let mut j = Vec::new();
        encode_server(&msg, Some(&id), 42, Encoding::Json, &mut j).unwrap();
        let mut m = Vec::new();
        encode_server(&msg, Some(&id), 42, Encoding::Msgpack, &mut m).unwrap();
        let jv = decode_server(&j, Encoding::Json).unwrap();
        let mv = decode_server(&m, Encoding::Msgpack).unwrap();
        assert_eq!(jv, mv);
        assert_eq!(jv["type"], "event");
        assert_eq!(jv["data"]["n"], 1);
        assert_eq!(jv["correlation_id"], 5);
        assert_eq!(jv["timestamp"], 42);
        assert!(jv.get("publisher").is_none());
    }

    #[test]
    fn subprotocols() {
        assert_eq!(
            Encoding::from_subprotocol("hubbub.msgpack.v1"),
            Some(Encoding::Msgpack)
        );
        assert_eq!(Encoding::from_subprotocol("nope"), None);
    }
}
