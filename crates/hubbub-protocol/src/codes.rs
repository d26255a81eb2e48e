//! Error codes (`error.code`) and WebSocket close codes (PROTOCOL.md section 9).

use serde::{Deserialize, Serialize};

/// Why a command failed. Clients switch on these strings, so they never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not a message of this protocol (not an object, no `type`, wrong field types).
    InvalidMessage,
    /// `type` names no command of the protocol.
    UnknownType,
    /// Well-formed but not acceptable (bad channel name, empty list, bad value).
    BadRequest,
    /// Credentials missing, malformed, expired or wrongly signed.
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    Forbidden,
    /// The thing named does not exist.
    NotFound,
    /// Over the per-connection message rate; the message was dropped.
    RateLimited,
    /// Too many subscriptions, jobs or similar countable things.
    LimitExceeded,
    /// The room holds its capacity already.
    RoomFull,
    /// Creating something whose name is taken.
    AlreadyExists,
    /// A state change that is not allowed (a task move).
    Conflict,
    /// The feature is turned off, or a backend it needs is down.
    Unavailable,
    /// A bug or an unexpected failure inside the hub.
    Internal,
}

impl ErrorCode {
    /// Every code, in PROTOCOL.md's order: the one list documents (such as
    /// the OpenAPI document) enumerate, so none is left out.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownType,
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::RateLimited,
        ErrorCode::LimitExceeded,
        ErrorCode::RoomFull,
        ErrorCode::AlreadyExists,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code named `name` (its wire spelling), for backends that answer
    /// with one.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The wire string, for logs and HTTP bodies built without serde.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket close code the hub sends, with the advice clients act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// Normal close: do not reconnect.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// Server going away (shutdown, restart): reconnect with backoff.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// The peer broke RFC 6455 framing rules.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// Invalid UTF-8 in a text message.
    pub const INVALID_UTF8: CloseCode = CloseCode(1007);
    /// A message larger than `max_message_size`.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// Internal error: reconnect with backoff.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// Token expired or revoked: get a new token, then reconnect.
    pub const UNAUTHORIZED: CloseCode = CloseCode(4001);
    /// Forbidden: do not reconnect.
    pub const FORBIDDEN: CloseCode = CloseCode(4003);
    /// Slow consumer: reconnect at once and recover from history.
    pub const SLOW_CONSUMER: CloseCode = CloseCode(4009);
    /// No inbound frame within the connection timeout: reconnect and recover.
    pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode(4010);
    /// Kept exceeding the message rate: reconnect after a delay.
    pub const RATE_LIMITED: CloseCode = CloseCode(4029);
    /// Disconnected through the server's HTTP API: `reconnect` says what to do.
    pub const API_DISCONNECT: CloseCode = CloseCode(4100);

    /// Whether a well-behaved client reconnects after this code (section 9).
    /// Codes outside the table default to reconnecting with backoff.
    pub fn reconnect(self) -> bool {
        !matches!(self.0, 1000 | 1002 | 1007 | 1009 | 4003)
    }

    /// The short reason text sent in `disconnect` and the close frame.
    pub fn reason(self) -> &'static str {
        match self.0 {
            1000 => "normal",
            1001 => "going_away",
            1002 => "protocol_error",
            1007 => "invalid_utf8",
            1009 => "message_too_big",
            1011 => "internal",
            4001 => "unauthorized",
            4003 => "forbidden",
            4009 => "slow_consumer",
            4010 => "heartbeat_timeout",
            4029 => "rate_limited",
            4100 => "disconnected",
            _ => "closed",
        }
    }
}
