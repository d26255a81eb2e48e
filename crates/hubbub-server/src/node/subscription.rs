//! Subscribing from inside the application: a channel's events as a
//! stream, with what a WebSocket client is promised (offset order, each
//! event once, recovery from a position) and no socket or encoding.
//!
//! An in-process subscriber sits in the hub beside the connections, with a
//! bounded queue of its own. When it falls behind by more than the queue
//! holds (`connection.outbound_queue_messages`), the queue is dropped, as
//! a slow client's connection would be, and the subscription catches up
//! from history by itself, as the client would after reconnecting: the
//! caller sees every event, in order, or a [`SubscriptionError::Gap`] where
//! history no longer reached back.

use std::future::poll_fn;
use std::sync::Arc;

use futures_util::Stream;
use hubbub_protocol::{validate_channel, EventMessage, JsonData, Publisher};

use super::{Error, Node};
use crate::hub::{LocalQueue, Popped, Publication};
use crate::state::Shared;

/// One event of a channel, shared with every other subscriber's copy.
#[derive(Clone)]
pub struct Event(Arc<Publication>);

impl From<Arc<Publication>> for Event {
    fn from(p: Arc<Publication>) -> Self {
        Event(p)
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("channel", &self.channel())
            .field("event_type", &self.event_type())
            .field("offset", &self.offset())
            .field("data", &self.data().get())
            .finish()
    }
}

impl Event {
    /// The event as it goes on the wire.
    pub fn message(&self) -> &EventMessage {
        &self.0.event
    }

    /// Its channel.
    pub fn channel(&self) -> &str {
        &self.0.event.channel
    }

    /// Its type.
    pub fn event_type(&self) -> &str {
        &self.0.event.event_type
    }

    /// Its payload, as JSON text.
    pub fn data(&self) -> &JsonData {
        &self.0.event.data
    }

    /// Its payload, deserialized.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.event.data.get())
    }

    /// Its offset, where the channel keeps history.
    pub fn offset(&self) -> Option<u64> {
        self.0.event.offset
    }

    /// The epoch of that offset.
    pub fn epoch(&self) -> Option<&str> {
        self.0.event.epoch.as_deref()
    }

    /// Who published it, when a client did.
    pub fn publisher(&self) -> Option<&Publisher> {
        self.0.event.publisher.as_ref()
    }

    /// When the hub accepted it, ms since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.0.timestamp
    }
}

/// What interrupted a subscription's stream of events.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubscriptionError {
    /// The subscriber fell behind further than history reached back:
    /// events between the last one taken and the next are lost. The stream
    /// goes on from the channel's current position.
    #[error("events were lost: history no longer reached back to the last one taken")]
    Gap,
    /// The engine failed while catching up; the subscription has ended.
    #[error("{0}")]
    Failed(Error),
}

/// A live subscription to one channel. Dropping it unsubscribes.
pub struct Subscription {
    shared: Arc<Shared>,
    channel: Arc<str>,
    seq: u64,
    queue: Arc<LocalQueue>,
    filter: Option<Arc<[String]>>,
    offset: u64,
    epoch: String,
    recovered: bool,
    ended: bool,
    catch_ups: u64,
}

impl Node {
    /// Subscribes to `channel` from now on: whoever publishes there (a
    /// client, the HTTP API, this application), the events arrive here in
    /// offset order.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let node = hubbub_server::Node::new(hubbub_server::Config::default()).unwrap();
    /// let mut sub = node.subscribe("chat").await.unwrap();
    /// node.publish("chat", "message", &"hi").await.unwrap();
    /// let event = sub.next().await.unwrap().unwrap();
    /// assert_eq!((event.event_type(), event.offset()), ("message", Some(1)));
    /// assert_eq!(event.data_as::<String>().unwrap(), "hi");
    /// # });
    /// ```
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, Error> {
        self.subscribe_with(channel, None, None).await
    }

