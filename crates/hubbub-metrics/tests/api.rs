//! `/api/metrics` and `/api/alerts` over real HTTP, and the `alert`
//! events on a WebSocket subscriber of `alerts` (HTTP_API.md "Metrics and
//! alerts", PROTOCOL.md section 8).

mod common;

use common::{error_code, hub, next_event};
use hubbub_metrics::now_ms;
use serde_json::{json, Value};

#[tokio::test]
async fn a_value_is_readable_once_its_post_is_answered() {
    let h = hub(&[]).await;
    let (s, b) = h.post(json!({"metric": "cpu", "value": 42.5})).await;
    assert_eq!((s, &b), (202, &json!({"recorded": 1})));
    let (s, st) = h
        .call("GET", "/api/metrics/cpu/statistics?window=1m", None)
        .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(
        st,
        json!({"count": 1, "min": 42.5, "max": 42.5, "avg": 42.5, "median": 42.5, "stddev": 0.0, "p95": 42.5})
    );

    let now = now_ms();
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({"metric": "cpu", "value": i as f64, "timestamp": now - 1000 + i}))
        .collect();
    let (s, b) = h.post(Value::Array(batch)).await;
    assert_eq!((s, &b), (202, &json!({"recorded": 10})));
    let (_, st) = h
        .call("GET", "/api/metrics/cpu/statistics?window=5m", None)
        .await;
    assert_eq!(st["count"], 11);
    assert_eq!(st["max"], 42.5);
    assert_eq!(st["min"], 0.0);
    assert_eq!(st["median"], 5.0);
}

#[tokio::test]
async fn every_window_answers_the_same_fields() {
    let h = hub(&[]).await;
    let now = now_ms();
    let batch: Vec<Value> = (0..100)
        .map(|i| json!({"metric": "lat", "value": (i % 10) as f64, "timestamp": now - i * 1000}))
        .collect();
    assert_eq!(h.post(Value::Array(batch)).await.0, 202);
    for (w, count) in [
        ("1m", 60),
        ("5m", 100),
        ("1h", 100),
        ("24h", 100),
        ("7d", 100),
    ] {
        let (s, st) = h
            .call(
                "GET",
                &format!("/api/metrics/lat/statistics?window={w}"),
                None,
            )
            .await;
        assert_eq!(s, 200, "{w}: {st}");
        let c = st["count"].as_u64().unwrap();
        assert!(
            c == count || (w == "1m" && (59..=61).contains(&c)),
            "{w}: {st}"
        );
        for k in ["min", "max", "avg", "median", "stddev", "p95"] {
            assert!(st[k].is_number(), "{w} {k}: {st}");
        }
        assert_eq!(st["max"], 9.0, "{w}");
    }
    // No window: the last hour.
    let (_, st) = h.call("GET", "/api/metrics/lat/statistics", None).await;
    assert_eq!(st["count"], 100);
}

#[tokio::test]
async fn invalid_values_are_refused_whole() {
    let h = hub(&[("max_batch", "3"), ("max_name_len", "10")]).await;
    let now = now_ms();
    let bad: Vec<(&str, String)> = vec![
        ("no metric", json!({"value": 1}).to_string()),
        ("no value", json!({"metric": "a"}).to_string()),
        ("a string value", json!({"metric": "a", "value": "1"}).to_string()),
        ("an unknown field", json!({"metric": "a", "value": 1, "unit": "ms"}).to_string()),
        ("an empty name", json!({"metric": "", "value": 1}).to_string()),
        ("a name with a space", json!({"metric": "a b", "value": 1}).to_string()),
        ("a name with a slash", json!({"metric": "a/b", "value": 1}).to_string()),
        ("a long name", json!({"metric": "abcdefghijk", "value": 1}).to_string()),
        ("the future", json!({"metric": "a", "value": 1, "timestamp": now + 3_600_000}).to_string()),
        ("older than 7 days", json!({"metric": "a", "value": 1, "timestamp": now - 8 * 86_400_000}).to_string()),
        ("a null timestamp", json!({"metric": "a", "value": 1, "timestamp": null}).to_string()),
        ("a fractional timestamp", json!({"metric": "a", "value": 1, "timestamp": 1.5}).to_string()),
        ("a huge number", "{\"metric\": \"a\", \"value\": 1e999}".into()),
        ("not JSON", "{".into()),
        ("nothing", "".into()),
        ("a string", "\"a\"".into()),
        ("an array for an object", json!(["a", 1]).to_string()),
        ("arrays in a batch", json!([["a", 1]]).to_string()),
        ("a bad one in a batch", json!([{"metric": "a", "value": 1}, {"metric": "a", "value": "x"}]).to_string()),
        ("too many in a batch", json!([{"metric": "a", "value": 1}, {"metric": "a", "value": 1}, {"metric": "a", "value": 1}, {"metric": "a", "value": 1}]).to_string()),
    ];
    for (what, body) in bad {
        let (s, b) = h.call_raw("POST", "/api/metrics", &body).await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{what}: {b}");
    }
    // Nothing of a refused batch was recorded.
    let (s, b) = h.call("GET", "/api/metrics/a/statistics", None).await;
    assert_eq!((s, error_code(&b)), (404, "not_found"), "{b}");
    // An empty batch records nothing and is fine.
    assert_eq!(h.call_raw("POST", "/api/metrics", "[]").await.0, 202);
}

