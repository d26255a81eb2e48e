//! The task that owns one connection's socket.
//!
//! One `poll_fn` multiplexes everything the connection waits for: the socket
//! becoming readable, the socket accepting more bytes, new frames in the
//! outbox, and one timer (next ping, heartbeat deadline or close deadline).
//! Reads go into a per-thread scratch buffer, so an idle connection owns no
//! read buffer at all; only bytes of an incomplete frame are kept. Writes
//! take everything queued and hand it to one vectored write.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use hubbub_protocol::{CloseCode, ErrorCode, ServerMessage};
use hubbub_ws::{close_frame, server_frame, Decoder, DecoderConfig, Message, OpCode, WsError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::handle::{CloseRequest, ConnHandle, ConnState, Push, QueueLimits};
use super::ratelimit::{RateLimiter, Verdict};
use crate::auth::Claims;
use crate::hub::encode_frame;
use crate::metrics::Metrics;
use crate::state::Shared;
use crate::util::now_ms;

const SCRATCH_LEN: usize = 64 * 1024;
const MAX_IOVECS: usize = 128;
/// Keep at most this much capacity in an emptied read buffer.
const KEEP_RBUF: usize = 4096;
/// Writes per timer period after which an emptied write queue keeps its
/// allocation until the next timer: below it the connection is idle enough
/// to own none, above it freeing and reallocating per frame (on two
/// threads, which defeats the allocator's caches) costs measurable CPU.
const KEEP_WQ_AFTER_WRITES: u32 = 8;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_LEN].into_boxed_slice());
}

/// What woke the connection task.
enum Event {
    Inbound,
    Timer,
    CloseRequested(CloseRequest),
    Flushed,
    Eof,
    Failed(io::Error),
}

/// How the connection is ending.
struct Closing {
    deadline: Instant,
    /// Drop the socket as soon as everything queued is written (we answered
    /// the peer's close, or failed the connection).
    when_flushed: bool,
}

/// What the endpoint does with data messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The hubbub protocol (`/ws`).
    Hub,
    /// Testing only: echo every message back (conformance suites).
    Echo,
}

/// The task-owned half of a connection.
pub(crate) struct Conn<S> {
    io: S,
    pub(super) shared: Arc<Shared>,
    pub(super) handle: Arc<ConnHandle>,
    role: Role,
    limits: QueueLimits,
    decoder: Decoder,
    rbuf: BytesMut,
    inbox: Vec<Message>,
    failed: Option<WsError>,
    wq: VecDeque<Bytes>,
    wpos: usize,
    /// Writes since the timer last fired (see `KEEP_WQ_AFTER_WRITES`).
    recent_writes: u32,
    pub(super) rate: RateLimiter,
    last_inbound: Instant,
    next_ping: Instant,
    closing: Option<Closing>,
    read_eof: bool,
    /// What the connection's token grants; `None` without a token.
    pub(super) claims: Option<Box<Claims>>,
    /// When the token stops being valid (its `exp` plus the leeway); the
    /// connection closes with 4001 then unless `auth` refreshed it.
    pub(super) auth_expires: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// A connection whose handshake is done; `leftover` holds bytes the
    /// client sent after its request head.
    pub(crate) fn new(
        io: S,
        shared: Arc<Shared>,
        handle: Arc<ConnHandle>,
        role: Role,
        leftover: &[u8],
    ) -> Self {
        let now = Instant::now();
        let cfg = &shared.config.connection;
        let (max_message_size, limits) = match role {
            Role::Hub => (cfg.max_message_size, shared.queue_limits()),
            Role::Echo => (
                64 << 20,
                QueueLimits {
                    max_messages: 1 << 20,
                    max_bytes: 256 << 20,
                },
            ),
        };
        let decoder = Decoder::new(DecoderConfig {
            max_message_size,
            require_mask: true,
            allow_rsv1: false,
        });
        Conn {
            rate: RateLimiter::new(cfg, now),
            next_ping: now + shared.config.heartbeat_interval(),
            io,
            handle,
            role,
            limits,
            decoder,
            rbuf: BytesMut::from(leftover),
            inbox: Vec::new(),
            failed: None,
            wq: VecDeque::new(),
            wpos: 0,
            recent_writes: 0,
            last_inbound: now,
            closing: None,
            read_eof: false,
            claims: None,
            auth_expires: None,
            shared,
        }
    }

