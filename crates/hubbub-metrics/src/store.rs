//! [`Metrics`]: the store's handle, for the HTTP routes, the hub's own
//! recorder and embedders alike. Series sit in one map behind a read-write
//! lock (a writer only to add or drop a series), each behind a mutex of its
//! own, so recording touches one series and never waits on a query of
//! another; nothing here awaits while holding a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use crate::alerts::{judge, AlertLog, AlertRecord, Rule, ZCheck};
use crate::budget::Budget;
use crate::config::MetricsConfig;
use crate::persist::Log;
use crate::series::{Limits, Series};
use crate::types::{MetricsError, NamedRule, Value};
use crate::window::{now_ms, RETENTION};
use hubbub_protocol::streams::Alert;
use parking_lot::{Mutex, RwLock};

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
