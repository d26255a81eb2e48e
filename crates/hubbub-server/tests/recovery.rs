//! History, recovery after a reconnect and offline delivery (PROTOCOL.md
//! section 4), over real sockets.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use hubbub_protocol::JsonData;
use serde_json::{json, Value};

async fn publish(
    srv: &TestServer,
    ch: &str,
    ty: &str,
    data: Value,
) -> hubbub_server::engine::PublishOutcome {
    srv.node
        .publish_json(ch, ty, JsonData::from_json(&data.to_string()).unwrap())
        .await
        .expect("publish")
}

fn offsets(events: &Value) -> Vec<u64> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["offset"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn events_are_numbered_and_history_reads_both_ways() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = subscribe(&mut ws, &["news"]).await;
    assert_eq!(r["channels"][0]["offset"], 0);
    let mut epoch = String::new();
    for i in 1..=5u64 {
        let out = publish(&srv, "news", "story", json!({"n": i})).await;
        assert_eq!(out.offset, Some(i));
        epoch = out.epoch.unwrap().to_string();
        let ev = recv(&mut ws).await;
        assert_eq!(ev["offset"], i);
        assert_eq!(ev["epoch"], epoch.as_str());
    }
    let h = call(&mut ws, json!({"type":"history","id":1,"channel":"news"})).await;
    assert_eq!(h["type"], "history");
    assert_eq!(h["correlation_id"], 1);
    assert_eq!(h["offset"], 5);
    assert_eq!(h["epoch"], epoch.as_str());
    assert_eq!(offsets(&h["events"]), [1, 2, 3, 4, 5]);
    assert_eq!(h["events"][0]["data"], json!({"n": 1}));
    let h = call(
        &mut ws,
        json!({"type":"history","channel":"news","since_offset":2,"limit":2}),
    )
    .await;
    assert_eq!(offsets(&h["events"]), [3, 4]);
    let h = call(
        &mut ws,
        json!({"type":"history","channel":"news","limit":2}),
    )
    .await;
    assert_eq!(offsets(&h["events"]), [4, 5]);
    let h = call(&mut ws, json!({"type":"history","channel":"user:x"})).await;
    assert_eq!(h["code"], "forbidden");

    // The HTTP endpoint says the same; the channel stays known after its
    // subscribers leave, because it holds history.
    drop(ws);
    let c = reqwest::Client::new();
    let h: Value = srv
        .get_json("/api/channels/news/history?since_offset=3")
        .await;
    assert_eq!(offsets(&h["events"]), [4, 5]);
    assert_eq!(h["epoch"], epoch.as_str());
    let h: Value = srv.get_json("/api/channels/news/history?limit=1").await;
    assert_eq!(offsets(&h["events"]), [5]);
    let r = c
        .get(srv.http("/api/channels/news/history?since_offset=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ch: Value = srv.get_json("/api/channels/news").await;
    assert_eq!(ch["subscribers"], 0);
    assert_eq!(ch["offset"], 5);
    assert_eq!(ch["history_size"], 100);
    let stats: Value = srv.get_json("/api/stats").await;
    assert_eq!(stats["history"]["events"], 5);
    assert!(stats["history"]["bytes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn subscribe_with_since_recovers_then_goes_live() {
    let srv = TestServer::start(&[]).await;
    let mut epoch = String::new();
    for i in 1..=10u64 {
        epoch = publish(&srv, "orders", "order", json!({"n": i}))
            .await
            .epoch
            .unwrap()
            .to_string();
    }
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","id":"s","channels":["orders"],"since":{"orders":{"offset":7,"epoch":epoch}}}),
    )
    .await;
    assert_eq!(r["type"], "subscribed");
    assert_eq!(r["correlation_id"], "s");
    assert_eq!(
        r["channels"][0],
        json!({"channel":"orders","offset":10,"epoch":epoch,"recovered":true,"missed":3})
    );
    for want in 8..=10 {
        assert_eq!(recv(&mut ws).await["offset"], want);
    }
    publish(&srv, "orders", "order", json!({"n": 11})).await;
    assert_eq!(recv(&mut ws).await["offset"], 11);

    // Another epoch: nothing recovered, live only.
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(&mut ws, json!({"type":"subscribe","channels":["orders"],"since":{"orders":{"offset":2,"epoch":"gone"}}})).await;
    assert_eq!(r["channels"][0]["recovered"], false);
    assert_eq!(r["channels"][0]["missed"], 0);
    assert_eq!(r["channels"][0]["offset"], 11);
    publish(&srv, "orders", "order", json!({"n": 12})).await;
    assert_eq!(recv(&mut ws).await["offset"], 12);

    // `since` for a channel not subscribed is refused.
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["a"],"since":{"b":{"offset":1,"epoch":"e"}}}),
    )
    .await;
    assert_eq!(r["code"], "bad_request");
}

