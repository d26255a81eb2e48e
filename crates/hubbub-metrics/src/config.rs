//! `[apps.metrics]`: the metrics store's budget, tiers, alert settings and
//! data directory (docs/metrics.md), set like any other key (`--set
//! apps.metrics.memory_budget_bytes=134217728`).

use serde::{Deserialize, Serialize};

/// How much the store may hold, how values are judged, where it persists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether `/api/metrics` and `/api/alerts` are offered and the hub
    /// records its own metrics.
    pub enabled: bool,
    /// Bytes the store's structures may hold in all; a new series that
    /// would not fit is refused (`limit_exceeded`), a full series keeps
    /// less raw detail (docs/metrics.md, "Memory").
    pub memory_budget_bytes: usize,
    /// How often the hub records its own metrics, ms; 0: never.
    pub record_interval_ms: u64,
    /// Raw points a series keeps at most (its last hour at full
    /// resolution up to this many; older detail lives in the buckets).
    pub raw_max_points: usize,
    /// The z-score limit of a metric without a rule of its own.
    pub z_score: f64,
    /// Values the z-score is computed over: the metric's last ones before
    /// the value judged, in arrival order.
    pub z_window: usize,
    /// Values needed in that window before a value is judged at all.
    pub z_min_samples: usize,
    /// Alerts kept for `GET /api/alerts`.
    pub alert_history: usize,
    /// Longest metric name, bytes.
    pub max_name_len: usize,
    /// Most values in one `POST /api/metrics`.
    pub max_batch: usize,
    /// How far ahead of the hub's clock a timestamp may be, ms.
    pub max_future_ms: i64,
    /// Where the store persists; empty: memory only.
    pub data_dir: String,
    /// How often the log of new values is written and synced, ms.
    pub flush_interval_ms: u64,
    /// How often the whole store is written as a snapshot (and the log
    /// behind it dropped), seconds.
    pub snapshot_interval_s: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            memory_budget_bytes: 64 << 20,
            record_interval_ms: 5_000,
            raw_max_points: 4_096,
            z_score: 2.5,
            z_window: 60,
            z_min_samples: 10,
            alert_history: 1_000,
            max_name_len: 200,
            max_batch: 10_000,
            max_future_ms: 60_000,
            data_dir: String::new(),
            flush_interval_ms: 1_000,
            snapshot_interval_s: 300,
        }
    }
}

impl MetricsConfig {
    /// The section from the node's configuration (defaults when absent);
    /// an error names what is wrong, for the binary to exit 2 with.
    pub fn from_config(config: &hubbub_server::Config) -> Result<Self, String> {
        let c: MetricsConfig = config.app_section("metrics")?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the values; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("memory_budget_bytes", self.memory_budget_bytes as u64),
            ("raw_max_points", self.raw_max_points as u64),
            ("z_window", self.z_window as u64),
            ("max_name_len", self.max_name_len as u64),
            ("max_batch", self.max_batch as u64),
            ("flush_interval_ms", self.flush_interval_ms),
            ("snapshot_interval_s", self.snapshot_interval_s),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("apps.metrics.{k} must be positive"));
        }
        if !(self.z_score.is_finite() && self.z_score > 0.0) {
            return Err("apps.metrics.z_score must be a positive number".into());
        }
        if self.z_min_samples > self.z_window {
            return Err("apps.metrics.z_min_samples must not exceed z_window".into());
        }
        if self.max_future_ms < 0 {
            return Err("apps.metrics.max_future_ms must not be negative".into());
        }
        if self.max_name_len > 1_000 {
            return Err("apps.metrics.max_name_len must be at most 1000".into());
        }
        Ok(())
    }
}
