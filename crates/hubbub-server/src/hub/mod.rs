//! The channel registry and the publish path.
//!
//! Channels live in shards, each behind its own `RwLock`, picked by a hash of
//! the name, so publishes to different channels never contend and nothing
//! global sits on the publish path. The hub is a node's local delivery: it
//! never publishes. Every event, from a client, the HTTP API, an in-process
//! publisher or (with a networked engine) another node, is stamped by the
//! node, numbered by the engine's broker, and comes back here through the
//! [`EventSink`] the hub implements.
//!
//! Each publication is encoded at most once per [`Wire`] (protocol,
//! encoding, framing), and every subscriber on that wire is handed the same
//! bytes; a connection's handle says which wire it is on.
//!
//! Recovery without loss or duplicates: a subscription starts *syncing*.
//! While it syncs, its channel's live publications are parked beside it
//! instead of queued; the session reads history, sends the reply and
//! the missed events, and then [`Hub::finish_sync`] releases the parked
//! publications newer than what was recovered. Parking and releasing
//! happen under the channel shard's lock, so nothing slips between.

mod floors;
mod local;
mod publication;
mod wire;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use indexmap::IndexMap;
use parking_lot::{Mutex, RwLock};

pub(crate) use local::{LocalQueue, Popped};
pub use publication::Publication;
pub use wire::{encode_frame, Wire};

use crate::conn::handle::{CloseRequest, ConnHandle, Push, QueueLimits};
use crate::conns::Connections;
use crate::engine::EventSink;
use crate::metrics::Metrics;

const SHARDS: usize = 64;

/// Where a subscriber's events go.
enum Target {
    /// A connection's outbox: encoded frames.
    Conn(Arc<ConnHandle>),
    /// An in-process subscriber's queue: the publications themselves.
    Local(Arc<LocalQueue>),
}

/// Who receives a channel's events, and which of them.
struct Subscriber {
    target: Target,
    /// Only these event types are delivered (the `event_types` of `subscribe`).
    filter: Option<Arc<[String]>>,
    /// Recovering: live publications are parked in `Channel::parked`.
    syncing: bool,
}

impl Subscriber {
    fn wants(&self, event_type: &str) -> bool {
        passes(self.filter.as_deref(), event_type)
    }

    /// Queues one publication: for a connection, its frame for the
    /// connection's wire; for an in-process subscriber, the publication.
    fn push(&self, p: &Arc<Publication>, limits: QueueLimits) -> Push {
        match &self.target {
            Target::Conn(h) => match p.frame(h.wire) {
                Some(frame) => h.push(frame, limits),
                None => Push::Closed,
            },
            Target::Local(q) => q.push(p),
        }
    }

    /// Ends a subscriber whose parked events overflowed: a connection
    /// closes as a slow consumer, an in-process queue lags (and its
    /// subscriber catches up again).
    fn overflow(&self) -> bool {
        match &self.target {
            Target::Conn(h) => h.close(CloseRequest {
                drop_queued: true,
                ..CloseRequest::new(hubbub_protocol::CloseCode::SLOW_CONSUMER)
            }),
            Target::Local(q) => {
                q.lag();
                true
            }
        }
    }
}

/// Whether an event of `event_type` passes a subscription's `event_types`
/// filter: the one rule for live delivery and recovery alike.
pub fn passes(filter: Option<&[String]>, event_type: &str) -> bool {
    filter.is_none_or(|f| f.iter().any(|t| t == event_type))
}

#[derive(Default)]
struct Channel {
    subs: IndexMap<u64, Subscriber>,
    /// Publications that arrived while a subscriber was syncing, by connection.
    parked: Mutex<HashMap<u64, Vec<Arc<Publication>>>>,
    /// What subscribers whose sync ended were given (`floors.rs`); boxed
    /// on first use, so a channel that never syncs a subscriber (every
    /// user's own channel) pays one pointer.
    floors: Option<Box<floors::Floors>>,
}

#[derive(Default)]
struct Shard {
    channels: RwLock<HashMap<Arc<str>, Channel>>,
}

/// A summary of one channel for the API.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    /// Name.
    pub channel: Arc<str>,
    /// Local subscribers.
    pub subscribers: usize,
}

