//! What the store answers: statistics, history, the summary, rules,
//! alerts, its own size; and the trim that ages values out.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::alerts::AlertRecord;
use crate::stats::{finish, Statistics};
use crate::store::{series_cost, Metrics, Shared};
use crate::types::{MetricsError, NamedRule, Point, StoreStats, Summary};
use crate::window::{now_ms, Window};

impl Metrics {
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
            log_dropped: self
                .inner
                .log
                .as_ref()
                .map_or(0, |l| l.dropped.load(Relaxed)),
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
