//! `--backend-listen`: the smallest HTTP/1.1 backend the hub's RPC proxy
//! can call, served by the bench itself.
//!
//! Every POST is answered at once with `{"data": <the request's data>}`,
//! the echo that `query.echo` is in process, so a run through the proxy
//! differs from one in process only by the hub's proxy path (its HTTP
//! client, the JSON round, the connection pool), not by what a backend
//! does. Raw tokio and hand parsing, like the rest of the bench: no HTTP
//! library to add, and nothing but `Content-Length` bodies to read (what
//! the hub sends). Keep-alive and pipelining are honoured; a request the
//! backend cannot read is answered 400 and counted, which the hub relays
//! as `unavailable`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::target::find;

/// Largest request head read.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body read.
const MAX_BODY: usize = 16 << 20;

/// The backend while it serves; dropping it stops it and every
/// connection it holds.
pub(super) struct Backend {
    /// Where it listens (the port resolved when 0 was asked).
    pub addr: SocketAddr,
    /// Requests answered with data so far.
    pub requests: Arc<AtomicU64>,
    /// Requests refused (400, 405, 411) so far.
    pub refused: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    /// Binds `addr` and serves until dropped.
    pub(super) async fn start(addr: SocketAddr) -> std::io::Result<Backend> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let (r, f) = (requests.clone(), refused.clone());
        let task = tokio::spawn(async move {
            // Owned here, so aborting this task ends every connection too.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    a = listener.accept() => {
                        if let Ok((stream, _)) = a {
                            let _ = stream.set_nodelay(true);
                            conns.spawn(serve(stream, r.clone(), f.clone()));
                        }
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(Backend {
            addr,
            requests,
            refused,
            task,
        })
    }
}

/// One keep-alive connection from the hub: answers every complete request
/// in what was read, in order, in one write.
async fn serve(mut stream: TcpStream, requests: Arc<AtomicU64>, refused: Arc<AtomicU64>) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut used = 0;
        let mut close = false;
        while let Some(r) = next_request(&buf[used..]) {
            used += r.len;
            if r.ok {
                requests.fetch_add(1, Relaxed);
            } else {
                refused.fetch_add(1, Relaxed);
            }
            out.extend_from_slice(&r.response);
            if r.close {
                close = true;
                break;
            }
        }
        buf.drain(..used);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// One request read from the front of a buffer, and its answer.
#[derive(Debug)]
struct Answered {
    /// Bytes of the request (head and body).
    len: usize,
    /// The whole response.
    response: Vec<u8>,
    /// Answered with data (not refused).
    ok: bool,
    /// The connection ends after it.
    close: bool,
}

#[derive(Deserialize)]
struct Call<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

/// The first request in `buf` and its answer, or `None` until it is all
/// there. A request that can never be read (no length, too large, a head
/// that is not HTTP) is answered with a refusal that closes.
fn next_request(buf: &[u8]) -> Option<Answered> {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return (buf.len() > MAX_HEAD).then(|| refuse(buf.len(), 431, "head too large", true));
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let method = request_line.split(' ').next().unwrap_or("");
    let (mut length, mut chunked, mut close) = (None, false, false);
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = v.parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        } else if k.eq_ignore_ascii_case("connection") {
            close = v.to_ascii_lowercase().contains("close");
        }
    }
    if request_line.ends_with("HTTP/1.0") {
        close = true;
    }
    let body_at = end + 4;
    if chunked {
        return Some(refuse(body_at, 411, "send a Content-Length", true));
    }
    let length = length.unwrap_or(0);
    if length > MAX_BODY {
        return Some(refuse(body_at, 413, "body too large", true));
    }
    if buf.len() < body_at + length {
        return None;
    }
    let len = body_at + length;
    if method != "POST" {
        return Some(refuse(len, 405, "POST only", close));
    }
    match serde_json::from_slice::<Call>(&buf[body_at..len]) {
        Ok(call) => {
            let body = format!("{{\"data\":{}}}", call.data.get());
            Some(Answered {
                len,
                response: response(200, "OK", &body, close),
                ok: true,
                close,
            })
        }
        Err(_) => Some(refuse(len, 400, "expected {\"data\": ...}", close)),
    }
}

fn refuse(len: usize, status: u16, why: &str, close: bool) -> Answered {
    let body = serde_json::json!({"error": {"code": "bad_request", "message": why}}).to_string();
    let reason = match status {
        400 => "Bad Request",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        _ => "Request Header Fields Too Large",
    };
    Answered {
        len,
        response: response(status, reason, &body, close),
        ok: false,
        close,
    }
}

fn response(status: u16, reason: &str, body: &str, close: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{body}",
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(body: &str) -> String {
        format!(
            "POST /rpc HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn body_of(r: &Answered) -> String {
        let text = String::from_utf8(r.response.clone()).unwrap();
        text.split_once("\r\n\r\n").unwrap().1.to_owned()
    }

    #[test]
    fn echoes_the_data_of_pipelined_requests() {
        let one = post(
            r#"{"method":"bench.echo","data":{"n": [1, "x"]},"user_id":null,"connection_id":"c1"}"#,
        );
        let two = post(r#"{"method":"bench.echo","data":"hi","user_id":"u","connection_id":"c2"}"#);
        let both = format!("{one}{two}");
        let a = next_request(both.as_bytes()).unwrap();
        assert_eq!(a.len, one.len());
        assert!(a.ok && !a.close);
        assert!(a.response.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(body_of(&a), r#"{"data":{"n": [1, "x"]}}"#);
        let b = next_request(&both.as_bytes()[a.len..]).unwrap();
        assert_eq!(body_of(&b), r#"{"data":"hi"}"#);
        assert_eq!(a.len + b.len, both.len());
    }

    #[test]
    fn waits_for_the_whole_request() {
        let r = post(r#"{"data":1}"#);
        for cut in [0, 10, r.len() - 4, r.len() - 1] {
            assert!(next_request(&r.as_bytes()[..cut]).is_none(), "{cut}");
        }
        assert!(next_request(r.as_bytes()).is_some());
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        let bad = next_request(post("{}").as_bytes()).unwrap();
        assert!(!bad.ok && !bad.close);
        assert!(bad.response.starts_with(b"HTTP/1.1 400 "));
        let get = next_request(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert!(get.response.starts_with(b"HTTP/1.1 405 ") && get.len == 18);
        let chunked =
            next_request(b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\n").unwrap();
        assert!(chunked.close && chunked.response.starts_with(b"HTTP/1.1 411 "));
        let closing = post(r#"{"data":2}"#).replace("host: x", "Connection: close");
        let c = next_request(closing.as_bytes()).unwrap();
        assert!(c.ok && c.close);
        assert!(find(&c.response, b"connection: close").is_some());
    }

    #[tokio::test]
    async fn serves_keep_alive_connections() {
        let b = Backend::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut s = TcpStream::connect(b.addr).await.unwrap();
        let req = post(r#"{"data":{"k":1}}"#);
        let mut buf = Vec::new();
        for _ in 0..3 {
            s.write_all(req.as_bytes()).await.unwrap();
            let mut got = Vec::new();
            while find(&got, br#"{"data":{"k":1}}"#).is_none() {
                let mut chunk = [0u8; 512];
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&chunk[..n]);
            }
            buf.extend_from_slice(&got);
        }
        assert_eq!(b.requests.load(Relaxed), 3);
        assert_eq!(b.refused.load(Relaxed), 0);
    }
}