/// The channel registry of one node.
pub struct Hub {
    shards: Box<[Shard]>,
    conns: Arc<Connections>,
    hasher: RandomState,
    limits: QueueLimits,
    metrics: Arc<Metrics>,
    /// Random per process; prefixes message ids so they stay unique across restarts.
    instance: String,
    next_message: AtomicU64,
    /// When the node started and where clients reach it, for the node
    /// registry of a networked broker.
    started: std::time::Instant,
    address: std::sync::OnceLock<String>,
    /// Told the room of every `room_deleted` delivered here, so members
    /// of a room deleted through another node leave it here too.
    room_deleted: std::sync::OnceLock<RoomHook>,
    /// Whether the broker may hand back late what a sync's history read
    /// included, so finished syncs keep floors (`floors.rs`).
    late: std::sync::atomic::AtomicBool,
}

/// What the hub calls with a room's name when its deletion arrives.
pub(crate) type RoomHook = Box<dyn Fn(&str) + Send + Sync>;

impl Hub {
    /// An empty registry whose fan-out respects `limits`; events for a
    /// user go to that user's connections in `conns`. `started` is when
    /// the node started (its uptime in the node registry).
    pub fn new(
        conns: Arc<Connections>,
        limits: QueueLimits,
        metrics: Arc<Metrics>,
        started: std::time::Instant,
    ) -> Self {
        Hub {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            conns,
            hasher: RandomState::new(),
            limits,
            metrics,
            instance: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            next_message: AtomicU64::new(1),
            started,
            address: std::sync::OnceLock::new(),
            room_deleted: std::sync::OnceLock::new(),
            late: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Where clients reach this node, once it is bound.
    pub(crate) fn address(&self) -> Option<String> {
        self.address.get().cloned()
    }

    /// Where clients reach this node (set once, when it is bound).
    pub(crate) fn set_address(&self, address: String) {
        let _ = self.address.set(address);
    }

    /// Whether the broker can deliver late what a history read included
    /// ([`Broker::delivers_late`](crate::engine::Broker::delivers_late)).
    pub(crate) fn set_delivers_late(&self, late: bool) {
        self.late.store(late, Relaxed);
    }

    /// Sets what a delivered `room_deleted` calls (once, by the node).
    pub(crate) fn on_room_deleted(&self, hook: RoomHook) {
        let _ = self.room_deleted.set(hook);
    }

    /// Sends every subscriber back through recovery: connections close
    /// with 1011 and reconnect advice (clients reconnect with `since` and
    /// learn whether they missed anything), in-process subscribers lag
    /// and catch up from history. Returns how many were sent back.
    fn resync_all(&self) -> usize {
        let mut conns: Vec<Arc<ConnHandle>> = Vec::new();
        for shard in self.shards.iter() {
            for ch in shard.channels.read().values() {
                for sub in ch.subs.values() {
                    match &sub.target {
                        Target::Conn(h) => conns.push(h.clone()),
                        Target::Local(q) => q.lag(),
                    }
                }
            }
        }
        conns.sort_by_key(|h| h.seq);
        conns.dedup_by_key(|h| h.seq);
        let request = CloseRequest {
            reason: "engine link restored; reconnect and recover".into(),
            reconnect: true,
            ..CloseRequest::new(hubbub_protocol::CloseCode::INTERNAL)
        };
        conns.iter().filter(|h| h.close(request.clone())).count()
    }

    fn shard(&self, channel: &str) -> &Shard {
        let h = self.hasher.hash_one(channel) as usize;
        &self.shards[h % SHARDS]
    }

    /// Adds `handle` to `channel` (replacing its filter if already there).
    /// With `syncing`, live publications are parked until
    /// [`Hub::finish_sync`]. Returns the channel's shared name, which the
    /// connection keeps.
    pub fn subscribe(
        &self,
        channel: &str,
        handle: &Arc<ConnHandle>,
        filter: Option<Arc<[String]>>,
        syncing: bool,
    ) -> Arc<str> {
        self.add(
            channel,
            handle.seq,
            Target::Conn(handle.clone()),
            filter,
            syncing,
        )
    }

    /// Adds in-process subscriber `seq` (a number from the connection
    /// sequence) to `channel`, syncing, with its own queue.
    pub(crate) fn subscribe_local(
        &self,
        channel: &str,
        seq: u64,
        queue: &Arc<LocalQueue>,
        filter: Option<Arc<[String]>>,
    ) -> Arc<str> {
        self.add(channel, seq, Target::Local(queue.clone()), filter, true)
    }

    fn add(
        &self,
        channel: &str,
        seq: u64,
        target: Target,
        filter: Option<Arc<[String]>>,
        syncing: bool,
    ) -> Arc<str> {
        let mut map = self.shard(channel).channels.write();
        let (name, ch) = match map.get_key_value(channel) {
            Some((k, _)) => {
                let k = k.clone();
                let ch = map.get_mut(&k).expect("present");
                (k, ch)
            }
            None => {
                let k: Arc<str> = Arc::from(channel);
                (k.clone(), map.entry(k).or_default())
            }
        };
        if let Target::Local(q) = &target {
            // Parking from here on (under the write lock, so no delivery
            // slips between): the queue takes events again, and a lag
            // while parked is kept for the next catch-up.
            q.resume();
        }
        ch.subs.insert(
            seq,
            Subscriber {
                target,
                filter,
                syncing,
            },
        );
        name
    }

    /// Ends a subscription's sync: queues the publications parked for it
    /// whose offset is above `after` (offset and epoch; all of them when
    /// `after` is `None`), in order, and lets live publications through
    /// again, except those at or below `after` that a networked engine
    /// hands back late.
    pub fn finish_sync(&self, channel: &str, seq: u64, after: Option<(u64, &str)>) {
        let mut map = self.shard(channel).channels.write();
        let Some(ch) = map.get_mut(channel) else {
            return;
        };
        let parked = ch.parked.get_mut().remove(&seq).unwrap_or_default();
        let Some(sub) = ch.subs.get_mut(&seq) else {
            return;
        };
        sub.syncing = false;
        let mut newest = after.map(|(o, _)| o);
        for p in parked {
            if after.is_some_and(|(a, _)| p.event.offset.is_some_and(|o| o <= a)) {
                continue;
            }
            if let Some(o) = p.event.offset {
                newest = newest.max(Some(o));
            }
            if sub.push(&p, self.limits) == Push::Overflow {
                self.overflowed(sub);
            }
        }
        if let (Some((_, epoch)), Some(floor)) = (after, newest) {
            if self.late.load(Relaxed) {
                ch.floors.get_or_insert_default().set(seq, floor, epoch);
            }
        }
    }

    /// Removes connection `seq` from `channel`; drops the channel when it
    /// has no subscribers left. Returns whether it did (the node's
    /// interest in the channel ends then).
    pub fn unsubscribe(&self, channel: &str, seq: u64) -> bool {
        let mut map = self.shard(channel).channels.write();
        let Some(ch) = map.get_mut(channel) else {
            return false;
        };
        ch.subs.swap_remove(&seq);
        ch.parked.get_mut().remove(&seq);
        if let Some(f) = ch.floors.as_mut() {
            f.forget(seq);
        }
        if ch.subs.is_empty() {
            map.remove(channel);
            return true;
        }
        false
    }

    /// A fresh message id: every event this node stamps, channel
    /// publication or user send, takes one from this counter.
    pub fn next_message_id(&self) -> String {
        let n = self.next_message.fetch_add(1, Relaxed);
        format!("{}-{n:x}", self.instance)
    }

    /// Queues a numbered publication for local subscribers (parking it for
    /// those still syncing).
    fn deliver_local(&self, publication: &Arc<Publication>) -> usize {
        let map = self.shard(&publication.event.channel).channels.read();
        let Some(ch) = map.get(publication.event.channel.as_str()) else {
            return 0;
        };
        let mut delivered = 0;
        let event_type = publication.event.event_type.as_str();
        let mut floors = ch.floors.as_ref().and_then(|f| f.round());
        for (&seq, sub) in ch.subs.iter() {
            if !sub.wants(event_type) {
                continue;
            }
            if sub.syncing {
                self.park(ch, seq, sub, publication);
                delivered += 1;
                continue;
            }
            if floors
                .as_mut()
                .is_some_and(|f| f.already_given(seq, publication))
            {
                continue;
            }
            match sub.push(publication, self.limits) {
                Push::Queued => delivered += 1,
                Push::Overflow => self.overflowed(sub),
                Push::Closed => {}
            }
        }
        drop(floors);
        drop(map);
        self.metrics.deliveries.fetch_add(delivered as u64, Relaxed);
        delivered
    }

    /// Counts an overflow where it belongs: a connection closed as a slow
    /// consumer, or an in-process subscriber that will catch up.
    fn overflowed(&self, sub: &Subscriber) {
        let counter = match sub.target {
            Target::Conn(_) => &self.metrics.slow_consumer_disconnects,
            Target::Local(_) => &self.metrics.in_process_catch_ups,
        };
        Metrics::inc(counter);
    }

    /// Parks a publication for a syncing subscriber; a subscriber whose
    /// parked publications would exceed its queue bound is a slow consumer.
    fn park(&self, ch: &Channel, seq: u64, sub: &Subscriber, publication: &Arc<Publication>) {
        let mut parked = ch.parked.lock();
        let list = parked.entry(seq).or_default();
        if list.len() >= self.limits.max_messages {
            mem::take(list);
            if sub.overflow() {
                self.overflowed(sub);
            }
            return;
        }
        list.push(publication.clone());
    }

    /// Number of local subscribers of `channel` (0 when unknown).
    pub fn subscriber_count(&self, channel: &str) -> Option<usize> {
        self.shard(channel)
            .channels
            .read()
            .get(channel)
            .map(|c| c.subs.len())
    }

    /// Every channel with its subscriber count, sorted by name.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            for (name, ch) in shard.channels.read().iter() {
                out.push(ChannelInfo {
                    channel: name.clone(),
                    subscribers: ch.subs.len(),
                });
            }
        }
        out.sort_by(|a, b| a.channel.cmp(&b.channel));
        out
    }

    /// The connections subscribed to `channel` (for the API).
    pub fn subscribers(&self, channel: &str) -> Vec<Arc<ConnHandle>> {
        self.shard(channel)
            .channels
            .read()
            .get(channel)
            .map(|c| {
                c.subs
                    .values()
                    .filter_map(|s| match &s.target {
                        Target::Conn(h) => Some(h.clone()),
                        Target::Local(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl EventSink for Hub {
    fn deliver(&self, publication: &Arc<Publication>) -> usize {
        let n = self.deliver_local(publication);
        let event = &publication.event;
        if event.event_type
            == <hubbub_protocol::rooms::RoomDeleted as hubbub_protocol::EventPayload>::EVENT_TYPE
        {
            if let (Some(room), Some(hook)) =
                (event.channel.strip_prefix("room:"), self.room_deleted.get())
            {
                hook(room);
            }
        }
        n
    }

    fn subscribers(&self, channel: &str) -> usize {
        self.subscriber_count(channel).unwrap_or(0)
    }

    fn resync(&self) {
        let n = self.resync_all();
        tracing::warn!(
            subscribers = n,
            "the broker may have missed events: subscribers sent back through recovery"
        );
    }

    fn report(&self) -> crate::engine::NodeReport {
        let mut subscriptions = 0;
        for shard in self.shards.iter() {
            subscriptions += shard
                .channels
                .read()
                .values()
                .map(|c| c.subs.len())
                .sum::<usize>();
        }
        crate::engine::NodeReport {
            node_id: self.conns.node().to_owned(),
            address: self.address.get().cloned(),
            connections: self.conns.count(),
            subscriptions,
            uptime_seconds: self.started.elapsed().as_secs(),
        }
    }

    fn deliver_to_user(&self, user: &str, publication: &Arc<Publication>) -> Option<usize> {
        let live = self.conns.of_user(user);
        if live.is_empty() {
            return None;
        }
        let mut reached = 0;
        for handle in &live {
            let Some(frame) = publication.frame(handle.wire) else {
                continue;
            };
            match handle.push(frame, self.limits) {
                Push::Queued => reached += 1,
                Push::Overflow => Metrics::inc(&self.metrics.slow_consumer_disconnects),
                Push::Closed => {}
            }
        }
        self.metrics.deliveries.fetch_add(reached as u64, Relaxed);
        Some(reached)
    }
}
