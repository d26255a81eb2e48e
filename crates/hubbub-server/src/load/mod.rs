//! A node's load, measured once per `server.load_interval_ms` by one task
//! and shared: `GET /api/stats`, `GET /metrics`, the built-in streams and
//! an application's own monitoring all read the latest [`Load`] instead of
//! walking every connection on each request (a dashboard polling
//! `/api/stats` would otherwise lock every connection's outbox per poll).
//!
//! The pass itself is the only walk over connections: their traffic
//! counters and queued bytes are summed there. Nothing is added to a
//! connection or to the delivery path.

mod proc;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::conn::handle::ConnState;
use crate::metrics::HistogramCounts;
use crate::state::Shared;
use crate::util::now_ms;
use proc::ProcSample;

/// One node's load at one moment: what the hub does (connections, message
/// and publication rates, publish latency) and what it costs the machine
/// (CPU, memory, descriptors, queued bytes). Rates and quantiles cover the
/// time since the previous sample (about one `server.load_interval_ms`).
/// New fields may be added, so it cannot be built outside the crate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Load {
    /// The node measured.
    pub node_id: String,
    /// When, ms since the Unix epoch.
    pub at_ms: u64,
    /// Samples taken so far: 0 for the placeholder a node starts with,
    /// then 1, 2, ... (a watcher can tell a fresh sample from a repeat).
    pub sample: u64,
    /// Time covered by the rates, ms (the actual gap since the previous
    /// sample, not the configured interval).
    pub window_ms: u64,
    /// Seconds since the node started.
    pub uptime_seconds: u64,
    /// Live WebSocket connections (registered, handshakes done).
    pub connections: usize,
    /// Of those, the ones closing.
    pub closing_connections: usize,
    /// Data messages read from clients per second.
    pub messages_in_per_second: f64,
    /// Frames written to clients per second.
    pub messages_out_per_second: f64,
    /// Publications accepted per second (WebSocket, HTTP, in-process).
    pub publications_per_second: f64,
    /// Events handed to subscribers' queues per second.
    pub deliveries_per_second: f64,
    /// Median publish latency over the window, ms: from accepting a
    /// publication to having queued it for every local subscriber (what
    /// `hubbub_publish_latency_seconds` measures; not the time to the
    /// client's socket). Read from the histogram's buckets, so within one
    /// bucket's width; `None` when nothing was published in the window.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub latency_p99_ms: Option<f64>,
    /// CPU used by the process over the window, percent of one core (above
    /// 100 when it uses several); 0 where `/proc` is missing.
    pub cpu_percent: f64,
    /// CPU time used by the process since it started, seconds.
    pub cpu_seconds: f64,
    /// Resident memory of the process, bytes.
    pub memory_bytes: u64,
    /// Open file descriptors of the process (sockets included).
    pub open_fds: u64,
    /// Bytes waiting in all connections' outbound queues.
    pub queue_bytes: u64,
    /// Frames written to clients since start (closed connections included;
    /// never lower than in an earlier sample).
    pub messages_sent: u64,
    /// Data messages read from clients since start.
    pub messages_received: u64,
    /// Bytes written to clients since start.
    pub bytes_sent: u64,
    /// Bytes read from clients since start.
    pub bytes_received: u64,
    /// Publications accepted since start (for a rate over a longer window
    /// than one sample's).
    pub publications: u64,
    /// Events handed to subscribers' queues since start.
    pub deliveries: u64,
    /// Sum of the ages of the live connections, ms (for the average
    /// connection duration).
    pub live_connection_ms: u64,
}

impl Load {
    /// What a node reports before its first sample: zeros.
    pub(crate) fn placeholder(node_id: &str) -> Self {
        Load {
            node_id: node_id.to_owned(),
            at_ms: now_ms(),
            sample: 0,
            window_ms: 0,
            uptime_seconds: 0,
            connections: 0,
            closing_connections: 0,
            messages_in_per_second: 0.0,
            messages_out_per_second: 0.0,
            publications_per_second: 0.0,
            deliveries_per_second: 0.0,
            latency_p50_ms: None,
            latency_p99_ms: None,
            cpu_percent: 0.0,
            cpu_seconds: 0.0,
            memory_bytes: 0,
            open_fds: 0,
            queue_bytes: 0,
            messages_sent: 0,
            messages_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
            publications: 0,
            deliveries: 0,
            live_connection_ms: 0,
        }
    }
}

/// The running totals a rate is the difference of.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    sent: u64,
    received: u64,
    publications: u64,
    deliveries: u64,
    latency: HistogramCounts,
    cpu_seconds: Option<f64>,
}

/// Takes samples, keeping the previous one's totals.
pub(crate) struct Sampler {
    prev: Mark,
    last: Load,
}

impl Sampler {
    /// A sampler whose first window starts when the node did.
    pub fn new(shared: &Shared) -> Self {
        Sampler {
            prev: Mark {
                at: shared.started,
                sent: 0,
                received: 0,
                publications: 0,
                deliveries: 0,
                latency: HistogramCounts::default(),
                cpu_seconds: None,
            },
            last: Load::placeholder(&shared.node_id),
        }
    }

