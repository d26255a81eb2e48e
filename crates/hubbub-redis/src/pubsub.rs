//! One subscription actor per Redis server: it owns the pub/sub
//! connection, subscribes and unsubscribes in the order asked, delivers
//! what arrives to the node, and reconnects with backoff. Other code
//! reaches it through [`PubSub`], a cloneable handle.
//!
//! Its command queue is unbounded in type but bounded in practice: a
//! subscribe waits for its answer, so at most one per subscribing task is
//! queued, and unsubscribes are at most one per channel the node had.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hubbub_server::engine::EngineError;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{users, wire, Core};

enum Command {
    Subscribe(String, oneshot::Sender<Result<(), EngineError>>),
    Unsubscribe(String),
}

/// The handle of one server's subscription actor.
#[derive(Clone)]
pub(crate) struct PubSub {
    tx: mpsc::UnboundedSender<Command>,
    connected: watch::Receiver<bool>,
}

impl PubSub {
    /// Starts the actor for shard `index` of `core`.
    pub(crate) fn spawn(core: Arc<Core>, index: usize) -> PubSub {
        let (tx, rx) = mpsc::unbounded_channel();
        let (up, connected) = watch::channel(false);
        let actor = Actor {
            core,
            index,
            rx,
            connected: up,
            wanted: HashSet::new(),
        };
        tokio::spawn(actor.run());
        PubSub { tx, connected }
    }

    /// Resolves once events published to `topic` from now on reach this node.
    pub(crate) async fn subscribe(&self, topic: String) -> Result<(), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Subscribe(topic, tx))
            .map_err(|_| EngineError("redis subscriber stopped".into()))?;
        rx.await
            .map_err(|_| EngineError("redis subscriber stopped".into()))?
    }

    /// Queued behind earlier commands; does not wait.
    pub(crate) fn unsubscribe(&self, topic: String) {
        let _ = self.tx.send(Command::Unsubscribe(topic));
    }

    /// Whether the subscription link is up.
    pub(crate) fn connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits (within `timeout`) until the link is up, so that this node's
    /// inbox hears what is sent to it: a node registering a user before
    /// its inbox listens would be sent events nobody receives.
    pub(crate) async fn until_connected(&self, timeout: Duration) -> Result<(), EngineError> {
        let mut rx = self.connected.clone();
        let up = matches!(
            tokio::time::timeout(timeout, rx.wait_for(|up| *up)).await,
            Ok(Ok(_))
        );
        if up {
            Ok(())
        } else {
            Err(EngineError("redis subscription link not up".into()))
        }
    }
}

struct Actor {
    core: Arc<Core>,
    index: usize,
    rx: mpsc::UnboundedReceiver<Command>,
    connected: watch::Sender<bool>,
    /// Topics this node wants, resubscribed after a reconnect.
    wanted: HashSet<String>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

impl Actor {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut was_connected = false;
        loop {
            match self.connect().await {
                Ok((sink, stream)) => {
                    backoff = BACKOFF_MIN;
                    self.connected.send_replace(true);
                    if was_connected {
                        tracing::warn!(server = %self.url(), "redis subscription link restored");
                        // Whatever was published while the link was down
                        // did not reach this node.
                        if let Some(s) = self.core.sink.get() {
                            s.resync();
                        }
                    }
                    was_connected = true;
                    if self.serve(sink, stream).await.is_break() {
                        return;
                    }
                    self.connected.send_replace(false);
                    tracing::warn!(server = %self.url(), "redis subscription link lost; reconnecting");
                }
                Err(e) => {
                    self.connected.send_replace(false);
                    tracing::debug!(server = %self.url(), error = %e, "redis subscription: cannot connect");
                }
            }
            // Waiting to retry: subscribes fail at once (`unavailable`)
            // rather than hang; unsubscribes are taken.
            let pause = tokio::time::sleep(backoff);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    cmd = self.rx.recv() => match cmd {
                        None => return,
                        Some(Command::Subscribe(_, tx)) => {
                            let _ = tx.send(Err(EngineError("redis unreachable".into())));
                        }
                        Some(Command::Unsubscribe(t)) => {
                            self.wanted.remove(&t);
                        }
                    }
                }
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn url(&self) -> &str {
        &self.core.shards[self.index].url
    }

    /// A fresh pub/sub connection with the inbox and every wanted topic.
    async fn connect(
        &mut self,
    ) -> Result<(redis::aio::PubSubSink, redis::aio::PubSubStream), EngineError> {
        let client = self.core.shards[self.index].client.clone();
        let pubsub = self.core.call("connect", client.get_async_pubsub()).await?;
        let (mut sink, stream) = pubsub.split();
        let mut topics: Vec<String> = self.wanted.iter().cloned().collect();
        topics.push(self.core.keys.inbox(self.core.node_id()));
        for chunk in topics.chunks(1000) {
            self.core.call("subscribe", sink.subscribe(chunk)).await?;
        }
        Ok((sink, stream))
    }

    /// Runs one connection until it fails (`Continue`) or the node is gone
    /// (`Break`).
    async fn serve(
        &mut self,
        mut sink: redis::aio::PubSubSink,
        mut stream: redis::aio::PubSubStream,
    ) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow::{Break, Continue};
        let mut ping = tokio::time::interval(self.core.heartbeat);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.reset();
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(m) => self.deliver(&m),
                    None => return Continue(()),
                },
                cmd = self.rx.recv() => match cmd {
                    None => return Break(()),
                    Some(Command::Subscribe(t, tx)) => {
                        if self.wanted.contains(&t) {
                            let _ = tx.send(Ok(()));
                            continue;
                        }
                        match self.core.call("subscribe", sink.subscribe(&t)).await {
                            Ok(()) => {
                                self.wanted.insert(t);
                                let _ = tx.send(Ok(()));
                            }
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return Continue(());
                            }
                        }
                    }
                    Some(Command::Unsubscribe(t)) => {
                        if self.wanted.remove(&t)
                            && self.core.call("unsubscribe", sink.unsubscribe(&t)).await.is_err()
                        {
                            return Continue(());
                        }
                    }
                },
                // A link cut without a reset (a network partition) shows
                // only when a ping goes unanswered.
                _ = ping.tick() => {
                    // In subscriber mode the answer is an array, not
                    // "PONG": any answer will do.
                    if self.core.call::<redis::Value>("ping", sink.ping()).await.is_err() {
                        return Continue(());
                    }
                }
            }
        }
    }

    fn deliver(&self, msg: &redis::Msg) {
        let Some(sink) = self.core.sink.get() else {
            return;
        };
        let topic = msg.get_channel_name();
        let payload = msg.get_payload_bytes();
        if self.core.keys.channel_of(topic).is_some() {
            match wire::decode(payload) {
                Ok(p) => {
                    sink.deliver(&Arc::new(p));
                }
                Err(e) => tracing::warn!(topic, error = %e, "undecodable event from redis skipped"),
            }
        } else {
            users::deliver_from_inbox(&self.core, sink.as_ref(), payload);
        }
    }
}
