//! A Rust client for a hubbub hub (PROTOCOL.md in `docs/protocol.md`).
//!
//! One connection task owns the WebSocket; [`Client`] is a cheap, cloneable
//! handle that sends it commands over a bounded channel and gets each reply
//! on a oneshot, matched by `correlation_id`, with a timeout. The task:
//!
//! * reconnects with exponential backoff and full jitter, obeying the
//!   close-code table ([`policy`]): never after 1000 or 4003, at once after
//!   4009, with a fresh token after 4001, after a pause after 4029;
//! * resubscribes every channel with `since` = the last offset delivered,
//!   rejoins rooms, and reports per channel [`SubEvent::Recovered`] or a
//!   [`SubEvent::Gap`]; it never delivers an offset twice;
//! * holds commands made while disconnected in a bounded queue and sends
//!   them in order after reconnecting ([`Error::QueueFull`] past it);
//! * pings on an interval and drops a connection that went silent;
//! * refreshes a callback token before it expires (`auth`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hubbub_client::Error> {
//! use hubbub_client::{Client, SubEvent};
//! let client = Client::builder("ws://127.0.0.1:8000/ws").token("JWT").connect();
//! let mut orders = client.subscribe("orders").await?;
//! client.publish("orders", "order_created", &serde_json::json!({"id": 1})).await?;
//! while let Some(SubEvent::Event(e)) = orders.recv().await {
//!     println!("{} {} {:?}", e.event_type, e.data.get(), e.offset);
//! }
//! # Ok(()) }
//! ```

mod chans;
mod client;
mod commands;
mod config;
mod conn;
mod error;
mod events;
pub mod policy;
mod restore;
mod session;
mod subscription;

pub use client::{Client, HistoryPage, SubscribeOptions};
pub use config::{ClientBuilder, Config, Encoding, TokenFuture, TokenSource};
pub use error::Error;
pub use events::{ClientEvent, Gap, GapReason, JobEvent, SubEvent};
pub use hubbub_protocol;
pub use hubbub_protocol::{EventMessage, StreamPosition};
pub use policy::Backoff;
pub use subscription::{Job, Room, Subscription};
