//! [`Metrics`]: the store's handle, for the HTTP routes, the hub's own
//! recorder and embedders alike. Series sit in one map behind a read-write
//! lock (a writer only to add or drop a series), each behind a mutex of its
//! own, so recording touches one series and never waits on a query of
//! another; nothing here awaits while holding a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use hubbub_protocol::streams::Alert;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::alerts::{judge, AlertLog, AlertRecord, Rule, ZCheck};
use crate::budget::Budget;
use crate::config::MetricsConfig;
use crate::persist::Log;
use crate::series::{Limits, Series};
use crate::stats::{finish, Statistics};
use crate::window::{now_ms, Window, RETENTION};

/// Why the store refused: each maps to a protocol error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsError {
    /// `bad_request`: an invalid name, value, timestamp or rule.
    BadRequest(String),
    /// `not_found`: no such metric.
    NotFound(String),
    /// `limit_exceeded`: the memory budget has no room for a new series.
    LimitExceeded(String),
}

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsError::BadRequest(m)
            | MetricsError::NotFound(m)
            | MetricsError::LimitExceeded(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for MetricsError {}

/// One value to record, as `POST /api/metrics` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Value {
    /// The metric's name.
    pub metric: String,
    /// The value (finite).
    pub value: f64,
    /// When, ms since the Unix epoch; now when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// A point of a history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// ms since the Unix epoch.
    pub timestamp: i64,
    /// The value (a mean when downsampled).
    pub value: f64,
}

/// A metric in `GET /api/metrics/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The metric.
    pub metric: String,
    /// Its value of the greatest timestamp.
    pub last: Option<Point>,
    /// Over the last minute.
    #[serde(rename = "1m")]
    pub m1: Statistics,
    /// Over the last five minutes.
    #[serde(rename = "5m")]
    pub m5: Statistics,
    /// Over the last hour.
    #[serde(rename = "1h")]
    pub h1: Statistics,
}

/// A rule with its metric, as `PUT` and `GET /api/alerts/rules` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedRule {
    /// The metric.
    pub metric: String,
    /// The rule (its `z_score` filled in).
    #[serde(flatten)]
    pub rule: Rule,
}

/// The store's size, for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Series held.
    pub series: usize,
    /// Bytes charged to the budget.
    pub bytes: usize,
    /// The budget.
    pub budget_bytes: usize,
    /// Alerts not published because the publisher's queue was full.
    pub alerts_dropped: u64,
}

/// Bytes a rule kept without a series is charged beyond its name.
const RULE_COST: usize = 64;
/// Map entry, `Arc` headers and the map's spare slots of a series.
const SERIES_OVERHEAD: usize = 96;

pub(crate) type Shared = Arc<Mutex<Series>>;

/// The metrics store. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Metrics {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: MetricsConfig,
    pub limits: Limits,
    pub z: ZCheck,
    pub budget: Budget,
    pub series: RwLock<HashMap<Arc<str>, Shared>>,
    /// Rules set explicitly (a series keeps a copy of its own).
    pub rules: RwLock<HashMap<String, Rule>>,
    pub alerts: Mutex<AlertLog>,
    pub publish: OnceLock<tokio::sync::mpsc::Sender<Alert>>,
    pub alerts_dropped: AtomicU64,
    /// The number of the last value recorded (see `Series::seq`).
    pub seq: AtomicU64,
    pub log: Option<Log>,
    /// The persistence thread and its stop flag, while it runs.
    pub writer: Mutex<Option<Writer>>,
}

pub(crate) type Writer = (
    Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
);

/// Bytes a series costs before it holds a value.
pub(crate) fn series_cost(name: &str) -> usize {
    std::mem::size_of::<Mutex<Series>>() + name.len() + SERIES_OVERHEAD
}

impl Metrics {
    /// A store in memory only (`data_dir` is ignored: [`Metrics::open`]
    /// reads and writes it).
    pub fn new(cfg: MetricsConfig) -> Metrics {
        Metrics::with_log(cfg, None)
    }

