//! Rooms on JetStream: one registry for every node of a cluster.
//!
//! A room's settings live in the `<prefix>_rooms` key-value bucket, kept
//! until deleted, under the token of the room's channel `room:<room>` (the
//! token that also names the room's presence keys); the value holds the
//! name, so a room whose token collides with another's is refused, never
//! mistaken for it. A room's members ARE the presence entries of its
//! channel in the presence bucket, refreshed by their node like any other
//! entry and gone within `presence_ttl_s` of their node's death.
//!
//! # Capacity: put, then count by order
//!
//! JetStream has no server-side script, so admission takes two steps:
//!
//! 1. The joiner puts its presence entry with a create-only condition
//!    (`Nats-Expected-Last-Subject-Sequence` = the key's last sequence,
//!    which is 0 or a deletion marker). The put gets a stream sequence:
//!    its *order*. Every later put of the entry (refresh, restore) keeps
//!    that order in the value and in a header (`Hubbub-Admitted`).
//! 2. It lists the room channel's live entries (headers only) and counts
//!    those whose order is lower than its own. It is in iff fewer than
//!    `capacity` come before it; otherwise it deletes its entry: `Full`.
//!
//! This never exceeds capacity: of any set of admitted members, the one
//! with the highest order was put after all the others, so its listing
//! saw them (a removed entry never comes back with its old order). Under
//! contention it may under-admit: a joiner counts earlier joiners that
//! are about to be refused, and members that release after its listing.
//! With no member leaving meanwhile, N joiners at once into a room with
//! `k` free places admit exactly `k` (the `k` lowest orders).
//!
//! # The room's life
//!
//! * `create` and a joiner's creation are create-only puts of the
//!   settings; a loser reads the winner's.
//! * After its count, a joiner confirms the room is still the one it read
//!   (same `created_at`): for a room made through the API a read (a
//!   `delete` removes the settings, then purges the presence, so an entry
//!   put before that read is purged); for a room made by joining a
//!   *touch*, a re-put of the settings conditional on their revision, so
//!   that it conflicts with the release that deletes the room when its last
//!   member leaves (conditionally on the revision it read before finding the
//!   room empty): one of the two fails, and the joiner that loses finds no
//!   room and makes it again.
//! * `get`, `list` and `create` treat a room made by joining with no live
//!   member (its members' node died) as gone, and delete it.

mod bucket;

use std::sync::Arc;

use hubbub_server::engine::{
    room_channel, Admission, BoxFuture, EngineError, PresenceEntry, RoomSettings, RoomState,
    RoomStore,
};
use serde_json::Map;

use crate::presence::{presence_key, Place};
use crate::wire::now_ms;
use crate::Inner;
use bucket::{Seat, Slot, Stored};

/// Lost races one call retries before it gives up with an error.
const ATTEMPTS: usize = 16;
/// Lost touches of a room made by joining before a joiner gives up (each
/// lost touch means another joiner's won: the room is busy, not stuck).
const TOUCHES: usize = 256;

fn contention(what: &str) -> EngineError {
    EngineError(format!("{what}: too many concurrent changes to the room"))
}

fn collision(room: &str) -> EngineError {
    EngineError(format!(
        "room {room:?}: its name hashes like an existing room's; choose another name"
    ))
}

/// What a joiner's count and confirmation came to.
enum Settled {
    In,
    Full,
    /// The room was deleted or replaced since it was read.
    Gone,
}

/// What one attempt of taking a place came to.
enum Placed {
    In {
        new: bool,
    },
    Full,
    Gone,
    /// The member's key changed under the attempt: try again.
    Raced,
}

/// The settings of a room made by `join_room` of an unknown room.
fn joined_settings(room: &str, capacity: usize) -> RoomSettings {
    RoomSettings {
        room: room.to_owned(),
        capacity,
        private: false,
        owner: None,
        metadata: Map::new(),
        created_at: now_ms(),
        made_by_join: true,
    }
}

impl Inner {
    /// Whether the place of the entry put at `order` holds: fewer than
    /// `capacity` members before it, and the room still the one read.
    async fn settle(&self, stored: &Stored, order: u64) -> Result<Settled, EngineError> {
        let room = &stored.settings.room;
        let members = self.room_members(room).await?;
        if members.iter().filter(|m| m.order < order).count() >= stored.settings.capacity {
            return Ok(Settled::Full);
        }
        Ok(if self.confirm(stored).await? {
            Settled::In
        } else {
            Settled::Gone
        })
    }

    /// Whether the room read as `stored` still stands, checked after the
    /// joiner's entry was put (see the module's notes).
    async fn confirm(&self, stored: &Stored) -> Result<bool, EngineError> {
        let room = &stored.settings.room;
        let same = |s: &Stored| s.settings.created_at == stored.settings.created_at;
        if !stored.settings.made_by_join {
            return Ok(matches!(self.read_room(room).await?, Slot::Room(s) if same(&s)));
        }
        let mut expect = stored.revision;
        for _ in 0..TOUCHES {
            if self.put_room(&stored.settings, expect).await?.is_some() {
                return Ok(true);
            }
            match self.read_room(room).await? {
                Slot::Room(s) if same(&s) => expect = s.revision,
                _ => return Ok(false),
            }
        }
        Err(contention("join"))
    }

