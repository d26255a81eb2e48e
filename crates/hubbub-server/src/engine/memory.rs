//! The in-memory broker: one node, so "every interested node" is this one
//! and delivery happens inside `publish`, under the channel's history lock
//! where it keeps history, so deliveries leave in offset order even when
//! several publishers race on one channel.

use std::future::ready;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{
    BoxFuture, Broker, EngineError, EventSink, HistoryOptions, PublishOutcome, Register,
    SendOutcome,
};
use crate::history::MemoryHistory;
use crate::hub::Publication;
use crate::users::UserQueues;

/// The broker of a single node, over [`MemoryHistory`] and per-user queues.
pub struct MemoryBroker {
    history: Arc<MemoryHistory>,
    users: UserQueues,
    sink: OnceLock<Arc<dyn EventSink>>,
}

impl MemoryBroker {
    /// A broker numbering into `history`, keeping at most `user_queue`
    /// events per offline user, each for `user_ttl`.
    pub fn new(history: Arc<MemoryHistory>, user_queue: usize, user_ttl: Duration) -> Self {
        MemoryBroker {
            history,
            users: UserQueues::new(user_queue, user_ttl),
            sink: OnceLock::new(),
        }
    }

    fn sink(&self) -> Result<&Arc<dyn EventSink>, EngineError> {
        self.sink
            .get()
            .ok_or_else(|| EngineError("the broker was not started".into()))
    }

    fn publish_now(
        &self,
        mut publication: Publication,
        history: Option<HistoryOptions>,
    ) -> Result<PublishOutcome, EngineError> {
        let sink = self.sink()?;
        match history {
            Some(opts) => {
                let channel = publication.event.channel.clone();
                Ok(self.history.append_with(
                    &channel,
                    opts,
                    Instant::now(),
                    |offset, epoch| {
                        publication.event.offset = Some(offset);
                        publication.event.epoch = Some(epoch.clone());
                        Arc::new(publication)
                    },
                    |p| PublishOutcome {
                        offset: p.event.offset,
                        epoch: p.event.epoch.clone(),
                        subscribers: sink.deliver(p),
                    },
                ))
            }
            None => {
                let p = Arc::new(publication);
                Ok(PublishOutcome {
                    offset: None,
                    epoch: None,
                    subscribers: sink.deliver(&p),
                })
            }
        }
    }
}

impl Broker for MemoryBroker {
    fn start(&self, sink: Arc<dyn EventSink>, _node_id: &str) {
        let _ = self.sink.set(sink);
    }

    fn publish(
        &self,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'_, Result<PublishOutcome, EngineError>> {
        Box::pin(ready(self.publish_now(publication, history)))
    }

    fn subscribe<'a>(&'a self, _channel: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(ready(Ok(())))
    }

    fn unsubscribe(&self, _channel: &str) {}

    fn send_to_user<'a>(
        &'a self,
        user: &'a str,
        publication: Arc<Publication>,
    ) -> BoxFuture<'a, Result<SendOutcome, EngineError>> {
        let out = self.sink().map(|sink| {
            self.users
                .send(user, publication, |p| sink.deliver_to_user(user, p))
        });
        Box::pin(ready(out))
    }

    fn attach_user<'a>(
        &'a self,
        user: &'a str,
        register: Register<'a>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Publication>>, EngineError>> {
        Box::pin(ready(Ok(self.users.attach(user, register))))
    }

    fn queued_for_users(&self) -> usize {
        self.users.queued()
    }

    fn dropped_for_users(&self) -> u64 {
        self.users.dropped()
    }

    fn sweep(&self) {
        self.users.sweep();
    }

    /// Numbering and delivery are one step under the channel's history
    /// lock: nothing a read included arrives after it.
    fn delivers_late(&self) -> bool {
        false
    }
}