    /// Attaches what the handshake's token granted, and when it expires.
    pub(crate) fn set_auth(&mut self, claims: Option<Box<Claims>>, expires: Option<Instant>) {
        self.claims = claims;
        self.auth_expires = expires;
    }

    /// Runs the connection to its end and unregisters it. Not an `async
    /// fn` taking `self`: that would keep `self` twice in the future's state
    /// (argument and binding), and this future is what every idle
    /// connection costs.
    #[allow(clippy::manual_async_fn)] // deliberately not `async fn`: see above
    pub(crate) fn run(mut self) -> impl std::future::Future<Output = ()> {
        async move {
            let started = Instant::now();
            self.run_loop().await;
            self.finish(started.elapsed());
        }
    }

    async fn run_loop(&mut self) {
        // Bytes pipelined behind the handshake are parsed before the first read.
        if !self.rbuf.is_empty() {
            let buf = std::mem::take(&mut self.rbuf);
            self.feed(&buf);
        }
        let sleep = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(sleep);
        loop {
            let event = if self.inbox.is_empty() && self.failed.is_none() {
                poll_fn(|cx| self.poll_event(cx, sleep.as_mut())).await
            } else {
                Event::Inbound
            };
            match event {
                Event::Inbound => {
                    for msg in std::mem::take(&mut self.inbox) {
                        self.on_message(msg).await;
                    }
                    if self.inbox.capacity() > 16 {
                        self.inbox = Vec::new();
                    }
                    if let Some(err) = self.failed.take() {
                        self.fail(err);
                        sleep.as_mut().reset(self.next_deadline());
                    } else {
                        // A command may have moved a deadline closer (`auth`
                        // with a token that expires sooner); later ones are
                        // found when the timer fires.
                        let next = self.next_deadline();
                        if next < sleep.deadline() {
                            sleep.as_mut().reset(next);
                        }
                    }
                }
                Event::Timer => {
                    if self.on_timer() {
                        break;
                    }
                    sleep.as_mut().reset(self.next_deadline());
                }
                Event::CloseRequested(req) => {
                    self.begin_close(req);
                    sleep.as_mut().reset(self.next_deadline());
                }
                Event::Flushed | Event::Eof => break,
                Event::Failed(e) => {
                    if self.closing.is_none() {
                        tracing::debug!(error = %e, "connection failed");
                        Metrics::inc(&self.shared.metrics.connection_errors);
                    }
                    break;
                }
            }
            if self.closing.as_ref().is_some_and(|c| c.when_flushed) && self.wq.is_empty() {
                // Give the final frames one more chance to go out.
                let _ = poll_fn(|cx| Poll::Ready(self.poll_flush_all(cx))).await;
                if self.wq.is_empty() {
                    break;
                }
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        match &self.closing {
            Some(c) => c.deadline,
            None => {
                let timeout =
                    Duration::from_millis(self.shared.config.connection.connection_timeout_ms);
                let next = self.next_ping.min(self.last_inbound + timeout);
                match self.auth_expires {
                    Some(exp) => next.min(exp),
                    None => next,
                }
            }
        }
    }

    /// Returns true when the connection must end now.
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        if self.recent_writes >= KEEP_WQ_AFTER_WRITES {
            self.handle.release_idle_capacity();
        }
        self.recent_writes = 0;
        if self.wq.is_empty() {
            self.wq = VecDeque::new();
        }
        if let Some(c) = &self.closing {
            return now >= c.deadline;
        }
        if self.auth_expires.is_some_and(|exp| now >= exp) {
            Metrics::inc(&self.shared.metrics.auth_expired_disconnects);
            let mut req = CloseRequest::new(CloseCode::UNAUTHORIZED);
            req.reason = "token expired".into();
            self.begin_close(req);
            return false;
        }
        let cfg = &self.shared.config.connection;
        if now >= self.last_inbound + Duration::from_millis(cfg.connection_timeout_ms) {
            Metrics::inc(&self.shared.metrics.ping_timeouts);
            self.begin_close(CloseRequest::new(CloseCode::HEARTBEAT_TIMEOUT));
            return false;
        }
        if now >= self.next_ping {
            let ping = server_frame(OpCode::Ping, b"");
            self.push_own(&ping);
            self.next_ping = now + self.shared.config.heartbeat_interval();
        }
        false
    }

    /// Queues a frame of this connection's own (replies, pongs) through the
    /// same bounded outbox as publications, so a client that sends without
    /// reading is a slow consumer like any other.
    pub(super) fn push_own(&self, frame: &Bytes) {
        if self.handle.push(frame, self.limits) == Push::Overflow {
            Metrics::inc(&self.shared.metrics.slow_consumer_disconnects);
        }
    }

    /// Encodes and queues a reply.
    pub(super) fn send(&self, msg: &ServerMessage, id: Option<&hubbub_protocol::CorrelationId>) {
        let now = now_ms();
        let wire = self.handle.wire;
        // Every command is answered: a reply that cannot be encoded (a bug;
        // payloads are checked at publish) becomes an `internal` error.
        let frame = encode_frame(msg, id, now, wire).or_else(|| {
            let e = ServerMessage::error(ErrorCode::Internal, "the reply could not be encoded");
            encode_frame(&e, id, now, wire)
        });
        if let Some(frame) = frame {
            self.push_own(&frame);
        }
    }

    /// Puts bytes in front of everything queued: the handshake's 101 head
    /// joined with `connected`, so both leave in the connection's first
    /// write and nothing published meanwhile can overtake them.
    pub(crate) fn queue_head(&mut self, head: Bytes) {
        self.wq.push_front(head);
    }

    /// Queues frames ahead of anything published later but after
    /// everything already queued, without counting against the outbox bound:
    /// used for recovered events and offline queues, whose size the history
    /// and queue limits already bound.
    pub(crate) fn send_direct(&mut self, frames: impl IntoIterator<Item = Bytes>) {
        if self.closing.is_some() {
            return;
        }
        self.handle.drain_into(&mut self.wq);
        self.wq.extend(frames);
    }

    async fn on_message(&mut self, msg: Message) {
        if self.closing.is_some() {
            if let Message::Close(_) = msg {
                // The peer answered our close: the handshake is complete.
                self.closing = Some(Closing {
                    deadline: Instant::now(),
                    when_flushed: true,
                });
            }
            return;
        }
        match msg {
            Message::Ping(payload) => {
                if self.control_allowed() {
                    self.push_own(&server_frame(OpCode::Pong, &payload));
                }
            }
            Message::Pong(_) => {
                self.control_allowed();
            }
            Message::Close(frame) => {
                let code = frame.map(|f| f.code).unwrap_or(1000);
                self.wq.push_back(close_frame(code, ""));
                self.closing = Some(Closing {
                    deadline: Instant::now() + self.close_timeout(),
                    when_flushed: true,
                });
            }
            Message::Text(payload) => self.on_data(payload, false).await,
            Message::Binary(payload) => self.on_data(payload, true).await,
        }
    }

    /// Control frames spend the connection's token bucket like data
    /// messages (PROTOCOL.md section 5): a ping flood is a message flood.
    /// Over the budget a ping gets no pong (an `error` per ping would feed
    /// the flood) and counts as a drop toward the 4029 close. The testing
    /// echo endpoint is exempt, as from every limit.
    fn control_allowed(&mut self) -> bool {
        if self.role == Role::Echo {
            return true;
        }
        if self.handle.state() != ConnState::Open {
            return false;
        }
        self.spend_rate_budget() == Verdict::Allow
    }

    /// Takes one inbound message (data or control) from the token bucket:
    /// counts a drop, and on the verdict `Close` asks for the 4029 close
    /// (the disconnect counted once, however many messages of one read
    /// follow). The caller only decides what a dropped message answers.
    pub(super) fn spend_rate_budget(&mut self) -> Verdict {
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

    async fn on_data(&mut self, payload: Bytes, binary: bool) {
        self.handle
            .stats
            .messages_received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.role {
            Role::Echo => {
                let op = if binary { OpCode::Binary } else { OpCode::Text };
                self.push_own(&server_frame(op, &payload));
            }
            // Boxed: the state of the deepest command (a history read) would
            // otherwise sit inline in every idle connection's future.
            Role::Hub => Box::pin(self.on_command_frame(&payload, binary)).await,
        }
    }

    fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.shared.config.connection.close_timeout_ms)
    }

