//! The engine-trait conformance suite and cross-node checks, against the
//! real Redis at `HUBBUB_TEST_REDIS` (default `redis://127.0.0.1:6379`).
//! Without one, each test says loudly that it skipped; under `CI=true` it
//! fails instead.

use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::rooms::PresenceEntry;
use hubbub_server::engine::conformance::{draft, run_all, RecordingSink};
use hubbub_server::engine::{Admission, Engine, HistoryOptions, RoomSettings};
use hubbub_server::Config;

fn redis_url() -> String {
    std::env::var("HUBBUB_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A config on the test Redis with a prefix of its own.
fn config(prefix: &str) -> Config {
    let mut c = Config::default();
    c.engine.redis_url = redis_url();
    c.engine.prefix = prefix.to_owned();
    c.engine.presence_ttl_s = 2;
    c.engine.heartbeat_ms = 200;
    c
}

fn prefix() -> String {
    format!("t{:08x}", rand::random::<u32>())
}

/// The engine, or `None` (loudly) when no Redis answers outside CI.
async fn engine(config: &Config) -> Option<Engine> {
    match hubbub_redis::engine(config).await {
        Ok(e) => Some(e),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "SKIPPED: no Redis at {} ({e}); set HUBBUB_TEST_REDIS",
                redis_url()
            );
            None
        }
        Err(e) => panic!("no Redis at {} under CI: {e}", redis_url()),
    }
}

#[tokio::test]
async fn passes_the_engine_conformance_suite() {
    let config = config(&prefix());
    if engine(&config).await.is_none() {
        return;
    }
    run_all(|| async { hubbub_redis::engine(&config).await.expect("engine") }).await;
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn node(config: &Config, id: &str) -> Option<(Engine, Arc<RecordingSink>)> {
    let e = engine(config).await?;
    let sink = Arc::new(RecordingSink::default());
    e.broker.start(sink.clone(), id);
    Some((e, sink))
}

#[tokio::test]
async fn two_nodes_share_events_history_presence_and_user_queues() {
    let config = config(&prefix());
    let Some((a, sa)) = node(&config, "na").await else {
        return;
    };
    let (b, sb) = node(&config, "nb").await.expect("second node");
    let opts = HistoryOptions {
        size: 100,
        ttl: Duration::from_secs(60),
    };
    // Fan-out in offset order, both publishing.
    a.broker.subscribe("chat:x").await.expect("subscribe a");
    b.broker.subscribe("chat:x").await.expect("subscribe b");
    for n in 1..=20u64 {
        let from = if n % 2 == 0 { &a } else { &b };
        let out = from
            .broker
            .publish(draft("chat:x", n), Some(opts))
            .await
            .expect("publish");
        assert_eq!(out.offset, Some(n), "one numbering for both nodes");
    }
    for sink in [&sa, &sb] {
        until("20 events on each node", || {
            sink.delivered.lock().len() >= 20
        })
        .await;
        let offsets: Vec<_> = sink
            .delivered
            .lock()
            .iter()
            .map(|p| p.event.offset.unwrap())
            .collect();
        assert_eq!(offsets, (1..=20).collect::<Vec<_>>());
    }
    let read = b.history.read("chat:x", Some(15), 100).await.expect("read");
    assert_eq!(read.events.len(), 5);
    // Presence from either side.
    let entry = PresenceEntry {
        user_id: Some("ann".into()),
        connection_id: "na-1".into(),
        info: "{}".parse().unwrap(),
        joined_at: 5,
    };
    a.presence.add("room:r", entry).await.expect("add");
    let seen = b.presence.list("room:r").await.expect("list");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].connection_id, "na-1");
    // A user queue filled through A is handed over by B.
    let p = Arc::new(draft("user:zed", 1));
    let out = a.broker.send_to_user("zed", p).await.expect("send");
    assert!(out.queued && out.connections == 0);
    let mut reg = || {
        sb.live_users.lock().insert("zed".into());
    };
    let taken = b.broker.attach_user("zed", &mut reg).await.expect("attach");
    assert_eq!(taken.len(), 1);
    // Now live on B: a send through A reaches B's connection.
    let out = a
        .broker
        .send_to_user("zed", Arc::new(draft("user:zed", 2)))
        .await
        .expect("send");
    assert_eq!((out.connections, out.queued), (1, false));
    until("the user event on B", || sb.to_users.lock().len() == 1).await;
    // The registry lists both nodes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let nodes = a.broker.nodes().await.expect("nodes");
        if nodes.len() == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "nodes: {nodes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_lost_history_gets_a_new_epoch_never_reused_offsets() {
    let config = config(&prefix());
    let Some((a, _sa)) = node(&config, "n1").await else {
        return;
    };
    let opts = HistoryOptions {
        size: 10,
        ttl: Duration::from_secs(60),
    };
    let first = a
        .broker
        .publish(draft("feed", 1), Some(opts))
        .await
        .expect("publish");
    // Redis loses the channel (a restart without persistence, eviction).
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{}:hm:feed", config.engine.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    let second = a
        .broker
        .publish(draft("feed", 2), Some(opts))
        .await
        .expect("publish");
    assert_eq!(second.offset, Some(1));
    assert_ne!(second.epoch, first.epoch, "a new epoch");
    let read = a.history.read("feed", Some(0), 10).await.expect("read");
    assert_eq!(read.events.len(), 1, "the old list went with its epoch");
    assert!(!read.reaches_back_to(1, first.epoch.as_deref().unwrap()));
}

