//! Presence in a JetStream key-value bucket (`<prefix>_presence`), one key
//! per channel and connection: `<channel token>.<hex of connection id>`.
//!
//! The bucket keeps each value for `presence_ttl_s`; the node re-puts its
//! own entries every third of that, so a dead node's entries vanish within
//! the TTL. A re-put is conditional on the key's revision the node last
//! wrote (or, when the entry expired, on the key having no message at
//! all), so a re-put racing a `remove` can never bring the entry back.
//!
//! A room member's entry (made by `RoomStore::admit`, see module `rooms`)
//! carries its [`Place`]: every re-put keeps its admission sequence, and
//! once the entry is gone it comes back only through the room's admission
//! rule, so a refresh never takes a place someone else was given.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use hubbub_server::engine::{BoxFuture, EngineError, PresenceEntry, PresenceStats, PresenceStore};
use parking_lot::Mutex;

use crate::link::failed;
use crate::listing::{is_deletion, last_per_subject};
use crate::names::{channel_token, hex, kv_stream, kv_subject};
use crate::wire::{
    PresenceValue, ADMITTED_HEADER, CHANNEL_HEADER, EXPECTED_LAST_SUBJECT_SEQ, KV_OPERATION,
    USER_HEADER,
};
use crate::Inner;

/// Re-puts in flight at once.
const REFRESH_CONCURRENCY: usize = 32;

/// Where a room member's entry stands in its room, so that refreshing it
/// keeps its place and restoring it obeys the room's capacity.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// The bare room name.
    pub room: String,
    /// The room's `created_at`: the incarnation the place was taken in.
    pub created_at: u64,
    /// The stream sequence of the entry's first admission: its order.
    pub admitted_seq: u64,
}

struct Mine {
    channel: String,
    entry: PresenceEntry,
    /// The key's revision (stream sequence) this node last wrote.
    revision: u64,
    /// Set for a room member.
    place: Option<Place>,
}

/// This node's own entries, by key, to refresh them.
#[derive(Default)]
pub(crate) struct Own {
    map: Mutex<HashMap<String, Mine>>,
}

impl Own {
    /// Keeps `entry` refreshed, as written at `revision`.
    pub(crate) fn keep(
        &self,
        key: String,
        channel: &str,
        entry: PresenceEntry,
        revision: u64,
        place: Option<Place>,
    ) {
        let mine = Mine {
            channel: channel.to_owned(),
            entry,
            revision,
            place,
        };
        self.map.lock().insert(key, mine);
    }

    /// Stops refreshing `key`.
    pub(crate) fn forget(&self, key: &str) {
        self.map.lock().remove(key);
    }

    /// Stops refreshing `key` unless it was written again since `revision`.
    pub(crate) fn forget_if(&self, key: &str, revision: u64) {
        let mut map = self.map.lock();
        if map.get(key).is_some_and(|m| m.revision == revision) {
            map.remove(key);
        }
    }

    /// A room member's entry re-admitted at `new` (its new order), unless
    /// it was released or written since `old`: then `false`.
    pub(crate) fn renew(&self, key: &str, old: u64, new: u64) -> bool {
        match self.map.lock().get_mut(key) {
            Some(m) if m.revision == old => {
                m.revision = new;
                if let Some(p) = &mut m.place {
                    p.admitted_seq = new;
                }
                true
            }
            _ => false,
        }
    }

    fn place_of(&self, key: &str) -> Option<Place> {
        self.map.lock().get(key).and_then(|m| m.place.clone())
    }
}

/// The key of `connection_id`'s entry on `channel`.
pub(crate) fn presence_key(channel: &str, connection_id: &str) -> String {
    format!("{}.{}", channel_token(channel), hex(connection_id))
}

impl Inner {
    /// Puts an entry; with `expect`, only if the key's last revision is
    /// that one (0: no message at all). `admitted`: a room member's order.
    /// `Ok(None)`: refused.
    pub(crate) async fn put_presence(
        &self,
        key: &str,
        channel: &str,
        entry: &PresenceEntry,
        expect: Option<u64>,
        admitted: Option<u64>,
    ) -> Result<Option<u64>, EngineError> {
        let mut headers = HeaderMap::new();
        headers.insert(CHANNEL_HEADER, hex(channel));
        if let Some(user) = &entry.user_id {
            headers.insert(USER_HEADER, hex(user));
        }
        if let Some(rev) = expect {
            headers.insert(EXPECTED_LAST_SUBJECT_SEQ, rev.to_string());
        }
        if let Some(seq) = admitted {
            headers.insert(ADMITTED_HEADER, seq.to_string());
        }
        let value = PresenceValue {
            channel: channel.to_owned(),
            entry: entry.clone(),
            admitted_seq: admitted,
        };
        let payload = Bytes::from(serde_json::to_vec(&value).map_err(|e| failed("presence", e))?);
        let subject = kv_subject(&self.link.names.presence_bucket(), key);
        match self.link.append(subject, headers, payload).await? {
            Ok(rev) => Ok(Some(rev)),
            Err(PublishErrorKind::WrongLastSequence) => Ok(None),
            Err(kind) => Err(failed("presence", kind)),
        }
    }

    /// Deletes the entry at `key` (a deletion marker, kept for the TTL, so
    /// a conditional re-put of the old entry is refused).
    pub(crate) async fn delete_presence(&self, key: &str) -> Result<(), EngineError> {
        let mut headers = HeaderMap::new();
        headers.insert(KV_OPERATION, "DEL");
        let subject = kv_subject(&self.link.names.presence_bucket(), key);
        match self.link.append(subject, headers, Bytes::new()).await? {
            Ok(_) => Ok(()),
            Err(kind) => Err(failed("presence", kind)),
        }
    }

