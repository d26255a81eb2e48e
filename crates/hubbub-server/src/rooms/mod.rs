//! Rooms (PROTOCOL.md section 6): named groups of connections with a
//! capacity, an owner, metadata, and a channel `room:<room>` whose presence
//! lists the members.
//!
//! The registry keeps what is a room's own (capacity, privacy, owner, who
//! is in it, by connection); who is *present*, with their info, is the
//! engine's presence store, so a networked engine shares it across nodes.
//! Admission checks the capacity and takes the place under the room's
//! lock, so fifty simultaneous joins of a room of ten admit exactly ten.
//! Joining and leaving touch one entry: O(1) whatever the room's size.

pub(crate) mod ops;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::util::now_ms;

const SHARDS: usize = 16;

/// How a room came to be, which decides when it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `POST /api/rooms`: stays until deleted.
    Api,
    /// A `join_room` of an unknown room: removed when its last member leaves.
    Join,
}

/// A room's settings, as the API shows them.
#[derive(Debug, Clone)]
pub(crate) struct RoomInfo {
    pub room: String,
    pub capacity: usize,
    pub private: bool,
    pub owner: Option<String>,
    pub metadata: Map<String, Value>,
    pub created_at: u64,
    pub origin: Origin,
}

/// One room: its settings and its members (connection sequence numbers).
pub(crate) struct Room {
    pub info: RoomInfo,
    members: Mutex<Members>,
}

/// What a member showed others when it joined (`join_room`'s `info`
/// merged with the token's), kept for its `user_left`.
pub(crate) type MemberInfo = Map<String, Value>;

#[derive(Default)]
struct Members {
    conns: HashMap<u64, MemberInfo>,
    /// Set once deleted: no one joins a room on its way out.
    deleted: bool,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// At capacity.
    Full,
    /// Deleted meanwhile, or unknown where rooms are not made by joining.
    Gone,
}

impl Room {
    /// Takes a place for connection `seq`; true when it is new (false: it
    /// was a member already, and nothing changed).
    fn admit(&self, seq: u64, info: &MemberInfo) -> Result<bool, Refused> {
        let mut m = self.members.lock();
        if m.deleted {
            return Err(Refused::Gone);
        }
        if m.conns.contains_key(&seq) {
            return Ok(false);
        }
        if m.conns.len() >= self.info.capacity {
            return Err(Refused::Full);
        }
        m.conns.insert(seq, info.clone());
        Ok(true)
    }

    /// Members now.
    pub fn len(&self) -> usize {
        self.members.lock().conns.len()
    }

    /// Whether connection `seq` is a member.
    pub fn has(&self, seq: u64) -> bool {
        self.members.lock().conns.contains_key(&seq)
    }
}

type Shard = Mutex<HashMap<String, Arc<Room>>>;

/// Every room of this node.
pub(crate) struct Rooms {
    shards: Box<[Shard]>,
    hasher: RandomState,
    members: AtomicUsize,
}

impl Default for Rooms {
    fn default() -> Self {
        Rooms {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            members: AtomicUsize::new(0),
        }
    }
}

impl Rooms {
    fn shard(&self, room: &str) -> &Shard {
        &self.shards[self.hasher.hash_one(room) as usize % SHARDS]
    }

    /// The room, if it exists.
    pub fn get(&self, room: &str) -> Option<Arc<Room>> {
        self.shard(room).lock().get(room).cloned()
    }

    /// Whether connection `seq` is a member of `room`.
    pub fn is_member(&self, room: &str, seq: u64) -> bool {
        self.get(room).is_some_and(|r| r.has(seq))
    }

    /// Creates a room through the API; `None` when one of that name exists.
    pub fn create(&self, mut info: RoomInfo) -> Option<Arc<Room>> {
        let mut shard = self.shard(&info.room).lock();
        if shard.contains_key(&info.room) {
            return None;
        }
        info.created_at = now_ms();
        let room = Arc::new(Room {
            info,
            members: Mutex::default(),
        });
        shard.insert(room.info.room.clone(), room.clone());
        Some(room)
    }

    /// The room to join: the existing one, or (with `create`) a new public
    /// one of `capacity` that goes when its last member leaves.
    pub fn for_join(&self, room: &str, create: bool, capacity: usize) -> Option<Arc<Room>> {
        let mut shard = self.shard(room).lock();
        if let Some(r) = shard.get(room) {
            return Some(r.clone());
        }
        if !create {
            return None;
        }
        let r = Arc::new(Room {
            info: RoomInfo {
                room: room.to_owned(),
                capacity,
                private: false,
                owner: None,
                metadata: Map::new(),
                created_at: now_ms(),
                origin: Origin::Join,
            },
            members: Mutex::default(),
        });
        shard.insert(room.to_owned(), r.clone());
        Some(r)
    }

