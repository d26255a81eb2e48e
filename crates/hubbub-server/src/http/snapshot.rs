//! One look at the node for `/api/stats` and `/metrics`, without walking
//! the connections: counts kept by the registry are exact and current; the
//! rest (traffic totals, queued bytes, closing connections, rates) comes
//! from the latest load sample ([`crate::Load`]), at most one
//! `server.load_interval_ms` old. However often the API is polled, the
//! connections are walked once per interval, by the sampling task.

use std::sync::Arc;

use crate::state::Shared;
use crate::util::now_ms;
use crate::Load;

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
    /// The sample the sampled figures come from.
    pub load: Arc<Load>,
}

impl Snapshot {
    /// Exact counts from the registry, the rest from the latest sample.
    pub fn take(shared: &Shared) -> Snapshot {
        let load = shared.load.borrow().clone();
        let live = shared.conns.registered();
        let closing = load.closing_connections.min(live);
        // The sample's ages, aged by the time since it was taken.
        let since = now_ms().saturating_sub(load.at_ms);
        let live_ms = load.live_connection_ms + load.connections as u64 * since;
        Snapshot {
            messages_sent: load.messages_sent,
            messages_received: load.messages_received,
            bytes_sent: load.bytes_sent,
            bytes_received: load.bytes_received,
            live,
            open: live - closing,
            closing,
            authenticated: shared.conns.authenticated(),
            queue_bytes: load.queue_bytes,
            live_ms,
            load,
        }
    }

    /// Messages in both directions per second over the sample's window.
    pub fn messages_per_second(&self) -> f64 {
        self.load.messages_in_per_second + self.load.messages_out_per_second
    }
}
