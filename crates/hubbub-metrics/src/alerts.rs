//! Threshold rules and the z-score check (PROTOCOL.md section 8, the
//! alert paragraph): every recorded value is judged at once; an alert
//! fires when its metric enters an alerting state (above `above`, below
//! `below`, strictly; |z| over `z_score`), not again while it stays there,
//! and again after a value back within bounds. Each kind has its own state.

use std::collections::VecDeque;

use hubbub_protocol::streams::{Alert, Severity};
use serde::{Deserialize, Serialize};

/// |z| beyond which an anomaly is `high` (HTTP_API.md), else `medium`.
pub const HIGH_Z: f64 = 3.5;

/// A metric's rule, as `PUT /api/alerts/rules/{metric}` sets it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Alert when a value is strictly above this.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub above: Option<f64>,
    /// Alert when a value is strictly below this.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub below: Option<f64>,
    /// Alert when a value's |z| over the window is above this; `None` in a
    /// request means the configured default.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
    pub z_score: Option<f64>,
}

impl Rule {
    /// Checks the rule: finite bounds, `below < above`, `z_score > 0`; the
    /// message names what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            ("above", self.above),
            ("below", self.below),
            ("z_score", self.z_score),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(format!("{k} must be a finite number"));
            }
        }
        if let (Some(a), Some(b)) = (self.above, self.below) {
            if b >= a {
                return Err("below must be less than above".into());
            }
        }
        if self.z_score.is_some_and(|z| z <= 0.0) {
            return Err("z_score must be greater than 0".into());
        }
        Ok(())
    }
}

/// Which alerting states a metric is in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AlertState {
    pub above: bool,
    pub below: bool,
    pub anomaly: bool,
}

/// The z-score check's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ZCheck {
    pub default_z: f64,
    pub min_samples: usize,
}

/// Judges `v` of `metric` against `rule` and the window `zwin` (the values
/// before it), updating `state`; pushes the alerts that fire.
pub(crate) fn judge(
    metric: &str,
    v: f64,
    rule: &Rule,
    state: &mut AlertState,
    zwin: &VecDeque<f64>,
    z: ZCheck,
    out: &mut Vec<Alert>,
) {
    let threshold = |threshold: f64| Alert::ThresholdExceeded {
        metric: metric.to_owned(),
        value: v,
        threshold,
        severity: Severity::High,
    };
    if let Some(a) = rule.above {
        let now = v > a;
        if now && !state.above {
            out.push(threshold(a));
        }
        state.above = now;
    }
    if let Some(b) = rule.below {
        let now = v < b;
        if now && !state.below {
            out.push(threshold(b));
        }
        state.below = now;
    }
    if zwin.len() < z.min_samples.max(2) {
        return;
    }
    let limit = rule.z_score.unwrap_or(z.default_z);
    let score = z_score(zwin, v);
    let now = score.abs() > limit;
    if now && !state.anomaly {
        out.push(Alert::AnomalyDetected {
            metric: metric.to_owned(),
            value: v,
            z_score: score,
            severity: if score.abs() > HIGH_Z {
                Severity::High
            } else {
                Severity::Medium
            },
        });
    }
    state.anomaly = now;
}

/// `v`'s z-score against `w` (population standard deviation). A window of
/// equal values has no spread: a different value then scores as if the
/// spread were the smallest a float of that size can tell (a large, finite
/// z), so a spike on a flat line is found.
pub(crate) fn z_score(w: &VecDeque<f64>, v: f64) -> f64 {
    let n = w.len() as f64;
    let mean = w.iter().sum::<f64>() / n;
    let var = w.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let sd = var.sqrt().max(mean.abs().max(1.0) * 1e-12);
    let z = (v - mean) / sd;
    if z.is_finite() {
        z
    } else {
        0.0
    }
}

/// An alert as `GET /api/alerts` lists it: when, and the event's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// When it fired, ms since the Unix epoch.
    pub timestamp: i64,
    /// The alert, as the `alerts` channel carried it.
    #[serde(flatten)]
    pub alert: Alert,
}

/// The latest alerts, at most `cap` (the oldest go first).
#[derive(Debug)]
pub(crate) struct AlertLog {
    pub cap: usize,
    pub items: VecDeque<AlertRecord>,
}

impl AlertLog {
    pub fn push(&mut self, r: AlertRecord) {
        if self.cap == 0 {
            return;
        }
        if self.items.len() >= self.cap {
            self.items.pop_front();
        }
        self.items.push_back(r);
    }

    /// The newest `limit`, newest first.
    pub fn latest(&self, limit: usize) -> Vec<AlertRecord> {
        self.items.iter().rev().take(limit).cloned().collect()
    }
}