#[tokio::test]
async fn queries_check_their_parameters() {
    let h = hub(&[]).await;
    assert_eq!(h.post(json!({"metric": "m", "value": 1})).await.0, 202);
    for path in [
        "/api/metrics/m/statistics?window=2h",
        "/api/metrics/m/statistics?window=",
        "/api/metrics/m/history?window=1w",
        "/api/metrics/m/history?points=0",
        "/api/metrics/m/history?points=-1",
        "/api/metrics/m/history?points=abc",
        "/api/metrics/m/history?points=10001",
        "/api/metrics/summary?limit=0",
        "/api/alerts?limit=0",
        "/api/alerts?limit=x",
    ] {
        let (s, b) = h.call("GET", path, None).await;
        assert_eq!((s, error_code(&b)), (400, "bad_request"), "{path}: {b}");
    }
    for path in ["/api/metrics/nope/statistics", "/api/metrics/nope/history"] {
        let (s, b) = h.call("GET", path, None).await;
        assert_eq!((s, error_code(&b)), (404, "not_found"), "{path}: {b}");
    }
}

#[tokio::test]
async fn history_is_downsampled_to_at_most_points() {
    let h = hub(&[]).await;
    let now = now_ms();
    let batch: Vec<Value> = (0..50)
        .map(|i| json!({"metric": "h", "value": i as f64, "timestamp": now - 50_000 + i * 1000}))
        .collect();
    assert_eq!(h.post(Value::Array(batch)).await.0, 202);
    let (s, all) = h
        .call("GET", "/api/metrics/h/history?window=1m&points=100", None)
        .await;
    assert_eq!(s, 200);
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 50);
    for (i, p) in all.iter().enumerate() {
        assert_eq!(p["value"], i as f64);
        assert_eq!(p["timestamp"], now - 50_000 + i as i64 * 1000);
    }
    let (_, few) = h
        .call("GET", "/api/metrics/h/history?window=1m&points=10", None)
        .await;
    let few = few.as_array().unwrap();
    assert!(!few.is_empty() && few.len() <= 10, "{few:?}");
    let mean = |ps: &[Value]| ps.iter().map(|p| p["value"].as_f64().unwrap()).sum::<f64>();
    // Slots of equal length hold equal counts here: their means average
    // to the overall mean.
    assert!((mean(few) / few.len() as f64 - 24.5).abs() < 3.0, "{few:?}");
    let ts: Vec<i64> = few
        .iter()
        .map(|p| p["timestamp"].as_i64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    let (_, week) = h
        .call("GET", "/api/metrics/h/history?window=7d&points=5", None)
        .await;
    assert!(week.as_array().unwrap().len() <= 5, "{week}");
}

