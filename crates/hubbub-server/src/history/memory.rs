//! The in-memory history store.
//!
//! Channels sit in shards; each channel's events are a ring (`VecDeque`)
//! behind the channel's own mutex, bounded by the namespace's size and TTL.
//! A global byte budget caps all history together: when appending pushes
//! the total over it, the least recently written channels lose their oldest
//! events first. A channel whose events have all expired and that has seen
//! no append (and no subscriber opening it) for a TTL is forgotten; writing
//! to it again starts a new epoch, which tells reconnecting clients their
//! position can no longer be honoured. A channel gets its epoch when it is
//! first written or opened by a subscriber, whichever comes first, so a
//! client that subscribed before the first publication recovers like any
//! other.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{
    BoxFuture, HeldChannels, HistoryError, HistoryOptions, HistoryRead, HistoryStats, HistoryStore,
    Position,
};
use crate::hub::Publication;

const SHARDS: usize = 32;
/// After trimming for the budget, the total is brought down to this share of it.
const BUDGET_LOW_WATER: f64 = 0.9;

struct Held {
    publication: Arc<Publication>,
    expires: Instant,
    bytes: usize,
}

struct ChannelHistory {
    epoch: Arc<str>,
    top: u64,
    events: VecDeque<Held>,
    bytes: usize,
    /// Last append or subscriber open: the channel is forgotten a TTL after.
    last_active: Instant,
    ttl: Duration,
}

impl ChannelHistory {
    fn new(ttl: Duration, now: Instant) -> Self {
        ChannelHistory {
            epoch: new_epoch(),
            top: 0,
            events: VecDeque::new(),
            bytes: 0,
            last_active: now,
            ttl,
        }
    }

    fn first_held(&self) -> u64 {
        self.events
            .front()
            .map(|h| h.publication.event.offset.unwrap_or(0))
            .unwrap_or(self.top + 1)
    }

    /// Pops expired events; returns (events, bytes) dropped.
    fn expire(&mut self, now: Instant) -> (usize, usize) {
        let (mut n, mut b) = (0, 0);
        while self.events.front().is_some_and(|h| h.expires <= now) {
            let h = self.events.pop_front().expect("front exists");
            n += 1;
            b += h.bytes;
        }
        self.bytes -= b;
        (n, b)
    }

    fn position(&self) -> Position {
        Position {
            offset: self.top,
            epoch: self.epoch.to_string(),
        }
    }
}

type Shard = Mutex<HashMap<Arc<str>, Arc<Mutex<ChannelHistory>>>>;

/// History kept in this process's memory.
pub struct MemoryHistory {
    shards: Box<[Shard]>,
    hasher: RandomState,
    budget: usize,
    bytes: AtomicUsize,
    events: AtomicUsize,
    trimmed: AtomicU64,
    trimming: Mutex<()>,
}

fn new_epoch() -> Arc<str> {
    Arc::from(format!("{:016x}", rand::random::<u64>()))
}