#[tokio::test]
async fn a_dead_nodes_presence_expires() {
    let config = config(&prefix());
    let Some((a, _)) = node(&config, "alive").await else {
        return;
    };
    let entry = |c: &str| PresenceEntry {
        user_id: None,
        connection_id: c.into(),
        info: "{}".parse().unwrap(),
        joined_at: 1,
    };
    a.presence.add("room:ghost", entry("kept")).await.unwrap();
    {
        // A node that adds an entry and dies (its refresh task ends with it).
        let dead = hubbub_redis::engine(&config).await.unwrap();
        dead.presence
            .add("room:ghost", entry("ghost"))
            .await
            .unwrap();
    }
    assert_eq!(a.presence.list("room:ghost").await.unwrap().len(), 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        let list = a.presence.list("room:ghost").await.unwrap();
        if list.len() == 1 {
            assert_eq!(
                list[0].connection_id, "kept",
                "the live node refreshes its own"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "ghost still listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rooms are one registry for two nodes: created through A, seen and
/// joined through B; capacity counts both nodes' connections; a node that
/// dies frees its members' places within the presence TTL; deleted
/// through B, the room admits no one through A.
#[tokio::test]
async fn rooms_are_one_registry_for_every_node() {
    let config = config(&prefix());
    let Some((a, _)) = node(&config, "a").await else {
        return;
    };
    let (b, _) = node(&config, "b").await.expect("second node");
    let entry = |c: &str| PresenceEntry {
        user_id: Some(format!("u-{c}")),
        connection_id: c.into(),
        info: "{}".parse().unwrap(),
        joined_at: 1,
    };
    let settings = RoomSettings {
        room: "ops".into(),
        capacity: 3,
        private: true,
        owner: Some("ann".into()),
        metadata: Default::default(),
        created_at: 0,
        made_by_join: false,
    };
    let made = a.rooms.create(settings).await.unwrap().expect("made");
    let seen = b.rooms.get("ops").await.unwrap().expect("seen from b");
    assert_eq!(*seen.settings, *made);
    let inside = |r: Admission| matches!(r, Admission::Admitted { new: true, .. });
    assert!(inside(
        a.rooms.admit("ops", entry("a1"), None).await.unwrap()
    ));
    assert!(inside(
        b.rooms.admit("ops", entry("b1"), None).await.unwrap()
    ));
    {
        // A node that takes the last place and dies.
        let dead = hubbub_redis::engine(&config).await.unwrap();
        assert!(inside(
            dead.rooms.admit("ops", entry("d1"), None).await.unwrap()
        ));
    }
    let full = b.rooms.admit("ops", entry("b2"), None).await.unwrap();
    assert_eq!(full, Admission::Full { capacity: 3 });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        match b.rooms.admit("ops", entry("b2"), None).await.unwrap() {
            Admission::Full { .. } => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the dead node's place is still taken"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => {
                assert!(inside(other));
                break;
            }
        }
    }
    let members = a.presence.list("room:ops").await.unwrap();
    let mut conns: Vec<_> = members.iter().map(|e| e.connection_id.as_str()).collect();
    conns.sort();
    assert_eq!(
        conns,
        ["a1", "b1", "b2"],
        "the live nodes refresh their own"
    );
    let listed = a.rooms.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].members, 3);
    assert!(b.rooms.delete("ops").await.unwrap().is_some());
    assert_eq!(
        a.rooms.admit("ops", entry("a2"), None).await.unwrap(),
        Admission::Unknown
    );
    assert!(a.presence.list("room:ops").await.unwrap().is_empty());
    // Made by joining through A, gone when B's member (its last) leaves.
    let joined = a.rooms.admit("lobby", entry("a3"), Some(5)).await.unwrap();
    assert!(inside(joined));
    assert!(inside(
        b.rooms.admit("lobby", entry("b3"), None).await.unwrap()
    ));
    a.rooms.release("lobby", "a3").await.unwrap();
    b.rooms.release("lobby", "b3").await.unwrap();
    assert!(a.rooms.get("lobby").await.unwrap().is_none());
}

