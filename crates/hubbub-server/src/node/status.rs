//! What a node can tell an application about itself beyond its load: its
//! readiness (the state `/readyz` answers from, with `starting` before it
//! serves) with a signal when it may have moved, and the cluster's nodes
//! as the engine's registry lists them. Hooks for the built-in `status`,
//! `nodes` and `topology` streams (`hubbub-streams`); the core knows
//! nothing of those streams.

use std::sync::atomic::Ordering::Relaxed;

use hubbub_protocol::streams::HubStatus;

use super::{Error, Node};
use crate::engine::{EventSink, NodeReport};
use crate::state::Shared;

/// A node's state and why, as `status_change` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `starting` until the node serves, `ready` while `/readyz` answers
    /// 200, `degraded` while the engine does not answer, `draining` from a
    /// shutdown signal on.
    pub status: HubStatus,
    /// Why, when there is something to say (the engine's error).
    pub reason: Option<String>,
}

impl Shared {
    /// Marks the node as serving (its accept loop runs, or its routers were
    /// mounted) and tells readiness watchers.
    pub(crate) fn mark_serving(&self) {
        if !self.serving.swap(true, Relaxed) {
            self.readiness_moved();
        }
    }

    /// Tells readiness watchers that the state may have moved.
    pub(crate) fn readiness_moved(&self) {
        self.readiness.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Node {
    /// The node's state now: the same checks `/readyz` makes (draining or
    /// shutting down, then the engine's health), `starting` before it
    /// serves. Cheap: two flags and the engine's last known health.
    pub fn readiness(&self) -> Readiness {
        let s = self.shared();
        let (status, reason) = if s.draining.load(Relaxed) || s.shutting_down.load(Relaxed) {
            (HubStatus::Draining, Some("shutting down".to_owned()))
        } else if let Err(e) = s.engine.broker.health() {
            (HubStatus::Degraded, Some(e.to_string()))
        } else if !s.serving.load(Relaxed) {
            (HubStatus::Starting, None)
        } else {
            (HubStatus::Ready, None)
        };
        Readiness { status, reason }
    }

    /// Changes each time the node starts serving, drains or shuts down, so
    /// a watcher need not poll for those; the engine's health has no such
    /// signal and is polled ([`Node::readiness`]).
    pub fn readiness_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared().readiness.subscribe()
    }

    /// Tells `GET /api/streams` the interval `channel`, a built-in stream,
    /// is published at (`None`: on change only), as the application
    /// publishing it was configured; the listing shows the documented
    /// default until then.
    pub fn set_stream_interval(&self, channel: &str, interval_ms: Option<u64>) {
        let mut set = self.shared().stream_intervals.write();
        match set.iter_mut().find(|(c, _)| c == channel) {
            Some(entry) => entry.1 = interval_ms,
            None => set.push((channel.to_owned(), interval_ms)),
        }
    }

    /// Where clients reach this node (`host:port`): the configured listen
    /// address, or the bound one when the configuration says port 0.
    pub fn address(&self) -> Option<String> {
        let s = self.shared();
        let listen = s.config.server.listen;
        let configured = (listen.port() != 0).then(|| listen.to_string());
        configured.or_else(|| s.hub.address())
    }

    /// Every node of the cluster as the engine's registry lists it (which
    /// lags by a heartbeat), with this node's own line fresh; sorted by
    /// id. With the engine's registry down: this node alone, and the error.
    pub async fn cluster_nodes(&self) -> (Vec<NodeReport>, Option<Error>) {
        let s = self.shared();
        let this = NodeReport {
            address: self.address(),
            connections: s.conns.registered(),
            ..EventSink::report(&*s.hub)
        };
        let (mut nodes, err) = match s.engine.broker.nodes().await {
            Ok(n) => (n, None),
            Err(e) => (Vec::new(), Some(Error::from(e))),
        };
        nodes.retain(|n| n.node_id != this.node_id);
        nodes.push(this);
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        (nodes, err)
    }
}
