//! The node registry: every `heartbeat_ms` each node puts its
//! [`NodeReport`] in the `<prefix>_nodes` key-value bucket (key: hex of its
//! id), which keeps values for three heartbeats, so a node that stops
//! announcing itself drops out of `nodes()` within three.

use std::sync::Weak;

use async_nats::HeaderMap;
use bytes::Bytes;
use hubbub_server::engine::{EngineError, NodeReport};

use crate::link::failed;
use crate::listing::{is_deletion, last_per_subject};
use crate::names::{hex, kv_stream, kv_subject};
use crate::Inner;

impl Inner {
    /// Puts this node's report in the registry.
    pub(crate) async fn announce(&self) -> Result<(), EngineError> {
        let report = self.sink()?.report();
        let payload = Bytes::from(serde_json::to_vec(&report).map_err(|e| failed("report", e))?);
        let bucket = self.link.names.nodes_bucket();
        let subject = kv_subject(&bucket, &hex(self.node_id()));
        match self.link.append(subject, HeaderMap::new(), payload).await? {
            Ok(_) => Ok(()),
            Err(kind) => Err(failed("announce", kind)),
        }
    }

    /// Every node that announced itself within three heartbeats, by id.
    pub(crate) async fn nodes(&self) -> Result<Vec<NodeReport>, EngineError> {
        let bucket = self.link.names.nodes_bucket();
        let filter = kv_subject(&bucket, ">");
        let mut nodes = Vec::new();
        for m in last_per_subject(&self.link, &kv_stream(&bucket), filter, false).await? {
            if is_deletion(&m) {
                continue;
            }
            match serde_json::from_slice::<NodeReport>(&m.payload) {
                Ok(r) => nodes.push(r),
                Err(e) => tracing::warn!(error = %e, "undecodable node report skipped"),
            }
        }
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        Ok(nodes)
    }
}

/// Announces this node every heartbeat until the engine is dropped.
pub(crate) async fn announce_loop(weak: Weak<Inner>) {
    let Some(period) = weak.upgrade().map(|i| i.settings.heartbeat) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        if let Err(e) = inner.announce().await {
            tracing::debug!(error = %e, "node not announced");
        }
    }
}
