//! The store's costs from Rust (docs/metrics.md, "Numbers"): recording one
//! value and a batch, a 24 h statistics query and a 7 d history query over
//! a series recorded every second for a week.
//!
//! `cargo bench -p hubbub-metrics --bench store`

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput};
use hubbub_metrics::{now_ms, Metrics, MetricsConfig, Value, Window};

/// A store holding `metric` recorded every second for the last 7 days.
fn week(metric: &str) -> Metrics {
    let m = Metrics::new(MetricsConfig::default());
    let now = now_ms();
    let n = 7 * 86_400 - 60;
    let values: Vec<Value> = (0..n)
        .rev()
        .map(|i| Value {
            metric: metric.into(),
            value: 50.0 + 20.0 * ((i as f64) / 600.0).sin() + (i % 7) as f64,
            timestamp: Some(now - i * 1000),
        })
        .collect();
    for c in values.chunks(10_000) {
        m.record_batch(c).unwrap();
    }
    m
}

fn record(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    let m = week("cpu");
    let mut x = 0.0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("one value, now", |b| {
        b.iter(|| {
            x += 1.0;
            m.record(black_box("cpu"), 50.0 + (x % 10.0), None).unwrap();
        })
    });
    let batch: Vec<Value> = (0..1000)
        .map(|i| Value {
            metric: format!("batch.{}", i % 10),
            value: i as f64,
            timestamp: None,
        })
        .collect();
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("batch of 1000 over 10 series", |b| {
        b.iter(|| m.record_batch(black_box(&batch)).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("a new series", |b| {
        b.iter_batched(
            || Metrics::new(MetricsConfig::default()),
            |m| m.record("fresh", 1.0, None).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn queries(c: &mut Criterion) {
    let m = week("cpu");
    let mut g = c.benchmark_group("query, a week recorded every second");
    g.bench_function("statistics 1h (exact, 3600 raw points)", |b| {
        b.iter(|| m.statistics(black_box("cpu"), Window::H1).unwrap())
    });
    g.bench_function("statistics 24h", |b| {
        b.iter(|| m.statistics(black_box("cpu"), Window::H24).unwrap())
    });
    g.bench_function("statistics 7d", |b| {
        b.iter(|| m.statistics(black_box("cpu"), Window::D7).unwrap())
    });
    g.bench_function("history 7d, 500 points", |b| {
        b.iter(|| m.history(black_box("cpu"), Window::D7, 500).unwrap())
    });
    g.bench_function("history 1h, 3600 points", |b| {
        b.iter(|| m.history(black_box("cpu"), Window::H1, 3600).unwrap())
    });
    g.finish();
}

// `criterion_group!` defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::record, super::queries);
}
criterion::criterion_main!(group::benches);