    /// Fails the connection after a framing error (1002, 1007, 1009).
    fn fail(&mut self, err: WsError) {
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
    fn begin_close(&mut self, req: CloseRequest) {
        if self.closing.is_some() {
            return;
        }
        self.handle.close(req.clone());
        if req.drop_queued {
            // A partly written frame must be finished or the stream breaks.
            self.wq.truncate(usize::from(self.wpos > 0));
        } else {
            self.handle.drain_into(&mut self.wq);
        }
        if self.role == Role::Hub {
            let msg = ServerMessage::Disconnect {
                code: req.code.0,
                reason: req.reason.to_string(),
                reconnect: req.reconnect,
            };
            if let Some(frame) = encode_frame(&msg, None, now_ms(), self.handle.wire) {
                self.wq.push_back(frame);
            }
        }
        self.wq.push_back(close_frame(req.code.0, &req.reason));
        self.closing = Some(Closing {
            deadline: Instant::now() + self.close_timeout(),
            when_flushed: false,
        });
    }

    fn finish(self, lifetime: Duration) {
        let shared = &self.shared;
        let subs = std::mem::take(&mut *self.handle.subscriptions.lock());
        for ch in subs {
            shared.unsubscribe(&ch, self.handle.seq);
        }
        shared.conns.remove(&self.handle);
        let m = &shared.metrics;
        let s = &self.handle.stats;
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

    fn poll_event(&mut self, cx: &mut Context<'_>, sleep: Pin<&mut Sleep>) -> Poll<Event> {
        // Write side: drain the outbox into the socket until it would block.
        loop {
            if self.wq.is_empty() {
                if let Some(req) = self.handle.take(&mut self.wq, cx.waker()) {
                    if self.closing.is_none() {
                        return Poll::Ready(Event::CloseRequested(req));
                    }
                }
                if self.wq.is_empty() {
                    if self.closing.as_ref().is_some_and(|c| c.when_flushed) {
                        return Poll::Ready(Event::Flushed);
                    }
                    break;
                }
            }
            match self.poll_write_some(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Event::Failed(e)),
                Poll::Pending => break,
            }
        }
        // Read side.
        if !self.read_eof {
            match self.poll_read_frames(cx) {
                Poll::Ready(Ok(0)) => {
                    self.read_eof = true;
                    return Poll::Ready(Event::Eof);
                }
                Poll::Ready(Ok(_)) => {
                    self.last_inbound = Instant::now();
                    if !self.inbox.is_empty() || self.failed.is_some() {
                        return Poll::Ready(Event::Inbound);
                    }
                    // Only part of a frame arrived: read again so we register
                    // interest (a Ready read may leave no waker behind).
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Event::Failed(e)),
                Poll::Pending => {}
            }
        }
        if sleep.poll(cx).is_ready() {
            return Poll::Ready(Event::Timer);
        }
        Poll::Pending
    }

    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while !self.wq.is_empty() {
            match self.poll_write_some(cx) {
                Poll::Ready(r) => r?,
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    /// One write of as many queued frames as fit: a plain `write` for a
    /// single frame (the common case at low rates, where `writev`'s iovec
    /// import is measurable), a vectored write for several.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let written = if self.wq.len() == 1 {
            let frame = &self.wq[0][self.wpos..];
            ready!(Pin::new(&mut self.io).poll_write(cx, frame))?
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, frame) in self.wq.iter().take(MAX_IOVECS).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &frame[self.wpos..] } else { frame });
                n = i + 1;
            }
            ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]))?
        };
        if written == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.recent_writes = self.recent_writes.saturating_add(1);
        self.handle.stats.add_sent_bytes(written);
        let mut left = written;
        let mut frames = 0u64;
        while left > 0 {
            let Some(front) = self.wq.front() else { break };
            let rem = front.len() - self.wpos;
            if left >= rem {
                left -= rem;
                self.wq.pop_front();
                self.wpos = 0;
                frames += 1;
            } else {
                self.wpos += left;
                left = 0;
            }
        }
        self.handle.stats.add_sent_frames(frames);
        if self.wq.is_empty() && self.recent_writes < KEEP_WQ_AFTER_WRITES {
            // An idle connection keeps no queue allocation.
            self.wq = VecDeque::new();
        }
        if self.wq.is_empty() {
            ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads once into the thread's scratch buffer and parses what arrived.
    /// Returns the number of bytes read (0 at end of stream).
    fn poll_read_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut rb = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n > 0 {
                self.handle
                    .stats
                    .bytes_received
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                self.feed(&scratch[..n]);
            }
            Poll::Ready(Ok(n))
        })
    }

    /// Parses complete frames out of `input` (appended to any kept partial
    /// frame) and keeps only the bytes of an incomplete one.
    fn feed(&mut self, input: &[u8]) {
        if self.failed.is_some() || self.read_eof {
            return;
        }
        if self.rbuf.is_empty() {
            let used = self.parse(input);
            if used < input.len() && self.failed.is_none() {
                self.rbuf.extend_from_slice(&input[used..]);
            }
        } else {
            self.rbuf.extend_from_slice(input);
            let buf = std::mem::take(&mut self.rbuf);
            let used = self.parse(&buf);
            let mut buf = buf;
            buf.advance(used);
            self.rbuf = buf;
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_RBUF {
            self.rbuf = BytesMut::new();
        } else if let Some(need) = self.decoder.needed(&self.rbuf) {
            self.rbuf.reserve(need);
        }
    }

    fn parse(&mut self, mut buf: &[u8]) -> usize {
        let mut used = 0;
        loop {
            match self.decoder.decode(buf) {
                Ok((0, _)) => return used,
                Ok((n, msg)) => {
                    used += n;
                    buf = &buf[n..];
                    if let Some(m) = msg {
                        self.inbox.push(m);
                    }
                }
                Err(e) => {
                    self.failed = Some(e);
                    return used;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection future is allocated once per connection and lives as
    /// long as it does: keep an eye on its size (idle cost per connection).
    #[tokio::test]
    async fn connection_task_stays_small() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let shared = Shared::new(crate::Config::default());
        let handle = Arc::new(ConnHandle::new(
            1,
            None,
            hubbub_protocol::Encoding::Json,
            client.local_addr().unwrap(),
            0,
        ));
        let conn = Conn::new(client, shared, handle, Role::Hub, &[]);
        let size = std::mem::size_of_val(&conn);
        let fut = conn.run();
        let fut_size = std::mem::size_of_val(&fut);
        println!(
            "Conn: {size} bytes, run() future: {fut_size} bytes, ConnHandle: {} bytes",
            std::mem::size_of::<ConnHandle>()
        );
        assert!(
            fut_size <= 1024,
            "connection future grew to {fut_size} bytes"
        );
    }
}
