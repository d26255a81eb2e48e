//! The WebSocket protocol over real sockets: commands, replies, errors.

mod common;

use common::*;
use futures_util::SinkExt;
use hubbub_protocol::message::{Empty, Subscribe};
use hubbub_protocol::{codec::encode_command, Command, CorrelationId, Encoding};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::Message as TMessage;

#[tokio::test]
async fn connected_comes_first_with_every_field() {
    let srv = TestServer::start(&[]).await;
    let (_ws, c) = connect(&srv.ws_url("?user_id=alice"), None).await;
    assert!(c["connection_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(c["user_id"], "alice");
    assert_eq!(c["encoding"], "json");
    assert_eq!(c["heartbeat_interval_ms"], 25_000);
    assert_eq!(c["max_message_size"], 1 << 20);
    assert!(c["server_time"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(c["timestamp"].as_u64().is_some());
    assert_eq!(
        c["features"],
        serde_json::json!([
            "history",
            "recovery",
            "user_queue",
            "presence",
            "rooms",
            "rpc"
        ])
    );
    let (_ws, anon) = connect(&srv.ws_url(""), None).await;
    assert!(anon["user_id"].is_null());
}

#[tokio::test]
async fn subscribe_unsubscribe_and_list_with_correlation_ids() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","id":1,"channels":["a","b","a"]}),
    )
    .await;
    assert_eq!(r["type"], "subscribed");
    assert_eq!(r["correlation_id"], 1);
    let chans: Vec<_> = r["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(chans, ["a", "b"]);
    assert_eq!(r["channels"][0]["offset"], 0);
    assert_eq!(r["channels"][0]["recovered"], false);
    assert_eq!(r["channels"][0]["missed"], 0);
    let r = call(&mut ws, json!({"type":"get_subscriptions","id":"q"})).await;
    assert_eq!(r["type"], "subscriptions");
    assert_eq!(r["correlation_id"], "q");
    assert_eq!(r["channels"], json!(["a", "b"]));
    let r = call(
        &mut ws,
        json!({"type":"unsubscribe","id":2,"channels":["a"]}),
    )
    .await;
    assert_eq!(r["type"], "unsubscribed");
    assert_eq!(r["channels"], json!(["a"]));
    let r = call(&mut ws, json!({"type":"get_subscriptions"})).await;
    assert_eq!(r["channels"], json!(["b"]));
    assert!(r.get("correlation_id").is_none());
    let r = call(&mut ws, json!({"type":"ping","id":9})).await;
    assert_eq!(r["type"], "pong");
    assert_eq!(r["correlation_id"], 9);
    // Channels with no subscribers are dropped.
    assert_eq!(srv.shared.hub.subscriber_count("a"), None);
    assert_eq!(srv.shared.hub.subscriber_count("b"), Some(1));
}

#[tokio::test]
async fn publish_reaches_subscribers_only_where_allowed() {
    let srv = TestServer::start(&[("namespaces.chat.publish", "true")]).await;
    let (mut a, ca) = connect(&srv.ws_url("?user_id=ann"), None).await;
    let (mut b, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut b, &["chat:1"]).await;
    let r = call(&mut a, json!({"type":"publish","id":"p","channel":"chat:1","event_type":"room_message","data":{"text":"hi"}})).await;
    assert_eq!(r["type"], "published", "{r}");
    assert_eq!(r["correlation_id"], "p");
    assert_eq!(r["channel"], "chat:1");
    let ev = recv(&mut b).await;
    assert_eq!(ev["type"], "event");
    assert_eq!(ev["channel"], "chat:1");
    assert_eq!(ev["event_type"], "room_message");
    assert_eq!(ev["data"], json!({"text":"hi"}));
    assert!(ev["message_id"].as_str().is_some());
    assert_eq!(ev["publisher"]["user_id"], "ann");
    assert_eq!(ev["publisher"]["connection_id"], ca["connection_id"]);
    // Default namespace: clients may not publish.
    let r = call(
        &mut a,
        json!({"type":"publish","id":3,"channel":"orders","event_type":"x","data":1}),
    )
    .await;
    assert_eq!(r["type"], "error");
    assert_eq!(r["code"], "forbidden");
    assert_eq!(r["correlation_id"], 3);
    // Built-in streams and personal channels never.
    for ch in ["metrics", "user:ann"] {
        let r = call(
            &mut a,
            json!({"type":"publish","channel":ch,"event_type":"x","data":1}),
        )
        .await;
        assert_eq!(r["code"], "forbidden", "{ch}");
    }
}

#[tokio::test]
async fn event_types_filter_delivery() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["t"],"event_types":["keep"]}),
    )
    .await;
    assert_eq!(r["type"], "subscribed");
    srv.node
        .publish_json("t", "drop", hubbub_protocol::JsonData::null())
        .await
        .unwrap();
    srv.node.publish("t", "keep", &7).await.unwrap();
    let ev = recv(&mut ws).await;
    assert_eq!(ev["event_type"], "keep");
    assert_eq!(ev["data"], 7);
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_connection_stays() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    ws.send(TMessage::Text("not json".into())).await.unwrap();
    let r = recv(&mut ws).await;
    assert_eq!(r["code"], "invalid_message");
    let r = call(&mut ws, json!({"type":"teleport","id":"t"})).await;
    assert_eq!(r["code"], "unknown_type");
    assert_eq!(r["correlation_id"], "t");
    let r = call(&mut ws, json!({"type":"subscribe","id":4,"channels":"x"})).await;
    assert_eq!(r["code"], "invalid_message");
    assert_eq!(r["correlation_id"], 4);
    let r = call(
        &mut ws,
        json!({"type":"subscribe","id":5,"channels":["bad name"]}),
    )
    .await;
    assert_eq!(r["code"], "bad_request");
    let r = call(&mut ws, json!({"type":"subscribe","id":6,"channels":[]})).await;
    assert_eq!(r["code"], "bad_request");
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["user:someone"]}),
    )
    .await;
    assert_eq!(r["code"], "forbidden");
    // Rooms are offered; a room name has no ':'.
    let r = call(&mut ws, json!({"type":"join_room","id":"j","room":"a:b"})).await;
    assert_eq!(
        (r["code"].as_str(), r["correlation_id"].as_str()),
        (Some("bad_request"), Some("j"))
    );
    // Presence is offered, on channels that keep it.
    let r = call(&mut ws, json!({"type":"presence","id":"p","channel":"c"})).await;
    assert_eq!(
        (r["code"].as_str(), r["correlation_id"].as_str()),
        (Some("bad_request"), Some("p"))
    );
    for ty in ["algorithm_stop", "auth"] {
        let body = match ty {
            "algorithm_stop" => json!({"type":ty,"id":ty,"job_id":"j"}),
            _ => json!({"type":ty,"id":ty,"token":"t"}),
        };
        let r = call(&mut ws, body).await;
        assert_eq!(r["code"], "unavailable", "{ty}: {r}");
        assert_eq!(r["correlation_id"], ty);
    }
    // No method registered: not found.
    let r = call(
        &mut ws,
        json!({"type":"rpc","id":"r","method":"m","data":null}),
    )
    .await;
    assert_eq!(
        (r["code"].as_str(), r["correlation_id"].as_str()),
        (Some("not_found"), Some("r"))
    );
    let r = call(&mut ws, json!({"type":"ping"})).await;
    assert_eq!(r["type"], "pong");
}

