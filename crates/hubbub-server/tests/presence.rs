//! Presence on channels whose namespace keeps it: entries and counts over
//! the protocol and the HTTP API, and leaving on unsubscribe, on close and
//! on a peer that went silent without a close frame.

mod common;

use std::time::Duration;

use common::{call, connect, subscribe, Raw, TestServer, WAIT};
use futures_util::StreamExt;
use serde_json::{json, Value};

async fn stats(srv: &TestServer, channel: &str) -> Value {
    srv.get_json(&format!("/api/channels/{channel}")).await["presence_stats"].clone()
}

/// Polls the channel's counts until they are `want` (bounded by WAIT).
async fn wait_stats(srv: &TestServer, channel: &str, want: Value) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = srv
            .get_json(&format!("/api/channels/{channel}/presence"))
            .await;
        let n = got["members"].as_array().map_or(0, |m| m.len());
        if json!(n) == want["num_clients"] {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "presence still {got}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn presence_lists_and_counts_connections_and_users() {
    let srv = TestServer::start(&[("namespaces.team.presence", "true")]).await;
    let (mut ann1, c1) = connect(&srv.ws_url("?user_id=ann"), None).await;
    let (mut ann2, _) = connect(&srv.ws_url("?user_id=ann"), None).await;
    let (mut anon, _) = connect(&srv.ws_url(""), None).await;
    for ws in [&mut ann1, &mut ann2, &mut anon] {
        subscribe(ws, &["team:core"]).await;
    }
    let r = call(
        &mut ann1,
        json!({"type": "presence", "id": 1, "channel": "team:core"}),
    )
    .await;
    assert_eq!(
        (r["type"].as_str(), r["correlation_id"].as_u64()),
        (Some("presence"), Some(1))
    );
    let members = r["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{r}");
    assert_eq!(
        members[0]["connection_id"], c1["connection_id"],
        "oldest first"
    );
    assert_eq!(members[0]["user_id"], "ann");
    assert!(members[0]["joined_at"].as_u64().unwrap() > 0);
    assert_eq!(members[0]["info"], json!({}));
    assert!(members.iter().any(|m| m["user_id"].is_null()));

    let r = call(
        &mut anon,
        json!({"type": "presence_stats", "channel": "team:core"}),
    )
    .await;
    assert_eq!(
        r,
        json!({"type": "presence_stats", "channel": "team:core", "num_clients": 3, "num_users": 1, "timestamp": r["timestamp"]})
    );
    assert_eq!(
        stats(&srv, "team:core").await,
        json!({"num_clients": 3, "num_users": 1})
    );
    let http = srv.get_json("/api/channels/team:core/presence").await;
    assert_eq!(http["members"].as_array().unwrap().len(), 3);

    // Unsubscribing leaves; so does closing.
    call(
        &mut ann2,
        json!({"type": "unsubscribe", "channels": ["team:core"]}),
    )
    .await;
    assert_eq!(
        stats(&srv, "team:core").await,
        json!({"num_clients": 2, "num_users": 1})
    );
    anon.close(None).await.unwrap();
    wait_stats(&srv, "team:core", json!({"num_clients": 1})).await;
    assert_eq!(
        stats(&srv, "team:core").await,
        json!({"num_clients": 1, "num_users": 1})
    );
}

#[tokio::test]
async fn presence_needs_a_channel_that_keeps_it() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(&mut ws, json!({"type": "presence", "channel": "plain"})).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("bad_request")),
        "{r}"
    );
    let r = call(
        &mut ws,
        json!({"type": "presence_stats", "channel": "no such"}),
    )
    .await;
    assert_eq!(r["code"], "bad_request", "{r}");
    let r = reqwest::get(srv.http("/api/channels/plain/presence"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "no presence to show");
    subscribe(&mut ws, &["plain"]).await;
    let one = srv.get_json("/api/channels/plain").await;
    assert!(one.get("presence_stats").is_none(), "{one}");
}

#[tokio::test]
async fn a_silent_peer_leaves_presence_within_the_heartbeat_timeout() {
    let srv = TestServer::start(&[
        ("namespaces.team.presence", "true"),
        ("connection.heartbeat_interval_ms", "100"),
        ("connection.connection_timeout_ms", "400"),
    ])
    .await;
    // Completes the handshake and subscribes, then neither reads nor
    // answers pings, and never closes: a peer whose network went away.
    let (mut raw, head) = Raw::connect(srv.addr, "/ws?user_id=gone", "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    raw.send_json(json!({"type": "subscribe", "channels": ["team:x"]}))
        .await;
    let (mut live, _) = connect(&srv.ws_url("?user_id=here"), None).await;
    subscribe(&mut live, &["team:x"]).await;
    // The live client reads on, so its pings are answered.
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = live.next().await {} });
    wait_stats(&srv, "team:x", json!({"num_clients": 2})).await;
    wait_stats(&srv, "team:x", json!({"num_clients": 1})).await;
    let left = srv.get_json("/api/channels/team:x/presence").await;
    assert_eq!(left["members"][0]["user_id"], "here", "{left}");
    drop(raw);
    reader.abort();
}
