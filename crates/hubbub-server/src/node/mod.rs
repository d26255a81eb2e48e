//! The public face of the library: one hub node inside an application.
//!
//! A [`Node`] is a cloneable handle on everything a hub node is (its
//! connections, channels, engine and configuration). An application builds
//! one from a [`Config`], mounts its routers into its own axum app (or
//! lets [`Node::serve`] run it standalone, as `hubbub serve` does), and
//! from then on publishes, sends, reads and subscribes from Rust without
//! going through HTTP.
//!
//! ```no_run
//! use hubbub_server::{Config, Node};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::new(Config::default())?;
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .nest("/hub", node.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let serving = axum::serve(listener, app).with_graceful_shutdown(node.closed());
//! node.publish("tasks", "task_created", &serde_json::json!({"task_id": 1})).await?;
//! # serving.await?;
//! # Ok(()) }
//! ```

mod extend;
mod ops;
mod status;
mod subscription;
mod typed;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hubbub_protocol::ErrorCode;

pub(crate) use extend::ConnectHook;
pub(crate) use extend::DisconnectHook;
pub use extend::{ApiExtension, CheckedData, Connected, Disconnected, Retention};
use ops::{check_event, check_names, to_data};
pub use ops::{HistoryPage, NodeStats};
pub use status::Readiness;
pub use subscription::{Event, Subscription, SubscriptionError};
pub use typed::{JobUpdates, TaskUpdates, NODE_ACTIVATIONS_CHANNEL, TASKS_CHANNEL};

use crate::auth::Authenticator;
use crate::config::{Config, Sources};
use crate::engine::Engine;
use crate::state::Shared;

/// Why the node could not do what was asked, with the protocol's error code
/// so an application can answer its own clients the way the hub would.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct Error {
    /// The code a client of the hub would see for the same failure.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl From<crate::history::HistoryError> for Error {
    fn from(e: crate::history::HistoryError) -> Self {
        Error::new(ErrorCode::Unavailable, e.0)
    }
}

impl From<crate::engine::EngineError> for Error {
    fn from(e: crate::engine::EngineError) -> Self {
        Error::new(ErrorCode::Unavailable, e.0)
    }
}

/// One hub node: cheap to clone, every clone the same node.
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

/// Choices beyond the configuration: the engine (in-memory unless told)
/// and how tokens are checked (the keys of `[auth]` unless told).
pub struct NodeBuilder {
    config: Config,
    engine: Option<Engine>,
    auth: Option<Option<Arc<dyn Authenticator>>>,
}

impl NodeBuilder {
    /// Runs the node on `engine` instead of the in-memory one (several
    /// nodes sharing a networked engine act as one hub).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Verifies tokens with `auth` instead of the keys of `[auth]`, for
    /// applications that check tokens their own way (`None`: no tokens).
    pub fn authenticator(mut self, auth: Option<Arc<dyn Authenticator>>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Builds the node. Fails on a configuration that cannot run: a key
    /// file missing or wrong, or auth required with no key. Lowers
    /// `server.max_connections`, with a warning, to what the process's
    /// descriptor limit allows.
    pub fn build(self) -> Result<Node, Error> {
        let mut config = self.config;
        let auth = match self.auth {
            Some(a) => a,
            None => crate::auth::jwt::JwtAuthenticator::from_config(&config.auth)
                .map_err(|e| Error::bad_request(format!("auth: {e}")))?
                .map(|a| Arc::new(a) as Arc<dyn Authenticator>),
        };
        if config.auth_required() && auth.is_none() {
            return Err(Error::bad_request(
                "auth is required (production mode, or auth.required = true) but no key is \
                 configured: set auth.hs256_secret, auth.rs256_public_key_file, \
                 auth.es256_public_key_file or auth.jwks_file, or auth.required = false",
            ));
        }
        crate::server::fit_to_descriptors(&mut config);
        let engine = self.engine.unwrap_or_else(|| Engine::memory(&config));
        let shared = Shared::build(config, auth, engine);
        let node = Node { shared };
        if tokio::runtime::Handle::try_current().is_ok() {
            node.start_housekeeping();
        }
        Ok(node)
    }
}

impl Node {
    /// A node on the in-memory engine, checking tokens with the keys of
    /// `config.auth`. See [`NodeBuilder::build`] for what can fail.
    pub fn new(config: Config) -> Result<Node, Error> {
        Self::builder(config).build()
    }

