//! Presence: who is on a channel, one entry per connection.

use std::collections::HashMap;
use std::future::ready;
use std::hash::{BuildHasher, RandomState};

use parking_lot::Mutex;

use super::{BoxFuture, EngineError};

pub use hubbub_protocol::rooms::{PresenceEntry, PresenceStats};

/// The narrow interface of a presence store. Entries are keyed by
/// connection id, so a user with several connections appears once per
/// connection, and a node that dies leaves entries a networked store
/// expires (the node refreshes its own with [`PresenceStore::add`]).
pub trait PresenceStore: Send + Sync + 'static {
    /// Adds (or refreshes) `entry` on `channel`.
    fn add<'a>(
        &'a self,
        channel: &'a str,
        entry: PresenceEntry,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Removes connection `connection_id` from `channel`.
    fn remove<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Every entry of `channel`, oldest first.
    fn list<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>, EngineError>>;

    /// Counts without listing: asking how many are there must not cost a
    /// list of ten thousand members.
    fn stats<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<PresenceStats, EngineError>>;
}

const SHARDS: usize = 16;

#[derive(Default)]
struct ChannelPresence {
    /// Entries by connection id (join order until one leaves).
    entries: indexmap::IndexMap<String, PresenceEntry>,
    /// Connections per user, so `num_users` is a lookup.
    users: HashMap<String, usize>,
}

/// Presence kept in this process's memory.
pub struct MemoryPresence {
    shards: Box<[Mutex<HashMap<String, ChannelPresence>>]>,
    hasher: RandomState,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        MemoryPresence {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl MemoryPresence {
    fn shard(&self, channel: &str) -> &Mutex<HashMap<String, ChannelPresence>> {
        &self.shards[self.hasher.hash_one(channel) as usize % SHARDS]
    }

    pub(super) fn add_now(&self, channel: &str, entry: PresenceEntry) {
        let mut shard = self.shard(channel).lock();
        let ch = shard.entry(channel.to_owned()).or_default();
        let key = entry.connection_id.clone();
        let user = entry.user_id.clone();
        if let Some(old) = ch.entries.insert(key, entry) {
            forget_user(&mut ch.users, old.user_id.as_deref());
        }
        if let Some(u) = user {
            *ch.users.entry(u).or_default() += 1;
        }
    }

    pub(super) fn remove_now(&self, channel: &str, connection_id: &str) {
        let mut shard = self.shard(channel).lock();
        let Some(ch) = shard.get_mut(channel) else {
            return;
        };
        // O(1): a member leaving a room of ten thousand moves one entry.
        if let Some(old) = ch.entries.swap_remove(connection_id) {
            forget_user(&mut ch.users, old.user_id.as_deref());
        }
        if ch.entries.is_empty() {
            shard.remove(channel);
        }
    }
}

fn forget_user(users: &mut HashMap<String, usize>, user: Option<&str>) {
    let Some(u) = user else { return };
    if let Some(n) = users.get_mut(u) {
        *n -= 1;
        if *n == 0 {
            users.remove(u);
        }
    }
}

impl PresenceStore for MemoryPresence {
    fn add<'a>(
        &'a self,
        channel: &'a str,
        entry: PresenceEntry,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        self.add_now(channel, entry);
        Box::pin(ready(Ok(())))
    }

    fn remove<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        self.remove_now(channel, connection_id);
        Box::pin(ready(Ok(())))
    }

    fn list<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>, EngineError>> {
        let mut list: Vec<PresenceEntry> = self
            .shard(channel)
            .lock()
            .get(channel)
            .map(|c| c.entries.values().cloned().collect())
            .unwrap_or_default();
        // Removal swaps entries around; the order is restored here, where
        // a full listing costs O(n log n) anyway.
        list.sort_by_key(|e| e.joined_at);
        Box::pin(ready(Ok(list)))
    }

    fn stats<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<PresenceStats, EngineError>> {
        let stats = self
            .shard(channel)
            .lock()
            .get(channel)
            .map(|c| PresenceStats {
                num_clients: c.entries.len() as u64,
                num_users: c.users.len() as u64,
            })
            .unwrap_or_default();
        Box::pin(ready(Ok(stats)))
    }
}