/// A redis-server of the test's own on a free port, stopped on drop.
struct OwnRedis {
    child: std::process::Child,
    url: String,
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one, or `None` (loudly; a failure under CI) without the binary.
fn own_redis() -> Option<OwnRedis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: cannot start redis-server ({e})");
            return None;
        }
        Err(e) => panic!("no redis-server under CI: {e}"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(OwnRedis {
        child,
        url: format!("redis://127.0.0.1:{port}"),
    })
}

#[tokio::test]
async fn channels_and_users_shard_over_several_servers() {
    let (Some(one), Some(two)) = (own_redis(), own_redis()) else {
        return;
    };
    let mut config = config(&prefix());
    config.engine.redis_urls = vec![one.url.clone(), two.url.clone()];
    run_all(|| async { hubbub_redis::engine(&config).await.expect("engine") }).await;
    // Two nodes, many channels: each channel's events reach the other
    // node in order, whichever server holds the channel.
    let (a, _) = node(&config, "sa").await.expect("node a");
    let (b, sb) = node(&config, "sb").await.expect("node b");
    let opts = HistoryOptions {
        size: 10,
        ttl: Duration::from_secs(60),
    };
    let channels: Vec<String> = (0..8).map(|i| format!("shard:{i}")).collect();
    for ch in &channels {
        b.broker.subscribe(ch).await.expect("subscribe");
    }
    for n in 1..=3u64 {
        for ch in &channels {
            let out = a
                .broker
                .publish(draft(ch, n), Some(opts))
                .await
                .expect("publish");
            assert_eq!(out.offset, Some(n));
        }
    }
    until("24 events on B", || sb.delivered.lock().len() >= 24).await;
    for ch in &channels {
        let offsets: Vec<_> = sb
            .delivered
            .lock()
            .iter()
            .filter(|p| &p.event.channel == ch)
            .map(|p| p.event.offset.unwrap())
            .collect();
        assert_eq!(offsets, [1, 2, 3], "{ch}");
    }
    // Both servers hold some of them.
    let mut held = [0usize; 2];
    for (i, url) in [&one.url, &two.url].into_iter().enumerate() {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:hm:shard:*", config.engine.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        held[i] = keys.len();
    }
    assert_eq!(held[0] + held[1], 8, "{held:?}");
    assert!(held[0] > 0 && held[1] > 0, "spread over both: {held:?}");
}
