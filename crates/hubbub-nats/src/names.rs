//! Every subject, stream and bucket name the engine uses, in one place, so
//! that two nodes (and the README) agree on them.
//!
//! Channel names may hold characters NATS names cannot (`.` splits subject
//! tokens and is refused in stream names), so a channel is named by a
//! token: the hex of a stable 64-bit FNV-1a hash of its name. The real name
//! travels inside every payload and is checked on the way out, so two
//! channels whose hashes collide never see each other's events (they share
//! a stream, and then offsets of one skip the numbers the other took).
//! Users and nodes are named by the hex of their bytes, which is exact.

/// FNV-1a, 64 bits: stable across processes, platforms and releases, as a
/// cluster's nodes need (unlike `std`'s randomly seeded hasher).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The token naming `channel` in subjects and stream names.
pub(crate) fn channel_token(channel: &str) -> String {
    format!("{:016x}", fnv1a64(channel.as_bytes()))
}

/// Lower-case hex of `s`'s bytes: an exact, subject-safe spelling of a
/// user or node id (both are short).
pub(crate) fn hex(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The inverse of [`hex`]; `None` for anything else.
pub(crate) fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// A fresh epoch: 64 random bits in hex, like the memory engine's, so it
/// also fits in a subject token.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Names under one prefix (`engine.prefix`).
#[derive(Debug, Clone)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Self {
        Names {
            prefix: prefix.to_owned(),
        }
    }

    /// Core subject of a channel's events without history.
    pub(crate) fn live_subject(&self, token: &str) -> String {
        format!("{}.c.{token}", self.prefix)
    }

    /// Core subject of a channel's events when Redis keeps the store
    /// (`nats_store = "redis"`): numbered events travel here too.
    pub(crate) fn relay_subject(&self, token: &str) -> String {
        format!("{}.r.{token}", self.prefix)
    }

    /// The stream keeping a channel's history.
    pub(crate) fn history_stream(&self, token: &str) -> String {
        format!("{}_h_{token}", self.prefix)
    }

    /// Start of every history stream's name, to list them.
    pub(crate) fn history_stream_prefix(&self) -> String {
        format!("{}_h_", self.prefix)
    }

    /// The one subject of a history stream: the epoch is part of it, so a
    /// publisher holding the epoch of a stream that was deleted (and maybe
    /// recreated with another epoch) gets "no stream" instead of numbering
    /// into the new history under the old epoch.
    pub(crate) fn history_subject(&self, token: &str, epoch: &str) -> String {
        format!("{}.h.{token}.{epoch}", self.prefix)
    }

    /// Every history subject of this prefix, to list the streams.
    pub(crate) fn history_filter(&self) -> String {
        format!("{}.h.>", self.prefix)
    }

    /// The channel token out of a history stream's name.
    pub(crate) fn token_of_stream<'a>(&self, stream: &'a str) -> Option<&'a str> {
        stream.strip_prefix(&self.history_stream_prefix())
    }

    /// Key-value bucket of presence entries.
    pub(crate) fn presence_bucket(&self) -> String {
        format!("{}_presence", self.prefix)
    }

    /// Key-value bucket of room settings (key: the token of the room's
    /// channel, the same token that names its presence entries).
    pub(crate) fn rooms_bucket(&self) -> String {
        format!("{}_rooms", self.prefix)
    }

    /// Key-value bucket of the node registry.
    pub(crate) fn nodes_bucket(&self) -> String {
        format!("{}_nodes", self.prefix)
    }

    /// The stream of user records and queued user events.
    pub(crate) fn users_stream(&self) -> String {
        format!("{}_users", self.prefix)
    }

    /// The subjects of [`Names::users_stream`].
    pub(crate) fn users_subjects(&self) -> String {
        format!("{}.u.*", self.prefix)
    }

    /// One user's subject: its record and its queued events, in one order.
    pub(crate) fn user_subject(&self, user: &str) -> String {
        format!("{}.u.{}", self.prefix, hex(user))
    }

    /// A node's inbox, where other nodes hand it events for its users.
    pub(crate) fn inbox(&self, node: &str) -> String {
        format!("{}.node.{}", self.prefix, hex(node))
    }
}

/// The stream behind key-value bucket `bucket` (the `nats kv` convention,
/// so the CLI can inspect it).
pub(crate) fn kv_stream(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// The subject of `key` in key-value bucket `bucket`.
pub(crate) fn kv_subject(bucket: &str, key: &str) -> String {
    format!("$KV.{bucket}.{key}")
}

/// Whether `prefix` can start NATS names: what the configuration allows.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_the_published_function() {
        // Test vectors of FNV-1a 64 (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(channel_token("a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(hex("ann:1@x"), "616e6e3a314078");
        assert_eq!(unhex(&hex("ann:1@x")).as_deref(), Some("ann:1@x"));
        assert_eq!(unhex("6"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn names_are_prefixed_and_parse_back() {
        let n = Names::new("hb");
        let t = channel_token("room:lobby.1");
        assert_eq!(n.token_of_stream(&n.history_stream(&t)), Some(t.as_str()));
        assert!(n.history_subject(&t, "e1").starts_with("hb.h."));
        assert_eq!(n.user_subject("u"), "hb.u.75");
        assert_eq!(n.rooms_bucket(), "hb_rooms");
        assert!(valid_prefix("a-b_c1"));
        assert!(!valid_prefix("a.b"));
        assert!(!valid_prefix(""));
    }
}
