//! Several `hubbub serve` processes on one Redis act as one hub: fan-out,
//! presence and rooms, user queues, a node killed with SIGKILL, and Redis
//! itself restarted. Against the real Redis at `HUBBUB_TEST_REDIS`
//! (default `redis://127.0.0.1:6379`); each run uses a key prefix of its
//! own. Without Redis the tests say loudly that they skipped (under
//! `CI=true` they fail).

mod common;
#[path = "cluster/net.rs"]
mod net;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{Hub, Proc};
use net::{delete, get, post, until, Client, Next};
use serde_json::{json, Value};

fn redis_url() -> String {
    std::env::var("HUBBUB_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Whether a server answers at `url` (`scheme://[user@]host:port[/...]`).
fn reachable(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest
        .rsplit('@')
        .next()
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("");
    std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
}

/// `url` when its server answers; else `None`, said loudly (a failure
/// under `CI=true`).
fn or_skip(what: &str, url: String, var: &str) -> Option<String> {
    if reachable(&url) {
        return Some(url);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "no {what} at {url} under CI"
    );
    eprintln!("SKIPPED: no {what} at {url}; set {var}");
    None
}

fn redis_or_skip() -> Option<String> {
    or_skip("Redis", redis_url(), "HUBBUB_TEST_REDIS")
}

fn prefix() -> String {
    format!("c{:08x}", rand::random::<u32>())
}

fn nats_url() -> String {
    std::env::var("HUBBUB_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn nats_or_skip() -> Option<String> {
    or_skip("NATS", nats_url(), "HUBBUB_TEST_NATS")
}

/// A node on Redis with a short presence TTL and heartbeat.
fn node(url: &str, prefix: &str) -> Hub {
    engine_node(&[("kind", "redis"), ("redis_url", url)], prefix)
}

/// A node on NATS (JetStream keeps history, presence and user queues).
fn nats_node(url: &str, prefix: &str) -> Hub {
    engine_node(&[("kind", "nats"), ("nats_url", url)], prefix)
}

/// A node whose events cross on NATS while Redis keeps the store.
fn relay_node(nats: &str, redis: &str, prefix: &str) -> Hub {
    engine_node(
        &[
            ("kind", "nats"),
            ("nats_url", nats),
            ("nats_store", "redis"),
            ("redis_url", redis),
        ],
        prefix,
    )
}

fn engine_node(engine: &[(&str, &str)], prefix: &str) -> Hub {
    let mut args: Vec<String> = Vec::new();
    for (k, v) in engine {
        args.push("--set".into());
        args.push(format!("engine.{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Hub::start(
        &[
            &args[..],
            &[
                "--set",
                &format!("engine.prefix={prefix}"),
                "--set",
                "engine.presence_ttl_s=2",
                "--set",
                "engine.heartbeat_ms=200",
                "--set",
                "users.queue_size=50",
            ],
        ]
        .concat(),
        &[],
    )
}

async fn subscribe(c: &mut Client, channel: &str, since: Option<(u64, &str)>) -> Value {
    let mut cmd = json!({"type": "subscribe", "channels": [channel]});
    if let Some((offset, epoch)) = since {
        cmd["since"] = json!({channel: {"offset": offset, "epoch": epoch}});
    }
    let r = c.call(cmd, "s").await;
    assert_eq!(r["type"], "subscribed", "{r}");
    r["channels"][0].clone()
}

async fn publish(addr: &str, channel: &str, data: Value) -> Result<Value, (u16, Value)> {
    match post(
        addr,
        "/api/publish",
        json!({"channel": channel, "event_type": "n", "data": data}),
    )
    .await
    {
        Ok((200, v)) => Ok(v),
        Ok((s, v)) => Err((s, v)),
        Err(e) => Err((0, json!(e))),
    }
}

/// The next event of `channel` on `c`, skipping other messages.
async fn event(c: &mut Client, channel: &str) -> Next {
    if let Some(i) = c
        .seen
        .iter()
        .position(|m| m["type"] == "event" && m["channel"] == channel)
    {
        return Next::Message(c.seen.remove(i));
    }
    loop {
        match c.next().await {
            Next::Message(m) if m["type"] == "event" && m["channel"] == channel => {
                return Next::Message(m)
            }
            Next::Message(_) => continue,
            closed => return closed,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_act_as_one() {
    let Some(url) = redis_or_skip() else { return };
    let p = prefix();
    three_nodes([node(&url, &p), node(&url, &p), node(&url, &p)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_act_as_one_on_nats() {
    let Some(url) = nats_or_skip() else { return };
    let p = prefix();
    three_nodes([
        nats_node(&url, &p),
        nats_node(&url, &p),
        nats_node(&url, &p),
    ])
    .await;
}

/// Fan-out in order from any node, rooms and presence from every node
/// (the room registry included), a
/// user queue filled through one node and delivered by another, the
/// node registry.
async fn three_nodes(nodes: [Hub; 3]) {
    let addrs: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
    // A subscriber on every node; publications through A reach all, in order.
    let mut subs = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        let mut c = Client::connect(a, &format!("s{i}")).await.unwrap();
        subscribe(&mut c, "feed", None).await;
        subs.push(c);
    }
    for n in 1..=10 {
        let r = publish(addrs[0], "feed", json!(n)).await.unwrap();
        assert_eq!(r["offset"], n, "{r}");
    }
    for c in &mut subs {
        for n in 1..=10 {
            match event(c, "feed").await {
                Next::Message(m) => assert_eq!(m["data"], n, "{m}"),
                Next::Closed(code) => panic!("closed {code:?}"),
            }
        }
    }
    // Rooms and presence, the same from every node.
    let mut members = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        let mut c = Client::connect(a, &format!("m{i}")).await.unwrap();
        let r = c
            .call(
                json!({"type": "join_room", "room": "lobby", "info": {"n": i}}),
                "j",
            )
            .await;
        assert_eq!(r["type"], "room_joined", "{r}");
        assert_eq!(r["members"].as_array().unwrap().len(), i + 1, "{r}");
        members.push(c);
    }
    for c in &mut members {
        let r = c
            .call(json!({"type": "presence", "channel": "room:lobby"}), "p")
            .await;
        assert_eq!(r["members"].as_array().unwrap().len(), 3, "{r}");
    }
    // The room registry is the cluster's: made through A, capacity
    // counted over every node, deleted through A for members on B and C.
    let (s, r) = post(
        addrs[0],
        "/api/rooms",
        json!({"room": "ops", "capacity": 2}),
    )
    .await
    .unwrap();
    assert_eq!(s, 201, "{r}");
    let (s, r) = post(addrs[1], "/api/rooms", json!({"room": "ops"}))
        .await
        .unwrap();
    assert_eq!(s, 409, "made through A, known to B: {r}");
    let (_, listed) = get(addrs[2], "/api/rooms").await.unwrap();
    let ops = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"] == "ops");
    assert_eq!(ops.expect("listed by C")["capacity"], 2, "{listed}");
    let mut in_ops = Vec::new();
    for (i, a) in addrs.iter().enumerate().skip(1) {
        let mut c = Client::connect(a, &format!("o{i}")).await.unwrap();
        let r = c
            .call(json!({"type": "join_room", "room": "ops"}), "j")
            .await;
        assert_eq!(r["type"], "room_joined", "{r}");
        in_ops.push(c);
    }
    let mut late = Client::connect(addrs[0], "o0").await.unwrap();
    let r = late
        .call(json!({"type": "join_room", "room": "ops"}), "j")
        .await;
    assert_eq!(r["code"], "room_full", "two places, taken on B and C: {r}");
    let (s, r) = delete(addrs[0], "/api/rooms/ops").await.unwrap();
    assert_eq!(s, 204, "{r}");
    for c in &mut in_ops {
        // After any user_joined of the others.
        loop {
            match event(c, "room:ops").await {
                Next::Message(m) if m["event_type"] == "room_deleted" => break,
                Next::Message(m) => assert_eq!(m["event_type"], "user_joined", "{m}"),
                Next::Closed(code) => panic!("closed {code:?}"),
            }
        }
    }
    for c in &mut in_ops {
        // Taken out by its own node once the deletion reached it.
        let mut n = 0;
        loop {
            n += 1;
            let cmd = json!({"type": "publish", "channel": "room:ops", "event_type": "room_message", "data": n});
            let r = c.call(cmd, &format!("p{n}")).await;
            if r["code"] == "forbidden" {
                break;
            }
            assert!(n < 100, "still a member of a deleted room: {r}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (s, _) = get(addrs[1], "/api/rooms/ops").await.unwrap();
    assert_eq!(s, 404);
    // A user queue filled through A is delivered by B.
    for n in 1..=3 {
        let (s, r) = post(
            addrs[0],
            "/api/users/zoe/send",
            json!({"event_type": "note", "data": n}),
        )
        .await
        .unwrap();
        assert_eq!((s, &r["queued"]), (200, &json!(true)), "{r}");
    }
    let mut zoe = Client::connect(addrs[1], "zoe").await.unwrap();
    for n in 1..=3 {
        match event(&mut zoe, "user:zoe").await {
            Next::Message(m) => assert_eq!(m["data"], n),
            Next::Closed(c) => panic!("closed {c:?}"),
        }
    }
    // Live now on B: a send through C reaches her.
    let (_, r) = post(
        addrs[2],
        "/api/users/zoe/send",
        json!({"event_type": "note", "data": 4}),
    )
    .await
    .unwrap();
    assert_eq!(
        (&r["queued"], &r["connections"]),
        (&json!(false), &json!(1)),
        "{r}"
    );
    match event(&mut zoe, "user:zoe").await {
        Next::Message(m) => assert_eq!(m["data"], 4),
        Next::Closed(c) => panic!("closed {c:?}"),
    }
    // Every node lists the cluster (the registry lags by a heartbeat).
    for a in &addrs {
        until(
            "three nodes and their 10 connections in /api/stats",
            || async {
                let (_, s) = get(a, "/api/stats").await.unwrap();
                s["cluster"]["nodes"] == 3 && s["cluster"]["connections"] == 10
            },
        )
        .await;
    }
}

/// A client's view of one channel: the data it saw, and where it stands.
#[derive(Default)]
struct Seen {
    data: Vec<u64>,
    offset: u64,
    epoch: String,
}

impl Seen {
    fn take(&mut self, m: &Value) {
        self.data.push(m["data"].as_u64().unwrap());
        self.offset = m["offset"].as_u64().unwrap();
        self.epoch = m["epoch"].as_str().unwrap().to_owned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing() {
    let Some(url) = redis_or_skip() else { return };
    let p = prefix();
    killed_node_loses_nothing(node(&url, &p), node(&url, &p)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_on_nats() {
    let Some(url) = nats_or_skip() else { return };
    let p = prefix();
    killed_node_loses_nothing(nats_node(&url, &p), nats_node(&url, &p)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_act_as_one_on_nats_with_a_redis_store() {
    let (Some(nats), Some(redis)) = (nats_or_skip(), redis_or_skip()) else {
        return;
    };
    let p = prefix();
    let node = || relay_node(&nats, &redis, &p);
    three_nodes([node(), node(), node()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_nothing_on_nats_with_a_redis_store() {
    let (Some(nats), Some(redis)) = (nats_or_skip(), redis_or_skip()) else {
        return;
    };
    let p = prefix();
    killed_node_loses_nothing(relay_node(&nats, &redis, &p), relay_node(&nats, &redis, &p)).await;
}

/// Clients spread over A and B while a publisher sends numbered events
/// through both; A is killed with SIGKILL; its clients move to B and
/// recover with `since`.
async fn killed_node_loses_nothing(a: Hub, b: Hub) {
    const CLIENTS: usize = 10;
    const TOTAL: u64 = 200;
    const KILL_AT: u64 = 80;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let at = if i % 2 == 0 { &a.addr } else { &b.addr };
        let mut c = Client::connect(at, &format!("u{i}")).await.unwrap();
        let r = subscribe(&mut c, "seq", None).await;
        let seen = Seen {
            epoch: r["epoch"].as_str().unwrap().to_owned(),
            ..Seen::default()
        };
        if i % 2 == 0 {
            let j = c
                .call(json!({"type": "join_room", "room": "ops"}), "j")
                .await;
            assert_eq!(j["type"], "room_joined", "{j}");
        }
        clients.push((c, seen, i % 2 == 0));
    }
    let (b_addr, a_addr) = (b.addr.clone(), a.addr.clone());
    let mut a = Some(a);
    // The publisher: through both nodes, then B alone once A is dead.
    let publisher = tokio::spawn(async move {
        for n in 1..=TOTAL {
            if n == KILL_AT {
                if let Some(a) = a.take() {
                    a.proc.signal("KILL");
                    drop(a);
                }
            }
            let via = if n % 2 == 0 && n < KILL_AT {
                &a_addr
            } else {
                &b_addr
            };
            publish(via, "seq", json!(n)).await.expect("publish");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    // Each client reads until it has everything, reconnecting to B with
    // `since` when its node dies.
    let mut readers = Vec::new();
    for (mut c, mut seen, on_a) in clients {
        let b_addr = b.addr.clone();
        readers.push(tokio::spawn(async move {
            let mut reconnects = 0;
            while seen.data.last().copied() != Some(TOTAL) {
                match event(&mut c, "seq").await {
                    Next::Message(m) => seen.take(&m),
                    Next::Closed(_) => {
                        assert!(on_a, "a client of the surviving node was closed");
                        reconnects += 1;
                        c = Client::connect(&b_addr, "again").await.unwrap();
                        let r = subscribe(&mut c, "seq", Some((seen.offset, &seen.epoch))).await;
                        assert_eq!(r["recovered"], true, "{r}");
                    }
                }
            }
            (seen.data, reconnects)
        }));
    }
    publisher.await.unwrap();
    let mut moved = 0;
    for r in readers {
        let (data, reconnects) = r.await.unwrap();
        assert_eq!(
            data,
            (1..=TOTAL).collect::<Vec<_>>(),
            "lost, duplicated or reordered"
        );
        moved += reconnects;
    }
    assert_eq!(
        moved,
        CLIENTS / 2,
        "every client of the dead node moved once"
    );
    // The dead node's room members are gone within the expiry (2 s, and
    // a refresh period of slack).
    let started = std::time::Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(10) {
        last = get(&b.addr, "/api/channels/room:ops/presence")
            .await
            .unwrap()
            .1;
        if last["members"].as_array().is_some_and(|m| m.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last["members"], json!([]), "ghost members: {last}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gone within the expiry"
    );
}

/// A free port for a Redis of the test's own.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_redis(port: u16) -> Proc {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    let p = Proc::spawn("redis", cmd);
    p.wait_line(false, |l| l.contains("Ready to accept connections"));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ride_out_a_redis_restart() {
    if redis_or_skip().is_none() {
        return;
    }
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no redis-server under CI"
        );
        eprintln!("SKIPPED: no redis-server binary to restart");
        return;
    }
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let redis = start_redis(port);
    let p = prefix();
    let a = node(&url, &p);
    let b = node(&url, &p);
    let mut clients = Vec::new();
    for (i, at) in [&a.addr, &b.addr, &a.addr, &b.addr].into_iter().enumerate() {
        let mut c = Client::connect(at, &format!("r{i}")).await.unwrap();
        let r = subscribe(&mut c, "tick", None).await;
        let seen = Seen {
            epoch: r["epoch"].as_str().unwrap().to_owned(),
            ..Seen::default()
        };
        clients.push((c, seen));
    }
    for n in 1..=5 {
        publish(&a.addr, "tick", json!(n)).await.unwrap();
    }
    for (c, seen) in &mut clients {
        for _ in 1..=5 {
            match event(c, "tick").await {
                Next::Message(m) => seen.take(&m),
                Next::Closed(code) => panic!("closed early {code:?}"),
            }
        }
    }
    // Redis dies: not ready, publishes refused with `unavailable`.
    redis.signal("KILL");
    drop(redis);
    for at in [&a.addr, &b.addr] {
        until("readyz 503 while Redis is down", || async {
            matches!(get(at, "/readyz").await, Ok((503, _)))
        })
        .await;
    }
    let refused = publish(&a.addr, "tick", json!(6)).await.unwrap_err();
    assert_eq!(refused.0, 503, "{refused:?}");
    assert_eq!(refused.1["error"]["code"], "unavailable", "{refused:?}");
    // Back (empty: it kept nothing): the nodes recover by themselves.
    let _redis = start_redis(port);
    for at in [&a.addr, &b.addr] {
        until("readyz 200 once Redis is back", || async {
            matches!(get(at, "/readyz").await, Ok((200, _)))
        })
        .await;
    }
    // Every client is sent back through recovery, and told the truth.
    let mut outcomes: HashMap<bool, usize> = HashMap::new();
    for (i, (c, seen)) in clients.iter_mut().enumerate() {
        match event(c, "tick").await {
            Next::Closed(_) => {}
            Next::Message(m) => panic!("an event from nowhere: {m}"),
        }
        let at = if i % 2 == 0 { &a.addr } else { &b.addr };
        let mut fresh = Client::connect(at, "back").await.unwrap();
        let r = subscribe(&mut fresh, "tick", Some((seen.offset, &seen.epoch))).await;
        let recovered = r["recovered"].as_bool().unwrap();
        if recovered {
            assert_eq!(r["epoch"], seen.epoch.as_str(), "{r}");
        } else {
            assert_eq!(r["missed"], 0, "{r}");
        }
        *outcomes.entry(recovered).or_default() += 1;
        *c = fresh;
    }
    // Redis lost everything: a new epoch, so nobody can have recovered.
    assert_eq!(outcomes.get(&false), Some(&4), "{outcomes:?}");
    // And the cluster works again.
    publish(&b.addr, "tick", json!(7)).await.unwrap();
    for (c, _) in &mut clients {
        match event(c, "tick").await {
            Next::Message(m) => assert_eq!(m["data"], 7),
            Next::Closed(code) => panic!("closed {code:?}"),
        }
    }
}
