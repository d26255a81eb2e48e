//! One WebSocket connection: the shared [`handle::ConnHandle`] and the task
//! that owns the socket ([`driver`]), which also runs the commands
//! ([`commands`]) and the inbound rate limit ([`ratelimit`]).

mod commands;
pub(crate) mod driver;
pub mod handle;
pub mod ratelimit;
