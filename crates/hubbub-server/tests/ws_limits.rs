//! Close paths and limits: 1007, 1009, 4009, 4010, 4029, 503, shutdown.

mod common;

use std::time::Duration;

use common::*;
use hubbub_protocol::JsonData;
use hubbub_ws::OpCode;
use serde_json::json;

#[tokio::test]
async fn invalid_utf8_closes_1007() {
    let srv = TestServer::start(&[]).await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
    assert_eq!(raw.next_json().await.unwrap()["type"], "connected");
    raw.send_frame(OpCode::Text, b"{\"type\":\"ping\xff\"}")
        .await;
    let (disconnect, code) = raw.until_close().await;
    assert_eq!(code, Some(1007));
    assert_eq!(disconnect.unwrap()["code"], 1007);
}

#[tokio::test]
async fn oversized_message_closes_1009() {
    let srv = TestServer::start(&[("connection.max_message_size", "1024")]).await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
    assert_eq!(raw.next_json().await.unwrap()["max_message_size"], 1024);
    let big = json!({"type":"ping","pad":"x".repeat(2000)}).to_string();
    raw.send_frame(OpCode::Text, big.as_bytes()).await;
    let (disconnect, code) = raw.until_close().await;
    assert_eq!(code, Some(1009));
    let d = disconnect.unwrap();
    assert_eq!(d["type"], "disconnect");
    assert_eq!(d["reconnect"], false);
}

#[tokio::test]
async fn heartbeat_timeout_closes_4010() {
    let srv = TestServer::start(&[
        ("connection.heartbeat_interval_ms", "100"),
        ("connection.connection_timeout_ms", "400"),
    ])
    .await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
    let mut pings = 0;
    let code = loop {
        match raw.next().await {
            Some(hubbub_ws::Message::Ping(_)) => pings += 1,
            Some(hubbub_ws::Message::Close(c)) => break c.map(|c| c.code),
            Some(_) => {}
            None => break None,
        }
    };
    assert_eq!(code, Some(4010));
    assert!(pings >= 2, "server pinged {pings} times");
    assert_eq!(
        srv.shared
            .metrics
            .ping_timeouts
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn inbound_traffic_keeps_a_connection_alive() {
    let srv = TestServer::start(&[
        ("connection.heartbeat_interval_ms", "100"),
        ("connection.connection_timeout_ms", "400"),
    ])
    .await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(call(&mut ws, json!({"type":"ping"})).await["type"], "pong");
    }
}

#[tokio::test]
async fn rate_limit_drops_then_closes_4029() {
    let srv = TestServer::start(&[
        ("connection.rate_limit_per_second", "1"),
        ("connection.rate_limit_burst", "5"),
        ("connection.rate_limit_max_drops", "3"),
    ])
    .await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
    raw.next_json().await.unwrap();
    for i in 0..8 {
        raw.send_json(json!({"type":"ping","id":i})).await;
    }
    let mut pongs = 0;
    let mut limited = vec![];
    let code = loop {
        match raw.next().await {
            Some(hubbub_ws::Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_slice(&t).unwrap();
                match v["type"].as_str().unwrap() {
                    "pong" => pongs += 1,
                    "error" => {
                        assert_eq!(v["code"], "rate_limited");
                        limited.push(v["correlation_id"].clone());
                    }
                    "disconnect" => assert_eq!(v["code"], 4029),
                    other => panic!("{other}"),
                }
            }
            Some(hubbub_ws::Message::Close(c)) => break c.map(|c| c.code),
            Some(_) => {}
            None => break None,
        }
    };
    assert_eq!(pongs, 5);
    assert_eq!(limited, vec![json!(5), json!(6)]);
    assert_eq!(code, Some(4029));
}

#[tokio::test]
async fn slow_consumer_is_closed_4009_and_the_publisher_never_blocks() {
    let srv = TestServer::start(&[
        ("connection.outbound_queue_bytes", "262144"),
        ("connection.outbound_queue_messages", "64"),
    ])
    .await;
    // The slow client never reads.
    let mut slow = srv.raw_subscriber("firehose").await;
    let (mut fast, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut fast, &["firehose"]).await;
    let payload = JsonData::from_serialize(&"y".repeat(16 * 1024));
    let mut fast_got = 0;
    for _ in 0..2000 {
        srv.node
            .publish_json("firehose", "blob", payload.clone())
            .await
            .unwrap();
        // The fast client keeps up, so only the slow one overflows.
        while let Ok(v) = tokio::time::timeout(Duration::from_millis(50), recv(&mut fast)).await {
            assert_eq!(v["type"], "event");
            fast_got += 1;
            if fast_got % 10 != 0 {
                break;
            }
        }
        if srv.slow_consumer_disconnects() > 0 {
            break;
        }
    }
    assert_eq!(srv.slow_consumer_disconnects(), 1);
    // The slow client, when it finally reads, finds disconnect 4009 and the close frame.
    let (disconnect, code) = slow.until_close().await;
    assert_eq!(code, Some(4009));
    let d = disconnect.unwrap();
    assert_eq!(d["type"], "disconnect");
    assert_eq!(d["reason"], "slow_consumer");
    assert_eq!(d["reconnect"], true);
    // The fast client is unaffected.
    assert_eq!(
        call(&mut fast, json!({"type":"ping"})).await["type"],
        "pong"
    );
}

#[tokio::test]
async fn connection_limit_answers_503_with_retry_after() {
    let srv = TestServer::start(&[("server.max_connections", "2")]).await;
    let (_a, _) = connect(&srv.ws_url(""), None).await;
    let (_b, _) = connect(&srv.ws_url(""), None).await;
    let resp = http_raw(srv.addr, &ws_request(srv.addr, "/ws", "")).await;
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("retry-after: "),
        "{resp}"
    );
    assert_eq!(json_of(&resp)["error"]["code"], "server_full");
}

#[tokio::test]
async fn graceful_shutdown_sends_1001_and_drains() {
    let mut srv = TestServer::start(&[]).await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
    raw.next_json().await.unwrap();
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut ws, &["x"]).await;
    let stop = tokio::spawn(async move {
        srv.shutdown().await;
        srv
    });
    let (disconnect, code) = raw.until_close().await;
    assert_eq!(code, Some(1001));
    let d = disconnect.unwrap();
    assert_eq!(d["code"], 1001);
    assert_eq!(d["reconnect"], true);
    // Answer the close so the server can finish; tungstenite does it itself.
    raw.send_frame(OpCode::Close, &1001u16.to_be_bytes()).await;
    let d = recv(&mut ws).await;
    assert_eq!(d["type"], "disconnect");
    drop(ws);
    let srv = tokio::time::timeout(WAIT, stop).await.unwrap().unwrap();
    assert_eq!(srv.shared.conns.count(), 0);
    assert!(tokio::net::TcpStream::connect(srv.addr).await.is_err());
}

#[tokio::test]
async fn slowloris_handshake_is_dropped() {
    let srv = TestServer::start(&[("server.handshake_timeout_ms", "300")]).await;
    let n = half_request_head(srv.addr, WAIT).await;
    assert_eq!(n, 0, "connection dropped without an answer");
}
