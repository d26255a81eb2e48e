//! hubbub as a library: a real-time hub inside your own Rust application.
//!
//! Build a [`Node`], nest its routers into your axum application (or let
//! it serve on its own port), and publish from your code; browsers and
//! services connect to its WebSocket endpoint and HTTP API exactly as they
//! would to `hubbub serve`.
//!
//! ```no_run
//! use hubbub::{Config, Node};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let node = Node::new(Config::default())?;
//!     let app = axum::Router::new().nest("/hub", node.router());
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     let updates = node.clone();
//!     tokio::spawn(async move {
//!         updates.publish("status", "status_change", &"ready").await
//!     });
//!     axum::serve(listener, app).with_graceful_shutdown(node.closed()).await?;
//!     Ok(())
//! }
//! ```
//!
//! `docs/embedding.md` walks through it from `cargo add hubbub`; the
//! examples `embedded_task_queue` and `embedded_graph` are whole programs.
//! Without the binary's own dependencies:
//! `hubbub = { version = "0.1", default-features = false }`.

pub use hubbub_protocol as protocol;
pub use hubbub_server::engine;
/// Decision hooks on connect, subscribe and publish (`Node::on_connect`
/// and the others take these types).
pub use hubbub_server::hooks;
/// RPC handlers (`Node::rpc` takes these types).
pub use hubbub_server::rpc;
pub use hubbub_server::{
    ApiError, ApiExtension, CheckedData, Config, Connected, Disconnected, Error, Event,
    HistoryPage, JobCaller, JobHandler, JobStarted, JobUpdates, Load, Mode, Node, NodeBuilder,
    NodeStats, Preset, Readiness, Retention, Sources, Subscription, SubscriptionError, TaskUpdates,
};

/// The axum the routers are built with, so an application mounts them
/// without matching versions by hand.
pub use axum;
