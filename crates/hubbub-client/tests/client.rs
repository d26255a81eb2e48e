//! The client against a real hub in this process: commands and their
//! replies in both encodings, rooms and presence, RPC, graph jobs, the
//! offline queue, timeouts, server-side closes and a real 4009.

mod common;

use std::time::Duration;

use common::{client, next, next_event, next_state, Hub, WAIT};
use hubbub_client::hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters, AlgorithmResult};
use hubbub_client::hubbub_protocol::graph::{EdgeSpec, ExplicitGraph, GraphSpec, NodeId, NodeSpec};
use hubbub_client::hubbub_protocol::rooms::{UserJoined, UserLeft};
use hubbub_client::hubbub_protocol::ErrorCode;
use hubbub_client::{Client, ClientEvent, Encoding, Error, JobEvent, SubEvent};
use serde_json::json;

#[tokio::test]
async fn subscribe_publish_and_history_in_both_encodings() {
    let hub = Hub::start(&[]).await;
    for enc in [Encoding::Json, Encoding::Msgpack] {
        let c = Client::builder(hub.url("")).encoding(enc).connect();
        c.wait_connected(WAIT).await.unwrap();
        let ch = format!("news.{}", enc.name());
        let mut sub = c.subscribe(&ch).await.unwrap();
        for i in 1..=3u64 {
            let off = c
                .publish(&ch, "story", &json!({"n": i, "f": 1.5}))
                .await
                .unwrap();
            assert_eq!(off, Some(i));
        }
        for i in 1..=3u64 {
            let e = next_event(&mut sub).await;
            assert_eq!((e.offset, e.event_type.as_str()), (Some(i), "story"));
            assert_eq!(e.data.to_value(), json!({"n": i, "f": 1.5}));
        }
        let page = c.history(&ch, Some(1), None).await.unwrap();
        let offsets: Vec<_> = page.events.iter().map(|e| e.event.offset).collect();
        assert_eq!((page.offset, offsets), (3, vec![Some(2), Some(3)]));
        assert!(c.subscriptions().await.unwrap().contains(&ch));
        c.ping().await.unwrap();
        let e = c.history("bad channel!", None, None).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::BadRequest), "{e}");
        c.close().await;
    }
}

