//! The hubbub hub: one node of a real-time server that pushes channel events
//! to WebSocket clients.
//!
//! Layout, in the order a connection meets it:
//!
//! * [`server`]: binds, accepts (with TLS when configured), and on
//!   shutdown closes every connection with 1001 and drains within a deadline.
//! * `transport`: reads the first request head of each socket; WebSocket
//!   upgrades become connections, everything else goes to [`http`].
//! * [`auth`]: tokens and what they grant; [`limits`] and [`net`]: the
//!   abuse limits at the handshake and the client address behind a proxy.
//! * [`conn`]: the WebSocket transport, one task per connection owning its
//!   socket (framing, control frames, heartbeats, I/O); the shared
//!   [`conn::handle::ConnHandle`] with its bounded outbox is how anything
//!   else reaches it.
//! * `session`: the protocol session each connection task owns, kept apart
//!   from the transport so that a later one (SSE) reuses it whole: commands
//!   and replies, subscriptions, claims and token expiry, the rate budget.
//!   It answers through the connection's handle and asks its transport
//!   only to queue recovered events ahead of later ones.
//! * [`hub`]: the sharded channel registry and the publish path, where
//!   each event is encoded once per wire (protocol, encoding, framing:
//!   [`hub::Wire`]) and fanned out as shared bytes.
//! * [`history`]: numbered channel events for recovery and `history`.
//! * [`users`]: offline queues per user.
//! * [`conns`]: the registry of live connections, by id and user.
//! * [`http_conns`]: the bounded registry of HTTP connections, oldest idle
//!   evicted first.
//! * [`http`]: the HTTP API, health and metrics.
//! * [`config`], [`metrics`], [`state`]: configuration layers, counters, and
//!   the state all tasks share.

pub mod auth;
pub mod config;
pub mod conn;
pub mod conns;
pub mod engine;
mod events;
pub mod history;
pub mod http;
pub mod http_conns;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod net;
mod node;
pub mod server;
mod session;
pub mod state;
mod transport;
pub mod users;
mod util;

pub use config::{Config, Mode, Preset, Sources};
pub use node::{
    Error, Event, HistoryPage, JobUpdates, Node, NodeBuilder, NodeStats, Subscription,
    SubscriptionError, TaskUpdates, NODE_ACTIVATIONS_CHANNEL, TASKS_CHANNEL,
};
pub use server::Server;
pub use state::Shared;
#[doc(hidden)]
pub use transport::fuzz_request_head;
pub use util::now_ms;
