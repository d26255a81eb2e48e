//! `join_room` and `leave_room` (PROTOCOL.md section 6).
//!
//! Joining, in an order that answers everyone right: the place is taken
//! and the joiner enters presence in one step of the engine's room store
//! (capacity counted over every node), the joiner is subscribed syncing,
//! `user_joined` goes to the members, and the joiner gets `room_joined`
//! with the members (itself included) before any later event of the room,
//! never its own `user_joined`. Leaving leaves the channel, gives the
//! place (and presence entry) back, and only then announces `user_left`,
//! so the leaver does not get its own.

use hubbub_protocol::excerpt::quote;
use hubbub_protocol::message::{JoinRoom, LeaveRoom};
use hubbub_protocol::rooms::{PresenceEntry, UserJoined};
use hubbub_protocol::EventPayload;
use hubbub_protocol::{CorrelationId, ErrorCode, ServerMessage};

use super::Session;
use crate::engine::{Admission, EngineError, RoomSettings};
use crate::metrics::Metrics;
use crate::rooms::ops::{Change, Member as Who};
use crate::rooms::{Member, MemberInfo};

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

    /// A private room admits its owner, users whose token lists it, and
    /// admins.
    fn may_enter(&self, room: &RoomSettings) -> Result<(), Failure> {
        if !room.private {
            return Ok(());
        }
        let user = self.handle.user_id.as_deref();
        let claims = self.claims.as_deref();
        let granted = (user.is_some() && room.owner.as_deref() == user)
            || claims.is_some_and(|c| c.admin || c.rooms.contains(&room.room));
        if granted {
            return Ok(());
        }
        Metrics::inc(&self.shared.metrics.forbidden);
        Err((
            ErrorCode::Forbidden,
            format!(
                "room {} is private: its owner, or a token listing it in rooms",
                quote(&room.room)
            ),
        ))
    }

    /// An engine failure while joining: logged, and `unavailable` to the
    /// joiner.
    fn engine_failed(&self, e: EngineError, channel: &str) -> Failure {
        Metrics::inc(&self.shared.metrics.engine_errors);
        tracing::warn!(
            error = %e,
            connection_id = %self.shared.conns.connection_id(self.handle.seq),
            channel = %channel,
            "engine failed during join_room"
        );
        (
            ErrorCode::Unavailable,
            "the room could not be joined; try again".into(),
        )
    }

    /// `join_room`: the reply (`room_joined`) is queued ahead of the room's
    /// later events.
    pub(super) async fn join_room(
        &mut self,
        j: JoinRoom,
        id: Option<&CorrelationId>,
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
        let connection_id = self.shared.conns.connection_id(seq);
        let user_id = self.handle.user_id.as_deref().map(str::to_owned);
        // A private room is checked before a place is taken (a refused
        // joiner must not fill it even for a moment), on the settings this
        // node holds or the store's.
        let known = match self.shared.rooms.settings(&j.room) {
            Some(s) => Some(s),
            None => self
                .shared
                .engine
                .rooms
                .get(&j.room)
                .await
                .map_err(|e| self.engine_failed(e, &channel))?
                .map(|r| r.settings),
        };
        let cfg = &self.shared.config.rooms;
        match &known {
            Some(s) => self.may_enter(s)?,
            None if !cfg.create_on_join => {
                return Err((ErrorCode::NotFound, format!("no room {}", quote(&j.room))))
            }
            None => {}
        }
        let entry = PresenceEntry {
            user_id: user_id.clone(),
            connection_id: connection_id.clone(),
            info: info.clone(),
            joined_at: crate::util::now_ms(),
        };
        let create = cfg.create_on_join.then(|| cfg.default_capacity.max(1));
        let admission = self
            .shared
            .engine
            .rooms
            .admit(&j.room, entry, create)
            .await
            .map_err(|e| self.engine_failed(e, &channel))?;
        let (settings, new) = match admission {
            Admission::Admitted { settings, new } => (settings, new),
            Admission::Full { capacity } => {
                return Err((
                    ErrorCode::RoomFull,
                    format!("room {} is full ({capacity} connections)", quote(&j.room)),
                ))
            }
            Admission::Unknown => {
                return Err((ErrorCode::NotFound, format!("no room {}", quote(&j.room))))
            }
        };
        // Deleted and made again, private, between the look and the
        // admission; or deleted meanwhile.
        let refused = self.may_enter(&settings).err().or_else(|| {
            let member = Member {
                user_id: user_id.clone(),
                info: info.clone(),
            };
            (!self.shared.rooms.enter(&settings, seq, member)).then(|| {
                (
                    ErrorCode::NotFound,
                    format!("room {} was deleted", quote(&j.room)),
                )
            })
        });
        if let Some(refused) = refused {
            if new {
                if let Err(e) = self
                    .shared
                    .engine
                    .rooms
                    .release(&j.room, &connection_id)
                    .await
                {
                    Metrics::inc(&self.shared.metrics.engine_errors);
                    tracing::warn!(error = %e, room = %j.room, "room place not given back");
                }
            }
            return Err(refused);
        }
        // The joiner is in presence since its admission. Where the room's
        // events are numbered, it subscribes (parking) before announcing
        // itself, and reads the channel's position after: its own `user_joined` is at or below
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
                let joined = Who {
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
            self.register_syncing(&channel, None);
            let presence = &self.shared.engine.presence;
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
                // Out of the channel and the room: leaving the channel
                // gives the place back.
                self.unregister(&channel);
                return Err(self.engine_failed(e, &channel));
            }
        };
        let reply = ServerMessage::RoomJoined {
            room: j.room,
            members,
        };
        self.reply_ahead(&reply, id, []);
        self.release(&channel, &read.top);
        Ok(())
    }

    /// `leave_room`: out of the room, its channel and its presence, then
    /// `user_left` to those who stay.
    pub(super) async fn leave_room(&mut self, l: LeaveRoom) -> Result<ServerMessage, Failure> {
        crate::rooms::valid_name(&l.room)
            .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(&l.room))))?;
        let seq = self.handle.seq;
        let Some(member) = self.shared.rooms.leave(&l.room, seq) else {
            return Err((
                ErrorCode::BadRequest,
                format!("not a member of room {}", quote(&l.room)),
            ));
        };
        // Out of the channel first, so the leaver does not get its own
        // `user_left`.
        let channel = format!("room:{}", l.room);
        self.unregister(&channel);
        self.shared.release_and_announce(&l.room, seq, member).await;
        Ok(ServerMessage::RoomLeft { room: l.room })
    }
}
