//! `nats_store = "redis"`: NATS carries events between nodes, Redis keeps
//! everything that outlives a message (history, presence, rooms, user
//! queues, the node registry), through the Redis engine's own parts.
//!
//! Redis numbers an event (its script appends and numbers in one step)
//! and NATS carries it afterwards: two steps, so two nodes publishing on
//! one channel can put their events on NATS in the other order. Every
//! node therefore delivers a channel's numbered events strictly in offset
//! order: it remembers the last offset it delivered, drops what is at or
//! below it, and when an event arrives past a gap it reads the missing
//! ones from Redis (they were stored before they were sent) and delivers
//! them first. Should Redis no longer hold them (history trimmed past the
//! gap), the node sends its subscribers through recovery, which tells
//! each client whether it missed anything: a gap is never silent. Events
//! without history keep NATS's order per publishing node.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use hubbub_protocol::TimedEvent;
use hubbub_server::engine::{
    BoxFuture, Broker, Engine, EngineError, EventSink, HistoryOptions, HistoryStore, NodeReport,
    Publication, PublishOutcome, Register, SendOutcome,
};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::channels::{until_ready, Ready};
use crate::link::{self, Link};
use crate::names::channel_token;

/// Builds the engine: the Redis engine of `config` with its broker's
/// channel fan-out moved to NATS.
pub(crate) async fn engine(config: &hubbub_server::Config) -> Result<Engine, EngineError> {
    let e = &config.engine;
    if !crate::names::valid_prefix(&e.prefix) {
        return Err(EngineError(
            "engine.prefix must be letters, digits, '_' or '-'".into(),
        ));
    }
    let redis = hubbub_redis::store(config).await?;
    let link = link::connect(
        &e.nats_url,
        &e.prefix,
        Duration::from_millis(e.timeout_ms.max(1)),
    )
    .await?;
    link.ask("flush", link.client.flush()).await?;
    let broker = Arc::new(RelayBroker {
        store: redis.broker,
        history: redis.history.clone(),
        link,
        sink: OnceLock::new(),
        channels: Mutex::default(),
    });
    tokio::spawn(resync_loop(
        Arc::downgrade(&broker),
        broker.link.state.clone(),
    ));
    Ok(Engine {
        broker,
        history: redis.history,
        presence: redis.presence,
        rooms: redis.rooms,
    })
}

/// This node's interest in one channel: its follower task.
struct Follower {
    ready: watch::Receiver<Ready>,
    task: tokio::task::JoinHandle<()>,
}

/// Channel events on NATS subjects, numbered and kept by Redis; user
/// events, the node registry and health from the Redis broker.
struct RelayBroker {
    /// The Redis broker: numbering, user events, the registry.
    store: Arc<dyn Broker>,
    /// Redis history: positions and gap reads.
    history: Arc<dyn HistoryStore>,
    link: Link,
    sink: OnceLock<Arc<dyn EventSink>>,
    channels: Mutex<HashMap<String, Follower>>,
}

impl RelayBroker {
    fn subject(&self, channel: &str) -> String {
        self.link.names.relay_subject(&channel_token(channel))
    }

    fn sink(&self) -> Result<Arc<dyn EventSink>, EngineError> {
        self.sink
            .get()
            .cloned()
            .ok_or_else(|| EngineError("the broker was not started".into()))
    }

