//! The cost of a task create and a PATCH over HTTP, end to end: a hub with
//! the task queue on 127.0.0.1, a keep-alive HTTP client in the same
//! process, one request at a time (latency) and 16 at once (throughput),
//! in memory, and with a `data_dir` with and without `fsync`; `GET
//! /api/queue` first, the floor an HTTP round trip costs here.
//!
//! `cargo run --release -p hubbub-tasks --example task_http_cost [N]`

use std::time::{Duration, Instant};

use hubbub_server::{Config, Node, Server, Sources};
use serde_json::{json, Value};

async fn start(overrides: &[(&str, String)]) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut o = vec![("server.listen".to_owned(), "\"127.0.0.1:0\"".to_owned())];
    o.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let config = Config::load(&Sources {
        overrides: o,
        ..Sources::default()
    })
    .expect("config");
    let node = Node::builder(config).build().expect("node");
    let c = hubbub_tasks::TasksConfig::from_config(node.config()).expect("config");
    hubbub_tasks::install(&node, c).expect("install");
    let server = Server::bind_node(node).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx)
}

fn summary(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let us = |x: Duration| x.as_secs_f64() * 1e6;
    let mean = d.iter().map(|x| us(*x)).sum::<f64>() / d.len() as f64;
    println!(
        "  {what:<28} n={:<6} mean {:>8.1} us  p50 {:>8.1} us  p99 {:>8.1} us",
        d.len(),
        mean,
        us(d[d.len() / 2]),
        us(d[d.len() * 99 / 100])
    );
}

async fn create(http: &reqwest::Client, base: &str, i: usize) -> Value {
    let r = http
        .post(format!("{base}/api/tasks"))
        .json(&json!({"name": format!("task {i}"), "data": {"i": i}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn patch(http: &reqwest::Client, base: &str, id: &str, body: Value) {
    let r = http
        .patch(format!("{base}/api/tasks/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await.unwrap();
}

async fn run(label: &str, overrides: &[(&str, String)], n: usize) {
    let (base, stop) = start(overrides).await;
    let http = reqwest::Client::new();
    println!("{label}");
    // Warm up the connection and the code paths.
    for i in 0..50 {
        let t = create(&http, &base, i).await;
        patch(
            &http,
            &base,
            t["task_id"].as_str().unwrap(),
            json!({"status": "running"}),
        )
        .await;
    }
    // The floor: a route that does nothing but answer counts.
    let mut floor = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let r = http.get(format!("{base}/api/queue")).send().await.unwrap();
        let _ = r.bytes().await.unwrap();
        floor.push(t0.elapsed());
    }
    summary("GET /api/queue (floor)", floor);
    let mut ids = Vec::with_capacity(n);
    let mut creates = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        let t = create(&http, &base, i).await;
        creates.push(t0.elapsed());
        ids.push(t["task_id"].as_str().unwrap().to_owned());
    }
    summary("POST /api/tasks", creates);
    let mut patches = Vec::with_capacity(n);
    for id in &ids {
        let t0 = Instant::now();
        patch(&http, &base, id, json!({"status": "running"})).await;
        patches.push(t0.elapsed());
    }
    summary("PATCH (to running)", patches);
    let mut progress = Vec::with_capacity(n);
    for (i, id) in ids.iter().enumerate() {
        let t0 = Instant::now();
        patch(
            &http,
            &base,
            id,
            json!({"progress": 0.5, "message": format!("step {i}")}),
        )
        .await;
        progress.push(t0.elapsed());
    }
    summary("PATCH (progress, message)", progress);
    // 16 at once: throughput, and what batching does to the flushes.
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for w in 0..16 {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        workers.push(tokio::spawn(async move {
            for id in ids.iter().skip(w).step_by(16) {
                patch(&http, &base, id, json!({"status": "completed"})).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let el = t0.elapsed();
    println!(
        "  {:<28} {} PATCHes in {:.1} ms: {:.0}/s",
        "16 concurrent PATCHes",
        n,
        el.as_secs_f64() * 1e3,
        n as f64 / el.as_secs_f64()
    );
    let _ = stop.send(());
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N"))
        .unwrap_or(2_000);
    let over = |kvs: &[(&'static str, String)]| {
        let mut v = vec![("apps.tasks.max_tasks", "1000000".to_owned())];
        v.extend(kvs.iter().cloned());
        v
    };
    run("memory only", &over(&[]), n).await;
    let dir = std::env::temp_dir().join(format!("hubbub-tasks-cost-{}", std::process::id()));
    let d = format!("{:?}", dir.to_str().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    run(
        "data_dir, fsync = false",
        &over(&[
            ("apps.tasks.data_dir", d.clone()),
            ("apps.tasks.fsync", "false".into()),
        ]),
        n,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    run(
        "data_dir, fsync = true",
        &over(&[
            ("apps.tasks.data_dir", d),
            ("apps.tasks.fsync", "true".into()),
        ]),
        n,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
