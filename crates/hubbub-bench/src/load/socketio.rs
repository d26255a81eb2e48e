//! Subscribing in each protocol: hubbub's own handshake, Socket.IO 4 or
//! Pusher over a raw WebSocket.

use hubbub_ws::{client_frame, Message, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::Protocol;
use crate::connections::worker::{
    client_decoder, connect_from, handshake, upgrade_request, Plan, Ready,
};
use crate::target::find;

/// A Pusher keep-alive ping, and its answer.
pub(super) const PUSHER_PING: &[u8] = b"\"pusher:ping\"";
pub(super) const PUSHER_PONG: &[u8] = b"{\"event\":\"pusher:pong\",\"data\":{}}";

/// Connects and subscribes `plan.channel` in `protocol`.
pub(super) async fn subscribe(
    protocol: Protocol,
    plan: &Plan,
    rnd: (u64, u64),
) -> Result<Ready, String> {
    match protocol {
        Protocol::Hubbub => handshake(plan, rnd, Instant::now()).await,
        Protocol::Socketio | Protocol::Pusher => sio_handshake(protocol, plan, rnd).await,
    }
}

/// The Socket.IO 4 handshake over a raw WebSocket: upgrade, Engine.IO
/// `open` (`0{...}`), `40` -> `40{...}`, `42["subscribe",channel]` ->
/// `42["subscribed",...]`, answering pings (`2`) meanwhile.
///
/// For the Pusher protocol: upgrade, `pusher:connection_established` ->
/// `pusher:subscribe`, until `pusher_internal:subscription_succeeded`,
/// answering `pusher:ping` with `pusher:pong` meanwhile.
pub(super) async fn sio_handshake(
    protocol: Protocol,
    plan: &Plan,
    rnd: (u64, u64),
) -> Result<Ready, String> {
    let started = Instant::now();
    let deadline = started + plan.handshake_timeout;
    let within = |what: &'static str| move |_| format!("timeout waiting for {what}");
    let mut stream = connect_from(plan, deadline).await?;
    let (req, _key, mask) = upgrade_request(plan, rnd);
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf))
            .await
            .map_err(within("101"))?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before 101".into());
        }
    };
    let status = String::from_utf8_lossy(&buf[..head_end])
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned();
    if status != "101" {
        return Err(format!("http {status}"));
    }
    let upgraded = started.elapsed();
    buf.drain(..head_end);
    let mut decoder = client_decoder();
    let sub = match protocol {
        Protocol::Pusher => format!(
            "{{\"event\":\"pusher:subscribe\",\"data\":{{\"channel\":\"{}\"}}}}",
            plan.channel
        ),
        _ => format!("42[\"subscribe\",\"{}\"]", plan.channel),
    };
    loop {
        let (n, msg) = decoder
            .decode(&buf)
            .map_err(|e| format!("bad frame: {e}"))?;
        if n == 0 {
            let r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf))
                .await
                .map_err(within("subscribed"))?
                .map_err(|e| format!("read: {e}"))?;
            if r == 0 {
                return Err("closed before subscribed".into());
            }
            continue;
        }
        buf.drain(..n);
        let pusher = protocol == Protocol::Pusher;
        let reply: Option<&[u8]> = match &msg {
            Some(Message::Text(p)) if pusher => {
                if find(p, b"pusher_internal:subscription_succeeded").is_some() {
                    break;
                } else if find(p, b"pusher:connection_established").is_some() {
                    Some(sub.as_bytes())
                } else if find(p, PUSHER_PING).is_some() {
                    Some(PUSHER_PONG)
                } else if find(p, b"pusher:error").is_some() {
                    return Err(format!("pusher error {}", String::from_utf8_lossy(p)));
                } else {
                    None
                }
            }
            Some(Message::Ping(p)) => {
                stream
                    .write_all(&client_frame(OpCode::Pong, p, mask))
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                None
            }
            Some(Message::Text(p)) if p.starts_with(b"0") => Some(b"40"),
            Some(Message::Text(p)) if p.starts_with(b"40") => Some(sub.as_bytes()),
            Some(Message::Text(p)) if p.starts_with(b"42[\"subscribed\"") => break,
            Some(Message::Text(p)) if &p[..] == b"2" => Some(b"3"),
            Some(Message::Text(p)) if p.starts_with(b"44") => {
                return Err(format!("connect_error {}", String::from_utf8_lossy(p)))
            }
            Some(Message::Close(_)) => return Err("closed by server".into()),
            _ => None,
        };
        if let Some(r) = reply {
            stream
                .write_all(&client_frame(OpCode::Text, r, mask))
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
    }
    Ok(Ready {
        stream,
        decoder,
        leftover: buf,
        mask,
        upgraded,
    })
}
