//! The WebSocket transport: the task that owns one connection's socket.
//!
//! One `poll_fn` multiplexes everything the connection waits for: the socket
//! becoming readable, the socket accepting more bytes, new frames in the
//! outbox, and one timer (next ping, heartbeat deadline, the session's token
//! expiry or the close deadline). Reads go into a per-thread scratch buffer,
//! so an idle connection owns no read buffer at all; only bytes of an
//! incomplete frame are kept. Writes take everything queued and hand it to
//! one vectored write.
//!
//! This task does framing, control frames (ping, pong, close), heartbeats
//! and I/O. What the data messages mean is the [`Session`]'s: the task owns
//! one inline and hands it each data message's payload; the session
//! answers through the connection's outbox. While a command waits (on a
//! decision hook, on the engine) the task goes on writing what the outbox
//! receives, but reads no further command, so commands are answered in
//! order and a slow one delays only what the same client sent after it.
//! The testing echo role never reaches the session.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hubbub_protocol::CloseCode;
use hubbub_ws::{close_frame, server_frame, Decoder, DecoderConfig, Message, OpCode, WsError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::handle::{CloseRequest, ConnHandle, ConnState, QueueLimits};
use crate::auth::Claims;
use crate::metrics::Metrics;
use crate::session::{Session, Verdict};
use crate::state::Shared;

mod close;
mod outgoing;
mod socket;

use close::Closing;
use outgoing::Outgoing;

/// Writes per timer period after which an emptied write queue keeps its
/// allocation until the next timer: below it the connection is idle enough
/// to own none, above it freeing and reallocating per frame (on two
/// threads, which defeats the allocator's caches) costs measurable CPU.
const KEEP_WQ_AFTER_WRITES: u32 = 8;

/// What woke the connection task.
enum Event {
    Inbound,
    Timer,
    CloseRequested(CloseRequest),
    Flushed,
    Eof,
    Failed(io::Error),
}

/// What the endpoint does with data messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The hubbub protocol (`/ws`).
    Hub,
    /// Testing only: echo every message back (conformance suites).
    Echo,
}

