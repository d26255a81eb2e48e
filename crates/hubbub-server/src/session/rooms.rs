//! `join_room` and `leave_room` (PROTOCOL.md section 6).
//!
//! Joining, in an order that answers everyone right: the place is taken
//! (capacity checked under the room's lock), the joiner is subscribed
//! syncing and enters presence, `user_joined` goes to the members, and the
//! joiner gets `room_joined` with the members (itself included) before any
//! later event of the room, never its own `user_joined`. Leaving takes the place back,
//! leaves the channel and its presence, and only then announces
//! `user_left`, so the leaver does not get its own.

use hubbub_protocol::excerpt::quote;
use hubbub_protocol::message::{JoinRoom, LeaveRoom};
use hubbub_protocol::rooms::{PresenceEntry, UserJoined};
use hubbub_protocol::EventPayload;
use hubbub_protocol::{CorrelationId, ErrorCode, ServerMessage};

use super::{Session, Transport};
use crate::metrics::Metrics;
use crate::rooms::ops::{Change, Member};
use crate::rooms::{MemberInfo, Refused};

type Failure = (ErrorCode, String);

impl Session {
    /// What this connection shows others in a room: `join_room`'s `info`
    /// merged with the token's `info` claim, the claim winning.
    fn member_info(
        &self,
        given: Option<&hubbub_protocol::JsonData>,
    ) -> Result<MemberInfo, Failure> {
        let mut info = match given.map(|d| d.to_value()) {
            None | Some(serde_json::Value::Null) => MemberInfo::new(),
            Some(serde_json::Value::Object(m)) => m,
            Some(_) => {
                return Err((ErrorCode::BadRequest, "info must be an object".into()));
            }
        };
        if let Some(claimed) = self.claims.as_ref().and_then(|c| c.info.as_ref()) {
            for (k, v) in claimed {
                info.insert(k.clone(), v.clone());
            }
        }
        Ok(info)
    }

