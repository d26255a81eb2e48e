//! Logs to stderr, so that stdout stays for what scripts read (the address
//! block of `serve`, the JSON lines of the clients): as text for a
//! terminal, or as one JSON object per line (`--log-format json`) for the
//! log stacks people run, each with the node's id.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: one readable line per event.
    #[default]
    Text,
    /// For log stacks: one JSON object per line, with `node_id`.
    Json,
}

static NODE_ID: OnceLock<String> = OnceLock::new();

/// The other end of the layer that forwards warnings and errors to the
/// `logs` stream (`serve` hands it to `hubbub-streams`).
static LOG_FEED: OnceLock<hubbub_streams::LogFeed> = OnceLock::new();

/// Warnings and errors waiting for the `logs` stream at most; beyond it the
/// oldest are dropped (only while an admin listens: otherwise none is kept).
const LOG_QUEUE: usize = 1024;

/// The feed of the `logs` layer, once [`init_with`] installed it.
pub fn log_feed() -> Option<hubbub_streams::LogFeed> {
    LOG_FEED.get().cloned()
}

/// Names the node in every JSON line from now on.
pub fn set_node_id(id: &str) {
    let _ = NODE_ID.set(id.to_owned());
}

/// Installs the subscriber, filtered by `HUBBUB_LOG`, else `RUST_LOG`,
/// else `default` (the hub wants `info`; clients only want problems). A
/// filter is a level (`debug`) and/or `target=level` pairs
/// (`hubbub_server=debug,warn`), comma-separated; targets are matched by
/// prefix, without the regular expressions of a full `EnvFilter`, which
/// would double the logging stack's build time for a feature nobody here
/// uses.
pub fn init(default: &str) {
    init_with(default, LogFormat::Text);
}

/// As [`init`], in `format`.
pub fn init_with(default: &str, format: LogFormat) {
    let spec = ["HUBBUB_LOG", "RUST_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    let fallback = || default.parse::<Targets>().expect("a valid default filter");
    let (filter, bad) = match spec {
        Some(s) => match s.parse::<Targets>() {
            Ok(f) => (f, None),
            Err(e) => (fallback(), Some(format!("{s:?}: {e}"))),
        },
        None => (fallback(), None),
    };
    let text = (format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(JsonLines)
    });
    let (logs, feed) = hubbub_streams::log_layer(LOG_QUEUE);
    let _ = LOG_FEED.set(feed);
    tracing_subscriber::registry()
        .with(text)
        .with(json)
        .with(logs)
        .with(filter)
        .init();
    if let Some(why) = bad {
        tracing::warn!("ignoring log filter {why}; using {default:?}");
    }
}

/// `{"timestamp": ms, "level", "target", "node_id", "message", fields...}`.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut map = serde_json::Map::new();
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        map.insert("timestamp".into(), ms.into());
        map.insert("level".into(), meta.level().as_str().into());
        map.insert("target".into(), meta.target().into());
        if let Some(id) = NODE_ID.get() {
            map.insert("node_id".into(), id.as_str().into());
        }
        event.record(&mut Fields(&mut map));
        writeln!(writer, "{}", serde_json::Value::Object(map))
    }
}

struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}
