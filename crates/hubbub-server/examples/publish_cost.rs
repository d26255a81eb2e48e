//! Publishing from Rust against publishing over HTTP: the hub's CPU per
//! call with no subscribers, and per delivery with 1,000 WebSocket
//! subscribers (docs/embedding.md, "What publishing from Rust saves").
//!
//! `cargo run --release -p hubbub-server --example publish_cost -- [CALLS] [SUBSCRIBERS] [ROUNDS] [RATE]`
//!
//! One process: the node serves on a free loopback port on the main
//! runtime (2 worker threads); the HTTP client and the subscribers each run
//! on a thread of their own (a current-thread runtime), whose CPU time is
//! read from its `schedstat` (ns) and taken out of the process's, so
//! what is left is the hub's (and, for the in-process case, the caller's,
//! which is the application's own code path). The HTTP client keeps one
//! connection alive and sends each `POST /api/publish` after the previous
//! answer, as a backend in a request handler would. Rounds alternate the
//! two ways; medians are printed.
//!
//! With subscribers: each round publishes 5 s worth of events of 100 bytes
//! at RATE per second (default 200, so 200,000 deliveries/s), paced alike
//! both ways (unpaced, a burst from Rust would be written in batches and
//! look cheaper for that reason alone), and waits until every subscriber
//! has read every one, for each way in turn.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hubbub_protocol::JsonData;
use hubbub_server::{Config, Node, Sources};
use tokio_tungstenite::tungstenite::protocol::Message;

const CHANNEL: &str = "cost";

/// CPU seconds one thread has run, from its `schedstat` (nanoseconds,
/// unlike `stat`'s 10 ms ticks).
fn cpu(schedstat: &str) -> f64 {
    std::fs::read_to_string(schedstat)
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1e9
}

/// CPU seconds of every thread of the process.
fn process_cpu() -> f64 {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .map(|t| cpu(&format!("{}/schedstat", t.path().display())))
                .sum()
        })
        .unwrap_or(0.0)
}

/// The calling thread's `schedstat`, readable from other threads too.
fn my_schedstat() -> String {
    let link = std::fs::read_link("/proc/thread-self").expect("thread-self");
    format!("/proc/{}/schedstat", link.display())
}

