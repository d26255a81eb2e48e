//! Counters the hub keeps about itself, rendered as Prometheus text.
//!
//! Per-delivery numbers (messages and bytes sent) live on each connection's
//! own handle and are summed at scrape time, so the fan-out path touches no
//! shared counter; what is counted here happens once per connection, per
//! publish or per error.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Process-wide counters. Each field says what bumps it.
#[derive(Default)]
pub struct Metrics {
    /// WebSocket connections accepted since start.
    pub connections_accepted: AtomicU64,
    /// Handshakes refused (bad request, limits, timeouts).
    pub handshakes_refused: AtomicU64,
    /// Handshakes refused because the connection limit was reached.
    pub connections_refused_full: AtomicU64,
    /// Connections closed with 4009 because their outbound queue overflowed.
    pub slow_consumer_disconnects: AtomicU64,
    /// In-process subscribers whose queue overflowed (they catch up from
    /// history on their own).
    pub in_process_catch_ups: AtomicU64,
    /// Inbound messages dropped by the rate limiter.
    pub rate_limited_messages: AtomicU64,
    /// Connections closed with 4029.
    pub rate_limit_disconnects: AtomicU64,
    /// Connections closed with 4010.
    pub ping_timeouts: AtomicU64,
    /// Connections that ended with an I/O or protocol error.
    pub connection_errors: AtomicU64,
    /// `error` messages sent to clients.
    pub errors_sent: AtomicU64,
    /// Publications accepted (WebSocket and HTTP).
    pub publications: AtomicU64,
    /// Deliveries handed to connection queues.
    pub deliveries: AtomicU64,
    /// Engine operations that failed (publish, user send, subscribe,
    /// history or presence), each answered `unavailable`.
    pub engine_errors: AtomicU64,
    /// Sum of lifetimes of closed connections, in milliseconds.
    pub closed_connection_ms: AtomicU64,
    /// Connections closed since start.
    pub connections_closed: AtomicU64,
    /// Messages sent by connections that have closed.
    pub closed_messages_sent: AtomicU64,
    /// Messages received by connections that have closed.
    pub closed_messages_received: AtomicU64,
    /// Bytes sent by connections that have closed.
    pub closed_bytes_sent: AtomicU64,
    /// Bytes received by connections that have closed.
    pub closed_bytes_received: AtomicU64,
    /// Time from accepting a publication to having queued it for every local subscriber.
    pub publish_latency: Histogram,
    /// `rpc` calls answered (a result or an error), however answered.
    pub rpc_calls: AtomicU64,
    /// `rpc` calls answered with an error.
    pub rpc_failed: AtomicU64,
    /// `rpc` calls refused because the connection had `rpc.max_in_flight`.
    pub rpc_refused: AtomicU64,
    /// Handlers that did not answer within their timeout.
    pub rpc_timeouts: AtomicU64,
    /// Handlers that panicked.
    pub rpc_panics: AtomicU64,
    /// Calls an HTTP backend did not answer (down, slow, another status,
    /// an answer that is not `{data}` or `{error}`).
    pub rpc_backend_failures: AtomicU64,
    /// Time from a call's start to its answer being queued.
    pub rpc_latency: Histogram,
    /// The decision hooks, by kind (connect, subscribe, publish).
    pub hooks: [HookMetrics; 3],
    /// Peers dropped for not finishing their request head in time.
    pub handshake_timeouts: AtomicU64,
    /// Handshakes refused with 401 (missing, malformed, expired or wrongly
    /// signed token; `?user_id=` where not allowed).
    pub auth_failures: AtomicU64,
    /// Connections closed with 4001 because their token expired.
    pub auth_expired_disconnects: AtomicU64,
    /// Tokens refreshed on live connections with `auth`.
    pub auth_refreshes: AtomicU64,
    /// Commands refused with `forbidden` (subscribe, publish, history, auth).
    pub forbidden: AtomicU64,
    /// Handshakes refused with 403 for a disallowed `Origin`.
    pub origin_refused: AtomicU64,
    /// Handshakes refused with 429 by the per-address connection rate.
    pub ip_rate_limited: AtomicU64,
    /// Handshakes refused with 429 by the per-user connection rate.
    pub user_rate_limited: AtomicU64,
    /// Handshakes refused with 503 by the per-user connection limit.
    pub user_connection_limit: AtomicU64,
    /// Subscriptions refused with `limit_exceeded`.
    pub subscription_limit: AtomicU64,
    /// HTTP API calls refused with 401 or 403.
    pub api_refused: AtomicU64,
    /// Idle HTTP connections closed to make room for a new one
    /// (`server.max_http_connections`, policy `evict_oldest_idle`).
    pub http_connections_evicted: AtomicU64,
    /// HTTP requests answered 503 because every HTTP place had a request
    /// in flight.
    pub http_connections_refused: AtomicU64,
    /// HTTP connections closed for idleness: no complete request head within
    /// `server.http_idle_timeout_ms` after the previous response.
    pub http_idle_closed: AtomicU64,
    /// HTTP requests answered 408 because the body did not arrive within
    /// `server.http_body_timeout_ms`.
    pub http_body_timeouts: AtomicU64,
    /// Failed `accept` calls (out of descriptors, mostly); the accept loop
    /// backs off after each.
    pub accept_errors: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

/// One decision hook's counters (docs/hooks.md).
#[derive(Default)]
pub struct HookMetrics {
    /// Decisions asked for, however they ended.
    pub calls: AtomicU64,
    /// Decisions that refused (a deny answered by the hook; failures are
    /// counted in `failures` alone, whatever `on_failure` made of them).
    pub denials: AtomicU64,
    /// Failures by reason, indexed as [`HOOK_FAILURES`].
    pub failures: [AtomicU64; HOOK_FAILURES.len()],
    /// Time the hook took to decide, failures included.
    pub latency: Histogram,
}

/// Why a hook failed, as the `reason` label of
/// `hubbub_hook_failures_total`: no answer within the timeout; the backend
/// could not be reached or answered another status than 200; the answer
/// was not a decision; a Rust hook panicked.
pub const HOOK_FAILURES: [&str; 4] = ["timeout", "unavailable", "bad_answer", "panic"];

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 2_000_000,
];

