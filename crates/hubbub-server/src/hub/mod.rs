//! The channel registry and the publish path.
//!
//! Channels live in shards, each behind its own `RwLock`, picked by a hash of
//! the name, so publishes to different channels never contend and nothing
//! global sits on the publish path. Every event a channel delivers passes
//! through [`Hub::publish`], the one place that stamps it (message id,
//! timestamp, offset and epoch) before fan-out.
//!
//! Recovery without loss or duplicates: a subscription starts *syncing*.
//! While it syncs, its channel's live publications are parked beside it
//! instead of queued; the connection reads history, sends the reply and
//! the missed events, and then [`Hub::finish_sync`] releases the parked
//! publications newer than what was recovered. Parking and releasing
//! happen under the channel shard's lock, so nothing slips between.

mod publication;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use hubbub_protocol::{JsonData, Publisher};
use indexmap::IndexMap;
use parking_lot::{Mutex, RwLock};

pub use publication::{encode_frame, Publication};

use crate::config::Config;
use crate::conn::handle::{CloseRequest, ConnHandle, Push, QueueLimits};
use crate::history::MemoryHistory;
use crate::metrics::Metrics;
use crate::util::now_ms;

const SHARDS: usize = 64;

/// Who receives a channel's events, and which of them.
struct Subscriber {
    handle: Arc<ConnHandle>,
    /// Only these event types are delivered (the `event_types` of `subscribe`).
    filter: Option<Arc<[String]>>,
    /// Recovering: live publications are parked in `Channel::parked`.
    syncing: bool,
}

impl Subscriber {
    fn wants(&self, event_type: &str) -> bool {
        passes(self.filter.as_deref(), event_type)
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
}

#[derive(Default)]
struct Shard {
    channels: RwLock<HashMap<Arc<str>, Channel>>,
}

/// What a publish did, for the `published` reply and the HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The event's offset, where the channel keeps history.
    pub offset: Option<u64>,
    /// The history's epoch, where the channel keeps history.
    pub epoch: Option<Arc<str>>,
    /// Local subscribers the event was queued for.
    pub subscribers: usize,
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
    config: Arc<Config>,
    history: Arc<MemoryHistory>,
    hasher: RandomState,
    limits: QueueLimits,
    metrics: Arc<Metrics>,
    /// Random per process; prefixes message ids so they stay unique across restarts.
    instance: String,
    next_message: AtomicU64,
}

impl Hub {
    /// An empty registry whose fan-out respects `limits`; events of
    /// channels that keep history are numbered and kept in `history`.
    pub fn new(
        config: Arc<Config>,
        history: Arc<MemoryHistory>,
        limits: QueueLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Hub {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            config,
            history,
            hasher: RandomState::new(),
            limits,
            metrics,
            instance: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            next_message: AtomicU64::new(1),
        }
    }

    fn shard(&self, channel: &str) -> &Shard {
        let h = self.hasher.hash_one(channel) as usize;
        &self.shards[h % SHARDS]
    }

    /// The history this hub numbers events into.
    pub fn history(&self) -> &Arc<MemoryHistory> {
        &self.history
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
        ch.subs.insert(
            handle.seq,
            Subscriber {
                handle: handle.clone(),
                filter,
                syncing,
            },
        );
        name
    }

    /// Ends a subscription's sync: queues the publications parked for it
    /// whose offset is above `after` (all of them when `after` is `None`),
    /// in order, and lets live publications through again.
    pub fn finish_sync(&self, channel: &str, seq: u64, after: Option<u64>) {
        let mut map = self.shard(channel).channels.write();
        let Some(ch) = map.get_mut(channel) else {
            return;
        };
        let parked = ch.parked.get_mut().remove(&seq).unwrap_or_default();
        let Some(sub) = ch.subs.get_mut(&seq) else {
            return;
        };
        sub.syncing = false;
        for p in parked {
            if after.is_some_and(|a| p.event.offset.is_some_and(|o| o <= a)) {
                continue;
            }
            if let Some(frame) = p.frame(sub.handle.encoding) {
                if sub.handle.push(frame, self.limits) == Push::Overflow {
                    Metrics::inc(&self.metrics.slow_consumer_disconnects);
                }
            }
        }
    }

