//! hubbub on Redis: several hub nodes act as one hub through a Redis they
//! share (or several, with channels and users sharded over them by a
//! stable hash).
//!
//! * Fan-out: one Redis `PUBLISH` per publication, whatever the number of
//!   subscribers; each node subscribes to the channels its clients want
//!   ([`pubsub`] holds one actor per Redis server doing that).
//! * History: numbered by a Lua script that appends, trims and publishes
//!   in one step, so two nodes never hand out the same offset and
//!   pub/sub order is offset order; a Redis that lost the channel's data
//!   gives a new epoch ([`history`]).
//! * Presence and user registrations: entries that expire unless their
//!   node refreshes them, so a node that dies leaves no ghosts beyond
//!   `engine.presence_ttl_s` ([`presence`], [`users`]).
//! * Rooms: settings in a hash, members as the presence of the room's
//!   channel on the same server, each step one script ([`rooms`]).
//! * A node registry refreshed every `engine.heartbeat_ms` ([`nodes`]).
//!
//! While Redis is unreachable the engine says so (`Broker::health`, so
//! `/readyz` answers 503; publishes fail with `unavailable`). When its
//! subscription link comes back, it asks the node to send every
//! subscriber through recovery (`EventSink::resync`): events published
//! meanwhile are recovered from history, or the client is told
//! `recovered: false`, never a silent gap.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = hubbub_server::Config::default();
//! config.engine.redis_url = "redis://127.0.0.1:6379".into();
//! let engine = hubbub_redis::engine(&config).await?;
//! let node = hubbub_server::Node::builder(config).engine(engine).build()?;
//! # drop(node); Ok(()) }
//! ```

mod broker;
mod history;
mod keys;
mod nodes;
mod presence;
mod pubsub;
mod rooms;
mod scripts;
mod users;
mod wire;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hubbub_server::engine::{Engine, EngineError, EventSink};
use hubbub_server::Config;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use broker::RedisBroker;
pub use history::RedisHistory;
pub use presence::RedisPresence;
pub use rooms::RedisRooms;

use keys::{stable_hash, Keys};

/// One Redis server of the engine.
pub(crate) struct Shard {
    /// For the subscription connection (pub/sub needs one of its own).
    pub(crate) client: redis::Client,
    /// Commands and scripts; reconnects by itself.
    pub(crate) conn: ConnectionManager,
    /// For logs.
    pub(crate) url: String,
}

/// What the engine's parts share.
pub(crate) struct Core {
    pub(crate) shards: Vec<Shard>,
    pub(crate) keys: Keys,
    /// Every request's bound.
    pub(crate) timeout: Duration,
    pub(crate) presence_ttl: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) user_queue: usize,
    pub(crate) user_queue_ttl: Duration,
    /// Set by `Broker::start`.
    pub(crate) node_id: OnceLock<String>,
    pub(crate) sink: OnceLock<Arc<dyn EventSink>>,
    pub(crate) dropped_for_users: AtomicU64,
    /// Whether publications go out on pub/sub ([`store`] leaves that to
    /// another broker).
    pub(crate) fanout: bool,
}

impl Core {
    /// Which server holds `name` (a channel or a user): the one rule for
    /// commands, scripts and subscriptions alike.
    pub(crate) fn shard_index(&self, name: &str) -> usize {
        (stable_hash(name) % self.shards.len() as u64) as usize
    }

    /// The server holding `name`.
    pub(crate) fn shard(&self, name: &str) -> &Shard {
        &self.shards[self.shard_index(name)]
    }

    /// A connection handle to the server holding `name`.
    pub(crate) fn conn(&self, name: &str) -> ConnectionManager {
        self.shard(name).conn.clone()
    }

    pub(crate) fn node_id(&self) -> &str {
        self.node_id.get().map(String::as_str).unwrap_or("")
    }

    /// Runs `f` within the request bound, turning Redis errors into
    /// engine errors.
    pub(crate) async fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, EngineError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(EngineError(format!("redis {what}: {e}"))),
            Err(_) => Err(EngineError(format!(
                "redis {what}: no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Connects to the Redis servers of `config.engine` and builds the
/// engine. Fails when a server does not answer now (a node that starts
/// without its engine would only refuse every client); once running, the
/// engine rides out Redis outages by itself.
pub async fn engine(config: &Config) -> Result<Engine, EngineError> {
    build(config, true).await
}

/// The engine as a store for a broker that carries events between nodes
/// itself (`hubbub-nats` with `nats_store = "redis"`): history, presence,
/// rooms, user queues and the node registry as [`engine`] keeps them, but
/// a publish only numbers and keeps, with no pub/sub message nobody reads.
pub async fn store(config: &Config) -> Result<Engine, EngineError> {
    build(config, false).await
}

async fn build(config: &Config, fanout: bool) -> Result<Engine, EngineError> {
    let e = &config.engine;
    let timeout = Duration::from_millis(e.timeout_ms);
    let mut shards = Vec::new();
    for url in e.redis_servers() {
        let client = redis::Client::open(url.as_str())
            .map_err(|err| EngineError(format!("redis url {url:?}: {err}")))?;
        // Fail fast while Redis is down (the client is told `unavailable`)
        // and retry on the next request, not for a minute inside one.
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            timeout,
            ConnectionManager::new_with_config(client.clone(), manager),
        )
        .await
        .map_err(|_| EngineError(format!("redis at {url}: no answer")))?
        .map_err(|err| EngineError(format!("redis at {url}: {err}")))?;
        shards.push(Shard { client, conn, url });
    }
    let core = Arc::new(Core {
        shards,
        keys: Keys::new(&e.prefix),
        timeout,
        presence_ttl: Duration::from_secs(e.presence_ttl_s),
        heartbeat: Duration::from_millis(e.heartbeat_ms),
        user_queue: config.users.queue_size,
        user_queue_ttl: Duration::from_secs(config.users.queue_ttl_s),
        node_id: OnceLock::new(),
        sink: OnceLock::new(),
        dropped_for_users: AtomicU64::new(0),
        fanout,
    });
    let presence = RedisPresence::new(core.clone());
    Ok(Engine {
        broker: Arc::new(RedisBroker::new(core.clone())),
        rooms: Arc::new(RedisRooms::new(core.clone(), presence.clone())),
        history: Arc::new(RedisHistory::new(core)),
        presence,
    })
}
