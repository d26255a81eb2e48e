//! State shared by every task of one hub node.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::conn::handle::QueueLimits;
use crate::conns::Connections;
use crate::engine::{Engine, EventSink};
use crate::http_conns::HttpConns;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::util::now_ms;

/// Everything a connection task, the HTTP API and housekeeping share.
/// Cloned as one `Arc` into each task.
pub struct Shared {
    /// The loaded configuration (immutable while running).
    pub config: Arc<Config>,
    /// The channel registry: local delivery.
    pub hub: Arc<Hub>,
    /// Broker, history and presence.
    pub engine: Engine,
    /// Live connections.
    pub conns: Arc<Connections>,
    /// Rooms and who is in them.
    pub(crate) rooms: crate::rooms::Rooms,
    /// Methods registered for `rpc`.
    pub(crate) rpc: crate::rpc::Registry,
    /// HTTP backends for `rpc`, longest prefix first.
    pub(crate) rpc_backends: Vec<crate::rpc::proxy::Backend>,
    /// Decision hooks: registered Rust hooks and configured backends.
    pub(crate) hooks: crate::hooks::Hooks,
    /// What answers `algorithm_start` and `algorithm_stop`.
    pub(crate) jobs: crate::jobs::Jobs,
    /// Told when a connection ends ([`crate::Node::on_disconnect`]).
    pub(crate) on_disconnect: crate::node::DisconnectHook,
    /// Routes applications add to the HTTP API ([`crate::Node::extend_api`]).
    pub(crate) api_extensions: parking_lot::Mutex<Vec<crate::ApiExtension>>,
    /// HTTP connections, bounded by `server.max_http_connections`.
    pub http: HttpConns,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Verifies tokens; `None` when no key is configured (then every token
    /// is refused, and anonymous connections are all there is).
    pub auth: Option<Arc<dyn Authenticator>>,
    /// Handshake limits: connection rates, trusted proxies, origins.
    pub limits: Limits,
    /// This node's name.
    pub node_id: String,
    /// Process start, for uptime.
    pub started: Instant,
    /// Process start, ms since the epoch.
    pub started_at_ms: u64,
    /// Set when shutdown begins: new connections are refused.
    pub shutting_down: AtomicBool,
    /// Set when a shutdown signal arrived: `/readyz` answers 503 for
    /// `server.drain_delay_ms` while connections are still served, so a
    /// load balancer stops sending clients before they are closed.
    pub draining: AtomicBool,
    /// Set once housekeeping runs (one task per node).
    pub(crate) housekeeping_started: AtomicBool,
    /// Set once the node serves (accept loop or mounted routers).
    pub(crate) serving: AtomicBool,
    /// Bumped when the node starts serving, drains or shuts down
    /// ([`crate::Node::readiness_changes`]).
    pub(crate) readiness: tokio::sync::watch::Sender<u64>,
    /// Told when a connection is registered ([`crate::Node::on_connected`]).
    pub(crate) on_connect: crate::node::ConnectHook,
    /// Intervals of built-in streams as the applications publishing them
    /// set them ([`crate::Node::set_stream_interval`]), for `GET /api/streams`.
    pub(crate) stream_intervals: parking_lot::RwLock<Vec<(String, Option<u64>)>>,
    /// The latest load sample ([`crate::Node::load`]), replaced once per
    /// `server.load_interval_ms` by the sampling task.
    pub(crate) load: tokio::sync::watch::Sender<Arc<crate::Load>>,
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// Builds the shared state for `config`, with no authenticator.
    pub fn new(config: Config) -> Arc<Self> {
        Self::with_authenticator(config, None)
    }

    /// Builds the shared state for `config`, verifying tokens with `auth`,
    /// on the in-memory engine.
    pub fn with_authenticator(config: Config, auth: Option<Arc<dyn Authenticator>>) -> Arc<Self> {
        let engine = Engine::memory(&config);
        Self::build(config, auth, engine)
    }

    /// Builds the shared state on `engine`, whose broker is started with
    /// this node's hub as its local delivery.
    pub fn build(
        config: Config,
        auth: Option<Arc<dyn Authenticator>>,
        engine: Engine,
    ) -> Arc<Self> {
        let metrics = Arc::new(Metrics::default());
        let node_id = if config.server.node_id.is_empty() {
            format!("n{:08x}", rand::random::<u32>())
        } else {
            config.server.node_id.clone()
        };
        let queue_limits = QueueLimits {
            max_messages: config.connection.outbound_queue_messages,
            max_bytes: config.connection.outbound_queue_bytes,
        };
        let config = Arc::new(config);
        let conns = Arc::new(Connections::new(node_id.clone()));
        let started = Instant::now();
        let hub = Arc::new(Hub::new(
            conns.clone(),
            queue_limits,
            metrics.clone(),
            started,
        ));
        hub.set_delivers_late(engine.broker.delivers_late());
        engine
            .broker
            .start(hub.clone() as Arc<dyn EventSink>, &node_id);
        // One client, one connection pool, for every backend the node asks.
        let http = crate::backend::client();
        let load = tokio::sync::watch::Sender::new(Arc::new(crate::Load::placeholder(&node_id)));
        let shared = Arc::new(Shared {
            hub,
            engine,
            conns,
            rooms: crate::rooms::Rooms::default(),
            rpc: crate::rpc::Registry::default(),
            rpc_backends: crate::rpc::proxy::backends(&config.rpc, &http),
            hooks: crate::hooks::Hooks::new(&config.hooks, &http),
            jobs: Default::default(),
            on_disconnect: Default::default(),
            api_extensions: Default::default(),
            http: HttpConns::new(config.server.max_http_connections),
            metrics,
            auth,
            limits: Limits::new(&config),
            node_id,
            started,
            started_at_ms: now_ms(),
            shutting_down: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            housekeeping_started: AtomicBool::new(false),
            load,
            serving: AtomicBool::new(false),
            stream_intervals: Default::default(),
            readiness: tokio::sync::watch::Sender::new(0),
            on_connect: Default::default(),
            shutdown: tokio::sync::watch::Sender::new(false),
            config,
        });
        let node = Arc::downgrade(&shared);
        shared.hub.on_room_deleted(Box::new(move |room| {
            if let Some(shared) = node.upgrade() {
                shared.room_deleted_arrived(room);
            }
        }));
        shared
    }

    /// A receiver that turns true when shutdown begins (HTTP connections
    /// and housekeeping tasks watch it).
    pub fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Starts shutdown: refuse new connections, tell watchers.
    pub fn begin_shutdown(&self) {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shutdown.send_replace(true);
        self.readiness_moved();
    }

    /// Bounds of every outbound queue.
    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            max_messages: self.config.connection.outbound_queue_messages,
            max_bytes: self.config.connection.outbound_queue_bytes,
        }
    }
}
