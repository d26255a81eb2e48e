//! Abuse limits at the handshake: new connections per client address and
//! per user per minute, and the Origin allow-list.
//!
//! Each rate is a token bucket per key (a full minute's allowance as the
//! burst, refilled evenly), kept in a sharded map of bounded size. A
//! bucket that has refilled completely is the same as no bucket, so
//! housekeeping drops those; the map only holds keys active within about
//! the last minute.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::Mutex;

use crate::config::Config;
use crate::net::IpNet;

const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets of "at most N per minute", one per key, in a map of
/// bounded size.
pub struct RateTable<K> {
    shards: Box<[Mutex<HashMap<K, Bucket>>]>,
    hasher: RandomState,
    per_minute: u32,
    shard_capacity: usize,
    overflowed: AtomicU64,
}

impl<K: Hash + Eq> RateTable<K> {
    /// At most `per_minute` per key (0: no limit), tracking at most
    /// about `capacity` keys at once.
    pub fn new(per_minute: u32, capacity: usize) -> Self {
        RateTable {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_minute,
            shard_capacity: capacity.div_ceil(SHARDS).max(1),
            overflowed: AtomicU64::new(0),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    fn burst(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn refill(&self, b: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second()).min(self.burst());
        b.at = now;
    }

    /// Takes one from `key`'s allowance. `Err(seconds)`: over the limit,
    /// try again after that many seconds.
    pub fn check(&self, key: K, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let shard = &self.shards[self.hasher.hash_one(&key) as usize % SHARDS];
        let mut map = shard.lock();
        if let Some(b) = map.get_mut(&key) {
            self.refill(b, now);
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                return Ok(());
            }
            let wait = (1.0 - b.tokens) / self.per_second();
            return Err((wait.ceil() as u64).max(1));
        }
        if map.len() >= self.shard_capacity {
            map.retain(|_, b| {
                self.refill(b, now);
                b.tokens < self.burst()
            });
            if map.len() >= self.shard_capacity {
                // Failing open: the global connection limit still holds,
                // and refusing everyone new would be the attacker's win.
                self.overflowed.fetch_add(1, Relaxed);
                return Ok(());
            }
        }
        map.insert(
            key,
            Bucket {
                tokens: self.burst() - 1.0,
                at: now,
            },
        );
        Ok(())
    }

    /// Drops buckets that have refilled completely (housekeeping).
    pub fn sweep(&self, now: Instant) {
        for shard in self.shards.iter() {
            shard.lock().retain(|_, b| {
                self.refill(b, now);
                b.tokens < self.burst()
            });
        }
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How often a new key passed unchecked because the table was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Relaxed)
    }
}

/// The handshake limits of one node, built once from the configuration.
pub struct Limits {
    /// New connections per client address (IPv6 per /64).
    pub per_ip: RateTable<IpAddr>,
    /// New connections per user.
    pub per_user: RateTable<Box<str>>,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<IpNet>,
    /// `limits.exempt_loopback`.
    exempt_loopback: bool,
    /// `server.allowed_origins`, normalized; empty allows all.
    origins: Vec<String>,
}

impl Limits {
    /// The limits `config` asks for.
    pub fn new(config: &Config) -> Self {
        let l = &config.limits;
        Limits {
            per_ip: RateTable::new(l.connections_per_ip_per_minute, l.rate_table_size),
            per_user: RateTable::new(l.connections_per_user_per_minute, l.rate_table_size),
            exempt_loopback: l.exempt_loopback,
            trusted_proxies: config
                .server
                .trusted_proxies
                .iter()
                .filter_map(|p| IpNet::parse(p))
                .collect(),
            origins: config
                .server
                .allowed_origins
                .iter()
                .map(|o| normalize_origin(o))
                .collect(),
        }
    }

    /// Takes one new connection from `client`'s allowance (see
    /// [`crate::net::rate_key`]); loopback clients pass when exempt.
    /// `Err(seconds)`: over the limit.
    pub fn check_address(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if self.exempt_loopback && client.to_canonical().is_loopback() {
            return Ok(());
        }
        self.per_ip.check(crate::net::rate_key(client), now)
    }

    /// Whether a browser at `origin` may connect.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.origins.is_empty() {
            return true;
        }
        let o = normalize_origin(origin);
        self.origins.iter().any(|a| *a == o || a == "*")
    }

    /// Housekeeping: forget addresses and users whose allowance is whole again.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.per_ip.sweep(now);
        self.per_user.sweep(now);
    }
}

/// Origins compare case-insensitively, without a trailing slash.
fn normalize_origin(o: &str) -> String {
    o.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn allows_a_minutes_worth_then_refills_evenly() {
        let t = RateTable::new(60, 100);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(t.check("a", t0).is_ok());
        }
        assert_eq!(t.check("a", t0), Err(1));
        // Another key is not affected.
        assert!(t.check("b", t0).is_ok());
        // One per second comes back.
        assert!(t.check("a", t0 + Duration::from_millis(1100)).is_ok());
        assert!(t.check("a", t0 + Duration::from_millis(1200)).is_err());
    }

    #[test]
    fn retry_after_is_the_wait_for_one() {
        let t = RateTable::new(10, 100);
        let t0 = Instant::now();
        for _ in 0..10 {
            t.check(1u32, t0).unwrap();
        }
        assert_eq!(t.check(1u32, t0), Err(6));
    }

    #[test]
    fn zero_means_unlimited() {
        let t = RateTable::new(0, 1);
        let t0 = Instant::now();
        for i in 0..1000 {
            assert!(t.check(i, t0).is_ok());
        }
        assert!(t.is_empty());
    }

    #[test]
    fn bounded_and_swept() {
        let t = RateTable::new(10, 32);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            assert!(t.check(i, t0).is_ok());
        }
        assert!(t.len() <= 32 + SHARDS, "{}", t.len());
        assert!(t.overflowed() > 0);
        // A minute later every bucket is full again and goes.
        t.sweep(t0 + Duration::from_secs(61));
        assert!(t.is_empty());
        // Room again: new keys are tracked.
        for _ in 0..10 {
            t.check(5000, t0 + Duration::from_secs(62)).unwrap();
        }
        assert!(t.check(5000, t0 + Duration::from_secs(62)).is_err());
    }

    #[test]
    fn origins() {
        let mut c = Config::default();
        let open = Limits::new(&c);
        assert!(open.origin_allowed("https://evil.example"));
        c.server.allowed_origins = vec!["https://App.example.com/".into()];
        let l = Limits::new(&c);
        assert!(l.origin_allowed("https://app.example.com"));
        assert!(l.origin_allowed("HTTPS://APP.EXAMPLE.COM"));
        assert!(!l.origin_allowed("https://app.example.com.evil.example"));
        assert!(!l.origin_allowed("http://app.example.com"));
        assert!(!l.origin_allowed("null"));
    }
}