    /// A node configured from the same layers `hubbub serve` reads
    /// (preset, TOML file, `HUBBUB_*` environment, overrides).
    ///
    /// ```
    /// use hubbub_server::{Node, Preset, Sources};
    /// let node = Node::from_sources(&Sources {
    ///     preset: Some(Preset::Lightweight),
    ///     overrides: vec![("channels.history_size".into(), "10".into())],
    ///     ..Sources::default()
    /// })
    /// .unwrap();
    /// assert_eq!(node.config().namespace("any").history_size, 10);
    /// ```
    pub fn from_sources(sources: &Sources) -> Result<Node, Error> {
        let config = Config::load(sources).map_err(|e| Error::bad_request(e.to_string()))?;
        Self::new(config)
    }

    /// For choosing the engine or the authenticator.
    pub fn builder(config: Config) -> NodeBuilder {
        NodeBuilder {
            config,
            engine: None,
            auth: None,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Node {
        Node { shared }
    }

    /// Housekeeping (expiry of history, user queues and rate tables) runs
    /// once per node, from the first moment a runtime is there.
    pub(crate) fn start_housekeeping(&self) {
        if !self
            .shared
            .housekeeping_started
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            tokio::spawn(crate::server::housekeeping(self.shared.clone()));
            let period = Duration::from_millis(self.shared.config.server.load_interval_ms);
            tokio::spawn(crate::load::run(Arc::downgrade(&self.shared), period));
        }
    }

    /// The latest load sample: connections, rates, publish latency, CPU,
    /// memory, descriptors, queued bytes. Taken once per
    /// `server.load_interval_ms` by one task and shared, so reading it
    /// costs nothing however often it is read (before the first sample,
    /// and on a node never run inside a runtime, all zeros).
    pub fn load(&self) -> Arc<crate::Load> {
        self.shared.load.borrow().clone()
    }

    /// Every new load sample as it is taken, for an application that
    /// records or streams them (a slow reader sees the newest only).
    pub fn load_updates(&self) -> tokio::sync::watch::Receiver<Arc<crate::Load>> {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.start_housekeeping();
        }
        self.shared.load.subscribe()
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// This node's name; every connection id starts with it.
    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// The WebSocket endpoint alone, at `/ws` under wherever the
    /// application nests it. Serve the application with
    /// `into_make_service_with_connect_info::<SocketAddr>()` so the
    /// per-address limits see each client's address.
    pub fn websocket_router(&self) -> Router {
        self.start_housekeeping();
        self.shared.mark_serving();
        let shared = self.shared.clone();
        Router::new().route(
            "/ws",
            axum::routing::get(move |req: axum::extract::Request| {
                crate::transport::mounted_upgrade(shared.clone(), req)
            }),
        )
    }

    /// The HTTP API (`/api/...`), `/health` and `/metrics` alone, guarded
    /// as standalone (`api.key`, or loopback only without one).
    pub fn api_router(&self) -> Router {
        self.start_housekeeping();
        crate::http::app(self.shared.clone())
    }

    /// Both routers in one, as `hubbub serve` offers them.
    pub fn router(&self) -> Router {
        self.api_router().merge(self.websocket_router())
    }

    /// Runs the node standalone on `server.listen` (TLS when configured),
    /// exactly as `hubbub serve` does, until `shutdown` completes; then
    /// closes every connection with 1001 and drains.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        crate::server::Server::bind_node(self)
            .await?
            .run_until(shutdown)
            .await
    }

    /// Binds `server.listen` without serving yet, for a caller that needs
    /// the address first (port 0 picks a free one).
    pub async fn bind(self) -> io::Result<crate::server::Server> {
        crate::server::Server::bind_node(self).await
    }

    /// Closes every WebSocket connection with 1001 and reconnect advice,
    /// refuses new ones, and waits for them to finish (at most
    /// `server.shutdown_timeout_ms`). For an application shutting down
    /// with the hub mounted inside it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let node = hubbub_server::Node::new(hubbub_server::Config::default()).unwrap();
    /// let closed = node.closed(); // what axum's `with_graceful_shutdown` awaits
    /// node.shutdown().await;
    /// closed.await;
    /// # });
    /// ```
    pub async fn shutdown(&self) {
        crate::server::drain(&self.shared).await;
    }

    /// Resolves once [`Node::shutdown`] has begun: a graceful-shutdown
    /// signal for the application's server.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shared.shutdown_signal();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }

    /// The address a standalone node listens on (`server.listen`).
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.config.server.listen
    }
}
