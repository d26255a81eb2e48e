//! The protocol session of one connection, whatever carries its bytes.
//!
//! A [`Session`] is what a client may do and has done: it runs the hubbub
//! commands ([`commands`]: dispatch and replies, subscribe with recovery,
//! history, publish, auth), keeps the connection's subscription
//! bookkeeping, its claims and when its token expires, and spends its
//! inbound rate budget ([`ratelimit`]). It knows nothing of WebSocket. A
//! transport hands it each data message's payload and whether it came as
//! binary, asks it for its deadline and for the `disconnect` message when
//! the connection ends, and lets it spend the rate budget on whatever else
//! the transport reads (WebSocket pings and pongs). The session answers
//! through the connection's [`ConnHandle`], in frames built for the
//! handle's [`Wire`](crate::hub::Wire), queueing a reply and the events it
//! recovered ahead of later ones with [`ConnHandle::push_ahead`]. It needs
//! nothing of the transport itself, so a transport can keep writing while
//! a command waits (on a hook, on the engine).
//!
//! The transport task owns its session inline (the WebSocket one is
//! `conn::driver`): no allocation of its own, and an idle connection pays
//! only for the fields below. The state of a running command is not among
//! them: the transport boxes each command's future.

mod channels;
mod commands;
mod hooks;
mod jobs;
mod presence;
mod ratelimit;
mod rooms;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hubbub_protocol::{CloseCode, CorrelationId, ErrorCode, ServerMessage};
use tokio::time::Instant;

use ratelimit::RateLimiter;
pub(crate) use ratelimit::Verdict;

use crate::auth::Claims;
use crate::conn::handle::{CloseRequest, ConnHandle, Push, QueueLimits};
use crate::hub::encode_frame;
use crate::metrics::Metrics;
use crate::state::Shared;
use crate::util::now_ms;

/// The protocol half of one connection.
pub(crate) struct Session {
    /// What every task shares.
    pub(crate) shared: Arc<Shared>,
    /// The connection's shared half: its outbox, counters and
    /// subscriptions. The transport writes through it too.
    pub(crate) handle: Arc<ConnHandle>,
    /// Bounds of the outbox for the connection's own frames.
    limits: QueueLimits,
    rate: RateLimiter,
    /// The ephemeral events' own budget (typing indicators, cursor
    /// moves), made on the first one: connections that never send one pay
    /// a pointer for it.
    ephemeral: Option<Box<ratelimit::Bucket>>,
    /// What the connection's token grants; `None` without a token.
    claims: Option<Box<Claims>>,
    /// When the token stops being valid (its `exp` plus the leeway); the
    /// connection closes with 4001 then unless `auth` refreshed it.
    auth_expires: Option<Instant>,
    /// `rpc` calls running for this connection, made on the first call.
    rpc_in_flight: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Session {
    /// A session for a connection whose handshake is done, with a full
    /// rate budget; its own frames respect `limits`.
    pub(crate) fn new(shared: Arc<Shared>, handle: Arc<ConnHandle>, limits: QueueLimits) -> Self {
        Session {
            rate: RateLimiter::new(&shared.config.connection, Instant::now()),
            shared,
            handle,
            limits,
            ephemeral: None,
            claims: None,
            auth_expires: None,
            rpc_in_flight: None,
        }
    }

    /// Takes what a token grants (at the handshake, or on `auth`) and
    /// moves the connection's expiry to the token's.
    pub(crate) fn set_claims(&mut self, claims: Option<Claims>) {
        self.auth_expires = claims
            .as_ref()
            .and_then(|c| c.expires_at)
            .and_then(|exp| expiry_instant(exp, self.shared.config.auth.leeway_s));
        self.claims = claims.map(Box::new);
    }

    /// When the session wants the transport's timer: the token's expiry.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.auth_expires
    }

    /// For the transport's timer: the close the session asks for once its
    /// deadline has passed (4001, the token expired).
    pub(crate) fn on_deadline(&self, now: Instant) -> Option<CloseRequest> {
        if self.auth_expires.is_none_or(|exp| now < exp) {
            return None;
        }
        Metrics::inc(&self.shared.metrics.auth_expired_disconnects);
        let mut req = CloseRequest::new(CloseCode::UNAUTHORIZED);
        req.reason = "token expired".into();
        Some(req)
    }

    /// The `disconnect` message that goes out ahead of the transport's own
    /// close, with the same code.
    pub(crate) fn disconnect_frame(&self, req: &CloseRequest) -> Option<Bytes> {
        let msg = ServerMessage::Disconnect {
            code: req.code.0,
            reason: req.reason.to_string(),
            reconnect: req.reconnect,
        };
        encode_frame(&msg, None, now_ms(), self.handle.wire)
    }

    /// Queues a frame of this connection's own (replies; the transport's
    /// pongs) through the same bounded outbox as publications, so a client
    /// that sends without reading is a slow consumer like any other.
    pub(crate) fn push(&self, frame: &Bytes) {
        push_frame(&self.shared, &self.handle, self.limits, frame);
    }

    /// Encodes a reply for the connection's wire and queues it.
    pub(crate) fn send(&self, msg: &ServerMessage, id: Option<&CorrelationId>) {
        send_to(&self.shared, &self.handle, self.limits, msg, id);
    }

