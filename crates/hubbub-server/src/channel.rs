//! What a channel name is, decided once: a user's own channel, a room, a
//! built-in stream, or a plain channel, with its namespace's options. The
//! rules that depend on it (who may subscribe or publish, whether presence
//! is kept) read this instead of checking prefixes each on its own.

use crate::config::{Config, NamespaceOptions};

/// Channels the hub publishes itself; clients never publish there.
pub(crate) const BUILTIN_STREAMS: [&str; 9] = [
    "metrics",
    "nodes",
    "tasks",
    "alerts",
    "resources",
    "topology",
    "connections",
    "status",
    "logs",
];

/// The built-in streams only admins may subscribe to.
pub(crate) const ADMIN_STREAMS: [&str; 2] = ["connections", "logs"];

/// What kind of channel a name is (PROTOCOL.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind<'a> {
    /// `user:<user_id>`: only that user may subscribe; only the hub publishes.
    User(&'a str),
    /// `room:<room>`: members join it; presence is always kept.
    Room(&'a str),
    /// A built-in stream; `admin` for those only admins may read.
    Stream {
        /// Only admins may subscribe.
        admin: bool,
    },
    /// Everything else.
    Plain,
}

/// A channel's kind and its namespace's options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Class<'a> {
    pub kind: Kind<'a>,
    pub ns: &'a NamespaceOptions,
}

impl Class<'_> {
    /// Whether presence is kept: every room, and channels whose namespace
    /// says `presence = true`.
    pub fn presence(&self) -> bool {
        self.ns.presence || matches!(self.kind, Kind::Room(_))
    }

    /// Whether only the hub (and the HTTP API) publish here.
    pub fn hub_only(&self) -> bool {
        matches!(self.kind, Kind::User(_) | Kind::Stream { .. })
    }
}

/// Classifies `channel` (a name already checked against the grammar).
pub(crate) fn classify<'a>(config: &'a Config, channel: &'a str) -> Class<'a> {
    let kind = if let Some(user) = channel.strip_prefix("user:") {
        Kind::User(user)
    } else if let Some(room) = channel.strip_prefix("room:") {
        Kind::Room(room)
    } else if BUILTIN_STREAMS.contains(&channel) {
        Kind::Stream {
            admin: ADMIN_STREAMS.contains(&channel),
        }
    } else {
        Kind::Plain
    };
    Class {
        kind,
        ns: config.namespace(channel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_told_apart() {
        let c = Config::default();
        assert_eq!(classify(&c, "user:ann").kind, Kind::User("ann"));
        assert_eq!(classify(&c, "room:lobby").kind, Kind::Room("lobby"));
        assert!(classify(&c, "room:lobby").presence());
        assert_eq!(classify(&c, "logs").kind, Kind::Stream { admin: true });
        assert_eq!(classify(&c, "metrics").kind, Kind::Stream { admin: false });
        assert!(classify(&c, "metrics").hub_only() && classify(&c, "user:a").hub_only());
        assert_eq!(classify(&c, "chat:1").kind, Kind::Plain);
        assert!(!classify(&c, "chat:1").presence());
    }
}
