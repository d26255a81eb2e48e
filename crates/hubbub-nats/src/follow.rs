//! One followed channel: the task that subscribes to its live subject and
//! consumes its history stream, and the only one to deliver its events on
//! this node.
//!
//! Events without history come on the channel's core subject. Events with
//! history come from the channel's stream through an ordered push consumer
//! of our own (ephemeral, no acks, flow control, idle heartbeats): the
//! stream sequence is the offset, so every node delivers them in offset
//! order. The consumer starts right after the stream's last sequence as
//! seen when the node subscribed; when there was no stream then, it starts
//! at sequence 1 of whatever stream appears later (all of it was published
//! after the subscription). A consumer that skips a number, misses its
//! heartbeats or disappears is recreated from the next sequence due.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{push, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{Message, StatusCode, Subscriber};
use futures_util::StreamExt;
use hubbub_server::engine::{EngineError, EventSink};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::channels::{Progress, Ready, Wake};
use crate::link::{failed, no_stream, Link};
use crate::wire::decode_publication;

/// How often an idle consumer says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Silence after which a consumer counts as gone.
const SILENCE: Duration = Duration::from_secs(3 * 5);
/// Wait before trying again to create a consumer that failed.
const RETRY: Duration = Duration::from_secs(1);

/// A follower, before it runs (built by the registry).
pub(crate) struct Follow {
    pub link: Link,
    pub sink: Arc<dyn EventSink>,
    pub channel: String,
    pub token: String,
    pub alive: Arc<AtomicBool>,
    pub ready: watch::Sender<Ready>,
    pub progress: watch::Sender<Progress>,
    pub wake: Arc<Wake>,
}

/// Where the follower stands with the channel's history stream.
enum History {
    /// No stream when last looked for: the first one found is read from
    /// sequence 1.
    Awaiting,
    /// A stream to read from `next` on, with no consumer yet (or one that
    /// failed; tried again at `at`). `checked`: its epoch was just read
    /// from the server, so it need not be checked again first.
    Due {
        epoch: Arc<str>,
        next: u64,
        at: Instant,
        checked: bool,
    },
    /// Reading.
    Reading(Reader),
}

/// An ordered consumer being read.
struct Reader {
    sub: Subscriber,
    name: String,
    epoch: Arc<str>,
    /// The stream sequence due next.
    next: u64,
    /// The last consumer sequence seen.
    cseq: u64,
    heard: Instant,
}

/// What a consumer message asks of the follower.
enum Then {
    Go,
    /// Recreate the consumer from the next sequence due.
    Restart,
}

impl Follow {
    /// Sets up, says so through `ready`, then delivers until aborted.
    pub(crate) async fn run(mut self) {
        let (mut live, mut history) = match self.setup().await {
            Ok(s) => s,
            Err(e) => {
                let _ = self.ready.send(Ready::Failed(e));
                return;
            }
        };
        let _ = self.ready.send(Ready::Up);
        let mut tick = tokio::time::interval(RETRY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let History::Due {
                epoch,
                next,
                at,
                checked,
            } = &history
            {
                if *at <= Instant::now() {
                    history = self.start_reader(epoch.clone(), *next, *checked).await;
                }
            }
            tokio::select! {
                m = live.next() => match m {
                    Some(m) => self.on_live(&m),
                    None => {
                        // The client closed: the next subscribe starts over.
                        let _ = self.ready.send(Ready::Failed(EngineError("the NATS client closed".into())));
                        return;
                    }
                },
                m = next_message(&mut history) => {
                    let History::Reading(reader) = &mut history else { continue };
                    let then = match m {
                        Some(m) => self.on_stream(reader, m).await,
                        None => Then::Restart,
                    };
                    if let Then::Restart = then {
                        history = self.restart(reader);
                    }
                }
                what = self.wake.recv() => match &history {
                    History::Awaiting => history = self.look_again().await,
                    History::Reading(reader) if what & Wake::RELINKED != 0 => {
                        history = self.restart(reader);
                    }
                    History::Reading(reader) if what & Wake::CHANGED != 0 => {
                        let same = matches!(self.look().await, Ok(Some((e, _))) if e == reader.epoch);
                        if !same {
                            history = self.restart(reader);
                        }
                    }
                    _ => {}
                },
                _ = tick.tick() => {
                    if let History::Reading(reader) = &history {
                        if reader.heard.elapsed() > SILENCE {
                            tracing::warn!(channel = %self.channel, "history consumer silent; recreating it");
                            history = self.restart(reader);
                        }
                    }
                }
            }
        }
    }

