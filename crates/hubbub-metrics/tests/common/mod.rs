//! A hub with the metrics store installed, on 127.0.0.1:0, and the
//! helpers the suites share: HTTP calls, a WebSocket subscriber, waiting
//! with a deadline.

#![allow(dead_code)]

use hubbub_metrics::Metrics;
use hubbub_server::Node;
use hubbub_testkit::Served;
// Not every suite uses all of them.
#[allow(unused_imports)]
pub use hubbub_testkit::{send, Ws, WAIT};
use serde_json::{json, Value};

pub struct Hub {
    pub addr: std::net::SocketAddr,
    pub metrics: Metrics,
    pub http: reqwest::Client,
    served: Served,
}

/// A hub whose `[apps.metrics]` is `overrides` (keys without the prefix).
pub async fn hub(overrides: &[(&str, &str)]) -> Hub {
    let o: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (format!("apps.metrics.{k}"), v.to_string()))
        .collect();
    hub_with(o).await
}

/// A hub with these configuration overrides (whole keys).
pub async fn hub_with(overrides: Vec<(String, String)>) -> Hub {
    let o: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let node = Node::builder(hubbub_testkit::config(&o))
        .build()
        .expect("node");
    let mc = hubbub_metrics::MetricsConfig::from_config(node.config()).expect("metrics config");
    let metrics = hubbub_metrics::install(&node, mc).expect("install");
    let served = hubbub_testkit::serve(node).await;
    Hub {
        addr: served.addr,
        metrics,
        http: reqwest::Client::new(),
        served,
    }
}

impl Hub {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the node and closes the store (its last snapshot written).
    pub async fn stop(mut self) {
        let _ = self.served.stopped().await;
        let m = self.metrics.clone();
        tokio::task::spawn_blocking(move || m.close())
            .await
            .unwrap();
    }

    /// `(status, body)` of a request with a JSON body (or none).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, self.url(path));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A raw body.
    pub async fn call_raw(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let resp = self
            .http
            .request(m, self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, body: Value) -> (u16, Value) {
        self.call("POST", "/api/metrics", Some(body)).await
    }

    /// A WebSocket subscribed to `channel`.
    pub async fn subscriber(&self, channel: &str) -> Ws {
        let mut ws = hubbub_testkit::connect(self.addr, "").await;
        send(
            &mut ws,
            json!({"type": "subscribe", "channels": [channel], "id": 1}),
        )
        .await;
        loop {
            let m = recv(&mut ws).await;
            if m["correlation_id"] == 1 {
                assert_ne!(m["type"], "error", "{m}");
                break;
            }
        }
        ws
    }
}

/// The next JSON message, within [`WAIT`]; the hub's `ping` is answered
/// and passed over.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let v = hubbub_testkit::recv(ws).await;
        if v["type"] == "ping" {
            send(ws, json!({"type": "pong"})).await;
            continue;
        }
        return v;
    }
}

/// The next `event` on the socket, within [`WAIT`].
pub async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let m = recv(ws).await;
        if m["type"] == "event" {
            return m;
        }
    }
}

/// The error code of an API error body.
pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}
