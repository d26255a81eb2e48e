//! The on-change streams: `connections` (from the node's connect and
//! disconnect hooks, through a bounded queue so a connection task never
//! waits), `status` (the node's readiness) and `topology` (the cluster's
//! node list).

use std::time::Duration;

use hubbub_protocol::streams::{
    ConnectionClosed, ConnectionOpened, HubStatus, StatusChange, TopologyLink, TopologyNode,
    TopologyUpdate,
};
use hubbub_server::Retention;

use crate::{Stream, Streams};

/// A `connections` event waiting to be published.
pub(crate) enum Pending {
    Opened(ConnectionOpened),
    Closed(ConnectionClosed),
}

/// How long a `status_change` and a `topology_update` are kept, so a
/// subscriber arriving later reads the current state from history.
const KEEP_STATE: Retention = Retention::Keep {
    size: 64,
    ttl: Duration::from_secs(24 * 3600),
};

/// Hooks and tasks of the on-change streams.
pub(crate) fn install(streams: &Streams) {
    let node = &streams.inner.node;
    let s = streams.clone();
    node.on_connected(move |c| {
        if s.wanted(Stream::Connections) {
            s.inner.events.push(Pending::Opened(ConnectionOpened {
                connection_id: c.connection_id.clone(),
                user_id: c.user_id.clone(),
                encoding: c.encoding.to_owned(),
                remote_addr: Some(c.remote_addr.to_string()),
            }));
        }
    });
    let s = streams.clone();
    node.on_disconnect(move |d| {
        if s.wanted(Stream::Connections) {
            s.inner.events.push(Pending::Closed(ConnectionClosed {
                connection_id: d.connection_id.clone(),
                user_id: d.user_id.clone(),
                code: d.code,
                reason: d.reason.clone(),
                duration_ms: d.duration_ms,
            }));
        }
    });
    tokio::spawn(forward_connections(streams.clone()));
    tokio::spawn(status(streams.clone()));
    tokio::spawn(topology(streams.clone()));
}

/// Publishes queued `connections` events in order, until the node shuts
/// down.
async fn forward_connections(streams: Streams) {
    let closed = streams.inner.node.closed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = streams.inner.events.pushed() => {}
            _ = &mut closed => return,
        }
        for e in streams.inner.events.take_all() {
            match e {
                Pending::Opened(o) => {
                    streams
                        .emit(Stream::Connections, &o, Retention::Transient)
                        .await
                }
                Pending::Closed(c) => {
                    streams
                        .emit(Stream::Connections, &c, Retention::Transient)
                        .await
                }
            }
        }
    }
}

/// `status_change` whenever the node's readiness moves: at once for
/// serving, draining and shutting down (the node signals them), within
/// `status_check_ms` for the engine's health. Published whatever the
/// audience (a change is rare) and kept, so a late subscriber finds the
/// current state in the channel's history.
async fn status(streams: Streams) {
    let node = streams.inner.node.clone();
    let mut changes = node.readiness_changes();
    let mut tick =
        tokio::time::interval(Duration::from_millis(streams.inner.config.status_check_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<HubStatus> = None;
    loop {
        let now = node.readiness();
        if previous != Some(now.status) {
            let change = StatusChange {
                node_id: node.node_id().to_owned(),
                previous,
                status: now.status,
                reason: now.reason,
            };
            streams.emit(Stream::Status, &change, KEEP_STATE).await;
            previous = Some(now.status);
        }
        // A draining node only shuts down: nothing more to tell.
        if previous == Some(HubStatus::Draining) {
            return;
        }
        tokio::select! {
            _ = tick.tick() => {}
            r = changes.changed() => if r.is_err() { return },
        }
    }
}

/// `topology_update` when the cluster's node list changes (looked at every
/// `topology_check_ms` while wanted), and once to a new audience. Kept like
/// `status_change`.
async fn topology(streams: Streams) {
    let node = streams.inner.node.clone();
    let mut tick = tokio::time::interval(Duration::from_millis(
        streams.inner.config.topology_check_ms,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<TopologyUpdate> = None;
    let closed = node.closed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut closed => return,
        }
        if !streams.wanted(Stream::Topology) {
            // Nobody listens: the next listener gets the topology at once.
            last = None;
            continue;
        }
        let (reports, _) = node.cluster_nodes().await;
        let nodes: Vec<TopologyNode> = reports
            .iter()
            .map(|n| TopologyNode {
                node_id: n.node_id.clone(),
                address: n.address.clone().unwrap_or_default(),
            })
            .collect();
        let now = TopologyUpdate {
            links: links(&nodes),
            nodes,
        };
        if last.as_ref() != Some(&now) {
            streams.emit(Stream::Topology, &now, KEEP_STATE).await;
            last = Some(now);
        }
    }
}

/// Every pair of nodes, once: the engine relays between any two (there is
/// no other wiring between hub nodes), and measures no latency.
fn links(nodes: &[TopologyNode]) -> Vec<TopologyLink> {
    let mut out = Vec::new();
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            out.push(TopologyLink {
                from: a.node_id.clone(),
                to: b.node_id.clone(),
                latency_ms: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_join_every_pair_once() {
        let n = |id: &str| TopologyNode {
            node_id: id.into(),
            address: String::new(),
        };
        assert!(links(&[n("a")]).is_empty());
        let l = links(&[n("a"), n("b"), n("c")]);
        let pairs: Vec<(&str, &str)> = l.iter().map(|l| (&*l.from, &*l.to)).collect();
        assert_eq!(pairs, [("a", "b"), ("a", "c"), ("b", "c")]);
    }
}
