//! Reconnect policy: exponential backoff with full jitter, and what each
//! close code means for the next attempt (PROTOCOL.md section 9).

use std::time::Duration;

use rand::Rng;

/// Backoff settings. The delay before attempt `n` (1-based) is drawn
/// uniformly from `0..=min(max, initial * 2^(n-1))` ("full jitter"), so a
/// fleet of clients cut off together does not return together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Upper bound of the first delay.
    pub initial: Duration,
    /// Cap on every delay's upper bound.
    pub max: Duration,
    /// Reconnect attempts in a row that may fail before the client gives
    /// up and closes; `None` retries for ever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The upper bound of the delay before attempt `attempt` (1-based).
    pub fn bound(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// A delay for attempt `attempt`, drawn with full jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let bound = self.bound(attempt).as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=bound))
    }
}

/// What to do after a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Do not reconnect (1000, 4003, codes meaning "fix yourself").
    Stop,
    /// Reconnect at once (4009: the hub shed a slow reader, recovery fills in).
    Now,
    /// Fetch a fresh token, then reconnect at once (4001).
    FreshToken,
    /// Reconnect after the backoff delay.
    Backoff,
    /// Reconnect after at least the rate-limit pause (4029).
    RateLimited,
}

/// The close-code table. `reconnect` is the `disconnect` message's flag
/// when one came, which decides for 4100 and for codes outside the table.
pub fn after_close(code: Option<u16>, reconnect: Option<bool>) -> Next {
    match code {
        Some(1000) | Some(4003) | Some(1002) | Some(1007) | Some(1009) => Next::Stop,
        Some(4001) => Next::FreshToken,
        Some(4009) => Next::Now,
        Some(4029) => Next::RateLimited,
        _ if reconnect == Some(false) => Next::Stop,
        _ => Next::Backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            max_attempts: None,
        };
        assert_eq!(b.bound(1), Duration::from_millis(100));
        assert_eq!(b.bound(2), Duration::from_millis(200));
        assert_eq!(b.bound(4), Duration::from_millis(800));
        assert_eq!(b.bound(5), Duration::from_millis(1000));
        assert_eq!(b.bound(200), Duration::from_millis(1000));
        for n in 1..10 {
            assert!(b.delay(n) <= b.bound(n));
        }
    }

    #[test]
    fn close_code_table() {
        assert_eq!(after_close(Some(1000), None), Next::Stop);
        assert_eq!(after_close(Some(4003), Some(false)), Next::Stop);
        assert_eq!(after_close(Some(4001), Some(true)), Next::FreshToken);
        assert_eq!(after_close(Some(4009), Some(true)), Next::Now);
        assert_eq!(after_close(Some(4029), Some(true)), Next::RateLimited);
        assert_eq!(after_close(Some(4100), Some(false)), Next::Stop);
        assert_eq!(after_close(Some(4100), Some(true)), Next::Backoff);
        assert_eq!(after_close(Some(1001), None), Next::Backoff);
        assert_eq!(after_close(None, None), Next::Backoff);
    }
}
