//! The first request head, read by hand: finding its end under the 16 KiB
//! limit and parsing a WebSocket upgrade out of it. Pure functions over
//! bytes, so the fuzz target (`fuzz_request_head`) and unit tests reach
//! the whole path without a socket.

use hubbub_protocol::Encoding;

use crate::conn::driver::Role;

/// Largest request head accepted, the first one here and later ones by hyper.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in a request head.
pub(crate) const MAX_HEADERS: usize = 48;

/// A refusal at the handshake: HTTP status, error code, message, extra headers.
pub(super) struct Refusal {
    pub(super) status: u16,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) headers: Vec<(&'static str, String)>,
}

impl Refusal {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub(super) fn unauthorized(message: impl Into<String>) -> Self {
        let mut r = Refusal::new(401, "unauthorized", message);
        r.headers
            .push(("WWW-Authenticate", "Bearer realm=\"hubbub\"".into()));
        r
    }

    pub(super) fn retry_after(mut self, seconds: u64) -> Self {
        self.headers
            .push(("Retry-After", seconds.max(1).to_string()));
        self
    }
}

/// What an upgrade request asked for.
pub(super) struct Upgrade {
    pub(super) role: Role,
    pub(super) key: String,
    pub(super) encoding: Encoding,
    pub(super) echo_protocol: bool,
    /// `?token=` or `Authorization: Bearer`.
    pub(super) token: Option<String>,
    /// `?user_id=` (development only).
    pub(super) user_id: Option<String>,
    pub(super) origin: Option<String>,
    pub(super) forwarded_for: Option<String>,
}

/// Whether `buf` starts with a complete request head: its length, `None`
/// while more may come, a refusal when it is malformed or the 16 KiB
/// limit is reached without one.
pub(super) fn head_status(buf: &[u8]) -> Result<Option<usize>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => Ok(Some(n)),
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(_) => Err(Refusal::new(431, "bad_request", "request head too large")),
        Err(e) => Err(Refusal::new(
            400,
            "bad_request",
            format!("malformed request: {e}"),
        )),
    }
}

/// The hand-written request path on untrusted bytes, for the fuzzer
/// (`fuzz/fuzz_targets/request_head.rs`): the head is found in `data`
/// read in `chunk`-byte pieces as the transport would, then parsed as an
/// upgrade with and without the testing echo endpoint. Checks that it
/// never panics, that a complete head stays complete as bytes are added,
/// and that an accepted upgrade has a valid key. Not an API.
#[doc(hidden)]
pub fn fuzz_request_head(data: &[u8], chunk: usize) {
    let mut found = None;
    let mut end = 0;
    while end < data.len() {
        end = end.saturating_add(chunk.max(1)).min(data.len());
        match head_status(&data[..end]) {
            Ok(Some(n)) => {
                assert!(n <= end, "head of {n} bytes in {end}");
                found = Some(n);
                break;
            }
            Ok(None) => {}
            Err(r) => {
                assert!(r.status == 400 || r.status == 431, "{}", r.status);
                return;
            }
        }
    }
    let Some(n) = found else { return };
    assert_eq!(
        head_status(data).ok().flatten(),
        Some(n),
        "more bytes changed the head"
    );
    for echo in [false, true] {
        if let Ok(Some(up)) = parse_upgrade(&data[..n], echo) {
            assert!(hubbub_ws::handshake::check_key(&up.key).is_ok());
            let accept = hubbub_ws::handshake::accept_key(up.key.as_bytes());
            assert_eq!(accept.len(), 28);
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
/// `echo`: whether the testing echo endpoint (`server.testing_echo`) is on.
pub(super) fn parse_upgrade(head: &[u8], echo: bool) -> Result<Option<Upgrade>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(head).is_err() {
        return Err(Refusal::new(400, "bad_request", "malformed request"));
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let role = match path {
        "/ws" => Role::Hub,
        "/" | "/echo" if echo => Role::Echo,
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
        Some(k) => match hubbub_ws::handshake::check_key(k) {
            Ok(()) => k.to_owned(),
            Err(e) => return Err(Refusal::new(400, "bad_request", e.to_string())),
        },
        None => {
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
    let mut token = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match &*k {
            "user_id" => &mut user_id,
            "token" => &mut token,
            _ => continue,
        };
        if slot.is_some() {
            return Err(Refusal::new(
                400,
                "bad_request",
                format!("{k} is given more than once"),
            ));
        }
        *slot = Some(v.into_owned());
    }
    let bearer = header(&req, "authorization").and_then(bearer_token);
    match (&token, bearer) {
        (Some(_), Some(_)) => {
            return Err(Refusal::new(
                400,
                "bad_request",
                "give the token once: ?token= or Authorization: Bearer",
            ))
        }
        (None, Some(b)) => token = Some(b.to_owned()),
        _ => {}
    }
    Ok(Some(Upgrade {
        role,
        key,
        encoding,
        echo_protocol,
        token,
        user_id,
        origin: header(&req, "origin").map(str::to_owned),
        forwarded_for: header(&req, "x-forwarded-for").map(str::to_owned),
    }))
}

/// The token of an `Authorization: Bearer <token>` value; other schemes
/// are not ours and are ignored.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's entry point on hand-picked inputs, read in pieces
    /// of every size from 1 byte up, so its checks also run without a fuzzer.
    #[test]
    fn the_request_path_survives_its_fuzz_checks() {
        let good = "GET /ws?token=a&user_id=b HTTP/1.1\r\nUpgrade: websocket\r\n\
                    Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                    Sec-WebSocket-Protocol: x, hubbub.msgpack.v1\r\n\r\nleftover";
        let pad = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        let inputs: [&[u8]; 6] = [
            good.as_bytes(),
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Key: \xff\r\n\r\n",
            b"\r\n\r\nGET",
            b"GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n",
            pad.as_bytes(),
            b"",
        ];
        for input in inputs {
            for chunk in [1, 2, 7, 100, 4096, usize::MAX] {
                fuzz_request_head(input, chunk);
            }
        }
        let head = &good.as_bytes()[..good.len() - "leftover".len()];
        let Ok(Some(up)) = parse_upgrade(head, false) else {
            panic!("the upgrade is refused");
        };
        assert_eq!(up.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(up.encoding, Encoding::Msgpack);
        assert_eq!(
            head_status(pad.as_bytes()).err().map(|r| r.status),
            Some(431)
        );
    }
}
