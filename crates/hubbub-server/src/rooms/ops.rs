//! What a node does when members come and go: the announcements on a
//! room's channel and the removal of everyone from a deleted room. Joining
//! itself is the session's (it answers the joiner in order with the
//! events that follow); these are what leaving, closing and the HTTP API
//! share.

use std::sync::Arc;

use hubbub_protocol::rooms::{RoomDeleted, UserJoined, UserLeft};
use hubbub_protocol::EventPayload;

use super::MemberInfo;
use crate::engine::EngineError;
use crate::metrics::Metrics;
use crate::state::Shared;

/// Which announcement.
pub(crate) enum Change {
    /// `user_joined`.
    Joined,
    /// `user_left`.
    Left,
}

/// Who came or went, for `user_joined` and `user_left`.
pub(crate) struct Member<'a> {
    pub room: &'a str,
    pub user_id: Option<&'a str>,
    pub connection_id: String,
    pub info: MemberInfo,
}

impl Shared {
    /// Whether `room`'s namespace announces members coming and going.
    fn announces(&self, room: &str) -> bool {
        self.config
            .namespace(&format!("room:{room}"))
            .join_leave_events
    }

    /// `user_joined` or `user_left` to the room's members. The joiner is
    /// subscribed already but its own event is at or below the position
    /// its `room_joined` names, so it does not get it; the leaver has left
    /// the channel already (it gets `room_left`, or nothing when its
    /// connection closed).
    pub(crate) async fn announce(&self, change: Change, m: Member<'_>) -> Result<(), EngineError> {
        if !self.announces(m.room) {
            return Ok(());
        }
        let (room, user_id) = (m.room.to_owned(), m.user_id.map(str::to_owned));
        let (connection_id, info) = (m.connection_id, m.info);
        let (event_type, data) = match change {
            Change::Joined => {
                let p = UserJoined {
                    room,
                    user_id,
                    connection_id,
                    info,
                };
                (UserJoined::EVENT_TYPE, p.to_data())
            }
            Change::Left => {
                let p = UserLeft {
                    room,
                    user_id,
                    connection_id,
                    info,
                };
                (UserLeft::EVENT_TYPE, p.to_data())
            }
        };
        self.publish(&format!("room:{}", m.room), event_type, data, None)
            .await
            .map(|_| ())
    }

    /// A connection that closed leaves its rooms: out of the registry now,
    /// `user_left` from a task of its own (the connection's is ending).
    pub(crate) fn leave_rooms_on_close(
        self: &Arc<Self>,
        seq: u64,
        user_id: Option<&str>,
        channels: &[Arc<str>],
    ) {
        for ch in channels {
            let Some(room) = ch.strip_prefix("room:") else {
                continue;
            };
            let Some(info) = self.rooms.leave(room, seq) else {
                continue;
            };
            let shared = self.clone();
            let (room, user) = (room.to_owned(), user_id.map(str::to_owned));
            let connection_id = self.conns.connection_id(seq);
            tokio::spawn(async move {
                let m = Member {
                    room: &room,
                    user_id: user.as_deref(),
                    connection_id,
                    info,
                };
                if let Err(e) = shared.announce(Change::Left, m).await {
                    Metrics::inc(&shared.metrics.engine_errors);
                    tracing::warn!(error = %e, room, "user_left not announced");
                }
            });
        }
    }

    /// Deletes a room: `room_deleted` to its members, then every member
    /// taken out (no `user_left` for each). `None` when there is no such
    /// room.
    pub(crate) async fn delete_room(&self, room: &str) -> Option<Result<usize, EngineError>> {
        let members = self.rooms.delete(room)?;
        let channel = format!("room:{room}");
        let deleted = RoomDeleted {
            room: room.to_owned(),
        };
        let announced = self
            .publish(&channel, RoomDeleted::EVENT_TYPE, deleted.to_data(), None)
            .await;
        for seq in &members {
            if let Some(handle) = self.conns.get(*seq) {
                handle.subscriptions.lock().retain(|c| **c != *channel);
            }
            self.unsubscribe(&channel, *seq);
        }
        Some(announced.map(|_| members.len()))
    }
}
