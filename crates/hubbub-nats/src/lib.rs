//! A NATS engine for hubbub: several nodes as one hub.
//!
//! * Events without history cross nodes on a core subject per channel.
//! * Events with history are numbered by a JetStream stream per channel
//!   (sequence = offset) and reach every node from that stream, in offset
//!   order (module `follow`).
//! * Presence lives in a key-value bucket with a TTL, user queues and user
//!   records in a stream, the node registry in another bucket.
//! * Room settings live in a bucket of their own; a room's members are
//!   its channel's presence entries (module `rooms`).
//!
//! What it guarantees, what it creates on the server and its limits are in
//! this crate's README. The binary builds it with [`engine`].

mod broker;
mod channels;
mod follow;
mod history;
mod link;
mod listing;
mod names;
mod nodes;
mod presence;
mod relay;
mod rooms;
mod users;
mod wire;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use hubbub_server::config::NatsStore;
use hubbub_server::engine::{Engine, EngineError, EventSink};
use tokio::sync::Notify;

use crate::link::Link;

/// Connects to NATS at `config.engine.nats_url` and builds the engine.
///
/// This is what the `hubbub` binary calls for `engine.kind = "nats"`: it
/// fails (rather than starting a node that cannot work) when NATS (or,
/// with `nats_store = "redis"`, Redis) does not answer or NATS has no
/// JetStream. With `nats_store = "redis"`, NATS carries events between
/// nodes and the Redis engine keeps the rest (module `relay`).
pub async fn engine(config: &hubbub_server::Config) -> Result<Engine, EngineError> {
    if config.engine.nats_store == NatsStore::Redis {
        return relay::engine(config).await;
    }
    Ok(connect(config).await?.engine())
}

/// Connects and builds the engine on JetStream, keeping a handle on the
/// connection (see [`NatsEngine`]); [`engine`] is this without the
/// handle, or the Redis-store engine.
pub async fn connect(config: &hubbub_server::Config) -> Result<NatsEngine, EngineError> {
    let e = &config.engine;
    if e.nats_store != NatsStore::Jetstream {
        return Err(EngineError(
            "engine.nats_store = \"redis\" has no NatsEngine handle; build it with engine()".into(),
        ));
    }
    if !names::valid_prefix(&e.prefix) {
        return Err(EngineError(
            "engine.prefix must be letters, digits, '_' or '-'".into(),
        ));
    }
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| EngineError("the NATS engine needs a Tokio runtime".into()))?;
    let settings = Settings {
        presence_ttl: Duration::from_secs(e.presence_ttl_s.max(1)),
        heartbeat: Duration::from_millis(e.heartbeat_ms.max(1)),
        queue_size: config.users.queue_size,
        queue_ttl: Duration::from_secs(config.users.queue_ttl_s.max(1)),
    };
    let link = link::connect(
        &e.nats_url,
        &e.prefix,
        Duration::from_millis(e.timeout_ms.max(1)),
    )
    .await?;
    // Heard before any follower looks for its stream: a stream created
    // after that look is announced here, so the follower starts reading
    // it; a stream deleted or replaced is announced too.
    let advisories = link
        .ask(
            "subscribe",
            link.client.subscribe("$JS.EVENT.ADVISORY.STREAM.*.*"),
        )
        .await?;
    let names = &link.names;
    link.ensure_bucket(&names.presence_bucket(), settings.presence_ttl)
        .await?;
    link.ensure_bucket(&names.nodes_bucket(), settings.heartbeat * 3)
        .await?;
    // Kept until deleted (a max age of zero is none).
    link.ensure_bucket(&names.rooms_bucket(), Duration::ZERO)
        .await?;
    link.ensure_stream(users::users_stream_config(
        names,
        settings.queue_size,
        settings.queue_ttl,
    ))
    .await?;
    link.ask("flush", link.client.flush()).await?;
    let inner = Arc::new(Inner {
        link,
        settings,
        runtime,
        sink: OnceLock::new(),
        node_id: OnceLock::new(),
        channels: channels::Registry::default(),
        streams: history::Streams::default(),
        presence: presence::Own::default(),
        users: users::Users::default(),
        advisories: parking_lot::Mutex::new(Some(advisories)),
        presence_now: Arc::new(Notify::new()),
        users_now: Arc::new(Notify::new()),
    });
    Ok(NatsEngine { inner })
}

/// The engine with a handle on its NATS connection, for what the engine
/// traits do not cover: forcing a reconnection (operations, tests).
#[derive(Clone)]
pub struct NatsEngine {
    inner: Arc<Inner>,
}

impl NatsEngine {
    /// The engine's parts, for `hubbub_server::state::Shared::build`.
    pub fn engine(&self) -> Engine {
        Engine {
            broker: Arc::new(broker::NatsBroker(self.inner.clone())),
            history: Arc::new(history::NatsHistory(self.inner.clone())),
            presence: Arc::new(presence::NatsPresence(self.inner.clone())),
            rooms: Arc::new(rooms::NatsRooms(self.inner.clone())),
        }
    }

