//! One room of many members (docs/rooms.md, "Large rooms"): the time to
//! join N members, the `user_joined` events delivered per second while they
//! join, the hub's memory per member, and `presence_stats` against a full
//! `presence` listing once the room is full.
//!
//! `cargo build --release -p hubbub && cargo run --release -p hubbub-server --example room_scale -- [N] [EVENTS] [IN_FLIGHT]`
//!
//! Starts `target/release/hubbub serve` on a free loopback port as a child
//! process (so its memory is its own), with `namespaces.room.join_leave_events`
//! set to EVENTS (`true` or `false`, default `false`) and room capacity N.
//! Opens N anonymous WebSocket connections and samples the hub's RSS with
//! all of them idle; then every connection joins room `big`, IN_FLIGHT
//! joins (default 64) at a time, each batch waiting for its `room_joined`,
//! while every connection reads on and counts the `user_joined` events it
//! gets. Then the hub's RSS again: the difference over N is the memory a
//! member costs beyond its connection. Last, from one member, 20 round
//! trips of `presence_stats` and 20 of `presence`, medians reported.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::Message;

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_hub(port: u16, n: usize, events: bool) -> Hub {
    let exe = std::env::var("HUB").unwrap_or_else(|_| "target/release/hubbub".into());
    let child = Command::new(exe)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--set",
            &format!("namespaces.room.join_leave_events={events}"),
        ])
        .args(["--set", &format!("rooms.default_capacity={n}")])
        .args(["--set", "server.max_connections=30000"])
        .args(["--set", "connection.outbound_queue_messages=100000"])
        .args(["--set", "connection.outbound_queue_bytes=1000000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start target/release/hubbub (build it first)");
    Hub(child)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A member's socket split: joins go out through `tx`, its reader counts
/// events and hands replies back.
struct Member {
    tx: mpsc::UnboundedSender<Message>,
    replies: mpsc::UnboundedReceiver<serde_json::Value>,
}

async fn connect(url: &str, joined_events: Arc<AtomicU64>) -> Member {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ws, _) = loop {
        match tokio_tungstenite::connect_async(url).await {
            Ok(ok) => break ok,
            Err(e) if Instant::now() > deadline => panic!("the hub does not answer: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut out) = mpsc::unbounded_channel::<Message>();
    let (reply_tx, replies) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = out.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let Message::Text(t) = m else { continue };
            if t.contains(r#""event_type":"user_joined""#) {
                joined_events.fetch_add(1, Relaxed);
                continue;
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&t) {
                if v["type"] != "event" && v["type"] != "connected" {
                    let _ = reply_tx.send(v);
                }
            }
        }
    });
    Member { tx, replies }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10_000, |a| a.parse().expect("N"));
    let events: bool = args
        .next()
        .is_some_and(|a| a.parse().expect("EVENTS: true or false"));
    let in_flight: usize = args.next().map_or(64, |a| a.parse().expect("IN_FLIGHT"));
    let port = 18700 + (std::process::id() % 200) as u16;
    let hub = start_hub(port, n, events);
    let pid = hub.0.id();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let joined_events = Arc::new(AtomicU64::new(0));

    let started = Instant::now();
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        members.push(connect(&url, joined_events.clone()).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss(pid);
    println!(
        "{n} connections open in {:.1} s; hub RSS {:.1} MiB",
        started.elapsed().as_secs_f64(),
        idle_rss as f64 / 1048576.0
    );

    let t0 = Instant::now();
    for batch in members.chunks_mut(in_flight) {
        for m in batch.iter() {
            let join = r#"{"type":"join_room","room":"big"}"#;
            m.tx.send(Message::Text(join.into())).expect("send");
        }
        for m in batch.iter_mut() {
            let r = m.replies.recv().await.expect("reply");
            assert_eq!(r["type"], "room_joined", "{r}");
        }
    }
    let join_secs = t0.elapsed().as_secs_f64();
    // Joins in one batch race each other's subscriptions, so how many
    // `user_joined` a member gets is not fixed: wait until they stop.
    let mut last = u64::MAX;
    let mut settled = Instant::now();
    loop {
        let now = joined_events.load(Relaxed);
        if now != last {
            last = now;
            settled = Instant::now();
        }
        if !events || settled.elapsed() > Duration::from_millis(500) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_secs = settled.duration_since(t0).as_secs_f64().max(join_secs);
    let delivered = joined_events.load(Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let full_rss = rss(pid);
    println!(
        "join_leave_events={events}: {n} joins in {join_secs:.2} s ({:.0} joins/s, {in_flight} in flight)",
        n as f64 / join_secs
    );
    if events {
        println!(
            "  user_joined delivered: {delivered} in {all_secs:.2} s: {:.0} deliveries/s",
            delivered as f64 / all_secs
        );
    }
    println!(
        "  hub RSS {:.1} MiB full: {:.0} B per member beyond its connection",
        full_rss as f64 / 1048576.0,
        (full_rss.saturating_sub(idle_rss)) as f64 / n as f64
    );

    let probe = &mut members[0];
    for (label, body) in [
        (
            "presence_stats",
            r#"{"type":"presence_stats","channel":"room:big"}"#,
        ),
        ("presence", r#"{"type":"presence","channel":"room:big"}"#),
    ] {
        let mut t = Vec::new();
        let mut bytes = 0;
        for _ in 0..20 {
            let s = Instant::now();
            probe.tx.send(Message::Text(body.into())).expect("send");
            let r = probe.replies.recv().await.expect("reply");
            t.push(s.elapsed().as_secs_f64() * 1e3);
            bytes = r.to_string().len();
            if label == "presence" {
                assert_eq!(r["members"].as_array().map(|m| m.len()), Some(n));
            }
        }
        println!(
            "  {label}: median {:.3} ms per call, reply {bytes} bytes",
            median(t)
        );
    }
    drop(hub);
}
