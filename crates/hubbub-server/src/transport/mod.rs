//! From an accepted TCP socket to either a WebSocket connection or HTTP.
//!
//! The first request head on every socket is read here, by hand: a
//! WebSocket upgrade to `/ws` is answered directly and the socket handed to
//! the connection task with nothing of an HTTP stack left attached (that is
//! what keeps an idle connection small); anything else is passed, with the
//! bytes already read, to hyper serving the HTTP API. The same entry point
//! will take TLS streams and an SSE route later.

mod handshake;
mod rewind;

pub(crate) use handshake::serve_socket;