    async fn publish_now(
        &self,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> Result<PublishOutcome, EngineError> {
        let sink = self.sink()?;
        self.link.health()?;
        let channel = publication.event.channel.clone();
        let mut timed = publication.timed();
        let mut outcome = PublishOutcome {
            offset: None,
            epoch: None,
            subscribers: 0,
        };
        if history.is_some() {
            // Numbered and kept in Redis first (the store publishes
            // nothing on Redis pub/sub: NATS carries it).
            outcome = self.store.publish(publication, history).await?;
            timed.event.offset = outcome.offset;
            timed.event.epoch = outcome.epoch.clone();
        }
        let body = Bytes::from(
            serde_json::to_vec(&timed).map_err(|e| EngineError(format!("encode: {e}")))?,
        );
        let subject = self.subject(&channel);
        self.link
            .ask("publish", self.link.client.publish(subject, body))
            .await?;
        outcome.subscribers = sink.subscribers(&channel);
        Ok(outcome)
    }

    async fn subscribe_now(&self, channel: &str) -> Result<(), EngineError> {
        let sink = self.sink()?;
        let ready = {
            let mut channels = self.channels.lock();
            let alive = channels.get(channel).is_some_and(|f| !f.task.is_finished());
            if !alive {
                let (tx, rx) = watch::channel(Ready::Starting);
                let task = tokio::spawn(follow(
                    self.link.clone(),
                    self.subject(channel),
                    channel.to_owned(),
                    self.history.clone(),
                    sink,
                    tx,
                ));
                channels.insert(channel.to_owned(), Follower { ready: rx, task });
            }
            channels.get(channel).expect("just made").ready.clone()
        };
        let up = until_ready(&self.link, ready, channel).await;
        if up.is_err() {
            // A follower that did not come up in time must not deliver
            // beside the next one.
            self.unsubscribe(channel);
        }
        up
    }
}

/// Where a follower stands in its channel's numbering.
struct Position {
    epoch: Arc<str>,
    offset: u64,
}

/// One channel's follower: subscribes, learns the channel's position
/// (after the subscription is in place, so nothing numbered later is
/// missed), then delivers every event in offset order.
async fn follow(
    link: Link,
    subject: String,
    channel: String,
    history: Arc<dyn HistoryStore>,
    sink: Arc<dyn EventSink>,
    ready: watch::Sender<Ready>,
) {
    let started = async {
        let sub = link
            .ask("subscribe", link.client.subscribe(subject))
            .await?;
        link.ask("flush", link.client.flush()).await?;
        let read = history.read(&channel, Some(u64::MAX), 0).await?;
        Ok::<_, EngineError>((sub, read.top))
    };
    let (mut sub, top) = match started.await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Ready::Failed(e));
            return;
        }
    };
    let _ = ready.send(Ready::Up);
    let mut at = Position {
        epoch: Arc::from(top.epoch.as_str()),
        offset: top.offset,
    };
    while let Some(m) = sub.next().await {
        let timed: TimedEvent = match serde_json::from_slice(&m.payload) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, channel, "an event on NATS did not decode; skipped");
                continue;
            }
        };
        let p = Publication::draft(timed.event, timed.timestamp);
        let (Some(offset), Some(epoch)) = (p.event.offset, p.event.epoch.clone()) else {
            sink.deliver(&Arc::new(p));
            continue;
        };
        if epoch != at.epoch {
            // A new history (Redis lost the old one): from its start.
            at = Position { epoch, offset: 0 };
        }
        if offset <= at.offset {
            continue;
        }
        if offset > at.offset + 1 && !fill(&*history, &*sink, &channel, &mut at, offset).await {
            sink.resync();
        }
        sink.deliver(&Arc::new(p));
        at.offset = offset;
    }
}

/// Delivers what Redis holds between `at` and `before` (exclusive);
/// false when something in between could not be read.
async fn fill(
    history: &dyn HistoryStore,
    sink: &dyn EventSink,
    channel: &str,
    at: &mut Position,
    before: u64,
) -> bool {
    let want = (before - at.offset - 1) as usize;
    let read = match history.read(channel, Some(at.offset), want).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, channel, "a gap could not be read from Redis");
            return false;
        }
    };
    if *read.top.epoch != *at.epoch || read.first_held > at.offset + 1 {
        return false;
    }
    for p in read.events {
        match p.event.offset {
            Some(o) if o > at.offset && o < before => {
                sink.deliver(&p);
                at.offset = o;
            }
            _ => {}
        }
    }
    at.offset + 1 == before
}

/// Sends every subscriber through recovery after the NATS link was cut
/// and is back (or a subscription overflowed).
async fn resync_loop(broker: Weak<RelayBroker>, state: Arc<link::LinkState>) {
    loop {
        tokio::select! {
            _ = state.changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let Some(b) = broker.upgrade() else { return };
        if !state.take_missed() {
            continue;
        }
        if let Ok(sink) = b.sink() {
            sink.resync();
        }
        drop(b);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Broker for RelayBroker {
    fn start(&self, sink: Arc<dyn EventSink>, node_id: &str) {
        if self.sink.set(sink.clone()).is_err() {
            return;
        }
        self.store.start(sink, node_id);
    }

    fn health(&self) -> Result<(), EngineError> {
        self.link.health()?;
        self.store.health()
    }

    fn publish(
        &self,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'_, Result<PublishOutcome, EngineError>> {
        Box::pin(self.publish_now(publication, history))
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(self.subscribe_now(channel))
    }

    fn unsubscribe(&self, channel: &str) {
        if let Some(f) = self.channels.lock().remove(channel) {
            f.task.abort();
        }
    }

    fn send_to_user<'a>(
        &'a self,
        user: &'a str,
        publication: Arc<Publication>,
    ) -> BoxFuture<'a, Result<SendOutcome, EngineError>> {
        self.store.send_to_user(user, publication)
    }

    fn attach_user<'a>(
        &'a self,
        user: &'a str,
        register: Register<'a>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Publication>>, EngineError>> {
        self.store.attach_user(user, register)
    }

    fn detach_user(&self, user: &str) {
        self.store.detach_user(user);
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeReport>, EngineError>> {
        self.store.nodes()
    }

    fn queued_for_users(&self) -> usize {
        self.store.queued_for_users()
    }

    fn dropped_for_users(&self) -> u64 {
        self.store.dropped_for_users()
    }

    fn sweep(&self) {
        self.store.sweep();
    }
}
