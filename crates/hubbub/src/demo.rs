//! `hubbub serve --demo`: a small, made-up workload so that a new user's
//! first look at the dashboard shows every panel moving. It runs on the
//! library's public API like any application: a task queue that keeps
//! a few jobs running (some fail), an `orders` channel with a steady flow
//! of events, and a metric that now and then spikes (an anomaly alert) or
//! crosses its threshold. Development mode only; it stops with the node.

use std::time::Duration;

use hubbub_protocol::JsonData;
use hubbub_server::Node;
use hubbub_tasks::{TaskPatch, TaskStatus, Tasks};
use serde_json::json;

/// Jobs the demo queue runs, with how they fail when they do.
const JOBS: [(&str, &str); 5] = [
    ("resize images", "out of memory in the resizer"),
    ("send weekly digest", "mail relay refused the connection"),
    ("export report", "disk full"),
    ("reindex search", "shard 3 did not answer"),
    ("train model", "loss diverged"),
];

/// Starts the demo's tasks on the current runtime.
pub(crate) fn spawn(node: &Node, tasks: Option<Tasks>, metrics: hubbub_metrics::Metrics) {
    if let Some(tasks) = tasks {
        let closed = node.closed();
        tokio::spawn(async move {
            tokio::select! {
                _ = queue(tasks) => {}
                _ = closed => {}
            }
        });
    }
    let n = node.clone();
    let closed = node.closed();
    tokio::spawn(async move {
        tokio::select! {
            _ = orders(n, metrics) => {}
            _ = closed => {}
        }
    });
}

/// A few tasks at a time: created, run to the end in steps, one in eight
/// failing.
async fn queue(tasks: Tasks) {
    let mut rng = Rng::seeded();
    // id, progress, step per tick, and why it will fail (one in eight will)
    let mut running: Vec<(String, f64, f64, Option<&str>)> = Vec::new();
    let mut count = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(700));
    loop {
        tick.tick().await;
        if running.len() < 3 && rng.below(3) == 0 {
            count += 1;
            let (name, why) = JOBS[rng.below(JOBS.len() as u64) as usize];
            let data = json!({"demo": true, "batch": count});
            if let Ok(t) = tasks.create(format!("{name} #{count}"), Some(data)).await {
                let step = 0.04 + rng.unit() * 0.12;
                let fails = (rng.below(8) == 0).then_some(why);
                running.push((t.task_id, 0.0, step, fails));
            }
        }
        let mut finished = Vec::new();
        for (id, progress, step, fails) in running.iter_mut() {
            *progress = (*progress + *step * (0.5 + rng.unit())).min(1.0);
            let (status, message) = if let Some(why) = fails.filter(|_| *progress > 0.6) {
                (TaskStatus::Failed, why.to_owned())
            } else if *progress >= 1.0 {
                (TaskStatus::Completed, "done".to_owned())
            } else {
                (
                    TaskStatus::Running,
                    format!("step {}", (*progress * 10.0) as u32 + 1),
                )
            };
            let done = status != TaskStatus::Running;
            let patch = TaskPatch {
                status: Some(status),
                progress: (!done || status == TaskStatus::Completed).then_some(*progress),
                message: Some(message),
            };
            if tasks.update(id, patch).await.is_err() || done {
                finished.push(id.clone());
            }
        }
        running.retain(|r| !finished.contains(&r.0));
    }
}

/// Orders on `orders` (about three a second), and their rate as the
/// metric `demo.orders_per_second`: usually near 3, with a burst every
/// minute or so that the anomaly check catches, and a threshold rule on
/// `demo.checkout_latency_ms`.
async fn orders(node: Node, metrics: hubbub_metrics::Metrics) {
    let mut rng = Rng::seeded();
    let _ = metrics.set_rule(
        "demo.checkout_latency_ms",
        hubbub_metrics::Rule {
            above: Some(400.0),
            below: None,
            z_score: None,
        },
    );
    let mut id = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(330));
    let mut second = 0u64;
    loop {
        tick.tick().await;
        id += 1;
        let total = 5.0 + (rng.unit() * 200.0).round();
        let data = json!({"order_id": id, "total": total, "items": 1 + rng.below(5)});
        let _ = node
            .publish_json("orders", "order_created", JsonData::from_serialize(&data))
            .await;
        if id.is_multiple_of(3) {
            second += 1;
            let burst = second % 70 == 69;
            let rate = if burst { 30.0 } else { 3.0 + rng.unit() - 0.5 };
            let _ = metrics.record("demo.orders_per_second", rate, None);
            let slow = second % 45 == 44;
            let latency = if slow {
                450.0 + rng.unit() * 200.0
            } else {
                120.0 + rng.unit() * 80.0
            };
            let _ = metrics.record("demo.checkout_latency_ms", latency, None);
        }
    }
}

/// xorshift64*: enough randomness for made-up numbers, without a crate.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(t | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
