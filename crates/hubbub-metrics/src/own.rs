//! The hub's own metrics, recorded into the store every
//! `record_interval_ms` like any other (docs/metrics.md, "The hub's own
//! metrics"), so they get statistics, history and alerts too.

use std::time::{Duration, Instant};

use hubbub_server::Node;

use crate::store::Metrics;

/// Names of the hub's own metrics (prefixed `hub.`).
pub const OWN_METRICS: [&str; 3] = [
    "hub.connections",
    "hub.publications_per_second",
    "hub.deliveries_per_second",
];

/// Trims the store to the wall clock once a minute (values age out even
/// when none arrive) until the node shuts down.
pub(crate) fn spawn_trim(node: &Node, metrics: Metrics) {
    let closed = node.closed();
    tokio::spawn(async move {
        let run = async {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let m = metrics.clone();
                // It visits every series: off the async workers.
                let _ = tokio::task::spawn_blocking(move || m.trim()).await;
            }
        };
        tokio::select! {
            _ = run => {}
            _ = closed => {}
        }
    });
}

/// Records the node's figures every interval until the node shuts down.
pub(crate) fn spawn(node: &Node, metrics: Metrics) {
    let every = metrics.config().record_interval_ms;
    if every == 0 {
        return;
    }
    let node = node.clone();
    let closed = node.closed();
    tokio::spawn(async move {
        let run = async {
            let mut tick = tokio::time::interval(Duration::from_millis(every));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut prev: Option<(Instant, u64, u64)> = None;
            loop {
                tick.tick().await;
                let s = node.stats();
                let now = Instant::now();
                let _ = metrics.record("hub.connections", s.connections as f64, None);
                if let Some((t, p, d)) = prev {
                    let secs = now.duration_since(t).as_secs_f64().max(1e-3);
                    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
                    let _ = metrics.record(
                        "hub.publications_per_second",
                        rate(s.publications, p),
                        None,
                    );
                    let _ =
                        metrics.record("hub.deliveries_per_second", rate(s.deliveries, d), None);
                }
                prev = Some((now, s.publications, s.deliveries));
            }
        };
        tokio::select! {
            _ = run => {}
            _ = closed => {}
        }
    });
}
