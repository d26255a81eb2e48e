//! The connection task: owns the socket, reconnects by the policy, and is
//! the only place client state changes. The handle talks to it over a
//! bounded channel ([`ToConn`]); replies go back on oneshots.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use hubbub_protocol::message::Command;
use hubbub_protocol::{JsonData, ServerMessage, StreamPosition};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite;

use crate::chans::{Chans, Sink};
use crate::config::{Config, TokenSource};
use crate::events::ClientEvent;
use crate::policy::{after_close, Next};
use crate::Error;

/// A reply on its way to the caller.
pub(crate) type Reply = oneshot::Sender<Result<ServerMessage, Error>>;

/// What the handle asks of the connection task.
pub(crate) enum ToConn {
    /// Send a command and route its reply.
    Request(Request),
    /// A subscription was dropped.
    Dropped { channel: String, sink: u64 },
    /// Close the connection for good.
    Close,
}

/// A command with what to do when its reply comes.
pub(crate) struct Request {
    pub command: Command,
    pub kind: Kind,
    pub reply: Reply,
}

/// What a command does to the client's state besides its reply.
pub(crate) enum Kind {
    /// Nothing.
    Plain,
    /// `subscribe` of one channel, delivering to `sink`.
    Subscribe {
        channel: String,
        event_types: Option<Vec<String>>,
        since: Option<StreamPosition>,
        sink: Sink,
    },
    /// `join_room`, delivering `room:<room>` to `sink`.
    Join {
        room: String,
        info: Option<JsonData>,
        sink: Sink,
    },
    /// `leave_room`: the room's channel is forgotten.
    Leave { channel: String },
    /// `algorithm_start`: the job channel delivers to `sink`.
    Start { sink: Sink },
}

/// What a sent command waits for.
pub(crate) enum Pending {
    /// A caller's command.
    Caller { reply: Reply, then: Then },
    /// The client's own: resubscribe, rejoin, refresh, ping.
    Internal { then: Then },
}

/// Follow-up of a reply.
pub(crate) enum Then {
    Nothing,
    Subscribed {
        channel: String,
        since: Option<StreamPosition>,
    },
    Joined {
        channel: String,
    },
    Started {
        sink: Sink,
    },
}

/// State the connection task keeps across connections.
pub(crate) struct Conn {
    pub cfg: Config,
    pub rx: mpsc::Receiver<ToConn>,
    pub events: broadcast::Sender<ClientEvent>,
    pub status: watch::Sender<Status>,
    pub chans: Chans,
    pub queue: VecDeque<Request>,
    pub pending: HashMap<i64, Pending>,
    /// Callers of a subscribe or join cut off by a lost connection, by
    /// channel: answered by the restore on the next connection.
    pub awaiting: HashMap<String, Reply>,
    pub next_id: i64,
    pub token: Option<String>,
}

/// What the handle can read at any time.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Status {
    #[default]
    Connecting,
    Connected {
        connection_id: String,
        user_id: Option<String>,
    },
    Closed(String),
}

/// How a connection (or an attempt) ended.
pub(crate) struct End {
    pub connected: bool,
    pub code: Option<u16>,
    pub reason: String,
    pub reconnect: Option<bool>,
    pub unauthorized: bool,
    pub closing: bool,
}

impl End {
    /// A connection (or attempt) that ended without a close frame: code
    /// 1006, as browsers report it.
    pub fn lost(connected: bool, reason: impl Into<String>) -> Self {
        End {
            connected,
            code: Some(1006),
            reason: reason.into(),
            reconnect: None,
            unauthorized: false,
            closing: false,
        }
    }
}

impl Conn {
    pub fn emit(&self, e: ClientEvent) {
        let _ = self.events.send(e);
    }

    /// The task's body: connect, serve, decide, wait, again. `failures`
    /// counts reconnect attempts since the last `connected`: the attempt
    /// number of `reconnecting`, and what the backoff bound doubles with.
    pub async fn run(mut self) {
        let mut failures = 0u32;
        let mut need_token = true;
        loop {
            self.emit(ClientEvent::Connecting {
                attempt: failures + 1,
            });
            let _ = self.status.send(Status::Connecting);
            let end = match self.attempt(need_token).await {
                Ok(Some(ws)) => self.session(ws).await,
                Ok(None) => End {
                    closing: true,
                    ..End::lost(false, "closed by the application")
                },
                Err(end) => end,
            };
            if end.closing {
                return self.close(end.reason);
            }
            self.lost_connection();
            self.emit(ClientEvent::Disconnected {
                code: end.code,
                reason: end.reason.clone(),
            });
            if end.connected {
                failures = 0;
            }
            let callback = matches!(self.cfg.token, TokenSource::Callback(_));
            let next = if end.unauthorized {
                if callback {
                    Next::FreshToken
                } else {
                    Next::Stop
                }
            } else {
                after_close(end.code, end.reconnect)
            };
            if next == Next::Stop || (next == Next::FreshToken && !callback) {
                return self.close(end.reason);
            }
            failures += 1;
            if let Some(max) = self.cfg.backoff.max_attempts {
                if failures > max {
                    return self.close(format!("gave up after {max} attempts"));
                }
            }
            need_token = next == Next::FreshToken;
            let backoff = self.cfg.backoff.delay(failures);
            let delay = match next {
                Next::FreshToken | Next::Now if end.connected => Duration::ZERO,
                Next::RateLimited => self.cfg.rate_limited_delay + backoff,
                _ => backoff,
            };
            self.emit(ClientEvent::Reconnecting {
                delay,
                attempt: failures,
            });
            if self.offline(tokio::time::sleep(delay)).await.is_none() {
                return self.close("closed by the application".into());
            }
        }
    }

