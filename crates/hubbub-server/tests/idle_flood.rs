//! A flood of idle HTTP sockets against a hub with 1,024 descriptors must
//! not stop WebSocket service for others.
//!
//! The hub runs in a child process (this test binary run again with
//! `HUBBUB_IDLE_FLOOD_CHILD` set, entering `child_hub`), so only the child's
//! descriptor limit is lowered: the flood's own 1,014 sockets live in the
//! parent.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CHILD: &str = "HUBBUB_IDLE_FLOOD_CHILD";
const DESCRIPTORS: u64 = 1024;
const FLOOD: usize = 1014;

/// The hub of the child process: 1,024 descriptors, default settings
/// otherwise; prints its address and runs until stdin closes. A no-op in
/// an ordinary test run.
#[test]
fn child_hub() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    rlimit::setrlimit(rlimit::Resource::NOFILE, DESCRIPTORS, DESCRIPTORS).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let srv = TestServer::start(&[]).await;
        println!("HUB_ADDR={}", srv.addr);
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 16];
        while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http_sockets_never_stop_websocket_service() {
    // The flood needs more descriptors than the child has.
    rlimit::increase_nofile_limit(4 * DESCRIPTORS).unwrap();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_hub", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr: std::net::SocketAddr = tokio::time::timeout(WAIT, async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the child's address");
            // libtest prints "test child_hub ... " on the same line.
            if let Some(i) = line.find("HUB_ADDR=") {
                return line[i + "HUB_ADDR=".len()..].trim().parse().unwrap();
            }
        }
    })
    .await
    .expect("the child hub starts in time");

    // 1,014 sockets, each sends one `GET /healthz` and then idles.
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        flood.push(s);
    }
    // Every one is answered or closed: none is left waiting.
    let (mut answered, mut closed, mut stuck) = (0, 0, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    for s in &mut flood {
        let mut buf = [0u8; 512];
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answered += 1,
            Ok(_) => closed += 1,
            Err(_) => stuck += 1,
        }
    }
    println!("flood: {answered} answered, {closed} closed unanswered, {stuck} neither");
    assert_eq!(stuck, 0, "flood sockets neither answered nor closed");
    // The hub keeps at most `server.max_http_connections` (128) of them.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut open = Vec::with_capacity(flood.len());
        for s in flood {
            let mut buf = [0u8; 512];
            match s.try_read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {}
                _ => open.push(s),
            }
        }
        flood = open;
        if flood.len() <= 128 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} idle sockets held open",
            flood.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("held open: {}", flood.len());

    // Meanwhile a WebSocket client connects and is served, and so is HTTP.
    let (mut ws, _) = tokio::time::timeout(WAIT, connect(&format!("ws://{addr}/ws"), None))
        .await
        .expect("a WebSocket upgrade in time");
    let r = call(&mut ws, json!({"type": "ping", "id": "w"})).await;
    assert_eq!(r["type"], "pong", "{r}");
    let health = tokio::time::timeout(WAIT, reqwest::get(format!("http://{addr}/healthz")))
        .await
        .expect("/healthz in time")
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let evicted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hubbub_http_connections_evicted_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the eviction counter");
    println!("evicted: {evicted}");
    assert!(evicted >= (FLOOD - 128) as u64, "{evicted} evicted");
    drop(child.stdin.take());
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
}
