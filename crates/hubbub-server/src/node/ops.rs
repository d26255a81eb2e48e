//! What an application does with a node from Rust: publish, send, read,
//! disconnect. Every event goes the path a client's or the HTTP API's
//! does (stamped by the node, numbered by the engine, delivered by the
//! hub); only the checks of who may publish are left out, since the
//! application is the hub's owner.

use std::sync::atomic::Ordering::Relaxed;

use hubbub_protocol::{validate_channel, JsonData};
use serde::Serialize;

use super::{Error, Event, Node};
use crate::conn::handle::CloseRequest;
use crate::engine::{PresenceEntry, PresenceStats, PublishOutcome, SendOutcome};
use crate::history::HistoryStats;

use crate::events::MAX_EVENT_TYPE_LEN;

/// Checks what every publisher must get right, whoever it is.
pub(crate) fn check_event(channel: &str, event_type: &str, data: &JsonData) -> Result<(), Error> {
    check_names(channel, event_type)?;
    data.check().map_err(|e| Error::bad_request(e.to_string()))
}

/// The names half of [`check_event`], for data checked once and sent to
/// several channels.
pub(crate) fn check_names(channel: &str, event_type: &str) -> Result<(), Error> {
    validate_channel(channel).map_err(|m| Error::bad_request(format!("channel: {m}")))?;
    if event_type.is_empty() || event_type.len() > MAX_EVENT_TYPE_LEN {
        return Err(Error::bad_request(format!(
            "event_type must be 1 to {MAX_EVENT_TYPE_LEN} characters"
        )));
    }
    Ok(())
}

pub(crate) fn to_data<T: Serialize + ?Sized>(data: &T) -> Result<JsonData, Error> {
    let text = serde_json::to_string(data)
        .map_err(|e| Error::bad_request(format!("data does not serialize to JSON: {e}")))?;
    JsonData::from_json(&text).map_err(|e| Error::bad_request(e.to_string()))
}

/// A channel's history as `history` reads it.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    /// The history's name; a new one means earlier offsets are gone.
    pub epoch: String,
    /// The channel's newest offset.
    pub offset: u64,
    /// The events, oldest first.
    pub events: Vec<Event>,
}

/// A look at the node, for an application's own status page.
#[derive(Debug, Clone)]
pub struct NodeStats {
    /// The node's name.
    pub node_id: String,
    /// Live WebSocket connections.
    pub connections: usize,
    /// Channels with subscribers on this node.
    pub channels: usize,
    /// Publications accepted since start.
    pub publications: u64,
    /// Events queued for subscribers since start.
    pub deliveries: u64,
    /// Events waiting for users with no live connection.
    pub queued_for_users: usize,
    /// History held.
    pub history: HistoryStats,
}

