//! The hub's built-in streams (PROTOCOL.md section 8; docs/streams.md), an
//! application on the node's public API: the core measures its load once
//! per `server.load_interval_ms` ([`hubbub_server::Node::load`]) and offers
//! hooks (connections opened and closed, readiness, the cluster's nodes);
//! this crate turns them into events.
//!
//! | channel | event | when |
//! |---|---|---|
//! | `metrics` | `system_metrics` | every `metrics_interval_ms` (5 s) |
//! | `nodes` | `node_status_update` | every `nodes_interval_ms` (5 s), one per node |
//! | `resources` | `resource_update` | every `resources_interval_ms` (15 s) |
//! | `topology` | `topology_update` | on change |
//! | `status` | `status_change` | on change |
//! | `connections` | `connection_opened`, `connection_closed` | on change (admins) |
//! | `logs` | `log` | warnings and errors (admins), through [`LogLayer`] |
//!
//! A stream costs nothing while nobody listens: each checks
//! [`hubbub_server::Node::subscriber_count`] (a map lookup) before it
//! computes or encodes anything (on a networked engine, see
//! [`StreamsConfig::cluster_events`] and docs/streams.md for the rule).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = hubbub_server::Node::new(hubbub_server::Config::default())?;
//! let config = hubbub_streams::StreamsConfig::from_config(node.config())?;
//! let streams = hubbub_streams::install(&node, config);
//! // Warnings and errors on `logs`: the layer goes into the subscriber.
//! let (layer, feed) = hubbub_streams::log_layer(1024);
//! # drop(layer);
//! streams.forward_logs(feed);
//! node.serve(std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod config;
mod events;
mod logs;
mod periodic;
mod queue;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use hubbub_server::config::EngineKind;
use hubbub_server::{Node, Retention};

pub use config::StreamsConfig;
pub use logs::{log_layer, LogFeed, LogLayer};

/// The streams this crate publishes, by channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// `metrics`: `system_metrics`.
    Metrics,
    /// `nodes`: `node_status_update`.
    Nodes,
    /// `resources`: `resource_update`.
    Resources,
    /// `topology`: `topology_update`.
    Topology,
    /// `status`: `status_change`.
    Status,
    /// `connections`: `connection_opened`, `connection_closed` (admins).
    Connections,
    /// `logs`: `log` (admins).
    Logs,
}

impl Stream {
    /// Every stream, in the order of the table above.
    pub const ALL: [Stream; 7] = [
        Stream::Metrics,
        Stream::Nodes,
        Stream::Resources,
        Stream::Topology,
        Stream::Status,
        Stream::Connections,
        Stream::Logs,
    ];

    /// Its channel.
    pub fn channel(self) -> &'static str {
        match self {
            Stream::Metrics => "metrics",
            Stream::Nodes => "nodes",
            Stream::Resources => "resources",
            Stream::Topology => "topology",
            Stream::Status => "status",
            Stream::Connections => "connections",
            Stream::Logs => "logs",
        }
    }
}

/// The installed streams: counters of what they did, and the log feed's
/// entry point. Cheap to clone.
#[derive(Clone)]
pub struct Streams {
    inner: Arc<Inner>,
}

struct Inner {
    node: Node,
    config: StreamsConfig,
    /// On a networked engine: other nodes' clients may listen unseen.
    clustered: bool,
    /// Events built (payload computed and encoded), per stream.
    built: [AtomicU64; 7],
    /// Events dropped for room in the event queue.
    events: queue::Bounded<events::Pending>,
}

impl Streams {
    /// Events built so far on `stream` (each one computed, encoded and
    /// published): stays put while nobody listens, which is how the cost
    /// rule is checked.
    pub fn built(&self, stream: Stream) -> u64 {
        self.inner.built[stream as usize].load(Relaxed)
    }

    /// `connection_*` events dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.inner.events.dropped()
    }

    /// Whether `stream` should be computed now: someone on this node
    /// listens, or (periodic and on-change streams, or every stream with
    /// `cluster_events`) the engine is networked and listeners elsewhere
    /// cannot be seen from here.
    fn wanted(&self, stream: Stream) -> bool {
        let i = &self.inner;
        let unseen_elsewhere = i.clustered
            && match stream {
                Stream::Connections | Stream::Logs => i.config.cluster_events,
                _ => true,
            };
        unseen_elsewhere || i.node.subscriber_count(stream.channel()) > 0
    }

    /// Counts an event of `stream` as built.
    fn count(&self, stream: Stream) {
        self.inner.built[stream as usize].fetch_add(1, Relaxed);
    }

    /// Publishes `payload` on `stream`'s channel (failures are the
    /// engine's; the next interval tries again).
    async fn emit<P: hubbub_protocol::EventPayload>(
        &self,
        stream: Stream,
        payload: &P,
        retention: Retention,
    ) {
        self.count(stream);
        let _ = self
            .inner
            .node
            .publish_json_with(
                stream.channel(),
                P::EVENT_TYPE,
                payload.to_data(),
                retention,
            )
            .await;
    }
}

/// Publishes the built-in streams of `node` as `config` says (nothing when
/// `enabled` is off); call before it serves, inside a Tokio runtime. The
/// `logs` stream also needs [`Streams::forward_logs`] with the feed of a
/// [`LogLayer`] installed in the process's tracing subscriber.
pub fn install(node: &Node, config: StreamsConfig) -> Streams {
    let clustered = node.config().engine.kind != EngineKind::Memory;
    let streams = Streams {
        inner: Arc::new(Inner {
            node: node.clone(),
            events: queue::Bounded::new(config.event_queue),
            config,
            clustered,
            built: Default::default(),
        }),
    };
    let c = &streams.inner.config;
    let periodic = [
        (Stream::Metrics, c.metrics_interval_ms),
        (Stream::Nodes, c.nodes_interval_ms),
        (Stream::Resources, c.resources_interval_ms),
    ];
    for (stream, interval) in periodic {
        node.set_stream_interval(stream.channel(), Some(interval));
    }
    if !c.enabled {
        return streams;
    }
    for (stream, interval) in periodic {
        tokio::spawn(periodic::run(streams.clone(), stream, interval));
    }
    events::install(&streams);
    streams
}
