//! Presence for the session: entering it on subscribe where the
//! namespace keeps it, and the `presence` and `presence_stats` commands.

use hubbub_protocol::excerpt::quote;
use hubbub_protocol::rooms::PresenceEntry;
use hubbub_protocol::{validate_channel, ErrorCode, ServerMessage};

use super::Session;
use crate::metrics::Metrics;

type Reply = Result<ServerMessage, (ErrorCode, String)>;

impl Session {
    /// Adds this connection to `channel`'s presence where its namespace
    /// keeps presence (rooms are joined with `join_room`, not here). Its
    /// info is the token's `info` claim with what the subscribe hook
    /// attached (`extra`) merged over it.
    pub(super) async fn enter_presence(
        &self,
        channel: &str,
        extra: Option<&crate::hooks::Info>,
    ) -> Result<(), crate::engine::EngineError> {
        let class = crate::channel::classify(&self.shared.config, channel);
        if !class.ns.presence || matches!(class.kind, crate::channel::Kind::Room(_)) {
            return Ok(());
        }
        let mut info = self
            .claims
            .as_ref()
            .and_then(|c| c.info.clone())
            .unwrap_or_default();
        if let Some(extra) = extra {
            info.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let entry = PresenceEntry {
            user_id: self.handle.user_id.as_deref().map(str::to_owned),
            connection_id: self.shared.conns.connection_id(self.handle.seq),
            info,
            joined_at: crate::util::now_ms(),
        };
        self.shared.engine.presence.add(channel, entry).await
    }

    /// `presence` and `presence_stats`: who is on a channel the connection
    /// may read, or only how many. A room's are for its members (and
    /// admins) only.
    pub(super) async fn presence(&mut self, channel: String, stats_only: bool) -> Reply {
        validate_channel(&channel)
            .map_err(|m| (ErrorCode::BadRequest, format!("{}: {m}", quote(&channel))))?;
        self.may_subscribe(&channel)?;
        let class = crate::channel::classify(&self.shared.config, &channel);
        if !class.presence() {
            return Err((
                ErrorCode::BadRequest,
                format!(
                    "{}: presence is not kept on this channel (its namespace has no presence = true)",
                    quote(&channel)
                ),
            ));
        }
        if let crate::channel::Kind::Room(_) = class.kind {
            let admin = self.claims.as_ref().is_some_and(|c| c.admin);
            let member = self
                .handle
                .subscriptions
                .lock()
                .iter()
                .any(|c| **c == *channel);
            if !member && !admin {
                return Err((
                    ErrorCode::Forbidden,
                    format!("{}: only the room's members may ask", quote(&channel)),
                ));
            }
        }
        let presence = &self.shared.engine.presence;
        let unavailable = |e: crate::engine::EngineError| {
            Metrics::inc(&self.shared.metrics.engine_errors);
            (ErrorCode::Unavailable, e.to_string())
        };
        if stats_only {
            let s = presence.stats(&channel).await.map_err(unavailable)?;
            Ok(ServerMessage::PresenceStats {
                channel,
                num_clients: s.num_clients,
                num_users: s.num_users,
            })
        } else {
            let members = presence.list(&channel).await.map_err(unavailable)?;
            Ok(ServerMessage::Presence { channel, members })
        }
    }
}
