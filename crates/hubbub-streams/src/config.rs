//! `[apps.streams]`: the built-in streams' intervals and bounds
//! (docs/streams.md), set like any other key (`--set
//! apps.streams.metrics_interval_ms=1000`).

use serde::{Deserialize, Serialize};

/// Intervals of the periodic streams, how often the on-change ones look
/// for a change, and the bound of the event queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamsConfig {
    /// Whether the streams are published at all.
    pub enabled: bool,
    /// `system_metrics` on `metrics`, ms.
    pub metrics_interval_ms: u64,
    /// `node_status_update` on `nodes`, ms.
    pub nodes_interval_ms: u64,
    /// `resource_update` on `resources`, ms.
    pub resources_interval_ms: u64,
    /// How often the cluster's node list is compared with the last
    /// `topology_update`, ms (nodes come and go by heartbeat).
    pub topology_check_ms: u64,
    /// How often the engine's health is looked at for `status_change`, ms
    /// (serving, draining and shutting down are signalled at once).
    pub status_check_ms: u64,
    /// `connection_*` and `log` events waiting to be published at most;
    /// beyond it the oldest is dropped and counted.
    pub event_queue: usize,
    /// On a networked engine (Redis, NATS): publish `connections` and
    /// `logs` events even with no subscriber on this node, for admins
    /// watching from another node. Off: each node's events reach the
    /// cluster only while someone on that node listens. (The periodic and
    /// on-change streams always publish on a networked engine.)
    pub cluster_events: bool,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            enabled: true,
            metrics_interval_ms: 5_000,
            nodes_interval_ms: 5_000,
            resources_interval_ms: 15_000,
            topology_check_ms: 5_000,
            status_check_ms: 1_000,
            event_queue: 1_024,
            cluster_events: false,
        }
    }
}

impl StreamsConfig {
    /// The section from the node's configuration (defaults when absent);
    /// an error names what is wrong, for the binary to exit 2 with.
    pub fn from_config(config: &hubbub_server::Config) -> Result<Self, String> {
        let c: StreamsConfig = config.app_section("streams")?;
        let intervals = [
            ("metrics_interval_ms", c.metrics_interval_ms),
            ("nodes_interval_ms", c.nodes_interval_ms),
            ("resources_interval_ms", c.resources_interval_ms),
            ("topology_check_ms", c.topology_check_ms),
            ("status_check_ms", c.status_check_ms),
        ];
        if let Some((k, _)) = intervals
            .iter()
            .find(|(_, v)| !(10..=86_400_000).contains(v))
        {
            return Err(format!("apps.streams.{k} must be between 10 and 86400000"));
        }
        if !(1..=1_000_000).contains(&c.event_queue) {
            return Err("apps.streams.event_queue must be between 1 and 1000000".into());
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(overrides: &[(&str, &str)]) -> Result<StreamsConfig, String> {
        let config = hubbub_server::Config::load(&hubbub_server::Sources {
            overrides: overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .map_err(|e| e.0)?;
        StreamsConfig::from_config(&config)
    }

    #[test]
    fn defaults_and_checks() {
        assert_eq!(load(&[]).unwrap(), StreamsConfig::default());
        let c = load(&[("apps.streams.metrics_interval_ms", "250")]).unwrap();
        assert_eq!(c.metrics_interval_ms, 250);
        let e = load(&[("apps.streams.nodes_interval_ms", "0")]).unwrap_err();
        assert!(e.contains("nodes_interval_ms"), "{e}");
        let e = load(&[("apps.streams.event_queue", "0")]).unwrap_err();
        assert!(e.contains("event_queue"), "{e}");
        let e = load(&[("apps.streams.nope", "1")]).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }
}