    /// One pass over the connections plus a look at `/proc/self`.
    pub fn sample(&mut self, shared: &Shared) -> Load {
        let m = &shared.metrics;
        // Closed totals first: a connection closing during the walk adds
        // its counters to them just after leaving the registry, so it is
        // missed for one sample, never counted twice (and the max with the
        // last sample hides the dip).
        let mut sent = m.closed_messages_sent.load(Relaxed);
        let mut received = m.closed_messages_received.load(Relaxed);
        let mut bytes_sent = m.closed_bytes_sent.load(Relaxed);
        let mut bytes_received = m.closed_bytes_received.load(Relaxed);
        let (mut live, mut closing, mut queue_bytes, mut live_ms) = (0, 0, 0u64, 0u64);
        let now_ms = now_ms();
        for c in shared.conns.all() {
            live += 1;
            if c.state() == ConnState::Closing {
                closing += 1;
            }
            sent += c.stats.messages_sent.load(Relaxed);
            received += c.stats.messages_received.load(Relaxed);
            bytes_sent += c.stats.bytes_sent.load(Relaxed);
            bytes_received += c.stats.bytes_received.load(Relaxed);
            queue_bytes += c.queued_bytes() as u64;
            live_ms += now_ms.saturating_sub(c.connected_at_ms);
        }
        let last = &self.last;
        let (sent, received) = (
            sent.max(last.messages_sent),
            received.max(last.messages_received),
        );
        let proc = ProcSample::read();
        let now = Instant::now();
        let mark = Mark {
            at: now,
            sent,
            received,
            publications: m.publications.load(Relaxed),
            deliveries: m.deliveries.load(Relaxed),
            latency: m.publish_latency.counts(),
            cpu_seconds: proc.cpu_seconds,
        };
        let prev = std::mem::replace(&mut self.prev, mark);
        let dt = now.saturating_duration_since(prev.at).as_secs_f64();
        let rate = |now: u64, then: u64| {
            if dt > 0.0 {
                now.saturating_sub(then) as f64 / dt
            } else {
                0.0
            }
        };
        let cpu_percent = match (mark.cpu_seconds, prev.cpu_seconds) {
            (Some(a), Some(b)) if dt > 0.0 => ((a - b) / dt * 100.0).max(0.0),
            _ => 0.0,
        };
        let load = Load {
            node_id: shared.node_id.clone(),
            at_ms: now_ms,
            sample: last.sample + 1,
            window_ms: (dt * 1000.0) as u64,
            uptime_seconds: shared.started.elapsed().as_secs(),
            connections: live,
            closing_connections: closing,
            messages_in_per_second: rate(received, prev.received),
            messages_out_per_second: rate(sent, prev.sent),
            publications_per_second: rate(mark.publications, prev.publications),
            deliveries_per_second: rate(mark.deliveries, prev.deliveries),
            latency_p50_ms: mark.latency.quantile_ms_since(&prev.latency, 0.5),
            latency_p99_ms: mark.latency.quantile_ms_since(&prev.latency, 0.99),
            cpu_percent,
            cpu_seconds: proc.cpu_seconds.unwrap_or(0.0),
            memory_bytes: proc.rss_bytes.unwrap_or(0),
            open_fds: proc.open_fds.unwrap_or(0),
            queue_bytes,
            messages_sent: sent,
            messages_received: received,
            bytes_sent: bytes_sent.max(last.bytes_sent),
            bytes_received: bytes_received.max(last.bytes_received),
            publications: mark.publications,
            deliveries: mark.deliveries,
            live_connection_ms: live_ms,
        };
        self.last = load.clone();
        load
    }
}

/// One sample from a fresh sampler (rates since the node started): lets a
/// measurement program time a pass. Not part of the API.
pub fn sample_once(shared: &Shared) -> Load {
    Sampler::new(shared).sample(shared)
}

/// The sampling task: a sample at once, then one per `period`, published
/// to the node's watch channel. Holds the node weakly and ends with it.
pub(crate) async fn run(node: Weak<Shared>, period: Duration) {
    let mut sampler = match node.upgrade() {
        Some(shared) => Sampler::new(&shared),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = node.upgrade() else { return };
        let load = Arc::new(sampler.sample(&shared));
        shared.load.send_replace(load);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::conn::handle::ConnHandle;
    use hubbub_protocol::Encoding;

    #[test]
    fn a_sample_sums_connections_and_never_goes_back() {
        let shared = Shared::new(Config::default());
        let mut s = Sampler::new(&shared);
        let h = Arc::new(ConnHandle::new(
            7,
            None,
            Encoding::Json,
            ([127, 0, 0, 1], 1).into(),
            now_ms(),
        ));
        h.stats.messages_sent.store(5, Relaxed);
        assert!(shared.conns.try_reserve(10));
        shared.conns.insert(h.clone());
        let a = s.sample(&shared);
        assert_eq!((a.sample, a.connections, a.messages_sent), (1, 1, 5));
        // The connection leaves before its totals reach the closed ones:
        // the total stays where it was.
        shared.conns.remove(&h);
        let b = s.sample(&shared);
        assert_eq!((b.sample, b.connections, b.messages_sent), (2, 0, 5));
    }
}