    /// The newest message of every key of `channel`.
    async fn presence_messages(
        &self,
        channel: &str,
        headers_only: bool,
    ) -> Result<Vec<async_nats::Message>, EngineError> {
        let bucket = self.link.names.presence_bucket();
        let filter = kv_subject(&bucket, &format!("{}.*", channel_token(channel)));
        let mut list =
            last_per_subject(&self.link, &kv_stream(&bucket), filter, headers_only).await?;
        let name = hex(channel);
        list.retain(|m| {
            !is_deletion(m)
                && m.headers
                    .as_ref()
                    .and_then(|h| h.get(CHANNEL_HEADER))
                    .is_some_and(|v| v.as_str() == name)
        });
        Ok(list)
    }

    /// Re-puts every entry of this node (see the module's notes).
    pub(crate) async fn refresh_presence(&self) {
        type Snapshot = (String, String, PresenceEntry, u64, Option<Place>);
        let snapshot: Vec<Snapshot> = self
            .presence
            .map
            .lock()
            .iter()
            .map(|(k, m)| {
                let (channel, entry) = (m.channel.clone(), m.entry.clone());
                (k.clone(), channel, entry, m.revision, m.place.clone())
            })
            .collect();
        futures_util::stream::iter(snapshot)
            .for_each_concurrent(
                REFRESH_CONCURRENCY,
                |(key, channel, entry, rev, place)| async move {
                    let admitted = place.as_ref().map(|p| p.admitted_seq);
                    let mut written = self
                        .put_presence(&key, &channel, &entry, Some(rev), admitted)
                        .await;
                    if let Ok(None) = written {
                        // Changed since: removed (then it stays so), or expired
                        // while the link was down (then it comes back; a room
                        // member only if the room still has a place for it).
                        if !self.still_mine(&key, rev) {
                            return;
                        }
                        if let Some(place) = place {
                            self.restore_place(&key, &channel, &entry, rev, &place)
                                .await;
                            return;
                        }
                        written = self
                            .put_presence(&key, &channel, &entry, Some(0), None)
                            .await;
                    }
                    match written {
                        Ok(Some(new)) => {
                            if let Some(m) = self.presence.map.lock().get_mut(&key) {
                                if m.revision == rev {
                                    m.revision = new;
                                }
                            }
                        }
                        Ok(None) => {}
                        Err(e) => tracing::debug!(error = %e, "presence entry not refreshed"),
                    }
                },
            )
            .await;
    }

    fn still_mine(&self, key: &str, rev: u64) -> bool {
        self.presence
            .map
            .lock()
            .get(key)
            .is_some_and(|m| m.revision == rev)
    }
}

/// Refreshes this node's entries every third of the TTL (and at once when
/// told, after the link came back), until the engine is dropped.
pub(crate) async fn refresh_loop(weak: Weak<Inner>, now: Arc<tokio::sync::Notify>) {
    let Some(period) = weak.upgrade().map(|i| i.settings.presence_ttl / 3) else {
        return;
    };
    let mut tick = tokio::time::interval(period.max(std::time::Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = now.notified() => {}
        }
        let Some(inner) = weak.upgrade() else { return };
        inner.refresh_presence().await;
    }
}

/// The engine's [`PresenceStore`].
pub(crate) struct NatsPresence(pub(crate) Arc<Inner>);

impl PresenceStore for NatsPresence {
    fn add<'a>(
        &'a self,
        channel: &'a str,
        entry: PresenceEntry,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let inner = &self.0;
            let key = presence_key(channel, &entry.connection_id);
            // A room member keeps its place (and its order) when its entry
            // is put again through here.
            let place = inner.presence.place_of(&key);
            let admitted = place.as_ref().map(|p| p.admitted_seq);
            let rev = inner
                .put_presence(&key, channel, &entry, None, admitted)
                .await?
                .ok_or_else(|| EngineError("presence: refused".into()))?;
            inner.presence.keep(key, channel, entry, rev, place);
            Ok(())
        })
    }

    fn remove<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let inner = &self.0;
            let key = presence_key(channel, connection_id);
            // Forgotten first: a refresh that has not re-put it yet won't.
            inner.presence.forget(&key);
            inner.delete_presence(&key).await
        })
    }

    fn list<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>, EngineError>> {
        Box::pin(async move {
            let mut entries = Vec::new();
            for m in self.0.presence_messages(channel, false).await? {
                match serde_json::from_slice::<PresenceValue>(&m.payload) {
                    Ok(v) if v.channel == channel => entries.push(v.entry),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(channel, error = %e, "undecodable presence entry skipped")
                    }
                }
            }
            entries.sort_by_key(|e| e.joined_at);
            Ok(entries)
        })
    }

    fn stats<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<PresenceStats, EngineError>> {
        Box::pin(async move {
            // Headers only: the user is in a header, the info stays put.
            let list = self.0.presence_messages(channel, true).await?;
            let users: HashSet<&str> = list
                .iter()
                .filter_map(|m| m.headers.as_ref()?.get(USER_HEADER))
                .map(|v| v.as_str())
                .collect();
            Ok(PresenceStats {
                num_clients: list.len() as u64,
                num_users: users.len() as u64,
            })
        })
    }
}
