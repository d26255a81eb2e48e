//! `metrics`, `nodes` and `resources`: one event per interval, built from
//! the node's shared load sample ([`hubbub_server::Load`]), so a stream
//! adds no pass over the connections of its own. Rates and CPU cover the
//! stream's interval (the difference of two samples) when the previous
//! event is recent enough, else the load sample's own window.

use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::streams::{NodeStatusUpdate, ResourceUpdate, SystemMetrics};
use hubbub_server::{Load, Retention};

use crate::{Stream, Streams};

/// Figures over the time between two samples.
struct Window {
    cpu_percent: f64,
    events_per_second: f64,
    messages_per_second: f64,
}

impl Window {
    /// From `prev` to `now` when `prev` is a different, usable sample;
    /// else the rates `now` carries over its own window.
    fn between(prev: Option<&Load>, now: &Load) -> Window {
        let dt = prev
            .filter(|p| p.sample < now.sample)
            .map(|p| (p, now.at_ms.saturating_sub(p.at_ms) as f64 / 1000.0))
            .filter(|(_, dt)| *dt > 0.0);
        match dt {
            Some((p, dt)) => {
                let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                Window {
                    cpu_percent: ((now.cpu_seconds - p.cpu_seconds) / dt * 100.0).max(0.0),
                    events_per_second: per_s(now.publications, p.publications),
                    messages_per_second: per_s(
                        now.messages_sent + now.messages_received,
                        p.messages_sent + p.messages_received,
                    ),
                }
            }
            None => Window {
                cpu_percent: now.cpu_percent,
                events_per_second: now.publications_per_second,
                messages_per_second: now.messages_in_per_second + now.messages_out_per_second,
            },
        }
    }
}

/// How often a periodic stream looks for a new listener: one who arrives
/// gets the current figures within this time, not an interval later (a
/// dashboard opened with `resources` at 15 s shows them at once).
const AUDIENCE_CHECK: Duration = Duration::from_secs(1);

/// Publishes `stream` every `interval_ms` while it is wanted, and early
/// (at most once per [`AUDIENCE_CHECK`]) when a listener joins this node.
pub(crate) async fn run(streams: Streams, stream: Stream, interval_ms: u64) {
    let node = streams.inner.node.clone();
    let interval = Duration::from_millis(interval_ms);
    let mut tick = tokio::time::interval(interval.min(AUDIENCE_CHECK));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The sample the previous event was built from, while it is recent
    // enough to measure the interval against.
    let mut prev: Option<Arc<Load>> = None;
    // When the next event is due, and how many listened at the last look.
    let mut due = tokio::time::Instant::now();
    let mut listeners = 0;
    let closed = node.closed();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut closed => return,
        }
        if !streams.wanted(stream) {
            prev = None;
            listeners = 0;
            continue;
        }
        let now = tokio::time::Instant::now();
        let count = node.subscriber_count(stream.channel());
        let joined = count > listeners;
        listeners = count;
        // Ticks come every interval when it is shorter than the audience
        // check: a tick a hair early must not skip a whole interval.
        if now + interval.min(AUDIENCE_CHECK) / 2 < due && !joined {
            continue;
        }
        due = now + interval;
        let load = node.load();
        let w = Window::between(prev.as_deref(), &load);
        match stream {
            Stream::Metrics => {
                let m = SystemMetrics {
                    node_id: load.node_id.clone(),
                    cpu_percent: w.cpu_percent,
                    memory_bytes: load.memory_bytes,
                    events_per_second: w.events_per_second,
                    connections: load.connections as u64,
                    messages_per_second: w.messages_per_second,
                    latency_p50_ms: load.latency_p50_ms,
                    latency_p99_ms: load.latency_p99_ms,
                };
                streams.emit(stream, &m, Retention::Transient).await;
            }
            Stream::Nodes => {
                let n = NodeStatusUpdate {
                    node_id: load.node_id.clone(),
                    address: node.address().unwrap_or_default(),
                    connections: load.connections as u64,
                    uptime_seconds: load.uptime_seconds,
                    latency_ms: None,
                };
                streams.emit(stream, &n, Retention::Transient).await;
            }
            Stream::Resources => {
                let r = ResourceUpdate {
                    node_id: load.node_id.clone(),
                    cpu_percent: w.cpu_percent,
                    memory_bytes: load.memory_bytes,
                    open_fds: load.open_fds,
                    queue_bytes: load.queue_bytes,
                };
                streams.emit(stream, &r, Retention::Transient).await;
            }
            _ => {}
        }
        prev = Some(load);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_the_window_or_the_samples_own() {
        let node = hubbub_server::Node::new(hubbub_server::Config::default()).unwrap();
        // A node outside a runtime keeps its placeholder: zeros, sample 0.
        let a = node.load();
        let w = Window::between(None, &a);
        assert_eq!((w.cpu_percent, w.events_per_second), (0.0, 0.0));
        // The same sample twice is no window: its own rates.
        let w = Window::between(Some(&a), &a);
        assert_eq!(w.messages_per_second, 0.0);
    }
}
