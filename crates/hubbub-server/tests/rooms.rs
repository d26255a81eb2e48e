//! Rooms over real connections: joining and leaving with their
//! announcements, capacity under a race, private rooms with tokens,
//! messages kept and ephemeral events not, deletion with members
//! connected, and a peer that vanished leaving within the heartbeat timeout.

mod common;

use std::time::Duration;

use common::{call, connect, recv, Raw, TestServer, Ws, WAIT};
use futures_util::StreamExt;
use hubbub_server::auth::jwt::TokenSigner;
use serde_json::{json, Value};

const SECRET: &str = "rooms-suite-secret-0123456789abcdef";

async fn join(ws: &mut Ws, room: &str, info: Value) -> Value {
    call(
        ws,
        json!({"type": "join_room", "id": "j", "room": room, "info": info}),
    )
    .await
}

fn ids(members: &Value) -> Vec<String> {
    members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap_or("-").to_owned())
        .collect()
}

/// Publishes and returns the reply, skipping the publisher's own copy of
/// the event (a member is subscribed to its room).
async fn publish(ws: &mut Ws, body: Value) -> Value {
    common::send(ws, body).await;
    loop {
        let m = recv(ws).await;
        if m["type"] != "event" {
            return m;
        }
    }
}

/// Nothing arrives within a short while (for what must not be sent).
async fn quiet(ws: &mut Ws) {
    if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(150), ws.next()).await {
        if !m.is_ping() && !m.is_pong() {
            panic!("unexpected {m:?}");
        }
    }
}