    /// Subscribes to the live subject and looks for the history stream.
    async fn setup(&mut self) -> Result<(Subscriber, History), EngineError> {
        let link = &self.link;
        let subject = link.names.live_subject(&self.token);
        let live = link
            .ask("subscribe", link.client.subscribe(subject))
            .await?;
        // Once the server has the subscription, live events reach us.
        link.ask("subscribe", link.client.flush()).await?;
        let history = match self.look().await? {
            Some((epoch, last)) => {
                self.progress.send_replace(Progress {
                    epoch: Some(epoch.clone()),
                    delivered: last,
                });
                History::Due {
                    epoch,
                    next: last + 1,
                    at: Instant::now(),
                    checked: true,
                }
            }
            None => History::Awaiting,
        };
        Ok((live, history))
    }

    /// The channel's stream: its epoch and last sequence, or `None`.
    async fn look(&self) -> Result<Option<(Arc<str>, u64)>, EngineError> {
        let link = &self.link;
        let name = link.names.history_stream(&self.token);
        match link
            .within("stream info", link.js.get_stream(&name))
            .await?
        {
            Ok(stream) => {
                let info = stream.cached_info();
                let epoch = crate::history::epoch_of(&info.config)
                    .ok_or_else(|| EngineError(format!("stream {name} has no epoch subject")))?;
                Ok(Some((epoch, info.state.last_sequence)))
            }
            Err(e) if no_stream(&e) => Ok(None),
            Err(e) => Err(failed("stream info", e)),
        }
    }

    /// Awaiting a stream, woken: reads a stream found now from sequence 1.
    async fn look_again(&self) -> History {
        match self.look().await {
            Ok(Some((epoch, _))) => {
                self.progress.send_replace(Progress {
                    epoch: Some(epoch.clone()),
                    delivered: 0,
                });
                History::Due {
                    epoch,
                    next: 1,
                    at: Instant::now(),
                    checked: true,
                }
            }
            Ok(None) => History::Awaiting,
            Err(e) => {
                // The wake is lost; the next one (or the resync after the
                // link comes back) looks again.
                tracing::warn!(channel = %self.channel, error = %e, "history stream lookup failed");
                History::Awaiting
            }
        }
    }

    /// Creates a consumer reading from `next` of the stream of `epoch`;
    /// when the stream was replaced meanwhile, reads the new one from its
    /// start (and the node's subscribers recover: events of the old one
    /// may be lost).
    async fn start_reader(&self, epoch: Arc<str>, next: u64, checked: bool) -> History {
        let (epoch, next) = if checked {
            (epoch, next)
        } else {
            match self.look().await {
                Ok(Some((now, _))) if now == epoch => (epoch, next),
                Ok(Some((now, _))) => {
                    tracing::warn!(channel = %self.channel, "history stream replaced");
                    self.sink.resync();
                    self.progress.send_replace(Progress {
                        epoch: Some(now.clone()),
                        delivered: 0,
                    });
                    (now, 1)
                }
                Ok(None) => {
                    tracing::warn!(channel = %self.channel, "history stream disappeared");
                    self.sink.resync();
                    return History::Awaiting;
                }
                Err(e) => {
                    tracing::warn!(channel = %self.channel, error = %e, "history stream lookup failed; retrying");
                    return History::Due {
                        epoch,
                        next,
                        at: Instant::now() + RETRY,
                        checked: false,
                    };
                }
            }
        };
        match self.create_consumer(next).await {
            Ok(Some((sub, name))) => History::Reading(Reader {
                sub,
                name,
                epoch,
                next,
                cseq: 0,
                heard: Instant::now(),
            }),
            Ok(None) => {
                // The stream is gone: events after the last one delivered
                // may be lost with it.
                tracing::warn!(channel = %self.channel, "history stream disappeared");
                self.sink.resync();
                History::Awaiting
            }
            Err(e) => {
                tracing::warn!(channel = %self.channel, error = %e, "history consumer not created; retrying");
                History::Due {
                    epoch,
                    next,
                    at: Instant::now() + RETRY,
                    checked: false,
                }
            }
        }
    }