#[tokio::test]
async fn rooms_and_presence() {
    let hub = Hub::start(&[]).await;
    let a = client(&hub, Some("alice")).await;
    let b = client(&hub, Some("bob")).await;
    let mut room_a = a
        .join_room("lobby", Some(&json!({"mood": "ok"})))
        .await
        .unwrap();
    assert_eq!(room_a.members.len(), 1);
    assert_eq!(room_a.members[0].info["mood"], "ok");
    let room_b = b.join_room::<()>("lobby", None).await.unwrap();
    assert_eq!(room_b.members.len(), 2);
    let joined = next_event(&mut room_a.events).await;
    let joined: UserJoined = joined.payload().unwrap().unwrap();
    assert_eq!(joined.user_id.as_deref(), Some("bob"));
    assert_eq!(a.presence("room:lobby").await.unwrap().len(), 2);
    let stats = a.presence_stats("room:lobby").await.unwrap();
    assert_eq!((stats.num_clients, stats.num_users), (2, 2));
    room_b.leave(&b).await.unwrap();
    let left: UserLeft = next_event(&mut room_a.events)
        .await
        .payload()
        .unwrap()
        .unwrap();
    assert_eq!(left.user_id.as_deref(), Some("bob"));
    assert_eq!(a.presence("room:lobby").await.unwrap().len(), 1);
    // Dropping the room leaves it too.
    let _room_b = b.join_room::<()>("lobby", None).await.unwrap();
    drop(room_a);
    let deadline = tokio::time::Instant::now() + WAIT;
    while b.presence("room:lobby").await.unwrap().len() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "alice never left");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // A room deleted through the API: its last event, then the end.
    let mut room_b = _room_b;
    let r = reqwest::Client::new()
        .delete(hub.http("/api/rooms/lobby"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    // (bob saw alice leave first)
    while next_event(&mut room_b.events).await.event_type != "room_deleted" {}
    assert_eq!(next(&mut room_b.events).await, SubEvent::Unsubscribed);
}

#[tokio::test]
async fn rpc_answers_errors_and_timeouts() {
    let hub = Hub::start(&[]).await;
    let c = client(&hub, None).await;
    assert_eq!(c.rpc("math.double", &21).await.unwrap(), json!(42));
    let e = c.rpc("no.such", &json!({})).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
    let quick = Client::builder(hub.url(""))
        .request_timeout(Duration::from_millis(200))
        .connect();
    quick.wait_connected(WAIT).await.unwrap();
    assert!(matches!(
        quick.rpc("slow", &json!(null)).await,
        Err(Error::Timeout(_))
    ));
    // The late reply is dropped; the connection goes on.
    quick.ping().await.unwrap();
}

fn path_graph(n: i64) -> GraphSpec {
    GraphSpec::Explicit(ExplicitGraph {
        nodes: (0..n).map(|i| NodeSpec::Id(NodeId::Int(i))).collect(),
        edges: (1..n)
            .map(|i| EdgeSpec {
                from: NodeId::Int(i - 1),
                to: NodeId::Int(i),
                weight: None,
            })
            .collect(),
        directed: None,
    })
}

#[tokio::test]
async fn graph_jobs_stream_typed_events_and_stop() {
    let hub = Hub::start(&[]).await;
    let c = client(&hub, Some("alice")).await;
    let mut p = AlgorithmParameters::new(path_graph(5));
    p.source = Some(NodeId::Int(0));
    let mut job = c.start_job(&Algorithm::Bfs, &p).await.unwrap();
    assert_eq!(job.channel, format!("algorithm_{}", job.id));
    let (last, before) = job.finish().await.expect("terminal event");
    assert!(
        matches!(before.first(), Some(JobEvent::Graph(g)) if g.nodes.len() == 5),
        "{before:?}"
    );
    assert!(before.iter().any(|e| matches!(e, JobEvent::Activation(_))));
    match last {
        JobEvent::Complete(done) => {
            let want: Vec<_> = (0..5).map(NodeId::Int).collect();
            assert_eq!(done.result, AlgorithmResult::Order { order: want });
        }
        other => panic!("{other:?}"),
    }
    // A paced job stopped half-way ends with `algorithm_stopped`.
    p.step_delay_ms = Some(200);
    let mut slow = c.start_job(&Algorithm::Bfs, &p).await.unwrap();
    c.stop_job(&slow.id).await.unwrap();
    let (last, _) = slow.finish().await.expect("terminal event");
    assert!(matches!(last, JobEvent::Stopped(_)), "{last:?}");
    let e = c.stop_job("nope").await.unwrap_err();
    assert!(e.code().is_some(), "{e}");
}

#[tokio::test]
async fn offline_sends_wait_in_a_bounded_queue_and_go_out_in_order() {
    // Nothing listens on the port yet.
    let port = common::proc_hub::free_port();
    let c = Client::builder(format!("ws://127.0.0.1:{port}/ws"))
        .offline_queue(2)
        .backoff(hubbub_client::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            max_attempts: None,
        })
        .connect();
    let mut events = c.events();
    next_state(&mut events, |e| {
        matches!(e, ClientEvent::Reconnecting { .. })
    })
    .await;
    let first = c.publish_nowait("q", "seq", &1);
    let second = c.publish_nowait("q", "seq", &2);
    let third = c.publish_nowait("q", "seq", &3);
    assert!(matches!(third.await, Err(Error::QueueFull(2))));
    let hub = Hub::start_on(&format!("127.0.0.1:{port}"), &[]).await;
    assert_eq!(first.await.unwrap(), Some(1));
    assert_eq!(second.await.unwrap(), Some(2));
    let page = c.history("q", None, None).await.unwrap();
    let data: Vec<_> = page
        .events
        .iter()
        .map(|e| e.event.data.to_value())
        .collect();
    assert_eq!(data, vec![json!(1), json!(2)]);
    drop(hub);
}