/// Estimated memory of one held event, as the allocator hands it out: the
/// publication and each of its strings, its slot in the ring, and one
/// encoded frame, which is built on the publish path as soon as the channel
/// has a subscriber (`encode_frame` starts its buffer at 256 bytes and
/// doubles it). Checked against the process's resident memory by
/// `examples/history_memory.rs` (docs/performance.md, "History and
/// recovery"): within a few percent for events whose frame was built;
/// about twice the real cost for events no subscriber ever saw.
fn estimate(p: &Publication) -> usize {
    /// What a heap block of `n` bytes takes (glibc malloc: an 8-byte
    /// header, 16-byte steps, 32 bytes at least); nothing for `n == 0`.
    fn block(n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (n + 8).next_multiple_of(16).max(32)
        }
    }
    let e = &p.event;
    let publisher = e.publisher.as_ref().map_or(0, |p| {
        p.connection_id.len() + p.user_id.as_ref().map_or(0, |u| u.len())
    });
    let strings = [
        e.channel.len(),
        e.event_type.len(),
        e.message_id.len(),
        e.data.get().len(),
        e.epoch.as_ref().map_or(0, |s| s.len()),
    ]
    .into_iter()
    .chain(e.publisher.as_ref().map(|p| p.connection_id.len()))
    .chain(
        e.publisher
            .as_ref()
            .and_then(|p| p.user_id.as_ref().map(|u| u.len())),
    )
    .map(block)
    .sum::<usize>();
    // The `Arc` counts sit in front of the publication.
    let publication = block(2 * std::mem::size_of::<usize>() + std::mem::size_of::<Publication>());
    // The frame: header room, the field values, and about 120 bytes of keys,
    // offset and timestamp in JSON (about 50 more with a publisher).
    let encoded = hubbub_ws::MAX_SERVER_HEADER_LEN
        + e.channel.len()
        + e.event_type.len()
        + e.message_id.len()
        + e.data.get().len()
        + e.epoch.as_ref().map_or(0, |s| s.len())
        + publisher
        + if e.publisher.is_some() { 176 } else { 128 };
    // `Bytes` made from a `Vec` whose capacity exceeds its length keeps a
    // small shared header block beside the buffer.
    let frame =
        block(encoded.next_power_of_two().max(256)) + block(3 * std::mem::size_of::<usize>());
    // A ring's `VecDeque` holds up to twice its events' slots; count a quarter more.
    let slot = std::mem::size_of::<Held>() * 5 / 4;
    publication + strings + frame + slot
}

impl MemoryHistory {
    /// An empty store holding at most about `budget` bytes in all.
    pub fn new(budget: usize) -> Self {
        MemoryHistory {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            budget,
            bytes: AtomicUsize::new(0),
            events: AtomicUsize::new(0),
            trimmed: AtomicU64::new(0),
            trimming: Mutex::new(()),
        }
    }

    fn shard(&self, channel: &str) -> &Shard {
        &self.shards[self.hasher.hash_one(channel) as usize % SHARDS]
    }

    fn entry(&self, channel: &str) -> Option<Arc<Mutex<ChannelHistory>>> {
        self.shard(channel).lock().get(channel).cloned()
    }

    fn entry_or_new(
        &self,
        channel: &str,
        opts: HistoryOptions,
        now: Instant,
    ) -> Arc<Mutex<ChannelHistory>> {
        let mut shard = self.shard(channel).lock();
        match shard.get(channel) {
            Some(e) => e.clone(),
            None => {
                let e = Arc::new(Mutex::new(ChannelHistory::new(opts.ttl, now)));
                shard.insert(Arc::from(channel), e.clone());
                e
            }
        }
    }

    /// Gives `channel` its epoch now if it has none, and keeps it for a TTL
    /// from now: a subscriber that arrives before the first publication is
    /// told a real position (offset 0 of this epoch) and can recover from
    /// it like from any other.
    pub fn open_now(&self, channel: &str, opts: HistoryOptions) -> Position {
        let now = Instant::now();
        let entry = self.entry_or_new(channel, opts, now);
        let mut ch = entry.lock();
        ch.last_active = now;
        ch.ttl = opts.ttl;
        ch.position()
    }