    /// Admits connection `seq`, showing `info`, to `room` (see
    /// [`Room::admit`]).
    pub fn join(&self, room: &Room, seq: u64, info: &MemberInfo) -> Result<bool, Refused> {
        let new = room.admit(seq, info)?;
        if new {
            self.members.fetch_add(1, Relaxed);
        }
        Ok(new)
    }

    /// Takes connection `seq` out of `room`; returns what it showed, or
    /// `None` when it was not in. A room made by joining goes with its last
    /// member.
    pub fn leave(&self, room: &str, seq: u64) -> Option<MemberInfo> {
        let mut shard = self.shard(room).lock();
        let r = shard.get(room).cloned()?;
        let mut m = r.members.lock();
        let info = m.conns.remove(&seq)?;
        self.members.fetch_sub(1, Relaxed);
        if m.conns.is_empty() && r.info.origin == Origin::Join {
            m.deleted = true;
            shard.remove(room);
        }
        Some(info)
    }

    /// Deletes a room: no one joins it any more; returns its members.
    pub fn delete(&self, room: &str) -> Option<Vec<u64>> {
        let r = self.shard(room).lock().remove(room)?;
        let mut m = r.members.lock();
        m.deleted = true;
        let conns: Vec<u64> = m.conns.drain().map(|(seq, _)| seq).collect();
        self.members.fetch_sub(conns.len(), Relaxed);
        Some(conns)
    }

    /// Every room, by name.
    pub fn all(&self) -> Vec<Arc<Room>> {
        let mut out: Vec<Arc<Room>> = self
            .shards
            .iter()
            .flat_map(|s| s.lock().values().cloned().collect::<Vec<_>>())
            .collect();
        out.sort_by(|a, b| a.info.room.cmp(&b.info.room));
        out
    }

    /// (rooms, members) for stats and metrics.
    pub fn counts(&self) -> (usize, usize) {
        let rooms = self.shards.iter().map(|s| s.lock().len()).sum();
        (rooms, self.members.load(Relaxed))
    }
}

/// Longest room name: its channel, `room:<room>`, is a channel name.
pub(crate) const MAX_ROOM_LEN: usize = hubbub_protocol::MAX_CHANNEL_LEN - "room:".len();

/// Whether `room` is a valid bare room name: channel-name characters, no
/// `:`, short enough that `room:<room>` is a channel name.
pub(crate) fn valid_name(room: &str) -> Result<(), String> {
    if room.contains(':') {
        return Err("a room name has no ':' (its channel is room:<room>)".into());
    }
    if room.len() > MAX_ROOM_LEN {
        return Err(format!("a room name has at most {MAX_ROOM_LEN} characters"));
    }
    hubbub_protocol::validate_channel(room)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_holds_and_joined_rooms_go_with_their_last_member() {
        let rooms = Rooms::default();
        let r = rooms.for_join("lobby", true, 2).unwrap();
        let info = MemberInfo::new();
        assert_eq!(rooms.join(&r, 1, &info), Ok(true));
        assert_eq!(
            rooms.join(&r, 1, &info),
            Ok(false),
            "joining twice changes nothing"
        );
        assert_eq!(rooms.join(&r, 2, &info), Ok(true));
        assert_eq!(rooms.join(&r, 3, &info), Err(Refused::Full));
        assert_eq!(rooms.counts(), (1, 2));
        assert!(rooms.leave("lobby", 1).is_some());
        assert!(rooms.leave("lobby", 1).is_none());
        assert!(rooms.leave("lobby", 2).is_some());
        assert!(
            rooms.get("lobby").is_none(),
            "made by joining: gone when empty"
        );
        assert_eq!(rooms.join(&r, 4, &info), Err(Refused::Gone));
        assert!(rooms.for_join("nope", false, 2).is_none());
    }

    #[test]
    fn api_rooms_stay_until_deleted() {
        let rooms = Rooms::default();
        let info = RoomInfo {
            room: "ops".into(),
            capacity: 5,
            private: true,
            owner: Some("ann".into()),
            metadata: Map::new(),
            created_at: 0,
            origin: Origin::Api,
        };
        let r = rooms.create(info.clone()).unwrap();
        assert!(rooms.create(info).is_none(), "already exists");
        let shown = MemberInfo::new();
        rooms.join(&r, 1, &shown).unwrap();
        rooms.leave("ops", 1);
        assert!(rooms.get("ops").is_some());
        rooms.join(&r, 2, &shown).unwrap();
        assert_eq!(rooms.delete("ops"), Some(vec![2]));
        assert_eq!(rooms.counts(), (0, 0));
        assert_eq!(rooms.join(&r, 3, &shown), Err(Refused::Gone));
        assert!(valid_name("a:b").is_err() && valid_name("lobby").is_ok());
        assert!(valid_name(&"r".repeat(MAX_ROOM_LEN)).is_ok());
        assert!(valid_name(&"r".repeat(MAX_ROOM_LEN + 1)).is_err());
    }
}
