//! The handle: cheap to clone, every method a command to the connection
//! task with a reply on a oneshot and a timeout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::message::{Command, Empty, Publish, Subscribe};
use hubbub_protocol::{JsonData, ServerMessage, StreamPosition, TimedEvent};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::chans::Sink;
use crate::config::{ClientBuilder, Config};
use crate::conn::{Conn, Kind, Request, Status, ToConn};
use crate::events::ClientEvent;
use crate::subscription::Subscription;
use crate::Error;

/// Commands in flight from handles to the connection task. Bounded: a
/// caller past it waits (within its timeout), which is the backpressure.
const COMMAND_CHANNEL: usize = 256;
/// State events kept for slow readers of [`Client::events`]; a reader that
/// falls further behind gets `Lagged` from tokio and skips the oldest.
const EVENT_CHANNEL: usize = 256;

/// A connection to a hub. Clone it freely: every clone talks to the same
/// connection task, which reconnects, recovers and resubscribes on its
/// own. The task ends when [`Client::close`] is called or every clone and
/// subscription is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<ToConn>,
    events: broadcast::Sender<ClientEvent>,
    status: watch::Receiver<Status>,
    timeout: Duration,
    buffer: usize,
    next_sink: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// Options of [`Client::subscribe_with`].
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// Deliver only these event types (offsets then skip legitimately).
    pub event_types: Option<Vec<String>>,
    /// Recover from this position (one the application kept).
    pub since: Option<StreamPosition>,
}

/// The `history` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The channel's history name.
    pub epoch: String,
    /// Its newest offset.
    pub offset: u64,
    /// The events, in increasing offset order.
    pub events: Vec<TimedEvent>,
}

