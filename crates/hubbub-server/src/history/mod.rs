//! Channel history: numbered events kept for recovery and the `history`
//! command (PROTOCOL.md section 4).
//!
//! [`HistoryStore`] is the narrow interface every engine implements; its
//! reads return futures so a networked store (Redis) fits behind it. The
//! in-memory store ([`MemoryHistory`]) also numbers events on the publish
//! path, synchronously, so that appending and fanning out happen in offset
//! order under one per-channel lock.

mod memory;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use memory::MemoryHistory;

use crate::hub::Publication;

/// A boxed future, so that stores can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How much of a channel to keep (from its namespace options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOptions {
    /// Events kept at most.
    pub size: usize,
    /// How long each event is kept.
    pub ttl: Duration,
}

/// Where a channel's history stands: its newest offset in the history named
/// `epoch`. Offset 0 and an empty epoch mean no history was ever kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Position {
    /// Newest offset (0 before any event).
    pub offset: u64,
    /// Name of this history; changes when the history is lost.
    pub epoch: String,
}

/// A slice of a channel's history.
#[derive(Clone, Default)]
pub struct HistoryRead {
    /// The channel's position when it was read.
    pub top: Position,
    /// Events in increasing offset order.
    pub events: Vec<Arc<Publication>>,
    /// Oldest offset still held (`top.offset + 1` when nothing is held).
    pub first_held: u64,
}

impl HistoryRead {
    /// Whether every event after `offset` of history `epoch` is still held,
    /// so a client at that position can be brought up to date exactly.
    ///
    /// Offset 0 with an empty epoch is the position before any history
    /// (what hubs answered for a channel nobody had written yet): it is
    /// honoured when the current history still holds its first event,
    /// whatever its epoch.
    pub fn reaches_back_to(&self, offset: u64, epoch: &str) -> bool {
        if offset == 0 && epoch.is_empty() {
            return self.first_held <= 1;
        }
        epoch == self.top.epoch && offset <= self.top.offset && self.first_held <= offset + 1
    }
}

/// Channels holding history, with where each stands.
pub type HeldChannels = Vec<(Arc<str>, Position)>;

/// Figures for `/api/stats` and `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryStats {
    /// Channels with history held.
    pub channels: usize,
    /// Events held.
    pub events: usize,
    /// Estimated bytes held.
    pub bytes: usize,
    /// The configured budget for all history.
    pub budget_bytes: usize,
    /// Events dropped early to stay within the budget.
    pub trimmed_for_budget: u64,
}

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("history store: {0}")]
pub struct HistoryError(pub String);

/// The narrow interface of a history store.
pub trait HistoryStore: Send + Sync + 'static {
    /// Events of `channel`: with `since`, the oldest `limit` after it;
    /// without, the newest `limit`. Always in increasing offset order.
    fn read<'a>(
        &'a self,
        channel: &'a str,
        since: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, HistoryError>>;

    /// Gives `channel` an epoch before its first event (a no-op when it has
    /// one), so that a client subscribing to a channel nobody has written
    /// yet is told offset 0 of a real epoch and can recover from there.
    /// Called on subscribe, for channels whose namespace keeps history.
    fn open<'a>(
        &'a self,
        channel: &'a str,
        opts: HistoryOptions,
    ) -> BoxFuture<'a, Result<(), HistoryError>>;

    /// Whether `channel` holds any history (it is then "known" to the API).
    fn holds<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<bool, HistoryError>>;

    /// Channels with history held, with their positions (a networked
    /// store may cap the listing).
    fn channels(&self) -> BoxFuture<'_, Result<HeldChannels, HistoryError>>;

    /// Figures for stats and metrics, without waiting (a networked store
    /// answers what its last sweep saw).
    fn stats(&self) -> HistoryStats;

    /// Drops expired events and forgotten channels (housekeeping).
    fn sweep(&self);
}
