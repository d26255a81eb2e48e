//! A hub with the streams installed on a free port, and a WebSocket
//! client's helpers.

#![allow(dead_code)]

use hubbub_server::auth::jwt::TokenSigner;
use hubbub_server::Node;
use hubbub_streams::{Streams, StreamsConfig};
use hubbub_testkit::Served;
// Not every suite uses all of them.
#[allow(unused_imports)]
pub use hubbub_testkit::{recv, send, Ws, WAIT};
use serde_json::{json, Value};
pub const SECRET: &str = "streams-suite-secret-0123456789abcdef";

pub struct Hub {
    pub addr: std::net::SocketAddr,
    pub node: Node,
    pub streams: Streams,
    served: Served,
}

/// A hub with the streams installed at short intervals (100 ms; load
/// sampled every 50 ms) and an HS256 key for tokens, plus `overrides`.
pub async fn hub(overrides: &[(&str, &str)]) -> Hub {
    let secret = format!("\"{SECRET}\"");
    let mut o: Vec<(&str, &str)> = vec![
        ("server.load_interval_ms", "50"),
        ("auth.hs256_secret", &secret),
        ("apps.streams.metrics_interval_ms", "100"),
        ("apps.streams.nodes_interval_ms", "100"),
        ("apps.streams.resources_interval_ms", "100"),
        ("apps.streams.topology_check_ms", "100"),
        ("apps.streams.status_check_ms", "100"),
    ];
    o.extend_from_slice(overrides);
    let node = Node::builder(hubbub_testkit::config(&o))
        .build()
        .expect("node");
    let config = StreamsConfig::from_config(node.config()).expect("streams config");
    let streams = hubbub_streams::install(&node, config);
    let served = hubbub_testkit::serve(node.clone()).await;
    Hub {
        addr: served.addr,
        node,
        streams,
        served,
    }
}

impl Hub {
    pub async fn ws(&self, query: &str) -> Ws {
        hubbub_testkit::connect(self.addr, query).await
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
        self.served.stop();
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
