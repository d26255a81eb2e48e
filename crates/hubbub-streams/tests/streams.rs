//! The built-in streams over real sockets: each delivers its event with
//! the documented shape to a WebSocket subscriber; nothing is built while
//! nobody listens; `connections` and `logs` are for admins; the node's
//! status on drain; `GET /api/streams` with the configured intervals.

mod common;

use common::*;
use hubbub_streams::Stream;
use serde_json::Value;

fn number(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is a number in {v}"))
}

#[tokio::test]
async fn periodic_streams_deliver_their_shapes() {
    let hub = hub(&[]).await;
    let mut ws = hub.ws("").await;
    for channel in ["metrics", "nodes", "resources"] {
        assert_eq!(subscribe(&mut ws, channel).await["type"], "subscribed");
    }
    let node_id = hub.node.node_id().to_owned();

    let m = event(&mut ws, "metrics", "system_metrics").await["data"].clone();
    assert_eq!(m["node_id"], node_id.as_str(), "{m}");
    for f in [
        "cpu_percent",
        "memory_bytes",
        "events_per_second",
        "connections",
        "messages_per_second",
    ] {
        assert!(number(&m, f) >= 0.0, "{f} in {m}");
    }
    assert!(number(&m, "memory_bytes") > 0.0, "{m}");

    let n = event(&mut ws, "nodes", "node_status_update").await["data"].clone();
    assert_eq!(n["node_id"], node_id.as_str(), "{n}");
    assert_eq!(n["address"], hub.addr.to_string(), "{n}");
    assert!(number(&n, "uptime_seconds") >= 0.0);
    assert!(number(&n, "connections") >= 0.0);
    assert!(n.get("latency_ms").is_none(), "no latency to itself: {n}");

    let r = event(&mut ws, "resources", "resource_update").await["data"].clone();
    assert_eq!(r["node_id"], node_id.as_str(), "{r}");
    assert!(number(&r, "open_fds") > 0.0, "{r}");
    assert!(number(&r, "memory_bytes") > 0.0, "{r}");
    assert!(number(&r, "cpu_percent") >= 0.0 && number(&r, "queue_bytes") >= 0.0);

    // Once the sample sees this connection, `connections` counts it.
    loop {
        let m = event(&mut ws, "metrics", "system_metrics").await["data"].clone();
        if number(&m, "connections") >= 1.0 {
            break;
        }
    }
}

#[tokio::test]
async fn nothing_is_built_while_nobody_listens() {
    let hub = hub(&[]).await;
    // Connections come and go with nobody on `connections`, time passes
    // for many intervals of every stream.
    for _ in 0..3 {
        drop(hub.ws("").await);
    }
    hub.samples(8).await;
    for s in [
        Stream::Metrics,
        Stream::Nodes,
        Stream::Resources,
        Stream::Topology,
        Stream::Connections,
        Stream::Logs,
    ] {
        assert_eq!(
            hub.streams.built(s),
            0,
            "{s:?} was built with nobody listening"
        );
    }
    // A subscriber: the stream starts...
    let mut ws = hub.ws("").await;
    subscribe(&mut ws, "metrics").await;
    event(&mut ws, "metrics", "system_metrics").await;
    assert!(hub.streams.built(Stream::Metrics) >= 1);
    assert_eq!(hub.streams.built(Stream::Resources), 0);
    // ...and stops with its last subscriber.
    drop(ws);
    let deadline = tokio::time::Instant::now() + WAIT;
    while hub.node.subscriber_count("metrics") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriber left"
        );
        hub.samples(1).await;
    }
    // A tick that saw the subscriber may still be publishing.
    hub.samples(2).await;
    let after = hub.streams.built(Stream::Metrics);
    hub.samples(8).await;
    assert_eq!(hub.streams.built(Stream::Metrics), after);
}

