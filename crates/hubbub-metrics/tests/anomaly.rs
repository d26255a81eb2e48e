//! Anomaly detection on a synthetic series with injected spikes: every
//! spike found, no alert on the flat part, one alert per spike (no storm);
//! and the threshold states of PROTOCOL.md section 8.

use hubbub_metrics::{Metrics, MetricsConfig, Rule};
use hubbub_protocol::streams::{Alert, Severity};
use rand::{Rng, SeedableRng};

fn anomalies(m: &Metrics) -> Vec<(f64, f64, Severity)> {
    let mut v: Vec<_> = m
        .alerts(usize::MAX)
        .into_iter()
        .filter_map(|r| match r.alert {
            Alert::AnomalyDetected {
                value,
                z_score,
                severity,
                ..
            } => Some((value, z_score, severity)),
            _ => None,
        })
        .collect();
    v.reverse();
    v
}

#[test]
fn every_spike_is_found_once_and_nothing_else() {
    let m = Metrics::new(MetricsConfig {
        alert_history: 100_000,
        ..MetricsConfig::default()
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Uniform noise in [-1, 1] around 100: its stddev is 1/√3, so no noise
    // value is more than √3 ≈ 1.73 sigma from the mean (under 2.5), while
    // a spike of ±8 is about 14 sigma away. A spike every 500 values,
    // alternating up and down, some lasting three values.
    let mut spikes = Vec::new();
    for i in 0..20_000u32 {
        let mut v = 100.0 + rng.gen_range(-1.0..=1.0);
        let phase = i % 500;
        if i >= 500 && phase < if (i / 500) % 3 == 0 { 3 } else { 1 } {
            v = if (i / 500) % 2 == 0 { 108.0 } else { 92.0 };
            if phase == 0 {
                spikes.push(v);
            }
        }
        m.record("noisy", v, None).unwrap();
    }
    let found = anomalies(&m);
    assert_eq!(found.len(), spikes.len(), "{found:?}");
    for ((value, z, severity), spike) in found.iter().zip(&spikes) {
        assert_eq!(value, spike);
        assert!(
            z.abs() > 3.5 && z.signum() == (spike - 100.0).signum(),
            "{z}"
        );
        assert_eq!(*severity, Severity::High);
    }
}

#[test]
fn a_flat_line_with_one_spike_alerts_once() {
    let m = Metrics::new(MetricsConfig::default());
    for _ in 0..100 {
        m.record("flat", 5.0, None).unwrap();
    }
    m.record("flat", 5.5, None).unwrap();
    for _ in 0..100 {
        m.record("flat", 5.0, None).unwrap();
    }
    assert_eq!(anomalies(&m).len(), 1);
    assert!(anomalies(&m)[0].1 > 1e6);
}

#[test]
fn a_level_shift_alerts_once_until_the_window_catches_up() {
    let m = Metrics::new(MetricsConfig::default());
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for _ in 0..200 {
        m.record("shift", 10.0 + rng.gen_range(-0.5..=0.5), None)
            .unwrap();
    }
    for _ in 0..200 {
        m.record("shift", 50.0 + rng.gen_range(-0.5..=0.5), None)
            .unwrap();
    }
    // Entering once; the window (60 values) then fills with the new level
    // and values are back within bounds: no repeat while it stays there.
    assert_eq!(anomalies(&m).len(), 1, "{:?}", anomalies(&m));
}

#[test]
fn threshold_states_enter_stay_and_leave() {
    let m = Metrics::new(MetricsConfig {
        z_min_samples: 60,
        ..MetricsConfig::default()
    });
    m.set_rule(
        "t",
        Rule {
            above: Some(10.0),
            below: Some(1.0),
            z_score: None,
        },
    )
    .unwrap();
    let values = [5.0, 10.0, 10.5, 11.0, 10.0, 0.5, 0.9, 1.0, 20.0, 0.0];
    for v in values {
        m.record("t", v, None).unwrap();
    }
    let fired: Vec<(f64, f64)> = m
        .alerts(100)
        .into_iter()
        .rev()
        .map(|r| match r.alert {
            Alert::ThresholdExceeded {
                value, threshold, ..
            } => (value, threshold),
            a => panic!("{a:?}"),
        })
        .collect();
    assert_eq!(
        fired,
        vec![(10.5, 10.0), (0.5, 1.0), (20.0, 10.0), (0.0, 1.0)]
    );
}

#[test]
fn a_rule_may_come_before_its_metric_and_changes_the_z_limit() {
    let m = Metrics::new(MetricsConfig::default());
    let r = m
        .set_rule(
            "later",
            Rule {
                above: None,
                below: None,
                z_score: Some(100.0),
            },
        )
        .unwrap();
    assert_eq!(r.rule.z_score, Some(100.0));
    for i in 0..50 {
        m.record("later", (i % 2) as f64, None).unwrap();
    }
    // z = 19 would alert at 2.5, not at 100.
    m.record("later", 10.0, None).unwrap();
    assert!(m.alerts(10).is_empty());
    assert!(m
        .set_rule(
            "later",
            Rule {
                above: Some(1.0),
                below: Some(2.0),
                z_score: None
            }
        )
        .is_err());
}