    /// Subscribes to `channel` from a position an earlier subscription (or
    /// a client) reached: the events after `offset` of `epoch` come first,
    /// when history still holds them ([`Subscription::recovered`] tells).
    /// `event_types` keeps only those types, as the `subscribe` command's.
    pub async fn subscribe_with(
        &self,
        channel: &str,
        since: Option<(u64, &str)>,
        event_types: Option<Vec<String>>,
    ) -> Result<Subscription, Error> {
        validate_channel(channel).map_err(|m| Error::bad_request(format!("channel: {m}")))?;
        if event_types.as_ref().is_some_and(|t| t.is_empty()) {
            return Err(Error::bad_request("event_types must not be empty"));
        }
        let shared = self.shared().clone();
        let max = shared.config.connection.outbound_queue_messages;
        let mut sub = Subscription {
            seq: shared.conns.next_seq(),
            channel: Arc::from(channel),
            queue: Arc::new(LocalQueue::new(max)),
            filter: event_types.map(Into::into),
            offset: 0,
            epoch: String::new(),
            recovered: false,
            ended: false,
            catch_ups: 0,
            shared,
        };
        sub.recovered = sub.sync(since.map(|(o, e)| (o, e.to_owned()))).await?;
        Ok(sub)
    }
}

impl Subscription {
    /// Registers (again) in the hub, syncing: live events park while
    /// history is read; the events after `since` are queued, then the
    /// parked ones newer than what was read. Returns whether `since` was
    /// honoured.
    async fn sync(&mut self, since: Option<(u64, String)>) -> Result<bool, Error> {
        let shared = &self.shared;
        shared
            .hub
            .subscribe_local(&self.channel, self.seq, &self.queue, self.filter.clone());
        let read = match shared
            .open_channel(&self.channel, since.as_ref().map(|s| s.0))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                shared.unsubscribe(&self.channel, self.seq);
                return Err(e.into());
            }
        };
        let top = read.top.clone();
        let after = (!top.epoch.is_empty()).then_some((top.offset, top.epoch.as_str()));
        let filter = self.filter.clone();
        let recovered = match since {
            Some((o, e)) if read.reaches_back_to(o, &e) => {
                (self.offset, self.epoch) = (o, e);
                self.queue.push_recovered(
                    read.events
                        .into_iter()
                        .filter(|p| crate::hub::passes(filter.as_deref(), &p.event.event_type)),
                );
                true
            }
            _ => {
                (self.offset, self.epoch) = (read.top.offset, read.top.epoch);
                false
            }
        };
        shared.hub.finish_sync(&self.channel, self.seq, after);
        Ok(recovered)
    }

    /// The next event, in offset order; `None` once the subscription has
    /// ended (after a [`SubscriptionError::Failed`]).
    pub async fn next(&mut self) -> Option<Result<Event, SubscriptionError>> {
        if self.ended {
            return None;
        }
        loop {
            match poll_fn(|cx| self.queue.poll_pop(cx)).await {
                Popped::Event(p) => {
                    if let (Some(o), Some(e)) = (p.event.offset, &p.event.epoch) {
                        self.offset = o;
                        if *self.epoch != **e {
                            self.epoch = e.to_string();
                        }
                    }
                    return Some(Ok(Event(p)));
                }
                Popped::Lagged => {
                    self.catch_ups += 1;
                    let since = (!self.epoch.is_empty()).then(|| (self.offset, self.epoch.clone()));
                    match self.sync(since).await {
                        Ok(true) => continue,
                        // Without history (no position) or beyond its reach,
                        // what was dropped is lost: said once, then live on.
                        Ok(false) => return Some(Err(SubscriptionError::Gap)),
                        Err(e) => {
                            self.ended = true;
                            return Some(Err(SubscriptionError::Failed(e)));
                        }
                    }
                }
            }
        }
    }

    /// The subscription as a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<Event, SubscriptionError>> + Send {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|e| (e, s)) })
    }

    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Where the subscriber stands: the offset of the last event taken (or
    /// the channel's position when it subscribed) and its epoch; keep it to
    /// subscribe again later from there.
    pub fn position(&self) -> (u64, &str) {
        (self.offset, &self.epoch)
    }

    /// How many times the subscriber fell behind by more than its queue
    /// holds and caught up from history: a sign to consume faster (or
    /// raise `connection.outbound_queue_messages`).
    pub fn catch_ups(&self) -> u64 {
        self.catch_ups
    }

    /// Whether the position given to [`Node::subscribe_with`] was honoured.
    pub fn recovered(&self) -> bool {
        self.recovered
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.unsubscribe(&self.channel, self.seq);
    }
}
