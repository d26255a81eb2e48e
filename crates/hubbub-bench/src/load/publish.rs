//! The publishers: HTTP keep-alive or WebSocket connections that publish at
//! the setup's rate during a window; publisher j through node j mod N.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use hubbub_ws::{client_frame, Message, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::payload::{data_json, new_hist, unix_ns};
use super::setup::{channel_name, Setup};
use super::{LoadArgs, Protocol, Via};
use crate::connections::worker::{handshake, Plan, Ready};
use crate::target::{find, WsTarget};

/// One publisher's connection: HTTP keep-alive, or a WebSocket.
pub(super) enum PubConn {
    Http {
        stream: TcpStream,
        buf: Vec<u8>,
        /// Set for `--protocol pusher`: signed `POST /apps/<id>/events`.
        pusher: Option<PusherAuth>,
        /// The last response said `Connection: close` (Sockudo's do).
        closed: bool,
    },
    Ws {
        ready: Box<Ready>,
        buf: Vec<u8>,
    },
}

/// Opens publisher `j`'s connection, to its node (`j % n`).
pub(super) async fn open_pub(setup: &Setup, args: &LoadArgs, j: usize) -> Result<PubConn, String> {
    match args.via {
        Via::Http => {
            let stream = TcpStream::connect(setup.publisher_api(j).addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            Ok(PubConn::Http {
                stream,
                buf: Vec::with_capacity(1024),
                pusher: (args.protocol == Protocol::Pusher).then(|| PusherAuth {
                    app_id: args.pusher_app_id.clone(),
                    key: args.pusher_key.clone(),
                    secret: args.pusher_secret.clone(),
                }),
                closed: false,
            })
        }
        Via::Ws => {
            let target = setup.publisher_target(j);
            let plan = Plan::single(
                j,
                target.clone(),
                target.addr.ip(),
                format!("{}-publisher", channel_name(&args.channel, 1, 0)),
                Duration::from_secs(10),
            );
            let ready = handshake(&plan, (unix_ns(), j as u64 + 7), Instant::now()).await?;
            let buf = ready.leftover.clone();
            Ok(PubConn::Ws {
                ready: Box::new(ready),
                buf,
            })
        }
    }
}

impl PubConn {
    /// The server closes this connection after its last answer.
    fn closed(&self) -> bool {
        matches!(self, PubConn::Http { closed: true, .. })
    }

    /// Publishes one event and waits for the answer. `Ok` when accepted.
    pub(super) async fn publish(
        &mut self,
        api: &WsTarget,
        api_key: Option<&str>,
        channel: &str,
        data: &str,
        id: u64,
    ) -> Result<(), String> {
        match self {
            PubConn::Http {
                stream,
                buf,
                pusher,
                closed,
            } => {
                let (path, body) = match pusher {
                    Some(p) => p.request(channel, data),
                    None => (
                        "/api/publish".to_owned(),
                        format!(
                            "{{\"channel\":\"{channel}\",\"event_type\":\"bench\",\"data\":{data}}}"
                        ),
                    ),
                };
                let auth = api_key
                    .map(|k| format!("Authorization: Bearer {k}\r\n"))
                    .unwrap_or_default();
                let req = format!(
                    "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                     {auth}Content-Length: {}\r\n\r\n{body}",
                    api.host_header,
                    body.len()
                );
                stream
                    .write_all(req.as_bytes())
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                let (status, close) = read_response(stream, buf).await?;
                *closed = close;
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("http {status}"))
                }
            }
            PubConn::Ws { ready, buf } => {
                let cmd = format!(
                    "{{\"type\":\"publish\",\"id\":{id},\"channel\":\"{channel}\",\"event_type\":\"bench\",\"data\":{data}}}"
                );
                ready
                    .stream
                    .write_all(&client_frame(OpCode::Text, cmd.as_bytes(), ready.mask))
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                loop {
                    let (n, msg) = ready
                        .decoder
                        .decode(buf)
                        .map_err(|e| format!("bad frame: {e}"))?;
                    if n == 0 {
                        let r = ready
                            .stream
                            .read_buf(buf)
                            .await
                            .map_err(|e| format!("read: {e}"))?;
                        if r == 0 {
                            return Err("closed".into());
                        }
                        continue;
                    }
                    buf.drain(..n);
                    match msg {
                        Some(Message::Text(p)) => {
                            if find(&p, b"\"published\"").is_some() {
                                return Ok(());
                            }
                            if find(&p, b"\"error\"").is_some() {
                                let v: serde_json::Value =
                                    serde_json::from_slice(&p).unwrap_or_default();
                                return Err(format!("error {}", v["code"].as_str().unwrap_or("?")));
                            }
                        }
                        Some(Message::Ping(p)) => {
                            let _ = ready
                                .stream
                                .write_all(&client_frame(OpCode::Pong, &p, ready.mask))
                                .await;
                        }
                        Some(Message::Close(_)) => return Err("closed".into()),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// A Pusher app's credentials, to sign `POST /apps/<id>/events`.
pub(super) struct PusherAuth {
    pub(super) app_id: String,
    pub(super) key: String,
    pub(super) secret: String,
}

impl PusherAuth {
    /// The path with its signed query, and the body, of one publication:
    /// `auth_signature` is the hex HMAC-SHA256 of
    /// `POST\n/apps/<id>/events\n<sorted query without it>`.
    pub(super) fn request(&self, channel: &str, data: &str) -> (String, String) {
        self.request_at(channel, data, unix_ns() / 1_000_000_000)
    }

    pub(super) fn request_at(&self, channel: &str, data: &str, ts: u64) -> (String, String) {
        use hmac::{Hmac, Mac};
        use md5::Digest as _;
        let data = serde_json::to_string(data).expect("a string serializes");
        let body = format!("{{\"name\":\"bench\",\"channels\":[\"{channel}\"],\"data\":{data}}}");
        let body_md5 = hex::encode(md5::Md5::digest(body.as_bytes()));
        let path = format!("/apps/{}/events", self.app_id);
        let query = format!(
            "auth_key={}&auth_timestamp={ts}&auth_version=1.0&body_md5={body_md5}",
            self.key
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.secret.as_bytes())
            .expect("HMAC takes any key length");
        mac.update(format!("POST\n{path}\n{query}").as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        (format!("{path}?{query}&auth_signature={sig}"), body)
    }
}

/// Reads one HTTP response (Content-Length or chunked) from a keep-alive
/// connection, keeping any bytes past it in `buf`; returns the status and
/// whether the server closes the connection after it.
pub(super) async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, bool), String> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or("bad status line")?;
            let body_start = end + 4;
            let header = |name: &str| {
                head.split("\r\n").find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
            };
            let close = header("connection").is_some_and(|v| v.contains("close"));
            if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
                while buf.len() < body_start + len {
                    read_more(stream, buf).await?;
                }
                buf.drain(..body_start + len);
                return Ok((status, close));
            }
            if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                loop {
                    if let Some(i) = find(&buf[body_start..], b"0\r\n\r\n") {
                        let at = body_start + i;
                        if at == body_start || buf[at - 2..at] == *b"\r\n" {
                            buf.drain(..at + 5);
                            return Ok((status, close));
                        }
                    }
                    read_more(stream, buf).await?;
                }
            }
            buf.drain(..body_start);
            return Ok((status, close));
        }
        read_more(stream, buf).await?;
    }
}