/// The task-owned half of a connection: its socket and its session.
pub(crate) struct Conn<S> {
    io: S,
    /// The protocol half; also holds the shared state and the handle,
    /// which the task reaches through it (one copy of each per connection).
    session: Session,
    role: Role,
    decoder: Decoder,
    rbuf: BytesMut,
    inbox: Vec<Message>,
    failed: Option<WsError>,
    out: Outgoing,
    /// Writes since the timer last fired (see `KEEP_WQ_AFTER_WRITES`).
    recent_writes: u32,
    last_inbound: Instant,
    next_ping: Instant,
    closing: Option<Closing>,
    read_eof: bool,
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
            next_ping: now + shared.config.heartbeat_interval(),
            io,
            session: Session::new(shared, handle, limits),
            role,
            decoder,
            rbuf: BytesMut::from(leftover),
            inbox: Vec::new(),
            failed: None,
            out: Outgoing::default(),
            recent_writes: 0,
            last_inbound: now,
            closing: None,
            read_eof: false,
        }
    }

    /// Attaches what the handshake's token granted (and so when the
    /// connection expires) to its session.
    pub(crate) fn set_claims(&mut self, claims: Option<Claims>) {
        self.session.set_claims(claims);
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
                    let mut broken = None;
                    for msg in std::mem::take(&mut self.inbox) {
                        if let Err(e) = self.on_message(msg).await {
                            broken = Some(e);
                            break;
                        }
                    }
                    if let Some(e) = broken {
                        self.note_failure(e);
                        break;
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
                    self.note_failure(e);
                    break;
                }
            }
            if self.closing.as_ref().is_some_and(|c| c.when_flushed) && self.out.wq.is_empty() {
                // Give the final frames one more chance to go out.
                let _ = poll_fn(|cx| Poll::Ready(self.poll_flush_all(cx))).await;
                if self.out.wq.is_empty() {
                    break;
                }
            }
        }
    }

    /// Counts a socket that failed while the connection was serving.
    fn note_failure(&self, e: io::Error) {
        if self.closing.is_none() {
            tracing::debug!(error = %e, "connection failed");
            Metrics::inc(&self.session.shared.metrics.connection_errors);
        }
    }

    fn next_deadline(&self) -> Instant {
        match &self.closing {
            Some(c) => c.deadline,
            None => {
                let timeout = Duration::from_millis(
                    self.session.shared.config.connection.connection_timeout_ms,
                );
                let next = self.next_ping.min(self.last_inbound + timeout);
                match self.session.deadline() {
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
            self.session.handle.release_idle_capacity();
        }
        self.recent_writes = 0;
        if self.out.wq.is_empty() {
            self.out.wq = VecDeque::new();
        }
        if let Some(c) = &self.closing {
            return now >= c.deadline;
        }
        if let Some(req) = self.session.on_deadline(now) {
            self.begin_close(req);
            return false;
        }
        let shared = &self.session.shared;
        if now
            >= self.last_inbound
                + Duration::from_millis(shared.config.connection.connection_timeout_ms)
        {
            Metrics::inc(&shared.metrics.ping_timeouts);
            self.begin_close(CloseRequest::new(CloseCode::HEARTBEAT_TIMEOUT));
            return false;
        }
        if now >= self.next_ping {
            let ping = server_frame(OpCode::Ping, b"");
            self.session.push(&ping);
            self.next_ping = now + self.session.shared.config.heartbeat_interval();
        }
        false
    }

    /// Puts bytes in front of everything queued: the handshake's 101 head
    /// joined with `connected`, so both leave in the connection's first
    /// write and nothing published meanwhile can overtake them.
    pub(crate) fn queue_head(&mut self, head: Bytes) {
        self.out.wq.push_front(head);
    }

    /// Queues frames ahead of anything published later but after
    /// everything already queued, without counting against the outbox bound:
    /// used for the offline queue a user's connection starts with (see
    /// [`ConnHandle::push_ahead`]).
    pub(crate) fn send_direct(&mut self, frames: impl IntoIterator<Item = Bytes>) {
        self.session.handle.push_ahead(&mut frames.into_iter());
    }

    /// Handles one inbound message; an error is the socket failing while
    /// a command ran.
    async fn on_message(&mut self, msg: Message) -> io::Result<()> {
        if self.closing.is_some() {
            if let Message::Close(_) = msg {
                // The peer answered our close: the handshake is complete.
                self.closing = Some(Closing {
                    deadline: Instant::now(),
                    when_flushed: true,
                });
            }
            return Ok(());
        }
        match msg {
            Message::Ping(payload) => {
                if self.control_allowed() {
                    self.session.push(&server_frame(OpCode::Pong, &payload));
                }
            }
            Message::Pong(_) => {
                self.control_allowed();
            }
            Message::Close(frame) => {
                let code = frame.map(|f| f.code).unwrap_or(1000);
                // Nothing may follow our close frame: the outbox takes no
                // more, and what it holds goes out first.
                self.session.handle.close(CloseRequest {
                    reason: "".into(),
                    reconnect: false,
                    ..CloseRequest::new(CloseCode(code))
                });
                self.session.handle.drain_into(&mut self.out.wq);
                self.out.wq.push_back(close_frame(code, ""));
                self.closing = Some(Closing {
                    deadline: Instant::now() + self.close_timeout(),
                    when_flushed: true,
                });
            }
            Message::Text(payload) => return self.on_data(payload, false).await,
            Message::Binary(payload) => return self.on_data(payload, true).await,
        }
        Ok(())
    }

    /// Control frames spend the session's rate budget like data messages
    /// (PROTOCOL.md section 5): a ping flood is a message flood.
    /// Over the budget a ping gets no pong (an `error` per ping would feed
    /// the flood) and counts as a drop toward the 4029 close. The testing
    /// echo endpoint is exempt, as from every limit.
    fn control_allowed(&mut self) -> bool {
        if self.role == Role::Echo {
            return true;
        }
        if self.session.handle.state() != ConnState::Open {
            return false;
        }
        self.session.spend_rate_budget() == Verdict::Allow
    }

    async fn on_data(&mut self, payload: Bytes, binary: bool) -> io::Result<()> {
        self.session
            .handle
            .stats
            .messages_received
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.role {
            Role::Echo => {
                let op = if binary { OpCode::Binary } else { OpCode::Text };
                self.session.push(&server_frame(op, &payload));
                Ok(())
            }
            Role::Hub => {
                // Boxed, all of it: the command's state (a history read is
                // the deepest) and what the waiting needs would otherwise
                // sit inline in every idle connection's future. While the
                // command runs (waiting on a hook, on the engine) the
                // connection goes on writing what is published to it; it
                // reads no further command until this one is done, so
                // commands are answered in the order they came.
                let session = &mut self.session;
                let (io, out, recent) = (&mut self.io, &mut self.out, &mut self.recent_writes);
                Box::pin(async move {
                    let handle = Arc::clone(&session.handle);
                    let mut command = std::pin::pin!(session.on_message(&payload, binary));
                    let mut failed = None;
                    poll_fn(|cx| {
                        if command.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(());
                        }
                        if failed.is_none() {
                            failed = out.poll_keep_writing(io, &handle, recent, cx).err();
                        }
                        Poll::Pending
                    })
                    .await;
                    failed.map_or(Ok(()), Err)
                })
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub connection task's state over a loopback socket, its handle,
    /// and the socket's other end (kept open by the caller).
    async fn conn_over_loopback() -> (
        Conn<tokio::net::TcpStream>,
        Arc<ConnHandle>,
        tokio::net::TcpStream,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        let shared = Shared::new(crate::Config::default());
        let handle = Arc::new(ConnHandle::new(
            1,
            None,
            hubbub_protocol::Encoding::Json,
            client.local_addr().unwrap(),
            0,
        ));
        let conn = Conn::new(client, shared, handle.clone(), Role::Hub, &[]);
        (conn, handle, peer)
    }

    /// A connection that subscribed and went idle owns no queue
    /// allocation (idle cost per connection).
    #[tokio::test]
    async fn a_subscribed_idle_connection_keeps_no_queue() {
        let (mut conn, handle, _peer) = conn_over_loopback().await;
        conn.queue_head(Bytes::from_static(b"head"));
        conn.send_direct(std::iter::empty());
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let step = |conn: &mut Conn<tokio::net::TcpStream>,
                    sleep: std::pin::Pin<&mut tokio::time::Sleep>| {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let _ = conn.poll_event(&mut cx, sleep);
        };
        step(&mut conn, sleep.as_mut());
        let cmd = Bytes::from_static(br#"{"type":"subscribe","id":1,"channels":["news"]}"#);
        conn.on_message(Message::Text(cmd)).await.unwrap();
        step(&mut conn, sleep.as_mut());
        assert_eq!((conn.out.wq.capacity(), handle.outbox_capacity()), (0, 0));
    }

    /// As above, over a real socket and the real handshake.
    #[tokio::test]
    async fn an_idle_subscriber_over_a_socket_keeps_no_outbox() {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message as T;
        let mut config = crate::Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        let server = crate::Server::bind(config).await.unwrap();
        let addr = server.local_addr().unwrap();
        let shared = server.shared();
        tokio::spawn(server.run_until(std::future::pending()));
        let mut clients = Vec::new();
        for _ in 0..50 {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
                .await
                .unwrap();
            let _connected = ws.next().await;
            ws.send(T::Text(
                r#"{"type":"subscribe","id":1,"channels":["news"]}"#.into(),
            ))
            .await
            .unwrap();
            let _subscribed = ws.next().await;
            clients.push(ws);
        }
        let mut caps = Vec::new();
        for seq in 1..=50u64 {
            let id = shared.conns.connection_id(seq);
            if let Some(h) = shared.conns.by_id(&id) {
                caps.push(h.outbox_capacity());
            }
        }
        assert!(caps.iter().all(|c| *c == 0), "{caps:?}");
    }

    /// The connection future is allocated once per connection and lives as
    /// long as it does: keep an eye on its size (idle cost per connection).
    #[tokio::test]
    async fn connection_task_stays_small() {
        let (mut conn, _, _peer) = conn_over_loopback().await;
        {
            let command = conn.session.on_message(b"", false);
            println!("command future: {} bytes", std::mem::size_of_val(&command));
        }
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
