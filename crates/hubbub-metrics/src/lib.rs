//! A metrics store with anomaly alerts (HTTP_API.md "Metrics and alerts",
//! PROTOCOL.md section 8; docs/metrics.md), an application on the hub's
//! public library API: the hub's core knows nothing of metrics.
//!
//! - [`Metrics`]: the store. Values come in over `POST /api/metrics`, from
//!   the hub's own recorder and from Rust ([`Metrics::record`],
//!   [`Metrics::record_batch`]); each is readable as soon as the call
//!   returns. Per series: raw points of the last hour, minute buckets of
//!   the last day, hour buckets with a quantile sketch of the last week,
//!   all within one memory budget ([`MetricsConfig::memory_budget_bytes`]).
//! - Alerts: threshold rules ([`Metrics::set_rule`]) and a z-score check on
//!   every value; an alert goes to the `alerts` channel at once and into
//!   [`Metrics::alerts`].
//! - Persistence in `data_dir`: a log and periodic snapshots.
//! - [`install`]: the wiring into a node.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = hubbub_server::Node::new(hubbub_server::Config::default())?;
//! let config = hubbub_metrics::MetricsConfig::from_config(node.config())?;
//! let metrics = hubbub_metrics::install(&node, config)?;
//! metrics.record("orders.latency_ms", 12.5, None)?;
//! node.clone().serve(std::future::pending()).await?;
//! metrics.close();
//! # Ok(()) }
//! ```

mod agg;
mod alerts;
mod budget;
mod codec;
mod config;
mod http;
mod openapi;
mod own;
mod persist;
mod query;
mod series;
mod sketch;
mod snapshot;
mod stats;
mod store;
mod types;
mod window;

pub use alerts::{AlertRecord, Rule, HIGH_Z};
pub use config::MetricsConfig;
pub use http::MAX_POINTS;
pub use own::OWN_METRICS;
pub use sketch::RELATIVE_ACCURACY;
pub use stats::Statistics;
pub use store::Metrics;
pub use types::{MetricsError, NamedRule, Point, StoreStats, Summary, Value};
pub use window::{now_ms, Window};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hubbub_protocol::streams::Alert;
use hubbub_server::{Node, Retention};

/// The channel alerts go to (PROTOCOL.md section 8).
pub const ALERTS_CHANNEL: &str = "alerts";
/// Alerts waiting to be published at most; past it an alert is not
/// published (it is still listed by `GET /api/alerts`), counted in
/// [`StoreStats::alerts_dropped`]. Overflow policy: drop newest.
const ALERT_QUEUE: usize = 1024;

impl Metrics {
    /// A store reading and writing `config.data_dir` (in memory only when
    /// it is empty), with its writer thread running; [`Metrics::close`]
    /// writes what is left.
    pub fn open(config: MetricsConfig) -> std::io::Result<Metrics> {
        config
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        if config.data_dir.is_empty() {
            return Ok(Metrics::new(config));
        }
        let dir = std::path::PathBuf::from(&config.data_dir);
        let m = persist::open(config, &dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = persist::spawn_writer(m.clone(), stop.clone())?;
        *m.inner.writer.lock() = Some((stop, handle));
        Ok(m)
    }

    /// Writes and syncs the log of what was recorded so far (what the
    /// writer thread does every `flush_interval_ms`): once it returns, a
    /// crash loses none of it. Nothing to do for a store in memory only.
    pub fn sync(&self) -> std::io::Result<()> {
        match &self.inner.log {
            Some(log) => log.flush(),
            None => Ok(()),
        }
    }

    /// Stops the writer after a last flush and snapshot (blocking, at most
    /// the time a snapshot takes). Without it, the values of the last
    /// `flush_interval_ms` are lost, as at a crash. Idempotent.
    pub fn close(&self) {
        let w = self.inner.writer.lock().take();
        if let Some((stop, handle)) = w {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

/// Offers the metrics store on `node` (call before it serves): opens it
/// (reading `data_dir`), adds its routes, publishes its alerts on
/// `alerts` and records the hub's own metrics. Returns the store, for the
/// application to record into and to [`Metrics::close`] after the node
/// stopped.
pub fn install(node: &Node, config: MetricsConfig) -> std::io::Result<Metrics> {
    let enabled = config.enabled;
    let metrics = Metrics::open(config)?;
    if !enabled {
        return Ok(metrics);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Alert>(ALERT_QUEUE);
    let _ = metrics.inner.publish.set(tx);
    let n = node.clone();
    tokio::spawn(async move {
        while let Some(alert) = rx.recv().await {
            if let Err(e) = n
                .publish_with(ALERTS_CHANNEL, "alert", &alert, Retention::Namespace)
                .await
            {
                tracing::warn!(error = %e.message, "metrics: publishing an alert failed");
            }
        }
    });
    node.extend_api(http::extension(metrics.clone()));
    own::spawn(node, metrics.clone());
    own::spawn_trim(node, metrics.clone());
    Ok(metrics)
}