#[tokio::test]
async fn a_subscribe_made_offline_completes_on_connect_and_recovers_later() {
    let port = common::proc_hub::free_port();
    let c = Client::builder(format!("ws://127.0.0.1:{port}/ws"))
        .backoff(hubbub_client::Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            max_attempts: None,
        })
        .connect();
    let c2 = c.clone();
    let sub = tokio::spawn(async move { c2.subscribe("late").await });
    let hub = Hub::start_on(&format!("127.0.0.1:{port}"), &[]).await;
    let mut sub = sub.await.unwrap().unwrap();
    hub.node.publish("late", "e", &1).await.unwrap();
    assert_eq!(next_event(&mut sub).await.offset, Some(1));
    // The hub goes away and comes back with a new history: a gap, then
    // the new epoch's events.
    let mut events = c.events();
    hub.shutdown().await;
    next_state(&mut events, |e| {
        matches!(e, ClientEvent::Disconnected { .. })
    })
    .await;
    let hub = Hub::start_on(&format!("127.0.0.1:{port}"), &[]).await;
    match next(&mut sub).await {
        SubEvent::Gap(g) => assert_eq!(g.reason, hubbub_client::GapReason::NotRecovered),
        other => panic!("{other:?}"),
    }
    hub.node.publish("late", "e", &2).await.unwrap();
    let e = next_event(&mut sub).await;
    assert_eq!((e.offset, e.data.to_value()), (Some(1), json!(2)));
}

#[tokio::test]
async fn close_codes_decide_reconnects() {
    for enc in [Encoding::Json, Encoding::Msgpack] {
        close_codes_in(enc).await;
    }
}

async fn close_codes_in(enc: Encoding) {
    let hub = Hub::start(&[]).await;
    let c = Client::builder(hub.url("?user_id=alice"))
        .encoding(enc)
        .connect();
    c.wait_connected(WAIT).await.unwrap();
    let mut sub = c.subscribe("feed").await.unwrap();
    c.publish("feed", "e", &1).await.unwrap();
    assert_eq!(next_event(&mut sub).await.offset, Some(1));
    let mut events = c.events();
    // 4100 with reconnect: back, recovered, the missed event once.
    let id = c.connection_id().unwrap();
    assert!(hub.node.disconnect_connection(&id, Some("test"), true));
    next_state(&mut events, |e| {
        matches!(
            e,
            ClientEvent::Disconnected {
                code: Some(4100),
                ..
            }
        )
    })
    .await;
    hub.node.publish("feed", "e", &2).await.unwrap();
    next_state(&mut events, |e| matches!(e, ClientEvent::Connected { .. })).await;
    assert_eq!(next(&mut sub).await, SubEvent::Recovered { missed: 1 });
    assert_eq!(next_event(&mut sub).await.offset, Some(2));
    c.publish("feed", "e", &3).await.unwrap();
    assert_eq!(next_event(&mut sub).await.offset, Some(3));
    // 4100 without reconnect: closed; commands then fail with `Closed`.
    let id = c.connection_id().unwrap();
    assert!(hub.node.disconnect_connection(&id, None, false));
    next_state(&mut events, |e| matches!(e, ClientEvent::Closed { .. })).await;
    assert!(matches!(c.ping().await, Err(Error::Closed(_))));
    assert_eq!(next(&mut sub).await, SubEvent::Unsubscribed);
}

