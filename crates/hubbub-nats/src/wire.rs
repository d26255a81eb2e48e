//! What goes inside NATS messages: JSON, so that an operator reading a
//! stream with the `nats` CLI sees the events as clients do.
//!
//! A publication travels as the protocol's [`TimedEvent`] (the event with
//! its `timestamp`) without offset or epoch: the offset is the stream
//! sequence and the epoch is in the subject, both stamped on the way out.
//! Decoding never panics; a message that does not decode is logged and
//! skipped by the caller.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hubbub_protocol::TimedEvent;
use hubbub_server::engine::{PresenceEntry, Publication};
use serde::{Deserialize, Serialize};

/// Header naming the user an inbox message is for (hex of the id).
pub(crate) const USER_HEADER: &str = "Hubbub-User";
/// Header naming the channel of a presence entry (its token), so a count
/// read with headers only can skip entries of a colliding channel.
pub(crate) const CHANNEL_HEADER: &str = "Hubbub-Channel";
/// Header of a room member's presence entry: the stream sequence of its
/// first admission, the place it holds in the room's order (see module
/// `rooms`), so a count reads headers only.
pub(crate) const ADMITTED_HEADER: &str = "Hubbub-Admitted";
/// JetStream: append only if the subject's last sequence is this one.
pub(crate) const EXPECTED_LAST_SUBJECT_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
/// Key-value: the operation a message records (`DEL`, `PURGE`).
pub(crate) const KV_OPERATION: &str = "KV-Operation";

/// The publication's event and timestamp, without offset or epoch.
pub(crate) fn encode_publication(p: &Publication) -> Bytes {
    let mut timed = p.timed();
    timed.event.offset = None;
    timed.event.epoch = None;
    Bytes::from(serde_json::to_vec(&timed).unwrap_or_default())
}

/// A publication back from its encoding, numbered with `offset` and
/// `epoch` where it came from a history stream.
pub(crate) fn decode_publication(
    bytes: &[u8],
    number: Option<(u64, Arc<str>)>,
) -> Result<Publication, serde_json::Error> {
    let TimedEvent {
        mut event,
        timestamp,
    } = serde_json::from_slice(bytes)?;
    (event.offset, event.epoch) = match number {
        Some((o, e)) => (Some(o), Some(e)),
        None => (None, None),
    };
    Ok(Publication::draft(event, timestamp))
}

/// Where a user is live and how far its queue was handed over: the state
/// every message on the user's subject carries, so the subject's last
/// message is the whole truth and every change is one compare-and-append
/// (`Nats-Expected-Last-Subject-Sequence`) on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UserState {
    /// Nodes with a live connection of the user, with when they said so
    /// (ms since the Unix epoch).
    #[serde(default)]
    pub live: BTreeMap<String, u64>,
    /// Every queued event up to this stream sequence was handed over.
    #[serde(default)]
    pub drained: u64,
    /// Events queued after `drained` (an upper bound: some may have
    /// expired since).
    #[serde(default)]
    pub queued: u64,
}

/// One message on a user's subject: the state after it, and the event it
/// queues, if it queues one.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    /// The state after this message.
    pub state: UserState,
    /// A queued event (a [`TimedEvent`] as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<serde_json::value::RawValue>>,
    /// When it was written, ms since the Unix epoch (queued events expire
    /// `users.queue_ttl_s` after).
    pub at: u64,
}

impl UserRecord {
    pub(crate) fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// A record queueing `p`.
    pub(crate) fn queueing(state: UserState, p: &Publication, at: u64) -> Self {
        let event = serde_json::value::RawValue::from_string(
            String::from_utf8(encode_publication(p).to_vec()).unwrap_or_default(),
        )
        .ok();
        UserRecord { state, event, at }
    }

    /// The queued event, if this record holds one that decodes.
    pub(crate) fn publication(&self) -> Option<Result<Publication, serde_json::Error>> {
        self.event
            .as_ref()
            .map(|raw| decode_publication(raw.get().as_bytes(), None))
    }
}

