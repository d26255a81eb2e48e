//! What the application reads: a channel's items ([`Subscription`]), a
//! room ([`Room`]) and a graph job ([`Job`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use hubbub_protocol::rooms::PresenceEntry;
use tokio::sync::mpsc;

use crate::conn::ToConn;
use crate::events::{JobEvent, SubEvent};
use crate::{Client, Error};

/// The items of one channel, in order: events (each offset once), recovery
/// outcomes and gaps. Dropping it leaves the channel (or the room) once no
/// other subscription of this client reads it.
pub struct Subscription {
    pub(crate) channel: String,
    pub(crate) id: u64,
    pub(crate) rx: mpsc::Receiver<SubEvent>,
    pub(crate) conn: mpsc::Sender<ToConn>,
}

impl Subscription {
    /// The channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next item; `None` once the client is closed or the hub ended
    /// the subscription.
    pub async fn recv(&mut self) -> Option<SubEvent> {
        self.rx.recv().await
    }
}

impl Stream for Subscription {
    type Item = SubEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<SubEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Best effort: if the command channel is full, the connection task
        // notices the closed buffer at the next event and leaves then.
        let _ = self.conn.try_send(ToConn::Dropped {
            channel: std::mem::take(&mut self.channel),
            sink: self.id,
        });
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .finish()
    }
}

/// A joined room: its members at joining, and `room:<room>`'s items
/// (`user_joined`, `user_left`, messages). Dropping it leaves the room.
#[derive(Debug)]
pub struct Room {
    /// The room's bare name.
    pub name: String,
    /// Presence entries when joined, this connection's included.
    pub members: Vec<PresenceEntry>,
    /// The room channel's items.
    pub events: Subscription,
}

impl Room {
    /// Leaves the room now and waits for `room_left`.
    pub async fn leave(self, client: &Client) -> Result<(), Error> {
        let Room { name, events, .. } = self;
        let left = client.leave_room(&name).await;
        drop(events);
        left
    }
}

/// A graph-algorithm job this client started: its id and a typed stream of
/// its events ending with the terminal one.
#[derive(Debug)]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// Its channel, `algorithm_<id>`.
    pub channel: String,
    pub(crate) sub: Subscription,
}

impl Job {
    /// The next event, typed; `None` after the stream ends.
    pub async fn next(&mut self) -> Option<JobEvent> {
        self.sub.recv().await.map(JobEvent::from_sub)
    }

    /// Reads events until the terminal one and returns it (with everything
    /// before it, in order).
    pub async fn finish(&mut self) -> Option<(JobEvent, Vec<JobEvent>)> {
        let mut seen = Vec::new();
        while let Some(e) = self.next().await {
            if e.is_terminal() {
                return Some((e, seen));
            }
            seen.push(e);
        }
        None
    }
}

impl Stream for Job {
    type Item = JobEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        Pin::new(&mut self.sub)
            .poll_next(cx)
            .map(|o| o.map(JobEvent::from_sub))
    }
}
