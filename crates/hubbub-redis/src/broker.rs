//! The Redis broker: publishing (numbered by a script where the channel
//! keeps history), channel interest through the subscription actors, and
//! user events.

use std::sync::{Arc, OnceLock};

use hubbub_server::engine::{
    BoxFuture, Broker, EngineError, EventSink, HistoryOptions, NodeReport, Publication,
    PublishOutcome, Register, SendOutcome,
};

use crate::pubsub::PubSub;
use crate::scripts::PUBLISH;
use crate::users::{self, LocalUsers};
use crate::{nodes, wire, Core};

/// Moves events between nodes through Redis pub/sub.
///
/// A publish answers with this node's subscriber count: the others are
/// not known without a round trip to every node (HTTP_API.md allows it:
/// "else on this node").
pub struct RedisBroker {
    core: Arc<Core>,
    pubsubs: OnceLock<Vec<PubSub>>,
    users: Arc<LocalUsers>,
}

impl RedisBroker {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        RedisBroker {
            core,
            pubsubs: OnceLock::new(),
            users: Arc::new(LocalUsers::default()),
        }
    }

    /// The subscription actor of the server holding `name`.
    fn pubsub(&self, name: &str) -> Result<&PubSub, EngineError> {
        let all = self
            .pubsubs
            .get()
            .ok_or_else(|| EngineError("the broker was not started".into()))?;
        Ok(&all[self.core.shard_index(name)])
    }

    async fn publish_now(
        &self,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> Result<PublishOutcome, EngineError> {
        let core = &self.core;
        let channel = publication.event.channel.clone();
        let body = wire::body(&publication)?;
        // A store for another broker publishes nothing on pub/sub.
        let topic = if core.fanout {
            core.keys.topic(&channel)
        } else {
            String::new()
        };
        let mut conn = core.conn(&channel);
        let (offset, epoch) = match history {
            Some(opts) => {
                let (offset, epoch): (u64, String) = core
                    .call(
                        "publish",
                        PUBLISH
                            .key(core.keys.history(&channel))
                            .key(core.keys.meta(&channel))
                            .arg(body)
                            .arg(opts.size.max(1))
                            .arg(opts.ttl.as_millis().max(1) as u64)
                            .arg(wire::new_epoch())
                            .arg(&topic)
                            .invoke_async(&mut conn),
                    )
                    .await?;
                (Some(offset), Some(Arc::from(epoch)))
            }
            None if !core.fanout => (None, None),
            None => {
                let line = wire::unnumbered(&body);
                core.call::<u64>(
                    "publish",
                    redis::cmd("PUBLISH")
                        .arg(&topic)
                        .arg(line)
                        .query_async(&mut conn),
                )
                .await?;
                (None, None)
            }
        };
        let subscribers = core.sink.get().map_or(0, |s| s.subscribers(&channel));
        Ok(PublishOutcome {
            offset,
            epoch,
            subscribers,
        })
    }
}

impl Broker for RedisBroker {
    fn start(&self, sink: Arc<dyn EventSink>, node_id: &str) {
        let _ = self.core.sink.set(sink);
        let _ = self.core.node_id.set(node_id.to_owned());
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("the redis engine needs a tokio runtime; it was started outside one");
            return;
        };
        let _guard = rt.enter();
        let all = (0..self.core.shards.len())
            .map(|i| PubSub::spawn(self.core.clone(), i))
            .collect();
        let _ = self.pubsubs.set(all);
        tokio::spawn(nodes::heartbeat_loop(Arc::downgrade(&self.core)));
        tokio::spawn(users::refresh_loop(
            self.core.clone(),
            Arc::downgrade(&self.users),
        ));
    }

    fn health(&self) -> Result<(), EngineError> {
        let all = self
            .pubsubs
            .get()
            .ok_or_else(|| EngineError("the broker was not started".into()))?;
        for (p, shard) in all.iter().zip(&self.core.shards) {
            if !p.connected() {
                return Err(EngineError(format!("redis at {} unreachable", shard.url)));
            }
        }
        Ok(())
    }

    fn publish(
        &self,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'_, Result<PublishOutcome, EngineError>> {
        Box::pin(self.publish_now(publication, history))
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let pubsub = self.pubsub(channel)?;
            pubsub.subscribe(self.core.keys.topic(channel)).await
        })
    }

    fn unsubscribe(&self, channel: &str) {
        if let Ok(p) = self.pubsub(channel) {
            p.unsubscribe(self.core.keys.topic(channel));
        }
    }

    fn send_to_user<'a>(
        &'a self,
        user: &'a str,
        publication: Arc<Publication>,
    ) -> BoxFuture<'a, Result<SendOutcome, EngineError>> {
        Box::pin(async move { users::send(&self.core, user, &publication).await })
    }

    fn attach_user<'a>(
        &'a self,
        user: &'a str,
        register: Register<'a>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Publication>>, EngineError>> {
        Box::pin(async move {
            // The user's server sends live events to this node's inbox
            // there: it must be listening first.
            let ready = match self.pubsub(user) {
                Ok(p) => p.until_connected(self.core.timeout).await,
                Err(e) => Err(e),
            };
            if let Err(e) = ready {
                register();
                return Err(e);
            }
            self.users.attach(&self.core, user, register).await
        })
    }

    fn detach_user(&self, user: &str) {
        self.users.detach(&self.core, user);
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeReport>, EngineError>> {
        Box::pin(nodes::list(&self.core))
    }

    /// Redis holds the queues; this node does not count them.
    fn queued_for_users(&self) -> usize {
        0
    }

    fn dropped_for_users(&self) -> u64 {
        self.core
            .dropped_for_users
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Redis expires what is due by itself.
    fn sweep(&self) {}
}