    /// One attempt at a place in `stored`'s room for `entry`.
    async fn take_place(
        &self,
        stored: &Stored,
        entry: &PresenceEntry,
    ) -> Result<Placed, EngineError> {
        let channel = room_channel(&stored.settings.room);
        let key = presence_key(&channel, &entry.connection_id);
        let place = |admitted_seq| Place {
            room: stored.settings.room.clone(),
            created_at: stored.settings.created_at,
            admitted_seq,
        };
        let last = match self.seat(&channel, &key).await? {
            Seat::Held { revision, order } => {
                // Already in: a refresh, keeping its order.
                let put = self.put_presence(&key, &channel, entry, Some(revision), Some(order));
                let Some(rev) = put.await? else {
                    return Ok(Placed::Raced);
                };
                let place = Some(place(order));
                self.presence.keep(key, &channel, entry.clone(), rev, place);
                return Ok(Placed::In { new: false });
            }
            Seat::Free(last) => last,
        };
        let put = self.put_presence(&key, &channel, entry, Some(last), None);
        let Some(order) = put.await? else {
            return Ok(Placed::Raced);
        };
        let settled = match self.settle(stored, order).await {
            Ok(s) => s,
            Err(e) => {
                // Not known to be in: the entry goes (best effort; else
                // it expires, as it is refreshed by nobody).
                let _ = self.delete_presence(&key).await;
                return Err(e);
            }
        };
        match settled {
            Settled::In => {
                let place = Some(place(order));
                self.presence
                    .keep(key, &channel, entry.clone(), order, place);
                Ok(Placed::In { new: true })
            }
            other => {
                self.delete_presence(&key).await?;
                Ok(match other {
                    Settled::Full => Placed::Full,
                    _ => Placed::Gone,
                })
            }
        }
    }

    /// `RoomStore::admit`.
    async fn admit_room(
        &self,
        room: &str,
        entry: PresenceEntry,
        create: Option<usize>,
    ) -> Result<Admission, EngineError> {
        for _ in 0..ATTEMPTS {
            let stored = match (self.read_room(room).await?, create) {
                (Slot::Room(s), _) => s,
                (Slot::Other, None) | (Slot::Free(_), None) => return Ok(Admission::Unknown),
                (Slot::Other, Some(_)) => return Err(collision(room)),
                (Slot::Free(last), Some(capacity)) => {
                    let settings = joined_settings(room, capacity);
                    match self.put_room(&settings, last).await? {
                        Some(revision) => Stored {
                            revision,
                            settings: Arc::new(settings),
                        },
                        None => continue, // another creator won: read theirs
                    }
                }
            };
            match self.take_place(&stored, &entry).await? {
                Placed::In { new } => {
                    let settings = stored.settings;
                    return Ok(Admission::Admitted { settings, new });
                }
                Placed::Full => {
                    let capacity = stored.settings.capacity;
                    return Ok(Admission::Full { capacity });
                }
                // Deleted meanwhile: look again (made anew, or unknown).
                Placed::Gone | Placed::Raced => {}
            }
        }
        Err(contention("admit"))
    }

    /// `RoomStore::release`.
    async fn release_room(&self, room: &str, connection_id: &str) -> Result<(), EngineError> {
        let channel = room_channel(room);
        let key = presence_key(&channel, connection_id);
        // Forgotten first: a refresh that has not re-put it yet won't.
        self.presence.forget(&key);
        if let Seat::Free(_) = self.seat(&channel, &key).await? {
            return Ok(());
        }
        self.delete_presence(&key).await?;
        if let Slot::Room(stored) = self.read_room(room).await? {
            if self.deserted(&stored).await? {
                // Conditional on the revision read before the count: it
                // fails if a joiner confirmed the room meanwhile, and then
                // the room stays, with that member.
                self.delete_room(room, stored.revision).await?;
            }
        }
        Ok(())
    }

    /// Whether `stored`'s room was made by joining and has no live member:
    /// then it is gone (its last member left, or its members' node died).
    async fn deserted(&self, stored: &Stored) -> Result<bool, EngineError> {
        Ok(stored.settings.made_by_join
            && self.room_members(&stored.settings.room).await?.is_empty())
    }

    /// `RoomStore::create`.
    async fn create_room(
        &self,
        mut settings: RoomSettings,
    ) -> Result<Option<Arc<RoomSettings>>, EngineError> {
        settings.created_at = now_ms();
        for _ in 0..ATTEMPTS {
            match self.read_room(&settings.room).await? {
                Slot::Other => return Err(collision(&settings.room)),
                Slot::Room(s) => {
                    if !self.deserted(&s).await? {
                        return Ok(None);
                    }
                    // Then look again (a joiner may have confirmed it).
                    self.delete_room(&s.settings.room, s.revision).await?;
                }
                Slot::Free(last) => {
                    if self.put_room(&settings, last).await?.is_some() {
                        return Ok(Some(Arc::new(settings)));
                    }
                }
            }
        }
        Err(contention("create"))
    }

