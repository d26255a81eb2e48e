//! Every live WebSocket connection of this node, by id and by user.
//!
//! The server tracks its connection tasks here rather than in a task set:
//! shutdown walks this registry to ask each connection to close with 1001,
//! then waits for the count to reach zero; the HTTP API finds connections
//! to disconnect or send to. Sharded so that connects and disconnects on
//! different connections rarely meet on one lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::conn::handle::{CloseRequest, ConnHandle};

const SHARDS: usize = 16;

type ConnShard = Mutex<HashMap<u64, Arc<ConnHandle>>>;
type UserShard = Mutex<HashMap<Box<str>, UserEntry>>;

/// A user's live connections and the handshakes admitted but not yet
/// registered, counted together so a per-user limit holds under races.
#[derive(Default)]
struct UserEntry {
    live: Vec<u64>,
    pending: usize,
}

/// The registry of live connections.
pub struct Connections {
    shards: Box<[ConnShard]>,
    users: Box<[UserShard]>,
    count: AtomicUsize,
    /// Registered connections (handshakes done): `count` less the slots
    /// reserved mid-handshake, kept so the API need not walk the shards.
    registered: AtomicUsize,
    authenticated: AtomicUsize,
    next_seq: AtomicU64,
    emptied: Notify,
    /// Random per process, so connection ids of two processes differ.
    node: String,
}

impl Connections {
    /// An empty registry; `node` prefixes every connection id.
    pub fn new(node: String) -> Self {
        Connections {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            users: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            count: AtomicUsize::new(0),
            registered: AtomicUsize::new(0),
            authenticated: AtomicUsize::new(0),
            next_seq: AtomicU64::new(1),
            emptied: Notify::new(),
            node,
        }
    }

