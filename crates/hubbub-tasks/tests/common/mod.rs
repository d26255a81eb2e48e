//! A hub with the task queue on 127.0.0.1:0, and the HTTP and WebSocket
//! clients the task tests talk to it with.

#![allow(dead_code)]

use std::time::Duration;

use hubbub_server::Node;
use hubbub_tasks::Tasks;
use hubbub_testkit::Served;
pub use hubbub_testkit::{config, recv, send, Ws, WAIT};
use serde_json::{json, Value};

pub struct Hub {
    pub addr: std::net::SocketAddr,
    pub tasks: Tasks,
    pub http: reqwest::Client,
    served: Served,
}

/// A node with the task queue, not yet serving, or the install error.
pub fn node(overrides: &[(&str, &str)]) -> Result<(Node, Tasks), String> {
    let node = Node::builder(config(overrides)).build().expect("node");
    let c = hubbub_tasks::TasksConfig::from_config(node.config())?;
    let tasks = hubbub_tasks::install(&node, c)?.expect("enabled");
    Ok((node, tasks))
}

/// A serving hub with the task queue.
pub async fn hub(overrides: &[(&str, &str)]) -> Hub {
    let (node, tasks) = node(overrides).expect("install");
    let served = hubbub_testkit::serve(node).await;
    Hub {
        addr: served.addr,
        tasks,
        http: reqwest::Client::new(),
        served,
    }
}

impl Hub {
    /// Stops the hub and waits until it has.
    pub async fn stop(mut self) {
        assert!(self.served.stopped().await, "stops");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with a JSON body (or a raw one with `raw`);
    /// returns the status and the answer's JSON (`null` when there is
    /// none).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.expect("sent")).await
    }

    /// Sends `text` as the body, with a JSON content type.
    pub async fn raw(&self, method: &str, path: &str, text: &str) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let req = self
            .http
            .request(m, self.url(path))
            .header("content-type", "application/json")
            .body(text.to_owned());
        answer(req.send().await.expect("sent")).await
    }

    /// Creates a task over HTTP; returns it.
    pub async fn create(&self, name: &str) -> Value {
        let (s, t) = self
            .call("POST", "/api/tasks", Some(json!({"name": name})))
            .await;
        assert_eq!(s, 201, "{t}");
        t
    }

    /// PATCHes a task over HTTP.
    pub async fn patch(&self, id: &Value, body: Value) -> (u16, Value) {
        let id = id.as_str().expect("an id");
        self.call("PATCH", &format!("/api/tasks/{id}"), Some(body))
            .await
    }

    /// A WebSocket subscribed to `tasks`.
    pub async fn watch(&self) -> Ws {
        let mut ws = hubbub_testkit::connect(self.addr, "").await;
        send(&mut ws, json!({"type": "subscribe", "channels": ["tasks"]})).await;
        let ok = recv(&mut ws).await;
        assert_eq!(ok["type"], "subscribed", "{ok}");
        ws
    }
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON answer: {text}"))
    };
    (s, v)
}

/// The next task event (`queue_status` passed over).
pub async fn task_event(ws: &mut Ws) -> Value {
    loop {
        let m = recv(ws).await;
        if m["type"] == "event" && m["event_type"] != "queue_status" {
            return m;
        }
    }
}

/// Waits, within [`WAIT`], until `f` holds.
pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh directory under the system's temporary one.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hubbub-tasks-{tag}-{}-{:x}",
        std::process::id(),
        rand_suffix()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(7);
    h.finish()
}

/// A task's fields as the task object paragraph lists them.
pub fn check_shape(t: &Value) {
    let o = t.as_object().expect("an object");
    for k in o.keys() {
        assert!(
            [
                "task_id",
                "name",
                "status",
                "progress",
                "message",
                "data",
                "created_at",
                "updated_at"
            ]
            .contains(&k.as_str()),
            "unexpected field {k} in {t}"
        );
    }
    assert!(t["task_id"].is_string() && t["name"].is_string(), "{t}");
    assert!(t["created_at"].is_u64() && t["updated_at"].is_u64(), "{t}");
    assert!(t["updated_at"].as_u64() >= t["created_at"].as_u64());
}

/// The next event: its type, and its data equal to the answer `t`.
pub async fn expect_event(ws: &mut Ws, event_type: &str, t: &Value) {
    let e = task_event(ws).await;
    assert_eq!(e["channel"], "tasks", "{e}");
    assert_eq!(e["event_type"], event_type, "{e}");
    assert_eq!(&e["data"], t, "the event carries the task as answered");
}

pub async fn to_running(h: &Hub, id: &Value) -> Value {
    let (s, t) = h.patch(id, json!({"status": "running"})).await;
    assert_eq!(s, 200, "{t}");
    t
}