#[tokio::test]
async fn a_slow_consumer_kicked_with_4009_reconnects_at_once_and_recovers() {
    let hub = Hub::start(&[
        ("connection.outbound_queue_messages", "4"),
        ("connection.outbound_queue_bytes", "65536"),
    ])
    .await;
    let c = client(&hub, Some("alice")).await;
    let channels: Vec<String> = (0..16).map(|i| format!("burst.{i}")).collect();
    let mut subs = Vec::new();
    for ch in &channels {
        subs.push(c.subscribe(ch).await.unwrap());
    }
    let mut events = c.events();
    let pad = "x".repeat(8000);
    let r = reqwest::Client::new()
        .post(hub.http("/api/broadcast"))
        .json(&json!({"channels": channels, "event_type": "seq", "data": {"seq": 1, "pad": pad}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    next_state(&mut events, |e| {
        matches!(
            e,
            ClientEvent::Disconnected {
                code: Some(4009),
                ..
            }
        )
    })
    .await;
    let again = next_state(&mut events, |e| {
        matches!(e, ClientEvent::Reconnecting { .. })
    })
    .await;
    assert_eq!(
        again,
        ClientEvent::Reconnecting {
            delay: Duration::ZERO,
            attempt: 1
        }
    );
    // Every channel gets offset 1 exactly once: live or recovered.
    for sub in &mut subs {
        assert_eq!(next_event(sub).await.offset, Some(1));
        c.publish(sub.channel(), "seq", &json!({"seq": 2}))
            .await
            .unwrap();
        assert_eq!(next_event(sub).await.offset, Some(2), "{}", sub.channel());
    }
}

#[tokio::test]
async fn tokens_refresh_on_the_live_connection_and_a_refused_static_token_closes() {
    const SECRET: &str = "a-test-secret-of-enough-length-0123456789";
    let hub = Hub::start(&[("auth.hs256_secret", SECRET), ("auth.required", "true")]).await;
    let mint = |sub: &str| {
        let exp = hubbub_server::now_ms() / 1000 + 600;
        hubbub_server::auth::jwt::TokenSigner::hs256(SECRET.as_bytes())
            .sign(&json!({"sub": sub, "exp": exp}))
            .unwrap()
    };
    let c = Client::builder(hub.url("")).token(mint("alice")).connect();
    c.wait_connected(WAIT).await.unwrap();
    let expires = c.auth(&mint("alice")).await.unwrap();
    assert!(expires.unwrap() > hubbub_server::now_ms());
    let e = c.auth(&mint("mallory")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
    // A token the hub refuses at the handshake, with no callback to ask
    // for another: closed, not retried.
    let bad = Client::builder(hub.url("")).token("not-a-jwt").connect();
    let err = bad.wait_connected(WAIT).await.unwrap_err();
    assert!(
        matches!(err, Error::Closed(ref r) if r.contains("401")),
        "{err}"
    );
    // With a callback, the fresh token it gives is used.
    let good = mint("bob");
    let cb = Client::builder(hub.url(""))
        .token_callback(move || {
            let t = good.clone();
            async move { Ok(t) }
        })
        .connect();
    cb.wait_connected(WAIT).await.unwrap();
}

#[tokio::test]
async fn rate_limited_4029_reconnects_after_the_pause() {
    let hub = Hub::start(&[
        ("connection.rate_limit_per_second", "1"),
        ("connection.rate_limit_burst", "2"),
        ("connection.rate_limit_max_drops", "3"),
        ("connection.rate_limit_window_ms", "10000"),
    ])
    .await;
    let pause = Duration::from_millis(100);
    let backoff = hubbub_client::Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        max_attempts: None,
    };
    let c = Client::builder(hub.url(""))
        .rate_limited_delay(pause)
        .backoff(backoff)
        .connect();
    c.wait_connected(WAIT).await.unwrap();
    let mut events = c.events();
    let sends: Vec<_> = (0..10)
        .map(|i| c.publish_nowait("flood", "e", &i))
        .collect();
    let results = futures_util::future::join_all(sends).await;
    assert!(results
        .iter()
        .any(|r| r.as_ref().err().and_then(Error::code) == Some(ErrorCode::RateLimited)));
    next_state(&mut events, |e| {
        matches!(
            e,
            ClientEvent::Disconnected {
                code: Some(4029),
                ..
            }
        )
    })
    .await;
    match next_state(&mut events, |e| {
        matches!(e, ClientEvent::Reconnecting { .. })
    })
    .await
    {
        ClientEvent::Reconnecting { delay, attempt } => {
            assert_eq!(attempt, 1);
            assert!(
                delay >= pause && delay <= pause + backoff.bound(1),
                "{delay:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    next_state(&mut events, |e| matches!(e, ClientEvent::Connected { .. })).await;
}
