//! One accepted socket of the raw server: a WebSocket subscriber (upgrade,
//! `connected`, `subscribed`, then handed to the hub's list) or an HTTP
//! publisher (`POST /api/publish`).

use std::sync::Arc;

use bytes::Bytes;
use hubbub_ws::{server_frame, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::hub::Hub;
use crate::target::find;

/// The frame a publication becomes: a hubbub `event` message.
pub(super) fn event_frame(channel: &str, data: &str) -> Bytes {
    let text = format!(
        "{{\"type\":\"event\",\"channel\":\"{channel}\",\"event_type\":\"bench\",\"data\":{data}}}"
    );
    server_frame(OpCode::Text, text.as_bytes())
}

/// One accepted socket: a WebSocket subscriber or an HTTP publisher.
pub(super) async fn serve(mut s: TcpStream, hub: Arc<Hub>) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some(end) = find(&buf, b"\r\n\r\n") else {
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let header = |name: &str| {
            head.split("\r\n").find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        if head.starts_with("GET ") {
            let Some(key) = header("sec-websocket-key") else {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            };
            let accept = hubbub_ws::handshake::accept_key(key.as_bytes());
            let mut out = hubbub_ws::handshake::response_101(&accept, None, &[]);
            out.extend_from_slice(&server_frame(
                OpCode::Text,
                br#"{"type":"connected","connection_id":"raw","user_id":null,"server_time":0,"heartbeat_interval_ms":0,"max_message_size":65536,"encoding":"json","features":[],"timestamp":0}"#,
            ));
            if s.write_all(&out).await.is_err() {
                return;
            }
            buf.drain(..end + 4);
            // Wait for any frame (the subscribe) without decoding it.
            while buf.len() < 2 {
                match s.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let subscribed = server_frame(
                OpCode::Text,
                br#"{"type":"subscribed","channels":["bench"],"correlation_id":1,"timestamp":0}"#,
            );
            if s.write_all(&subscribed).await.is_err() {
                return;
            }
            if let Ok(std) = s.into_std() {
                hub.socks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(std);
            }
            return;
        }
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body: Vec<u8> = buf.drain(..end + 4 + len).skip(end + 4).collect();
        let (status, answer) = if head.starts_with("POST /api/publish") {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => {
                    let frame = event_frame(
                        v["channel"].as_str().unwrap_or("bench"),
                        &v["data"].to_string(),
                    );
                    let h = hub.clone();
                    let n = tokio::task::block_in_place(|| h.publish(frame));
                    ("200 OK", format!("{{\"subscribers\":{n}}}"))
                }
                Err(_) => ("400 Bad Request", "{}".to_owned()),
            }
        } else {
            ("404 Not Found", "{}".to_owned())
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}