#[tokio::test]
async fn too_far_back_is_never_silently_partial() {
    let srv = TestServer::start(&[("namespaces.short.history_size", "3")]).await;
    let mut epoch = String::new();
    for i in 1..=6u64 {
        epoch = publish(&srv, "short:x", "e", json!(i))
            .await
            .epoch
            .unwrap()
            .to_string();
    }
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    // Offsets 4..6 are held: a client at 3 recovers, a client at 2 does not.
    let r = call(&mut ws, json!({"type":"subscribe","channels":["short:x"],"since":{"short:x":{"offset":3,"epoch":epoch}}})).await;
    assert_eq!(r["channels"][0]["recovered"], true);
    assert_eq!(r["channels"][0]["missed"], 3);
    for want in 4..=6 {
        assert_eq!(recv(&mut ws).await["offset"], want);
    }
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(&mut ws, json!({"type":"subscribe","channels":["short:x"],"since":{"short:x":{"offset":2,"epoch":epoch}}})).await;
    assert_eq!(r["channels"][0]["recovered"], false);
    assert_eq!(r["channels"][0]["missed"], 0);
    publish(&srv, "short:x", "e", json!(7)).await;
    assert_eq!(
        recv(&mut ws).await["offset"],
        7,
        "live only, nothing partial before it"
    );
}

#[tokio::test]
async fn filtered_recovery_and_ephemeral_and_historyless_events() {
    let srv = TestServer::start(&[
        ("namespaces.live.history_size", "0"),
        ("namespaces.room.publish", "true"),
    ])
    .await;
    let mut epoch = String::new();
    for (i, ty) in ["a", "b", "a", "b"].iter().enumerate() {
        epoch = publish(&srv, "mix", ty, json!(i))
            .await
            .epoch
            .unwrap()
            .to_string();
    }
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["mix"],"event_types":["b"],"since":{"mix":{"offset":0,"epoch":epoch}}}),
    )
    .await;
    assert_eq!(r["channels"][0]["missed"], 2);
    assert_eq!(recv(&mut ws).await["offset"], 2);
    assert_eq!(recv(&mut ws).await["offset"], 4);

    // A namespace without history: no offsets, position 0 with no epoch.
    let r = subscribe(&mut ws, &["live:1"]).await;
    assert_eq!(
        r["channels"][0],
        json!({"channel":"live:1","offset":0,"epoch":"","recovered":false,"missed":0})
    );
    assert_eq!(publish(&srv, "live:1", "tick", json!(1)).await.offset, None);
    let ev = recv(&mut ws).await;
    assert!(
        ev.get("offset").is_none() && ev.get("epoch").is_none(),
        "{ev}"
    );

    // Ephemeral types never enter history, even where history is kept.
    // (A room's channel is its members': join first.)
    let joined = call(&mut ws, json!({"type":"join_room","room":"r"})).await;
    assert_eq!(joined["type"], "room_joined", "{joined}");
    // The event reaches this subscriber before the publish reply does.
    let ev = call(&mut ws, json!({"type":"publish","channel":"room:r","event_type":"typing_indicator","data":{"on":true}})).await;
    let published = recv(&mut ws).await;
    assert_eq!(published["type"], "published");
    assert!(published.get("offset").is_none(), "{published}");
    assert_eq!(ev["event_type"], "typing_indicator");
    assert!(ev.get("offset").is_none(), "{ev}");
    let h = call(&mut ws, json!({"type":"history","channel":"room:r"})).await;
    let kept: Vec<&Value> = h["events"].as_array().unwrap().iter().collect();
    assert!(
        kept.iter().all(|e| e["event_type"] != "typing_indicator"),
        "{h}"
    );
}

