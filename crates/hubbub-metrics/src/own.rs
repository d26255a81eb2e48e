//! The hub's own metrics, recorded into the store every
//! `record_interval_ms` like any other (docs/metrics.md, "The hub's own
//! metrics"), so they get statistics, history and alerts too.

use std::sync::Arc;
use std::time::Duration;

use hubbub_server::{Load, Node};

use crate::store::Metrics;

/// Names of the hub's own metrics (prefixed `hub.`).
pub const OWN_METRICS: [&str; 8] = [
    "hub.connections",
    "hub.messages_per_second",
    "hub.publications_per_second",
    "hub.deliveries_per_second",
    "hub.latency_ms",
    "hub.latency_p99_ms",
    "hub.cpu_percent",
    "hub.memory_bytes",
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

/// Records the node's load every `record_interval_ms` until the node
/// shuts down: read from the node's shared sample ([`Node::load`], taken
/// every `server.load_interval_ms` by the node anyway), rates over this
/// recorder's own interval from the sample's running totals. A tick that
/// finds no new sample records nothing.
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
            let mut prev: Option<Arc<Load>> = None;
            loop {
                tick.tick().await;
                let load = node.load();
                if load.sample == 0 || prev.as_ref().is_some_and(|p| p.sample == load.sample) {
                    continue;
                }
                record(&metrics, &load, prev.as_deref());
                prev = Some(load);
            }
        };
        tokio::select! {
            _ = run => {}
            _ = closed => {}
        }
    });
}

/// One load sample's metrics; rates need the sample before.
fn record(metrics: &Metrics, load: &Load, prev: Option<&Load>) {
    let at = Some(load.at_ms as i64);
    let put = |name: &str, v: f64| {
        let _ = metrics.record(name, v, at);
    };
    put("hub.connections", load.connections as f64);
    put("hub.memory_bytes", load.memory_bytes as f64);
    if let Some(ms) = load.latency_p50_ms {
        put("hub.latency_ms", ms);
    }
    if let Some(ms) = load.latency_p99_ms {
        put("hub.latency_p99_ms", ms);
    }
    let Some(p) = prev else { return };
    let secs = load.at_ms.saturating_sub(p.at_ms) as f64 / 1000.0;
    if secs <= 0.0 {
        return;
    }
    let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
    put(
        "hub.messages_per_second",
        rate(
            load.messages_sent + load.messages_received,
            p.messages_sent + p.messages_received,
        ),
    );
    put(
        "hub.publications_per_second",
        rate(load.publications, p.publications),
    );
    put(
        "hub.deliveries_per_second",
        rate(load.deliveries, p.deliveries),
    );
    put(
        "hub.cpu_percent",
        (load.cpu_seconds - p.cpu_seconds).max(0.0) / secs * 100.0,
    );
}
