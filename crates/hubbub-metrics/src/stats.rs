//! Statistics and downsampled history of a series over a window
//! (docs/metrics.md, "How statistics are computed"): from raw points,
//! exactly, where the raw tier holds every value of the window; from the
//! buckets otherwise.

use serde::{Deserialize, Serialize};

use crate::agg::Agg;
use crate::series::Series;
use crate::sketch::{rank_value, INDEXES};
use crate::window::{floor, Window, HOUR, MINUTE};

/// `{count, min, max, avg, median, stddev, p95}` over a window; all but
/// `count` are null when it is 0. `stddev` is the population standard
/// deviation; `median` of an even count is the mean of the middle two;
/// `p95` is the nearest-rank value (rank ⌈0.95·n⌉).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Statistics {
    /// Values in the window.
    pub count: u64,
    /// The smallest.
    pub min: Option<f64>,
    /// The largest.
    pub max: Option<f64>,
    /// The mean.
    pub avg: Option<f64>,
    /// The median.
    pub median: Option<f64>,
    /// The population standard deviation.
    pub stddev: Option<f64>,
    /// The 95th percentile.
    pub p95: Option<f64>,
}

/// What a query gathers under the series' lock; the sorting is done after.
pub(crate) enum Gathered {
    /// Every value of the window.
    Raw(Vec<f64>),
    /// Moments of the window's buckets and the merged sketch counts.
    Buckets(Agg, Vec<u64>),
}

impl Series {
    /// Gathers `w` ending at `now`: the raw points if the raw tier is
    /// complete from the window's start, else the minute buckets
    /// overlapping it (if that tier is complete there), else the hour
    /// buckets; quantiles then come from the sketches of the hours
    /// overlapping the window.
    pub fn gather(&self, w: Window, now: i64) -> Gathered {
        let start = now - w.millis();
        if matches!(w, Window::M1 | Window::M5 | Window::H1) && self.raw_gap < start {
            return Gathered::Raw(
                self.raw
                    .iter()
                    .skip(self.raw.partition_point(|p| p.0 <= start))
                    .map(|p| p.1)
                    .collect(),
            );
        }
        let mut agg = Agg::default();
        let mut dense = vec![0u64; INDEXES];
        let mut hour_agg = Agg::default();
        let from = self.hours.partition_point(|b| b.start + HOUR <= start);
        for b in self.hours.iter().skip(from) {
            hour_agg.merge(&b.agg);
            b.sketch.merge_into(&mut dense);
        }
        if w != Window::D7 && self.minute_gap < floor(start, MINUTE) {
            let from = self.minutes.partition_point(|b| b.start + MINUTE <= start);
            self.minutes
                .iter()
                .skip(from)
                .for_each(|b| agg.merge(&b.agg));
        } else {
            agg = hour_agg;
        }
        Gathered::Buckets(agg, dense)
    }

    /// `[(timestamp, value)]` of `w` ending at `now`, at most `points`:
    /// raw points where the raw tier is complete, else minute buckets for
    /// the span that tier holds and hour buckets before it (a bucket as its
    /// start and mean), averaged into `points` equal slots when there are
    /// more.
    pub fn history(&self, w: Window, now: i64, points: usize) -> Vec<(i64, f64)> {
        let start = now - w.millis();
        // (timestamp, value, weight)
        let mut src: Vec<(i64, f64, u64)> = Vec::new();
        if self.raw_gap < start {
            let from = self.raw.partition_point(|p| p.0 <= start);
            src.extend(self.raw.iter().skip(from).map(|&(t, v)| (t, v, 1)));
        } else {
            // Minutes from the first whole hour they hold, hours before.
            let cut = match self.minutes.front() {
                Some(m) => floor(
                    m.start.max(self.minute_gap.saturating_add(1)) + HOUR - 1,
                    HOUR,
                ),
                None => i64::MAX,
            };
            for b in &self.hours {
                if b.start + HOUR > start && b.start < cut {
                    src.push((b.start, b.agg.mean, b.agg.count));
                }
            }
            for b in &self.minutes {
                if b.start + MINUTE > start && b.start >= cut {
                    src.push((b.start, b.agg.mean, b.agg.count));
                }
            }
        }
        if src.len() <= points {
            return src.into_iter().map(|(t, v, _)| (t, v)).collect();
        }
        downsample(&src, start, now, points)
    }
}

/// Weighted means of `src` in `points` equal slots of `[start, end]`.
fn downsample(src: &[(i64, f64, u64)], start: i64, end: i64, points: usize) -> Vec<(i64, f64)> {
    let span = (end - start).max(1) as i128;
    // (weight, sum of t·w, sum of v·w) per slot.
    let mut slots = vec![(0u64, 0i128, 0f64); points];
    for &(t, v, w) in src {
        let i = (((t - start).max(0) as i128 * points as i128) / span) as usize;
        let s = &mut slots[i.min(points - 1)];
        s.0 += w;
        s.1 += t as i128 * w as i128;
        s.2 += v * w as f64;
    }
    slots
        .into_iter()
        .filter(|s| s.0 > 0)
        .map(|(w, ts, vs)| ((ts / w as i128) as i64, vs / w as f64))
        .collect()
}

/// Finishes what [`Series::gather`] gathered.
pub(crate) fn finish(g: Gathered) -> Statistics {
    match g {
        Gathered::Raw(mut xs) => exact(&mut xs),
        Gathered::Buckets(agg, dense) => {
            if agg.count == 0 {
                return Statistics::default();
            }
            let n: u64 = dense.iter().sum();
            let q = |rank: u64| {
                (n > 0)
                    .then(|| rank_value(&dense, rank.clamp(1, n)))
                    .flatten()
                    .map(|v| v.clamp(agg.min, agg.max))
            };
            Statistics {
                count: agg.count,
                min: Some(agg.min),
                max: Some(agg.max),
                avg: Some(agg.mean),
                median: q(n.div_ceil(2)),
                stddev: Some(agg.stddev()),
                p95: q(p95_rank(n)),
            }
        }
    }
}

/// 1-based nearest rank of the 95th percentile of `n` values.
pub(crate) fn p95_rank(n: u64) -> u64 {
    (n * 95).div_ceil(100).max(1)
}

/// Exact statistics of `xs` (reordered).
pub(crate) fn exact(xs: &mut [f64]) -> Statistics {
    let n = xs.len();
    if n == 0 {
        return Statistics::default();
    }
    // Two passes without a division per value (what Welford's update
    // costs): sum, min and max, then the squared deviations.
    let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
    for &x in xs.iter() {
        sum += x;
        min = min.min(x);
        max = max.max(x);
    }
    let mean = sum / n as f64;
    let m2: f64 = xs.iter().map(|&x| (x - mean) * (x - mean)).sum();
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    let r = p95_rank(n as u64) as usize - 1;
    let p95 = *xs.select_nth_unstable_by(r, cmp).1;
    let hi = *xs.select_nth_unstable_by(n / 2, cmp).1;
    let median = if n % 2 == 1 {
        hi
    } else {
        // The lower middle is the largest of the part below.
        let lo = xs[..n / 2]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (lo + hi) / 2.0
    };
    Statistics {
        count: n as u64,
        min: Some(min),
        max: Some(max),
        avg: Some(mean),
        median: Some(median),
        stddev: Some((m2 / n as f64).sqrt()),
        p95: Some(p95),
    }
}
