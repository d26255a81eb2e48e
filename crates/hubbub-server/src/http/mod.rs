//! The HTTP side of the hub: the API for backends and operators
//! (described by the OpenAPI document it serves), health checks and metrics.
//!
//! [`app`] builds the axum router (tests call it directly); the transport
//! hands every non-WebSocket socket to `serve_connection`.
//!
//! * [`routes`]: the one table of routes; the router and the OpenAPI
//!   coverage test both read it.
//! * [`auth`]: who may call.
//! * `publish`: publishing, sending to users, disconnecting.
//! * `looking`: stats, streams, channels, connections, health.
//! * `prometheus`: `GET /metrics`.
//! * [`openapi`]: the OpenAPI document.
//! * [`error`]: the error shape, and the net that gives every failure it.

pub mod auth;
pub mod error;
mod extract;
mod looking;
pub mod openapi;
mod presence;
mod prometheus;
mod publish;
mod rooms;
pub mod routes;
mod serve;
mod snapshot;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn_with_state, map_response};
use axum::Router;

pub use routes::{route_table, RouteInfo, Verb};
pub(crate) use serve::serve_connection;

use crate::state::Shared;

/// Room left in a request body beyond `connection.max_message_size` for
/// the envelope around the event (a broadcast's channel list, names).
const BODY_ENVELOPE: usize = 256 << 10;

/// What the HTTP handlers share: the node's state plus what only the API
/// keeps (the normalized key, the OpenAPI document built once).
pub(crate) struct ApiState {
    /// The node.
    pub shared: Arc<Shared>,
    /// `api.key`, `None` when unset or empty.
    key: Option<Box<str>>,
    /// `GET /api/openapi.json`, serialized once.
    openapi: Bytes,
}

/// Every route of the hub, with its state and the access rule.
pub fn app(shared: Arc<Shared>) -> Router {
    let key = shared
        .config
        .api
        .key
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(Box::from);
    if key.is_none() {
        tracing::warn!(
            "no api.key configured: the HTTP API answers loopback clients only, without credentials"
        );
    }
    let body_limit = shared.config.connection.max_message_size + BODY_ENVELOPE;
    let table = routes::routes();
    let mut openapi = openapi::document(&table.iter().map(|r| r.info).collect::<Vec<_>>());
    let extensions = std::mem::take(&mut *shared.api_extensions.lock());
    for ext in &extensions {
        openapi::extend(&mut openapi, ext);
    }
    let api = Arc::new(ApiState {
        shared,
        key,
        openapi: Bytes::from(serde_json::to_vec(&openapi).unwrap_or_default()),
    });
    let mut router = Router::new();
    for r in table {
        router = router.route(r.info.path, r.handler);
    }
    let mut router = router.with_state(api.clone());
    for ext in extensions {
        router = router.merge(ext.router);
    }
    router
        .fallback(error::no_route)
        .layer(from_fn_with_state(api.clone(), auth::access))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(map_response(error::json_errors))
}
