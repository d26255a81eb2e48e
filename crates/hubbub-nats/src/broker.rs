//! The engine's [`Broker`]: publishing, channel interest and user events,
//! over the parts in the other modules.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use hubbub_server::engine::{
    BoxFuture, Broker, EngineError, EventSink, HistoryOptions, NodeReport, Publication,
    PublishOutcome, Register, SendOutcome,
};

use crate::names::channel_token;
use crate::wire::encode_publication;
use crate::Inner;

/// The engine's [`Broker`].
pub(crate) struct NatsBroker(pub(crate) Arc<Inner>);

impl Inner {
    async fn publish(
        &self,
        p: Publication,
        history: Option<HistoryOptions>,
    ) -> Result<PublishOutcome, EngineError> {
        let sink = self.sink()?;
        // Fail at once while NATS is away rather than buffer in the client.
        self.link.health()?;
        let channel = p.event.channel.clone();
        match history {
            Some(opts) => {
                let (offset, epoch) = self.append_history(&p, opts).await?;
                Ok(PublishOutcome {
                    offset: Some(offset),
                    epoch: Some(epoch),
                    subscribers: sink.subscribers(&channel),
                })
            }
            None => {
                let subject = self.link.names.live_subject(&channel_token(&channel));
                self.link
                    .ask(
                        "publish",
                        self.link.client.publish(subject, encode_publication(&p)),
                    )
                    .await?;
                Ok(PublishOutcome {
                    offset: None,
                    epoch: None,
                    subscribers: sink.subscribers(&channel),
                })
            }
        }
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        let sink = self.sink()?;
        let ready = self
            .channels
            .follow(&self.link, sink, &self.runtime, channel);
        crate::channels::until_ready(&self.link, ready, channel).await
    }
}

impl Broker for NatsBroker {
    fn start(&self, sink: Arc<dyn EventSink>, node_id: &str) {
        self.0.start(sink, node_id);
    }

    fn health(&self) -> Result<(), EngineError> {
        self.0.link.health()
    }

    fn publish(
        &self,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'_, Result<PublishOutcome, EngineError>> {
        Box::pin(self.0.publish(publication, history))
    }

    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(self.0.subscribe(channel))
    }

    fn unsubscribe(&self, channel: &str) {
        self.0.channels.unfollow(channel);
    }

    fn send_to_user<'a>(
        &'a self,
        user: &'a str,
        publication: Arc<Publication>,
    ) -> BoxFuture<'a, Result<SendOutcome, EngineError>> {
        Box::pin(self.0.send_to_user(user, publication))
    }

    fn attach_user<'a>(
        &'a self,
        user: &'a str,
        register: Register<'a>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Publication>>, EngineError>> {
        Box::pin(self.0.attach_user(user, register))
    }

    fn detach_user(&self, user: &str) {
        self.0.detach_user(user);
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeReport>, EngineError>> {
        Box::pin(self.0.nodes())
    }

    fn queued_for_users(&self) -> usize {
        self.0.users.queued.load(Relaxed) as usize
    }

    fn dropped_for_users(&self) -> u64 {
        self.0.users.dropped.load(Relaxed)
    }

    fn sweep(&self) {
        // JetStream expires queued events and history itself; figures are
        // refreshed by the history store's sweep, which runs beside this.
    }
}
