//! Every name the engine uses in Redis, under one prefix, and the stable
//! hash that shards channels and users over several servers.

/// Names of keys and pub/sub channels, all starting with the prefix, so
/// several clusters (or test runs) share one Redis.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The pub/sub channel of hub channel `ch`.
    pub(crate) fn topic(&self, ch: &str) -> String {
        format!("{}.c.{ch}", self.prefix)
    }

    /// The hub channel of pub/sub channel `topic`, when it is one.
    pub(crate) fn channel_of<'a>(&self, topic: &'a str) -> Option<&'a str> {
        topic.strip_prefix(&self.prefix)?.strip_prefix(".c.")
    }

    /// A node's inbox: events for its users' connections.
    pub(crate) fn inbox(&self, node: &str) -> String {
        format!("{}.n.{node}", self.prefix)
    }

    pub(crate) fn inbox_prefix(&self) -> String {
        format!("{}.n.", self.prefix)
    }

    /// A channel's events, oldest first (a list).
    pub(crate) fn history(&self, ch: &str) -> String {
        format!("{}:h:{ch}", self.prefix)
    }

    /// A channel's epoch, newest offset and TTL (a hash).
    pub(crate) fn meta(&self, ch: &str) -> String {
        format!("{}:hm:{ch}", self.prefix)
    }

    pub(crate) fn meta_pattern(&self) -> String {
        format!("{}:hm:*", self.prefix)
    }

    pub(crate) fn channel_of_meta<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix(":hm:")
    }

    /// A channel's presence entries by connection (a hash).
    pub(crate) fn presence(&self, ch: &str) -> String {
        format!("{}:p:{ch}", self.prefix)
    }

    /// When each presence entry expires (a sorted set).
    pub(crate) fn presence_expiry(&self, ch: &str) -> String {
        format!("{}:pe:{ch}", self.prefix)
    }

    /// On which nodes a user has live connections, and how many (a hash).
    pub(crate) fn online(&self, user: &str) -> String {
        format!("{}:uo:{user}", self.prefix)
    }

    /// Events kept for a user with no live connection (a list).
    pub(crate) fn queue(&self, user: &str) -> String {
        format!("{}:uq:{user}", self.prefix)
    }

    /// Set while a node lives (on every shard, so user scripts can check).
    pub(crate) fn alive(&self, node: &str) -> String {
        format!("{}:alive:{node}", self.prefix)
    }

    pub(crate) fn alive_prefix(&self) -> String {
        format!("{}:alive:", self.prefix)
    }

    /// A room's settings: `s` (JSON), `c` (created at, ms), `cap`
    /// (capacity), `j` (`1`: made by joining) (a hash). Its members are
    /// the presence of `room:<room>`, kept on the same server.
    pub(crate) fn room(&self, room: &str) -> String {
        format!("{}:r:{room}", self.prefix)
    }

    pub(crate) fn room_pattern(&self) -> String {
        format!("{}:r:*", self.prefix)
    }

    pub(crate) fn room_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(&self.prefix)?.strip_prefix(":r:")
    }

    /// A node's last announcement (JSON).
    pub(crate) fn node(&self, node: &str) -> String {
        format!("{}:node:{node}", self.prefix)
    }

    /// Every node that announced itself (a sorted set by last time).
    pub(crate) fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
}

/// FNV-1a: the same on every node and every release, unlike the standard
/// library's hasher, so every node finds a channel on the same shard.
pub(crate) fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hash_is_stable() {
        let k = Keys::new("t1");
        assert_eq!(k.channel_of(&k.topic("chat:a.b")), Some("chat:a.b"));
        assert_eq!(k.channel_of(&k.inbox("n1")), None);
        assert_eq!(k.channel_of_meta(&k.meta("x:y")), Some("x:y"));
        assert_eq!(k.room_of(&k.room("lobby")), Some("lobby"));
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
