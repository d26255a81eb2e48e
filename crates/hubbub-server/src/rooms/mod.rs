//! Rooms (PROTOCOL.md section 6): named groups of connections with a
//! capacity, an owner, metadata, and a channel `room:<room>` whose presence
//! lists the members.
//!
//! Which rooms exist, their settings and who holds a place are the
//! engine's ([`RoomStore`](crate::engine::RoomStore)), so on a networked
//! engine a room is one room on every node: capacity counts every node's
//! connections in one atomic step, and a room created or deleted through
//! any node is created or deleted for all. What stays here is this node's
//! side: which of its connections are members, with what they showed
//! others (for their `user_left`), and which incarnations of a room were
//! deleted (so a join racing the deletion does not linger).
//! Joining and leaving touch one entry: O(1) whatever the room's size.

pub(crate) mod ops;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::engine::RoomSettings;

const SHARDS: usize = 16;

/// How long a deleted room's incarnation is remembered: longer than any
/// join takes between its admission and its entry here.
const TOMBSTONE: Duration = Duration::from_secs(60);

/// What a member showed others when it joined (`join_room`'s `info`
/// merged with the token's), kept for its `user_left`.
pub(crate) type MemberInfo = Map<String, Value>;

/// One member on this node.
pub(crate) struct Member {
    pub user_id: Option<String>,
    pub info: MemberInfo,
}

/// A room as this node holds it: its settings (they never change) and its
/// members here, by connection sequence number.
struct Local {
    settings: Arc<RoomSettings>,
    conns: HashMap<u64, Member>,
}

#[derive(Default)]
struct Shard {
    rooms: HashMap<String, Local>,
    /// Deleted incarnations: room and `created_at`, with when.
    deleted: HashMap<(String, u64), Instant>,
}

/// This node's members of every room.
pub(crate) struct Rooms {
    shards: Box<[Mutex<Shard>]>,
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
    fn shard(&self, room: &str) -> &Mutex<Shard> {
        &self.shards[self.hasher.hash_one(room) as usize % SHARDS]
    }

    /// The room's settings, when this node has members there (a join or a
    /// watch then needs no round trip to the store).
    pub fn settings(&self, room: &str) -> Option<Arc<RoomSettings>> {
        self.shard(room)
            .lock()
            .rooms
            .get(room)
            .map(|l| l.settings.clone())
    }

    /// Whether connection `seq` is a member of `room`.
    pub fn is_member(&self, room: &str, seq: u64) -> bool {
        self.shard(room)
            .lock()
            .rooms
            .get(room)
            .is_some_and(|l| l.conns.contains_key(&seq))
    }

    /// Records connection `seq`, admitted by the store to `settings`'
    /// room. False when that incarnation was deleted meanwhile (the caller
    /// gives the place back and answers as for an unknown room).
    pub fn enter(&self, settings: &Arc<RoomSettings>, seq: u64, member: Member) -> bool {
        let mut shard = self.shard(&settings.room).lock();
        let key = (settings.room.clone(), settings.created_at);
        if shard.deleted.contains_key(&key) {
            return false;
        }
        let local = shard
            .rooms
            .entry(settings.room.clone())
            .or_insert_with(|| Local {
                settings: settings.clone(),
                conns: HashMap::new(),
            });
        // A later incarnation: the earlier one's members were taken out
        // when its deletion arrived.
        local.settings = settings.clone();
        if local.conns.insert(seq, member).is_none() {
            self.members.fetch_add(1, Relaxed);
        }
        true
    }

    /// Takes connection `seq` out of `room`; returns what it showed, or
    /// `None` when it was not in.
    pub fn leave(&self, room: &str, seq: u64) -> Option<Member> {
        let mut shard = self.shard(room).lock();
        let local = shard.rooms.get_mut(room)?;
        let member = local.conns.remove(&seq)?;
        self.members.fetch_sub(1, Relaxed);
        if local.conns.is_empty() {
            shard.rooms.remove(room);
        }
        Some(member)
    }

    /// A room was deleted: every member here of incarnation `created_at`
    /// (or of any, with `None`) is taken out, and that incarnation is
    /// remembered so a join admitted just before the deletion does not
    /// enter it after.
    pub fn deleted(&self, room: &str, created_at: Option<u64>) -> Vec<u64> {
        let mut shard = self.shard(room).lock();
        let now = Instant::now();
        shard
            .deleted
            .retain(|_, at| now.duration_since(*at) < TOMBSTONE);
        let matches = shard
            .rooms
            .get(room)
            .is_some_and(|l| created_at.is_none_or(|c| c == l.settings.created_at));
        if let Some(c) = created_at {
            shard.deleted.insert((room.to_owned(), c), now);
        }
        if !matches {
            return Vec::new();
        }
        let local = shard.rooms.remove(room).expect("matched");
        shard
            .deleted
            .insert((room.to_owned(), local.settings.created_at), now);
        self.members.fetch_sub(local.conns.len(), Relaxed);
        local.conns.into_keys().collect()
    }

    /// (rooms with members here, members here) for stats and metrics.
    pub fn counts(&self) -> (usize, usize) {
        let rooms = self.shards.iter().map(|s| s.lock().rooms.len()).sum();
        (rooms, self.members.load(Relaxed))
    }
}

/// Events only the hub sends on a room's channel: a member publishing
/// one would make others see someone join, leave or the room go.
pub(crate) const HUB_EVENTS: [&str; 3] = ["user_joined", "user_left", "room_deleted"];

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

    fn settings(room: &str, created_at: u64) -> Arc<RoomSettings> {
        Arc::new(RoomSettings {
            room: room.into(),
            capacity: 5,
            private: false,
            owner: None,
            metadata: Map::new(),
            created_at,
            made_by_join: true,
        })
    }

    fn member() -> Member {
        Member {
            user_id: Some("ann".into()),
            info: MemberInfo::new(),
        }
    }

    #[test]
    fn members_come_and_go_and_a_deleted_incarnation_admits_no_one() {
        let rooms = Rooms::default();
        let old = settings("lobby", 1);
        assert!(rooms.enter(&old, 1, member()));
        assert!(rooms.enter(&old, 1, member()), "entering twice counts once");
        assert!(rooms.enter(&old, 2, member()));
        assert_eq!(rooms.counts(), (1, 2));
        assert!(rooms.is_member("lobby", 1));
        assert!(rooms.leave("lobby", 1).is_some());
        assert!(rooms.leave("lobby", 1).is_none());
        assert_eq!(
            rooms.deleted("lobby", Some(2)),
            Vec::<u64>::new(),
            "not this one"
        );
        assert_eq!(rooms.deleted("lobby", Some(1)), vec![2]);
        assert_eq!(rooms.counts(), (0, 0));
        assert!(!rooms.enter(&old, 3, member()), "deleted meanwhile");
        assert!(rooms.enter(&settings("lobby", 3), 3, member()), "a new one");
        assert_eq!(rooms.deleted("lobby", None), vec![3]);
        assert!(rooms.settings("lobby").is_none());
        assert!(valid_name("a:b").is_err() && valid_name("lobby").is_ok());
        assert!(valid_name(&"r".repeat(MAX_ROOM_LEN)).is_ok());
        use hubbub_protocol::rooms::{RoomDeleted, UserJoined, UserLeft};
        use hubbub_protocol::EventPayload;
        let types = [
            UserJoined::EVENT_TYPE,
            UserLeft::EVENT_TYPE,
            RoomDeleted::EVENT_TYPE,
        ];
        assert_eq!(HUB_EVENTS, types);
        assert!(valid_name(&"r".repeat(MAX_ROOM_LEN + 1)).is_err());
    }
}
