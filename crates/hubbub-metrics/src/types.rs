//! The store's public types: what it takes, answers and refuses with.

use serde::{Deserialize, Serialize};

use crate::alerts::Rule;
use crate::stats::Statistics;

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
    /// When, ms since the Unix epoch; now when absent (null is refused).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::types::present"
    )]
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
    /// Records left out of the log because it was not written fast enough
    /// (the store kept them; the next snapshot saves them).
    pub log_dropped: u64,
}

/// An optional field that, when present, must hold a value: `null` is an
/// error rather than "absent" (the API documents numbers, not nulls).
pub(crate) fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
