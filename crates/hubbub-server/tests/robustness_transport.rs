//! Bad input and idle sockets at the transport: WebSocket keys, length
//! encodings, ping floods, idle and half-sent HTTP connections, the HTTP
//! connection limit. Every test checks that a witness WebSocket connection
//! is served while the bad peer is dealt with.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hubbub_ws::{Message, OpCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A WebSocket client served by the hub: connects, then answers `ping`.
struct Witness(Ws);

impl Witness {
    async fn new(srv: &TestServer) -> Witness {
        let ws = tokio::time::timeout(WAIT, connect(&srv.ws_url(""), None))
            .await
            .expect("the witness connects in time");
        Witness(ws.0)
    }

    async fn still_served(&mut self) {
        let r = call(&mut self.0, json!({"type": "ping", "id": "w"})).await;
        assert_eq!(r["type"], "pong", "{r}");
    }
}

/// One counter of `GET /metrics`.
async fn metric(srv: &TestServer, name: &str) -> u64 {
    let text = reqwest::get(srv.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in metrics"))
}

/// Reads one HTTP response (head and `content-length` body) from `s`;
/// `None` when the hub closed the socket first.
async fn read_response(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = text.split_whitespace().nth(1)?.parse().ok()?;
                return Some((status, text[..end + 4 + len].to_owned()));
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
            .await
            .expect("the hub answers or closes in time")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the hub closes `s` (reads return 0 or fail); panics after
/// `WAIT`. Anything the hub sends first is skipped.
async fn closed_by_hub(s: &mut TcpStream) {
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => panic!("the hub kept the socket open"),
        }
    }
}

/// A keep-alive connection that has been answered one `GET /healthz`.
async fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, _) = read_response(&mut s).await.expect("an answer");
    assert_eq!(status, 200);
    s
}

