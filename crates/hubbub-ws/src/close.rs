//! Close frames: building them and checking received ones.

use bytes::Bytes;

use crate::error::WsError;
use crate::frame::{server_frame, OpCode};

/// Longest close reason that fits a control frame (125 bytes minus the
/// 2-byte code). Exists so callers can size human-readable reasons.
pub const MAX_CLOSE_REASON: usize = 123;

/// A received close frame's status code and reason. Exists so the caller can
/// log why the peer left and echo the code back in its own close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code; always one that [`is_valid_close_code`] accepts.
    pub code: u16,
    /// The reason text (valid UTF-8, at most [`MAX_CLOSE_REASON`] bytes).
    pub reason: String,
}

/// Whether a peer may put `code` in a close frame: 1000-1003, 1007-1011 and
/// the registered/private range 3000-4999. Exists because 1004-1006, 1015
/// and everything else are reserved or must never go on the wire, and a
/// received frame carrying one is a protocol error.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// A close frame payload: the code in network byte order followed by
/// `reason`, cut at a char boundary to at most [`MAX_CLOSE_REASON`] bytes.
/// Exists so a long or user-supplied reason can never make an oversized
/// (illegal) control frame or split a UTF-8 sequence.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut v = Vec::with_capacity(2 + end);
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(&reason.as_bytes()[..end]);
    v
}

/// A complete unmasked close frame. Exists because the server sends one on
/// every orderly shutdown and every failure, always with the same rules
/// (see [`close_payload`]).
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    server_frame(OpCode::Close, &close_payload(code, reason))
}

/// Checks a received (already unmasked) close payload.
pub(crate) fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("close payload of 1 byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(WsError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes() {
        for code in 0..=u16::MAX {
            let expected = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            assert_eq!(is_valid_close_code(code), expected, "{code}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(bad), "{bad}");
        }
    }

    #[test]
    fn reason_truncated_at_char_boundary() {
        let p = close_payload(1000, "bye");
        assert_eq!(p, b"\x03\xe8bye");
        let long = "a".repeat(200);
        assert_eq!(close_payload(4009, &long).len(), 125);
        // 122 ASCII bytes then a 2-byte char: it does not fit, so it is dropped.
        let s = format!("{}é", "a".repeat(122));
        let p = close_payload(1000, &s);
        assert_eq!(p.len(), 124);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        let s = "€".repeat(60);
        let p = close_payload(1000, &s);
        assert_eq!(p.len(), 2 + 123);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
        let f = close_frame(1001, &s);
        assert_eq!(f[1], 125);
        assert_eq!(f[0], 0x88);
    }

    #[test]
    fn parse_close_rules() {
        assert_eq!(parse_close(b""), Ok(None));
        assert!(matches!(parse_close(b"\x03"), Err(WsError::Protocol(_))));
        assert!(matches!(
            parse_close(b"\x03\xec"),
            Err(WsError::Protocol(_))
        )); // 1004
        assert!(matches!(
            parse_close(b"\x03\xed"),
            Err(WsError::Protocol(_))
        )); // 1005
        assert_eq!(parse_close(b"\x03\xe8\xff"), Err(WsError::InvalidUtf8));
        assert_eq!(
            parse_close(b"\x0f\xa0ok"),
            Ok(Some(CloseFrame {
                code: 4000,
                reason: "ok".into()
            }))
        );
    }
}