#[tokio::test]
async fn offline_user_gets_queued_events_right_after_connected() {
    let srv = TestServer::start(&[("users.queue_size", "3")]).await;
    for i in 1..=4 {
        let r: Value = srv
            .post_json(
                "/api/users/carol/send",
                &json!({"event_type":"note","data":{"n":i}}),
            )
            .await;
        assert_eq!(r, json!({"connections":0,"queued":true}));
    }
    let (mut ws, connected) = connect(&srv.ws_url("?user_id=carol"), None).await;
    assert_eq!(connected["user_id"], "carol");
    for want in 2..=4 {
        let ev = recv(&mut ws).await;
        assert_eq!(ev["channel"], "user:carol");
        assert_eq!(ev["data"]["n"], want, "oldest dropped first, then in order");
    }
    // Once connected, events go straight to the connection.
    let r: Value = srv
        .post_json(
            "/api/users/carol/send",
            &json!({"event_type":"note","data":{"n":5}}),
        )
        .await;
    assert_eq!(r, json!({"connections":1,"queued":false}));
    assert_eq!(recv(&mut ws).await["data"]["n"], 5);
    // Nothing was left queued for the next connection.
    drop(ws);
    let (mut again, _) = connect(&srv.ws_url("?user_id=carol"), None).await;
    assert_eq!(
        call(&mut again, json!({"type":"ping"})).await["type"],
        "pong"
    );
}

/// Reads raw frames until the close; returns the offsets seen on `channel`,
/// the epoch, and the close code.
async fn drain_until_close(raw: &mut Raw, channel: &str) -> (Vec<u64>, String, Option<u16>) {
    let mut seen = Vec::new();
    let mut epoch = String::new();
    loop {
        match raw.next().await {
            Some(hubbub_ws::Message::Text(t)) => {
                let v: Value = serde_json::from_slice(&t).unwrap();
                if v["type"] == "event" && v["channel"] == channel {
                    seen.push(v["offset"].as_u64().unwrap());
                    epoch = v["epoch"].as_str().unwrap().to_owned();
                }
            }
            Some(hubbub_ws::Message::Close(c)) => return (seen, epoch, c.map(|c| c.code)),
            Some(_) => {}
            None => return (seen, epoch, None),
        }
    }
}

async fn recover_rest(srv: &TestServer, channel: &str, last: u64, epoch: &str, top: u64) {
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(&mut ws, json!({"type":"subscribe","channels":[channel],"since":{channel:{"offset":last,"epoch":epoch}}})).await;
    assert_eq!(r["channels"][0]["recovered"], true, "{r}");
    assert_eq!(r["channels"][0]["missed"], top - last);
    for want in last + 1..=top {
        assert_eq!(recv(&mut ws).await["offset"], want);
    }
}

#[tokio::test]
async fn a_slow_consumer_kicked_with_4009_recovers_everything() {
    let srv = TestServer::start(&[
        ("namespaces.feed.history_size", "5000"),
        ("connection.outbound_queue_messages", "16"),
    ])
    .await;
    let mut raw = srv.raw_subscriber("feed:1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut top = 0;
    let payload = "z".repeat(8192);
    for _ in 0..2000 {
        top = publish(&srv, "feed:1", "e", json!(payload))
            .await
            .offset
            .unwrap();
        if srv.slow_consumer_disconnects() > 0 {
            break;
        }
    }
    for _ in 0..20 {
        top = publish(&srv, "feed:1", "e", json!(payload))
            .await
            .offset
            .unwrap();
    }
    let (seen, epoch, code) = drain_until_close(&mut raw, "feed:1").await;
    assert_eq!(code, Some(4009));
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "in order, no gaps before the kick"
    );
    let last = seen.last().copied().unwrap_or(0);
    let epoch = if epoch.is_empty() {
        srv.node.history("feed:1", None, 0).await.unwrap().epoch
    } else {
        epoch
    };
    assert!(last < top);
    recover_rest(&srv, "feed:1", last, &epoch, top).await;
}