/// An upgrade request with `key` as `Sec-WebSocket-Key` (none when `None`).
fn upgrade_with_key(addr: SocketAddr, key: Option<&str>) -> String {
    let key = key
        .map(|k| format!("Sec-WebSocket-Key: {k}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         {key}Sec-WebSocket-Version: 13\r\n\r\n"
    )
}

// ---------------------------------------------------------------------------
// Handshake and framing strictness

#[tokio::test]
async fn a_key_that_is_not_16_bytes_of_base64_is_400() {
    let srv = TestServer::start(&[]).await;
    let mut w = Witness::new(&srv).await;
    let cases: &[(Option<&str>, &str)] = &[
        (None, "missing Sec-WebSocket-Key"),
        (Some(""), "missing Sec-WebSocket-Key"),
        (Some(&"A".repeat(65)), "65 characters"),
        (Some("not a key"), "base64"),
        // Unpadded, 15 and 17 bytes, characters outside the alphabet.
        (Some("dGhlIHNhbXBsZSBub25jZQ"), "base64"),
        (Some("AAAAAAAAAAAAAAAAAAAA"), "base64"),
        (Some("AAAAAAAAAAAAAAAAAAAAAAAA"), "base64"),
        (Some("dGhlIHNhbXBsZSBub25jZQ!="), "base64"),
    ];
    for (key, says) in cases {
        let answer = http_raw(srv.addr, &upgrade_with_key(srv.addr, *key)).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{key:?}: {answer}");
        let body = json_of(&answer);
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{key:?}: {message}");
        if key.is_some_and(|k| !k.is_empty()) {
            assert!(!message.contains("missing"), "{key:?}: {message}");
        }
    }
    // The RFC 6455 example key (base64 of 16 bytes) is fine.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let good = upgrade_with_key(srv.addr, Some(" dGhlIHNhbXBsZSBub25jZQ== "));
    s.write_all(good.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tokio::time::timeout(WAIT, s.read_exact(&mut head))
        .await
        .expect("an answer in time")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    w.still_served().await;
}

/// A text frame carrying `payload` whose length uses the 16- or 64-bit
/// form although it fits in 7 bits.
fn non_minimal_frame(payload: &[u8], long: bool) -> Vec<u8> {
    let mask = [1, 2, 3, 4];
    let mut f = vec![0x81];
    if long {
        f.push(0x80 | 127);
        f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn non_minimal_payload_lengths_close_1002() {
    let srv = TestServer::start(&[]).await;
    let mut w = Witness::new(&srv).await;
    for long in [false, true] {
        let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
        assert_eq!(raw.next_json().await.unwrap()["type"], "connected");
        raw.send_raw(&non_minimal_frame(br#"{"type":"ping"}"#, long))
            .await;
        let (disconnect, code) = raw.until_close().await;
        assert_eq!(code, Some(1002), "64-bit form: {long}");
        assert_eq!(disconnect.unwrap()["code"], 1002);
        w.still_served().await;
    }
}

#[tokio::test]
async fn a_second_request_head_over_16_kib_is_431() {
    let srv = TestServer::start(&[]).await;
    let mut w = Witness::new(&srv).await;
    let mut s = kept_alive(srv.addr).await;
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20 << 10)
    );
    // The hub may answer and close before it has read everything.
    let _ = s.write_all(big.as_bytes()).await;
    let (status, _) = read_response(&mut s).await.expect("an answer");
    assert_eq!(status, 431);
    closed_by_hub(&mut s).await;
    // The first head is held to the same limit.
    let answer = http_raw(srv.addr, &big).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    w.still_served().await;
}

// ---------------------------------------------------------------------------
// Control frames and the rate limit

#[tokio::test]
async fn a_ping_flood_is_rate_limited_and_closed_4029() {
    let srv = TestServer::start(&[]).await;
    let mut w = Witness::new(&srv).await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
    assert_eq!(raw.next_json().await.unwrap()["type"], "connected");
    // 5,000 pings in one write: more than the outbound queue holds (4,096).
    let ping = hubbub_ws::client_frame(OpCode::Ping, b"p", [1, 2, 3, 4]);
    raw.send_raw(&ping.repeat(5_000)).await;
    let mut pongs = 0;
    let mut disconnect = None;
    let code = loop {
        match raw.next().await {
            Some(Message::Pong(_)) => pongs += 1,
            Some(Message::Text(t)) => {
                disconnect = Some(serde_json::from_slice::<Value>(&t).unwrap())
            }
            Some(Message::Close(c)) => break c.map(|c| c.code),
            Some(_) => {}
            None => break None,
        }
    };
    println!("5,000 pings in one write: {pongs} pongs, close {code:?}");
    assert_eq!(code, Some(4029));
    assert_eq!(disconnect.unwrap()["code"], 4029);
    // The burst (200 by default), plus what 100/s refills while the hub
    // works through the read: far from one pong per ping.
    assert!(pongs <= 210, "{pongs} pongs");
    assert_eq!(srv.slow_consumer_disconnects(), 0);
    assert_eq!(metric(&srv, "hubbub_rate_limit_disconnects_total").await, 1);
    w.still_served().await;
}

#[tokio::test]
async fn pings_share_the_budget_of_data_messages() {
    let srv = TestServer::start(&[
        ("connection.rate_limit_per_second", "1"),
        ("connection.rate_limit_burst", "5"),
        ("connection.rate_limit_max_drops", "3"),
    ])
    .await;
    let mut w = Witness::new(&srv).await;
    let (mut raw, _) = Raw::connect(srv.addr, "/ws", "").await;
    raw.next_json().await.unwrap();
    // Four pings take four tokens: of two messages, one passes.
    for _ in 0..4 {
        raw.send_frame(OpCode::Ping, b"").await;
    }
    raw.send_json(json!({"type": "ping", "id": 1})).await;
    raw.send_json(json!({"type": "ping", "id": 2})).await;
    let mut pongs = 0;
    loop {
        match raw.next().await.expect("open") {
            Message::Pong(_) => pongs += 1,
            Message::Text(t) => {
                let v: Value = serde_json::from_slice(&t).unwrap();
                if v["type"] == "error" {
                    assert_eq!(v["code"], "rate_limited", "{v}");
                    assert_eq!(v["correlation_id"], 2, "{v}");
                    break;
                }
                assert_eq!(v["type"], "pong", "{v}");
                assert_eq!(v["correlation_id"], 1, "{v}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(pongs, 4);
    w.still_served().await;
}

// ---------------------------------------------------------------------------
// Idle and slow HTTP connections

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let srv = TestServer::start(&[("server.http_idle_timeout_ms", "300")]).await;
    let mut w = Witness::new(&srv).await;
    let mut s = kept_alive(srv.addr).await;
    closed_by_hub(&mut s).await;
    w.still_served().await;
    assert_eq!(metric(&srv, "hubbub_http_idle_closed_total").await, 1);
}

#[tokio::test]
async fn an_unfinished_second_request_head_is_closed() {
    let srv = TestServer::start(&[("server.http_idle_timeout_ms", "300")]).await;
    let mut w = Witness::new(&srv).await;
    let mut s = kept_alive(srv.addr).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    closed_by_hub(&mut s).await;
    w.still_served().await;
    assert_eq!(metric(&srv, "hubbub_http_idle_closed_total").await, 1);
}

#[tokio::test]
async fn a_half_sent_body_is_408() {
    let srv = TestServer::start(&[("server.http_body_timeout_ms", "300")]).await;
    let mut w = Witness::new(&srv).await;
    for first in [true, false] {
        let mut s = if first {
            TcpStream::connect(srv.addr).await.unwrap()
        } else {
            kept_alive(srv.addr).await
        };
        s.write_all(
            b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"channel\":",
        )
        .await
        .unwrap();
        let (status, text) = read_response(&mut s).await.expect("an answer");
        assert_eq!(status, 408, "{text}");
        assert_eq!(json_of(&text)["error"]["code"], "bad_request", "{text}");
        closed_by_hub(&mut s).await;
        w.still_served().await;
    }
    assert_eq!(metric(&srv, "hubbub_http_body_timeouts_total").await, 2);
}

#[tokio::test]
async fn a_large_body_still_arrives_whole() {
    // hyper's buffer is bounded at 64 KiB: bodies stream through it.
    let srv = TestServer::start(&[]).await;
    let data = "z".repeat(900 << 10);
    let r = reqwest::Client::new()
        .post(srv.http("/api/publish"))
        .json(&json!({"channel": "big", "event_type": "e", "data": data}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn over_the_http_limit_the_oldest_idle_connection_makes_room() {
    let srv = TestServer::start(&[("server.max_http_connections", "4")]).await;
    let mut w = Witness::new(&srv).await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(kept_alive(srv.addr).await);
    }
    // A fifth HTTP client is served; the oldest idle one is closed for it.
    let mut fifth = kept_alive(srv.addr).await;
    closed_by_hub(&mut idle[0]).await;
    // WebSocket upgrades do not count as HTTP connections.
    let mut w2 = Witness::new(&srv).await;
    w.still_served().await;
    w2.still_served().await;
    // The others are still open and answer.
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut fifth).await.unwrap().0, 200);
    assert!(metric(&srv, "hubbub_http_connections_evicted_total").await >= 1);
}

#[tokio::test]
async fn over_the_http_limit_with_none_idle_is_503() {
    let srv = TestServer::start(&[("server.max_http_connections", "2")]).await;
    let mut w = Witness::new(&srv).await;
    // Two connections busy sending a body: neither can be evicted.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(
            b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
        busy.push(s);
    }
    // Wait until the hub is reading both bodies.
    let deadline = tokio::time::Instant::now() + WAIT;
    while srv.shared.http.busy() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "bodies never read");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (status, text) = read_response(&mut s).await.expect("an answer");
    assert_eq!(status, 503, "{text}");
    assert_eq!(json_of(&text)["error"]["code"], "server_full", "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: "),
        "{text}"
    );
    // (Not through `/metrics`: every HTTP place is busy.)
    let refused = &srv.shared.metrics.http_connections_refused;
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    // WebSocket connections have limits of their own.
    let mut w2 = Witness::new(&srv).await;
    w.still_served().await;
    w2.still_served().await;
}

#[tokio::test]
async fn a_burst_of_websocket_handshakes_is_not_held_to_the_http_limit() {
    let srv = TestServer::start(&[("server.max_http_connections", "2")]).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(kept_alive(srv.addr).await);
    }
    let burst: Vec<_> = (0..50)
        .map(|_| {
            let addr = srv.addr;
            tokio::spawn(async move { Raw::connect(addr, "/ws", "").await })
        })
        .collect();
    let mut clients = Vec::new();
    for b in burst {
        let (raw, head) = b.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        clients.push(raw);
    }
    // Nothing was evicted for them.
    let evicted = &srv.shared.metrics.http_connections_evicted;
    assert_eq!(evicted.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(srv.shared.http.open(), 2);
}

#[tokio::test]
async fn http_defaults_are_sane() {
    let c = hubbub_server::Config::default();
    assert_eq!(c.server.http_idle_timeout_ms, 30_000);
    assert_eq!(c.server.http_body_timeout_ms, 30_000);
    assert_eq!(c.server.max_http_connections, 128);
}