#[tokio::test]
async fn members_see_each_other_come_talk_and_go() {
    let srv = TestServer::start(&[("namespaces.room.publish", "true")]).await;
    let (mut ann, _) = connect(&srv.ws_url("?user_id=ann"), None).await;
    let (mut bob, hello) = connect(&srv.ws_url("?user_id=bob"), None).await;
    let r = join(&mut ann, "lobby", json!({"name": "Ann"})).await;
    assert_eq!(
        (r["type"].as_str(), r["correlation_id"].as_str()),
        (Some("room_joined"), Some("j")),
        "{r}"
    );
    assert_eq!(ids(&r["members"]), ["ann"]);
    assert_eq!(r["members"][0]["info"], json!({"name": "Ann"}));

    let r = join(&mut bob, "lobby", json!({"name": "Bob"})).await;
    assert_eq!(ids(&r["members"]), ["ann", "bob"], "the joiner included");
    let ev = recv(&mut ann).await;
    assert_eq!(
        (ev["channel"].as_str(), ev["event_type"].as_str()),
        (Some("room:lobby"), Some("user_joined"))
    );
    assert_eq!(
        ev["data"],
        json!({"room": "lobby", "user_id": "bob", "connection_id": hello["connection_id"], "info": {"name": "Bob"}})
    );
    quiet(&mut bob).await; // not its own user_joined

    // A message is kept with an offset; a typing indicator is not.
    let p = publish(&mut bob, json!({"type": "publish", "channel": "room:lobby", "event_type": "room_message", "data": "hi"})).await;
    assert!(p["offset"].as_u64().is_some(), "{p}");
    let msg = recv(&mut ann).await;
    assert_eq!(
        (
            msg["event_type"].as_str(),
            msg["offset"].clone(),
            msg["data"].as_str()
        ),
        (Some("room_message"), p["offset"].clone(), Some("hi"))
    );
    let t = publish(&mut bob, json!({"type": "publish", "channel": "room:lobby", "event_type": "typing_indicator", "data": {"typing": true}})).await;
    assert!(
        t.get("offset").is_none(),
        "ephemeral: no offset in the reply {t}"
    );
    let typing = recv(&mut ann).await;
    assert_eq!(typing["event_type"], "typing_indicator");
    assert!(typing.get("offset").is_none(), "{typing}");
    let h = call(
        &mut ann,
        json!({"type": "history", "channel": "room:lobby"}),
    )
    .await;
    let kept: Vec<&str> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(!kept.contains(&"typing_indicator"), "{kept:?}");
    assert!(kept.contains(&"room_message"));
    // Recovery replays messages, never ephemeral events.
    let since = json!({"room:lobby": {"offset": 0, "epoch": h["epoch"]}});
    let r = call(
        &mut ann,
        json!({"type": "subscribe", "channels": ["room:lobby"], "since": since}),
    )
    .await;
    assert_eq!(r["channels"][0]["recovered"], true, "{r}");
    for _ in 0..r["channels"][0]["missed"].as_u64().unwrap() {
        assert_ne!(recv(&mut ann).await["event_type"], "typing_indicator");
    }

    // Presence and counts are for members.
    let (mut eve, _) = connect(&srv.ws_url("?user_id=eve"), None).await;
    let r = call(
        &mut eve,
        json!({"type": "presence", "channel": "room:lobby"}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = call(
        &mut eve,
        json!({"type": "publish", "channel": "room:lobby", "event_type": "room_message", "data": 1}),
    )
    .await;
    assert_eq!(
        r["code"], "forbidden",
        "members publish, others may not: {r}"
    );
    let r = call(
        &mut ann,
        json!({"type": "presence_stats", "channel": "room:lobby"}),
    )
    .await;
    assert_eq!(
        (r["num_clients"].as_u64(), r["num_users"].as_u64()),
        (Some(2), Some(2))
    );

    let r = publish(&mut bob, json!({"type": "leave_room", "room": "lobby"})).await;
    assert_eq!(r["type"], "room_left");
    let ev = recv(&mut ann).await;
    assert_eq!(
        (ev["event_type"].as_str(), ev["data"]["user_id"].as_str()),
        (Some("user_left"), Some("bob"))
    );
    let r = call(&mut bob, json!({"type": "leave_room", "room": "lobby"})).await;
    assert_eq!(r["code"], "bad_request");

    let stats = srv.get_json("/api/stats").await;
    assert_eq!(stats["rooms"], 1);
    let metrics = reqwest::get(srv.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("hubbub_rooms 1"), "{metrics}");
    assert!(metrics.contains("hubbub_room_members 1"));
    ann.close(None).await.unwrap();
    // A room made by joining goes with its last member.
    let deadline = tokio::time::Instant::now() + WAIT;
    while srv.get_json("/api/rooms").await != json!([]) {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn capacity_holds_when_fifty_join_a_room_of_ten_at_once() {
    let srv = TestServer::start(&[]).await;
    let made = srv
        .post_json("/api/rooms", &json!({"room": "ten", "capacity": 10}))
        .await;
    assert_eq!(made["capacity"], 10, "{made}");
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(connect(&srv.ws_url(""), None).await.0);
    }
    let joins = clients.into_iter().map(|mut ws| {
        tokio::spawn(async move {
            let r = join(&mut ws, "ten", json!({})).await;
            (r, ws)
        })
    });
    let mut answers = Vec::new();
    for j in joins.collect::<Vec<_>>() {
        answers.push(j.await.unwrap());
    }
    let joined = answers
        .iter()
        .filter(|(r, _)| r["type"] == "room_joined")
        .count();
    let full = answers
        .iter()
        .filter(|(r, _)| r["code"] == "room_full")
        .count();
    assert_eq!((joined, full), (10, 40));
    let room = srv.get_json("/api/rooms/ten").await;
    assert_eq!(room["members"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn private_rooms_admit_their_owner_and_the_rooms_claim() {
    let srv = TestServer::start(&[("auth.hs256_secret", SECRET)]).await;
    let made = srv
        .post_json(
            "/api/rooms",
            &json!({"room": "vip", "private": true, "owner": "ann", "metadata": {"topic": "q3"}}),
        )
        .await;
    assert_eq!(
        (
            made["private"].as_bool(),
            made["metadata"]["topic"].as_str()
        ),
        (Some(true), Some("q3"))
    );
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let token = |mut claims: Value| {
        claims["exp"] = json!(exp);
        TokenSigner::hs256(SECRET.as_bytes()).sign(&claims).unwrap()
    };
    // Not even watching a private room without joining it.
    let (mut peek, _) = connect(
        &srv.ws_url(&format!("?token={}", token(json!({"sub": "eve"})))),
        None,
    )
    .await;
    let r = call(
        &mut peek,
        json!({"type": "subscribe", "channels": ["room:vip"]}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    for (claims, ok) in [
        (json!({"sub": "ann"}), true),
        (json!({"sub": "bob"}), false),
        (json!({"sub": "cyd", "rooms": ["vip"]}), true),
        (json!({"sub": "dan", "rooms": ["other"]}), false),
    ] {
        let who = claims["sub"].clone();
        let (mut ws, _) = connect(&srv.ws_url(&format!("?token={}", token(claims))), None).await;
        let r = join(&mut ws, "vip", json!({})).await;
        if ok {
            assert_eq!(r["type"], "room_joined", "{who}: {r}");
        } else {
            assert_eq!(r["code"], "forbidden", "{who}: {r}");
        }
    }
    let dup = reqwest::Client::new()
        .post(srv.http("/api/rooms"))
        .json(&json!({"room": "vip"}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
}

#[tokio::test]
async fn deleting_a_room_tells_its_members_and_removes_them() {
    let srv = TestServer::start(&[]).await;
    srv.post_json("/api/rooms", &json!({"room": "war"})).await;
    let (mut a, _) = connect(&srv.ws_url("?user_id=a"), None).await;
    let (mut b, _) = connect(&srv.ws_url("?user_id=b"), None).await;
    join(&mut a, "war", json!({})).await;
    join(&mut b, "war", json!({})).await;
    recv(&mut a).await; // b's user_joined
    let del = reqwest::Client::new()
        .delete(srv.http("/api/rooms/war"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    for ws in [&mut a, &mut b] {
        let ev = recv(ws).await;
        assert_eq!(
            (ev["event_type"].as_str(), ev["data"].clone()),
            (Some("room_deleted"), json!({"room": "war"}))
        );
        let subs = call(ws, json!({"type": "get_subscriptions"})).await;
        assert!(
            !subs["channels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "room:war"),
            "{subs}"
        );
        quiet(ws).await; // no user_left for each
    }
    let gone = reqwest::get(srv.http("/api/rooms/war")).await.unwrap();
    assert_eq!(gone.status(), 404);
    let again = reqwest::Client::new()
        .delete(srv.http("/api/rooms/war"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn a_vanished_member_leaves_within_the_heartbeat_timeout() {
    let srv = TestServer::start(&[
        ("connection.heartbeat_interval_ms", "100"),
        ("connection.connection_timeout_ms", "400"),
    ])
    .await;
    let (mut stay, _) = connect(&srv.ws_url("?user_id=stay"), None).await;
    join(&mut stay, "ops", json!({})).await;
    // Joins, then neither reads nor answers pings and never closes.
    let (mut raw, _) = Raw::connect(srv.addr, "/ws?user_id=gone", "").await;
    raw.send_json(json!({"type": "join_room", "room": "ops"}))
        .await;
    let started = tokio::time::Instant::now();
    let mut seen = Vec::new();
    loop {
        let ev = recv(&mut stay).await; // recv answers pings as it reads
        seen.push(ev["event_type"].as_str().unwrap_or("").to_owned());
        if ev["event_type"] == "user_left" {
            assert_eq!(ev["data"]["user_id"], "gone");
            break;
        }
    }
    assert_eq!(seen, ["user_joined", "user_left"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let room = srv.get_json("/api/rooms/ops").await;
    assert_eq!(ids(&room["members"]), ["stay"]);
    drop(raw);
}

#[tokio::test]
async fn cursor_floods_spend_their_own_budget() {
    let srv = TestServer::start(&[
        ("namespaces.room.publish", "true"),
        ("connection.ephemeral_rate_per_second", "1"),
        ("connection.ephemeral_rate_burst", "5"),
        ("connection.rate_limit_burst", "20"),
        ("connection.rate_limit_max_drops", "3"),
    ])
    .await;
    let (mut ws, _) = connect(&srv.ws_url("?user_id=mover"), None).await;
    join(&mut ws, "canvas", json!({})).await;
    // Forty cursor moves: five pass, the rest are dropped with
    // rate_limited, and none of them spends the command budget or
    // counts toward the 4029 close.
    for i in 0..40 {
        common::send(&mut ws, json!({"type": "publish", "channel": "room:canvas", "event_type": "cursor_position", "data": {"x": i}})).await;
    }
    let (mut moved, mut dropped) = (0, 0);
    while moved + dropped < 40 {
        let m = recv(&mut ws).await;
        match (m["type"].as_str(), m["code"].as_str()) {
            (Some("published"), _) => moved += 1,
            (Some("error"), Some("rate_limited")) => dropped += 1,
            _ => {} // its own cursor events
        }
    }
    assert_eq!((moved, dropped), (5, 35));
    // Commands still have their whole budget.
    for _ in 0..15 {
        let r = call(&mut ws, json!({"type": "ping"})).await;
        assert_eq!(r["type"], "pong", "{r}");
    }
}

#[tokio::test]
async fn members_joining_at_once_all_learn_of_each_other() {
    let srv = TestServer::start(&[]).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(connect(&srv.ws_url(""), None).await);
    }
    let all: std::collections::BTreeSet<String> = clients
        .iter()
        .map(|(_, hello)| hello["connection_id"].as_str().unwrap().to_owned())
        .collect();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|(mut ws, hello)| {
            tokio::spawn(async move {
                let me = hello["connection_id"].as_str().unwrap().to_owned();
                let r = join(&mut ws, "crowd", json!({})).await;
                let mut known: std::collections::BTreeSet<String> = r["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["connection_id"].as_str().unwrap().to_owned())
                    .collect();
                // Then whoever is announced, until things go quiet.
                while let Ok(Some(Ok(m))) =
                    tokio::time::timeout(Duration::from_millis(300), ws.next()).await
                {
                    let Ok(v) = m.to_text().map(serde_json::from_str::<Value>) else {
                        continue;
                    };
                    let v = v.unwrap_or(Value::Null);
                    if v["event_type"] == "user_joined" {
                        let who = v["data"]["connection_id"].as_str().unwrap().to_owned();
                        assert_ne!(who, me, "never its own user_joined");
                        known.insert(who);
                    }
                }
                (known, ws)
            })
        })
        .collect();
    for t in tasks {
        let (known, _ws) = t.await.unwrap();
        assert_eq!(known, all, "every member learns of every other");
    }
}

#[tokio::test]
async fn a_cut_connection_leaves_at_once() {
    let srv = TestServer::start(&[]).await;
    let (mut stay, _) = connect(&srv.ws_url("?user_id=stay"), None).await;
    join(&mut stay, "cut", json!({})).await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws?user_id=cut", "").await;
    raw.send_json(json!({"type": "join_room", "room": "cut"}))
        .await;
    assert_eq!(recv(&mut stay).await["event_type"], "user_joined");
    // TCP closed without a close frame.
    drop(raw);
    let ev = recv(&mut stay).await;
    assert_eq!(
        (ev["event_type"].as_str(), ev["data"]["user_id"].as_str()),
        (Some("user_left"), Some("cut"))
    );
}

#[tokio::test]
async fn a_member_back_after_a_reconnect_recovers_and_is_present_once() {
    let srv = TestServer::start(&[("namespaces.room.publish", "true")]).await;
    let (mut ann, _) = connect(&srv.ws_url("?user_id=ann"), None).await;
    let (mut bob, _) = connect(&srv.ws_url("?user_id=bob"), None).await;
    join(&mut ann, "desk", json!({})).await;
    join(&mut bob, "desk", json!({})).await;
    let seen = recv(&mut ann).await; // bob's user_joined
    let (offset, epoch) = (seen["offset"].as_u64().unwrap(), seen["epoch"].clone());
    ann.close(None).await.unwrap();
    while ann.next().await.is_some() {}
    // bob sees ann go, then talks while she is away.
    assert_eq!(recv(&mut bob).await["event_type"], "user_left");
    for text in ["one", "two"] {
        publish(&mut bob, json!({"type": "publish", "channel": "room:desk", "event_type": "room_message", "data": text})).await;
    }
    let (mut back, hello) = connect(&srv.ws_url("?user_id=ann"), None).await;
    let r = join(&mut back, "desk", json!({})).await;
    assert_eq!(
        ids(&r["members"]),
        ["bob", "ann"],
        "present once, as the new connection"
    );
    assert_eq!(r["members"][1]["connection_id"], hello["connection_id"]);
    let since = json!({"room:desk": {"offset": offset, "epoch": epoch}});
    let r = call(
        &mut back,
        json!({"type": "subscribe", "channels": ["room:desk"], "since": since}),
    )
    .await;
    assert_eq!(r["channels"][0]["recovered"], true, "{r}");
    let mut missed = Vec::new();
    for _ in 0..r["channels"][0]["missed"].as_u64().unwrap() {
        let ev = recv(&mut back).await;
        missed.push(format!(
            "{}:{}",
            ev["event_type"].as_str().unwrap(),
            ev["data"]
        ));
    }
    assert!(
        missed.contains(&"room_message:\"one\"".to_owned()),
        "{missed:?}"
    );
    assert!(
        missed.contains(&"room_message:\"two\"".to_owned()),
        "{missed:?}"
    );
    let stats = call(
        &mut back,
        json!({"type": "presence_stats", "channel": "room:desk"}),
    )
    .await;
    assert_eq!(
        (stats["num_clients"].as_u64(), stats["num_users"].as_u64()),
        (Some(2), Some(2))
    );
}

#[tokio::test]
async fn members_cannot_forge_the_hubs_events_and_unsubscribing_leaves_the_room() {
    let srv = TestServer::start(&[]).await;
    let (mut a, _) = connect(&srv.ws_url("?user_id=a"), None).await;
    let (mut b, _) = connect(&srv.ws_url("?user_id=b"), None).await;
    join(&mut a, "den", json!({})).await;
    join(&mut b, "den", json!({})).await;
    recv(&mut a).await; // b's user_joined
    for forged in ["room_deleted", "user_left", "user_joined"] {
        let body = json!({"type": "publish", "id": "f", "channel": "room:den",
            "event_type": forged, "data": {"room": "den"}});
        let r = publish(&mut b, body).await;
        assert_eq!(
            (r["type"].as_str(), r["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{r}"
        );
    }
    // Leaving the room's channel is leaving the room.
    let r = call(
        &mut b,
        json!({"type": "unsubscribe", "id": "u", "channels": ["room:den"]}),
    )
    .await;
    assert_eq!(r["type"], "unsubscribed", "{r}");
    let left = recv(&mut a).await;
    assert_eq!(
        (
            left["event_type"].as_str(),
            left["data"]["user_id"].as_str()
        ),
        (Some("user_left"), Some("b")),
        "{left}"
    );
    let room: Value = reqwest::get(srv.http("/api/rooms/den"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&room["members"]), ["a"], "{room}");
    let body = json!({"type": "publish", "id": "p", "channel": "room:den",
        "event_type": "room_message", "data": "hi"});
    let r = publish(&mut b, body).await;
    assert_eq!(r["code"], "forbidden", "no longer a member: {r}");
}
