//! The hubbub hub as a library: one node of a real-time server that pushes
//! channel events to WebSocket clients, inside your application or on its
//! own.
//!
//! The API is the facade: [`Node`] (build from a [`Config`], mount its
//! routers into an axum application or [`Node::serve`] it, publish, send,
//! read and [`Node::subscribe`] from Rust, shut down), the typed
//! [`JobUpdates`] and [`TaskUpdates`], [`rpc`] methods and the decision
//! [`hooks`] (connect, subscribe, publish), the [`engine`] traits a networked
//! engine implements, [`auth`] for applications that check tokens their
//! own way, and [`config`]. Everything else is the node's own business and
//! private to this crate; `docs/architecture.md` is its map.
//!
//! Inside, in the order a connection meets it:
//!
//! * `server`: binds, accepts (with TLS when configured), and on shutdown
//!   closes every connection with 1001 and drains within a deadline.
//! * `transport`: reads the first request head of each socket; WebSocket
//!   upgrades become connections, everything else goes to `http`;
//!   `transport::mounted` does the same inside an application's router.
//! * `auth`, `limits`, `net`: tokens and what they grant, the abuse limits
//!   at the handshake, the client address behind a proxy.
//! * `conn`: the WebSocket transport, one task per connection owning its
//!   socket (framing, control frames, heartbeats, I/O); the shared
//!   `ConnHandle` with its bounded outbox is how anything else reaches it.
//! * `session`: the protocol session each connection task owns, kept apart
//!   from the transport so that a later one (SSE) reuses it whole: commands
//!   and replies, subscriptions, claims and token expiry, the rate budget.
//! * [`hooks`]: the application's decisions, asked from `transport`
//!   (connect, before `connected`) and `session` (subscribe, publish),
//!   answered by Rust closures or HTTP backends.
//! * `events`: the one path every event takes: stamped by the node, then
//!   the engine's broker.
//! * `hub`: local delivery: the sharded channel registry, where each event
//!   is encoded once per wire (protocol, encoding, framing) and fanned out
//!   as shared bytes; in-process subscribers get the publication itself.
//! * [`engine`]: broker, history and presence traits and the memory engine
//!   (`history`, `users`: its history store and offline queues).
//! * `conns`, `http_conns`: the registries of live WebSocket and HTTP
//!   connections.
//! * `http`: the HTTP API, health and metrics.
//! * `node`: the facade.

pub mod auth;
mod backend;
mod channel;
pub mod config;
mod conn;
mod conns;
pub mod engine;
mod events;
mod history;
pub mod hooks;
mod http;
mod http_conns;
mod hub;
mod jobs;
mod limits;
mod load;
mod metrics;
mod net;
mod node;
mod rooms;
pub mod rpc;
mod server;
mod session;
mod state;
mod transport;
mod users;
mod util;

pub use config::{Config, Mode, Preset, Sources};
pub use http::error::ApiError;
pub use jobs::{JobCaller, JobHandler, JobStarted};
pub use load::Load;
pub use node::{
    ApiExtension, CheckedData, Connected, Disconnected, Error, Event, HistoryPage, JobUpdates,
    Node, NodeBuilder, NodeStats, Readiness, Retention, Subscription, SubscriptionError,
    TaskUpdates, NODE_ACTIVATIONS_CHANNEL, TASKS_CHANNEL,
};
pub use server::Server;
pub use util::now_ms;

/// Not API: what this crate's own tests, benchmarks and measurement
/// programs reach past the facade for (counters, the registries, a
/// connection's handle standing in for a socket). Nothing here is stable.
#[doc(hidden)]
pub mod internals {
    pub use crate::conn::handle::ConnHandle;
    pub use crate::http::{app, route_table, RouteInfo, Verb};
    pub use crate::hub::Wire;
    pub use crate::load::sample_once as sample_load;
    pub use crate::rpc::proxy::fuzz_rpc_answer;
    pub use crate::state::Shared;
    pub use crate::transport::fuzz_request_head;
}
