//! The HTTP API over real sockets: publishing, looking, metrics, the
//! OpenAPI document and the access rule.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hubbub_server::internals::route_table;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

async fn get(srv: &TestServer, path: &str) -> (StatusCode, Value) {
    let r = client().get(srv.http(path)).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(srv: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let r = client()
        .post(srv.http(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Posts `body` as is, with `Content-Type: application/json`.
async fn post_raw(srv: &TestServer, path: &str, body: &str) -> (StatusCode, Value) {
    let (status, v, _) = post_text(srv, path, body).await;
    (StatusCode::from_u16(status).unwrap(), v)
}

fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Polls `f` until it returns true, for effects that land asynchronously.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn publish_reaches_a_websocket_subscriber() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut ws, &["orders"]).await;
    let (status, body) = post(
        &srv,
        "/api/publish",
        json!({"channel": "orders", "event_type": "order_created", "data": {"id": 7, "items": [1, 2]}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channel"], "orders");
    assert_eq!(body["subscribers"], 1);
    let ev = recv(&mut ws).await;
    assert_eq!(ev["type"], "event", "{ev}");
    assert_eq!(ev["channel"], "orders");
    assert_eq!(ev["event_type"], "order_created");
    assert_eq!(ev["data"], json!({"id": 7, "items": [1, 2]}));
    assert!(ev["message_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(ev.get("publisher").is_none());

    // No subscribers: still fine, counted as zero.
    let (status, body) = post(
        &srv,
        "/api/publish",
        json!({"channel": "nobody", "event_type": "x", "data": null}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["subscribers"], 0);
}

#[tokio::test]
async fn publish_refuses_bad_input_with_json_errors() {
    let srv = TestServer::start(&[]).await;
    // Malformed JSON.
    let (s, b) = post_raw(&srv, "/api/publish", "{\"channel\": \"a\",").await;
    assert_error(s, &b, 400, "bad_request");
    // Missing field.
    let (s, b) = post(
        &srv,
        "/api/publish",
        json!({"channel": "a", "event_type": "x"}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    // Wrong type.
    let (s, b) = post(
        &srv,
        "/api/publish",
        json!({"channel": 5, "event_type": "x", "data": 1}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    // Bad channel names.
    for ch in ["", "a b", "é", &"a".repeat(201)] {
        let (s, b) = post(
            &srv,
            "/api/publish",
            json!({"channel": ch, "event_type": "x", "data": 1}),
        )
        .await;
        assert_error(s, &b, 400, "bad_request");
    }
    // event_type: 1..=128 characters.
    for et in [String::new(), "e".repeat(129)] {
        let (s, b) = post(
            &srv,
            "/api/publish",
            json!({"channel": "a", "event_type": et, "data": 1}),
        )
        .await;
        assert_error(s, &b, 400, "bad_request");
    }
    let (s, _) = post(
        &srv,
        "/api/publish",
        json!({"channel": "a", "event_type": "é".repeat(128), "data": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // Not declared as JSON.
    let r = client()
        .post(srv.http("/api/publish"))
        .body(r#"{"channel":"a","event_type":"x","data":1}"#)
        .send()
        .await
        .unwrap();
    let s = r.status();
    let b: Value = r.json().await.unwrap();
    assert_error(s, &b, 415, "bad_request");
    // Too large for the node.
    let srv_small = TestServer::start(&[("connection.max_message_size", "1024")]).await;
    let huge = json!({"channel": "a", "event_type": "x", "data": "z".repeat(400 << 10)});
    let (s, b) = post(&srv_small, "/api/publish", huge).await;
    assert_error(s, &b, 413, "bad_request");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let srv = TestServer::start(&[]).await;
    for path in ["/api/nope", "/nope", "/api/channels/a/b/c", "/api"] {
        let (s, b) = get(&srv, path).await;
        assert_error(s, &b, 404, "not_found");
    }
    // Wrong method on a known route.
    let r = client().get(srv.http("/api/publish")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().get("allow").is_some());
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["code"].is_string(), "{b}");
    let r = client()
        .delete(srv.http("/api/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"]["message"].is_string(), "{b}");
}

#[tokio::test]
async fn broadcast_to_two_channels() {
    let srv = TestServer::start(&[]).await;
    let (mut a, _) = connect(&srv.ws_url(""), None).await;
    let (mut b, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut a, &["news"]).await;
    subscribe(&mut b, &["sports", "news"]).await;
    let (s, body) = post(
        &srv,
        "/api/broadcast",
        json!({"channels": ["news", "sports", "news", "empty"], "event_type": "headline", "data": {"t": 1}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let got: Vec<(&str, u64)> = results
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap(),
                r["subscribers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [("news", 2), ("sports", 1), ("empty", 0)]);
    let ev = recv(&mut a).await;
    assert_eq!(
        (ev["channel"].as_str(), ev["event_type"].as_str()),
        (Some("news"), Some("headline"))
    );
    let mut seen = BTreeSet::new();
    for _ in 0..2 {
        let ev = recv(&mut b).await;
        assert_eq!(ev["data"], json!({"t": 1}));
        seen.insert(ev["channel"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen,
        BTreeSet::from(["news".to_owned(), "sports".to_owned()])
    );
}

#[tokio::test]
async fn broadcast_checks_every_name_before_publishing() {
    let srv = TestServer::start(&[]).await;
    let before = srv
        .shared
        .metrics
        .publications
        .load(std::sync::atomic::Ordering::Relaxed);
    let (s, b) = post(
        &srv,
        "/api/broadcast",
        json!({"channels": ["ok", "not ok"], "event_type": "x", "data": 1}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = post(
        &srv,
        "/api/broadcast",
        json!({"channels": [], "event_type": "x", "data": 1}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    let many: Vec<String> = (0..1001).map(|i| format!("c{i}")).collect();
    let (s, b) = post(
        &srv,
        "/api/broadcast",
        json!({"channels": many, "event_type": "x", "data": 1}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = post(
        &srv,
        "/api/broadcast",
        json!({"channels": ["a"], "event_type": "", "data": 1}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    let after = srv
        .shared
        .metrics
        .publications
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(before, after, "nothing was published");
    let thousand: Vec<String> = (0..1000).map(|i| format!("c{i}")).collect();
    let (s, b) = post(
        &srv,
        "/api/broadcast",
        json!({"channels": thousand, "event_type": "x", "data": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["results"].as_array().unwrap().len(), 1000);
}

#[tokio::test]
async fn send_reaches_every_connection_of_the_user() {
    let srv = TestServer::start(&[]).await;
    let (mut bob1, _) = connect(&srv.ws_url("?user_id=bob"), None).await;
    let (mut bob2, _) = connect(&srv.ws_url("?user_id=bob"), Some("hubbub.msgpack.v1")).await;
    let (mut alice, _) = connect(&srv.ws_url("?user_id=alice"), None).await;
    let (s, body) = post(
        &srv,
        "/api/users/bob/send",
        json!({"event_type": "notification", "data": {"text": "hi bob"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"connections": 2, "queued": false}));
    let e1 = recv(&mut bob1).await;
    let e2 = recv(&mut bob2).await;
    for e in [&e1, &e2] {
        assert_eq!(e["type"], "event", "{e}");
        assert_eq!(e["channel"], "user:bob");
        assert_eq!(e["event_type"], "notification");
        assert_eq!(e["data"], json!({"text": "hi bob"}));
    }
    // One publication: the same message id in both encodings.
    assert_eq!(e1["message_id"], e2["message_id"]);
    // Alice got nothing: her next message is the pong.
    let pong = call(&mut alice, json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong");

    // A user with no live connection.
    let (s, body) = post(
        &srv,
        "/api/users/nobody/send",
        json!({"event_type": "x", "data": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!({"connections": 0, "queued": true}));
    // Bad input.
    let (s, b) = post(
        &srv,
        "/api/users/bad%20user/send",
        json!({"event_type": "x", "data": 1}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = post(
        &srv,
        "/api/users/bob/send",
        json!({"event_type": "", "data": 1}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = post_raw(&srv, "/api/users/bob/send", "nope").await;
    assert_error(s, &b, 400, "bad_request");
}

#[tokio::test]
async fn disconnect_a_user_with_4100() {
    let srv = TestServer::start(&[]).await;
    let (mut c1, _) = Raw::connect(srv.addr, "/ws?user_id=carol", "").await;
    let (mut c2, _) = Raw::connect(srv.addr, "/ws?user_id=carol", "").await;
    assert_eq!(c1.next_json().await.unwrap()["type"], "connected");
    assert_eq!(c2.next_json().await.unwrap()["type"], "connected");
    let (s, body) = post(
        &srv,
        "/api/users/carol/disconnect",
        json!({"reason": "account suspended", "reconnect": false}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"disconnected": 2}));
    for c in [&mut c1, &mut c2] {
        let (d, code) = c.until_close().await;
        let d = d.expect("disconnect before the close frame");
        assert_eq!(d["type"], "disconnect");
        assert_eq!(d["code"], 4100);
        assert_eq!(d["reason"], "account suspended");
        assert_eq!(d["reconnect"], false);
        assert_eq!(code, Some(4100));
    }
    // Without a body: reconnect defaults to true.
    let (mut c3, _) = Raw::connect(srv.addr, "/ws?user_id=dave", "").await;
    assert_eq!(c3.next_json().await.unwrap()["type"], "connected");
    let r = client()
        .post(srv.http("/api/users/dave/disconnect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"disconnected": 1}));
    let (d, code) = c3.until_close().await;
    let d = d.unwrap();
    assert_eq!(
        (d["code"].as_u64(), d["reconnect"].as_bool()),
        (Some(4100), Some(true))
    );
    assert_eq!(code, Some(4100));
    // Unknown user: nothing to do.
    let (s, body) = post(&srv, "/api/users/ghost/disconnect", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!({"disconnected": 0}));
    // A reason that does not fit a close frame.
    let (s, b) = post(
        &srv,
        "/api/users/ghost/disconnect",
        json!({"reason": "r".repeat(124)}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
    let (s, b) = post(
        &srv,
        "/api/users/ghost/disconnect",
        json!({"reconnect": "yes"}),
    )
    .await;
    assert_error(s, &b, 400, "bad_request");
}

#[tokio::test]
async fn disconnect_one_connection() {
    let srv = TestServer::start(&[]).await;
    let (mut keep, _) = Raw::connect(srv.addr, "/ws?user_id=erin", "").await;
    let (mut drop_me, _) = Raw::connect(srv.addr, "/ws?user_id=erin", "").await;
    keep.next_json().await.unwrap();
    let connected = drop_me.next_json().await.unwrap();
    let id = connected["connection_id"].as_str().unwrap().to_owned();
    let (s, body) = post(
        &srv,
        &format!("/api/connections/{id}/disconnect"),
        json!({"reconnect": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"disconnected": 1}));
    let (d, code) = drop_me.until_close().await;
    assert_eq!(d.unwrap()["code"], 4100);
    assert_eq!(code, Some(4100));
    drop(drop_me);
    // The other one is untouched.
    keep.send_json(json!({"type": "ping", "id": 1})).await;
    assert_eq!(keep.next_json().await.unwrap()["type"], "pong");
    // Gone, unknown, malformed ids: 404.
    let gone = format!("/api/connections/{id}/disconnect");
    eventually("the connection to leave", || async {
        let (s, _) = post(&srv, &gone, json!({})).await;
        s == StatusCode::NOT_FOUND
    })
    .await;
    for bad in ["nope", "x-1", "zzzz-ffffffff"] {
        let (s, b) = post(
            &srv,
            &format!("/api/connections/{bad}/disconnect"),
            json!({}),
        )
        .await;
        assert_error(s, &b, 404, "not_found");
    }
}

#[tokio::test]
async fn stats_move_with_traffic() {
    let srv = TestServer::start(&[("server.node_id", "node-a")]).await;
    let (s, before) = get(&srv, "/api/stats").await;
    assert_eq!(s, StatusCode::OK);
    for field in [
        "total_connections",
        "active_connections",
        "authenticated_connections",
        "total_messages_sent",
        "total_messages_received",
        "channels",
        "subscription_counts",
        "rooms",
        "rate_limited",
        "slow_consumer_disconnects",
        "ping_timeouts",
        "connection_errors",
        "errors",
        "average_connection_duration_seconds",
        "average_latency_ms",
        "messages_per_second",
        "connection_states",
        "uptime_seconds",
        "node_id",
        "nodes",
    ] {
        assert!(before.get(field).is_some(), "missing {field}: {before}");
    }
    assert_eq!(before["node_id"], "node-a");
    assert_eq!(before["active_connections"], 0);
    assert_eq!(before["nodes"][0]["node_id"], "node-a");

    let (mut a, _) = connect(&srv.ws_url("?user_id=fay"), None).await;
    let (mut b, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut a, &["s1", "s2"]).await;
    subscribe(&mut b, &["s1"]).await;
    post(
        &srv,
        "/api/publish",
        json!({"channel": "s1", "event_type": "x", "data": 1}),
    )
    .await;
    recv(&mut a).await;
    recv(&mut b).await;
    // An error message counts in `errors`.
    let e = call(&mut b, json!({"type": "nonsense"})).await;
    assert_eq!(e["type"], "error");

    // Traffic totals and rates come from the load sample (once per
    // `server.load_interval_ms`): wait for the one that saw the traffic.
    // Sent: 2 connected + 2 subscribed + 2 events + 1 error; received: 2 subscribes + 1 bad.
    let deadline = tokio::time::Instant::now() + WAIT;
    let st = loop {
        let st = get(&srv, "/api/stats").await.1;
        if st["total_messages_sent"].as_u64().unwrap() >= 7
            && st["total_messages_received"].as_u64().unwrap() >= 3
            && st["messages_per_second"].as_f64().unwrap() > 0.0
        {
            break st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no load sample with the traffic: {st}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(st["total_connections"], 2, "{st}");
    assert_eq!(st["active_connections"], 2);
    assert_eq!(st["authenticated_connections"], 1);
    // fay's connection is also on its own user:fay.
    assert_eq!(st["channels"], 3);
    assert_eq!(
        st["subscription_counts"],
        json!({"s1": 2, "s2": 1, "user:fay": 1})
    );
    assert_eq!(st["connection_states"], json!({"open": 2, "closing": 0}));
    assert_eq!(st["rooms"], 0);
    assert_eq!(st["errors"], 1);
    assert_eq!(st["nodes"][0]["connections"], 2);
    assert!(st["average_latency_ms"].as_f64().unwrap() > 0.0, "{st}");

    // Closed connections keep counting.
    drop(a);
    drop(b);
    eventually("connections to close", || async {
        get(&srv, "/api/stats").await.1["active_connections"] == 0
    })
    .await;
    let (_, after) = get(&srv, "/api/stats").await;
    assert_eq!(after["total_connections"], 2);
    assert!(after["total_messages_sent"].as_u64() >= st["total_messages_sent"].as_u64());
    assert!(after["total_messages_received"].as_u64() >= st["total_messages_received"].as_u64());
    assert!(
        after["average_connection_duration_seconds"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(after["channels"], 0);
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

async fn metrics_text(srv: &TestServer) -> String {
    let r = client().get(srv.http("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_move_with_traffic() {
    let srv = TestServer::start(&[]).await;
    let t0 = metrics_text(&srv).await;
    for family in [
        "hubbub_connections_active",
        "hubbub_connections_accepted_total",
        "hubbub_connections_closed_total",
        "hubbub_messages_sent_total",
        "hubbub_messages_received_total",
        "hubbub_bytes_sent_total",
        "hubbub_bytes_received_total",
        "hubbub_publications_total",
        "hubbub_deliveries_total",
        "hubbub_slow_consumer_disconnects_total",
        "hubbub_rate_limited_messages_total",
        "hubbub_rate_limit_disconnects_total",
        "hubbub_ping_timeouts_total",
        "hubbub_handshakes_refused_total",
        "hubbub_connections_refused_full_total",
        "hubbub_channels",
        "hubbub_uptime_seconds",
        "hubbub_publish_latency_seconds_count",
    ] {
        sample(&t0, family);
    }
    assert!(t0.contains("# TYPE hubbub_publish_latency_seconds histogram"));
    assert!(t0.contains("hubbub_publish_latency_seconds_bucket{le=\"+Inf\"}"));

    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut ws, &["m"]).await;
    for _ in 0..3 {
        post(
            &srv,
            "/api/publish",
            json!({"channel": "m", "event_type": "x", "data": 1}),
        )
        .await;
        recv(&mut ws).await;
    }
    // A refused handshake.
    let resp = http_raw(
        srv.addr,
        &ws_request(srv.addr, "/ws", "Sec-WebSocket-Protocol: nope\r\n"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");

    // Traffic totals come from the load sample: wait for the one that saw it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let t1 = loop {
        let t1 = metrics_text(&srv).await;
        if sample(&t1, "hubbub_messages_sent_total") >= 5.0
            && sample(&t1, "hubbub_messages_received_total") >= 1.0
            && sample(&t1, "hubbub_bytes_sent_total") > sample(&t0, "hubbub_bytes_sent_total")
        {
            break t1;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no load sample with the traffic: {t1}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(sample(&t1, "hubbub_connections_active"), 1.0);
    assert_eq!(sample(&t1, "hubbub_connections_accepted_total"), 1.0);
    assert_eq!(sample(&t1, "hubbub_publications_total"), 3.0);
    assert_eq!(sample(&t1, "hubbub_deliveries_total"), 3.0);
    assert_eq!(sample(&t1, "hubbub_publish_latency_seconds_count"), 3.0);
    assert_eq!(sample(&t1, "hubbub_channels"), 1.0);
    assert_eq!(sample(&t1, "hubbub_handshakes_refused_total"), 1.0);
    assert!(sample(&t1, "process_resident_memory_bytes") > 0.0, "{t1}");
    assert!(sample(&t1, "hubbub_load_samples_total") >= 1.0, "{t1}");

    drop(ws);
    eventually("the connection to close", || async {
        sample(&metrics_text(&srv).await, "hubbub_connections_closed_total") == 1.0
    })
    .await;
    let t2 = metrics_text(&srv).await;
    assert_eq!(sample(&t2, "hubbub_connections_active"), 0.0);
    assert!(sample(&t2, "hubbub_messages_sent_total") >= sample(&t1, "hubbub_messages_sent_total"));
}

#[tokio::test]
async fn streams_lists_the_nine_built_in_streams() {
    let srv = TestServer::start(&[]).await;
    let (s, body) = get(&srv, "/api/streams").await;
    assert_eq!(s, StatusCode::OK);
    let list = body.as_array().unwrap();
    let names: Vec<&str> = list
        .iter()
        .map(|s| s["channel"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "metrics",
            "nodes",
            "tasks",
            "alerts",
            "resources",
            "topology",
            "connections",
            "status",
            "logs"
        ]
    );
    for s in list {
        assert!(s["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(!s["event_types"].as_array().unwrap().is_empty());
    }
    assert_eq!(list[0]["interval_ms"], 5000);
    assert_eq!(list[0]["event_types"], json!(["system_metrics"]));
    assert_eq!(list[4]["interval_ms"], 15000);
    assert!(list[3].get("interval_ms").is_none());
}

#[tokio::test]
async fn channels_list_and_lookup() {
    let srv = TestServer::start(&[("namespaces.chat.history_size", "7")]).await;
    let (s, body) = get(&srv, "/api/channels").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!([]));
    let (mut a, _) = connect(&srv.ws_url(""), None).await;
    let (mut b, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut a, &["chat:lobby", "plain"]).await;
    subscribe(&mut b, &["chat:lobby"]).await;
    let (_, mut body) = get(&srv, "/api/channels").await;
    // Subscribed channels that keep history have a position from their
    // first subscriber on: offset 0 of an epoch of their own.
    for c in body.as_array_mut().unwrap() {
        let epoch = c.as_object_mut().unwrap().remove("epoch").unwrap();
        assert_eq!(epoch.as_str().map(str::len), Some(16), "{c}");
    }
    assert_eq!(
        body,
        json!([
            {"channel": "chat:lobby", "subscribers": 2, "offset": 0, "history_size": 7},
            {"channel": "plain", "subscribers": 1, "offset": 0, "history_size": 100},
        ])
    );
    let (s, one) = get(&srv, "/api/channels/chat:lobby").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["subscribers"], 2, "{one}");
    assert_eq!(one["offset"], 0, "{one}");
    assert_eq!(one["history_size"], 7, "{one}");
    let (s, b) = get(&srv, "/api/channels/unknown").await;
    assert_error(s, &b, 404, "not_found");
    let (s, b) = get(&srv, "/api/channels/bad%20name").await;
    assert_error(s, &b, 400, "bad_request");
}

#[tokio::test]
async fn connections_filters() {
    let srv = TestServer::start(&[]).await;
    let (mut g1, c1) = connect(&srv.ws_url("?user_id=gil"), None).await;
    let (_g2, c2) = connect(&srv.ws_url("?user_id=gil"), Some("hubbub.msgpack.v1")).await;
    let (mut h, c3) = connect(&srv.ws_url("?user_id=hal"), None).await;
    let (_anon, c4) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut g1, &["room1"]).await;
    subscribe(&mut h, &["room1", "room2"]).await;

    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["connection_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let id = |c: &Value| c["connection_id"].as_str().unwrap().to_owned();

    let (s, all) = get(&srv, "/api/connections").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&all), [id(&c1), id(&c2), id(&c3), id(&c4)]);
    let first = &all[0];
    assert_eq!(first["user_id"], "gil");
    assert_eq!(first["state"], "open");
    assert_eq!(first["encoding"], "json");
    assert_eq!(first["subscriptions"], json!(["user:gil", "room1"]));
    assert!(first["remote_addr"]
        .as_str()
        .unwrap()
        .parse::<SocketAddr>()
        .is_ok());
    assert!(first["connected_at"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(first["messages_sent"].as_u64().unwrap() >= 2);
    assert!(first["messages_received"].as_u64().unwrap() >= 1);
    assert!(first["queue_bytes"].is_u64());
    assert_eq!(all[1]["encoding"], "msgpack");
    assert!(all[3]["user_id"].is_null());

    let (_, gil) = get(&srv, "/api/connections?user_id=gil").await;
    assert_eq!(ids(&gil), [id(&c1), id(&c2)]);
    let (_, room1) = get(&srv, "/api/connections?channel=room1").await;
    assert_eq!(ids(&room1), [id(&c1), id(&c3)]);
    let (_, both) = get(&srv, "/api/connections?channel=room1&user_id=hal").await;
    assert_eq!(ids(&both), [id(&c3)]);
    let (_, none) = get(&srv, "/api/connections?channel=room2&user_id=gil").await;
    assert_eq!(none, json!([]));
    let (_, limited) = get(&srv, "/api/connections?limit=2").await;
    assert_eq!(ids(&limited), [id(&c1), id(&c2)]);
    let (_, capped) = get(&srv, "/api/connections?limit=99999999").await;
    assert_eq!(capped.as_array().unwrap().len(), 4);
    let (_, nobody) = get(&srv, "/api/connections?user_id=nobody").await;
    assert_eq!(nobody, json!([]));
    for bad in ["limit=-1", "limit=ten", "channel=a%20b", "user_id="] {
        let (s, b) = get(&srv, &format!("/api/connections?{bad}")).await;
        assert_error(s, &b, 400, "bad_request");
    }
}

#[tokio::test]
async fn api_key_is_required_when_configured() {
    let key = "k3y-for-tests-0123456789";
    let srv = TestServer::start(&[("api.key", key)]).await;
    let c = client();
    // No header, wrong key, wrong scheme: 401 with a JSON body that does not echo keys.
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic k3y-for-tests-0123456789"),
        Some(&format!("Bearer {key}x")[..]),
    ] {
        let mut req = c.get(srv.http("/api/stats"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let text = r.text().await.unwrap();
        assert!(!text.contains("k3y"), "{text}");
        let b: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(b["error"]["code"], "unauthorized");
    }
    // POST routes too, before the body is looked at.
    let r = c
        .post(srv.http("/api/publish"))
        .json(&json!({"channel": "a", "event_type": "x", "data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Unknown routes under /api/ do not reveal themselves without the key.
    let r = c.get(srv.http("/api/whatever")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Right key.
    let auth = format!("Bearer {key}");
    let r = c
        .get(srv.http("/api/stats"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .post(srv.http("/api/publish"))
        .header("authorization", &auth)
        .json(&json!({"channel": "a", "event_type": "x", "data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(srv.http("/api/whatever"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Open routes stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/api/streams"] {
        let r = c.get(srv.http(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn without_a_key_loopback_is_answered() {
    let srv = TestServer::start(&[]).await;
    let (s, _) = get(&srv, "/api/stats").await;
    assert_eq!(s, StatusCode::OK);
    // A bearer header is not needed and does not hurt.
    let r = client()
        .get(srv.http("/api/stats"))
        .header("authorization", "Bearer anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // (Refusing non-loopback peers with 403 is unit-tested in http::auth,
    // since every address a test can bind is loopback.)
}

#[tokio::test]
async fn health_and_readiness() {
    let srv = TestServer::start(&[]).await;
    let (s, b) = get(&srv, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "ok");
    let (s, b) = get(&srv, "/readyz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({"status": "ready"}));
}

#[tokio::test]
async fn readyz_is_503_once_shutdown_begins() {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use tower::ServiceExt;

    let config = hubbub_server::Config::load(&hubbub_server::Sources::default()).unwrap();
    let shared = hubbub_server::internals::Shared::new(config);
    let app = hubbub_server::internals::app(shared.clone());
    let request = || {
        let mut r = axum::http::Request::get("/readyz")
            .body(Body::empty())
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        r
    };
    let r = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    shared.begin_shutdown();
    let r = app.oneshot(request()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "unavailable");
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let srv = TestServer::start(&[]).await;
    let r = client()
        .get(srv.http("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.0."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let table = route_table();
    assert!(table.len() >= 14);
    for route in &table {
        let op = paths
            .get(route.path)
            .and_then(|p| p.get(route.verb.openapi_key()))
            .unwrap_or_else(|| {
                panic!(
                    "{:?} {} is not in the OpenAPI document",
                    route.verb, route.path
                )
            });
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        if route.open {
            assert_eq!(op["security"], json!([]), "{}", route.path);
        } else {
            assert!(op.get("security").is_none(), "{}", route.path);
        }
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        table.len(),
        "the document lists operations the router does not serve"
    );
}
