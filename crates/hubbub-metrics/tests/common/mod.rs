//! A hub with the metrics store installed, on 127.0.0.1:0, and the
//! helpers the suites share: HTTP calls, a WebSocket subscriber, waiting
//! with a deadline.

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hubbub_metrics::Metrics;
use hubbub_server::{Config, Node, Server, Sources};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Hub {
    pub addr: std::net::SocketAddr,
    pub metrics: Metrics,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
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
    let mut o: Vec<(String, String)> = vec![("server.listen".into(), "\"127.0.0.1:0\"".into())];
    o.extend(overrides);
    let config = Config::load(&Sources {
        overrides: o,
        ..Sources::default()
    })
    .expect("config");
    let node = Node::builder(config).build().expect("node");
    let mc = hubbub_metrics::MetricsConfig::from_config(node.config()).expect("metrics config");
    let metrics = hubbub_metrics::install(&node, mc).expect("install");
    let server = Server::bind_node(node).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let done = tokio::spawn(async move {
        let _ = server
            .run_until(async {
                let _ = rx.await;
            })
            .await;
    });
    Hub {
        addr,
        metrics,
        http: reqwest::Client::new(),
        stop: Some(tx),
        done: Some(done),
    }
}

impl Hub {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the node and closes the store (its last snapshot written).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(d) = self.done.take() {
            let _ = tokio::time::timeout(WAIT, d).await;
        }
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
        let url = format!("ws://{}/ws", self.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let first = recv(&mut ws).await;
        assert_eq!(first["type"], "connected", "{first}");
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

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON message (pings skipped), within [`WAIT`].
pub async fn recv(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == "ping" {
                send(ws, json!({"type": "pong"})).await;
                continue;
            }
            return v;
        }
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
