//! The channel registry and the publish path.
//!
//! Channels live in shards, each behind its own `RwLock`, picked by a hash of
//! the name, so publishes to different channels never contend and nothing
//! global sits on the publish path. Every event a channel delivers passes
//! through [`Hub::publish`], the one place that stamps it (message id,
//! timestamp, and the offset once history is kept) before fan-out.

mod publication;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use hubbub_protocol::{JsonData, Publisher};
use indexmap::IndexMap;
use parking_lot::RwLock;

pub use publication::{encode_frame, Publication};

use crate::conn::handle::{ConnHandle, Push, QueueLimits};
use crate::metrics::Metrics;
use crate::util::now_ms;

const SHARDS: usize = 64;

/// Who receives a channel's events, and which of them.
struct Subscriber {
    handle: Arc<ConnHandle>,
    /// Only these event types are delivered (the `event_types` of `subscribe`).
    filter: Option<Arc<[String]>>,
}

#[derive(Default)]
struct Channel {
    subs: IndexMap<u64, Subscriber>,
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
    pub epoch: Option<String>,
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
    hasher: RandomState,
    limits: QueueLimits,
    metrics: Arc<Metrics>,
    /// Random per process; prefixes message ids so they stay unique across restarts.
    instance: String,
    next_message: AtomicU64,
}

impl Hub {
    /// An empty registry whose fan-out respects `limits`.
    pub fn new(limits: QueueLimits, metrics: Arc<Metrics>) -> Self {
        Hub {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
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

    /// Adds `handle` to `channel` (replacing its filter if already there).
    /// Returns the channel's shared name, which the connection keeps.
    pub fn subscribe(
        &self,
        channel: &str,
        handle: &Arc<ConnHandle>,
        filter: Option<Arc<[String]>>,
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
            },
        );
        name
    }

    /// Removes connection `seq` from `channel`; drops the channel when it
    /// has no subscribers left. Returns whether it was subscribed.
    pub fn unsubscribe(&self, channel: &str, seq: u64) -> bool {
        let mut map = self.shard(channel).channels.write();
        let Some(ch) = map.get_mut(channel) else {
            return false;
        };
        let was = ch.subs.swap_remove(&seq).is_some();
        if ch.subs.is_empty() {
            map.remove(channel);
        }
        was
    }

    /// The publish path: stamps the event and queues it for every local
    /// subscriber. Returns without waiting for any socket.
    pub fn publish(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
        publisher: Option<Publisher>,
    ) -> PublishOutcome {
        let started = Instant::now();
        let n = self.next_message.fetch_add(1, Relaxed);
        let publication = Publication::make(
            channel,
            event_type,
            data,
            format!("{}-{n:x}", self.instance),
            None,
            None,
            publisher,
            now_ms(),
        );
        let subscribers = self.deliver(&publication);
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

    /// Queues an already-stamped publication for local subscribers.
    pub fn deliver(&self, publication: &Publication) -> usize {
        let map = self.shard(&publication.event.channel).channels.read();
        let Some(ch) = map.get(publication.event.channel.as_str()) else {
            return 0;
        };
        let mut delivered = 0;
        let event_type = publication.event.event_type.as_str();
        for sub in ch.subs.values() {
            if let Some(f) = &sub.filter {
                if !f.iter().any(|t| t == event_type) {
                    continue;
                }
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
