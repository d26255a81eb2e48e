//! What persistence costs with a full store (docs/metrics.md,
//! "Persistence"): fills a 64 MiB store with series recorded every 30 s
//! for a week (new series until the budget refuses one), then times the
//! snapshot written at close, its size, and opening it again.
//!
//! `cargo run --release -p hubbub-metrics --example persist_cost`

use std::time::Instant;

use hubbub_metrics::{now_ms, Metrics, MetricsConfig, MetricsError, Value};

fn main() {
    let dir = std::env::temp_dir().join(format!(
        "hubbub-metrics-persist-cost-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = MetricsConfig {
        data_dir: dir.to_string_lossy().into_owned(),
        snapshot_interval_s: 86_400,
        ..MetricsConfig::default()
    };
    let m = Metrics::open(cfg.clone()).expect("open");
    let now = now_ms();
    let t = Instant::now();
    let mut values = 0u64;
    'fill: for s in 0.. {
        let metric = format!("series.{s:05}");
        let batch: Vec<Value> = (0..7 * 2_880 - 10)
            .rev()
            .map(|i| Value {
                metric: metric.clone(),
                value: ((i * 7919 + s) % 1000) as f64 / 10.0,
                timestamp: Some(now - i * 30_000),
            })
            .collect();
        for c in batch.chunks(10_000) {
            match m.record_batch(c) {
                Ok(()) => values += c.len() as u64,
                Err(MetricsError::LimitExceeded(_)) => break 'fill,
                Err(e) => panic!("{e}"),
            }
        }
    }
    println!(
        "filled: {:?}, {values} values in {:?}",
        m.store_stats(),
        t.elapsed()
    );
    // The log of all that is big; a snapshot replaces it.
    let t = Instant::now();
    m.close();
    println!("close (last flush + snapshot): {:?}", t.elapsed());
    let size = std::fs::metadata(dir.join("snapshot.bin"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("snapshot: {size} bytes");
    let t = Instant::now();
    let again = Metrics::open(cfg).expect("reopen");
    println!(
        "open (read the snapshot): {:?}, {:?}",
        t.elapsed(),
        again.store_stats()
    );
    again.close();
    let _ = std::fs::remove_dir_all(&dir);
}
