//! The hubbub commands a session runs (PROTOCOL.md section 2): decoding,
//! dispatch, the replies, and the bookkeeping each command keeps.

use std::sync::Arc;

use hubbub_protocol::excerpt::quote;
use hubbub_protocol::message::{Auth, History, Publish, Subscribe, Unsubscribe};
use hubbub_protocol::{
    decode_command, validate_channel, Command, CorrelationId, ErrorCode, Publisher, ServerMessage,
    SubscribedChannel,
};

use super::{Session, Verdict};
use crate::auth::AuthError;
use crate::events::MAX_EVENT_TYPE_LEN;
use crate::metrics::Metrics;

type Reply = Result<ServerMessage, (ErrorCode, String)>;

fn err(code: ErrorCode, msg: impl Into<String>) -> Reply {
    Err((code, msg.into()))
}

impl Session {
    /// One data message of the hubbub protocol: rate limit, decode, run,
    /// reply. `binary` says whether the transport carried it as binary
    /// (MessagePack) or text (JSON).
    pub(crate) async fn on_message(&mut self, payload: &[u8], binary: bool) {
        let decoded = decode_command(payload, binary);
        let ephemeral = matches!(&decoded, Ok(i) if matches!(&i.command,
            Command::Publish(p) if self.shared.config.is_ephemeral(&p.event_type)));
        if ephemeral {
            // Typing and cursor moves spend a budget of their own: they can
            // neither starve commands nor close the connection.
            if !self.take_ephemeral() {
                Metrics::inc(&self.shared.metrics.rate_limited_messages);
                let id = decoded.ok().and_then(|i| i.id);
                self.send_error(
                    ErrorCode::RateLimited,
                    "ephemeral event rate limit exceeded; event dropped",
                    id.as_ref(),
                );
                return;
            }
        } else {
            match self.spend_rate_budget() {
                Verdict::Allow => {}
                Verdict::Drop => {
                    let id = decoded.ok().and_then(|i| i.id);
                    self.send_error(
                        ErrorCode::RateLimited,
                        "message rate limit exceeded; message dropped",
                        id.as_ref(),
                    );
                    return;
                }
                Verdict::Close => return,
            }
        }
        let inbound = match decoded {
            Ok(i) => i,
            Err(e) => {
                self.send_error(e.code, &e.message, e.correlation_id.as_ref());
                return;
            }
        };
        let id = inbound.id;
        let reply = match inbound.command {
            Command::Subscribe(s) => match self.subscribe(s, id.as_ref()).await {
                // The reply went out with the recovered events.
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Command::History(h) => self.history(h).await,
            Command::Unsubscribe(u) => self.unsubscribe(u),
            Command::Publish(p) => self.publish(p).await,
            Command::Auth(a) => self.auth(a),
            Command::Ping(_) => Ok(ServerMessage::Pong {}),
            Command::JoinRoom(j) => match self.join_room(j, id.as_ref()).await {
                // The reply went out ahead of the room's later events.
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Command::LeaveRoom(l) => self.leave_room(l).await,
            Command::AlgorithmStart(a) => match self.start_job(a, id.as_ref()).await {
                // The reply went out ahead of the job's first event.
                Ok(()) => return,
                Err(e) => Err(e),
            },
            Command::AlgorithmStop(s) => self.stop_job(s).await,
            Command::Rpc(r) => {
                let in_flight = self.rpc_in_flight.get_or_insert_with(Default::default);
                match crate::rpc::dispatch::start(
                    &self.shared,
                    &self.handle,
                    in_flight,
                    r,
                    id.clone(),
                ) {
                    // Answered when the call ends, with its correlation id.
                    Ok(()) => return,
                    Err(e) => Err(e),
                }
            }
            Command::Presence(c) => self.presence(c.channel, false).await,
            Command::PresenceStats(c) => self.presence(c.channel, true).await,
            Command::GetSubscriptions(_) => Ok(ServerMessage::Subscriptions {
                channels: self
                    .handle
                    .subscriptions
                    .lock()
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            }),
        };
        match reply {
            Ok(msg) => self.send(&msg, id.as_ref()),
            Err((code, message)) => self.send_error(code, &message, id.as_ref()),
        }
    }

    fn send_error(&self, code: ErrorCode, message: &str, id: Option<&CorrelationId>) {
        Metrics::inc(&self.shared.metrics.errors_sent);
        if code == ErrorCode::Forbidden {
            Metrics::inc(&self.shared.metrics.forbidden);
        }
        self.send(&ServerMessage::error(code, message), id);
    }

    /// Checks that this session may receive `channel` (see
    /// [`crate::auth::may_subscribe`]).
    pub(super) fn may_subscribe(&self, channel: &str) -> Result<(), (ErrorCode, String)> {
        crate::auth::may_subscribe(
            self.claims.as_deref(),
            self.handle.user_id.as_deref(),
            channel,
            &crate::channel::classify(&self.shared.config, channel),
        )
        .map_err(|why| (ErrorCode::Forbidden, format!("{}: {why}", quote(channel))))
    }

    /// Takes a token from the ephemeral budget, making it on first use.
    fn take_ephemeral(&mut self) -> bool {
        let cfg = &self.shared.config.connection;
        let (per_second, burst) = (cfg.ephemeral_rate_per_second, cfg.ephemeral_rate_burst);
        let now = tokio::time::Instant::now();
        self.ephemeral
            .get_or_insert_with(|| Box::new(super::ratelimit::Bucket::full(burst, now)))
            .take(per_second, burst, now)
    }

    /// A private room's channel is read by its members (and admins) only;
    /// a public room's, by anyone the channel rules let subscribe, without
    /// entering its presence.
    async fn may_watch_room(&self, channel: &str) -> Result<(), (ErrorCode, String)> {
        let Some(room) = channel.strip_prefix("room:") else {
            return Ok(());
        };
        if self.claims.as_ref().is_some_and(|c| c.admin)
            || self.shared.rooms.is_member(room, self.handle.seq)
        {
            return Ok(());
        }
        let private = match self.shared.rooms.settings(room) {
            Some(s) => s.private,
            None => self
                .shared
                .engine
                .rooms
                .get(room)
                .await
                .map_err(|e| {
                    Metrics::inc(&self.shared.metrics.engine_errors);
                    tracing::warn!(error = %e, room, "room not looked up");
                    (
                        ErrorCode::Unavailable,
                        "the room could not be looked up; try again".to_owned(),
                    )
                })?
                .is_some_and(|r| r.settings.private),
        };
        if private {
            return Err((
                ErrorCode::Forbidden,
                format!(
                    "{}: a private room; join it first (join_room)",
                    quote(channel)
                ),
            ));
        }
        Ok(())
    }

    /// Publishing to a room is for its members: `join_room` first.
    pub(super) fn must_be_member(&self, channel: &str) -> Result<(), (ErrorCode, String)> {
        match channel.strip_prefix("room:") {
            Some(room) if !self.shared.rooms.is_member(room, self.handle.seq) => Err((
                ErrorCode::Forbidden,
                format!("{}: join the room first (join_room)", quote(channel)),
            )),
            _ => Ok(()),
        }
    }

    /// `auth`: verifies a fresh token for the same user and swaps it in,
    /// moving the connection's expiry. Subscriptions the new claims no
    /// longer allow are dropped and announced with `unsubscribed` first.
    fn auth(&mut self, a: Auth) -> Reply {
        let Some(authenticator) = self.shared.auth.clone() else {
            return err(
                ErrorCode::Unavailable,
                "tokens are not accepted by this hub (no key is configured)",
            );
        };
        if a.token.len() > crate::auth::MAX_TOKEN_LEN {
            return err(ErrorCode::Unauthorized, AuthError::TooLarge.to_string());
        }
        let claims = authenticator
            .authenticate(&a.token)
            .map_err(|e| (ErrorCode::Unauthorized, e.to_string()))?;
        if self.handle.user_id.as_deref() != Some(claims.sub.as_str()) {
            return err(
                ErrorCode::Forbidden,
                "the token is for another user; auth refreshes the same user's token",
            );
        }
        let expires_at = claims.expires_at;
        self.set_claims(Some(claims));
        Metrics::inc(&self.shared.metrics.auth_refreshes);
        let current: Vec<Arc<str>> = self.handle.subscriptions.lock().clone();
        let revoked: Vec<String> = current
            .iter()
            .filter(|c| self.may_subscribe(c).is_err())
            .map(|c| c.to_string())
            .collect();
        if !revoked.is_empty() {
            for ch in &revoked {
                self.unregister(ch);
            }
            self.send(&ServerMessage::Unsubscribed { channels: revoked }, None);
        }
        Ok(ServerMessage::Authenticated {
            user_id: self.handle.user_id.as_deref().map(str::to_owned),
            expires_at: expires_at.map(|s| s.saturating_mul(1000)),
        })
    }

    /// `subscribe`, with recovery: every channel is registered syncing
    /// first, then history is read; the reply, the missed events and then
    /// the live ones follow in that order, each offset once: the reply and
    /// the missed events are queued ahead ([`ConnHandle::push_ahead`]).
    ///
    /// [`ConnHandle::push_ahead`]: crate::conn::handle::ConnHandle::push_ahead
    async fn subscribe(
        &mut self,
        s: Subscribe,
        id: Option<&CorrelationId>,
    ) -> Result<(), (ErrorCode, String)> {
        if s.channels.is_empty() {
            return Err((ErrorCode::BadRequest, "channels must not be empty".into()));
        }
        let filter: Option<Arc<[String]>> = match s.event_types {
            Some(t) if t.is_empty() => {
                return Err((
                    ErrorCode::BadRequest,
                    "event_types must not be empty".into(),
                ))
            }
            Some(t) => Some(t.into()),
            None => None,
        };
        let mut wanted: Vec<&String> = Vec::with_capacity(s.channels.len());
        for ch in &s.channels {
            validate_channel(ch)
                .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(ch))))?;
            self.may_subscribe(ch)?;
            self.may_watch_room(ch).await?;
            if !wanted.contains(&ch) {
                wanted.push(ch);
            }
        }
        if let Some(since) = &s.since {
            if let Some(other) = since.keys().find(|k| !wanted.contains(k)) {
                return Err((
                    ErrorCode::BadRequest,
                    format!("since names {}, which is not in channels", quote(other)),
                ));
            }
        }
        let max = self.shared.config.connection.max_subscriptions;
        {
            let current = self.handle.subscriptions.lock();
            let new = wanted
                .iter()
                .filter(|c| !current.iter().any(|x| &**x == c.as_str()))
                .count();
            if current.len() + new > max {
                Metrics::inc(&self.shared.metrics.subscription_limit);
                return Err((
                    ErrorCode::LimitExceeded,
                    format!("at most {max} subscriptions per connection"),
                ));
            }
        }
        // The application's say, per channel, before anything is applied.
        let infos = self.ask_subscribe(&wanted).await?;
        for ch in &wanted {
            self.register_syncing(ch, filter.clone());
        }
        let mut positions = Vec::with_capacity(wanted.len());
        let mut recovered_frames = Vec::new();
        let mut release = Vec::with_capacity(wanted.len());
        for (i, ch) in wanted.iter().enumerate() {
            let since = s.since.as_ref().and_then(|m| m.get(ch.as_str()));
            let info = infos.get(i).and_then(Option::as_ref);
            let opened = match self.shared.open_channel(ch, since.map(|p| p.offset)).await {
                Ok(read) => self.enter_presence(ch, info).await.map(|()| read),
                Err(e) => Err(e),
            };
            let read = match opened {
                Ok(r) => r,
                Err(e) => {
                    for c in &wanted {
                        self.unregister(c);
                    }
                    Metrics::inc(&self.shared.metrics.engine_errors);
                    tracing::warn!(
                        error = %e,
                        connection_id = %self.shared.conns.connection_id(self.handle.seq),
                        channel = %wanted.iter().map(|c| c.as_str()).collect::<Vec<&str>>().join(","),
                        "engine failed during subscribe"
                    );
                    return Err((
                        ErrorCode::Unavailable,
                        "the subscription could not be made; try again".into(),
                    ));
                }
            };
            let mut recovered = since.is_some_and(|p| read.reaches_back_to(p.offset, &p.epoch));
            let mut missed = 0;
            if recovered {
                let frames: Option<Vec<_>> = read
                    .events
                    .iter()
                    .filter(|p| crate::hub::passes(filter.as_deref(), &p.event.event_type))
                    .map(|p| p.frame(self.handle.wire).cloned())
                    .collect();
                // Every payload was checked at publish, so each frame
                // exists; were one missing, a gap is reported as a gap.
                match frames {
                    Some(f) => {
                        missed = f.len() as u64;
                        recovered_frames.extend(f);
                    }
                    None => recovered = false,
                }
            }
            // Live events from here on: those newer than what the reply names.
            release.push((ch.as_str(), read.top.clone()));
            positions.push(SubscribedChannel {
                channel: ch.to_string(),
                offset: read.top.offset,
                epoch: read.top.epoch,
                recovered,
                missed,
            });
        }
        let reply = ServerMessage::Subscribed {
            channels: positions,
        };
        self.reply_ahead(&reply, id, recovered_frames);
        for (ch, top) in &release {
            self.release(ch, top);
        }
        Ok(())
    }

    /// `history`: retained events of a channel the connection may read.
    async fn history(&mut self, h: History) -> Reply {
        validate_channel(&h.channel)
            .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(&h.channel))))?;
        self.may_subscribe(&h.channel)?;
        let cap = self.shared.config.namespace(&h.channel).history_size;
        let limit = h
            .limit
            .map_or(100, |l| l.min(usize::MAX as u64) as usize)
            .min(cap);
        let read = self
            .shared
            .engine
            .history
            .read(&h.channel, h.since_offset, limit)
            .await
            .map_err(|e| {
                Metrics::inc(&self.shared.metrics.engine_errors);
                (ErrorCode::Unavailable, e.to_string())
            })?;
        Ok(ServerMessage::History {
            channel: h.channel,
            epoch: read.top.epoch,
            offset: read.top.offset,
            events: read.events.iter().map(|p| p.timed()).collect(),
        })
    }

    fn unsubscribe(&mut self, u: Unsubscribe) -> Reply {
        if u.channels.is_empty() {
            return err(ErrorCode::BadRequest, "channels must not be empty");
        }
        for ch in &u.channels {
            validate_channel(ch)
                .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(ch))))?;
        }
        for ch in &u.channels {
            self.unregister(ch);
        }
        Ok(ServerMessage::Unsubscribed {
            channels: u.channels,
        })
    }

    async fn publish(&mut self, p: Publish) -> Reply {
        validate_channel(&p.channel)
            .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(&p.channel))))?;
        if p.event_type.is_empty() || p.event_type.len() > MAX_EVENT_TYPE_LEN {
            return err(
                ErrorCode::BadRequest,
                format!("event_type must be 1 to {MAX_EVENT_TYPE_LEN} characters"),
            );
        }
        p.data
            .check()
            .map_err(|e| (ErrorCode::BadRequest, e.to_string()))?;
        self.must_be_member(&p.channel)?;
        if p.channel.starts_with("room:") && crate::rooms::HUB_EVENTS.contains(&&*p.event_type) {
            return err(
                ErrorCode::Forbidden,
                format!(
                    "{}: only the hub sends {} on a room's channel",
                    quote(&p.channel),
                    quote(&p.event_type)
                ),
            );
        }
        let class = crate::channel::classify(&self.shared.config, &p.channel);
        crate::auth::may_publish(self.claims.as_deref(), &p.channel, &class).map_err(|why| {
            (
                ErrorCode::Forbidden,
                format!("{}: {why}", quote(&p.channel)),
            )
        })?;
        let data = self.ask_publish(&p.channel, &p.event_type, p.data).await?;
        let publisher = Publisher {
            user_id: self.handle.user_id.as_deref().map(str::to_owned),
            connection_id: self.shared.conns.connection_id(self.handle.seq),
        };
        let outcome = self
            .shared
            .publish(&p.channel, &p.event_type, data, Some(publisher))
            .await
            .map_err(|_| {
                (
                    ErrorCode::Unavailable,
                    "the event could not be published; try again".to_owned(),
                )
            })?;
        Ok(ServerMessage::Published {
            channel: p.channel,
            offset: outcome.offset,
        })
    }
}