impl Client {
    /// A builder for a hub at `url` (`ws://host:port/ws`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            config: Config::new(url),
        }
    }

    /// Connects with defaults (no token, JSON).
    pub fn connect(url: impl Into<String>) -> Client {
        Self::builder(url).connect()
    }

    /// Starts the connection task; the receiver exists before it runs, so
    /// it sees every state event from the first `connecting` on.
    pub(crate) fn start(cfg: Config) -> (Client, broadcast::Receiver<ClientEvent>) {
        let (tx, rx) = mpsc::channel(COMMAND_CHANNEL);
        let (events, first) = broadcast::channel(EVENT_CHANNEL);
        let (status_tx, status) = watch::channel(Status::Connecting);
        let inner = Inner {
            tx,
            events: events.clone(),
            status,
            timeout: cfg.request_timeout,
            buffer: cfg.subscription_buffer,
            next_sink: AtomicU64::new(1),
        };
        let conn = Conn {
            cfg,
            rx,
            events,
            status: status_tx,
            chans: Default::default(),
            queue: Default::default(),
            pending: Default::default(),
            awaiting: Default::default(),
            next_id: 0,
            token: None,
        };
        tokio::spawn(conn.run());
        let client = Client {
            inner: Arc::new(inner),
        };
        (client, first)
    }

    /// State events from now on (`connecting`, `connected`, ...); to see
    /// them from the very first attempt, connect with
    /// [`ClientBuilder::connect_with_events`].
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.inner.events.subscribe()
    }

    /// The current connection's id, when connected.
    pub fn connection_id(&self) -> Option<String> {
        match &*self.inner.status.borrow() {
            Status::Connected { connection_id, .. } => Some(connection_id.clone()),
            _ => None,
        }
    }

    /// Waits until connected (returns the connection id) or closed.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<String, Error> {
        let mut rx = self.inner.status.clone();
        let wait = async {
            loop {
                match &*rx.borrow_and_update() {
                    Status::Connected { connection_id, .. } => return Ok(connection_id.clone()),
                    Status::Closed(r) => return Err(Error::Closed(r.clone())),
                    Status::Connecting => {}
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Closed("connection task ended".into()));
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// Closes the connection (code 1000) and stops reconnecting.
    pub async fn close(&self) {
        let _ = self.inner.tx.send(ToConn::Close).await;
    }

    /// Hands a command to the connection task now, in call order; the
    /// returned future waits for the reply (within the command timeout).
    fn submit(
        &self,
        command: Command,
        kind: Kind,
    ) -> impl std::future::Future<Output = Result<ServerMessage, Error>> + Send + 'static {
        let t = self.inner.timeout;
        let (reply, rx) = oneshot::channel();
        let sent = self.inner.tx.try_send(ToConn::Request(Request {
            command,
            kind,
            reply,
        }));
        async move {
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(Error::QueueFull(COMMAND_CHANNEL))
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(Error::Closed("client closed".into()))
                }
            }
            match tokio::time::timeout(t, rx).await {
                Err(_) => Err(Error::Timeout(t)),
                Ok(Err(_)) => Err(Error::Closed("client closed".into())),
                Ok(Ok(r)) => r,
            }
        }
    }

    pub(crate) async fn request(
        &self,
        command: Command,
        kind: Kind,
    ) -> Result<ServerMessage, Error> {
        let t = self.inner.timeout;
        let (reply, rx) = oneshot::channel();
        let go = async {
            self.inner
                .tx
                .send(ToConn::Request(Request {
                    command,
                    kind,
                    reply,
                }))
                .await
                .map_err(|_| Error::Closed("client closed".into()))?;
            rx.await
                .map_err(|_| Error::Closed("client closed".into()))?
        };
        tokio::time::timeout(t, go)
            .await
            .map_err(|_| Error::Timeout(t))?
    }

    pub(crate) fn sink(&self, channel: &str) -> (Sink, Subscription) {
        let id = self.inner.next_sink.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.inner.buffer);
        let sub = Subscription {
            channel: channel.to_owned(),
            id,
            rx,
            conn: self.inner.tx.clone(),
        };
        (Sink::new(id, tx), sub)
    }

    /// Subscribes to a channel.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, Error> {
        self.subscribe_with(channel, SubscribeOptions::default())
            .await
    }

    /// Subscribes with a filter or a position to recover from. A second
    /// subscription to a channel shares the first one's filter.
    pub async fn subscribe_with(
        &self,
        channel: &str,
        opts: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        let (sink, sub) = self.sink(channel);
        let command = Command::Subscribe(Subscribe {
            channels: vec![channel.to_owned()],
            since: opts
                .since
                .clone()
                .map(|p| BTreeMap::from([(channel.to_owned(), p)])),
            event_types: opts.event_types.clone(),
        });
        let kind = Kind::Subscribe {
            channel: channel.to_owned(),
            event_types: opts.event_types,
            since: opts.since,
            sink,
        };
        self.request(command, kind).await?;
        Ok(sub)
    }

    pub(crate) async fn plain(&self, command: Command) -> Result<ServerMessage, Error> {
        self.request(command, Kind::Plain).await
    }

    /// Publishes `data` (any serializable value); the event's offset where
    /// the channel keeps history.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        event_type: &str,
        data: &T,
    ) -> Result<Option<u64>, Error> {
        let data = to_data(data)?;
        let cmd = Command::Publish(Publish {
            channel: channel.to_owned(),
            event_type: event_type.to_owned(),
            data,
        });
        match self.plain(cmd).await? {
            ServerMessage::Published { offset, .. } => Ok(offset),
            other => Err(unexpected(other)),
        }
    }

    /// Publishes without waiting: the command is handed over (queued if
    /// offline) before this returns, so calls go out in call order; the
    /// future resolves with the reply. A full command channel is
    /// [`Error::QueueFull`] at once.
    pub fn publish_nowait<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        event_type: &str,
        data: &T,
    ) -> impl std::future::Future<Output = Result<Option<u64>, Error>> + Send + 'static {
        let cmd = to_data(data).map(|data| {
            Command::Publish(Publish {
                channel: channel.to_owned(),
                event_type: event_type.to_owned(),
                data,
            })
        });
        let fut = cmd.map(|cmd| self.submit(cmd, Kind::Plain));
        async move {
            match fut?.await? {
                ServerMessage::Published { offset, .. } => Ok(offset),
                other => Err(unexpected(other)),
            }
        }
    }

    /// Application-level ping; the round trip.
    pub async fn ping(&self) -> Result<Duration, Error> {
        let t = tokio::time::Instant::now();
        match self.plain(Command::Ping(Empty {})).await? {
            ServerMessage::Pong {} => Ok(t.elapsed()),
            other => Err(unexpected(other)),
        }
    }
}

pub(crate) fn to_data<T: Serialize + ?Sized>(v: &T) -> Result<JsonData, Error> {
    serde_json::value::to_raw_value(v)
        .map_err(|e| Error::Argument(e.to_string()))
        .and_then(|raw| JsonData::from_json(raw.get()).map_err(|e| Error::Argument(e.to_string())))
}

pub(crate) fn unexpected(m: ServerMessage) -> Error {
    Error::Unexpected(m.type_name().to_owned())
}
