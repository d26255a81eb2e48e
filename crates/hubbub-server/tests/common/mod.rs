//! Test harness: a real hub on a free loopback port, and two kinds of
//! client: tungstenite for ordinary use and a raw-socket client for the
//! frames a well-behaved library refuses to send.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use hubbub_server::internals::Shared;
use hubbub_server::{Config, Node, Server, Sources};
use hubbub_ws::{client_frame, Decoder, DecoderConfig, Message, OpCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message as TMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(10);

/// A running hub and the means to stop it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    /// The node, as an embedding application holds it.
    pub node: Node,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(overrides: &[(&str, &str)]) -> TestServer {
        Self::start_from(None, overrides).await
    }

    /// A hub configured from a TOML file, then `overrides`.
    pub async fn start_with_file(file: &std::path::Path, overrides: &[(&str, &str)]) -> TestServer {
        Self::start_from(Some(file.to_owned()), overrides).await
    }

    async fn start_from(
        file: Option<std::path::PathBuf>,
        overrides: &[(&str, &str)],
    ) -> TestServer {
        let mut o: Vec<(String, String)> = vec![("server.listen".into(), "127.0.0.1:0".into())];
        o.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let config = Config::load(&Sources {
            file,
            overrides: o,
            ..Sources::default()
        })
        .expect("test config");
        let server = Server::bind(config).await.expect("bind");
        let addr = server.local_addr().unwrap();
        let shared = server.shared();
        let node = server.node();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run_until(async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            shared,
            node,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.http("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Asserts that `/metrics` has each of `lines` (series and value).
    pub async fn assert_metrics<S: AsRef<str>>(&self, lines: &[S]) {
        let m = self.metrics().await;
        for line in lines {
            assert!(m.contains(line.as_ref()), "{}\n{m}", line.as_ref());
        }
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{}", self.addr, query)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `GET path` on the HTTP API, its JSON body.
    #[allow(dead_code)] // not every test file reads the API this way
    pub async fn get_json(&self, path: &str) -> Value {
        let r = reqwest::get(self.http(path)).await.unwrap();
        r.json().await.unwrap()
    }

    /// `POST path` with a JSON body on the HTTP API, its JSON answer.
    #[allow(dead_code)]
    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        let r = reqwest::Client::new()
            .post(self.http(path))
            .json(body)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    /// Connections closed as slow consumers so far (4009).
    #[allow(dead_code)]
    pub fn slow_consumer_disconnects(&self) -> u64 {
        self.shared
            .metrics
            .slow_consumer_disconnects
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until `channel` has `n` local subscribers (for clients that
    /// subscribe without reading the reply).
    pub async fn wait_subscribers(&self, channel: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.shared.hub.subscriber_count(channel).unwrap_or(0) != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{channel} never reached {n} subscribers"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A raw client subscribed to `channel` that has not read anything
    /// (not even `connected`): the slow or silent client of the close-path
    /// tests. Returns once the hub has registered the subscription.
    pub async fn raw_subscriber(&self, channel: &str) -> Raw {
        let before = self.shared.hub.subscriber_count(channel).unwrap_or(0);
        let (mut raw, head) = Raw::connect(self.addr, "/ws", "").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw.send_json(serde_json::json!({"type": "subscribe", "channels": [channel]}))
            .await;
        self.wait_subscribers(channel, before + 1).await;
        raw
    }

    /// Signals shutdown and waits for `run_until` to return.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(WAIT, t)
                .await
                .expect("shutdown in time")
                .unwrap()
                .unwrap();
        }
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A tungstenite client with an optional subprotocol; returns it with the `connected` message.
pub async fn connect(url: &str, protocol: Option<&str>) -> (Ws, Value) {
    let mut req = url.into_client_request().unwrap();
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let (mut ws, _resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    let first = recv(&mut ws).await;
    assert_eq!(first["type"], "connected", "{first}");
    (ws, first)
}

/// Next protocol message (JSON or msgpack), skipping pings.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("message in time")
            .expect("stream open")
            .expect("no error");
        match msg {
            TMessage::Text(t) => return serde_json::from_str(&t).unwrap(),
            TMessage::Binary(b) => {
                return hubbub_protocol::codec::decode_server(
                    &b,
                    hubbub_protocol::Encoding::Msgpack,
                )
                .unwrap()
            }
            TMessage::Ping(_) | TMessage::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(TMessage::Text(v.to_string().into())).await.unwrap();
}

/// Sends a command and returns the next message.
pub async fn call(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    recv(ws).await
}

pub async fn subscribe(ws: &mut Ws, channels: &[&str]) -> Value {
    let r = call(
        ws,
        json!({"type": "subscribe", "id": "s", "channels": channels}),
    )
    .await;
    assert_eq!(r["type"], "subscribed", "{r}");
    r
}

/// A client on a bare socket that speaks frames itself.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

impl Raw {
    /// Connects and upgrades; returns the client and the HTTP status line + headers.
    pub async fn connect(addr: SocketAddr, path: &str, extra_headers: &str) -> (Raw, String) {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut buf = BytesMut::new();
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = tokio::time::timeout(WAIT, stream.read_buf(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                break buf.len();
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let rest = buf.split_off(head_end);
        (
            Raw {
                stream,
                buf: rest,
                decoder: Decoder::new(DecoderConfig {
                    max_message_size: 64 << 20,
                    require_mask: false,
                    allow_rsv1: false,
                }),
            },
            head,
        )
    }

    pub async fn send_frame(&mut self, op: OpCode, payload: &[u8]) {
        let f = client_frame(op, payload, [1, 2, 3, 4]);
        self.stream.write_all(&f).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_frame(OpCode::Text, v.to_string().as_bytes())
            .await;
    }

    /// Next message, or None when the server closed the TCP connection.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            let (n, msg) = self
                .decoder
                .decode(&self.buf)
                .expect("server frames are valid");
            if n > 0 {
                let _ = self.buf.split_to(n);
                if let Some(m) = msg {
                    return Some(m);
                }
                continue;
            }
            let read = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("server answers in time");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Next data message as JSON, skipping pings.
    pub async fn next_json(&mut self) -> Option<Value> {
        loop {
            match self.next().await? {
                Message::Text(t) => return Some(serde_json::from_slice(&t).unwrap()),
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(c) => panic!("unexpected close {:?}", c.map(|c| c.code)),
                Message::Binary(_) => panic!("unexpected binary"),
            }
        }
    }

    /// Reads until the close frame; returns the `disconnect` message seen
    /// just before it (if any) and the close code.
    pub async fn until_close(&mut self) -> (Option<Value>, Option<u16>) {
        let mut last = None;
        loop {
            match self.next().await {
                None => return (last, None),
                Some(Message::Close(c)) => return (last, c.map(|c| c.code)),
                Some(Message::Text(t)) => last = Some(serde_json::from_slice(&t).unwrap()),
                Some(_) => {}
            }
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Plain HTTP/1.1 request on a fresh socket; returns the whole response text.
pub async fn http_raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

pub fn ws_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

pub fn json_of(v: &str) -> Value {
    let body = v.split("\r\n\r\n").nth(1).unwrap_or("");
    serde_json::from_str(body).unwrap_or(json!(null))
}

/// A slowloris: sends half a request head and waits for the server's
/// answer. Returns how many bytes came back before the server closed (0:
/// dropped without an answer).
#[allow(dead_code)]
pub async fn half_request_head(addr: SocketAddr, wait: Duration) -> usize {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    tokio::time::timeout(wait, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0)
}

/// `POST path` with `body` sent as is (`Content-Type: application/json`),
/// for bodies `serde_json::Value` cannot hold (lone surrogates, duplicate
/// keys, huge numbers). Returns the status, the JSON answer and its size.
#[allow(dead_code)]
pub async fn post_text(srv: &TestServer, path: &str, body: &str) -> (u16, Value, usize) {
    let r = reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .unwrap()
        .post(srv.http(path))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v, bytes.len())
}

/// Sends a text frame exactly as given (not re-serialized), returns the
/// next message and the size of the frame that carried it.
#[allow(dead_code)]
pub async fn call_text(ws: &mut Ws, text: &str) -> (Value, usize) {
    ws.send(TMessage::Text(text.to_owned().into()))
        .await
        .unwrap();
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("reply in time")
            .expect("stream open")
            .expect("no error");
        match msg {
            TMessage::Text(t) => return (serde_json::from_str(&t).unwrap(), t.len()),
            TMessage::Ping(_) | TMessage::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}
