//! What recording costs over HTTP (docs/metrics.md, "Numbers"): a hub with
//! the metrics store on 127.0.0.1, one keep-alive client posting single
//! values, then batches of 1000, then eight clients at once; and a 24 h
//! statistics and a 7 d history query over HTTP.
//!
//! `cargo run --release -p hubbub-metrics --example metrics_http_cost`

use std::time::{Duration, Instant};

use hubbub_server::{Config, Node, Server, Sources};
use serde_json::{json, Value};

fn quantiles(mut d: Vec<Duration>) -> String {
    d.sort();
    let q = |p: f64| d[((d.len() as f64 * p) as usize).min(d.len() - 1)];
    let mean = d.iter().sum::<Duration>() / d.len() as u32;
    format!("mean {:?}, p50 {:?}, p99 {:?}", mean, q(0.5), q(0.99))
}

#[tokio::main]
async fn main() {
    let config = Config::load(&Sources {
        overrides: vec![
            ("server.listen".into(), "\"127.0.0.1:0\"".into()),
            ("apps.metrics.record_interval_ms".into(), "0".into()),
        ],
        ..Sources::default()
    })
    .expect("config");
    let node = Node::builder(config).build().expect("node");
    let mc = hubbub_metrics::MetricsConfig::from_config(node.config()).unwrap();
    let metrics = hubbub_metrics::install(&node, mc).unwrap();
    let server = Server::bind_node(node).await.expect("bind");
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run_until(std::future::pending()));
    let url = format!("http://{addr}/api/metrics");
    let client = reqwest::Client::new();

    // A week recorded every second, from Rust, for the queries.
    let now = hubbub_metrics::now_ms();
    let week: Vec<hubbub_metrics::Value> = (0..7 * 86_400 - 60)
        .rev()
        .map(|i| hubbub_metrics::Value {
            metric: "week".into(),
            value: (i % 100) as f64,
            timestamp: Some(now - i * 1000),
        })
        .collect();
    for c in week.chunks(10_000) {
        metrics.record_batch(c).unwrap();
    }

    let n = 5_000;
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 500 {
        let t = Instant::now();
        let r = client
            .post(&url)
            .json(&json!({"metric": "single", "value": i}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.bytes().await.unwrap();
        if i >= 500 {
            times.push(t.elapsed());
        }
    }
    println!("single value, one client: {}", quantiles(times));

    let batch: Value = (0..1000)
        .map(|i| json!({"metric": format!("b{}", i % 10), "value": i}))
        .collect();
    let body = serde_json::to_vec(&batch).unwrap();
    let mut times = Vec::new();
    for i in 0..220 {
        let t = Instant::now();
        let r = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.bytes().await.unwrap();
        if i >= 20 {
            times.push(t.elapsed());
        }
    }
    let per: Vec<Duration> = times.iter().map(|t| *t / 1000).collect();
    println!("batch of 1000, per request: {}", quantiles(times));
    println!("batch of 1000, per value: {}", quantiles(per));

    let t = Instant::now();
    let per_client = 2_000;
    let tasks: Vec<_> = (0..8)
        .map(|c| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for i in 0..per_client {
                    let r = client
                        .post(&url)
                        .json(&json!({"metric": format!("c{c}"), "value": i}))
                        .send()
                        .await
                        .unwrap();
                    r.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let total = 8 * per_client;
    println!(
        "single values, 8 clients: {:.0} values/s",
        total as f64 / t.elapsed().as_secs_f64()
    );

    for (what, path) in [
        (
            "statistics 24h over HTTP",
            "/api/metrics/week/statistics?window=24h",
        ),
        (
            "history 7d, 500 points, over HTTP",
            "/api/metrics/week/history?window=7d&points=500",
        ),
    ] {
        let mut times = Vec::new();
        for i in 0..1100 {
            let t = Instant::now();
            let r = client
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap();
            if i >= 100 {
                times.push(t.elapsed());
            }
        }
        println!("{what}: {}", quantiles(times));
    }
    println!("store: {:?}", metrics.store_stats());
}