#[tokio::test]
async fn topology_reaches_a_new_subscriber() {
    let hub = hub(&[]).await;
    let mut ws = hub.ws("").await;
    subscribe(&mut ws, "topology").await;
    let t = event(&mut ws, "topology", "topology_update").await["data"].clone();
    assert_eq!(t["nodes"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t["nodes"][0]["node_id"], hub.node.node_id(), "{t}");
    assert_eq!(t["nodes"][0]["address"], hub.addr.to_string(), "{t}");
    assert_eq!(t["links"], serde_json::json!([]), "one node, no links: {t}");
    // No change, no second event: the count stays at one.
    hub.samples(6).await;
    assert_eq!(hub.streams.built(Stream::Topology), 1);
}

#[tokio::test]
async fn connections_are_for_admins_and_tell_opens_and_closes() {
    let hub = hub(&[]).await;
    // Anonymous, then a user without the claim: refused.
    for query in [String::new(), format!("?token={}", token("ann", false))] {
        let mut ws = hub.ws(&query).await;
        for channel in ["connections", "logs"] {
            let r = subscribe(&mut ws, channel).await;
            assert_eq!(
                (r["type"].as_str(), r["code"].as_str()),
                (Some("error"), Some("forbidden")),
                "{r}"
            );
        }
    }
    assert_eq!(hub.streams.built(Stream::Connections), 0);
    let mut admin = hub.ws(&format!("?token={}", token("root", true))).await;
    assert_eq!(
        subscribe(&mut admin, "connections").await["type"],
        "subscribed"
    );

    let other = hub.ws(&format!("?token={}", token("bob", false))).await;
    let o = event(&mut admin, "connections", "connection_opened").await["data"].clone();
    assert_eq!(o["user_id"], "bob", "{o}");
    assert_eq!(o["encoding"], "json", "{o}");
    assert!(
        o["remote_addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{o}"
    );
    let id = o["connection_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with(hub.node.node_id()), "{o}");

    drop(other);
    let c = event(&mut admin, "connections", "connection_closed").await["data"].clone();
    assert_eq!(c["connection_id"], id.as_str(), "{c}");
    assert_eq!(c["user_id"], "bob");
    // Dropped without a close frame: the socket broke.
    assert!(
        c["code"].as_u64().is_some() && c["reason"].is_string(),
        "{c}"
    );
    assert!(number(&c, "duration_ms") >= 0.0);
    assert_eq!(hub.streams.dropped_events(), 0);
}

#[tokio::test]
async fn a_close_frame_gives_its_code() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
    let hub = hub(&[]).await;
    let mut admin = hub.ws(&format!("?token={}", token("root", true))).await;
    subscribe(&mut admin, "connections").await;
    let mut other = hub.ws("").await;
    let id = event(&mut admin, "connections", "connection_opened").await["data"]["connection_id"]
        .clone();
    other
        .send(tokio_tungstenite::tungstenite::Message::Close(Some(
            CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            },
        )))
        .await
        .unwrap();
    let c = event(&mut admin, "connections", "connection_closed").await["data"].clone();
    assert_eq!(c["connection_id"], id, "{c}");
    assert_eq!(c["code"], 1000, "{c}");
    assert!(c["user_id"].is_null(), "{c}");
}

#[tokio::test]
async fn status_tells_ready_then_draining() {
    let mut hub = hub(&[("server.drain_delay_ms", "5000")]).await;
    // Starting then ready, kept in the channel's history.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let h = hub.get("/api/channels/status/history").await;
        let states: Vec<(Value, Value)> = h["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["data"]["previous"].clone(), e["data"]["status"].clone()))
            .collect();
        if states.iter().any(|(_, s)| s == "ready") {
            // `starting` first, unless the node served before the
            // status task first looked.
            let ready = ("starting".into(), "ready".into());
            match states[0].1.as_str() {
                Some("starting") => assert_eq!(states[1], ready, "{h}"),
                _ => assert_eq!(states[0], (Value::Null, "ready".into()), "{h}"),
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no ready in {h}");
        hub.samples(1).await;
    }
    let mut ws = hub.ws("").await;
    subscribe(&mut ws, "status").await;
    hub.stop();
    let s = event(&mut ws, "status", "status_change").await["data"].clone();
    assert_eq!(s["node_id"], hub.node.node_id(), "{s}");
    assert_eq!(
        (s["previous"].as_str(), s["status"].as_str()),
        (Some("ready"), Some("draining")),
        "{s}"
    );
    assert!(s["reason"].is_string(), "{s}");
}

#[tokio::test]
async fn api_streams_lists_the_configured_intervals() {
    let hub = hub(&[("apps.streams.resources_interval_ms", "250")]).await;
    let list = hub.get("/api/streams").await;
    let interval = |channel: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["channel"] == channel)
            .unwrap_or_else(|| panic!("{channel} listed in {list}"))
            .get("interval_ms")
            .cloned()
    };
    assert_eq!(interval("metrics"), Some(100.into()));
    assert_eq!(interval("nodes"), Some(100.into()));
    assert_eq!(interval("resources"), Some(250.into()));
    assert_eq!(interval("topology"), None);
    assert_eq!(interval("logs"), None);
}
