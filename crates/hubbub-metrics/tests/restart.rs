//! Persistence: a node stopped and a new one started on the same
//! `data_dir` answers the same statistics, history, rules and alerts; the
//! log alone (no snapshot yet, as after a crash) is replayed too.

mod common;

use common::hub;
use hubbub_metrics::{now_ms, Metrics, MetricsConfig, Rule, Value, Window};
use serde_json::{json, Value as Json};

fn temp_dir(name: &str) -> String {
    let d = std::env::temp_dir().join(format!(
        "hubbub-metrics-{name}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d.to_string_lossy().into_owned()
}

#[tokio::test]
async fn a_restarted_hub_keeps_its_metrics_rules_and_alerts() {
    let dir = temp_dir("restart");
    let quoted = format!("{dir:?}");
    let opts = [("data_dir", quoted.as_str()), ("record_interval_ms", "0")];
    let h = hub(&opts).await;
    let now = now_ms();
    // A day and a half of values every 10 s, and a rule that fires.
    let batch: Vec<Json> = (0..13_000)
        .map(|i| json!({"metric": "kept", "value": (i % 37) as f64, "timestamp": now - i * 10_000}))
        .collect();
    for c in batch.chunks(5_000) {
        assert_eq!(h.post(Json::Array(c.to_vec())).await.0, 202);
    }
    assert_eq!(
        h.call("PUT", "/api/alerts/rules/kept", Some(json!({"above": 100})))
            .await
            .0,
        200
    );
    assert_eq!(
        h.post(json!({"metric": "kept", "value": 1000})).await.0,
        202
    );
    let mut before = Vec::new();
    for w in ["1m", "5m", "1h", "24h", "7d"] {
        before.push(
            h.call(
                "GET",
                &format!("/api/metrics/kept/statistics?window={w}"),
                None,
            )
            .await
            .1,
        );
    }
    let hist = h
        .call("GET", "/api/metrics/kept/history?window=7d&points=50", None)
        .await
        .1;
    let alerts = h.call("GET", "/api/alerts", None).await.1;
    // Above the rule's bound, and far from the window's values.
    assert_eq!(alerts.as_array().unwrap().len(), 2, "{alerts}");
    h.stop().await;

    let h = hub(&opts).await;
    for (i, w) in ["1m", "5m", "1h", "24h", "7d"].iter().enumerate() {
        let after = h
            .call(
                "GET",
                &format!("/api/metrics/kept/statistics?window={w}"),
                None,
            )
            .await
            .1;
        match *w {
            // Time moved on: the edges of these windows may have too.
            "1m" | "5m" => assert_eq!(after["max"], before[i]["max"], "{w}"),
            "24h" => {
                let (a, b) = (
                    after["count"].as_i64().unwrap(),
                    before[i]["count"].as_i64().unwrap(),
                );
                assert!((a - b).abs() <= 12, "{w}: {after} {}", before[i]);
                assert_eq!(after["max"], before[i]["max"], "{w}");
            }
            _ => assert_eq!(after, before[i], "{w}"),
        }
    }
    let hist2 = h
        .call("GET", "/api/metrics/kept/history?window=7d&points=50", None)
        .await
        .1;
    assert_eq!(
        hist2.as_array().unwrap().len(),
        hist.as_array().unwrap().len()
    );
    assert_eq!(h.call("GET", "/api/alerts", None).await.1, alerts);
    let rules = h.call("GET", "/api/alerts/rules", None).await.1;
    assert_eq!(
        rules,
        json!([{"metric": "kept", "above": 100.0, "z_score": 2.5}])
    );
    // The alert states came back too: still above and still anomalous, no
    // new alert.
    assert_eq!(
        h.post(json!({"metric": "kept", "value": 2000})).await.0,
        202
    );
    assert_eq!(
        h.call("GET", "/api/alerts", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
    h.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn open(dir: &str) -> Metrics {
    Metrics::open(MetricsConfig {
        data_dir: dir.into(),
        snapshot_interval_s: 3_600,
        ..MetricsConfig::default()
    })
    .expect("open")
}

#[test]
fn the_log_is_replayed_after_a_crash_and_after_a_snapshot() {
    let dir = temp_dir("log");
    let now = now_ms();
    let values = |from: i64, n: i64| -> Vec<Value> {
        (from..from + n)
            .map(|i| Value {
                metric: "l".into(),
                value: i as f64,
                timestamp: Some(now - 100_000 + i),
            })
            .collect()
    };
    let a = open(&dir);
    a.record_batch(&values(0, 100)).unwrap();
    a.set_rule(
        "l",
        Rule {
            above: Some(1e9),
            below: None,
            z_score: None,
        },
    )
    .unwrap();
    a.sync().unwrap();
    // `a` never closes: as if it crashed here. `b` reads the log.
    let b = open(&dir);
    assert_eq!(b.statistics("l", Window::M5).unwrap().count, 100);
    assert_eq!(b.rules().len(), 1);
    b.close();
    // `b` closed with a snapshot; `c` adds to it through the log only.
    let c = open(&dir);
    assert_eq!(c.statistics("l", Window::M5).unwrap().count, 100);
    c.record_batch(&values(100, 50)).unwrap();
    c.sync().unwrap();
    let d = open(&dir);
    let s = d.statistics("l", Window::M5).unwrap();
    assert_eq!((s.count, s.max), (150, Some(149.0)));
    assert_eq!(d.history("l", Window::M5, 1000).unwrap().len(), 150);
    d.close();
    drop((a, c));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_log_tail_is_left_out() {
    let dir = temp_dir("torn");
    let a = open(&dir);
    for i in 0..10 {
        a.record("t", i as f64, None).unwrap();
    }
    a.sync().unwrap();
    let log = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("log-"))
        .expect("a log file")
        .path();
    let mut bytes = std::fs::read(&log).unwrap();
    let len = bytes.len();
    bytes.truncate(len - 5);
    std::fs::write(&log, bytes).unwrap();
    let b = open(&dir);
    assert_eq!(b.statistics("t", Window::M1).unwrap().count, 9);
    b.close();
    drop(a);
    let _ = std::fs::remove_dir_all(&dir);
}