    /// The consumer's subscription and name; `None` when there is no stream.
    async fn create_consumer(
        &self,
        next: u64,
    ) -> Result<Option<(Subscriber, String)>, EngineError> {
        let link = &self.link;
        let inbox = link.client.new_inbox();
        // Subscribed before the consumer exists, so nothing it pushes is lost.
        let sub = link
            .ask("subscribe", link.client.subscribe(inbox.clone()))
            .await?;
        let stream = link
            .js
            .get_stream_no_info(link.names.history_stream(&self.token))
            .await
            .map_err(|e| failed("stream", e))?;
        let config = push::Config {
            deliver_subject: inbox,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: next,
            },
            ack_policy: AckPolicy::None,
            flow_control: true,
            idle_heartbeat: HEARTBEAT,
            memory_storage: true,
            num_replicas: 1,
            inactive_threshold: Duration::from_secs(30),
            description: Some(format!("hubbub follower of {}", self.channel)),
            ..Default::default()
        };
        match link
            .within("create consumer", stream.create_consumer(config))
            .await?
        {
            Ok(consumer) => Ok(Some((sub, consumer.cached_info().name.clone()))),
            Err(e) => match e.kind() {
                jetstream::stream::ConsumerErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(None)
                }
                _ => Err(failed("create consumer", e)),
            },
        }
    }

    /// Drops `reader`'s consumer (the server forgets it anyway once no one
    /// listens) and schedules a new one from where it stopped.
    fn restart(&self, reader: &Reader) -> History {
        let js = self.link.js.clone();
        let stream = self.link.names.history_stream(&self.token);
        let name = reader.name.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                js.delete_consumer_from_stream(&name, &stream),
            )
            .await;
        });
        History::Due {
            epoch: reader.epoch.clone(),
            next: reader.next,
            at: Instant::now(),
            checked: false,
        }
    }

    fn on_live(&self, m: &Message) {
        match decode_publication(&m.payload, None) {
            Ok(p) if p.event.channel == self.channel => self.deliver(p),
            Ok(_) => {} // a channel whose token collides with ours
            Err(e) => {
                tracing::warn!(channel = %self.channel, error = %e, "undecodable live event skipped")
            }
        }
    }

    /// One message from the consumer: an event, a heartbeat or a flow
    /// control request.
    async fn on_stream(&self, reader: &mut Reader, m: Message) -> Then {
        reader.heard = Instant::now();
        match m.status {
            Some(StatusCode::IDLE_HEARTBEAT) => return self.on_heartbeat(reader, &m).await,
            Some(status) => {
                tracing::debug!(channel = %self.channel, %status, "consumer status");
                return Then::Restart;
            }
            None => {}
        }
        let js_message = jetstream::Message {
            message: m,
            context: self.link.js.clone(),
        };
        let (sseq, cseq) = match js_message.info() {
            Ok(i) => (i.stream_sequence, i.consumer_sequence),
            Err(e) => {
                tracing::warn!(channel = %self.channel, error = %e, "consumer message without sequence");
                return Then::Restart;
            }
        };
        if cseq != reader.cseq + 1 {
            return Then::Restart; // a message of this consumer went missing
        }
        if js_message.message.subject.rsplit('.').next() != Some(&*reader.epoch) {
            return Then::Restart; // another stream under the same name
        }
        reader.cseq = cseq;
        if sseq < reader.next {
            return Then::Go; // delivered already
        }
        if sseq > reader.next {
            // Numbers between were dropped (size or TTL) before this node
            // took them: its subscribers must recover.
            tracing::warn!(channel = %self.channel, from = reader.next, to = sseq - 1, "history events missed");
            self.sink.resync();
        }
        reader.next = sseq + 1;
        let m = &js_message.message;
        // A consumer reads one stream, whose one subject names its epoch.
        let epoch = reader.epoch.clone();
        match decode_publication(&m.payload, Some((sseq, epoch.clone()))) {
            Ok(p) if p.event.channel == self.channel => self.deliver(p),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(channel = %self.channel, offset = sseq, error = %e, "undecodable event skipped")
            }
        }
        self.progress.send_modify(|p| {
            p.epoch = Some(epoch);
            p.delivered = sseq;
        });
        Then::Go
    }

    async fn on_heartbeat(&self, reader: &Reader, m: &Message) -> Then {
        let headers = m.headers.as_ref();
        // A flow control request (or a heartbeat saying the consumer is
        // stalled waiting for one) wants an empty reply.
        let reply = m.reply.as_ref().map(|r| r.to_string()).or_else(|| {
            headers
                .and_then(|h| h.get("Nats-Consumer-Stalled"))
                .map(|v| v.as_str().to_owned())
        });
        if let Some(reply) = reply {
            let _ = self
                .link
                .within(
                    "flow control",
                    self.link.client.publish(reply, bytes::Bytes::new()),
                )
                .await;
        }
        let last = headers
            .and_then(|h| h.get("Nats-Last-Consumer"))
            .and_then(|v| v.as_str().parse::<u64>().ok());
        match last {
            Some(n) if n != reader.cseq => Then::Restart,
            _ => Then::Go,
        }
    }

    fn deliver(&self, p: hubbub_server::engine::Publication) {
        if self.alive.load(SeqCst) {
            self.sink.deliver(&Arc::new(p));
        }
    }
}

/// The reader's next message; pending forever when there is no reader.
async fn next_message(history: &mut History) -> Option<Message> {
    match history {
        History::Reading(r) => r.sub.next().await,
        _ => std::future::pending().await,
    }
}
