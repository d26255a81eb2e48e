//! How a publication travels through Redis: one text line per event,
//! `"<offset> <epoch> <kept at> <timestamp> <event JSON>"`, the same in
//! pub/sub and in history lists, so a script numbers an event by
//! prepending its offset, epoch and the time it kept it (ms, Redis's
//! clock) to what the node sent. Offset `0`, epoch `-` and kept-at `0`
//! mean an event without history. Events for a user carry the user in front:
//! `"<length> <user><timestamp> <event JSON>"`.

use std::sync::Arc;

use hubbub_protocol::EventMessage;
use hubbub_server::engine::{EngineError, Publication};

/// `"<timestamp> <event JSON>"`: a draft as a script receives it.
pub(crate) fn body(p: &Publication) -> Result<Vec<u8>, EngineError> {
    let mut out = format!("{} ", p.timestamp).into_bytes();
    serde_json::to_writer(&mut out, &p.event)
        .map_err(|e| EngineError(format!("cannot encode the event: {e}")))?;
    Ok(out)
}

/// A body published without history.
pub(crate) fn unnumbered(body: &[u8]) -> Vec<u8> {
    let mut out = b"0 - 0 ".to_vec();
    out.extend_from_slice(body);
    out
}

fn split_word(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b' ')?;
    Some((&s[..i], &s[i + 1..]))
}

fn number(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses `"<timestamp> <event JSON>"`.
fn decode_body(s: &[u8]) -> Result<Publication, String> {
    let (ts, json) = split_word(s).ok_or("no timestamp")?;
    let ts = number(ts).ok_or("bad timestamp")?;
    let event: EventMessage =
        serde_json::from_slice(json).map_err(|e| format!("bad event JSON: {e}"))?;
    Ok(Publication::draft(event, ts))
}

/// Parses a numbered (or unnumbered) line back into a publication.
pub(crate) fn decode(msg: &[u8]) -> Result<Publication, String> {
    decode_kept(msg).map(|(p, _)| p)
}

/// As [`decode`], with when the event was kept (ms, Redis's clock).
pub(crate) fn decode_kept(msg: &[u8]) -> Result<(Publication, u64), String> {
    let (off, rest) = split_word(msg).ok_or("no offset")?;
    let (epoch, rest) = split_word(rest).ok_or("no epoch")?;
    let (kept, rest) = split_word(rest).ok_or("no kept-at time")?;
    let kept = number(kept).ok_or("bad kept-at time")?;
    let off = number(off).ok_or("bad offset")?;
    let mut p = decode_body(rest)?;
    if off > 0 {
        let epoch = std::str::from_utf8(epoch).map_err(|_| "bad epoch")?;
        p.event.offset = Some(off);
        p.event.epoch = Some(Arc::from(epoch));
    }
    Ok((p, kept))
}

/// An event for `user`: the user, then the body.
pub(crate) fn for_user(user: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{} {user}", user.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Splits an event for a user into the user and the publication.
pub(crate) fn decode_for_user(msg: &[u8]) -> Result<(String, Publication), String> {
    let (len, rest) = split_word(msg).ok_or("no user length")?;
    let len = number(len).ok_or("bad user length")? as usize;
    if rest.len() < len {
        return Err("short user".into());
    }
    let user = std::str::from_utf8(&rest[..len]).map_err(|_| "bad user")?;
    Ok((user.to_owned(), decode_body(&rest[len..])?))
}

/// Splits a queued line into when it was queued and the event for a user.
pub(crate) fn split_queued(line: &[u8]) -> Option<(u64, &[u8])> {
    let (t, rest) = split_word(line)?;
    Some((number(t)?, rest))
}

/// A new epoch name: random, so a history that Redis lost is never
/// mistaken for the one it replaces.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_protocol::JsonData;

    fn draft() -> Publication {
        Publication::draft(
            EventMessage {
                channel: "chat:x".into(),
                event_type: "msg".into(),
                data: JsonData::from_json(r#"{"a":[1,2," x "]}"#).unwrap(),
                message_id: "m1".into(),
                offset: None,
                epoch: None,
                publisher: None,
            },
            1234,
        )
    }

    #[test]
    fn numbered_and_unnumbered_lines_round_trip() {
        let b = body(&draft()).unwrap();
        let p = decode(&unnumbered(&b)).unwrap();
        assert_eq!((p.event.offset, p.timestamp), (None, 1234));
        let mut line = b"7 abc 99 ".to_vec();
        line.extend_from_slice(&b);
        let p = decode(&line).unwrap();
        assert_eq!(p.event.offset, Some(7));
        assert_eq!(p.event.epoch.as_deref(), Some("abc"));
        assert_eq!(p.event.data.get(), r#"{"a":[1,2," x "]}"#);
        assert!(decode(b"x").is_err());
        assert!(decode(b"1 e 5 notanumber {}").is_err());
        assert_eq!(decode_kept(&line).unwrap().1, 99);
    }

    #[test]
    fn user_lines_round_trip() {
        let b = body(&draft()).unwrap();
        let m = for_user("ann bob", &b);
        let (u, p) = decode_for_user(&m).unwrap();
        assert_eq!((u.as_str(), p.event.message_id.as_str()), ("ann bob", "m1"));
        let mut queued = b"77 ".to_vec();
        queued.extend_from_slice(&m);
        assert_eq!(split_queued(&queued), Some((77, &m[..])));
        assert!(decode_for_user(b"99 a").is_err());
    }
}