    /// Numbers a publication and keeps it: `make` builds it with its offset
    /// and epoch, `then` runs while the channel is still locked (the hub
    /// fans out there, so deliveries leave in offset order even when several
    /// publishers race on one channel).
    pub fn append_with<R>(
        &self,
        channel: &str,
        opts: HistoryOptions,
        now: Instant,
        make: impl FnOnce(u64, &Arc<str>) -> Arc<Publication>,
        then: impl FnOnce(&Arc<Publication>) -> R,
    ) -> R {
        let entry = self.entry_or_new(channel, opts, now);
        let result = {
            let mut ch = entry.lock();
            let (n, b) = ch.expire(now);
            ch.top += 1;
            ch.ttl = opts.ttl;
            ch.last_active = now;
            let publication = make(ch.top, &ch.epoch);
            let bytes = estimate(&publication);
            ch.events.push_back(Held {
                publication: publication.clone(),
                expires: now + opts.ttl,
                bytes,
            });
            ch.bytes += bytes;
            let (mut dn, mut db) = (n, b);
            while ch.events.len() > opts.size {
                let h = ch.events.pop_front().expect("over size");
                ch.bytes -= h.bytes;
                dn += 1;
                db += h.bytes;
            }
            self.events.fetch_add(1, Relaxed);
            self.events.fetch_sub(dn, Relaxed);
            self.bytes.fetch_add(bytes, Relaxed);
            self.bytes.fetch_sub(db, Relaxed);
            then(&publication)
        };
        if self.bytes.load(Relaxed) > self.budget {
            self.trim_to_budget();
        }
        result
    }

    /// The channel's position without reading events.
    pub fn position(&self, channel: &str) -> Position {
        self.entry(channel)
            .map(|e| e.lock().position())
            .unwrap_or_default()
    }

    /// Synchronous read (the in-memory store never waits).
    pub fn read_now(&self, channel: &str, since: Option<u64>, limit: usize) -> HistoryRead {
        let Some(entry) = self.entry(channel) else {
            return HistoryRead {
                first_held: 1,
                ..HistoryRead::default()
            };
        };
        let mut ch = entry.lock();
        let (n, b) = ch.expire(Instant::now());
        self.events.fetch_sub(n, Relaxed);
        self.bytes.fetch_sub(b, Relaxed);
        let first_held = ch.first_held();
        let events: Vec<Arc<Publication>> = match since {
            Some(s) => {
                let skip = s.saturating_add(1).saturating_sub(first_held) as usize;
                ch.events
                    .iter()
                    .skip(skip)
                    .take(limit)
                    .map(|h| h.publication.clone())
                    .collect()
            }
            None => {
                let skip = ch.events.len().saturating_sub(limit);
                ch.events
                    .iter()
                    .skip(skip)
                    .map(|h| h.publication.clone())
                    .collect()
            }
        };
        HistoryRead {
            top: ch.position(),
            events,
            first_held,
        }
    }

    /// Drops the oldest events of the least recently written channels until
    /// the total is back under the budget's low-water mark.
    fn trim_to_budget(&self) {
        let Some(_guard) = self.trimming.try_lock() else {
            return; // another publisher is trimming already
        };
        let target = (self.budget as f64 * BUDGET_LOW_WATER) as usize;
        let mut all: Vec<(Instant, Arc<Mutex<ChannelHistory>>)> = Vec::new();
        for shard in self.shards.iter() {
            for e in shard.lock().values() {
                let last = e.lock().last_active;
                all.push((last, e.clone()));
            }
        }
        all.sort_by_key(|(t, _)| *t);
        for (_, e) in all {
            if self.bytes.load(Relaxed) <= target {
                break;
            }
            let mut ch = e.lock();
            while self.bytes.load(Relaxed) > target {
                let Some(h) = ch.events.pop_front() else {
                    break;
                };
                ch.bytes -= h.bytes;
                self.bytes.fetch_sub(h.bytes, Relaxed);
                self.events.fetch_sub(1, Relaxed);
                self.trimmed.fetch_add(1, Relaxed);
            }
        }
    }
}

impl MemoryHistory {
    /// Channels holding events, with their positions, without a future.
    pub fn channels_now(&self) -> Vec<(Arc<str>, Position)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            for (name, e) in shard.lock().iter() {
                let ch = e.lock();
                // A channel only opened by a subscriber holds nothing yet.
                if ch.top > 0 {
                    out.push((name.clone(), ch.position()));
                }
            }
        }
        out
    }

    /// Whether `channel` holds any event, without a future.
    pub fn holds_now(&self, channel: &str) -> bool {
        self.entry(channel).is_some_and(|e| e.lock().top > 0)
    }
}

