//! One connection over WebSocket: the shared [`handle::ConnHandle`] and
//! the task that owns the socket (`driver`). What the connection's
//! messages mean (commands, subscriptions, claims, the rate budget) is
//! the transport-neutral `session`, which the task owns.

pub(crate) mod driver;
pub mod handle;
