//! How a command puts the connection on a channel and answers ahead of the
//! channel's events: `subscribe`, `join_room` and `algorithm_start` all
//! register syncing (events published meanwhile are parked), read where
//! the channel stands, queue their reply (and what they recovered) ahead,
//! then release the parked events after that position.

use std::sync::Arc;

use bytes::Bytes;
use hubbub_protocol::{CorrelationId, ServerMessage};

use super::Session;
use crate::history::Position;

impl Session {
    /// Registers the connection on `channel` syncing, and lists the channel
    /// among its subscriptions (room for exactly one when it is the first:
    /// most connections hold one channel).
    pub(super) fn register_syncing(&self, channel: &str, filter: Option<Arc<[String]>>) {
        let name = self
            .shared
            .hub
            .subscribe(channel, &self.handle, filter, true);
        let mut subs = self.handle.subscriptions.lock();
        if !subs.iter().any(|x| **x == *name) {
            if subs.is_empty() {
                subs.reserve_exact(1);
            }
            subs.push(name);
        }
    }

    /// Takes the connection off `channel` and out of its list.
    pub(super) fn unregister(&self, channel: &str) {
        self.shared.unsubscribe(channel, self.handle.seq);
        self.handle.subscriptions.lock().retain(|x| **x != *channel);
    }

    /// Queues `reply`, then `frames`, ahead of every event published later.
    pub(super) fn reply_ahead(
        &self,
        reply: &ServerMessage,
        id: Option<&CorrelationId>,
        frames: impl IntoIterator<Item = Bytes>,
    ) {
        if let Some(frame) =
            crate::hub::encode_frame(reply, id, crate::util::now_ms(), self.handle.wire)
        {
            let mut frames = std::iter::once(frame).chain(frames);
            self.handle.push_ahead(&mut frames);
        }
    }

    /// Lets through what `channel` parked since [`Session::register_syncing`]:
    /// the events after `top`, the position the reply named.
    pub(super) fn release(&self, channel: &str, top: &Position) {
        let after = (!top.epoch.is_empty()).then_some((top.offset, top.epoch.as_str()));
        self.shared.hub.finish_sync(channel, self.handle.seq, after);
    }
}
