//! A hub with the streams installed on a free port, and a WebSocket
//! client's helpers.

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hubbub_server::auth::jwt::TokenSigner;
use hubbub_server::{Config, Node, Server, Sources};
use hubbub_streams::{Streams, StreamsConfig};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(20);
pub const SECRET: &str = "streams-suite-secret-0123456789abcdef";

pub struct Hub {
    pub addr: std::net::SocketAddr,
    pub node: Node,
    pub streams: Streams,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A hub with the streams installed at short intervals (100 ms; load
/// sampled every 50 ms) and an HS256 key for tokens, plus `overrides`.
pub async fn hub(overrides: &[(&str, &str)]) -> Hub {
    let mut o: Vec<(String, String)> = vec![
        ("server.listen".into(), "\"127.0.0.1:0\"".into()),
        ("server.load_interval_ms".into(), "50".into()),
        ("auth.hs256_secret".into(), format!("\"{SECRET}\"")),
        ("apps.streams.metrics_interval_ms".into(), "100".into()),
        ("apps.streams.nodes_interval_ms".into(), "100".into()),
        ("apps.streams.resources_interval_ms".into(), "100".into()),
        ("apps.streams.topology_check_ms".into(), "100".into()),
        ("apps.streams.status_check_ms".into(), "100".into()),
    ];
    o.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let config = Config::load(&Sources {
        overrides: o,
        ..Sources::default()
    })
    .expect("config");
    let node = Node::builder(config).build().expect("node");
    let config = StreamsConfig::from_config(node.config()).expect("streams config");
    let streams = hubbub_streams::install(&node, config);
    let server = Server::bind_node(node.clone()).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    Hub {
        addr,
        node,
        streams,
        stop: Some(tx),
    }
}

impl Hub {
    pub async fn ws(&self, query: &str) -> Ws {
        let url = format!("ws://{}/ws{query}", self.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let first = recv(&mut ws).await;
        assert_eq!(first["type"], "connected", "{first}");
        ws
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Value {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Starts the shutdown (the drain delay first, if configured).
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Waits until `n` more load samples were taken: time for several
    /// intervals of every stream to pass, without a fixed sleep.
    pub async fn samples(&self, n: u64) {
        let mut updates = self.node.load_updates();
        let target = self.node.load().sample + n;
        tokio::time::timeout(WAIT, updates.wait_for(|l| l.sample >= target))
            .await
            .expect("load samples in time")
            .expect("the node is running");
    }
}

/// A token for `sub`, an admin's when `admin`.
pub fn token(sub: &str, admin: bool) -> String {
    let exp = hubbub_server::now_ms() / 1000 + 600;
    TokenSigner::hs256(SECRET.as_bytes())
        .sign(&json!({"sub": sub, "exp": exp, "admin": admin}))
        .unwrap()
}

pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Sends `subscribe` and returns the answer (`subscribed` or `error`).
pub async fn subscribe(ws: &mut Ws, channel: &str) -> Value {
    send(
        ws,
        json!({"type": "subscribe", "channels": [channel], "id": channel}),
    )
    .await;
    loop {
        let m = recv(ws).await;
        if m["correlation_id"] == channel {
            return m;
        }
    }
}

/// The next event of `event_type` on `channel`, passing over others.
pub async fn event(ws: &mut Ws, channel: &str, event_type: &str) -> Value {
    loop {
        let m = recv(ws).await;
        if m["type"] == "event" && m["channel"] == channel && m["event_type"] == event_type {
            return m;
        }
    }
}
