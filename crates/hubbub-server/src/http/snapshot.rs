//! One consistent-enough look at the node for `/api/stats` and `/metrics`:
//! traffic totals (closed connections' counters plus live ones), states,
//! and the message rate.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::conn::handle::ConnState;
use crate::state::Shared;
use crate::util::now_ms;

use super::ApiState;

/// Traffic and connection figures at one moment.
pub(crate) struct Snapshot {
    pub messages_sent: u64,
    pub messages_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Live connections (registered; mid-handshake slots not included).
    pub live: usize,
    pub open: usize,
    pub closing: usize,
    pub authenticated: usize,
    /// Bytes waiting in all outboxes.
    pub queue_bytes: u64,
    /// Sum of the ages of live connections, ms.
    pub live_ms: u64,
}

impl Snapshot {
    /// Sums closed-connection counters and every live handle's.
    ///
    /// A connection adds its counters to the closed totals just after it
    /// leaves the registry, so the closed totals are read first: a
    /// connection closing in between is missed for one look (never counted
    /// twice), and [`HighWater`] hides the dip.
    pub fn take(api: &ApiState) -> Snapshot {
        let shared: &Shared = &api.shared;
        let m = &shared.metrics;
        let mut s = Snapshot {
            messages_sent: m.closed_messages_sent.load(Relaxed),
            messages_received: m.closed_messages_received.load(Relaxed),
            bytes_sent: m.closed_bytes_sent.load(Relaxed),
            bytes_received: m.closed_bytes_received.load(Relaxed),
            live: 0,
            open: 0,
            closing: 0,
            authenticated: 0,
            queue_bytes: 0,
            live_ms: 0,
        };
        let now = now_ms();
        for c in shared.conns.all() {
            s.live += 1;
            match c.state() {
                ConnState::Open => s.open += 1,
                ConnState::Closing => s.closing += 1,
            }
            if c.user_id.is_some() {
                s.authenticated += 1;
            }
            s.messages_sent += c.stats.messages_sent.load(Relaxed);
            s.messages_received += c.stats.messages_received.load(Relaxed);
            s.bytes_sent += c.stats.bytes_sent.load(Relaxed);
            s.bytes_received += c.stats.bytes_received.load(Relaxed);
            s.queue_bytes += c.queued_bytes() as u64;
            s.live_ms += now.saturating_sub(c.connected_at_ms);
        }
        let hw = &api.high_water;
        s.messages_sent = HighWater::raise(&hw.messages_sent, s.messages_sent);
        s.messages_received = HighWater::raise(&hw.messages_received, s.messages_received);
        s.bytes_sent = HighWater::raise(&hw.bytes_sent, s.bytes_sent);
        s.bytes_received = HighWater::raise(&hw.bytes_received, s.bytes_received);
        s
    }

    /// Messages in both directions, for the rate.
    pub fn messages(&self) -> u64 {
        self.messages_sent + self.messages_received
    }
}

/// The highest totals reported so far, so a Prometheus counter never goes
/// backwards (which would read as a process restart).
#[derive(Default)]
pub(crate) struct HighWater {
    messages_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

impl HighWater {
    fn raise(mark: &AtomicU64, value: u64) -> u64 {
        mark.fetch_max(value, Relaxed).max(value)
    }
}

/// Shortest window a rate is computed over, so two quick calls do not
/// divide a handful of messages by a millisecond.
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// Two samples of a running total: the rate is taken since the older one,
/// which is the previous call at least [`MIN_WINDOW`] ago (or the start).
pub(crate) struct RateSampler {
    older: (Instant, u64),
    newer: (Instant, u64),
}

impl RateSampler {
    /// A sampler whose first window starts at `started` with a total of 0.
    pub fn new(started: Instant) -> Self {
        RateSampler {
            older: (started, 0),
            newer: (started, 0),
        }
    }

    /// Records `total` at `now` and returns the rate per second.
    pub fn rate(&mut self, now: Instant, total: u64) -> f64 {
        if now.saturating_duration_since(self.newer.0) >= MIN_WINDOW {
            self.older = self.newer;
            self.newer = (now, total);
        }
        let dt = now.saturating_duration_since(self.older.0).as_secs_f64();
        if dt <= 0.0 {
            return 0.0;
        }
        total.saturating_sub(self.older.1) as f64 / dt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_since_previous_call_at_least_a_second_ago() {
        let t0 = Instant::now();
        let mut s = RateSampler::new(t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        // First call: since start.
        assert_eq!(s.rate(at(10_000), 100), 10.0);
        // Next call 10 s later: since the previous call.
        assert_eq!(s.rate(at(20_000), 300), 20.0);
        // A call right after: still over a window of at least a second.
        let r = s.rate(at(20_010), 301);
        assert!((r - 201.0 / 10.01).abs() < 1e-9, "{r}");
        // Right at start: no division by zero.
        let mut s = RateSampler::new(t0);
        assert_eq!(s.rate(t0, 5), 0.0);
    }

    #[test]
    fn high_water_never_goes_down() {
        let m = AtomicU64::new(0);
        assert_eq!(HighWater::raise(&m, 5), 5);
        assert_eq!(HighWater::raise(&m, 3), 5);
        assert_eq!(HighWater::raise(&m, 9), 9);
    }
}