    /// Drops the connection to NATS and connects again, as a network cut
    /// would: the node resyncs its subscribers once the link is back. For
    /// tests of that path, and to move a node to another server of a
    /// cluster.
    pub async fn force_reconnect(&self) -> Result<(), EngineError> {
        let link = &self.inner.link;
        link.ask("reconnect", link.client.force_reconnect()).await
    }
}

/// The figures of the configuration the engine uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub presence_ttl: Duration,
    pub heartbeat: Duration,
    pub queue_size: usize,
    pub queue_ttl: Duration,
}

/// The engine's state, shared by its broker, history, presence and room
/// parts.
pub(crate) struct Inner {
    pub link: Link,
    pub settings: Settings,
    /// Where background tasks run (`Broker::start` is synchronous).
    pub runtime: tokio::runtime::Handle,
    sink: OnceLock<Arc<dyn EventSink>>,
    node_id: OnceLock<String>,
    pub channels: channels::Registry,
    pub streams: history::Streams,
    pub presence: presence::Own,
    pub users: users::Users,
    advisories: parking_lot::Mutex<Option<async_nats::Subscriber>>,
    /// Wake the refresh tasks at once (after the link came back).
    presence_now: Arc<Notify>,
    users_now: Arc<Notify>,
}

impl Inner {
    pub(crate) fn sink(&self) -> Result<&Arc<dyn EventSink>, EngineError> {
        self.sink
            .get()
            .ok_or_else(|| EngineError("the broker was not started".into()))
    }

    pub(crate) fn node_id(&self) -> &str {
        self.node_id.get().map_or("", String::as_str)
    }

    /// `Broker::start`: remembers the sink and starts the node's tasks.
    pub(crate) fn start(self: &Arc<Self>, sink: Arc<dyn EventSink>, node_id: &str) {
        if self.sink.set(sink).is_err() {
            tracing::warn!("the NATS broker was started twice; the first start stands");
            return;
        }
        let _ = self.node_id.set(node_id.to_owned());
        let weak = Arc::downgrade(self);
        let rt = &self.runtime;
        rt.spawn(users::inbox_loop(weak.clone()));
        rt.spawn(nodes::announce_loop(weak.clone()));
        rt.spawn(presence::refresh_loop(
            weak.clone(),
            self.presence_now.clone(),
        ));
        rt.spawn(users::refresh_loop(weak.clone(), self.users_now.clone()));
        rt.spawn(resync_loop(weak.clone(), self.link.state.clone()));
        if let Some(sub) = self.advisories.lock().take() {
            rt.spawn(advisory_loop(weak, sub));
        }
    }
}

/// Waits while `weak` lives; `false` once the engine is dropped. Loops of
/// background tasks poll it so they end with the engine.
async fn still_there(weak: &Weak<Inner>) -> bool {
    tokio::time::sleep(Duration::from_secs(5)).await;
    weak.strong_count() > 0
}

/// After the link came back (or a subscription overflowed): followers look
/// again, every subscriber recovers, own entries are put again.
async fn resync_loop(weak: Weak<Inner>, state: Arc<link::LinkState>) {
    loop {
        tokio::select! {
            _ = state.changed.notified() => {}
            alive = still_there(&weak) => if !alive { return },
        }
        if !state.take_missed() {
            continue;
        }
        let Some(inner) = weak.upgrade() else { return };
        inner.channels.wake_all();
        if let Ok(sink) = inner.sink() {
            sink.resync();
        }
        inner.presence_now.notify_one();
        inner.users_now.notify_one();
        drop(inner);
        // A flapping link (or a subscription overflowing message after
        // message) resyncs at most once a second: what happens meanwhile
        // is covered by the next one.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Streams created, deleted or changed anywhere: followers waiting for
/// one start reading it, followers reading one check it is the same.
async fn advisory_loop(weak: Weak<Inner>, mut sub: async_nats::Subscriber) {
    use futures_util::StreamExt;
    loop {
        let m = tokio::select! {
            m = sub.next() => m,
            alive = still_there(&weak) => if alive { continue } else { return },
        };
        let Some(m) = m else { return };
        let Some(inner) = weak.upgrade() else { return };
        // `$JS.EVENT.ADVISORY.STREAM.<CREATED|DELETED|UPDATED>.<stream>`
        let mut tokens = m.subject.rsplit('.');
        let (Some(stream), Some(action)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        if let Some(token) = inner.link.names.token_of_stream(stream) {
            let what = if action == "CREATED" {
                channels::Wake::APPEARED
            } else {
                channels::Wake::CHANGED
            };
            inner.channels.wake_token(token, what);
        }
    }
}