/// A fixed-bucket histogram of durations with lock-free updates.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// Mean of everything recorded, in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        let n = self.count.load(Relaxed);
        if n == 0 {
            0.0
        } else {
            self.sum_us.load(Relaxed) as f64 / n as f64 / 1000.0
        }
    }

    /// The bucket counts and the total count now, for a quantile over an
    /// interval (the difference of two readings).
    pub(crate) fn counts(&self) -> HistogramCounts {
        HistogramCounts {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            count: self.count.load(Relaxed),
        }
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.samples(out, name, "");
    }

    /// The samples of one series; `labels` (`k="v",` each, ending in a
    /// comma) go before `le`.
    fn samples(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let labels = labels.trim_end_matches(',');
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// One reading of a [`Histogram`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HistogramCounts {
    buckets: [u64; BUCKETS_US.len()],
    count: u64,
}

impl HistogramCounts {
    /// The `q` quantile (0..=1) of what was recorded between `earlier` and
    /// `self`, in milliseconds, interpolated linearly inside its bucket (so
    /// within one bucket's width of the truth); `None` when nothing was.
    /// Durations beyond the last bucket read as its bound.
    pub fn quantile_ms_since(&self, earlier: &HistogramCounts, q: f64) -> Option<f64> {
        let total = self.count.saturating_sub(earlier.count);
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0.0;
        let mut lower_us = 0.0;
        for (i, bound) in BUCKETS_US.iter().enumerate() {
            let n = self.buckets[i].saturating_sub(earlier.buckets[i]) as f64;
            let upper_us = *bound as f64;
            if n > 0.0 && below + n >= rank {
                let within = ((rank - below) / n).clamp(0.0, 1.0);
                return Some((lower_us + within * (upper_us - lower_us)) / 1000.0);
            }
            below += n;
            lower_us = upper_us;
        }
        Some(lower_us / 1000.0)
    }
}

/// Builds the Prometheus text exposition, one metric family at a time.
pub struct Exposition(String);

impl Exposition {
    /// An empty document.
    pub fn new() -> Self {
        Exposition(String::with_capacity(4096))
    }

    /// A counter family with one sample.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }

    /// A counter family with one sample that is not a whole number (CPU
    /// seconds).
    pub fn fractional_counter(&mut self, name: &str, help: &str, value: f64) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }

    /// A gauge family with one sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }

    /// A histogram family.
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        h.render(&mut self.0, name, help);
    }

    /// A counter family with one sample per label set (`k="v"`, several
    /// joined by commas).
    pub fn labeled_counters(&mut self, name: &str, help: &str, samples: &[(String, u64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} counter");
        for (labels, value) in samples {
            let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
        }
    }

    /// A histogram family with one series per label set.
    pub fn labeled_histograms(&mut self, name: &str, help: &str, series: &[(String, &Histogram)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, h) in series {
            h.samples(&mut self.0, name, &format!("{labels},"));
        }
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.0
    }
}

impl Default for Exposition {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_over_an_interval() {
        let h = Histogram::default();
        h.observe(Duration::from_secs(1));
        let before = h.counts();
        assert_eq!(h.counts().quantile_ms_since(&before, 0.5), None);
        for _ in 0..98 {
            h.observe(Duration::from_micros(20)); // bucket 10..25 us
        }
        h.observe(Duration::from_micros(900)); // bucket 500..1000 us
        h.observe(Duration::from_secs(10)); // beyond the last bucket
        let now = h.counts();
        let p50 = now.quantile_ms_since(&before, 0.5).unwrap();
        assert!((0.010..=0.025).contains(&p50), "{p50}");
        let p99 = now.quantile_ms_since(&before, 0.99).unwrap();
        assert!((0.5..=1.0).contains(&p99), "{p99}");
        assert_eq!(now.quantile_ms_since(&before, 1.0), Some(2000.0));
    }

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(5));
        h.observe(Duration::from_micros(700));
        h.observe(Duration::from_secs(10));
        let mut e = Exposition::new();
        e.histogram("x", "y", &h);
        let t = e.finish();
        assert!(t.contains("x_bucket{le=\"0.00001\"} 1"), "{t}");
        assert!(t.contains("x_bucket{le=\"0.001\"} 2"), "{t}");
        assert!(t.contains("x_bucket{le=\"+Inf\"} 3"), "{t}");
        assert!(t.contains("x_count 3"));
        let mut e = Exposition::new();
        e.labeled_histograms("y", "z", &[("k=\"a\"".into(), &h)]);
        let t = e.finish();
        assert!(t.contains("y_bucket{k=\"a\",le=\"+Inf\"} 3"), "{t}");
        assert!(t.contains("y_count{k=\"a\"} 3"), "{t}");
    }
}