#[tokio::test]
async fn summary_lists_each_metric_with_its_last_value() {
    let h = hub(&[("record_interval_ms", "0")]).await;
    let now = now_ms();
    let (s, _) = h
        .post(json!([
            {"metric": "b", "value": 2, "timestamp": now - 10},
            {"metric": "b", "value": 3, "timestamp": now - 20},
            {"metric": "a", "value": 1}
        ]))
        .await;
    assert_eq!(s, 202);
    let (s, sum) = h.call("GET", "/api/metrics/summary", None).await;
    assert_eq!(s, 200);
    let sum = sum.as_array().unwrap();
    assert_eq!(sum.len(), 2, "{sum:?}");
    assert_eq!(sum[0]["metric"], "a");
    assert_eq!(sum[1]["metric"], "b");
    // The last value is the one of the greatest timestamp.
    assert_eq!(sum[1]["last"], json!({"timestamp": now - 10, "value": 2.0}));
    for w in ["1m", "5m", "1h"] {
        assert_eq!(sum[1][w]["count"], 2, "{w}");
    }
    let (_, one) = h.call("GET", "/api/metrics/summary?limit=1", None).await;
    assert_eq!(one.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rules_are_checked_stored_and_listed() {
    let h = hub(&[]).await;
    let bad = [
        json!({"above": "1"}),
        json!({"above": 1, "below": 1}),
        json!({"above": 1, "below": 2}),
        json!({"z_score": 0}),
        json!({"z_score": -1}),
        json!({"window": 5}),
        json!({"above": null}),
        json!([1]),
    ];
    for b in bad {
        let (s, r) = h.call("PUT", "/api/alerts/rules/m", Some(b.clone())).await;
        assert_eq!((s, error_code(&r)), (400, "bad_request"), "{b}: {r}");
    }
    let (s, r) = h
        .call_raw("PUT", "/api/alerts/rules/m", "{\"above\": 1e999}")
        .await;
    assert_eq!((s, error_code(&r)), (400, "bad_request"), "{r}");
    let (s, r) = h
        .call("PUT", "/api/alerts/rules/a%20b", Some(json!({})))
        .await;
    assert_eq!((s, error_code(&r)), (400, "bad_request"), "{r}");

    let (s, r) = h
        .call(
            "PUT",
            "/api/alerts/rules/m",
            Some(json!({"above": 10, "below": -1.5})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r,
        json!({"metric": "m", "above": 10.0, "below": -1.5, "z_score": 2.5})
    );
    let (_, r) = h
        .call("PUT", "/api/alerts/rules/n", Some(json!({"z_score": 4})))
        .await;
    assert_eq!(r, json!({"metric": "n", "z_score": 4.0}));
    let (s, all) = h.call("GET", "/api/alerts/rules", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        all,
        json!([{"metric": "m", "above": 10.0, "below": -1.5, "z_score": 2.5}, {"metric": "n", "z_score": 4.0}])
    );
}

#[tokio::test]
async fn threshold_alerts_fire_on_entering_only() {
    let h = hub(&[("record_interval_ms", "0")]).await;
    let mut ws = h.subscriber("alerts").await;
    let (s, _) = h
        .call(
            "PUT",
            "/api/alerts/rules/q",
            Some(json!({"above": 10, "below": 0})),
        )
        .await;
    assert_eq!(s, 200);
    // 11 enters, 12 stays, 10 is back (not strictly above), 13 enters
    // again; -1 enters below.
    for v in [5.0, 11.0, 12.0, 10.0, 13.0, -1.0, -2.0] {
        assert_eq!(h.post(json!({"metric": "q", "value": v})).await.0, 202);
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = next_event(&mut ws).await;
        assert_eq!(
            (e["channel"].as_str(), e["event_type"].as_str()),
            (Some("alerts"), Some("alert")),
            "{e}"
        );
        seen.push(e["data"].clone());
    }
    assert_eq!(
        seen,
        vec![
            json!({"type": "threshold_exceeded", "metric": "q", "value": 11.0, "threshold": 10.0, "severity": "high"}),
            json!({"type": "threshold_exceeded", "metric": "q", "value": 13.0, "threshold": 10.0, "severity": "high"}),
            json!({"type": "threshold_exceeded", "metric": "q", "value": -1.0, "threshold": 0.0, "severity": "high"}),
        ]
    );
    // GET /api/alerts: newest first, with the time it fired.
    let (s, list) = h.call("GET", "/api/alerts?limit=2", None).await;
    assert_eq!(s, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["value"], -1.0);
    assert_eq!(list[1]["value"], 13.0);
    assert!(list[0]["timestamp"].as_i64().unwrap() >= now_ms() - 60_000);
    let (_, all) = h.call("GET", "/api/alerts", None).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn anomalies_fire_with_their_z_score_and_severity() {
    let h = hub(&[("record_interval_ms", "0")]).await;
    let mut ws = h.subscriber("alerts").await;
    // A window of 10 and 11 (mean 10.5, stddev 0.5): 12 is z = 3
    // (medium), then back to normal, then 20 is z far above 3.5 (high).
    let mut batch: Vec<Value> = (0..20)
        .map(|i| json!({"metric": "z", "value": 10.0 + (i % 2) as f64}))
        .collect();
    batch.push(json!({"metric": "z", "value": 12.0}));
    assert_eq!(h.post(Value::Array(batch)).await.0, 202);
    let e = next_event(&mut ws).await;
    assert_eq!(e["data"]["type"], "anomaly_detected", "{e}");
    assert_eq!(e["data"]["metric"], "z");
    assert_eq!(e["data"]["value"], 12.0);
    let z = e["data"]["z_score"].as_f64().unwrap();
    assert!((z - 3.0).abs() < 1e-9, "{z}");
    assert_eq!(e["data"]["severity"], "medium");

    assert_eq!(h.post(json!({"metric": "z", "value": 10.5})).await.0, 202);
    assert_eq!(h.post(json!({"metric": "z", "value": 20.0})).await.0, 202);
    let e = next_event(&mut ws).await;
    assert_eq!(e["data"]["value"], 20.0, "{e}");
    assert!(e["data"]["z_score"].as_f64().unwrap() > 3.5);
    assert_eq!(e["data"]["severity"], "high");
}

#[tokio::test]
async fn a_full_budget_refuses_new_series() {
    let h = hub(&[
        ("memory_budget_bytes", "20000"),
        ("record_interval_ms", "0"),
    ])
    .await;
    let mut refused = None;
    for i in 0..1000 {
        let (s, b) = h.post(json!({"metric": format!("s{i}"), "value": 1})).await;
        if s != 202 {
            refused = Some((i, s, b));
            break;
        }
    }
    let (i, s, b) = refused.expect("the budget fills");
    assert_eq!((s, error_code(&b)), (429, "limit_exceeded"), "{b}");
    assert!(i > 3, "{i}");
    assert!(h.metrics.store_stats().bytes <= 20000);
    // The series that fit keep working.
    assert_eq!(h.post(json!({"metric": "s0", "value": 2})).await.0, 202);
    let (s, st) = h.call("GET", "/api/metrics/s0/statistics", None).await;
    assert_eq!((s, st["count"].as_u64()), (200, Some(2)));
}

#[tokio::test]
async fn the_hub_records_its_own_metrics() {
    let h = common::hub_with(vec![
        ("server.load_interval_ms".into(), "20".into()),
        ("apps.metrics.record_interval_ms".into(), "20".into()),
    ])
    .await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        // Something published, for a publish latency to measure.
        let (s, _) = h
            .call(
                "POST",
                "/api/publish",
                Some(json!({"channel": "t", "event_type": "e", "data": {}})),
            )
            .await;
        assert_eq!(s, 200);
        let (_, sum) = h.call("GET", "/api/metrics/summary", None).await;
        let names: Vec<&str> = sum
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["metric"].as_str())
            .collect();
        if hubbub_metrics::OWN_METRICS
            .iter()
            .all(|n| names.contains(n))
        {
            let (_, st) = h
                .call(
                    "GET",
                    "/api/metrics/hub.memory_bytes/statistics?window=1m",
                    None,
                )
                .await;
            assert!(st["min"].as_f64().unwrap() > 0.0, "{st}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "own metrics missing: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_routes_are_in_the_openapi_document() {
    let h = hub(&[]).await;
    let (s, doc) = h.call("GET", "/api/openapi.json", None).await;
    assert_eq!(s, 200);
    for p in [
        "/api/metrics",
        "/api/metrics/summary",
        "/api/metrics/{metric}/statistics",
        "/api/metrics/{metric}/history",
        "/api/alerts",
        "/api/alerts/rules",
        "/api/alerts/rules/{metric}",
    ] {
        assert!(doc["paths"][p].is_object(), "{p}");
    }
    assert!(doc["components"]["schemas"]["MetricStatistics"].is_object());
}
