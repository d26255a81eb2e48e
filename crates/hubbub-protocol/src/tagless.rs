//! The second pass of [`crate::server_decode`]: [`ServerMessage`]'s body
//! read by serde's derive, without serde's buffering of internally tagged
//! enums (which `serde_json`'s raw values, and so [`JsonData`], cannot pass
//! through).

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use crate::message::JsonData;
use crate::rooms::PresenceEntry;
use crate::server_message::*;
use crate::ErrorCode;

/// Reads the body of a message of type `ty` from `de`, which holds the
/// whole message object.
pub(crate) fn read_body<'de, R: serde_json::de::Read<'de>>(
    ty: &str,
    de: &mut serde_json::Deserializer<R>,
) -> Result<ServerMessage, serde_json::Error> {
    Tagless::deserialize(Tagged { ty, de }).map(ServerMessage::from)
}

/// [`ServerMessage`] as serde's externally tagged enum: the same variants
/// and fields, read from the object that follows the `type` found by the
/// first pass. The conversion below names every field of both, so the two
/// cannot drift apart unnoticed.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tagless {
    Connected {
        connection_id: String,
        user_id: Option<String>,
        server_time: u64,
        heartbeat_interval_ms: u64,
        max_message_size: usize,
        encoding: Cow<'static, str>,
        features: Vec<Cow<'static, str>>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Disconnect {
        code: u16,
        reason: String,
        reconnect: bool,
    },
    Subscribed {
        channels: Vec<SubscribedChannel>,
    },
    Unsubscribed {
        channels: Vec<String>,
    },
    Published {
        channel: String,
        offset: Option<u64>,
    },
    Pong {},
    Authenticated {
        user_id: Option<String>,
        expires_at: Option<u64>,
    },
    Subscriptions {
        channels: Vec<String>,
    },
    History {
        channel: String,
        epoch: String,
        offset: u64,
        events: Vec<TimedEvent>,
    },
    Presence {
        channel: String,
        members: Vec<PresenceEntry>,
    },
    PresenceStats {
        channel: String,
        num_clients: u64,
        num_users: u64,
    },
    RoomJoined {
        room: String,
        members: Vec<PresenceEntry>,
    },
    RoomLeft {
        room: String,
    },
    AlgorithmStarted {
        job_id: String,
        channel: String,
    },
    AlgorithmStopped {
        job_id: String,
    },
    RpcResult {
        data: JsonData,
    },
}

impl From<Tagless> for ServerMessage {
    fn from(t: Tagless) -> Self {
        use ServerMessage as S;
        match t {
            #[rustfmt::skip]
            Tagless::Connected { connection_id, user_id, server_time, heartbeat_interval_ms, max_message_size, encoding, features } =>
                S::Connected { connection_id, user_id, server_time, heartbeat_interval_ms, max_message_size, encoding, features },
            Tagless::Error { code, message } => S::Error { code, message },
            Tagless::Disconnect {
                code,
                reason,
                reconnect,
            } => S::Disconnect {
                code,
                reason,
                reconnect,
            },
            Tagless::Subscribed { channels } => S::Subscribed { channels },
            Tagless::Unsubscribed { channels } => S::Unsubscribed { channels },
            Tagless::Published { channel, offset } => S::Published { channel, offset },
            Tagless::Pong {} => S::Pong {},
            Tagless::Authenticated {
                user_id,
                expires_at,
            } => S::Authenticated {
                user_id,
                expires_at,
            },
            Tagless::Subscriptions { channels } => S::Subscriptions { channels },
            #[rustfmt::skip]
            Tagless::History { channel, epoch, offset, events } =>
                S::History { channel, epoch, offset, events },
            Tagless::Presence { channel, members } => S::Presence { channel, members },
            #[rustfmt::skip]
            Tagless::PresenceStats { channel, num_clients, num_users } =>
                S::PresenceStats { channel, num_clients, num_users },
            Tagless::RoomJoined { room, members } => S::RoomJoined { room, members },
            Tagless::RoomLeft { room } => S::RoomLeft { room },
            Tagless::AlgorithmStarted { job_id, channel } => {
                S::AlgorithmStarted { job_id, channel }
            }
            Tagless::AlgorithmStopped { job_id } => S::AlgorithmStopped { job_id },
            Tagless::RpcResult { data } => S::RpcResult { data },
        }
    }
}

/// Presents `{"type": ty, ...fields}` to an externally tagged enum as the
/// variant `ty` whose body is the whole object (the struct visitor skips
/// `type` and the envelope fields as unknown).
struct Tagged<'a, R> {
    ty: &'a str,
    de: &'a mut serde_json::Deserializer<R>,
}

impl<'de, R: serde_json::de::Read<'de>> Deserializer<'de> for Tagged<'_, R> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, R: serde_json::de::Read<'de>> de::EnumAccess<'de> for Tagged<'_, R> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), Self::Error> {
        let variant = seed.deserialize(self.ty.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de, R: serde_json::de::Read<'de>> de::VariantAccess<'de> for Tagged<'_, R> {
    type Error = serde_json::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        de::IgnoredAny::deserialize(self.de).map(|_| ())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Self::Error> {
        self.de.deserialize_seq(v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de.deserialize_struct("", fields, visitor)
    }
}
