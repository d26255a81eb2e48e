//! Presence in a JetStream key-value bucket (`<prefix>_presence`), one key
//! per channel and connection: `<channel token>.<hex of connection id>`.
//!
//! The bucket keeps each value for `presence_ttl_s`; the node re-puts its
//! own entries every third of that, so a dead node's entries vanish within
//! the TTL. A re-put is conditional on the key's revision the node last
//! wrote (or, when the entry expired, on the key having no message at
//! all), so a re-put racing a `remove` can never bring the entry back.

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
    PresenceValue, CHANNEL_HEADER, EXPECTED_LAST_SUBJECT_SEQ, KV_OPERATION, USER_HEADER,
};
use crate::Inner;

/// Re-puts in flight at once.
const REFRESH_CONCURRENCY: usize = 32;

struct Mine {
    channel: String,
    entry: PresenceEntry,
    /// The key's revision (stream sequence) this node last wrote.
    revision: u64,
}

/// This node's own entries, by key, to refresh them.
#[derive(Default)]
pub(crate) struct Own {
    map: Mutex<HashMap<String, Mine>>,
}

fn key(channel: &str, connection_id: &str) -> String {
    format!("{}.{}", channel_token(channel), hex(connection_id))
}

impl Inner {
    /// Puts an entry; with `expect`, only if the key's last revision is
    /// that one (0: no message at all). `Ok(None)`: refused.
    async fn put_presence(
        &self,
        key: &str,
        channel: &str,
        entry: &PresenceEntry,
        expect: Option<u64>,
    ) -> Result<Option<u64>, EngineError> {
        let mut headers = HeaderMap::new();
        headers.insert(CHANNEL_HEADER, hex(channel));
        if let Some(user) = &entry.user_id {
            headers.insert(USER_HEADER, hex(user));
        }
        if let Some(rev) = expect {
            headers.insert(EXPECTED_LAST_SUBJECT_SEQ, rev.to_string());
        }
        let value = PresenceValue {
            channel: channel.to_owned(),
            entry: entry.clone(),
        };
        let payload = Bytes::from(serde_json::to_vec(&value).map_err(|e| failed("presence", e))?);
        let subject = kv_subject(&self.link.names.presence_bucket(), key);
        match self.link.append(subject, headers, payload).await? {
            Ok(rev) => Ok(Some(rev)),
            Err(PublishErrorKind::WrongLastSequence) => Ok(None),
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
        let snapshot: Vec<(String, String, PresenceEntry, u64)> = self
            .presence
            .map
            .lock()
            .iter()
            .map(|(k, m)| (k.clone(), m.channel.clone(), m.entry.clone(), m.revision))
            .collect();
        futures_util::stream::iter(snapshot)
            .for_each_concurrent(
                REFRESH_CONCURRENCY,
                |(key, channel, entry, rev)| async move {
                    let mut written = self.put_presence(&key, &channel, &entry, Some(rev)).await;
                    if let Ok(None) = written {
                        // Changed since: removed (then it stays so), or expired
                        // while the link was down (then it comes back).
                        if !self.still_mine(&key, rev) {
                            return;
                        }
                        written = self.put_presence(&key, &channel, &entry, Some(0)).await;
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
            let key = key(channel, &entry.connection_id);
            let rev = inner
                .put_presence(&key, channel, &entry, None)
                .await?
                .ok_or_else(|| EngineError("presence: refused".into()))?;
            inner.presence.map.lock().insert(
                key,
                Mine {
                    channel: channel.to_owned(),
                    entry,
                    revision: rev,
                },
            );
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
            let key = key(channel, connection_id);
            // Forgotten first: a refresh that has not re-put it yet won't.
            inner.presence.map.lock().remove(&key);
            let mut headers = HeaderMap::new();
            headers.insert(KV_OPERATION, "DEL");
            let subject = kv_subject(&inner.link.names.presence_bucket(), &key);
            match inner.link.append(subject, headers, Bytes::new()).await? {
                Ok(_) => Ok(()),
                Err(kind) => Err(failed("presence", kind)),
            }
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
