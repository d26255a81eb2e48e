//! Rooms in the engine (PROTOCOL.md section 6): which rooms exist, with
//! what settings, and who holds a place in each, so that on a networked
//! engine a room is one room on every node: created through any node's
//! API, its capacity counted over every node's connections, deleted
//! everywhere at once.
//!
//! A room's members are the presence entries of its channel
//! `room:<room>`: taking a place and entering presence is one step
//! ([`RoomStore::admit`]), so capacity counts exactly what `presence`
//! lists, and a node that dies frees its members' places when its
//! presence entries expire.

use std::collections::HashMap;
use std::future::ready;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{BoxFuture, EngineError, MemoryPresence, PresenceEntry};

/// A room's settings. They never change once the room exists, so a node
/// may keep a copy for as long as it has members there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSettings {
    /// The bare room name; its channel is `room:<room>`.
    pub room: String,
    /// Connections admitted at most, over every node.
    pub capacity: usize,
    /// Admits only its owner and users whose token lists it.
    pub private: bool,
    /// The owning user, if any.
    #[serde(default)]
    pub owner: Option<String>,
    /// Whatever the creator attached.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// When it was created, ms since the epoch (the store's clock). With
    /// the name, it tells one incarnation of a room from a later one.
    pub created_at: u64,
    /// Made by a `join_room` of an unknown room: it goes when its last
    /// member leaves. Rooms made through the API stay until deleted.
    #[serde(default)]
    pub made_by_join: bool,
}

/// A room as it is now.
#[derive(Debug, Clone)]
pub struct RoomState {
    /// Its settings.
    pub settings: Arc<RoomSettings>,
    /// Places taken, over every node.
    pub members: usize,
}

/// What [`RoomStore::admit`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// In. `new` is false when the connection held a place already (its
    /// presence entry was refreshed, nothing else changed).
    Admitted {
        /// The room it is in.
        settings: Arc<RoomSettings>,
        /// Whether the place was taken now.
        new: bool,
    },
    /// At capacity.
    Full {
        /// The room's capacity.
        capacity: usize,
    },
    /// No such room (and none was to be made).
    Unknown,
}

/// The narrow interface of a room registry. Every method is one atomic
/// step in the store, so two nodes admitting at once never exceed a
/// room's capacity and never both create it.
pub trait RoomStore: Send + Sync + 'static {
    /// Creates a room (through the API). `created_at` is the store's to
    /// set. Returns the room made, or `None` when one of that name exists.
    fn create(
        &self,
        settings: RoomSettings,
    ) -> BoxFuture<'_, Result<Option<Arc<RoomSettings>>, EngineError>>;

    /// The room, if it exists.
    fn get<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Option<RoomState>, EngineError>>;

    /// Every room, by name.
    fn list(&self) -> BoxFuture<'_, Result<Vec<RoomState>, EngineError>>;

    /// Takes a place in `room` for `entry`'s connection and enters `entry`
    /// in the presence of `room:<room>`, in one step. With `create`, an
    /// unknown room is made first: public, of that capacity, going when
    /// its last member leaves. The presence entry is refreshed by the
    /// store's [`PresenceStore`](super::PresenceStore) like any other.
    fn admit<'a>(
        &'a self,
        room: &'a str,
        entry: PresenceEntry,
        create: Option<usize>,
    ) -> BoxFuture<'a, Result<Admission, EngineError>>;

    /// Gives connection `connection_id`'s place back and takes it out of
    /// the room's presence; a room made by joining goes with its last
    /// member. Nothing happens when it held no place.
    fn release<'a>(
        &'a self,
        room: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>>;

    /// Deletes a room and its presence: nobody is admitted to it any more.
    /// Returns what it was, or `None` when there was no such room.
    fn delete<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<RoomSettings>>, EngineError>>;
}

/// The channel of room `room`.
pub fn room_channel(room: &str) -> String {
    format!("room:{room}")
}

const SHARDS: usize = 16;

struct Held {
    settings: Arc<RoomSettings>,
    /// Connections holding a place.
    members: std::collections::HashSet<String>,
}