impl HistoryStore for MemoryHistory {
    fn read<'a>(
        &'a self,
        channel: &'a str,
        since: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, HistoryError>> {
        let r = self.read_now(channel, since, limit);
        Box::pin(std::future::ready(Ok(r)))
    }

    fn open<'a>(
        &'a self,
        channel: &'a str,
        opts: HistoryOptions,
    ) -> BoxFuture<'a, Result<(), HistoryError>> {
        self.open_now(channel, opts);
        Box::pin(std::future::ready(Ok(())))
    }

    fn holds<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<bool, HistoryError>> {
        Box::pin(std::future::ready(Ok(self.holds_now(channel))))
    }

    fn channels(&self) -> BoxFuture<'_, Result<HeldChannels, HistoryError>> {
        Box::pin(std::future::ready(Ok(self.channels_now())))
    }

    fn stats(&self) -> HistoryStats {
        HistoryStats {
            channels: self.shards.iter().map(|s| s.lock().len()).sum(),
            events: self.events.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            budget_bytes: self.budget,
            trimmed_for_budget: self.trimmed.load(Relaxed),
        }
    }

    fn sweep(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            let mut map = shard.lock();
            map.retain(|_, e| {
                let mut ch = e.lock();
                let (n, b) = ch.expire(now);
                self.events.fetch_sub(n, Relaxed);
                self.bytes.fetch_sub(b, Relaxed);
                // Keep the position while clients may still recover against it.
                !(ch.events.is_empty() && now.duration_since(ch.last_active) >= ch.ttl)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_protocol::JsonData;

    fn opts(size: usize, ttl_ms: u64) -> HistoryOptions {
        HistoryOptions {
            size,
            ttl: Duration::from_millis(ttl_ms),
        }
    }

    fn publish(h: &MemoryHistory, ch: &str, o: HistoryOptions) -> u64 {
        h.append_with(
            ch,
            o,
            Instant::now(),
            |off, ep| {
                Publication::make(
                    ch,
                    "e",
                    JsonData::from_json("1").unwrap(),
                    format!("m{off}"),
                    Some(off),
                    Some(ep.clone()),
                    None,
                    0,
                )
            },
            |p| p.event.offset.unwrap(),
        )
    }

    fn offsets(r: &HistoryRead) -> Vec<u64> {
        r.events.iter().map(|p| p.event.offset.unwrap()).collect()
    }

    #[test]
    fn offsets_count_from_one_and_size_trims_the_front() {
        let h = MemoryHistory::new(1 << 30);
        for i in 1..=5 {
            assert_eq!(publish(&h, "c", opts(3, 60_000)), i);
        }
        let r = h.read_now("c", None, 100);
        assert_eq!(offsets(&r), [3, 4, 5]);
        assert_eq!(r.top.offset, 5);
        assert_eq!(r.first_held, 3);
        assert!(r.reaches_back_to(2, &r.top.epoch));
        assert!(!r.reaches_back_to(1, &r.top.epoch));
        assert!(r.reaches_back_to(5, &r.top.epoch));
        assert!(!r.reaches_back_to(6, &r.top.epoch));
        assert!(!r.reaches_back_to(4, "other-epoch"));
        assert_eq!(offsets(&h.read_now("c", Some(3), 100)), [4, 5]);
        assert_eq!(offsets(&h.read_now("c", Some(0), 2)), [3, 4]);
        assert_eq!(offsets(&h.read_now("c", None, 2)), [4, 5]);
        assert_eq!(offsets(&h.read_now("c", Some(5), 10)), Vec::<u64>::new());
        assert_eq!(h.stats().events, 3);
    }

    #[test]
    fn a_channel_opened_before_its_first_event_keeps_that_epoch() {
        let h = MemoryHistory::new(1 << 30);
        let opened = h.open_now("c", opts(10, 60_000));
        assert_eq!(opened.offset, 0);
        assert!(
            !opened.epoch.is_empty(),
            "a real epoch from the first subscriber"
        );
        assert!(!h.holds_now("c"), "opened, but nothing held yet");
        assert!(h.channels_now().is_empty());
        for _ in 0..5 {
            publish(&h, "c", opts(10, 60_000));
        }
        let r = h.read_now("c", Some(0), 100);
        assert_eq!(r.top.epoch, opened.epoch, "the first event keeps it");
        assert!(r.reaches_back_to(0, &opened.epoch));
        assert_eq!(offsets(&r), [1, 2, 3, 4, 5]);
        assert_eq!(
            h.open_now("c", opts(10, 60_000)),
            r.top,
            "opening again changes nothing"
        );
    }

    #[test]
    fn offset_zero_of_no_epoch_is_the_start_of_any_history() {
        let h = MemoryHistory::new(1 << 30);
        assert!(h.read_now("c", Some(0), 10).reaches_back_to(0, ""));
        for _ in 0..3 {
            publish(&h, "c", opts(2, 60_000));
        }
        let r = h.read_now("c", Some(0), 10);
        assert!(!r.reaches_back_to(0, ""), "offset 1 was trimmed");
        publish(&h, "d", opts(5, 60_000));
        assert!(h.read_now("d", Some(0), 10).reaches_back_to(0, ""));
        assert!(!h
            .read_now("d", Some(0), 10)
            .reaches_back_to(0, "other-epoch"));
    }

    #[test]
    fn ttl_expires_events_and_then_the_channel() {
        let h = MemoryHistory::new(1 << 30);
        publish(&h, "c", opts(10, 30));
        let epoch = h.position("c").epoch;
        std::thread::sleep(Duration::from_millis(50));
        let r = h.read_now("c", Some(0), 10);
        assert!(r.events.is_empty());
        assert_eq!(r.top.offset, 1, "position survives expiry");
        assert!(
            r.reaches_back_to(1, &epoch),
            "a client at the top loses nothing"
        );
        assert!(!r.reaches_back_to(0, &epoch));
        h.sweep();
        assert!(!h.holds_now("c"));
        assert_eq!(h.stats().events, 0);
        assert_eq!(h.stats().bytes, 0);
        // Writing again starts a new history.
        assert_eq!(publish(&h, "c", opts(10, 30)), 1);
        assert_ne!(h.position("c").epoch, epoch);
    }

    #[test]
    fn epochs_differ_between_stores() {
        let a = MemoryHistory::new(1 << 30);
        let b = MemoryHistory::new(1 << 30);
        publish(&a, "c", opts(10, 60_000));
        publish(&b, "c", opts(10, 60_000));
        assert_ne!(a.position("c").epoch, b.position("c").epoch);
        assert_eq!(MemoryHistory::new(1).position("none"), Position::default());
    }

    #[test]
    fn budget_trims_least_recently_written_channels_first() {
        let one = {
            let h = MemoryHistory::new(1 << 30);
            publish(&h, "x", opts(10, 60_000));
            h.stats().bytes
        };
        // Room for about 10 events in all.
        let h = MemoryHistory::new(one * 10);
        for _ in 0..6 {
            publish(&h, "old", opts(100, 60_000));
        }
        std::thread::sleep(Duration::from_millis(2));
        for _ in 0..6 {
            publish(&h, "new", opts(100, 60_000));
        }
        let s = h.stats();
        assert!(s.bytes <= one * 10, "{s:?}");
        assert!(s.trimmed_for_budget > 0);
        let old = h.read_now("old", None, 100);
        let new = h.read_now("new", None, 100);
        assert!(old.events.len() < 6, "old channel trimmed first");
        assert_eq!(new.events.len(), 6, "newest channel untouched");
        assert_eq!(
            offsets(&old).last(),
            Some(&6),
            "trimmed from the oldest end"
        );
    }
}
