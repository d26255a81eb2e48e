//! The handle: cheap to clone, every method a command to the connection
//! task with a reply on a oneshot and a timeout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters};
use hubbub_protocol::message::{
    AlgorithmStart, AlgorithmStop, Auth, ChannelOnly, Command, Empty, History, JoinRoom, LeaveRoom,
    Publish, Rpc, Subscribe,
};
use hubbub_protocol::rooms::{room_channel, PresenceEntry, PresenceStats};
use hubbub_protocol::{JsonData, ServerMessage, StreamPosition, TimedEvent};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::chans::Sink;
use crate::config::{ClientBuilder, Config};
use crate::conn::{Conn, Kind, Request, Status, ToConn};
use crate::events::ClientEvent;
use crate::subscription::{Job, Room, Subscription};
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

    pub(crate) fn start(cfg: Config) -> Client {
        let (tx, rx) = mpsc::channel(COMMAND_CHANNEL);
        let (events, _) = broadcast::channel(EVENT_CHANNEL);
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
            next_id: 0,
            token: None,
        };
        tokio::spawn(conn.run());
        Client {
            inner: Arc::new(inner),
        }
    }

    /// State events from now on (`connecting`, `connected`, ...).
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

    async fn request(&self, command: Command, kind: Kind) -> Result<ServerMessage, Error> {
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

    fn sink(&self, channel: &str) -> (Sink, Subscription) {
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

    async fn plain(&self, command: Command) -> Result<ServerMessage, Error> {
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

    /// This connection's channels, as the hub lists them.
    pub async fn subscriptions(&self) -> Result<Vec<String>, Error> {
        match self.plain(Command::GetSubscriptions(Empty {})).await? {
            ServerMessage::Subscriptions { channels } => Ok(channels),
            other => Err(unexpected(other)),
        }
    }

    /// Members of a presence-enabled channel (`room:<room>` for rooms).
    pub async fn presence(&self, channel: &str) -> Result<Vec<PresenceEntry>, Error> {
        let cmd = Command::Presence(ChannelOnly {
            channel: channel.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::Presence { members, .. } => Ok(members),
            other => Err(unexpected(other)),
        }
    }

    /// Member counts of a presence-enabled channel.
    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, Error> {
        let cmd = Command::PresenceStats(ChannelOnly {
            channel: channel.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::PresenceStats {
                num_clients,
                num_users,
                ..
            } => Ok(PresenceStats {
                num_clients,
                num_users,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// A channel's retained events: after `since_offset` (exclusive) or the
    /// newest, at most `limit`.
    pub async fn history(
        &self,
        channel: &str,
        since_offset: Option<u64>,
        limit: Option<u64>,
    ) -> Result<HistoryPage, Error> {
        let cmd = Command::History(History {
            channel: channel.to_owned(),
            since_offset,
            limit,
        });
        match self.plain(cmd).await? {
            ServerMessage::History {
                epoch,
                offset,
                events,
                ..
            } => Ok(HistoryPage {
                epoch,
                offset,
                events,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Joins a room with an optional presence `info` object; rejoined with
    /// the same `info` after every reconnect.
    pub async fn join_room<T: Serialize + ?Sized>(
        &self,
        room: &str,
        info: Option<&T>,
    ) -> Result<Room, Error> {
        let info = info.map(to_data).transpose()?;
        let (sink, events) = self.sink(&room_channel(room));
        let cmd = Command::JoinRoom(JoinRoom {
            room: room.to_owned(),
            info: info.clone(),
        });
        let kind = Kind::Join {
            room: room.to_owned(),
            info,
            sink,
        };
        match self.request(cmd, kind).await? {
            ServerMessage::RoomJoined { room, members } => Ok(Room {
                name: room,
                members,
                events,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Leaves a room (dropping its [`Room`] does too, without waiting); its
    /// subscription ends and the room is not rejoined after a reconnect.
    pub async fn leave_room(&self, room: &str) -> Result<(), Error> {
        let cmd = Command::LeaveRoom(LeaveRoom {
            room: room.to_owned(),
        });
        let kind = Kind::Leave {
            channel: room_channel(room),
        };
        match self.request(cmd, kind).await? {
            ServerMessage::RoomLeft { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Calls an application-defined method; its answer as JSON.
    pub async fn rpc<T: Serialize + ?Sized>(
        &self,
        method: &str,
        data: &T,
    ) -> Result<serde_json::Value, Error> {
        let cmd = Command::Rpc(Rpc {
            method: method.to_owned(),
            data: to_data(data)?,
        });
        match self.plain(cmd).await? {
            ServerMessage::RpcResult { data } => Ok(data.to_value()),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a graph-algorithm job; its events follow on the [`Job`].
    pub async fn start_job(
        &self,
        algorithm: &Algorithm,
        parameters: &AlgorithmParameters,
    ) -> Result<Job, Error> {
        let cmd = Command::AlgorithmStart(AlgorithmStart::new(algorithm, parameters));
        // The sink's channel name is known only from the reply.
        let (sink, mut sub) = self.sink("");
        match self.request(cmd, Kind::Start { sink }).await? {
            ServerMessage::AlgorithmStarted { job_id, channel } => {
                sub.channel = channel.clone();
                Ok(Job {
                    id: job_id,
                    channel,
                    sub,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Stops a job.
    pub async fn stop_job(&self, job_id: &str) -> Result<(), Error> {
        let cmd = Command::AlgorithmStop(AlgorithmStop {
            job_id: job_id.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::AlgorithmStopped { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Swaps in a fresh token on the live connection; its expiry (ms).
    pub async fn auth(&self, token: &str) -> Result<Option<u64>, Error> {
        let cmd = Command::Auth(Auth {
            token: token.to_owned(),
        });
        match self.plain(cmd).await? {
            ServerMessage::Authenticated { expires_at, .. } => Ok(expires_at),
            other => Err(unexpected(other)),
        }
    }
}

fn to_data<T: Serialize + ?Sized>(v: &T) -> Result<JsonData, Error> {
    serde_json::value::to_raw_value(v)
        .map_err(|e| Error::Argument(e.to_string()))
        .and_then(|raw| JsonData::from_json(raw.get()).map_err(|e| Error::Argument(e.to_string())))
}

fn unexpected(m: ServerMessage) -> Error {
    Error::Unexpected(m.type_name().to_owned())
}
