//! A small log-linear latency histogram.
//!
//! Workers are separate processes, so their latencies must be merged by the
//! parent; percentiles of percentiles are meaningless, while histograms add
//! up exactly. 32 sub-buckets per power of two keep every recorded value
//! within about 3% of its bucket, in at most ~2,000 counters, and only the
//! non-empty ones travel over the worker's stdout.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

/// Counts of values in microseconds, by log-linear bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Histogram {
    /// Bucket index to count (only non-empty buckets), sent as a list of
    /// pairs: integer map keys do not survive the internally tagged enum
    /// the worker messages are.
    #[serde(with = "pairs")]
    buckets: BTreeMap<u32, u64>,
    count: u64,
    sum_us: u64,
    min_us: u64,
    max_us: u64,
}

mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        m: &BTreeMap<u32, u64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        m.iter().collect::<Vec<_>>().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u32, u64>, D::Error> {
        Ok(Vec::<(u32, u64)>::deserialize(d)?.into_iter().collect())
    }
}

fn index(v: u64) -> u32 {
    if v < SUB {
        return v as u32;
    }
    let mag = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = mag - SUB_BITS;
    let sub = (v >> shift) & (SUB - 1);
    (((mag - SUB_BITS + 1) as u64) << SUB_BITS | sub) as u32
}

fn lower_bound(i: u32) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let block = i >> SUB_BITS;
    let sub = i & (SUB - 1);
    (SUB + sub) << (block - 1)
}

/// Percentiles and extremes of a histogram, in milliseconds, as reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    /// How many values were recorded.
    pub count: u64,
    /// Smallest value (exact).
    pub min_ms: f64,
    /// Median (within ~3%).
    pub p50_ms: f64,
    /// 90th percentile (within ~3%).
    pub p90_ms: f64,
    /// 99th percentile (within ~3%).
    pub p99_ms: f64,
    /// Largest value (exact).
    pub max_ms: f64,
    /// Arithmetic mean (exact).
    pub mean_ms: f64,
}

impl Histogram {
    /// Records one duration.
    pub(crate) fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        *self.buckets.entry(index(us)).or_insert(0) += 1;
        if self.count == 0 || us < self.min_us {
            self.min_us = us;
        }
        self.max_us = self.max_us.max(us);
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Adds another histogram's counts to this one.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        if other.count == 0 {
            return;
        }
        for (&i, &n) in &other.buckets {
            *self.buckets.entry(i).or_insert(0) += n;
        }
        if self.count == 0 || other.min_us < self.min_us {
            self.min_us = other.min_us;
        }
        self.max_us = self.max_us.max(other.max_us);
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded, in microseconds (exact).
    pub(crate) fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The mean, in microseconds (exact); 0 when empty.
    pub(crate) fn mean_us(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0..=1), in microseconds: the middle of
    /// the bucket holding it, clamped to the exact extremes.
    pub(crate) fn quantile_us(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (&i, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                let lo = lower_bound(i) as f64;
                let hi = lower_bound(i + 1) as f64;
                let mid = lo + (hi - lo - 1.0).max(0.0) / 2.0;
                return mid.clamp(self.min_us as f64, self.max_us as f64);
            }
        }
        self.max_us as f64
    }

    /// Percentiles in milliseconds.
    pub(crate) fn summary(&self) -> LatencySummary {
        let ms = |us: f64| us.round() / 1000.0;
        if self.count == 0 {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.count,
            min_ms: ms(self.min_us as f64),
            p50_ms: ms(self.quantile_us(0.50)),
            p90_ms: ms(self.quantile_us(0.90)),
            p99_ms: ms(self.quantile_us(0.99)),
            max_ms: ms(self.max_us as f64),
            mean_ms: ms(self.sum_us as f64 / self.count as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        for v in 0..200_000u64 {
            let i = index(v);
            assert!(lower_bound(i) <= v && v < lower_bound(i + 1), "{v}");
            let width = lower_bound(i + 1) - lower_bound(i);
            assert!(width as f64 <= 1.0f64.max(v as f64 / 16.0), "{v} {width}");
        }
        assert!(index(u64::MAX) < 2048);
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for ms in 1..=100u64 {
            let h = if ms % 2 == 0 { &mut a } else { &mut b };
            h.record(Duration::from_millis(ms));
        }
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.min_ms, 1.0);
        assert_eq!(s.max_ms, 100.0);
        assert!((s.p50_ms - 50.0).abs() <= 2.0, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() <= 3.5, "{s:?}");
        assert!((s.mean_ms - 50.5).abs() < 1e-9, "{s:?}");
        // Round trip through the worker wire format.
        let back: Histogram = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }
}
