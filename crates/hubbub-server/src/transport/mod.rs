//! From an accepted TCP socket to either a WebSocket connection or HTTP.
//!
//! The first request head on every socket is read here, by hand: a
//! WebSocket upgrade to `/ws` is answered directly and the socket handed to
//! the connection task with nothing of an HTTP stack left attached (that is
//! what keeps an idle connection small); anything else is passed, with the
//! bytes already read, to hyper serving the HTTP API. The same entry point
//! takes plain TCP sockets and TLS streams; admission (origin, rates,
//! tokens) is decided here, before the upgrade is answered.

mod connect_hook;
mod handshake;
mod mounted;
mod request;
mod rewind;

pub(crate) use handshake::serve_socket;
pub(crate) use mounted::upgrade as mounted_upgrade;
pub use request::fuzz_request_head;
pub(crate) use request::{MAX_HEAD, MAX_HEADERS};