#[tokio::test]
async fn a_client_timed_out_with_4010_recovers_everything() {
    let srv = TestServer::start(&[
        ("connection.heartbeat_interval_ms", "100"),
        ("connection.connection_timeout_ms", "300"),
    ])
    .await;
    let mut raw = srv.raw_subscriber("t").await;
    let mut top = 0;
    for i in 0..5 {
        top = publish(&srv, "t", "e", json!(i)).await.offset.unwrap();
    }
    let (seen, epoch, code) = drain_until_close(&mut raw, "t").await;
    assert_eq!(code, Some(4010));
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    for i in 0..5 {
        top = publish(&srv, "t", "e", json!(i)).await.offset.unwrap();
    }
    recover_rest(&srv, "t", 5, &epoch, top).await;
}

/// Concurrent publishers with sequence numbers; subscribers that drop and
/// reconnect with `since` at random points, 1,000 reconnects in all. Every
/// subscriber must see, per channel, each offset at most once and in
/// increasing order, with no gap whenever recovery said `recovered: true`;
/// and recovery must say `false` (never partial) when the gap left the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomized_reconnects_lose_nothing_within_the_window() {
    const SUBSCRIBERS: usize = 8;
    const RECONNECTS_EACH: usize = 125;
    const WINDOW: u64 = 400;
    let srv = TestServer::start(&[
        ("namespaces.rnd.history_size", &WINDOW.to_string()),
        ("connection.rate_limit_per_second", "100000"),
        ("connection.rate_limit_burst", "100000"),
    ])
    .await;
    let channels = ["rnd:a", "rnd:b"];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut publishers = Vec::new();
    for p in 0..3u64 {
        let node = srv.node.clone();
        let stop = stop.clone();
        publishers.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seq += 1;
                let ch = channels[(seq % 2) as usize];
                let data = JsonData::from_json(&json!({"p": p, "seq": seq}).to_string()).unwrap();
                node.publish_json(ch, "tick", data).await.unwrap();
                if seq & 3 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            seq
        }));
    }
    let mut subscribers = Vec::new();
    for s in 0..SUBSCRIBERS {
        let url = srv.ws_url("");
        let node = srv.node.clone();
        subscribers.push(tokio::spawn(async move {
            let mut rng_state = 0x9e37_79b9_7f4a_7c15u64 ^ (s as u64 + 1);
            let mut rnd = move |n: u64| {
                rng_state ^= rng_state << 13;
                rng_state ^= rng_state >> 7;
                rng_state ^= rng_state << 17;
                rng_state % n
            };
            // Per channel: last offset seen and its epoch.
            let mut pos: HashMap<&str, (u64, String)> = HashMap::new();
            let (mut recovered_ok, mut not_recovered, mut events) = (0u64, 0u64, 0u64);
            let mut last_pub_seq: HashMap<(String, u64), u64> = HashMap::new();
            for cycle in 0..RECONNECTS_EACH {
                // Now and then stay away until the window has moved past us.
                let far = cycle % 25 == 24;
                if far {
                    for ch in channels {
                        if let Some((off, _)) = pos.get(ch) {
                            while node.history(ch, None, 0).await.unwrap().offset
                                <= off + WINDOW + 5
                            {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        }
                    }
                } else if rnd(3) == 0 {
                    tokio::time::sleep(Duration::from_millis(rnd(20))).await;
                }
                let (mut ws, _) = connect(&url, None).await;
                let since: serde_json::Map<String, Value> = pos
                    .iter()
                    .map(|(ch, (o, e))| (ch.to_string(), json!({"offset": o, "epoch": e})))
                    .collect();
                let mut cmd = json!({"type":"subscribe","channels":channels});
                if !since.is_empty() {
                    cmd["since"] = Value::Object(since);
                }
                let reply = call(&mut ws, cmd).await;
                assert_eq!(reply["type"], "subscribed", "{reply}");
                for c in reply["channels"].as_array().unwrap() {
                    let ch = c["channel"].as_str().unwrap();
                    let (top, epoch) = (
                        c["offset"].as_u64().unwrap(),
                        c["epoch"].as_str().unwrap().to_owned(),
                    );
                    match pos.get(ch) {
                        Some((last, _)) if c["recovered"] == true => {
                            assert!(
                                !far || top <= last + WINDOW,
                                "recovered across a gap wider than the window"
                            );
                            assert_eq!(c["missed"].as_u64().unwrap(), top - last, "{c}");
                            recovered_ok += 1;
                        }
                        Some((last, _)) => {
                            assert!(
                                top > last + WINDOW - 1 || c["epoch"] != pos[ch].1.as_str(),
                                "refused a recoverable gap: {c} last={last}"
                            );
                            not_recovered += 1;
                            // Live only from the reply's position.
                            pos.insert(channels.iter().find(|x| **x == ch).unwrap(), (top, epoch));
                        }
                        None => {
                            pos.insert(channels.iter().find(|x| **x == ch).unwrap(), (top, epoch));
                        }
                    }
                }
                let take = rnd(40);
                for _ in 0..take {
                    let ev = recv(&mut ws).await;
                    assert_eq!(ev["type"], "event", "{ev}");
                    let ch = *channels
                        .iter()
                        .find(|x| **x == ev["channel"].as_str().unwrap())
                        .unwrap();
                    let off = ev["offset"].as_u64().unwrap();
                    let (last, epoch) = pos.get_mut(ch).unwrap();
                    assert_eq!(
                        off,
                        *last + 1,
                        "subscriber {s} channel {ch}: expected {} got {off}",
                        *last + 1
                    );
                    assert_eq!(ev["epoch"], epoch.as_str());
                    *last = off;
                    // Per publisher, sequence numbers only grow.
                    let p = ev["data"]["p"].as_u64().unwrap();
                    let seq = ev["data"]["seq"].as_u64().unwrap();
                    let prev = last_pub_seq.insert((ch.to_owned(), p), seq).unwrap_or(0);
                    assert!(seq > prev, "publisher {p} out of order on {ch}");
                    events += 1;
                }
                // Drop without a close frame half the time: the hub must not care.
                if rnd(2) == 0 {
                    let _ = futures_util::SinkExt::close(&mut ws).await;
                }
                drop(ws);
            }
            (recovered_ok, not_recovered, events)
        }));
    }
    let mut totals = (0, 0, 0);
    for s in subscribers {
        let (a, b, c) = s.await.unwrap();
        totals.0 += a;
        totals.1 += b;
        totals.2 += c;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for p in publishers {
        p.await.unwrap();
    }
    println!(
        "recovered {} times, refused {} times, {} events checked",
        totals.0, totals.1, totals.2
    );
    assert!(totals.0 > 1000, "most reconnects recovered");
    assert!(
        totals.1 >= (SUBSCRIBERS * RECONNECTS_EACH / 25) as u64,
        "every far-away reconnect was refused"
    );
}

/// A client that subscribed before a channel's first publication, dropped,
/// and came back with the position it was given recovers everything
/// published meanwhile, like a client at any other offset.
#[tokio::test]
async fn subscribed_before_the_first_publication_recovers() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = subscribe(&mut ws, &["fresh"]).await;
    let given = r["channels"][0].clone();
    assert_eq!(given["offset"], 0);
    let epoch = given["epoch"].as_str().unwrap().to_string();
    assert!(
        !epoch.is_empty(),
        "an epoch from the first subscriber on: {r}"
    );
    drop(ws);
    srv.wait_subscribers("fresh", 0).await;
    for i in 1..=5u64 {
        let out = srv
            .post_json(
                "/api/publish",
                &json!({"channel": "fresh", "event_type": "task_created", "data": {"n": i}}),
            )
            .await;
        assert_eq!(out["offset"], i);
        assert_eq!(
            out["epoch"],
            epoch.as_str(),
            "the first publication keeps it"
        );
    }
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["fresh"],"since":{"fresh":{"offset":0,"epoch":epoch}}}),
    )
    .await;
    assert_eq!(
        r["channels"][0],
        json!({"channel":"fresh","offset":5,"epoch":epoch,"recovered":true,"missed":5})
    );
    for i in 1..=5u64 {
        let ev = recv(&mut ws).await;
        assert_eq!(
            (ev["offset"].as_u64(), ev["data"]["n"].as_u64()),
            (Some(i), Some(i))
        );
    }
    publish(&srv, "fresh", "task_created", json!({"n": 6})).await;
    assert_eq!(recv(&mut ws).await["offset"], 6, "then live, without a gap");

    // A filtered subscriber from before the first event recovers too.
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["fresh2"],"event_types":["b"]}),
    )
    .await;
    let epoch2 = r["channels"][0]["epoch"].as_str().unwrap().to_string();
    drop(ws);
    srv.wait_subscribers("fresh2", 0).await;
    for ty in ["a", "b", "a", "b"] {
        publish(&srv, "fresh2", ty, json!({})).await;
    }
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["fresh2"],"event_types":["b"],
               "since":{"fresh2":{"offset":0,"epoch":epoch2}}}),
    )
    .await;
    assert_eq!(r["channels"][0]["recovered"], true, "{r}");
    assert_eq!(r["channels"][0]["missed"], 2);
    assert_eq!(recv(&mut ws).await["offset"], 2);
    assert_eq!(recv(&mut ws).await["offset"], 4);
}

