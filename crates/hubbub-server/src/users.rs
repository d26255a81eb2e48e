//! Offline delivery per user (PROTOCOL.md section 4, last point).
//!
//! `POST /api/users/{id}/send` to a user with no live connection queues the
//! event here (bounded per user, oldest dropped first, each with a TTL); the
//! user's next connection gets the queue, in order, right after
//! `connected`. The check for live connections and the enqueue happen under
//! the same lock as a new connection's registration and drain, so an event
//! is never queued just after the user's connection took the queue.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub use crate::engine::SendOutcome;
use crate::hub::Publication;

const SHARDS: usize = 16;

type Queue = VecDeque<(Arc<Publication>, Instant)>;
type Shard = Mutex<HashMap<Box<str>, Queue>>;

/// Per-user queues of events waiting for a connection.
pub struct UserQueues {
    shards: Box<[Shard]>,
    capacity: usize,
    ttl: Duration,
    queued: AtomicUsize,
    dropped: AtomicU64,
}

impl UserQueues {
    /// Queues of at most `capacity` events per user, each kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        UserQueues {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            capacity,
            ttl,
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    fn shard(&self, user: &str) -> &Shard {
        let h = user
            .bytes()
            .fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.shards[h % SHARDS]
    }

    /// Hands `publication` to the user's live connections through
    /// `deliver` (which answers `None` when there is none), or queues it.
    pub fn send(
        &self,
        user: &str,
        publication: Arc<Publication>,
        deliver: impl FnOnce(&Arc<Publication>) -> Option<usize>,
    ) -> SendOutcome {
        let mut shard = self.shard(user).lock();
        if let Some(connections) = deliver(&publication) {
            return SendOutcome {
                connections,
                queued: false,
            };
        }
        if self.capacity == 0 {
            return SendOutcome {
                connections: 0,
                queued: false,
            };
        }
        let now = Instant::now();
        let q = shard.entry(Box::from(user)).or_default();
        let expired = expire(q, now);
        self.queued.fetch_sub(expired, Relaxed);
        self.dropped.fetch_add(expired as u64, Relaxed);
        if q.len() >= self.capacity {
            q.pop_front();
            self.queued.fetch_sub(1, Relaxed);
            self.dropped.fetch_add(1, Relaxed);
        }
        q.push_back((publication, now + self.ttl));
        self.queued.fetch_add(1, Relaxed);
        SendOutcome {
            connections: 0,
            queued: true,
        }
    }

    /// Registers a user's new connection (through `register`) and returns
    /// what was queued for the user, oldest first, to be sent right after
    /// `connected`.
    pub fn attach(&self, user: &str, register: &mut dyn FnMut()) -> Vec<Arc<Publication>> {
        let mut shard = self.shard(user).lock();
        register();
        let Some(mut q) = shard.remove(user) else {
            return Vec::new();
        };
        let expired = expire(&mut q, Instant::now());
        self.dropped.fetch_add(expired as u64, Relaxed);
        self.queued.fetch_sub(expired + q.len(), Relaxed);
        q.into_iter().map(|(p, _)| p).collect()
    }

    /// Events waiting in all queues.
    pub fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// Events dropped by overflow or TTL since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Drops expired events and empty queues (housekeeping).
    pub fn sweep(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            shard.lock().retain(|_, q| {
                let n = expire(q, now);
                self.queued.fetch_sub(n, Relaxed);
                self.dropped.fetch_add(n as u64, Relaxed);
                !q.is_empty()
            });
        }
    }
}

fn expire(q: &mut Queue, now: Instant) -> usize {
    let before = q.len();
    while q.front().is_some_and(|(_, exp)| *exp <= now) {
        q.pop_front();
    }
    before - q.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_protocol::JsonData;

    fn event(n: u64) -> Arc<Publication> {
        Publication::make(
            "user:u",
            "e",
            JsonData::from_json(&n.to_string()).unwrap(),
            format!("m{n}"),
            None,
            None,
            None,
            0,
        )
    }

    fn data(p: &[Arc<Publication>]) -> Vec<String> {
        p.iter().map(|p| p.event.data.get().to_owned()).collect()
    }

    #[test]
    fn queues_in_order_and_drops_the_oldest_on_overflow() {
        let q = UserQueues::new(3, Duration::from_secs(60));
        for n in 1..=5 {
            let out = q.send("u", event(n), |_| None);
            assert_eq!(
                out,
                SendOutcome {
                    connections: 0,
                    queued: true
                }
            );
        }
        assert_eq!(q.queued(), 3);
        assert_eq!(q.dropped(), 2);
        let got = q.attach("u", &mut || {});
        assert_eq!(data(&got), ["3", "4", "5"]);
        assert_eq!(q.queued(), 0);
        assert!(q.attach("u", &mut || {}).is_empty());
    }

    #[test]
    fn ttl_drops_stale_events() {
        let q = UserQueues::new(10, Duration::from_millis(20));
        q.send("u", event(1), |_| None);
        std::thread::sleep(Duration::from_millis(40));
        q.send("u", event(2), |_| None);
        assert_eq!(data(&q.attach("u", &mut || {})), ["2"]);
        q.send("u", event(3), |_| None);
        std::thread::sleep(Duration::from_millis(40));
        q.sweep();
        assert_eq!(q.queued(), 0);
        assert_eq!(q.dropped(), 2);
    }

    #[test]
    fn live_connections_get_it_directly() {
        let q = UserQueues::new(10, Duration::from_secs(60));
        let out = q.send("u", event(1), |_| Some(1));
        assert_eq!(
            out,
            SendOutcome {
                connections: 1,
                queued: false
            }
        );
        assert_eq!(q.queued(), 0);
    }
}
