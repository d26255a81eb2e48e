//! The per-connection token bucket for inbound messages (PROTOCOL.md section 5).

use tokio::time::Instant;

use crate::config::ConnectionConfig;

/// What to do with one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Process it.
    Allow,
    /// Drop it and answer `error rate_limited`.
    Drop,
    /// Drop it and close with 4029: too many drops within the window.
    Close,
}

/// A token bucket: `per_second` tokens refilled, at most `burst` held.
/// `f32` keeps it small: one lives in every connection.
pub struct Bucket {
    tokens: f32,
    last: Instant,
}

impl Bucket {
    /// A full bucket of `burst` tokens.
    pub fn full(burst: f64, now: Instant) -> Self {
        Bucket {
            tokens: burst as f32,
            last: now,
        }
    }

    /// Refills for the time since the last call, then takes one token;
    /// false when none is left.
    pub fn take(&mut self, per_second: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * per_second as f32).min(burst as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The command budget: a token bucket plus a count of recent drops.
pub struct RateLimiter {
    bucket: Bucket,
    drops: u32,
    window_start: Instant,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(cfg: &ConnectionConfig, now: Instant) -> Self {
        RateLimiter {
            bucket: Bucket::full(cfg.rate_limit_burst, now),
            drops: 0,
            window_start: now,
        }
    }

    /// Takes a token for one message, or counts a drop.
    pub fn check(&mut self, cfg: &ConnectionConfig, now: Instant) -> Verdict {
        if self
            .bucket
            .take(cfg.rate_limit_per_second, cfg.rate_limit_burst, now)
        {
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window_start).as_millis() as u64
            > cfg.rate_limit_window_ms
        {
            self.window_start = now;
            self.drops = 0;
        }
        self.drops += 1;
        if self.drops >= cfg.rate_limit_max_drops {
            Verdict::Close
        } else {
            Verdict::Drop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_drops_then_close() {
        let cfg = ConnectionConfig {
            rate_limit_per_second: 10.0,
            rate_limit_burst: 5.0,
            rate_limit_max_drops: 3,
            ..ConnectionConfig::default()
        };
        let t0 = Instant::now();
        let mut r = RateLimiter::new(&cfg, t0);
        for _ in 0..5 {
            assert_eq!(r.check(&cfg, t0), Verdict::Allow);
        }
        assert_eq!(r.check(&cfg, t0), Verdict::Drop);
        // 100 ms refills one token.
        assert_eq!(
            r.check(&cfg, t0 + Duration::from_millis(100)),
            Verdict::Allow
        );
        assert_eq!(
            r.check(&cfg, t0 + Duration::from_millis(100)),
            Verdict::Drop
        );
        assert_eq!(
            r.check(&cfg, t0 + Duration::from_millis(100)),
            Verdict::Close
        );
    }
}