    /// `join_room`: the reply (`room_joined`) goes out through the
    /// transport, ahead of the room's later events.
    pub(super) async fn join_room(
        &mut self,
        j: JoinRoom,
        id: Option<&CorrelationId>,
        transport: &mut dyn Transport,
    ) -> Result<(), Failure> {
        crate::rooms::valid_name(&j.room)
            .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(&j.room))))?;
        let channel = format!("room:{}", j.room);
        self.may_subscribe(&channel)?;
        let info = self.member_info(j.info.as_ref())?;
        // Checked before the room is looked up: a refused join must not
        // leave behind an empty room made for it.
        let seq = self.handle.seq;
        let max = self.shared.config.connection.max_subscriptions;
        let full = {
            let subs = self.handle.subscriptions.lock();
            subs.len() >= max && !subs.iter().any(|c| **c == *channel)
        };
        if full {
            Metrics::inc(&self.shared.metrics.subscription_limit);
            return Err((
                ErrorCode::LimitExceeded,
                format!("at most {max} subscriptions per connection"),
            ));
        }
        let cfg = &self.shared.config.rooms;
        let room = self
            .shared
            .rooms
            .for_join(&j.room, cfg.create_on_join, cfg.default_capacity.max(1))
            .ok_or_else(|| (ErrorCode::NotFound, format!("no room {}", quote(&j.room))))?;
        if room.info.private {
            let user = self.handle.user_id.as_deref();
            let claims = self.claims.as_deref();
            let granted = (user.is_some() && room.info.owner.as_deref() == user)
                || claims.is_some_and(|c| c.admin || c.rooms.contains(&j.room));
            if !granted {
                Metrics::inc(&self.shared.metrics.forbidden);
                return Err((
                    ErrorCode::Forbidden,
                    format!(
                        "room {} is private: its owner, or a token listing it in rooms",
                        quote(&j.room)
                    ),
                ));
            }
        }
        let new = match self.shared.rooms.join(&room, seq, &info) {
            Ok(new) => new,
            Err(Refused::Full) => {
                return Err((
                    ErrorCode::RoomFull,
                    format!(
                        "room {} is full ({} connections)",
                        quote(&j.room),
                        room.info.capacity
                    ),
                ))
            }
            Err(Refused::Gone) => {
                return Err((
                    ErrorCode::NotFound,
                    format!("room {} was deleted", quote(&j.room)),
                ))
            }
        };
        let connection_id = self.shared.conns.connection_id(seq);
        let user_id = self.handle.user_id.as_deref().map(str::to_owned);
        // Where the room's events are numbered, the joiner subscribes
        // (parking) and enters presence before announcing itself, and reads
        // the channel's position after: its own `user_joined` is at or below
        // that position and so never reaches it, while a member joining at
        // the same moment is either in the list it reads or announced after
        // it. Without numbering nothing tells its own event apart, so it
        // announces before subscribing.
        let numbered = self
            .shared
            .config
            .history_options(&channel, UserJoined::EVENT_TYPE)
            .is_some();
        let entered = async {
            let announce = || async {
                if !new {
                    return Ok(());
                }
                let joined = Member {
                    room: &j.room,
                    user_id: user_id.as_deref(),
                    connection_id: connection_id.clone(),
                    info: info.clone(),
                };
                self.shared.announce(Change::Joined, joined).await
            };
            if !numbered {
                announce().await?;
            }
            let name = self
                .shared
                .hub
                .subscribe(&channel, &self.handle, None, true);
            {
                let mut subs = self.handle.subscriptions.lock();
                if !subs.iter().any(|c| **c == *name) {
                    subs.push(name);
                }
            }
            let entry = PresenceEntry {
                user_id: user_id.clone(),
                connection_id: connection_id.clone(),
                info: info.clone(),
                joined_at: crate::util::now_ms(),
            };
            let presence = &self.shared.engine.presence;
            presence.add(&channel, entry).await?;
            if numbered {
                announce().await?;
            }
            let read = self.shared.open_channel(&channel, None).await?;
            let members = presence.list(&channel).await?;
            Ok::<_, crate::engine::EngineError>((read, members))
        };
        let (read, members) = match entered.await {
            Ok(x) => x,
            Err(e) => {
                self.shared.rooms.leave(&j.room, seq);
                self.shared.unsubscribe(&channel, seq);
                self.handle.subscriptions.lock().retain(|c| **c != *channel);
                Metrics::inc(&self.shared.metrics.engine_errors);
                tracing::warn!(
                    error = %e,
                    connection_id = %self.shared.conns.connection_id(seq),
                    channel = %channel,
                    "engine failed during join_room"
                );
                return Err((
                    ErrorCode::Unavailable,
                    "the room could not be joined; try again".into(),
                ));
            }
        };
        let reply = ServerMessage::RoomJoined {
            room: j.room,
            members,
        };
        if let Some(frame) =
            crate::hub::encode_frame(&reply, id, crate::util::now_ms(), self.handle.wire)
        {
            transport.send_ahead(&self.handle, &mut std::iter::once(frame));
        }
        let after =
            (!read.top.epoch.is_empty()).then_some((read.top.offset, read.top.epoch.as_str()));
        self.shared.hub.finish_sync(&channel, seq, after);
        Ok(())
    }

    /// `leave_room`: out of the room, its channel and its presence, then
    /// `user_left` to those who stay.
    pub(super) async fn leave_room(&mut self, l: LeaveRoom) -> Result<ServerMessage, Failure> {
        crate::rooms::valid_name(&l.room)
            .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(&l.room))))?;
        let seq = self.handle.seq;
        let Some(info) = self.shared.rooms.leave(&l.room, seq) else {
            return Err((
                ErrorCode::BadRequest,
                format!("not a member of room {}", quote(&l.room)),
            ));
        };
        let channel = format!("room:{}", l.room);
        self.handle.subscriptions.lock().retain(|c| **c != *channel);
        self.shared.unsubscribe(&channel, seq);
        let left = Member {
            room: &l.room,
            user_id: self.handle.user_id.as_deref(),
            connection_id: self.shared.conns.connection_id(seq),
            info,
        };
        if let Err(e) = self.shared.announce(Change::Left, left).await {
            // The leaver is out either way; only the others' view lags.
            Metrics::inc(&self.shared.metrics.engine_errors);
            tracing::warn!(error = %e, room = %l.room, "user_left not announced");
        }
        Ok(ServerMessage::RoomLeft { room: l.room })
    }
}