/// Offset 0 with no epoch names the start of whatever history the channel
/// has: honoured while its first event is held, refused once it is not.
#[tokio::test]
async fn offset_zero_without_an_epoch_recovers_from_the_start() {
    let srv = TestServer::start(&[("channels.history_size", "3")]).await;
    for i in 1..=3u64 {
        publish(&srv, "orders", "order", json!({"n": i})).await;
    }
    let since = json!({"orders": {"offset": 0, "epoch": ""}});
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["orders"],"since":since}),
    )
    .await;
    assert_eq!(r["channels"][0]["recovered"], true, "{r}");
    assert_eq!(r["channels"][0]["missed"], 3);
    for i in 1..=3u64 {
        assert_eq!(recv(&mut ws).await["offset"], i);
    }
    drop(ws);
    publish(&srv, "orders", "order", json!({"n": 4})).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type":"subscribe","channels":["orders"],"since":since}),
    )
    .await;
    assert_eq!(
        r["channels"][0]["recovered"], false,
        "offset 1 is gone: {r}"
    );
    assert_eq!(r["channels"][0]["missed"], 0);
}

/// Opening a channel by subscribing makes it no more "known" to the API
/// than its subscribers do: once they leave, an unwritten channel is 404.
#[tokio::test]
async fn a_subscribed_but_unwritten_channel_is_not_listed_after_its_subscribers_leave() {
    let srv = TestServer::start(&[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut ws, &["quiet"]).await;
    let ch: Value = srv.get_json("/api/channels/quiet").await;
    assert_eq!(ch["subscribers"], 1);
    assert_eq!(ch["offset"], 0);
    drop(ws);
    srv.wait_subscribers("quiet", 0).await;
    let r = reqwest::get(srv.http("/api/channels/quiet")).await.unwrap();
    assert_eq!(r.status(), 404);
    let all: Value = srv.get_json("/api/channels").await;
    assert!(!all.to_string().contains("quiet"), "{all}");
}
