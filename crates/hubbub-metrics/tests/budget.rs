//! The memory budget held with 100,000 series: new series are refused
//! with `limit_exceeded` once it is full, the bytes charged never pass it,
//! and the series that fit keep recording (with less raw detail).

use hubbub_metrics::{Metrics, MetricsConfig, MetricsError, Window};

#[test]
fn a_hundred_thousand_series_never_pass_the_budget() {
    let budget = 64 << 20;
    let m = Metrics::new(MetricsConfig::default());
    let mut refused = 0;
    let mut first_refused = None;
    for i in 0..100_000 {
        match m.record(&format!("series.{i:06}"), i as f64, None) {
            Ok(()) => {}
            Err(MetricsError::LimitExceeded(_)) => {
                refused += 1;
                first_refused.get_or_insert(i);
            }
            Err(e) => panic!("{e}"),
        }
        if i % 1000 == 0 {
            assert!(m.store_stats().bytes <= budget);
        }
    }
    let st = m.store_stats();
    assert!(st.bytes <= budget, "{st:?}");
    assert_eq!(st.series + refused, 100_000, "{st:?}");
    // Every series that fit keeps growing until the budget is full, and
    // past it: values still land (tiers evict their oldest instead).
    for round in 0..50 {
        for i in (0..st.series).step_by(97) {
            m.record(&format!("series.{i:06}"), round as f64, None)
                .unwrap();
        }
    }
    let after = m.store_stats();
    assert!(after.bytes <= budget, "{after:?}");
    assert_eq!(m.statistics("series.000000", Window::M1).unwrap().count, 51);
    eprintln!(
        "100,000 series: {} admitted, {refused} refused (first at {first_refused:?}); {after:?}",
        st.series
    );
}

#[test]
fn a_small_budget_is_held_exactly_under_heavy_recording() {
    let budget = 200_000;
    let m = Metrics::new(MetricsConfig {
        memory_budget_bytes: budget,
        ..MetricsConfig::default()
    });
    for i in 0..20_000u64 {
        let _ = m.record(
            &format!("m{}", i % 50),
            (i % 17) as f64,
            Some(hubbub_metrics::now_ms() - (i as i64 * 7919) % 600_000_000),
        );
        assert!(m.store_stats().bytes <= budget);
    }
    m.trim();
    assert!(m.store_stats().bytes <= budget);
}
