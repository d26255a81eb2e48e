//! The room store's reads and writes: a room's settings in the rooms
//! bucket with their revision, conditional puts and deletions of them, a
//! member's presence key, and a room's members in admission order.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use hubbub_server::engine::{room_channel, EngineError, RoomSettings};

use crate::link::failed;
use crate::listing::{is_deletion, last_per_subject, numbered_last_per_subject};
use crate::names::{channel_token, hex, kv_stream, kv_subject};
use crate::wire::{ADMITTED_HEADER, CHANNEL_HEADER, EXPECTED_LAST_SUBJECT_SEQ, KV_OPERATION};
use crate::Inner;

/// Deletions of a deleted room's members in flight at once.
const PURGE_CONCURRENCY: usize = 32;

/// A room's settings with the revision (stream sequence) they were read at.
pub(super) struct Stored {
    /// What conditional writes of the settings expect (a joiner's touch,
    /// a deletion), so that they fail if anyone wrote in between.
    pub revision: u64,
    /// The settings; `created_at` tells this incarnation from a later one.
    pub settings: Arc<RoomSettings>,
}

/// What the rooms bucket holds under a room's key.
pub(super) enum Slot {
    /// No room: a put expecting this last sequence (0, or a deletion
    /// marker's) creates one.
    Free(u64),
    /// The room.
    Room(Stored),
    /// Another room, whose channel's token is the same.
    Other,
}

/// What the last message of a member's presence key says.
pub(super) enum Seat {
    /// No live entry: a put expecting this last sequence creates one.
    Free(u64),
    /// A live entry, at `revision`, admitted at `order`.
    Held { revision: u64, order: u64 },
}

/// A room's live presence entry.
pub(super) struct Member {
    /// The stream sequence of its first admission.
    pub order: u64,
    /// Its key's subject.
    pub subject: String,
}

/// The key of a room's settings: the token of its channel.
fn room_key(room: &str) -> String {
    channel_token(&room_channel(room))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.as_str())
}

/// An entry's order: the admission sequence it carries, else (a first
/// put, or an entry put by `PresenceStore::add`) its own revision.
fn order_of(h: &HeaderMap, revision: u64) -> u64 {
    header(h, ADMITTED_HEADER)
        .and_then(|v| v.parse().ok())
        .unwrap_or(revision)
}

impl Inner {
    /// The last message of `subject` in key-value bucket `bucket`.
    async fn last_message(
        &self,
        bucket: &str,
        subject: &str,
    ) -> Result<Option<StreamMessage>, EngineError> {
        let link = &self.link;
        let stream = link
            .js
            .get_stream_no_info(kv_stream(bucket))
            .await
            .map_err(|e| failed("rooms", e))?;
        let last = stream.get_last_raw_message_by_subject(subject);
        match link.within("rooms", last).await? {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(failed("rooms", e)),
        }
    }

    /// What the rooms bucket holds for `room`.
    pub(super) async fn read_room(&self, room: &str) -> Result<Slot, EngineError> {
        let bucket = self.link.names.rooms_bucket();
        let subject = kv_subject(&bucket, &room_key(room));
        let Some(m) = self.last_message(&bucket, &subject).await? else {
            return Ok(Slot::Free(0));
        };
        if header(&m.headers, KV_OPERATION).is_some() {
            return Ok(Slot::Free(m.sequence));
        }
        let settings: RoomSettings =
            serde_json::from_slice(&m.payload).map_err(|e| failed("room settings", e))?;
        Ok(if settings.room == room {
            Slot::Room(Stored {
                revision: m.sequence,
                settings: Arc::new(settings),
            })
        } else {
            Slot::Other
        })
    }

    /// Puts `settings` if the key's last sequence is `expect`: the new
    /// revision, or `None` when refused.
    pub(super) async fn put_room(
        &self,
        settings: &RoomSettings,
        expect: u64,
    ) -> Result<Option<u64>, EngineError> {
        let mut headers = HeaderMap::new();
        headers.insert(EXPECTED_LAST_SUBJECT_SEQ, expect.to_string());
        let payload =
            Bytes::from(serde_json::to_vec(settings).map_err(|e| failed("room settings", e))?);
        let subject = kv_subject(&self.link.names.rooms_bucket(), &room_key(&settings.room));
        match self.link.append(subject, headers, payload).await? {
            Ok(rev) => Ok(Some(rev)),
            Err(PublishErrorKind::WrongLastSequence) => Ok(None),
            Err(kind) => Err(failed("room settings", kind)),
        }
    }

    /// Deletes `room`'s settings if they are still at `revision`; `false`
    /// when refused.
    pub(super) async fn delete_room(&self, room: &str, revision: u64) -> Result<bool, EngineError> {
        let mut headers = HeaderMap::new();
        headers.insert(KV_OPERATION, "DEL");
        headers.insert(EXPECTED_LAST_SUBJECT_SEQ, revision.to_string());
        let subject = kv_subject(&self.link.names.rooms_bucket(), &room_key(room));
        match self
            .link
            .append(subject.clone(), headers, Bytes::new())
            .await?
        {
            Ok(marker) => {
                self.purge_marker(subject, marker).await;
                Ok(true)
            }
            Err(PublishErrorKind::WrongLastSequence) => Ok(false),
            Err(kind) => Err(failed("room settings", kind)),
        }
    }

