//! What applications built on the node plug in beside the protocol: routes
//! of their own under the HTTP API, word of connections ending, and
//! publications kept as the application (not the namespace) says. Jobs
//! (`hubbub-graph`) use all three; none of them knows what a job is.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hubbub_protocol::JsonData;
use parking_lot::RwLock;
use serde::Serialize;

use super::{check_event, check_names, to_data, Error, Node};
use crate::engine::{HistoryOptions, PublishOutcome};

/// How long a publication is kept, whatever its channel's namespace says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// As the namespace says (what [`Node::publish`] does).
    Namespace,
    /// Delivered live, never kept and without an offset: for a stream of
    /// steps whose first and last events are what a late reader needs.
    Transient,
    /// Kept: at most `size` events of the channel, each for `ttl`.
    Keep {
        /// Events kept at most (the channel's newest).
        size: usize,
        /// How long each is kept.
        ttl: Duration,
    },
}

/// Event data already checked against the hub's data rules (nesting depth,
/// duplicate keys), so that publishing it costs no second pass. An
/// application that makes large events on a thread of its own (a job's
/// `graph` event is megabytes) checks them there, where the cost belongs,
/// instead of on the async worker that publishes them.
#[derive(Debug, Clone)]
pub struct CheckedData(JsonData);

impl CheckedData {
    /// Checks `data` once; the error is the one a publish would answer.
    pub fn new(data: JsonData) -> Result<CheckedData, Error> {
        data.check()
            .map_err(|e| Error::bad_request(e.to_string()))?;
        Ok(CheckedData(data))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

/// Routes an application adds to the HTTP API, served under the API's
/// access rule, body limit and error shape, and listed in
/// `/api/openapi.json`.
pub struct ApiExtension {
    /// The routes, their state applied (`Router<()>`).
    pub router: Router,
    /// Their OpenAPI `paths` entries (an object keyed by path).
    pub openapi_paths: serde_json::Value,
    /// Schemas those entries refer to (`#/components/schemas/...`).
    pub openapi_schemas: serde_json::Value,
    /// The tag the entries use, with its description.
    pub tag: (String, String),
}

/// A connection that ended, as [`Node::on_disconnect`] tells it.
#[derive(Debug, Clone)]
pub struct Disconnected {
    /// Its id.
    pub connection_id: String,
    /// Its user, if any.
    pub user_id: Option<String>,
    /// The close code it ended on (PROTOCOL.md section 9): the hub's or
    /// the peer's; 1006 when the socket broke without a close.
    pub code: u16,
    /// The close reason (`slow_consumer`, `going_away`, the peer's text...).
    pub reason: String,
    /// How long it was open, ms.
    pub duration_ms: u64,
}

/// A connection that was just registered, as [`Node::on_connected`] tells it
/// (its handshake done, `connected` on its way).
#[derive(Debug, Clone)]
pub struct Connected {
    /// Its id.
    pub connection_id: String,
    /// Its user, if any.
    pub user_id: Option<String>,
    /// `json` or `msgpack`.
    pub encoding: &'static str,
    /// The peer's address (the client's, behind a trusted proxy).
    pub remote_addr: std::net::SocketAddr,
}

/// Callbacks told of one kind of connection event ([`Node::on_connected`],
/// [`Node::on_disconnect`]).
pub(crate) struct Callbacks<T> {
    callbacks: RwLock<Vec<Callback<T>>>,
}

type Callback<T> = Arc<dyn Fn(&T) + Send + Sync>;

impl<T> Default for Callbacks<T> {
    fn default() -> Self {
        Callbacks {
            callbacks: RwLock::new(Vec::new()),
        }
    }
}

impl<T> Callbacks<T> {
    fn push(&self, f: impl Fn(&T) + Send + Sync + 'static) {
        self.callbacks.write().push(Arc::new(f));
    }

    /// Tells every callback; nothing is built when none is registered.
    pub(crate) fn tell(&self, event: impl FnOnce() -> T) {
        let callbacks = self.callbacks.read();
        if callbacks.is_empty() {
            return;
        }
        let e = event();
        for f in callbacks.iter() {
            f(&e);
        }
    }
}

/// The callbacks [`Node::on_connected`] registered.
pub(crate) type ConnectHook = Callbacks<Connected>;
/// The callbacks [`Node::on_disconnect`] registered.
pub(crate) type DisconnectHook = Callbacks<Disconnected>;

impl Node {
    /// As [`Node::publish`], kept as `retention` says.
    pub async fn publish_with<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        event_type: &str,
        data: &T,
        retention: Retention,
    ) -> Result<PublishOutcome, Error> {
        self.publish_json_with(channel, event_type, to_data(data)?, retention)
            .await
    }

    /// As [`Node::publish_with`], for data that is already JSON text.
    pub async fn publish_json_with(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
        retention: Retention,
    ) -> Result<PublishOutcome, Error> {
        check_event(channel, event_type, &data)?;
        self.publish_kept(channel, event_type, data, retention)
            .await
    }

    /// One event to several channels, each kept as its own `retention`
    /// says (a job's step on its channel and, unkept, on a channel of all
    /// jobs): checked once, then published in order; stops at the first
    /// engine failure. Returns each channel's outcome.
    pub async fn broadcast_json_with(
        &self,
        targets: &[(&str, Retention)],
        event_type: &str,
        data: JsonData,
    ) -> Result<Vec<PublishOutcome>, Error> {
        self.broadcast_checked(targets, event_type, CheckedData::new(data)?)
            .await
    }

    /// As [`Node::broadcast_json_with`], for data checked beforehand.
    pub async fn broadcast_checked(
        &self,
        targets: &[(&str, Retention)],
        event_type: &str,
        data: CheckedData,
    ) -> Result<Vec<PublishOutcome>, Error> {
        for (channel, _) in targets {
            check_names(channel, event_type)?;
        }
        let data = data.0;
        let mut out = Vec::with_capacity(targets.len());
        let Some((&(last, retention), first)) = targets.split_last() else {
            return Ok(out);
        };
        for &(channel, retention) in first {
            out.push(
                self.publish_kept(channel, event_type, data.clone(), retention)
                    .await?,
            );
        }
        // The last takes the data itself: a copy less (a job's `graph`
        // event is megabytes).
        out.push(self.publish_kept(last, event_type, data, retention).await?);
        Ok(out)
    }

    async fn publish_kept(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
        retention: Retention,
    ) -> Result<PublishOutcome, Error> {
        let shared = self.shared();
        let history = match retention {
            Retention::Namespace => shared.config.history_options(channel, event_type),
            Retention::Transient => None,
            Retention::Keep { size, ttl } => {
                (size > 0 && !ttl.is_zero()).then_some(HistoryOptions { size, ttl })
            }
        };
        Ok(shared
            .publish_kept(channel, event_type, data, None, history)
            .await?)
    }

    /// Calls `f` whenever one of this node's connections ends (after it
    /// left its channels). `f` runs on the connection's task: keep it short
    /// and never block.
    pub fn on_disconnect(&self, f: impl Fn(&Disconnected) + Send + Sync + 'static) {
        self.shared().on_disconnect.push(f);
    }

    /// Calls `f` whenever a WebSocket connection is registered on this node
    /// (handshake done). `f` runs on the accepting task: keep it short and
    /// never block.
    pub fn on_connected(&self, f: impl Fn(&Connected) + Send + Sync + 'static) {
        self.shared().on_connect.push(f);
    }

    /// Adds `ext` to the HTTP API. Call before the node serves (before
    /// [`Node::api_router`], [`Node::router`], [`Node::serve`] or
    /// [`Node::bind`]); routes added later are not served.
    pub fn extend_api(&self, ext: ApiExtension) {
        self.shared().api_extensions.lock().push(ext);
    }
}
