//! The library facade over real sockets: a node mounted in an axum
//! application under a prefix, publishing and subscribing from Rust, user
//! sends and disconnects, and shutdown with the application.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{call, connect, recv, subscribe, TestServer, Ws, WAIT};
use futures_util::StreamExt;
use hubbub_server::{Config, Node, Sources};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::Message as TMessage;

fn config(overrides: &[(&str, &str)]) -> Config {
    Config::load(&Sources {
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Sources::default()
    })
    .expect("config")
}

/// An application of its own with the hub nested under `/hub`, served by
/// axum on a free port.
async fn mounted(node: &Node) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "app" }))
        .nest("/hub", node.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let closed = node.closed();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(closed)
        .await
        .unwrap();
    });
    (addr, task)
}

async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(TMessage::Close(f))) => return f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_mounted_node_serves_websocket_and_api_under_a_prefix() {
    let node = Node::new(config(&[("channels.publish", "true")])).unwrap();
    let (addr, task) = mounted(&node).await;
    let http = reqwest::Client::new();
    let app = http
        .get(format!("http://{addr}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(app.text().await.unwrap(), "app");

    let (mut ws, hello) = connect(&format!("ws://{addr}/hub/ws?user_id=ann"), None).await;
    let conn_id = hello["connection_id"].as_str().unwrap().to_owned();
    assert!(conn_id.starts_with(node.node_id()), "ids carry the node");
    subscribe(&mut ws, &["orders"]).await;

    // From Rust: offset and subscribers reached.
    let out = node
        .publish("orders", "order", &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!((out.offset, out.subscribers), (Some(1), 1));
    let ev = recv(&mut ws).await;
    assert_eq!(
        (ev["type"].as_str(), ev["offset"].as_u64()),
        (Some("event"), Some(1))
    );
    assert_eq!(ev["data"], json!({"n": 1}));

    // Over the mounted HTTP API.
    let r: serde_json::Value = http
        .post(format!("http://{addr}/hub/api/publish"))
        .json(&json!({"channel": "orders", "event_type": "order", "data": {"n": 2}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["offset"], 2, "{r}");
    assert_eq!(recv(&mut ws).await["data"], json!({"n": 2}));

    // A client's publish reaches an in-process subscriber.
    let mut sub = node.subscribe("chat").await.unwrap();
    let r = call(
        &mut ws,
        json!({"type": "publish", "channel": "chat", "event_type": "msg", "data": "hi"}),
    )
    .await;
    assert_eq!(r["type"], "published", "{r}");
    let got = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.data_as::<String>().unwrap(), "hi");
    assert_eq!(
        got.publisher().and_then(|p| p.user_id.as_deref()),
        Some("ann")
    );

    // Shutdown with the application: 1001 with reconnect advice.
    let closing = tokio::spawn({
        let node = node.clone();
        async move { node.shutdown().await }
    });
    let disconnect = recv(&mut ws).await;
    assert_eq!(disconnect["type"], "disconnect");
    assert_eq!(disconnect["code"], 1001);
    assert_eq!(disconnect["reconnect"], true);
    assert_eq!(close_code(&mut ws).await, Some(1001));
    // Reading on sends the client's half of the close handshake.
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, ws.next()).await {}
    tokio::time::timeout(WAIT, closing).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_routers_come_apart() {
    let node = Node::new(config(&[])).unwrap();
    let app = axum::Router::new().nest("/rt", node.websocket_router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (mut ws, _) = connect(&format!("ws://{addr}/rt/ws"), None).await;
    subscribe(&mut ws, &["a"]).await;
    let api = reqwest::get(format!("http://{addr}/rt/api/stats"))
        .await
        .unwrap();
    assert_eq!(api.status(), 404, "the API is not exposed");
    // A plain GET at the WebSocket endpoint is refused with a reason.
    let plain = reqwest::get(format!("http://{addr}/rt/ws")).await.unwrap();
    assert_eq!(plain.status(), 426);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}

#[tokio::test]
async fn an_in_process_subscriber_misses_nothing_across_a_burst() {
    // A small queue, so the subscriber falls behind and catches up from
    // history on its own, as a client would after a slow-consumer close.
    let node = Node::new(config(&[
        ("channels.history_size", "20000"),
        ("connection.outbound_queue_messages", "64"),
    ]))
    .unwrap();
    let mut sub = node.subscribe("burst").await.unwrap();
    let publisher = {
        let node = node.clone();
        tokio::spawn(async move {
            for n in 1..=10_000u64 {
                node.publish("burst", "n", &n).await.unwrap();
                if n % 1000 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    for expect in 1..=10_000u64 {
        let ev = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("no gap");
        assert_eq!(ev.offset(), Some(expect), "in order, each once");
        assert_eq!(ev.data_as::<u64>().unwrap(), expect);
    }
    publisher.await.unwrap();
    assert_eq!(sub.position().0, 10_000);
    assert!(sub.catch_ups() > 0, "the burst outran the queue");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), sub.next())
            .await
            .is_err(),
        "nothing more"
    );
}

#[tokio::test]
async fn a_subscriber_resumes_from_its_position() {
    let node = Node::new(config(&[])).unwrap();
    let (offset, epoch) = {
        let mut sub = node.subscribe("feed").await.unwrap();
        node.publish("feed", "e", &1).await.unwrap();
        sub.next().await.unwrap().unwrap();
        let (o, e) = sub.position();
        (o, e.to_owned())
    };
    assert_eq!(node.subscriber_count("feed"), 0, "dropped: unsubscribed");
    for n in 2..=4 {
        node.publish("feed", "e", &n).await.unwrap();
    }
    let mut sub = node
        .subscribe_with("feed", Some((offset, &epoch)), None)
        .await
        .unwrap();
    assert!(sub.recovered());
    for n in 2..=4u64 {
        let ev = sub.next().await.unwrap().unwrap();
        assert_eq!(ev.data_as::<u64>().unwrap(), n);
    }
    let page = node.history("feed", Some(2), 10).await.unwrap();
    assert_eq!(page.epoch, epoch);
    let offsets: Vec<_> = page.events.iter().map(|e| e.offset().unwrap()).collect();
    assert_eq!(offsets, [3, 4]);
}

#[tokio::test]
async fn users_are_reached_and_disconnected_from_rust() {
    let srv = TestServer::start(&[]).await;
    let node = &srv.node;
    // Offline: kept for the next connection.
    let out = node
        .send_to_user("bob", "note", &json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!((out.connections, out.queued), (0, true));
    let (mut ws, _) = connect(&srv.ws_url("?user_id=bob"), None).await;
    let ev = recv(&mut ws).await;
    assert_eq!(
        (ev["channel"].as_str(), ev["data"]["n"].as_u64()),
        (Some("user:bob"), Some(1))
    );
    let out = node
        .send_to_user("bob", "note", &json!({"n": 2}))
        .await
        .unwrap();
    assert_eq!((out.connections, out.queued), (1, false));
    assert_eq!(recv(&mut ws).await["data"]["n"], 2);

    let many = node
        .broadcast(&["a", "b", "a"], "tick", &json!(1))
        .await
        .unwrap();
    assert_eq!(many.len(), 2, "each channel once");

    let err = node.publish("bad channel", "e", &1).await.unwrap_err();
    assert_eq!(err.code, hubbub_protocol::ErrorCode::BadRequest);
    let err = node.send_to_user("bob", "", &1).await.unwrap_err();
    assert_eq!(err.code, hubbub_protocol::ErrorCode::BadRequest);

    let stats = node.stats();
    assert_eq!(stats.connections, 1);
    assert!(stats.publications >= 3);
    assert_eq!(node.disconnect_user("bob", Some("bye"), false), 1);
    let d = recv(&mut ws).await;
    assert_eq!(
        (d["code"].as_u64(), d["reason"].as_str()),
        (Some(4100), Some("bye"))
    );
    assert_eq!(d["reconnect"], false);
    assert!(!node.disconnect_connection("nope-1", None, true));
    ws.close(None).await.ok();
}

#[tokio::test]
async fn one_event_to_several_channels_is_kept_as_each_says() {
    use hubbub_server::Retention;
    let node = Node::new(config(&[])).unwrap();
    let data = hubbub_protocol::JsonData::from_json(r#"{"step": 1}"#).unwrap();
    let keep = Retention::Keep {
        size: 2,
        ttl: Duration::from_secs(60),
    };
    let out = node
        .broadcast_json_with(
            &[("job", keep), ("all_jobs", Retention::Transient)],
            "progress",
            data,
        )
        .await
        .unwrap();
    assert_eq!((out[0].offset, out[1].offset), (Some(1), None));
    assert_eq!(node.history("job", None, 10).await.unwrap().events.len(), 1);
    assert!(node
        .history("all_jobs", None, 10)
        .await
        .unwrap()
        .events
        .is_empty());
    // A bad name refuses the whole: nothing is published.
    let data = hubbub_protocol::JsonData::from_json("1").unwrap();
    let err = node
        .broadcast_json_with(&[("job", keep), ("bad channel", keep)], "progress", data)
        .await
        .unwrap_err();
    assert_eq!(err.code, hubbub_protocol::ErrorCode::BadRequest);
    assert_eq!(node.history("job", None, 10).await.unwrap().events.len(), 1);
}

#[tokio::test]
async fn load_is_sampled_once_per_interval_and_shared() {
    let node = Node::new(config(&[("server.load_interval_ms", "50")])).unwrap();
    let mut updates = node.load_updates();
    let (addr, _task) = mounted(&node).await;
    let (mut ws, _) = connect(&format!("ws://{addr}/hub/ws"), None).await;
    subscribe(&mut ws, &["load"]).await;
    node.publish("load", "x", &json!(1)).await.unwrap();
    recv(&mut ws).await;
    // Wait for a sample that saw the connection and the publication.
    let load = tokio::time::timeout(WAIT, async {
        loop {
            updates.changed().await.unwrap();
            let load = updates.borrow_and_update().clone();
            if load.connections == 1 && load.messages_sent >= 3 {
                return load;
            }
        }
    })
    .await
    .expect("a sample with the connection in time");
    assert_eq!(load.node_id, node.node_id());
    assert!(load.sample >= 1);
    assert!(load.memory_bytes > 0 && load.open_fds > 0, "{load:?}");
    assert!(load.uptime_seconds < 60);
    // The latest sample is what `load()` answers.
    assert!(node.load().sample >= load.sample);
    // Samples keep coming, each one pass (the counter moves by one).
    let before = node.load().sample;
    updates.changed().await.unwrap();
    assert!(updates.borrow().sample > before);
}

#[test]
fn load_interval_is_checked() {
    let bad = Config::load(&Sources {
        overrides: vec![("server.load_interval_ms".into(), "0".into())],
        ..Sources::default()
    });
    assert!(bad.unwrap_err().0.contains("load_interval_ms"));
}
