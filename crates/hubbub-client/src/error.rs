//! What a client call can fail with.

use hubbub_protocol::ErrorCode;

/// Why a command or a connection attempt failed. Callers match on it to
/// tell "the hub said no" ([`Error::Server`]) from "we could not ask"
/// (everything else).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The hub answered the command with `error` (PROTOCOL.md section 9).
    #[error("{code}: {message}")]
    Server {
        /// The spec's error code.
        code: ErrorCode,
        /// The hub's detail text.
        message: String,
    },
    /// No reply within the command timeout (time waiting offline included).
    #[error("no reply within {0:?}")]
    Timeout(std::time::Duration),
    /// The offline queue holds its capacity; the command was not queued.
    /// Nothing is dropped silently: the caller decides what to do.
    #[error("offline send queue is full ({0} commands)")]
    QueueFull(usize),
    /// The connection was lost after the command went out, so whether the
    /// hub acted on it is unknown.
    #[error("connection lost before the reply")]
    Disconnected,
    /// The client is closed (by [`crate::Client::close`], a terminal close
    /// code, or too many failed attempts).
    #[error("client closed: {0}")]
    Closed(String),
    /// The hub replied with a message this command does not expect.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// A value could not be turned into the command's JSON data.
    #[error("bad argument: {0}")]
    Argument(String),
}

impl Error {
    /// The spec error code, when the hub refused the command.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}
