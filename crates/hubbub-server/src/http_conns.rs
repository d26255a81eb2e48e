//! The HTTP connections: sockets whose first request head was not a
//! WebSocket upgrade, serving the HTTP API. They count against
//! `server.max_http_connections`, apart from the WebSocket limit, so idle
//! HTTP clients can never use up the descriptors WebSocket clients need.
//!
//! Overflow policy `evict_oldest_idle`: a new HTTP connection over the
//! limit takes the place of the oldest one that is idle (no request in
//! flight: kept alive between requests, or sending a later head), which is
//! closed without an answer. When every place has a request in flight, the
//! new request is answered 503 `server_full` with `Retry-After` and the
//! socket closed. Sockets still sending their first head are bounded by
//! `server.handshake_timeout_ms` instead: counting them here would let a
//! burst of WebSocket handshakes evict one another.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::state::Shared;

/// One connection's place: whether a request is in flight, and how the
/// registry tells the connection's task to close.
struct Slot {
    /// Requests being served (0: idle, may be evicted).
    busy: AtomicU32,
    evict: Notify,
}

/// The registry of HTTP connections, oldest first.
pub struct HttpConns {
    max: usize,
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Slot>>>,
}

impl HttpConns {
    /// An empty registry holding at most `max` connections.
    pub fn new(max: usize) -> Self {
        HttpConns {
            max: max.max(1),
            next: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
        }
    }

    /// HTTP connections holding a place now.
    pub fn open(&self) -> usize {
        self.open.lock().len()
    }

    /// HTTP connections with a request in flight now.
    pub fn busy(&self) -> usize {
        self.open
            .lock()
            .values()
            .filter(|s| s.busy.load(Relaxed) > 0)
            .count()
    }

    /// Takes a place, evicting the oldest idle connection when all are
    /// taken; `None` when every place has a request in flight.
    pub(crate) fn admit(shared: &Arc<Shared>) -> Option<HttpPlace> {
        let this = &shared.http;
        let slot = Arc::new(Slot {
            busy: AtomicU32::new(0),
            evict: Notify::new(),
        });
        let id = this.next.fetch_add(1, Relaxed);
        let mut open = this.open.lock();
        if open.len() >= this.max {
            let victim = open
                .iter()
                .find(|(_, s)| s.busy.load(Relaxed) == 0)
                .map(|(k, _)| *k)?;
            if let Some(v) = open.remove(&victim) {
                // A stored permit: the task sees it even if not waiting yet.
                v.evict.notify_one();
                Metrics::inc(&shared.metrics.http_connections_evicted);
            }
        }
        open.insert(id, slot.clone());
        drop(open);
        Some(HttpPlace {
            shared: shared.clone(),
            id,
            slot,
        })
    }
}

/// A connection's place in [`HttpConns`], given back on drop.
pub(crate) struct HttpPlace {
    shared: Arc<Shared>,
    id: u64,
    slot: Arc<Slot>,
}

impl HttpPlace {
    /// Completes when the registry took the place away for a newer connection.
    pub(crate) async fn evicted(&self) {
        self.slot.evict.notified().await
    }

    /// What the HTTP service marks its requests in flight with (the
    /// service must be `'static`, so it cannot borrow the place).
    pub(crate) fn requests(&self) -> Requests {
        Requests(self.slot.clone())
    }
}

impl Drop for HttpPlace {
    fn drop(&mut self) {
        let mut open = self.shared.http.open.lock();
        if open
            .get(&self.id)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            open.remove(&self.id);
        }
    }
}

/// Makes [`BusyGuard`]s for one place from inside the HTTP service.
#[derive(Clone)]
pub(crate) struct Requests(Arc<Slot>);

impl Requests {
    /// Marks a request in flight until the guard is dropped: the socket
    /// cannot be evicted meanwhile.
    pub(crate) fn start(&self) -> BusyGuard {
        self.0.busy.fetch_add(1, Relaxed);
        BusyGuard(self.0.clone())
    }
}

/// A request in flight on a place.
pub(crate) struct BusyGuard(Arc<Slot>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_oldest_idle_place_is_taken_and_busy_ones_are_kept() {
        let mut config = crate::Config::default();
        config.server.max_http_connections = 2;
        let shared = Shared::new(config);
        let a = HttpConns::admit(&shared).unwrap();
        let b = HttpConns::admit(&shared).unwrap();
        let busy_a = a.requests().start();
        // `a` is busy: `b` is the oldest idle one.
        let c = HttpConns::admit(&shared).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), b.evicted())
            .await
            .expect("b evicted");
        assert_eq!(shared.http.open(), 2);
        let busy_c = c.requests().start();
        assert!(HttpConns::admit(&shared).is_none(), "all busy");
        drop(busy_a);
        drop(busy_c);
        drop(b);
        assert_eq!(shared.http.open(), 2);
        drop(a);
        drop(c);
        assert_eq!(shared.http.open(), 0);
    }
}