    /// A fresh sequence number for a new connection.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Relaxed)
    }

    /// This node's id, the prefix of its connection ids.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The public id of connection `seq`.
    pub fn connection_id(&self, seq: u64) -> String {
        format!("{}-{seq:x}", self.node)
    }

    /// The live connection whose public id is `id`, on this node.
    pub fn by_id(&self, id: &str) -> Option<Arc<ConnHandle>> {
        self.parse_id(id).and_then(|seq| self.get(seq))
    }

    /// Asks every live connection of `user` to close with `request`;
    /// returns how many were not closing already.
    pub fn close_user(&self, user: &str, request: &CloseRequest) -> usize {
        self.of_user(user)
            .iter()
            .filter(|h| h.close(request.clone()))
            .count()
    }

    /// The sequence number inside a connection id of this node.
    pub fn parse_id(&self, id: &str) -> Option<u64> {
        let (node, seq) = id.rsplit_once('-')?;
        if node != self.node {
            return None;
        }
        u64::from_str_radix(seq, 16).ok()
    }

    fn user_shard(&self, user: &str) -> &UserShard {
        let h = user
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        &self.users[h % SHARDS]
    }

    /// Reserves a slot if fewer than `max` connections are live.
    pub fn try_reserve(&self, max: usize) -> bool {
        self.count
            .fetch_update(Relaxed, Relaxed, |c| (c < max).then_some(c + 1))
            .is_ok()
    }

    /// Gives back a slot reserved by [`Connections::try_reserve`] that was not used.
    pub fn release(&self) {
        if self.count.fetch_sub(1, Relaxed) == 1 {
            self.emptied.notify_waiters();
        }
    }

    /// Admits one more connection of `user` if it has fewer than `max`
    /// (0: no limit) live or admitted ones; the place is taken until
    /// [`Connections::insert`] turns it into a live connection or
    /// [`Connections::release_user`] gives it back.
    pub fn try_reserve_user(&self, user: &str, max: usize) -> bool {
        let mut users = self.user_shard(user).lock();
        let e = users.entry(Box::from(user)).or_default();
        if max > 0 && e.live.len() + e.pending >= max {
            if e.live.is_empty() && e.pending == 0 {
                users.remove(user);
            }
            return false;
        }
        e.pending += 1;
        true
    }

    /// Gives back a place taken by [`Connections::try_reserve_user`] for a
    /// handshake that did not complete.
    pub fn release_user(&self, user: &str) {
        let mut users = self.user_shard(user).lock();
        if let Some(e) = users.get_mut(user) {
            e.pending = e.pending.saturating_sub(1);
            if e.live.is_empty() && e.pending == 0 {
                users.remove(user);
            }
        }
    }

    /// Registers a connection (its slot was reserved already).
    pub fn insert(&self, handle: Arc<ConnHandle>) {
        self.registered.fetch_add(1, Relaxed);
        if let Some(user) = &handle.user_id {
            self.authenticated.fetch_add(1, Relaxed);
            let mut users = self.user_shard(user).lock();
            let e = users.entry(user.clone()).or_default();
            e.pending = e.pending.saturating_sub(1);
            e.live.push(handle.seq);
        }
        self.shards[handle.seq as usize % SHARDS]
            .lock()
            .insert(handle.seq, handle);
    }

    /// Unregisters a connection and frees its slot.
    pub fn remove(&self, handle: &ConnHandle) {
        let removed = self.shards[handle.seq as usize % SHARDS]
            .lock()
            .remove(&handle.seq)
            .is_some();
        if !removed {
            return;
        }
        self.registered.fetch_sub(1, Relaxed);
        if let Some(user) = &handle.user_id {
            self.authenticated.fetch_sub(1, Relaxed);
            let mut users = self.user_shard(user).lock();
            if let Some(e) = users.get_mut(user) {
                e.live.retain(|s| *s != handle.seq);
                if e.live.is_empty() && e.pending == 0 {
                    users.remove(user);
                }
            }
        }
        self.release();
    }

    /// Live connections (including reserved slots mid-handshake).
    pub fn count(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Registered connections (slots mid-handshake not included).
    pub fn registered(&self) -> usize {
        self.registered.load(Relaxed)
    }

    /// Live connections with a user.
    pub fn authenticated(&self) -> usize {
        self.authenticated.load(Relaxed)
    }

    /// One connection by sequence number.
    pub fn get(&self, seq: u64) -> Option<Arc<ConnHandle>> {
        self.shards[seq as usize % SHARDS].lock().get(&seq).cloned()
    }

    /// The live connections of a user.
    pub fn of_user(&self, user: &str) -> Vec<Arc<ConnHandle>> {
        let seqs = self
            .user_shard(user)
            .lock()
            .get(user)
            .map(|e| e.live.clone())
            .unwrap_or_default();
        seqs.into_iter().filter_map(|s| self.get(s)).collect()
    }

    /// A snapshot of every live connection.
    pub fn all(&self) -> Vec<Arc<ConnHandle>> {
        let mut out = Vec::with_capacity(self.count());
        for s in self.shards.iter() {
            out.extend(s.lock().values().cloned());
        }
        out
    }

    /// Waits until no connection is left.
    pub async fn wait_empty(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_protocol::Encoding;

    fn handle(seq: u64, user: &str) -> Arc<ConnHandle> {
        Arc::new(ConnHandle::new(
            seq,
            Some(user.into()),
            Encoding::Json,
            ([127, 0, 0, 1], 1).into(),
            0,
        ))
    }

    #[test]
    fn per_user_places_count_admitted_handshakes_too() {
        let c = Connections::new("n".into());
        assert!(c.try_reserve_user("u", 2));
        assert!(c.try_reserve_user("u", 2));
        // Two admitted, none registered yet: the third is refused.
        assert!(!c.try_reserve_user("u", 2));
        assert!(c.try_reserve(10));
        c.insert(handle(1, "u"));
        assert!(!c.try_reserve_user("u", 2));
        c.release_user("u");
        assert!(c.try_reserve_user("u", 2));
        assert!(c.try_reserve_user("v", 0), "0 means no limit");
        assert!(c.try_reserve(10));
        let h2 = handle(2, "u");
        c.insert(h2.clone());
        assert_eq!(c.of_user("u").len(), 2);
        c.remove(&h2);
        assert_eq!(c.of_user("u").len(), 1);
        assert!(c.try_reserve_user("u", 2));
    }
}