impl Node {
    /// Publishes `data` (anything serializable) to `channel`: numbered
    /// where the channel's namespace keeps history, queued for every
    /// subscriber, in-process ones included. Returns the offset and how
    /// many subscribers on this node it was queued for.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let node = hubbub_server::Node::new(hubbub_server::Config::default()).unwrap();
    /// let out = node.publish("orders", "order_created", &serde_json::json!({"id": 7})).await.unwrap();
    /// assert_eq!((out.offset, out.subscribers), (Some(1), 0));
    /// let page = node.history("orders", None, 10).await.unwrap();
    /// assert_eq!(page.events[0].data_as::<serde_json::Value>().unwrap()["id"], 7);
    /// # });
    /// ```
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        channel: &str,
        event_type: &str,
        data: &T,
    ) -> Result<PublishOutcome, Error> {
        self.publish_json(channel, event_type, to_data(data)?).await
    }

    /// As [`Node::publish`], for data that is already JSON text.
    pub async fn publish_json(
        &self,
        channel: &str,
        event_type: &str,
        data: JsonData,
    ) -> Result<PublishOutcome, Error> {
        check_event(channel, event_type, &data)?;
        Ok(self.shared.publish(channel, event_type, data, None).await?)
    }

    /// One event to several channels (each named once), checked as a
    /// whole before any is published. Returns each channel's outcome.
    pub async fn broadcast<T: Serialize + ?Sized>(
        &self,
        channels: &[&str],
        event_type: &str,
        data: &T,
    ) -> Result<Vec<(String, PublishOutcome)>, Error> {
        let data = to_data(data)?;
        for ch in channels {
            check_event(ch, event_type, &data)?;
        }
        Ok(self.shared.broadcast(channels, event_type, &data).await?)
    }

    /// Sends one event on `user:<user_id>` to every live connection of the
    /// user; kept for the user's next connection when there is none.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let node = hubbub_server::Node::new(hubbub_server::Config::default()).unwrap();
    /// let out = node.send_to_user("ann", "note", &"hello").await.unwrap();
    /// assert!(out.queued, "ann is offline: kept for her next connection");
    /// assert_eq!(node.stats().queued_for_users, 1);
    /// # });
    /// ```
    pub async fn send_to_user<T: Serialize + ?Sized>(
        &self,
        user_id: &str,
        event_type: &str,
        data: &T,
    ) -> Result<SendOutcome, Error> {
        if !crate::auth::valid_user_id(user_id) {
            return Err(Error::bad_request(
                "user_id must be 1-128 characters of A-Z a-z 0-9 _ . - : @",
            ));
        }
        let data = to_data(data)?;
        check_event(&format!("user:{user_id}"), event_type, &data)?;
        Ok(self.shared.send_to_user(user_id, event_type, data).await?)
    }

    /// Closes every connection of `user_id` on this node with 4100 and the
    /// given reason; returns how many were not closing already.
    pub fn disconnect_user(&self, user_id: &str, reason: Option<&str>, reconnect: bool) -> usize {
        self.shared
            .conns
            .close_user(user_id, &close_request(reason, reconnect))
    }

    /// Closes one connection by id with 4100; false when no such
    /// connection is live on this node (or it was closing already).
    pub fn disconnect_connection(
        &self,
        connection_id: &str,
        reason: Option<&str>,
        reconnect: bool,
    ) -> bool {
        self.shared
            .conns
            .by_id(connection_id)
            .is_some_and(|h| h.close(close_request(reason, reconnect)))
    }

    /// Who is on `channel` (presence-enabled channels and rooms).
    pub async fn presence(&self, channel: &str) -> Result<Vec<PresenceEntry>, Error> {
        validate_channel(channel).map_err(|m| Error::bad_request(format!("channel: {m}")))?;
        Ok(self.shared.engine.presence.list(channel).await?)
    }

    /// How many are on `channel`, without listing them.
    pub async fn presence_stats(&self, channel: &str) -> Result<PresenceStats, Error> {
        validate_channel(channel).map_err(|m| Error::bad_request(format!("channel: {m}")))?;
        Ok(self.shared.engine.presence.stats(channel).await?)
    }

    /// Events kept for `channel`: with `since`, the oldest `limit` after
    /// that offset; without, the newest `limit`.
    pub async fn history(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: usize,
    ) -> Result<HistoryPage, Error> {
        validate_channel(channel).map_err(|m| Error::bad_request(format!("channel: {m}")))?;
        let limit = limit.min(self.shared.config.namespace(channel).history_size);
        let read = self
            .shared
            .engine
            .history
            .read(channel, since, limit)
            .await?;
        Ok(HistoryPage {
            epoch: read.top.epoch,
            offset: read.top.offset,
            events: read.events.into_iter().map(Event::from).collect(),
        })
    }

    /// Figures of this node.
    pub fn stats(&self) -> NodeStats {
        let s = &self.shared;
        NodeStats {
            node_id: s.node_id.clone(),
            connections: s.conns.count(),
            channels: s.hub.channels().len(),
            publications: s.metrics.publications.load(Relaxed),
            deliveries: s.metrics.deliveries.load(Relaxed),
            queued_for_users: s.engine.broker.queued_for_users(),
            history: s.engine.history.stats(),
        }
    }

    /// How many subscribers `channel` has on this node (connections and
    /// in-process subscribers).
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.shared.hub.subscriber_count(channel).unwrap_or(0)
    }
}

fn close_request(reason: Option<&str>, reconnect: bool) -> CloseRequest {
    // The close frame carries at most 123 bytes, cut on a character boundary.
    let reason = reason.map(|r| {
        let mut end = r.len().min(hubbub_ws::MAX_CLOSE_REASON);
        while !r.is_char_boundary(end) {
            end -= 1;
        }
        r[..end].to_owned()
    });
    CloseRequest::api_disconnect(reason, reconnect)
}