/// A presence entry as its bucket keeps it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PresenceValue {
    /// The channel's real name (keys only carry its token).
    pub channel: String,
    /// The entry.
    pub entry: PresenceEntry,
    /// For a room member: the stream sequence of its first admission,
    /// kept on every refresh (also in [`ADMITTED_HEADER`]). Absent on the
    /// first put, whose own revision is that sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted_seq: Option<u64>,
}

/// A node's answer to "deliver this to your connections of user U": how
/// many took it, or `None` when the user has none there.
pub(crate) fn encode_reach(reached: Option<usize>) -> Bytes {
    Bytes::from(serde_json::to_vec(&reached).unwrap_or_default())
}

/// The inverse of [`encode_reach`].
pub(crate) fn decode_reach(bytes: &[u8]) -> Result<Option<usize>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_protocol::{EventMessage, JsonData, Publisher};

    fn publication() -> Publication {
        Publication::draft(
            EventMessage {
                channel: "room:a.b".into(),
                event_type: "msg".into(),
                data: JsonData::from_json(r#"{"x":[1,"two"]}"#).unwrap(),
                message_id: "m1".into(),
                offset: Some(9),
                epoch: Some(Arc::from("old")),
                publisher: Some(Publisher {
                    user_id: Some("ann".into()),
                    connection_id: "n1-1".into(),
                }),
            },
            1234,
        )
    }

    #[test]
    fn publications_round_trip_and_take_their_number_from_the_stream() {
        let bytes = encode_publication(&publication());
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(!text.contains("offset") && !text.contains("old"), "{text}");
        let back = decode_publication(&bytes, Some((3, Arc::from("e")))).unwrap();
        assert_eq!(back.event.channel, "room:a.b");
        assert_eq!(back.event.data.get(), r#"{"x":[1,"two"]}"#);
        assert_eq!(back.event.offset, Some(3));
        assert_eq!(back.event.epoch.as_deref(), Some("e"));
        assert_eq!(back.timestamp, 1234);
        assert_eq!(back.event.publisher, publication().event.publisher);
        let live = decode_publication(&bytes, None).unwrap();
        assert_eq!((live.event.offset, live.event.epoch), (None, None));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(decode_publication(b"", None).is_err());
        assert!(decode_publication(b"{\"type\":\"nope\"}", None).is_err());
        assert!(UserRecord::decode(b"[1]").is_err());
        assert!(decode_reach(b"x").is_err());
    }

    #[test]
    fn presence_values_carry_an_admission_only_for_room_members() {
        let entry = PresenceEntry {
            user_id: None,
            connection_id: "c1".into(),
            info: serde_json::Map::new(),
            joined_at: 1,
        };
        let plain = PresenceValue {
            channel: "news".into(),
            entry: entry.clone(),
            admitted_seq: None,
        };
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("admitted_seq"), "{text}");
        // A value written before rooms existed decodes.
        let back: PresenceValue = serde_json::from_str(&text).unwrap();
        assert_eq!(back.admitted_seq, None);
        let member = PresenceValue {
            channel: "room:r".into(),
            entry,
            admitted_seq: Some(42),
        };
        let back: PresenceValue =
            serde_json::from_slice(&serde_json::to_vec(&member).unwrap()).unwrap();
        assert_eq!(back.admitted_seq, Some(42));
    }

    #[test]
    fn user_records_carry_their_event() {
        let mut state = UserState::default();
        state.live.insert("n1".into(), 5);
        let rec = UserRecord::queueing(state.clone(), &publication(), 77);
        let back = UserRecord::decode(&rec.encode()).unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.at, 77);
        let p = back.publication().unwrap().unwrap();
        assert_eq!(p.event.message_id, "m1");
        assert_eq!(p.event.offset, None);
        assert_eq!(decode_reach(&encode_reach(Some(2))).unwrap(), Some(2));
        assert_eq!(decode_reach(&encode_reach(None)).unwrap(), None);
    }
}