    /// Gets a token if needed and opens the socket, serving the handle
    /// meanwhile. `Ok(None)`: the application closed the client.
    async fn attempt(&mut self, need_token: bool) -> Result<Option<crate::session::Ws>, End> {
        if let TokenSource::Callback(f) = &self.cfg.token {
            if need_token || self.token.is_none() {
                let fut = f();
                match self.offline(fut).await {
                    None => return Ok(None),
                    Some(Ok(t)) => self.token = Some(t),
                    Some(Err(e)) => return Err(End::lost(false, format!("token callback: {e}"))),
                }
            }
        } else if let TokenSource::Static(t) = &self.cfg.token {
            self.token = Some(t.clone());
        }
        let fut = crate::session::open(
            self.cfg.url.clone(),
            self.token.clone(),
            self.cfg.encoding,
            self.cfg.connect_timeout,
        );
        match self.offline(fut).await {
            None => Ok(None),
            Some(Ok(ws)) => Ok(Some(ws)),
            Some(Err(e)) => Err(e),
        }
    }

    /// Runs `fut` while holding the handle's commands in the offline queue.
    /// `None` when the application closed the client meanwhile.
    pub async fn offline<F: std::future::Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                msg = self.rx.recv() => match msg {
                    None | Some(ToConn::Close) => return None,
                    Some(ToConn::Request(r)) => self.enqueue(r),
                    Some(ToConn::Dropped { channel, sink }) => self.dropped_offline(&channel, sink),
                }
            }
        }
    }

    /// Holds a command until the connection is ready; refuses past the bound.
    pub fn enqueue(&mut self, r: Request) {
        self.queue.retain(|q| !q.reply.is_closed());
        if self.queue.len() >= self.cfg.offline_queue {
            let _ = r.reply.send(Err(Error::QueueFull(self.cfg.offline_queue)));
        } else {
            self.queue.push_back(r);
        }
    }

    /// A subscription dropped while offline: nothing to tell the hub, the
    /// channel is simply not restored if it was the last one.
    fn dropped_offline(&mut self, channel: &str, sink: u64) {
        if let Some(c) = self.chans.get_mut(channel) {
            c.sinks.retain(|s| s.id != sink);
            if c.sinks.is_empty() {
                self.chans.remove(channel);
                self.awaiting.remove(channel);
            }
        }
    }

    /// After a connection ends: commands that went out get no reply.
    /// A subscribe or join still unanswered is not failed: its channel is
    /// restored on the next connection, and that reply answers the caller.
    fn lost_connection(&mut self) {
        for (_, p) in self.pending.drain() {
            match p {
                Pending::Caller {
                    reply,
                    then: Then::Subscribed { channel, .. } | Then::Joined { channel },
                } if self.chans.contains_key(&channel) => {
                    self.awaiting.insert(channel, reply);
                }
                Pending::Caller { reply, .. } => {
                    let _ = reply.send(Err(Error::Disconnected));
                }
                Pending::Internal { .. } => {}
            }
        }
    }

    /// The end: every waiting caller and subscription learns it.
    fn close(mut self, reason: String) {
        self.lost_connection();
        for (_, reply) in self.awaiting.drain() {
            let _ = reply.send(Err(Error::Closed(reason.clone())));
        }
        for r in self.queue.drain(..) {
            let _ = r.reply.send(Err(Error::Closed(reason.clone())));
        }
        for (_, mut c) in self.chans.drain() {
            c.ended();
        }
        self.rx.close();
        while let Ok(m) = self.rx.try_recv() {
            if let ToConn::Request(r) = m {
                let _ = r.reply.send(Err(Error::Closed(reason.clone())));
            }
        }
        let _ = self.status.send(Status::Closed(reason.clone()));
        self.emit(ClientEvent::Closed { reason });
    }
}

/// Tells a refused handshake (401) from other failures.
pub(crate) fn handshake_end(e: tungstenite::Error) -> End {
    if let tungstenite::Error::Http(resp) = &e {
        let status = resp.status().as_u16();
        let body = resp
            .body()
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .into_owned();
        return End {
            unauthorized: status == 401,
            ..End::lost(false, format!("handshake refused: HTTP {status} {body}"))
        };
    }
    End::lost(false, format!("connect: {e}"))
}