    /// Removes connection `seq` from `channel`; drops the channel when it
    /// has no subscribers left. Returns whether it was subscribed.
    pub fn unsubscribe(&self, channel: &str, seq: u64) -> bool {
        let mut map = self.shard(channel).channels.write();
        let Some(ch) = map.get_mut(channel) else {
            return false;
        };
        let was = ch.subs.swap_remove(&seq).is_some();
        ch.parked.get_mut().remove(&seq);
        if ch.subs.is_empty() {
            map.remove(channel);
        }
        was
    }

    /// The publish path: stamps the event (numbering it where the channel
    /// keeps history) and queues it for every local subscriber. Returns
    /// without waiting for any socket.
    pub fn publish(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
        publisher: Option<Publisher>,
    ) -> PublishOutcome {
        let started = Instant::now();
        let message_id = self.next_message_id();
        let timestamp = now_ms();
        let (publication, subscribers) = match self.config.history_options(channel, event_type) {
            Some(opts) => self.history.append_with(
                channel,
                opts,
                started,
                |offset, epoch| {
                    Publication::make(
                        channel,
                        event_type,
                        data,
                        message_id,
                        Some(offset),
                        Some(epoch.clone()),
                        publisher,
                        timestamp,
                    )
                },
                |p| (p.clone(), self.deliver(p)),
            ),
            None => {
                let p = Publication::make(
                    channel, event_type, data, message_id, None, None, publisher, timestamp,
                );
                let n = self.deliver(&p);
                (p, n)
            }
        };
        Metrics::inc(&self.metrics.publications);
        self.metrics.publish_latency.observe(started.elapsed());
        PublishOutcome {
            offset: publication.event.offset,
            epoch: publication.event.epoch.clone(),
            subscribers,
        }
    }

    /// A fresh message id, for events the hub delivers outside
    /// [`Hub::publish`] (the HTTP API's sends to one user's connections), so
    /// every event of this process has a unique id from one counter.
    pub fn next_message_id(&self) -> String {
        let n = self.next_message.fetch_add(1, Relaxed);
        format!("{}-{n:x}", self.instance)
    }

    /// Queues an already-stamped publication for local subscribers (parking
    /// it for those still syncing).
    pub fn deliver(&self, publication: &Arc<Publication>) -> usize {
        let map = self.shard(&publication.event.channel).channels.read();
        let Some(ch) = map.get(publication.event.channel.as_str()) else {
            return 0;
        };
        let mut delivered = 0;
        let event_type = publication.event.event_type.as_str();
        for sub in ch.subs.values() {
            if !sub.wants(event_type) {
                continue;
            }
            if sub.syncing {
                self.park(ch, sub, publication);
                delivered += 1;
                continue;
            }
            let Some(frame) = publication.frame(sub.handle.encoding) else {
                continue;
            };
            match sub.handle.push(frame, self.limits) {
                Push::Queued => delivered += 1,
                Push::Overflow => Metrics::inc(&self.metrics.slow_consumer_disconnects),
                Push::Closed => {}
            }
        }
        drop(map);
        self.metrics.deliveries.fetch_add(delivered as u64, Relaxed);
        delivered
    }

    /// Parks a publication for a syncing subscriber; a subscriber whose
    /// parked publications would exceed its queue bound is a slow consumer.
    fn park(&self, ch: &Channel, sub: &Subscriber, publication: &Arc<Publication>) {
        let mut parked = ch.parked.lock();
        let list = parked.entry(sub.handle.seq).or_default();
        if list.len() >= self.limits.max_messages {
            mem::take(list);
            if sub.handle.close(CloseRequest {
                drop_queued: true,
                ..CloseRequest::new(hubbub_protocol::CloseCode::SLOW_CONSUMER)
            }) {
                Metrics::inc(&self.metrics.slow_consumer_disconnects);
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
            .map(|c| c.subs.values().map(|s| s.handle.clone()).collect())
            .unwrap_or_default()
    }
}