#[tokio::test]
async fn subscription_limit() {
    let srv = TestServer::start(&[("connection.max_subscriptions", "3")]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut ws, &["a", "b"]).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","id":1,"channels":["c","d"]}),
    )
    .await;
    assert_eq!(r["code"], "limit_exceeded");
    // Nothing of a refused subscribe is applied; re-subscribing is free.
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["a","b","c"]}),
    )
    .await;
    assert_eq!(r["type"], "subscribed");
}

#[tokio::test]
async fn msgpack_round_trip() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, c) = connect(&srv.ws_url(""), Some("hubbub.msgpack.v1")).await;
    assert_eq!(c["encoding"], "msgpack");
    let cmd = Command::Subscribe(Subscribe {
        channels: vec!["m".into()],
        since: None,
        event_types: None,
    });
    let bytes = encode_command(&cmd, Some(&CorrelationId::Int(11)), Encoding::Msgpack).unwrap();
    ws.send(TMessage::Binary(bytes.into())).await.unwrap();
    let r = recv(&mut ws).await;
    assert_eq!(r["type"], "subscribed");
    assert_eq!(r["correlation_id"], 11);
    srv.node
        .publish("m", "e", &json!({"n":[1,2.5,"x",null]}))
        .await
        .unwrap();
    let ev = recv(&mut ws).await;
    assert_eq!(ev["data"], json!({"n":[1,2.5,"x",null]}));
    // Text frames are JSON even on a msgpack connection; replies stay msgpack.
    ws.send(TMessage::Text(
        json!({"type":"ping","id":"j"}).to_string().into(),
    ))
    .await
    .unwrap();
    let r = recv(&mut ws).await;
    assert_eq!(r["type"], "pong");
    let bytes = encode_command(&Command::Ping(Empty {}), None, Encoding::Msgpack).unwrap();
    ws.send(TMessage::Binary(bytes.into())).await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "pong");
    ws.send(TMessage::Binary(vec![0xc1].into())).await.unwrap();
    assert_eq!(recv(&mut ws).await["code"], "invalid_message");
}

#[tokio::test]
async fn subprotocol_negotiation() {
    let srv = TestServer::start(&[]).await;
    let (_, head) = Raw::connect(
        srv.addr,
        "/ws",
        "Sec-WebSocket-Protocol: foo, hubbub.msgpack.v1\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: hubbub.msgpack.v1"),
        "{head}"
    );
    let (_, head) = Raw::connect(srv.addr, "/ws", "").await;
    assert!(head.starts_with("HTTP/1.1 101"));
    assert!(!head.to_ascii_lowercase().contains("sec-websocket-protocol"));
    let resp = http_raw(
        srv.addr,
        &ws_request(srv.addr, "/ws", "Sec-WebSocket-Protocol: mqtt\r\n"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(json_of(&resp)["error"]["code"], "bad_request");
    let resp = http_raw(
        srv.addr,
        &ws_request(srv.addr, "/ws", "").replace("Version: 13", "Version: 8"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 426"), "{resp}");
}

#[tokio::test]
async fn echo_endpoint_only_with_testing_option() {
    let srv = TestServer::start(&[]).await;
    let (_, head) = Raw::connect(srv.addr, "/echo", "").await;
    assert!(!head.starts_with("HTTP/1.1 101"), "{head}");
    let srv = TestServer::start(&[("server.testing_echo", "true")]).await;
    let (mut raw, head) = Raw::connect(srv.addr, "/echo", "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    raw.send_frame(hubbub_ws::OpCode::Binary, b"\x00\x01abc")
        .await;
    match raw.next().await.unwrap() {
        hubbub_ws::Message::Binary(b) => assert_eq!(&b[..], b"\x00\x01abc"),
        other => panic!("{other:?}"),
    }
}
