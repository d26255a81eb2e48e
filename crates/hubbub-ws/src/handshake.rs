//! Server side of the opening handshake (RFC 6455 section 4.2).
//!
//! Exists so the server can answer the upgrade request with plain bytes on
//! the raw connection, without an HTTP framework in the WebSocket path.
//! Parsing and checking the request head is left to the caller.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to the client's key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`:
/// base64(SHA-1(key + GUID)). Exists to prove to the client that the server
/// understood the WebSocket request. Pass the header value as received,
/// surrounding whitespace trimmed.
pub fn accept_key(client_key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(client_key);
    sha.update(GUID);
    STANDARD.encode(sha.finalize())
}

/// Why a `Sec-WebSocket-Key` value is refused. Exists so the server can say
/// what is wrong (HTTP 400) instead of a generic "missing".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The header is empty.
    Missing,
    /// Not 24 characters long, the length of base64 for 16 bytes (the
    /// length is given, never the value, which may be huge).
    Length(usize),
    /// 24 characters, but not the padded base64 of exactly 16 bytes.
    NotBase64,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Missing => f.write_str("missing Sec-WebSocket-Key"),
            KeyError::Length(n) => write!(
                f,
                "Sec-WebSocket-Key must be the base64 encoding of 16 bytes (24 characters), \
                 not {n} characters"
            ),
            KeyError::NotBase64 => {
                f.write_str("Sec-WebSocket-Key must be the base64 encoding of 16 bytes")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// Checks a `Sec-WebSocket-Key` value (surrounding whitespace trimmed): RFC
/// 6455 section 4.2.1 requires the base64 of a 16-byte nonce, which is 24
/// characters ending in `==`. Exists so the server refuses anything else
/// before answering, rather than hashing whatever it was sent.
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Missing);
    }
    if key.len() != 24 {
        return Err(KeyError::Length(key.chars().count()));
    }
    let mut nonce = [0u8; 18];
    match STANDARD.decode_slice(key, &mut nonce) {
        Ok(16) => Ok(()),
        _ => Err(KeyError::NotBase64),
    }
}

/// The complete `101 Switching Protocols` response head, ending with the
/// blank line. Exists so the upgrade reply is one write of a ready buffer.
///
/// `protocol` is echoed as `Sec-WebSocket-Protocol` when given (it must be
/// one the client offered). `extra` are further header lines without CRLF,
/// e.g. a `Sec-WebSocket-Extensions` answer. CR and LF inside any value are
/// dropped so a value can never inject header lines.
pub fn response_101(accept: &str, protocol: Option<&str>, extra: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    push_line(&mut out, "Sec-WebSocket-Accept: ", accept);
    if let Some(protocol) = protocol {
        push_line(&mut out, "Sec-WebSocket-Protocol: ", protocol);
    }
    for line in extra {
        push_line(&mut out, "", line);
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend(value.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_16_bytes_of_base64() {
        assert_eq!(check_key("dGhlIHNhbXBsZSBub25jZQ=="), Ok(()));
        assert_eq!(check_key(&STANDARD.encode([0xFFu8; 16])), Ok(()));
        assert_eq!(check_key(""), Err(KeyError::Missing));
        assert_eq!(check_key(&"A".repeat(65)), Err(KeyError::Length(65)));
        assert_eq!(
            check_key("dGhlIHNhbXBsZSBub25jZQ"),
            Err(KeyError::Length(22))
        );
        // 24 characters: 18 bytes without padding, 15 bytes, a bad character.
        for bad in [
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAA====",
            "dGhlIHNhbXBsZSBub25jZQ!=",
            "dGhlIHNhbXBsZSBub25jZR==",
        ] {
            assert_eq!(check_key(bad), Err(KeyError::NotBase64), "{bad}");
        }
        let long = "é".repeat(20);
        assert_eq!(check_key(&long), Err(KeyError::Length(20)));
        assert!(KeyError::Length(65)
            .to_string()
            .contains("not 65 characters"));
    }

    #[test]
    fn rfc_6455_example_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn response_head() {
        let r = response_101("abc=", None, &[]);
        assert_eq!(
            r,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: abc=\r\n\r\n"
        );
        let r = response_101(
            "abc=",
            Some("hubbub.json.v1"),
            &["Sec-WebSocket-Extensions: permessage-deflate"],
        );
        let text = String::from_utf8(r).unwrap();
        assert!(text.ends_with(
            "Sec-WebSocket-Accept: abc=\r\nSec-WebSocket-Protocol: hubbub.json.v1\r\n\
             Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        ));
    }

    #[test]
    fn no_header_injection() {
        let r = response_101("a\r\nX-Evil: 1", Some("p\n"), &["Y: 2\r\n\r\nbody"]);
        let text = String::from_utf8(r).unwrap();
        assert_eq!(text.matches("\r\n").count(), 7);
        assert!(text.contains("Sec-WebSocket-Accept: aX-Evil: 1\r\n"));
        assert!(text.ends_with("Y: 2body\r\n\r\n"));
    }
}
