//! The one path every event takes: stamped here (message id, timestamp),
//! numbered and carried by the engine's broker, delivered by the hub.
//! Client publishes, the HTTP API, in-process publishers and user sends
//! all come through these methods; nothing else hands events to the hub.

use std::sync::Arc;
use std::time::Instant;

use hubbub_protocol::{EventMessage, JsonData, Publisher};

use crate::engine::{EngineError, PublishOutcome, SendOutcome};
use crate::history::HistoryRead;
use crate::hub::Publication;
use crate::metrics::Metrics;
use crate::state::Shared;
use crate::util::now_ms;

/// Longest `event_type` a client or the application may publish, in bytes.
pub(crate) const MAX_EVENT_TYPE_LEN: usize = 128;

impl Shared {
    fn stamp(
        &self,
        channel: String,
        event_type: &str,
        data: JsonData,
        publisher: Option<Publisher>,
    ) -> Publication {
        Publication::draft(
            EventMessage {
                channel,
                event_type: event_type.to_owned(),
                data,
                message_id: self.hub.next_message_id(),
                offset: None,
                epoch: None,
                publisher,
            },
            now_ms(),
        )
    }

    /// Publishes one event to `channel`: numbered where its namespace
    /// keeps history, queued for every subscriber. Names and data are the
    /// caller's to check (the session and the HTTP API do, each with its
    /// own error shape).
    pub async fn publish(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
        publisher: Option<Publisher>,
    ) -> Result<PublishOutcome, EngineError> {
        let history = self.config.history_options(channel, event_type);
        self.publish_kept(channel, event_type, data, publisher, history)
            .await
    }

    /// As [`Shared::publish`], kept as `history` says (`None`: not kept,
    /// no offset) instead of as the namespace says.
    pub(crate) async fn publish_kept(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
        publisher: Option<Publisher>,
        history: Option<crate::history::HistoryOptions>,
    ) -> Result<PublishOutcome, EngineError> {
        let started = Instant::now();
        let publication = self.stamp(channel.to_owned(), event_type, data, publisher);
        let out = self.engine.broker.publish(publication, history).await;
        match &out {
            Ok(_) => {
                Metrics::inc(&self.metrics.publications);
                self.metrics.publish_latency.observe(started.elapsed());
            }
            Err(e) => {
                Metrics::inc(&self.metrics.engine_errors);
                tracing::warn!(error = %e, channel, "publish failed");
            }
        }
        out
    }

    /// One event to several channels, each named once (the first time),
    /// in order; stops at the first engine failure. Names and data are the
    /// caller's to check, all before calling.
    pub(crate) async fn broadcast<S: AsRef<str>>(
        &self,
        channels: &[S],
        event_type: &str,
        data: &JsonData,
    ) -> Result<Vec<(String, PublishOutcome)>, EngineError> {
        let mut seen = std::collections::HashSet::with_capacity(channels.len());
        let mut out = Vec::with_capacity(channels.len());
        for ch in channels.iter().map(AsRef::as_ref) {
            if !seen.insert(ch) {
                continue;
            }
            let o = self.publish(ch, event_type, data.clone(), None).await?;
            out.push((ch.to_owned(), o));
        }
        Ok(out)
    }

    /// Sends one event on `user:<user_id>` to every live connection of the
    /// user, whether or not it subscribed; kept for the user's next
    /// connection when there is none.
    pub async fn send_to_user(
        &self,
        user_id: &str,
        event_type: &str,
        data: JsonData,
    ) -> Result<SendOutcome, EngineError> {
        let publication = Arc::new(self.stamp(format!("user:{user_id}"), event_type, data, None));
        let out = self.engine.broker.send_to_user(user_id, publication).await;
        match &out {
            Ok(_) => Metrics::inc(&self.metrics.publications),
            Err(e) => {
                Metrics::inc(&self.metrics.engine_errors);
                tracing::warn!(error = %e, "send to user failed");
            }
        }
        out
    }

    /// For a subscriber just registered syncing (a connection's or an
    /// in-process one): makes sure this node gets the channel's events,
    /// then reads where its history stands (and, with `since`, everything
    /// after it). Events published meanwhile are parked, so the read and
    /// the live stream meet without a gap.
    pub(crate) async fn open_channel(
        &self,
        channel: &str,
        since: Option<u64>,
    ) -> Result<HistoryRead, EngineError> {
        let engine = &self.engine;
        engine.broker.subscribe(channel).await?;
        if let Some(opts) = self.config.history_options(channel, "") {
            engine.history.open(channel, opts).await?;
        }
        // Without `since` only the position is needed.
        let read = match since {
            Some(offset) => {
                engine
                    .history
                    .read(channel, Some(offset), usize::MAX)
                    .await?
            }
            None => engine.history.read(channel, Some(u64::MAX), 0).await?,
        };
        Ok(read)
    }

    /// Removes connection `seq` from `channel` (and from its presence,
    /// where it keeps presence), ending the node's interest in it when that
    /// was its last local subscriber. A member leaving a room's channel
    /// leaves the room: its place and presence entry go together.
    pub(crate) fn unsubscribe(self: &Arc<Self>, channel: &str, seq: u64) {
        if self.hub.unsubscribe(channel, seq) {
            self.engine.broker.unsubscribe(channel);
        }
        let class = crate::channel::classify(&self.config, channel);
        if let crate::channel::Kind::Room(room) = class.kind {
            self.leave_room_soon(room, seq);
        } else if class.presence() {
            self.leave_presence(channel, self.conns.connection_id(seq));
        }
    }

    /// Takes a connection out of `channel`'s presence without waiting: at
    /// once where the store answers at once (the memory engine), else in a
    /// task of its own.
    pub(crate) fn leave_presence(&self, channel: &str, connection_id: String) {
        let presence = self.engine.presence.clone();
        let metrics = self.metrics.clone();
        let channel = channel.to_owned();
        crate::util::soon(async move {
            if let Err(e) = presence.remove(&channel, &connection_id).await {
                Metrics::inc(&metrics.engine_errors);
                tracing::warn!(error = %e, channel, "presence entry not removed");
            }
        });
    }
}
