//! Statistics against a naive computation on random data (proptest): exact
//! where the raw tier holds the window, within the sketch's 1% where
//! buckets answer.

use hubbub_metrics::{
    now_ms, Metrics, MetricsConfig, Statistics, Value, Window, RELATIVE_ACCURACY,
};
use proptest::prelude::*;

/// The reference: sort, then the definitions of docs/metrics.md.
struct Naive {
    sorted: Vec<f64>,
    mean: f64,
    stddev: f64,
}

fn naive(xs: &[f64]) -> Naive {
    let mut sorted = xs.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let stddev = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    Naive {
        sorted,
        mean,
        stddev,
    }
}

impl Naive {
    fn median(&self) -> f64 {
        let n = self.sorted.len();
        if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            (self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2.0
        }
    }
    /// The value of 1-based rank `r`.
    fn rank(&self, r: usize) -> f64 {
        self.sorted[r - 1]
    }
    fn p95_rank(&self) -> usize {
        (self.sorted.len() * 95).div_ceil(100).max(1)
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-9
}

fn store() -> Metrics {
    Metrics::new(MetricsConfig::default())
}

fn record(m: &Metrics, xs: &[f64], ts: &[i64]) {
    let values: Vec<Value> = xs
        .iter()
        .zip(ts)
        .map(|(&value, &t)| Value {
            metric: "x".into(),
            value,
            timestamp: Some(t),
        })
        .collect();
    m.record_batch(&values).unwrap();
}

fn check_moments(s: &Statistics, n: &Naive) -> Result<(), TestCaseError> {
    prop_assert_eq!(s.count, n.sorted.len() as u64);
    prop_assert_eq!(s.min, Some(n.sorted[0]));
    prop_assert_eq!(s.max, n.sorted.last().copied());
    prop_assert!(
        close(s.avg.unwrap(), n.mean, 1e-9),
        "avg {:?} vs {}",
        s.avg,
        n.mean
    );
    prop_assert!(
        close(s.stddev.unwrap(), n.stddev, 1e-6),
        "stddev {:?} vs {}",
        s.stddev,
        n.stddev
    );
    Ok(())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1e6..1e6f64,
        0.001..10.0f64,
        Just(0.0),
        (-50i32..50).prop_map(|i| i as f64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Windows the raw tier holds: every statistic exact.
    #[test]
    fn raw_windows_are_exact(xs in prop::collection::vec(value(), 1..600), offsets in prop::collection::vec(0i64..40_000, 600)) {
        let m = store();
        let now = now_ms();
        let ts: Vec<i64> = offsets[..xs.len()].iter().map(|o| now - o).collect();
        record(&m, &xs, &ts);
        let n = naive(&xs);
        for w in [Window::M1, Window::M5, Window::H1] {
            let s = m.statistics("x", w).unwrap();
            check_moments(&s, &n)?;
            prop_assert_eq!(s.median, Some(n.median()));
            prop_assert_eq!(s.p95, Some(n.rank(n.p95_rank())));
        }
    }

    /// Windows answered from buckets: count, min, max exact, mean and
    /// spread to rounding, median and p95 within 1% of the value of their
    /// rank (the lower middle for the median).
    #[test]
    fn bucket_windows_are_within_the_sketch_bound(
        xs in prop::collection::vec(value(), 1..600),
        offsets in prop::collection::vec(0i64..(6 * 86_400_000), 600),
        day in prop::bool::ANY,
    ) {
        let m = store();
        let now = now_ms();
        let span = if day { 20 * 3_600_000 } else { i64::MAX };
        let ts: Vec<i64> = offsets[..xs.len()].iter().map(|o| now - o % span - 60_000).collect();
        record(&m, &xs, &ts);
        let n = naive(&xs);
        let w = if day { Window::H24 } else { Window::D7 };
        let s = m.statistics("x", w).unwrap();
        check_moments(&s, &n)?;
        let len = n.sorted.len();
        let med = n.rank(len.div_ceil(2));
        prop_assert!(close(s.median.unwrap(), med, RELATIVE_ACCURACY), "median {:?} vs {}", s.median, med);
        let p95 = n.rank(n.p95_rank());
        prop_assert!(close(s.p95.unwrap(), p95, RELATIVE_ACCURACY), "p95 {:?} vs {}", s.p95, p95);
    }

    /// History: raw points as recorded when they fit, else at most
    /// `points` slot means that keep the overall weighted mean.
    #[test]
    fn history_keeps_points_or_their_means(xs in prop::collection::vec(-1e3..1e3f64, 1..300), points in 1usize..400) {
        let m = store();
        let now = now_ms();
        let ts: Vec<i64> = (0..xs.len() as i64).map(|i| now - 50_000 + i * 100).collect();
        record(&m, &xs, &ts);
        let h = m.history("x", Window::M1, points).unwrap();
        prop_assert!(h.len() <= points);
        if xs.len() <= points {
            let got: Vec<(i64, f64)> = h.iter().map(|p| (p.timestamp, p.value)).collect();
            let want: Vec<(i64, f64)> = ts.iter().copied().zip(xs.iter().copied()).collect();
            prop_assert_eq!(got, want);
        }
        prop_assert!(h.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
    }
}

#[test]
fn an_empty_window_has_a_count_of_zero() {
    let m = store();
    m.record("x", 1.0, Some(now_ms() - 3 * 60_000)).unwrap();
    let s = m.statistics("x", Window::M1).unwrap();
    assert_eq!(s, Statistics::default());
    assert_eq!(m.statistics("x", Window::M5).unwrap().count, 1);
}

#[test]
fn a_series_recorded_every_second_for_a_week_answers_every_window() {
    let m = store();
    let now = now_ms();
    let values: Vec<Value> = (0..7 * 86_400 - 120)
        .map(|i| Value {
            metric: "s".into(),
            value: (i % 100) as f64,
            timestamp: Some(now - i * 1000),
        })
        .collect();
    for chunk in values.chunks(10_000) {
        m.record_batch(chunk).unwrap();
    }
    eprintln!("a week every second: {:?}", m.store_stats());
    for (w, count) in [(Window::M1, 60u64), (Window::M5, 300), (Window::H1, 3600)] {
        let s = m.statistics("s", w).unwrap();
        assert!(s.count.abs_diff(count) <= 20, "{w:?}: {s:?}");
        // Values 0, 1, ..., 99, 0, ... going back from the time of recording
        // (the last minute has moved on since by the time it took).
        let max = s.max.unwrap();
        assert!(
            if w == Window::M1 {
                (40.0..=59.0).contains(&max)
            } else {
                max == 99.0
            },
            "{w:?}: {s:?}"
        );
    }
    // A day from minute buckets (whole minutes overlapping it).
    let d = m.statistics("s", Window::H24).unwrap();
    assert!(d.count.abs_diff(86_400) <= 60, "{d:?}");
    assert!(close(d.avg.unwrap(), 49.5, 1e-3), "{d:?}");
    assert!(close(d.median.unwrap(), 49.0, 0.011), "{d:?}");
    assert!(close(d.p95.unwrap(), 94.0, 0.011), "{d:?}");
    let wk = m.statistics("s", Window::D7).unwrap();
    assert_eq!(wk.count, values.len() as u64);
    let h = m.history("s", Window::D7, 500).unwrap();
    assert!(h.len() <= 500 && h.len() > 150, "{}", h.len());
    assert!(h.iter().all(|p| (p.value - 49.5).abs() < 5.0), "{h:?}");
}
