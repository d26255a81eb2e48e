//! Why a connection must be failed.

use std::fmt;

/// Why the decoder rejected the stream. Exists so the connection can fail
/// with the right close code: after any of these the stream position is
/// unreliable and the connection must be closed, not resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsError {
    /// The peer broke RFC 6455 framing rules (close code 1002). The text
    /// names the rule, for logs and the close reason.
    Protocol(&'static str),
    /// A text message or close reason is not valid UTF-8 (close code 1007).
    InvalidUtf8,
    /// A frame or the message being assembled exceeds
    /// `DecoderConfig::max_message_size` (close code 1009).
    TooBig,
}

impl WsError {
    /// The close code RFC 6455 prescribes for this failure. Exists so every
    /// caller maps errors to codes the same way.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::InvalidUtf8 => 1007,
            WsError::TooBig => 1009,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(rule) => write!(f, "protocol error: {rule}"),
            WsError::InvalidUtf8 => f.write_str("invalid UTF-8"),
            WsError::TooBig => f.write_str("message too big"),
        }
    }
}

impl std::error::Error for WsError {}

#[cfg(test)]
mod tests {
    use super::WsError;

    #[test]
    fn codes_and_display() {
        assert_eq!(WsError::Protocol("x").close_code(), 1002);
        assert_eq!(WsError::InvalidUtf8.close_code(), 1007);
        assert_eq!(WsError::TooBig.close_code(), 1009);
        assert_eq!(WsError::Protocol("bad").to_string(), "protocol error: bad");
    }
}
