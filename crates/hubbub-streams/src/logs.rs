//! `logs`: the hub's own warnings and errors, from a
//! [`tracing_subscriber::Layer`] the process installs ([`log_layer`]).
//!
//! The layer never blocks and never publishes: while nobody listens it
//! checks one flag and returns; while someone does, it formats the record
//! into a bounded queue (drop-oldest, counted) that a task publishes from.
//! Records logged while that task publishes (the engine failing, say) are
//! left out, so a failing publication cannot feed itself.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::streams::{Log, LogLevel};
use hubbub_server::Retention;
use tracing::field::{Field, Visit};
use tracing::{Instrument, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::queue::Bounded;
use crate::{Stream, Streams};

/// The span the forwarding task publishes in; records inside it are not
/// forwarded.
const FORWARDING: &str = "hubbub_streams_forwarding";

/// How often the forwarding task looks whether anyone listens (the layer
/// reads the answer from a flag): records logged within this long of the
/// first subscription may be missed.
const LISTEN_CHECK: Duration = Duration::from_millis(250);

/// A record waiting to be published.
struct Record {
    level: LogLevel,
    target: String,
    message: String,
}

struct Feed {
    queue: Bounded<Record>,
    /// Whether anyone listens; set by the forwarding task.
    listening: AtomicBool,
}

/// The tracing layer: add it to the process's subscriber
/// (`registry().with(layer)`).
pub struct LogLayer {
    feed: Arc<Feed>,
}

/// The other end of a [`LogLayer`], for [`Streams::forward_logs`].
#[derive(Clone)]
pub struct LogFeed {
    feed: Arc<Feed>,
}

impl LogFeed {
    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.feed.queue.dropped()
    }
}

/// A layer forwarding warnings and errors into a queue of at most
/// `capacity` records, and the feed to hand to [`Streams::forward_logs`].
pub fn log_layer(capacity: usize) -> (LogLayer, LogFeed) {
    let feed = Arc::new(Feed {
        queue: Bounded::new(capacity),
        listening: AtomicBool::new(false),
    });
    (LogLayer { feed: feed.clone() }, LogFeed { feed })
}

impl<S> tracing_subscriber::Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        // More verbose than `warn` (tracing orders levels by verbosity).
        if *meta.level() > Level::WARN || !self.feed.listening.load(Relaxed) {
            return;
        }
        if let Some(scope) = ctx.event_scope(event) {
            if scope.from_root().any(|span| span.name() == FORWARDING) {
                return;
            }
        }
        let mut text = Text::default();
        event.record(&mut text);
        self.feed.queue.push(Record {
            level: if *meta.level() == Level::ERROR {
                LogLevel::Error
            } else {
                LogLevel::Warn
            },
            target: meta.target().to_owned(),
            message: text.0,
        });
    }
}

/// The message, then the other fields as ` key=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}{rest}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.insert_str(0, value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Streams {
    /// Publishes what `feed`'s layer collects on `logs`, until the node
    /// shuts down. Call once, inside a Tokio runtime.
    pub fn forward_logs(&self, feed: LogFeed) {
        let streams = self.clone();
        let feed = feed.feed;
        tokio::spawn(
            async move {
                let node = streams.inner.node.clone();
                let closed = node.closed();
                tokio::pin!(closed);
                loop {
                    let listening = streams.wanted(Stream::Logs);
                    feed.listening.store(listening, Relaxed);
                    if !listening {
                        // Whatever came in before the flag fell.
                        feed.queue.take_all();
                    }
                    for r in feed.queue.take_all() {
                        let log = Log {
                            node_id: node.node_id().to_owned(),
                            level: r.level,
                            target: r.target,
                            message: r.message,
                        };
                        streams.emit(Stream::Logs, &log, Retention::Transient).await;
                    }
                    tokio::select! {
                        _ = feed.queue.pushed() => {}
                        _ = tokio::time::sleep(LISTEN_CHECK) => {}
                        _ = &mut closed => return,
                    }
                }
            }
            .instrument(tracing::info_span!(FORWARDING)),
        );
    }
}