/// Rooms kept in this process's memory, their members in a
/// [`MemoryPresence`] it shares with the engine.
pub struct MemoryRooms {
    presence: Arc<MemoryPresence>,
    shards: Box<[Mutex<HashMap<String, Held>>]>,
    hasher: RandomState,
}

impl MemoryRooms {
    /// Rooms whose members are entered in `presence`.
    pub fn new(presence: Arc<MemoryPresence>) -> Self {
        MemoryRooms {
            presence,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, room: &str) -> &Mutex<HashMap<String, Held>> {
        &self.shards[self.hasher.hash_one(room) as usize % SHARDS]
    }

    fn admit_now(&self, room: &str, entry: PresenceEntry, create: Option<usize>) -> Admission {
        let mut shard = self.shard(room).lock();
        let held = match (shard.contains_key(room), create) {
            (true, _) => shard.get_mut(room).expect("present"),
            (false, None) => return Admission::Unknown,
            (false, Some(capacity)) => shard.entry(room.to_owned()).or_insert(Held {
                settings: Arc::new(RoomSettings {
                    room: room.to_owned(),
                    capacity,
                    private: false,
                    owner: None,
                    metadata: Map::new(),
                    created_at: crate::util::now_ms(),
                    made_by_join: true,
                }),
                members: Default::default(),
            }),
        };
        let new = !held.members.contains(&entry.connection_id);
        if new && held.members.len() >= held.settings.capacity {
            return Admission::Full {
                capacity: held.settings.capacity,
            };
        }
        held.members.insert(entry.connection_id.clone());
        // Under the room's lock, so a delete cannot slip in between.
        self.presence.add_now(&room_channel(room), entry);
        Admission::Admitted {
            settings: held.settings.clone(),
            new,
        }
    }

    fn release_now(&self, room: &str, connection_id: &str) {
        let mut shard = self.shard(room).lock();
        let Some(held) = shard.get_mut(room) else {
            return;
        };
        if !held.members.remove(connection_id) {
            return;
        }
        self.presence.remove_now(&room_channel(room), connection_id);
        if held.members.is_empty() && held.settings.made_by_join {
            shard.remove(room);
        }
    }

    fn delete_now(&self, room: &str) -> Option<Arc<RoomSettings>> {
        let held = self.shard(room).lock().remove(room)?;
        let channel = room_channel(room);
        for c in &held.members {
            self.presence.remove_now(&channel, c);
        }
        Some(held.settings)
    }
}

fn state(h: &Held) -> RoomState {
    RoomState {
        settings: h.settings.clone(),
        members: h.members.len(),
    }
}

impl RoomStore for MemoryRooms {
    fn create(
        &self,
        mut settings: RoomSettings,
    ) -> BoxFuture<'_, Result<Option<Arc<RoomSettings>>, EngineError>> {
        let mut shard = self.shard(&settings.room).lock();
        let made = (!shard.contains_key(&settings.room)).then(|| {
            settings.created_at = crate::util::now_ms();
            let settings = Arc::new(settings);
            shard.insert(
                settings.room.clone(),
                Held {
                    settings: settings.clone(),
                    members: Default::default(),
                },
            );
            settings
        });
        Box::pin(ready(Ok(made)))
    }

    fn get<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Option<RoomState>, EngineError>> {
        let found = self.shard(room).lock().get(room).map(state);
        Box::pin(ready(Ok(found)))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<RoomState>, EngineError>> {
        let mut all: Vec<RoomState> = self
            .shards
            .iter()
            .flat_map(|s| s.lock().values().map(state).collect::<Vec<_>>())
            .collect();
        all.sort_by(|a, b| a.settings.room.cmp(&b.settings.room));
        Box::pin(ready(Ok(all)))
    }

    fn admit<'a>(
        &'a self,
        room: &'a str,
        entry: PresenceEntry,
        create: Option<usize>,
    ) -> BoxFuture<'a, Result<Admission, EngineError>> {
        Box::pin(ready(Ok(self.admit_now(room, entry, create))))
    }

    fn release<'a>(
        &'a self,
        room: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        self.release_now(room, connection_id);
        Box::pin(ready(Ok(())))
    }

    fn delete<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<RoomSettings>>, EngineError>> {
        Box::pin(ready(Ok(self.delete_now(room))))
    }
}
