//! The hubbub wire protocol, version 1 (`docs/protocol.md`).
//!
//! This crate is the contract between the hub and every client, so it depends
//! on no other hubbub crate and knows nothing about sockets:
//!
//! * [`codes`]: error codes carried in `error` messages and WebSocket close
//!   codes with the reconnect advice that goes with each.
//! * [`names`]: channel-name grammar and namespaces.
//! * [`message`]: the commands a client sends; [`server_message`]: the
//!   messages the hub sends.
//! * [`codec`]: turning frames into commands and messages into bytes, in both
//!   encodings (`hubbub.json.v1` and `hubbub.msgpack.v1`);
//!   [`server_decode`]: turning the hub's frames back into messages, for
//!   clients and for hub nodes reading each other.
//! * [`payload`]: typed event payloads ([`EventPayload`]), defined in
//!   [`rooms`] (section 6), [`graph`] and [`algorithm`] (section 7),
//!   [`tasks`] and [`streams`] (section 8).
//! * [`data`]: what a payload must be for both encodings to carry it alike,
//!   checked once at publish.
//! * [`excerpt`]: how error messages show client input (a short prefix).
//!
//! Event payloads (`data`) stay raw JSON text from the moment they enter the
//! hub ([`JsonData`]): a publication is never parsed into a tree just to be
//! written out again, and MessagePack output is transcoded straight from it.

pub mod algorithm;
pub mod codec;
pub mod codes;
pub mod data;
pub mod excerpt;
pub mod graph;
pub mod message;
pub mod names;
pub mod payload;
pub mod rooms;
pub mod server_decode;
pub mod server_message;
pub mod streams;
mod tagless;
pub mod tasks;

pub use codec::{decode_command, encode_server, DecodeError, Encoding};
pub use codes::{CloseCode, ErrorCode};
pub use data::{DataError, MAX_DATA_DEPTH};
pub use message::{
    ChannelPosition, Command, CorrelationId, EventMessage, Inbound, JsonData, Publisher,
    ServerMessage, StreamPosition, SubscribedChannel, TimedEvent,
};
pub use names::{namespace_of, validate_channel, MAX_CHANNEL_LEN};
pub use payload::EventPayload;
pub use server_decode::{decode_server_message, FromServer, ServerInbound};
