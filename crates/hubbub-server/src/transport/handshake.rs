//! Reading the first request head and answering WebSocket upgrades.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hubbub_protocol::{validate_channel, Encoding, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::rewind::Rewind;
use crate::conn::driver::{Conn, Role};
use crate::conn::handle::ConnHandle;
use crate::hub::encode_frame;
use crate::metrics::Metrics;
use crate::state::Shared;
use crate::util::now_ms;

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

/// A refusal at the handshake: HTTP status, error code, message, extra headers.
struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
    headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }
}

/// What an upgrade request asked for.
struct Upgrade {
    role: Role,
    key: String,
    encoding: Encoding,
    echo_protocol: bool,
    user_id: Option<String>,
}

/// Serves one accepted socket: a WebSocket upgrade or HTTP.
pub(crate) async fn serve_socket(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    app: axum::Router,
) {
    let timeout = Duration::from_millis(shared.config.server.handshake_timeout_ms);
    let (buf, head_len) = match tokio::time::timeout(timeout, read_head(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => return,
        Ok(Err(refusal)) => {
            Metrics::inc(&shared.metrics.handshakes_refused);
            return refuse(stream, refusal).await;
        }
        Err(_) => {
            // A peer that never finishes its request head (slowloris).
            Metrics::inc(&shared.metrics.handshakes_refused);
            return;
        }
    };
    match parse_upgrade(&buf[..head_len], &shared) {
        Ok(Some(up)) => upgrade(stream, peer, shared, up, &buf[head_len..]).await,
        Ok(None) => {
            super::super::http::serve_connection(
                Rewind::new(buf.freeze(), stream),
                peer,
                shared,
                app,
            )
            .await
        }
        Err(refusal) => {
            Metrics::inc(&shared.metrics.handshakes_refused);
            refuse(stream, refusal).await
        }
    }
}

/// Reads until a complete request head; returns the buffer and the head length.
async fn read_head(stream: &mut TcpStream) -> Result<Option<(BytesMut, usize)>, Refusal> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => return Ok(Some((buf, n))),
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(Refusal::new(431, "bad_request", "request head too large"))
            }
            Err(e) => {
                return Err(Refusal::new(
                    400,
                    "bad_request",
                    format!("malformed request: {e}"),
                ))
            }
        }
    }
}

fn header<'a>(req: &'a httparse::Request<'_, '_>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// `Ok(None)`: not an upgrade for us, serve as HTTP.
fn parse_upgrade(head: &[u8], shared: &Shared) -> Result<Option<Upgrade>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head).is_err() {
        return Err(Refusal::new(400, "bad_request", "malformed request"));
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let role = match path {
        "/ws" => Role::Hub,
        "/" | "/echo" if shared.config.server.testing_echo => Role::Echo,
        _ => return Ok(None),
    };
    if !has_token(header(&req, "upgrade"), "websocket") {
        return Ok(None);
    }
    if req.method != Some("GET")
        || req.version != Some(1)
        || !has_token(header(&req, "connection"), "upgrade")
    {
        return Err(Refusal::new(
            400,
            "bad_request",
            "a WebSocket upgrade needs GET, HTTP/1.1 and Connection: Upgrade",
        ));
    }
    if header(&req, "sec-websocket-version").map(str::trim) != Some("13") {
        let mut r = Refusal::new(426, "bad_request", "only WebSocket version 13 is supported");
        r.headers.push(("Sec-WebSocket-Version", "13".into()));
        return Err(r);
    }
    let key = match header(&req, "sec-websocket-key").map(str::trim) {
        Some(k) if !k.is_empty() && k.len() <= 64 => k.to_owned(),
        _ => {
            return Err(Refusal::new(
                400,
                "bad_request",
                "missing Sec-WebSocket-Key",
            ))
        }
    };
    let (encoding, echo_protocol) = match header(&req, "sec-websocket-protocol") {
        None => (Encoding::Json, false),
        Some(offered) => match offered.split(',').find_map(Encoding::from_subprotocol) {
            Some(e) => (e, true),
            None if role == Role::Echo => (Encoding::Json, false),
            None => {
                return Err(Refusal::new(
                    400,
                    "bad_request",
                    "unsupported subprotocol; offer hubbub.json.v1 or hubbub.msgpack.v1",
                ))
            }
        },
    };
    let mut user_id = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "user_id" {
            if !shared.config.is_development() {
                return Err(Refusal::new(
                    401,
                    "unauthorized",
                    "user_id is only accepted in development mode",
                ));
            }
            if v.len() > 128 || validate_channel(&v).is_err() {
                return Err(Refusal::new(
                    400,
                    "bad_request",
                    "user_id must be 1-128 characters of A-Z a-z 0-9 _ . - : @",
                ));
            }
            user_id = Some(v.into_owned());
        }
    }
    Ok(Some(Upgrade {
        role,
        key,
        encoding,
        echo_protocol,
        user_id,
    }))
}

async fn upgrade(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    up: Upgrade,
    leftover: &[u8],
) {
    if shared.shutting_down.load(Relaxed) {
        let mut r = Refusal::new(503, "unavailable", "server is shutting down");
        r.headers.push(("Retry-After", "5".into()));
        return refuse(stream, r).await;
    }
    if !shared
        .conns
        .try_reserve(shared.config.server.max_connections)
    {
        Metrics::inc(&shared.metrics.connections_refused_full);
        let mut r = Refusal::new(503, "server_full", "connection limit reached");
        r.headers.push(("Retry-After", "5".into()));
        return refuse(stream, r).await;
    }
    let accept = hubbub_ws::handshake::accept_key(up.key.as_bytes());
    let protocol = up.echo_protocol.then(|| up.encoding.subprotocol());
    let response = hubbub_ws::handshake::response_101(&accept, protocol, &[]);
    if stream.write_all(&response).await.is_err() {
        shared.conns.release();
        return;
    }
    let seq = shared.conns.next_seq();
    let handle = Arc::new(ConnHandle::new(
        seq,
        up.user_id,
        up.encoding,
        peer,
        now_ms(),
    ));
    if up.role == Role::Hub {
        let cfg = &shared.config.connection;
        let connected = ServerMessage::Connected {
            connection_id: shared.conns.connection_id(seq),
            user_id: handle.user_id.as_deref().map(str::to_owned),
            server_time: now_ms(),
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            max_message_size: cfg.max_message_size,
            encoding: up.encoding.name(),
            features: Vec::new(),
        };
        if let Some(frame) = encode_frame(&connected, None, now_ms(), up.encoding) {
            handle.push(&frame, shared.queue_limits());
        }
    }
    // A user's connection takes what was queued for the user while offline,
    // registered under the same lock that `send` checks (see `users`).
    let offline = match handle.user_id.as_deref() {
        Some(user) => shared
            .users
            .attach(user, || shared.conns.insert(handle.clone())),
        None => {
            shared.conns.insert(handle.clone());
            Vec::new()
        }
    };
    Metrics::inc(&shared.metrics.connections_accepted);
    let encoding = handle.encoding;
    let mut conn = Conn::new(stream, shared, handle, up.role, leftover);
    conn.send_direct(offline.iter().filter_map(|p| p.frame(encoding).cloned()));
    // A task of its own, sized for the connection alone (not the handshake).
    tokio::spawn(conn.run());
}

async fn refuse(mut stream: TcpStream, r: Refusal) {
    let body = serde_json::json!({"error": {"code": r.code, "message": r.message}}).to_string();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        r.status,
        reason(r.status),
        body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