fn payload() -> JsonData {
    JsonData::from_json(&format!(r#"{{"text":"{}"}}"#, "x".repeat(89))).expect("JSON")
}

/// A blocking keep-alive HTTP/1.1 client on its own thread: sends `n`
/// publishes one after another; returns (wall seconds, its own CPU seconds).
/// With `rate`, the i-th publish waits for its slot (i / rate seconds in).
fn http_publishes(addr: SocketAddr, n: u64, rate: Option<f64>) -> (f64, f64) {
    std::thread::spawn(move || {
        let start_cpu = cpu(&my_schedstat());
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        let body = format!(
            r#"{{"channel":"{CHANNEL}","event_type":"e","data":{}}}"#,
            payload().get()
        );
        let req = format!(
            "POST /api/publish HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let started = Instant::now();
        let mut line = String::new();
        for i in 0..n {
            if let Some(r) = rate {
                let slot = started + Duration::from_secs_f64(i as f64 / r);
                std::thread::sleep(slot.saturating_duration_since(Instant::now()));
            }
            s.write_all(req.as_bytes()).expect("send");
            let mut len = 0usize;
            loop {
                line.clear();
                r.read_line(&mut line).expect("head");
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().expect("length");
                }
            }
            let mut b = vec![0; len];
            r.read_exact(&mut b).expect("body");
        }
        (started.elapsed().as_secs_f64(), cpu(&my_schedstat()) - start_cpu)
    })
    .join()
    .expect("client thread")
}

/// Subscribers on a thread of their own; `received` counts their events.
/// Sends the thread's `schedstat` path once every subscriber is in.
fn subscribers(
    addr: SocketAddr,
    n: usize,
    received: Arc<AtomicU64>,
) -> (
    std::sync::mpsc::Receiver<String>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            for _ in 0..n {
                let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
                    .await
                    .expect("connect");
                ws.next().await; // connected
                let sub = format!(r#"{{"type":"subscribe","channels":["{CHANNEL}"]}}"#);
                ws.send(Message::Text(sub.into())).await.expect("subscribe");
                ws.next().await; // subscribed
                let received = received.clone();
                tokio::spawn(async move {
                    while let Some(Ok(m)) = ws.next().await {
                        if matches!(m, Message::Text(_)) {
                            received.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
            ready_tx.send(my_schedstat()).ok();
            let _ = stopped.await;
        })
    });
    (ready, stop)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let calls: u64 = args.next().map_or(Ok(50_000), |a| a.parse())?;
    let subs: usize = args.next().map_or(Ok(1000), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(5), |a| a.parse())?;
    let rate: f64 = args.next().map_or(Ok(200.0), |a| a.parse())?;
    let config = Config::load(&Sources {
        overrides: vec![
            ("server.listen".into(), "127.0.0.1:0".into()),
            ("channels.history_size".into(), "0".into()),
        ],
        ..Sources::default()
    })?;
    let node = Node::new(config)?;
    let server = node.clone().bind().await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.run_until(std::future::pending()));
    let data = payload();

    // No subscribers: the cost of the call itself.
    let (mut rust_us, mut http_us, mut http_client_us) = (vec![], vec![], vec![]);
    let (mut rust_wall, mut http_wall) = (vec![], vec![]);
    for round in 0..rounds {
        for way in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let c0 = process_cpu();
            if way == 0 {
                let t = Instant::now();
                for _ in 0..calls {
                    node.publish_json(CHANNEL, "e", data.clone()).await?;
                }
                rust_wall.push(t.elapsed().as_secs_f64() * 1e6 / calls as f64);
                rust_us.push((process_cpu() - c0) * 1e6 / calls as f64);
            } else {
                let (wall, client) =
                    tokio::task::spawn_blocking(move || http_publishes(addr, calls, None)).await?;
                let total = process_cpu() - c0;
                http_wall.push(wall * 1e6 / calls as f64);
                http_us.push((total - client) * 1e6 / calls as f64);
                http_client_us.push(client * 1e6 / calls as f64);
            }
        }
    }
    println!("0 subscribers, {calls} calls x {rounds} rounds (medians):");
    println!(
        "  Rust  publish_json: {:.3} us CPU per call, {:.2} us wall per call",
        median(rust_us),
        median(rust_wall)
    );
    println!(
        "  HTTP  POST /api/publish: {:.2} us hub CPU per call (client {:.2} us apart), {:.2} us wall per call",
        median(http_us),
        median(http_client_us),
        median(http_wall)
    );

    // 1,000 subscribers: CPU per delivery.
    let received = Arc::new(AtomicU64::new(0));
    let (ready, stop) = subscribers(addr, subs, received.clone());
    let subs_stat = ready.recv()?;
    while node.subscriber_count(CHANNEL) < subs {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let per_round = (rate * 5.0) as u64;
    let (mut rust_d, mut http_d) = (vec![], vec![]);
    for round in 0..rounds {
        for way in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            let before = received.load(Relaxed);
            let want = before + per_round * subs as u64;
            let c0 = process_cpu();
            let s0 = cpu(&subs_stat);
            let client = if way == 0 {
                let started = tokio::time::Instant::now();
                for i in 0..per_round {
                    tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate))
                        .await;
                    node.publish_json(CHANNEL, "e", data.clone()).await?;
                }
                0.0
            } else {
                tokio::task::spawn_blocking(move || http_publishes(addr, per_round, Some(rate)))
                    .await?
                    .1
            };
            let deadline = Instant::now() + Duration::from_secs(120);
            while received.load(Relaxed) < want && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let got = received.load(Relaxed) - before;
            assert_eq!(got, per_round * subs as u64, "every delivery arrived");
            let total = process_cpu() - c0;
            let subscribers = cpu(&subs_stat) - s0;
            let deliveries = (per_round * subs as u64) as f64;
            let v = (total - client - subscribers) * 1e6 / deliveries;
            if way == 0 {
                rust_d.push(v)
            } else {
                http_d.push(v)
            }
        }
    }
    let _ = stop.send(());
    println!("{subs} subscribers, {rate}/s, {per_round} publications x {rounds} rounds each way (medians):");
    println!(
        "  Rust  publish_json: {:.3} us hub CPU per delivery",
        median(rust_d)
    );
    println!(
        "  HTTP  POST /api/publish: {:.3} us hub CPU per delivery",
        median(http_d)
    );
    Ok(())
}
