//! Rooms and presence (PROTOCOL.md section 6).
//!
//! The replies `room_joined`, `room_left`, `presence` and `presence_stats`
//! are [`crate::ServerMessage`] variants built from these types; the events
//! on `room:<room>` are payloads of their own.

use serde::{Deserialize, Serialize};

use crate::payload::event_payloads;

/// A presence `info` object: `join_room`'s `info` merged with the token's
/// `info` claim. Always an object, `{}` when neither gave anything.
pub type PresenceInfo = serde_json::Map<String, serde_json::Value>;

/// One connection present in a room or presence-enabled channel. It exists
/// so that `room_joined`, `presence`, the HTTP room view and a Rust client
/// all list members with the same fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// The connection's user; null for an anonymous connection.
    pub user_id: Option<String>,
    /// The connection (a user with several appears once per connection).
    pub connection_id: String,
    /// What the member shows others; the token's claim wins on shared keys.
    pub info: PresenceInfo,
    /// When it joined, ms since the Unix epoch.
    pub joined_at: u64,
}

/// Member counts of a presence-enabled channel, for views that need the
/// numbers without the list (the `presence_stats` reply carries the same
/// two fields next to `channel`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceStats {
    /// Connections present, anonymous ones included.
    pub num_clients: u64,
    /// Distinct users present; anonymous connections are not counted.
    pub num_users: u64,
}

/// `user_joined` on `room:<room>`: lets every other member add the joiner
/// without asking for the whole presence list again. The joiner gets
/// `room_joined` instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserJoined {
    /// The room (bare name).
    pub room: String,
    /// The joiner's user; null when anonymous.
    pub user_id: Option<String>,
    /// The joining connection.
    pub connection_id: String,
    /// The joiner's presence `info`, as its entry shows it.
    pub info: PresenceInfo,
}

/// `user_left` on `room:<room>`: lets members drop a leaver (or a peer the
/// heartbeat found gone) from their list. The leaver gets `room_left`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserLeft {
    /// The room (bare name).
    pub room: String,
    /// The leaver's user; null when anonymous.
    pub user_id: Option<String>,
    /// The leaving connection.
    pub connection_id: String,
    /// The leaver's presence `info`, as its entry showed it.
    pub info: PresenceInfo,
}

/// `room_deleted` on `room:<room>`: the last event of a room deleted
/// through the API, telling members why they are removed (no `user_left`
/// follows for each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomDeleted {
    /// The room (bare name).
    pub room: String,
}

event_payloads! {
    UserJoined => "user_joined",
    UserLeft => "user_left",
    RoomDeleted => "room_deleted",
}

/// The channel of a room: `room:<room>`.
pub fn room_channel(room: &str) -> String {
    format!("room:{room}")
}