    /// Drops a deleted room's marker: the bucket keeps messages for ever,
    /// so markers of rooms made by joining would pile up. Only up to the
    /// marker: a room made again since stays. A failure leaves a marker,
    /// which changes no answer.
    async fn purge_marker(&self, subject: String, marker: u64) {
        let link = &self.link;
        let bucket = link.names.rooms_bucket();
        let Ok(stream) = link.js.get_stream_no_info(kv_stream(&bucket)).await else {
            return;
        };
        let purge = std::future::IntoFuture::into_future(
            stream.purge().filter(subject).sequence(marker + 1),
        );
        if let Err(e) = link.ask("purge", purge).await {
            tracing::debug!(error = %e, "deleted room's marker left");
        }
    }

    /// What the presence key `key` of `channel` holds.
    pub(super) async fn seat(&self, channel: &str, key: &str) -> Result<Seat, EngineError> {
        let bucket = self.link.names.presence_bucket();
        let subject = kv_subject(&bucket, key);
        let Some(m) = self.last_message(&bucket, &subject).await? else {
            return Ok(Seat::Free(0));
        };
        let name = hex(channel);
        let live = header(&m.headers, KV_OPERATION).is_none()
            && header(&m.headers, CHANNEL_HEADER) == Some(name.as_str());
        Ok(if live {
            Seat::Held {
                revision: m.sequence,
                order: order_of(&m.headers, m.sequence),
            }
        } else {
            Seat::Free(m.sequence)
        })
    }

    /// `room`'s live members (headers only).
    pub(super) async fn room_members(&self, room: &str) -> Result<Vec<Member>, EngineError> {
        let channel = room_channel(room);
        let bucket = self.link.names.presence_bucket();
        let filter = kv_subject(&bucket, &format!("{}.*", channel_token(&channel)));
        let list = numbered_last_per_subject(&self.link, &kv_stream(&bucket), filter, true).await?;
        let name = hex(&channel);
        Ok(list
            .into_iter()
            .filter_map(|(seq, m)| {
                let h = m.headers.as_ref()?;
                let live = header(h, KV_OPERATION).is_none()
                    && header(h, CHANNEL_HEADER) == Some(name.as_str());
                live.then(|| Member {
                    order: order_of(h, seq),
                    subject: m.subject.to_string(),
                })
            })
            .collect())
    }

    /// Deletes every live member of `room` (a deleted room), forgetting
    /// those of this node; other nodes forget theirs at their next refresh
    /// (their conditional re-put is refused).
    pub(super) async fn purge_members(&self, room: &str) -> Result<(), EngineError> {
        let bucket = self.link.names.presence_bucket();
        let start = kv_subject(&bucket, "");
        let keys: Vec<String> = self
            .room_members(room)
            .await?
            .into_iter()
            .filter_map(|m| m.subject.strip_prefix(&start).map(str::to_owned))
            .collect();
        let deletions = keys.into_iter().map(|key| async move {
            self.presence.forget(&key);
            self.delete_presence(&key).await
        });
        let done: Vec<Result<(), EngineError>> = futures_util::stream::iter(deletions)
            .buffer_unordered(PURGE_CONCURRENCY)
            .collect()
            .await;
        done.into_iter().collect()
    }

    /// Every room's settings.
    pub(super) async fn all_rooms(&self) -> Result<Vec<Stored>, EngineError> {
        let bucket = self.link.names.rooms_bucket();
        let filter = kv_subject(&bucket, ">");
        let list =
            numbered_last_per_subject(&self.link, &kv_stream(&bucket), filter, false).await?;
        let mut rooms = Vec::with_capacity(list.len());
        for (revision, m) in list {
            if is_deletion(&m) {
                continue;
            }
            match serde_json::from_slice::<RoomSettings>(&m.payload) {
                Ok(s) => rooms.push(Stored {
                    revision,
                    settings: Arc::new(s),
                }),
                Err(e) => tracing::warn!(error = %e, "undecodable room settings skipped"),
            }
        }
        Ok(rooms)
    }

    /// Live presence entries of every room channel, by the hex of the
    /// channel's name: one listing of the presence bucket's headers.
    pub(super) async fn all_member_counts(&self) -> Result<HashMap<String, usize>, EngineError> {
        let bucket = self.link.names.presence_bucket();
        let filter = kv_subject(&bucket, ">");
        let list = last_per_subject(&self.link, &kv_stream(&bucket), filter, true).await?;
        let rooms = hex(&room_channel(""));
        let mut counts = HashMap::new();
        for m in list.iter().filter(|m| !is_deletion(m)) {
            let channel = m.headers.as_ref().and_then(|h| header(h, CHANNEL_HEADER));
            if let Some(channel) = channel.filter(|c| c.starts_with(&rooms)) {
                *counts.entry(channel.to_owned()).or_default() += 1;
            }
        }
        Ok(counts)
    }
}