    /// `RoomStore::get`.
    async fn get_room(&self, room: &str) -> Result<Option<RoomState>, EngineError> {
        let Slot::Room(stored) = self.read_room(room).await? else {
            return Ok(None);
        };
        let members = self.room_members(room).await?.len();
        if members == 0 && stored.settings.made_by_join {
            self.drop_lazily(&stored).await;
            return Ok(None);
        }
        let settings = stored.settings;
        Ok(Some(RoomState { settings, members }))
    }

    /// `RoomStore::list`.
    async fn list_rooms(&self) -> Result<Vec<RoomState>, EngineError> {
        let rooms = self.all_rooms().await?;
        let counts = self.all_member_counts().await?;
        let mut out = Vec::with_capacity(rooms.len());
        for stored in rooms {
            let channel = room_channel(&stored.settings.room);
            let members = counts.get(&crate::names::hex(&channel)).copied();
            let members = members.unwrap_or(0);
            if members == 0 && stored.settings.made_by_join {
                self.drop_lazily(&stored).await;
                continue;
            }
            let settings = stored.settings;
            out.push(RoomState { settings, members });
        }
        out.sort_by(|a, b| a.settings.room.cmp(&b.settings.room));
        Ok(out)
    }

    /// Deletes a deserted room made by joining that a reader found; a
    /// failure changes nothing for the reader (the room is gone for it).
    async fn drop_lazily(&self, stored: &Stored) {
        if let Err(e) = self
            .delete_room(&stored.settings.room, stored.revision)
            .await
        {
            tracing::debug!(room = %stored.settings.room, error = %e, "deserted room not deleted");
        }
    }

    /// `RoomStore::delete`.
    async fn delete_whole_room(
        &self,
        room: &str,
    ) -> Result<Option<Arc<RoomSettings>>, EngineError> {
        for _ in 0..ATTEMPTS {
            let Slot::Room(stored) = self.read_room(room).await? else {
                return Ok(None);
            };
            // Conditional: a joiner's touch in between makes it look again.
            if self.delete_room(room, stored.revision).await? {
                self.purge_members(room).await?;
                return Ok(Some(stored.settings));
            }
        }
        Err(contention("delete"))
    }

    /// A room member's entry this node refreshes was gone (see
    /// `refresh_presence`): removed by another node (the room was
    /// deleted), then it is forgotten; or expired while the link was down,
    /// then it is put again as a new joiner's would be, and kept only if
    /// the room (the same incarnation) still has a place for it.
    pub(crate) async fn restore_place(
        &self,
        key: &str,
        channel: &str,
        entry: &PresenceEntry,
        old: u64,
        place: &Place,
    ) {
        let order = match self.put_presence(key, channel, entry, Some(0), None).await {
            Ok(Some(order)) => order,
            Ok(None) => return self.presence.forget_if(key, old),
            Err(e) => return tracing::debug!(error = %e, "room member not restored"),
        };
        let kept = async {
            match self.read_room(&place.room).await? {
                Slot::Room(s) if s.settings.created_at == place.created_at => {
                    Ok(matches!(self.settle(&s, order).await?, Settled::In))
                }
                _ => Ok::<_, EngineError>(false),
            }
        };
        let kept = kept.await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "room member not restored");
            false
        });
        // Released meanwhile: not kept either.
        if kept && self.presence.renew(key, old, order) {
            return;
        }
        tracing::warn!(room = %place.room, "a room member lost its place while its entry was gone");
        self.presence.forget_if(key, old);
        if let Err(e) = self.delete_presence(key).await {
            tracing::debug!(error = %e, "room member entry left to expire");
        }
    }
}

/// The engine's [`RoomStore`]: settings in the rooms bucket, members in
/// the presence bucket, shared by every node of the prefix.
pub(crate) struct NatsRooms(pub(crate) Arc<Inner>);

impl RoomStore for NatsRooms {
    fn create(
        &self,
        settings: RoomSettings,
    ) -> BoxFuture<'_, Result<Option<Arc<RoomSettings>>, EngineError>> {
        Box::pin(self.0.create_room(settings))
    }

    fn get<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Option<RoomState>, EngineError>> {
        Box::pin(self.0.get_room(room))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<RoomState>, EngineError>> {
        Box::pin(self.0.list_rooms())
    }

    fn admit<'a>(
        &'a self,
        room: &'a str,
        entry: PresenceEntry,
        create: Option<usize>,
    ) -> BoxFuture<'a, Result<Admission, EngineError>> {
        Box::pin(self.0.admit_room(room, entry, create))
    }

    fn release<'a>(
        &'a self,
        room: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(self.0.release_room(room, connection_id))
    }

    fn delete<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<RoomSettings>>, EngineError>> {
        Box::pin(self.0.delete_whole_room(room))
    }
}
