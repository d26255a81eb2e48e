//! What a node does when members come and go: the announcements on a
//! room's channel, giving places back, and the removal of everyone from a
//! deleted room, here or when its deletion arrives from another node.
//! Joining itself is the session's (it answers the joiner in order with
//! the events that follow); these are what leaving, closing and the HTTP
//! API share.

use std::sync::Arc;

use hubbub_protocol::rooms::{RoomDeleted, UserJoined, UserLeft};
use hubbub_protocol::EventPayload;

use super::MemberInfo;
use crate::engine::{room_channel, EngineError};
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

    /// Gives back the place `m` held in `room` (connection `seq` is out
    /// of the room on this node already), then announces `user_left` to
    /// those who stay. Failures are logged: the leaver is out either way.
    pub(crate) async fn release_and_announce(&self, room: &str, seq: u64, m: super::Member) {
        let connection_id = self.conns.connection_id(seq);
        if let Err(e) = self.engine.rooms.release(room, &connection_id).await {
            Metrics::inc(&self.metrics.engine_errors);
            tracing::warn!(error = %e, room, "room place not given back");
        }
        let left = Member {
            room,
            user_id: m.user_id.as_deref(),
            connection_id,
            info: m.info,
        };
        if let Err(e) = self.announce(Change::Left, left).await {
            Metrics::inc(&self.metrics.engine_errors);
            tracing::warn!(error = %e, room, "user_left not announced");
        }
    }

    /// Connection `seq` leaves `room` if it is a member here, without
    /// waiting (its connection closed, it unsubscribed from the room's
    /// channel, or its token no longer allows it): at once where the
    /// engine answers at once, else in a task of its own.
    pub(crate) fn leave_room_soon(self: &Arc<Self>, room: &str, seq: u64) {
        let Some(m) = self.rooms.leave(room, seq) else {
            return;
        };
        let (shared, room) = (self.clone(), room.to_owned());
        crate::util::soon(async move { shared.release_and_announce(&room, seq, m).await });
    }

    /// Deletes a room everywhere: out of the engine, `room_deleted` to its
    /// members, then this node's members taken out of its channel (no
    /// `user_left` for each); other nodes take theirs out when the event
    /// reaches them. `Ok(false)` when there is no such room.
    pub(crate) async fn delete_room(self: &Arc<Self>, room: &str) -> Result<bool, EngineError> {
        let Some(settings) = self.engine.rooms.delete(room).await? else {
            return Ok(false);
        };
        let deleted = RoomDeleted {
            room: room.to_owned(),
        };
        let announced = self
            .publish(
                &room_channel(room),
                RoomDeleted::EVENT_TYPE,
                deleted.to_data(),
                None,
            )
            .await;
        self.forget_room(room, Some(settings.created_at));
        if let Err(e) = announced {
            // Gone from the engine and from this node; members on other
            // nodes stay subscribed to its channel until they leave it.
            Metrics::inc(&self.metrics.engine_errors);
            tracing::warn!(error = %e, room, "room_deleted not announced");
        }
        Ok(true)
    }

    /// Takes this node's members of a deleted room (of incarnation
    /// `created_at`, or of any) out of its channel, and tells the store
    /// they are gone (it deleted their places already; a networked store
    /// stops refreshing their presence entries).
    fn forget_room(self: &Arc<Self>, room: &str, created_at: Option<u64>) {
        let channel = room_channel(room);
        let members = self.rooms.deleted(room, created_at);
        let mut gone = Vec::with_capacity(members.len());
        for seq in members {
            if let Some(handle) = self.conns.get(seq) {
                handle.subscriptions.lock().retain(|c| **c != *channel);
            }
            self.unsubscribe(&channel, seq);
            gone.push(self.conns.connection_id(seq));
        }
        if gone.is_empty() {
            return;
        }
        let (store, room) = (self.engine.rooms.clone(), room.to_owned());
        crate::util::soon(async move {
            for c in &gone {
                if let Err(e) = store.release(&room, c).await {
                    tracing::warn!(error = %e, room, "deleted room's member not released");
                }
            }
        });
    }

    /// A `room_deleted` event reached this node: unless the room is still
    /// there in the incarnation this node's members joined (a forged or
    /// late event), they are taken out.
    pub(crate) fn room_deleted_arrived(self: &Arc<Self>, room: &str) {
        let Some(local) = self.rooms.settings(room) else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (shared, room) = (self.clone(), room.to_owned());
        rt.spawn(async move {
            match shared.engine.rooms.get(&room).await {
                Ok(Some(now)) if now.settings.created_at == local.created_at => {}
                Ok(_) => shared.forget_room(&room, Some(local.created_at)),
                Err(e) => {
                    Metrics::inc(&shared.metrics.engine_errors);
                    tracing::warn!(error = %e, room, "room_deleted not checked");
                }
            }
        });
    }
}