    pub(crate) fn with_log(cfg: MetricsConfig, log: Option<Log>) -> Metrics {
        Metrics {
            inner: Arc::new(Inner {
                limits: Limits {
                    raw_max_points: cfg.raw_max_points,
                    z_window: cfg.z_window,
                },
                z: ZCheck {
                    default_z: cfg.z_score,
                    min_samples: cfg.z_min_samples,
                },
                budget: Budget::new(cfg.memory_budget_bytes),
                series: RwLock::default(),
                rules: RwLock::default(),
                alerts: Mutex::new(AlertLog {
                    cap: cfg.alert_history,
                    items: Default::default(),
                }),
                publish: OnceLock::new(),
                alerts_dropped: AtomicU64::new(0),
                seq: AtomicU64::new(0),
                log,
                writer: Mutex::new(None),
                cfg,
            }),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &MetricsConfig {
        &self.inner.cfg
    }

    /// Records `value` of `metric` at `timestamp` (ms; now if None). When
    /// this returns, statistics and history include it and its alerts are
    /// in [`Metrics::alerts`] and on their way to the `alerts` channel.
    pub fn record(
        &self,
        metric: &str,
        value: f64,
        timestamp: Option<i64>,
    ) -> Result<(), MetricsError> {
        let now = now_ms();
        let ts = self.check(metric, value, timestamp, now)?;
        self.record_checked(metric, value, ts, now)
    }

    /// Records `values` in order after checking them all: an invalid one
    /// refuses the batch before anything is stored. A series the budget
    /// has no room for stops the batch there (the values before it are
    /// stored; the error says how many).
    pub fn record_batch(&self, values: &[Value]) -> Result<(), MetricsError> {
        if values.len() > self.inner.cfg.max_batch {
            return Err(MetricsError::BadRequest(format!(
                "at most {} values per batch",
                self.inner.cfg.max_batch
            )));
        }
        let now = now_ms();
        let mut ts = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let t = self
                .check(&v.metric, v.value, v.timestamp, now)
                .map_err(|e| MetricsError::BadRequest(format!("value {i}: {e}")))?;
            ts.push(t);
        }
        for (i, (v, t)) in values.iter().zip(ts).enumerate() {
            self.record_checked(&v.metric, v.value, t, now)
                .map_err(|e| match e {
                    MetricsError::LimitExceeded(m) => MetricsError::LimitExceeded(format!(
                        "{m} (the first {i} values were recorded)"
                    )),
                    e => e,
                })?;
        }
        Ok(())
    }

    /// Checks a name, a value and a timestamp; the timestamp to store.
    fn check(
        &self,
        metric: &str,
        value: f64,
        timestamp: Option<i64>,
        now: i64,
    ) -> Result<i64, MetricsError> {
        check_name(metric, self.inner.cfg.max_name_len)?;
        if !value.is_finite() {
            return Err(MetricsError::BadRequest(
                "value must be a finite number".into(),
            ));
        }
        let ts = timestamp.unwrap_or(now);
        if ts > now.saturating_add(self.inner.cfg.max_future_ms) {
            return Err(MetricsError::BadRequest(format!(
                "timestamp {ts} is more than {} ms ahead of the hub's clock",
                self.inner.cfg.max_future_ms
            )));
        }
        if ts <= now - RETENTION {
            return Err(MetricsError::BadRequest(format!(
                "timestamp {ts} is older than the 7 days kept"
            )));
        }
        Ok(ts)
    }

    pub(crate) fn record_checked(
        &self,
        metric: &str,
        value: f64,
        ts: i64,
        now: i64,
    ) -> Result<(), MetricsError> {
        let mut fired = Vec::new();
        loop {
            let s = self.series_for(metric)?;
            let mut g = s.lock();
            let g = &mut *g;
            if g.dead {
                continue;
            }
            judge(
                metric,
                value,
                &g.rule,
                &mut g.state,
                &g.zwin,
                self.inner.z,
                &mut fired,
            );
            let seq = self.inner.seq.fetch_add(1, Relaxed) + 1;
            g.insert(ts, value, seq, self.inner.limits, &self.inner.budget);
            if let Some(log) = &self.inner.log {
                log.value(metric, ts, value, g.seq);
            }
            break;
        }
        for a in fired {
            self.fire(a, now);
        }
        Ok(())
    }

    /// The series of `metric`, made (and charged) if new.
    pub(crate) fn series_for(&self, metric: &str) -> Result<Shared, MetricsError> {
        if let Some(s) = self.inner.series.read().get(metric) {
            return Ok(s.clone());
        }
        let mut map = self.inner.series.write();
        if let Some(s) = map.get(metric) {
            return Ok(s.clone());
        }
        if !self.inner.budget.try_charge(series_cost(metric)) {
            return Err(MetricsError::LimitExceeded(format!(
                "the metrics memory budget ({} bytes) has no room for a new series",
                self.inner.budget.limit()
            )));
        }
        let rule = self
            .inner
            .rules
            .read()
            .get(metric)
            .copied()
            .unwrap_or_default();
        let s: Shared = Arc::new(Mutex::new(Series::new(rule)));
        map.insert(Arc::from(metric), s.clone());
        Ok(s)
    }

    pub(crate) fn get(&self, metric: &str) -> Result<Shared, MetricsError> {
        self.inner
            .series
            .read()
            .get(metric)
            .cloned()
            .ok_or_else(|| MetricsError::NotFound(format!("no metric {metric:?}")))
    }

    fn fire(&self, alert: Alert, now: i64) {
        if let Some(log) = &self.inner.log {
            log.alert(now, &alert);
        }
        self.inner.alerts.lock().push(AlertRecord {
            timestamp: now,
            alert: alert.clone(),
        });
        if let Some(tx) = self.inner.publish.get() {
            if tx.try_send(alert).is_err() {
                self.inner.alerts_dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Statistics of `metric` over `window`, ending now.
    pub fn statistics(&self, metric: &str, window: Window) -> Result<Statistics, MetricsError> {
        let s = self.get(metric)?;
        let g = s.lock().gather(window, now_ms());
        Ok(finish(g))
    }

    /// History of `metric` over `window` ending now, at most `points`
    /// points (at least 1).
    pub fn history(
        &self,
        metric: &str,
        window: Window,
        points: usize,
    ) -> Result<Vec<Point>, MetricsError> {
        let s = self.get(metric)?;
        let h = s.lock().history(window, now_ms(), points.max(1));
        Ok(h.into_iter()
            .map(|(timestamp, value)| Point { timestamp, value })
            .collect())
    }

    /// The metrics by name, at most `limit`: last value and statistics
    /// over 1m, 5m and 1h.
    pub fn summary(&self, limit: usize) -> Vec<Summary> {
        let mut all: Vec<(Arc<str>, Shared)> = self
            .inner
            .series
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all.truncate(limit);
        let now = now_ms();
        all.into_iter()
            .map(|(name, s)| {
                let (last, g1, g5, gh) = {
                    let g = s.lock();
                    (
                        g.last,
                        g.gather(Window::M1, now),
                        g.gather(Window::M5, now),
                        g.gather(Window::H1, now),
                    )
                };
                Summary {
                    metric: name.to_string(),
                    last: last.map(|(timestamp, value)| Point { timestamp, value }),
                    m1: finish(g1),
                    m5: finish(g5),
                    h1: finish(gh),
                }
            })
            .collect()
    }

    /// Sets `metric`'s rule (replacing any); `z_score` absent means the
    /// configured default. Answers the rule as stored.
    pub fn set_rule(&self, metric: &str, mut rule: Rule) -> Result<NamedRule, MetricsError> {
        check_name(metric, self.inner.cfg.max_name_len)?;
        rule.validate().map_err(MetricsError::BadRequest)?;
        rule.z_score = Some(rule.z_score.unwrap_or(self.inner.cfg.z_score));
        self.put_rule(metric, rule)?;
        if let Some(log) = &self.inner.log {
            log.rule(metric, &rule);
        }
        Ok(NamedRule {
            metric: metric.to_owned(),
            rule,
        })
    }

    pub(crate) fn put_rule(&self, metric: &str, rule: Rule) -> Result<(), MetricsError> {
        {
            let mut rules = self.inner.rules.write();
            if !rules.contains_key(metric)
                && !self.inner.budget.try_charge(metric.len() + RULE_COST)
            {
                return Err(MetricsError::LimitExceeded(
                    "the metrics memory budget has no room for a new rule".into(),
                ));
            }
            rules.insert(metric.to_owned(), rule);
        }
        if let Some(s) = self.inner.series.read().get(metric) {
            s.lock().rule = rule;
        }
        Ok(())
    }

    /// The rules set, by metric.
    pub fn rules(&self) -> Vec<NamedRule> {
        let mut v: Vec<NamedRule> = self
            .inner
            .rules
            .read()
            .iter()
            .map(|(m, r)| NamedRule {
                metric: m.clone(),
                rule: *r,
            })
            .collect();
        v.sort_by(|a, b| a.metric.cmp(&b.metric));
        v
    }

    /// The latest alerts, newest first, at most `limit`.
    pub fn alerts(&self, limit: usize) -> Vec<AlertRecord> {
        self.inner.alerts.lock().latest(limit)
    }

    /// Series held, bytes charged, budget.
    pub fn store_stats(&self) -> StoreStats {
        StoreStats {
            series: self.inner.series.read().len(),
            bytes: self.inner.budget.used(),
            budget_bytes: self.inner.budget.limit(),
            alerts_dropped: self.inner.alerts_dropped.load(Relaxed),
        }
    }

    /// Drops what has aged out of every series, and series left empty
    /// (their bytes go back to the budget).
    pub fn trim(&self) {
        let now = now_ms();
        let all: Vec<(Arc<str>, Shared)> = self
            .inner
            .series
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut empty = Vec::new();
        for (name, s) in all {
            let mut g = s.lock();
            g.trim(now, &self.inner.budget);
            if g.is_empty() {
                empty.push(name);
            }
        }
        if empty.is_empty() {
            return;
        }
        let mut map = self.inner.series.write();
        for name in empty {
            let gone = map.get(&name).is_some_and(|s| s.lock().is_empty());
            if gone {
                if let Some(s) = map.remove(&name) {
                    let mut g = s.lock();
                    g.dead = true;
                    let held = g.held;
                    self.inner.budget.release(held + series_cost(&name));
                }
            }
        }
    }
}

/// A metric name: 1 to `max` bytes of ASCII letters, digits, `_ . : -`
/// (it is a path segment of the HTTP API).
pub(crate) fn check_name(metric: &str, max: usize) -> Result<(), MetricsError> {
    if metric.is_empty() || metric.len() > max {
        return Err(MetricsError::BadRequest(format!(
            "a metric name is 1 to {max} bytes"
        )));
    }
    if !metric
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
    {
        return Err(MetricsError::BadRequest(
            "a metric name has only ASCII letters, digits and _ . : -".into(),
        ));
    }
    Ok(())
}