pub(super) async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    match stream.read_buf(buf).await {
        Ok(0) => Err("closed by server".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// What the publishers did in one window.
#[derive(Default)]
pub(super) struct PubStats {
    pub(super) sent: u64,
    pub(super) accepted: u64,
    pub(super) expected: u64,
    pub(super) failures: BTreeMap<String, u64>,
    pub(super) request: Option<Histogram<u64>>,
}

/// Publishes window tag `w` for `secs` seconds at the setup's rate, over
/// the publishers' connections (reopened when they fail).
pub(super) async fn publish_window(
    setup: &Arc<Setup>,
    args: &Arc<LoadArgs>,
    conns: &mut [Option<PubConn>],
    w: u32,
    secs: f64,
    stop: &Arc<AtomicBool>,
) -> PubStats {
    let n = conns.len();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut set = tokio::task::JoinSet::new();
    for (j, slot) in conns.iter_mut().enumerate() {
        let mut conn = slot.take();
        let (setup, args, stop) = (setup.clone(), args.clone(), stop.clone());
        set.spawn(async move {
            let mut st = PubStats {
                request: Some(new_hist()),
                ..PubStats::default()
            };
            let mut k = j as u64;
            loop {
                if setup.rate > 0.0 {
                    let at = start + Duration::from_secs_f64(k as f64 / setup.rate);
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                } else if Instant::now() >= end {
                    break;
                }
                if stop.load(Relaxed) {
                    break;
                }
                let c = k % setup.channels;
                let channel = channel_name(&args.channel, setup.channels, c);
                let data = data_json(k, w, args.payload);
                if conn.is_none() {
                    match open_pub(&setup, &args, j).await {
                        Ok(p) => conn = Some(p),
                        Err(e) => {
                            *st.failures.entry(format!("connect: {e}")).or_insert(0) += 1;
                            st.sent += 1;
                            k += n as u64;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let t0 = Instant::now();
                st.sent += 1;
                let p = conn.as_mut().expect("opened above");
                match p
                    .publish(
                        setup.publisher_api(j),
                        args.api_key.as_deref(),
                        &channel,
                        &data,
                        k,
                    )
                    .await
                {
                    Ok(()) => {
                        if p.closed() {
                            conn = None;
                        }
                        st.accepted += 1;
                        st.expected += setup.subscribers_on(c);
                        if let Some(h) = &mut st.request {
                            h.saturating_record((t0.elapsed().as_micros() as u64).max(1));
                        }
                    }
                    Err(e) => {
                        *st.failures.entry(e).or_insert(0) += 1;
                        conn = None;
                    }
                }
                k += n as u64;
            }
            (j, conn, st)
        });
    }
    let mut total = PubStats {
        request: Some(new_hist()),
        ..PubStats::default()
    };
    while let Some(r) = set.join_next().await {
        let Ok((j, conn, st)) = r else { continue };
        conns[j] = conn;
        total.sent += st.sent;
        total.accepted += st.accepted;
        total.expected += st.expected;
        for (k, v) in st.failures {
            *total.failures.entry(k).or_insert(0) += v;
        }
        if let (Some(t), Some(h)) = (&mut total.request, &st.request) {
            let _ = t.add(h);
        }
    }
    total
}
