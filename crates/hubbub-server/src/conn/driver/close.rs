//! How a connection ends: the close handshake (`disconnect`, the close
//! frame, the wait for the peer's), failing after a framing error, and the
//! cleanup once the task is done.

use std::time::Duration;

use hubbub_protocol::CloseCode;
use hubbub_ws::{close_frame, WsError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{Conn, Role};
use crate::conn::handle::CloseRequest;
use crate::session::Session;

/// How the connection is ending.
pub(super) struct Closing {
    pub(super) deadline: Instant,
    /// Drop the socket as soon as everything queued is written (we answered
    /// the peer's close, or failed the connection).
    pub(super) when_flushed: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(super) fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.session.shared.config.connection.close_timeout_ms)
    }

    /// Fails the connection after a framing error (1002, 1007, 1009).
    pub(super) fn fail(&mut self, err: WsError) {
        if self.closing.is_some() {
            return;
        }
        if err.close_code() != CloseCode::PROTOCOL_ERROR.0 {
            tracing::debug!(error = %err, "closing connection");
        }
        let mut req = CloseRequest::new(CloseCode(err.close_code()));
        req.reason = err.to_string().into();
        self.begin_close(req);
        if let Some(c) = &mut self.closing {
            c.when_flushed = true;
        }
        self.read_eof = true;
    }

    /// Sends `disconnect` and the close frame (dropping queued frames first
    /// when asked), then waits for the peer's close up to the close timeout.
    pub(super) fn begin_close(&mut self, req: CloseRequest) {
        if self.closing.is_some() {
            return;
        }
        self.session.handle.close(req.clone());
        if req.drop_queued {
            // A partly written frame must be finished or the stream breaks.
            self.out.wq.truncate(usize::from(self.out.wpos > 0));
        } else {
            self.session.handle.drain_into(&mut self.out.wq);
        }
        if self.role == Role::Hub {
            if let Some(frame) = self.session.disconnect_frame(&req) {
                self.out.wq.push_back(frame);
            }
        }
        self.out.wq.push_back(close_frame(req.code.0, &req.reason));
        self.closing = Some(Closing {
            deadline: Instant::now() + self.close_timeout(),
            when_flushed: false,
        });
        // The connection is gone for everyone else from now on, not once
        // a silent peer's close timeout has run out too: it leaves its
        // channels and their presence at once.
        self.session.end();
    }

    pub(super) fn finish(self, lifetime: Duration) {
        self.session.end();
        let Session { shared, handle, .. } = &self.session;
        shared.conns.remove(handle);
        if let Some(user) = handle.user_id.as_deref() {
            shared.engine.broker.detach_user(user);
        }
        shared.on_disconnect.tell(|| {
            let (code, reason) = match handle.close_request() {
                Some(r) => (r.code.0, r.reason.into_owned()),
                None => (1006, "connection_lost".to_owned()),
            };
            crate::Disconnected {
                connection_id: shared.conns.connection_id(handle.seq),
                user_id: handle.user_id.as_deref().map(str::to_owned),
                code,
                reason,
                duration_ms: lifetime.as_millis() as u64,
            }
        });
        let m = &shared.metrics;
        let s = &handle.stats;
        use std::sync::atomic::Ordering::Relaxed;
        m.closed_messages_sent
            .fetch_add(s.messages_sent.load(Relaxed), Relaxed);
        m.closed_messages_received
            .fetch_add(s.messages_received.load(Relaxed), Relaxed);
        m.closed_bytes_sent
            .fetch_add(s.bytes_sent.load(Relaxed), Relaxed);
        m.closed_bytes_received
            .fetch_add(s.bytes_received.load(Relaxed), Relaxed);
        m.closed_connection_ms
            .fetch_add(lifetime.as_millis() as u64, Relaxed);
        m.connections_closed.fetch_add(1, Relaxed);
    }
}