    /// Takes one inbound message (data, or the transport's control
    /// messages) from the token bucket: counts a drop, and on the verdict
    /// `Close` asks for the 4029 close (the disconnect counted once,
    /// however many messages of one read follow). The caller only decides
    /// what a dropped message answers.
    pub(crate) fn spend_rate_budget(&mut self) -> Verdict {
        let verdict = self
            .rate
            .check(&self.shared.config.connection, Instant::now());
        if verdict != Verdict::Allow {
            Metrics::inc(&self.shared.metrics.rate_limited_messages);
        }
        if verdict == Verdict::Close
            && self
                .handle
                .close(CloseRequest::new(CloseCode::RATE_LIMITED))
        {
            Metrics::inc(&self.shared.metrics.rate_limit_disconnects);
        }
        verdict
    }

    /// Leaves every channel, once the connection is over (and so every
    /// room: leaving a room's channel leaves the room).
    pub(crate) fn end(&self) {
        let subs = std::mem::take(&mut *self.handle.subscriptions.lock());
        let seq = self.handle.seq;
        for ch in &subs {
            self.shared.unsubscribe(ch, seq);
        }
    }
}

/// Queues `frame` for `handle` within `limits`; false when it was not
/// queued (closed, or overflowed: the connection is being closed as slow).
fn push_frame(shared: &Shared, handle: &ConnHandle, limits: QueueLimits, frame: &Bytes) -> bool {
    match handle.push(frame, limits) {
        Push::Queued => true,
        Push::Overflow => {
            Metrics::inc(&shared.metrics.slow_consumer_disconnects);
            false
        }
        Push::Closed => false,
    }
}

/// Encodes `msg` for `handle`'s wire and queues it: every message a
/// connection is sent for itself, by its session or by an `rpc` call
/// finishing in a task of its own. Every command is answered: a message
/// that cannot be encoded (a bug; payloads are checked at publish)
/// becomes an `internal` error. False when nothing was queued.
pub(crate) fn send_to<T: serde::Serialize>(
    shared: &Shared,
    handle: &ConnHandle,
    limits: QueueLimits,
    msg: &T,
    id: Option<&CorrelationId>,
) -> bool {
    let now = now_ms();
    let wire = handle.wire;
    let frame = encode_frame(msg, id, now, wire).or_else(|| {
        let e = ServerMessage::error(ErrorCode::Internal, "the reply could not be encoded");
        encode_frame(&e, id, now, wire)
    });
    frame.is_some_and(|f| push_frame(shared, handle, limits, &f))
}

/// When a token whose `exp` is `exp_s` (seconds since the epoch) stops
/// being accepted: `exp` plus the leeway. `None` when that is too far
/// ahead to represent (the token then outlives the process anyway).
fn expiry_instant(exp_s: u64, leeway_s: u64) -> Option<Instant> {
    let at_ms = exp_s.saturating_add(leeway_s).saturating_mul(1000);
    Instant::now().checked_add(Duration::from_millis(at_ms.saturating_sub(now_ms())))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::task::Waker;

    use hubbub_protocol::Encoding;
    use serde_json::Value;

    use super::*;

    fn session() -> Session {
        let shared = Shared::new(crate::Config::default());
        let handle = Arc::new(ConnHandle::new(
            shared.conns.next_seq(),
            None,
            Encoding::Json,
            ([127, 0, 0, 1], 1).into(),
            0,
        ));
        let limits = shared.queue_limits();
        Session::new(shared, handle, limits)
    }

    fn outbox(s: &Session) -> Vec<Bytes> {
        let mut q = VecDeque::new();
        s.handle.take(&mut q, Waker::noop());
        q.into()
    }

    /// The message in a JSON frame of the `/ws` wire (under 64 KiB).
    fn message(frame: &Bytes) -> Value {
        assert_eq!(frame[0], 0x81, "a text frame");
        let header = if frame[1] == 126 { 4 } else { 2 };
        serde_json::from_slice(&frame[header..]).unwrap()
    }

    #[tokio::test]
    async fn replies_go_to_the_outbox_in_the_handles_wire() {
        let mut s = session();
        s.on_message(br#"{"type":"ping","id":7}"#, false).await;
        let out = outbox(&s);
        assert_eq!(out.len(), 1);
        let reply = message(&out[0]);
        assert_eq!(reply["type"], "pong");
        assert_eq!(reply["correlation_id"], 7);
    }

    #[tokio::test]
    async fn subscribe_answers_ahead_of_live_events() {
        let mut s = session();
        let live = Bytes::from_static(b"live");
        s.push(&live);
        let cmd = br#"{"type":"subscribe","id":1,"channels":["news"]}"#;
        s.on_message(cmd, false).await;
        // Fills the bound: the reply, queued ahead, does not count.
        for _ in 1..s.limits.max_messages {
            s.push(&live);
        }
        let out = outbox(&s);
        assert_eq!(out.len(), s.limits.max_messages + 1);
        assert_eq!(out[0], live);
        assert_eq!(message(&out[1])["type"], "subscribed");
        assert_eq!(*s.handle.subscriptions.lock(), [Arc::from("news")]);
        s.end();
        assert!(s.handle.subscriptions.lock().is_empty());
        assert_eq!(s.shared.hub.subscriber_count("news"), None);
    }
}
