//! The hubbub commands a connection runs (PROTOCOL.md section 2).

use std::sync::Arc;

use hubbub_protocol::message::{Publish, Subscribe, Unsubscribe};
use hubbub_protocol::{
    decode_command, validate_channel, CloseCode, Command, CorrelationId, ErrorCode, Publisher,
    ServerMessage, SubscribedChannel,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::driver::Conn;
use super::handle::CloseRequest;
use super::ratelimit::Verdict;
use crate::metrics::Metrics;

/// Longest `event_type` accepted.
const MAX_EVENT_TYPE_LEN: usize = 128;

/// Channels the hub publishes itself; clients never publish there.
pub(crate) const BUILTIN_STREAMS: [&str; 9] = [
    "metrics",
    "nodes",
    "tasks",
    "alerts",
    "resources",
    "topology",
    "connections",
    "status",
    "logs",
];

type Reply = Result<ServerMessage, (ErrorCode, String)>;

fn err(code: ErrorCode, msg: impl Into<String>) -> Reply {
    Err((code, msg.into()))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// One data frame of the hubbub protocol: rate limit, decode, run, reply.
    pub(super) fn on_command_frame(&mut self, payload: &[u8], binary: bool) {
        match self
            .rate
            .check(&self.shared.config.connection, Instant::now())
        {
            Verdict::Allow => {}
            Verdict::Drop => {
                Metrics::inc(&self.shared.metrics.rate_limited_messages);
                let id = decode_command(payload, binary).ok().and_then(|i| i.id);
                self.send_error(
                    ErrorCode::RateLimited,
                    "message rate limit exceeded; message dropped",
                    id.as_ref(),
                );
                return;
            }
            Verdict::Close => {
                Metrics::inc(&self.shared.metrics.rate_limited_messages);
                Metrics::inc(&self.shared.metrics.rate_limit_disconnects);
                self.handle
                    .close(CloseRequest::new(CloseCode::RATE_LIMITED));
                return;
            }
        }
        let inbound = match decode_command(payload, binary) {
            Ok(i) => i,
            Err(e) => {
                self.send_error(e.code, &e.message, e.correlation_id.as_ref());
                return;
            }
        };
        let id = inbound.id;
        let reply = match inbound.command {
            Command::Subscribe(s) => self.subscribe(s),
            Command::Unsubscribe(u) => self.unsubscribe(u),
            Command::Publish(p) => self.publish(p),
            Command::Ping(_) => Ok(ServerMessage::Pong {}),
            Command::GetSubscriptions(_) => Ok(ServerMessage::Subscriptions {
                channels: self
                    .handle
                    .subscriptions
                    .lock()
                    .iter()
                    .map(|c| c.to_string())
                    .collect(),
            }),
            other => err(
                ErrorCode::Unavailable,
                format!("{} is not offered by this hub", other.type_name()),
            ),
        };
        match reply {
            Ok(msg) => self.send(&msg, id.as_ref()),
            Err((code, message)) => self.send_error(code, &message, id.as_ref()),
        }
    }

    fn send_error(&self, code: ErrorCode, message: &str, id: Option<&CorrelationId>) {
        Metrics::inc(&self.shared.metrics.errors_sent);
        self.send(&ServerMessage::error(code, message), id);
    }

    /// Checks that this connection may receive `channel`.
    fn may_subscribe(&self, channel: &str) -> Result<(), (ErrorCode, String)> {
        if let Some(user) = channel.strip_prefix("user:") {
            if self.handle.user_id.as_deref() != Some(user) {
                return Err((
                    ErrorCode::Forbidden,
                    format!("{channel} belongs to another user"),
                ));
            }
        }
        Ok(())
    }

    fn subscribe(&mut self, s: Subscribe) -> Reply {
        if s.channels.is_empty() {
            return err(ErrorCode::BadRequest, "channels must not be empty");
        }
        let filter: Option<Arc<[String]>> = match s.event_types {
            Some(t) if t.is_empty() => {
                return err(ErrorCode::BadRequest, "event_types must not be empty")
            }
            Some(t) => Some(t.into()),
            None => None,
        };
        let mut wanted: Vec<&String> = Vec::with_capacity(s.channels.len());
        for ch in &s.channels {
            validate_channel(ch).map_err(|m| (ErrorCode::BadRequest, format!("{ch:?}: {m}")))?;
            self.may_subscribe(ch)?;
            if !wanted.contains(&ch) {
                wanted.push(ch);
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
                return err(
                    ErrorCode::LimitExceeded,
                    format!("at most {max} subscriptions per connection"),
                );
            }
        }
        let mut positions = Vec::with_capacity(wanted.len());
        for ch in wanted {
            let name = self.shared.hub.subscribe(ch, &self.handle, filter.clone());
            let mut subs = self.handle.subscriptions.lock();
            if !subs.iter().any(|x| **x == *name) {
                subs.push(name);
            }
            drop(subs);
            positions.push(SubscribedChannel {
                channel: ch.clone(),
                offset: 0,
                epoch: String::new(),
                recovered: false,
                missed: 0,
            });
        }
        Ok(ServerMessage::Subscribed {
            channels: positions,
        })
    }

    fn unsubscribe(&mut self, u: Unsubscribe) -> Reply {
        if u.channels.is_empty() {
            return err(ErrorCode::BadRequest, "channels must not be empty");
        }
        for ch in &u.channels {
            validate_channel(ch).map_err(|m| (ErrorCode::BadRequest, format!("{ch:?}: {m}")))?;
        }
        for ch in &u.channels {
            self.shared.hub.unsubscribe(ch, self.handle.seq);
            self.handle.subscriptions.lock().retain(|x| **x != **ch);
        }
        Ok(ServerMessage::Unsubscribed {
            channels: u.channels,
        })
    }

    fn publish(&mut self, p: Publish) -> Reply {
        validate_channel(&p.channel)
            .map_err(|m| (ErrorCode::BadRequest, format!("{:?}: {m}", p.channel)))?;
        if p.event_type.is_empty() || p.event_type.len() > MAX_EVENT_TYPE_LEN {
            return err(
                ErrorCode::BadRequest,
                format!("event_type must be 1 to {MAX_EVENT_TYPE_LEN} characters"),
            );
        }
        let ns = self.shared.config.namespace(&p.channel);
        if !ns.publish
            || BUILTIN_STREAMS.contains(&p.channel.as_str())
            || p.channel.starts_with("user:")
        {
            return err(
                ErrorCode::Forbidden,
                format!("clients may not publish to {}", p.channel),
            );
        }
        let publisher = Publisher {
            user_id: self.handle.user_id.as_deref().map(str::to_owned),
            connection_id: self.shared.conns.connection_id(self.handle.seq),
        };
        let outcome = self
            .shared
            .hub
            .publish(&p.channel, &p.event_type, p.data, Some(publisher));
        Ok(ServerMessage::Published {
            channel: p.channel,
            offset: outcome.offset,
        })
    }
}
