//! A task queue that is an axum application of its own, with the hub
//! embedded: its routes create tasks, its workers push their progress.
//!
//! ```text
//! cargo run --example embedded_task_queue            # listens on 127.0.0.1:3000
//! cargo run --example embedded_task_queue -- 127.0.0.1:0
//! curl -X POST localhost:3000/tasks -H 'content-type: application/json' \
//!      -d '{"name": "resize", "steps": 5}'
//! hubbub subscribe --url ws://127.0.0.1:3000/hub/ws tasks
//! ```
//!
//! Every task event goes to `tasks` (everyone watching the queue) and to
//! `tasks:<task_id>` (those watching one task); each publish returns how
//! many clients it reached. The hub's WebSocket endpoint is `/hub/ws`, its
//! HTTP API `/hub/api/...`; Ctrl-C closes every client with 1001.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hubbub::protocol::tasks::{Task, TaskStatus};
use hubbub::{Config, Node};
use serde::Deserialize;

struct Queue {
    node: Node,
    tasks: Mutex<BTreeMap<u64, Task>>,
    next_id: AtomicU64,
}

#[derive(Deserialize)]
struct NewTask {
    name: String,
    #[serde(default = "default_steps")]
    steps: u32,
    #[serde(default = "default_step_ms")]
    step_ms: u64,
}

fn default_steps() -> u32 {
    5
}

fn default_step_ms() -> u64 {
    200
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Queue {
    /// Records the task's new state and pushes it to both audiences:
    /// everyone watching the queue, and those watching this task.
    async fn push(&self, event_type: &str, task: Task) -> usize {
        self.tasks
            .lock()
            .expect("tasks")
            .insert(task.task_id.parse().unwrap_or(0), task.clone());
        let all = self.node.publish("tasks", event_type, &task).await;
        let one = self
            .node
            .publish(&format!("tasks:{}", task.task_id), event_type, &task)
            .await;
        match (all, one) {
            (Ok(a), Ok(b)) => a.subscribers + b.subscribers,
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("publish failed: {e}");
                0
            }
        }
    }

    async fn run(self: Arc<Self>, mut task: Task, steps: u32, step_ms: u64) {
        for step in 1..=steps {
            tokio::time::sleep(Duration::from_millis(step_ms)).await;
            task.status = TaskStatus::Running;
            task.progress = f64::from(step) / f64::from(steps);
            task.message = Some(format!("step {step} of {steps}"));
            task.updated_at = now_ms();
            self.push("task_updated", task.clone()).await;
        }
        task.status = TaskStatus::Completed;
        task.updated_at = now_ms();
        self.push("task_completed", task).await;
    }
}

async fn create(
    State(queue): State<Arc<Queue>>,
    Json(new): Json<NewTask>,
) -> Result<(StatusCode, Json<serde_json::Value>), (StatusCode, String)> {
    if new.steps == 0 || new.steps > 1000 {
        return Err((StatusCode::BAD_REQUEST, "steps must be 1 to 1000".into()));
    }
    let id = queue.next_id.fetch_add(1, Ordering::Relaxed);
    let now = now_ms();
    let task = Task {
        task_id: id.to_string(),
        name: new.name,
        status: TaskStatus::Pending,
        progress: 0.0,
        message: None,
        data: None,
        created_at: now,
        updated_at: now,
    };
    let reached = queue.push("task_created", task.clone()).await;
    tokio::spawn(queue.clone().run(task.clone(), new.steps, new.step_ms));
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"task": task, "reached": reached})),
    ))
}

async fn list(State(queue): State<Arc<Queue>>) -> Json<Vec<Task>> {
    Json(
        queue
            .tasks
            .lock()
            .expect("tasks")
            .values()
            .cloned()
            .collect(),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()?;
    let node = Node::new(Config::default())?;
    let queue = Arc::new(Queue {
        node: node.clone(),
        tasks: Mutex::new(BTreeMap::new()),
        next_id: AtomicU64::new(1),
    });
    let app = Router::new()
        .route("/tasks", post(create).get(list))
        .route("/health", get(|| async { "ok" }))
        .with_state(queue)
        .nest("/hub", node.router());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = node.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.shutdown().await;
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(node.closed())
    .await?;
    Ok(())
}
