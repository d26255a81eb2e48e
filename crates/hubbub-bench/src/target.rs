//! The hub under test: its WebSocket URL, and a minimal HTTP/1.1 GET for
//! its API on the same host and port.
//!
//! The bench talks raw TCP on purpose (no HTTP client library): it must not
//! add memory or threads of its own to what it measures, and it needs
//! nothing but a couple of JSON GETs.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed `ws://host:port/path?query` URL.
#[derive(Debug, Clone)]
pub(crate) struct WsTarget {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header value (`host:port` as written in the URL).
    pub host_header: String,
    /// The request target: path and query.
    pub request_target: String,
}

impl WsTarget {
    /// Parses and resolves `url`. Only `ws://` for now: TLS would measure
    /// the TLS library's memory, not the hub's.
    pub(crate) fn parse(url: &str) -> anyhow::Result<WsTarget> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| anyhow!("{url}: only ws:// URLs are supported"))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        if authority.is_empty() || authority.contains('@') {
            bail!("{url}: expected ws://host:port/path");
        }
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_owned()
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;
        Ok(WsTarget {
            addr,
            host_header: authority.to_owned(),
            request_target: target,
        })
    }
}

/// A JSON GET against the hub's API. `Ok(None)` for 404 (an endpoint the
/// hub does not serve yet); an error for anything else that is not 2xx.
pub(crate) async fn get_json(
    target: &WsTarget,
    path: &str,
    api_key: Option<&str>,
) -> anyhow::Result<Option<serde_json::Value>> {
    let fut = async {
        let mut s = TcpStream::connect(target.addr).await?;
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            target.host_header
        );
        if let Some(k) = api_key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| anyhow!("GET {path}: timed out"))??;
    let (status, body) = parse_response(&raw).with_context(|| format!("GET {path}"))?;
    match status {
        200..=299 => Ok(Some(
            serde_json::from_slice(&body).with_context(|| format!("GET {path}: body"))?,
        )),
        404 => Ok(None),
        s => bail!(
            "GET {path}: HTTP {s}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
    }
}

/// Splits a complete `Connection: close` response into status and body,
/// undoing chunked transfer coding.
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| anyhow!("incomplete response head"))?;
    let head = std::str::from_utf8(&raw[..end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = &raw[end + 4..];
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = find(rest, b"\r\n").ok_or_else(|| anyhow!("bad chunk"))?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        if rest.len() < size + 2 {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = WsTarget::parse("ws://127.0.0.1:8000/ws").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:8000");
        assert_eq!(t.request_target, "/ws");
        let t = WsTarget::parse("ws://127.0.0.1:9/ws?user_id=u1").unwrap();
        assert_eq!(t.request_target, "/ws?user_id=u1");
        let t = WsTarget::parse("ws://[::1]:8000?x=1").unwrap();
        assert_eq!(t.addr, "[::1]:8000".parse().unwrap());
        assert_eq!(t.request_target, "/?x=1");
        assert_eq!(WsTarget::parse("ws://127.0.0.1").unwrap().addr.port(), 80);
        assert!(WsTarget::parse("wss://127.0.0.1:1/ws").is_err());
        assert!(WsTarget::parse("ws:///ws").is_err());
    }

    #[test]
    fn responses() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"{}"[..]));
        let (s, b) = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"{\"a\":1}"[..]));
        assert_eq!(
            parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").unwrap().0,
            404
        );
    }
}
