//! What a new connection does first (restore every channel and room, then
//! flush the offline queue) and how a callback token is kept fresh on it.

use std::collections::BTreeMap;
use std::time::Duration;

use hubbub_protocol::message::{Auth, Command, JoinRoom, Subscribe};
use tokio::time::Instant;

use crate::chans::Membership;
use crate::config::{token_expiry, TokenSource};
use crate::conn::{Conn, Pending, Status, Then};
use crate::events::ClientEvent;
use crate::session::{now_ms, Live};

impl Conn {
    /// When to refresh a callback token that expires at `exp` (seconds):
    /// `refresh_before` ahead of expiry, or at 3/4 of what is left for
    /// tokens too short for that.
    pub(crate) fn refresh_time(&self, exp: Option<u64>) -> Option<Instant> {
        if !matches!(self.cfg.token, TokenSource::Callback(_)) || !self.cfg.proactive_refresh {
            return None;
        }
        let left = Duration::from_millis(exp?.saturating_mul(1000).saturating_sub(now_ms()));
        let wait = if left > self.cfg.refresh_before * 4 {
            left - self.cfg.refresh_before
        } else {
            left * 3 / 4
        };
        Some(Instant::now() + wait)
    }

    pub(crate) async fn refresh(&mut self, live: &mut Live) -> Result<(), String> {
        let TokenSource::Callback(f) = &self.cfg.token else {
            return Ok(());
        };
        let token = match tokio::time::timeout(self.cfg.request_timeout, f()).await {
            Ok(Ok(t)) => t,
            // No fresh token: the hub closes with 4001 at expiry and the
            // reconnect asks the callback again.
            _ => return Ok(()),
        };
        self.token = Some(token.clone());
        let id = self.id(Pending::Internal {
            then: Then::Nothing,
        });
        self.send(live, &Command::Auth(Auth { token }), id).await
    }

    /// `connected`: restore every channel and room, then flush the queue.
    pub(crate) async fn connected(
        &mut self,
        live: &mut Live,
        connection_id: String,
        user_id: Option<String>,
    ) -> Result<(), String> {
        let _ = self.status.send(Status::Connected {
            connection_id: connection_id.clone(),
            user_id: user_id.clone(),
        });
        self.emit(ClientEvent::Connected {
            connection_id,
            user_id,
        });
        live.refresh_at = self.refresh_time(self.token.as_deref().and_then(token_expiry));
        let mut restore = Vec::new();
        for (name, c) in &self.chans {
            match &c.membership {
                Membership::Channel { event_types } => {
                    let since = c.last.clone();
                    let cmd = Command::Subscribe(Subscribe {
                        channels: vec![name.clone()],
                        since: since.clone().map(|p| BTreeMap::from([(name.clone(), p)])),
                        event_types: event_types.clone(),
                    });
                    let then = Then::Subscribed {
                        channel: name.clone(),
                        since,
                    };
                    restore.push((cmd, then));
                }
                Membership::Room { room, info } => {
                    let cmd = Command::JoinRoom(JoinRoom {
                        room: room.clone(),
                        info: info.clone(),
                    });
                    restore.push((
                        cmd,
                        Then::Joined {
                            channel: name.clone(),
                        },
                    ));
                }
            }
        }
        for (cmd, then) in restore {
            let channel = match &then {
                Then::Subscribed { channel, .. } | Then::Joined { channel } => Some(channel),
                _ => None,
            };
            let p = match channel.and_then(|c| self.awaiting.remove(c)) {
                Some(reply) => Pending::Caller { reply, then },
                None => Pending::Internal { then },
            };
            let id = self.id(p);
            self.send(live, &cmd, id).await?;
        }
        while let Some(r) = self.queue.pop_front() {
            self.send_request(live, r).await?;
        }
        Ok(())
    }
}
