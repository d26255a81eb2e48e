//! The engine seam: where events go between being accepted and being
//! delivered, and where what outlives a connection is kept.
//!
//! Three narrow traits, in the shape of Centrifuge's `Broker` and
//! `PresenceManager`: async and fallible, so that a networked engine (Redis,
//! NATS) plugs in beside the in-memory one without the hub changing.
//!
//! * [`Broker`]: publishing (numbering the event where its channel keeps
//!   history), the node's interest in a channel, and events for one user.
//!   Whatever a broker accepts comes back to every interested node through
//!   its [`EventSink`], the node's local delivery; the in-memory broker
//!   calls it at once, a networked one from its subscription.
//! * [`HistoryStore`]: reading what a channel kept, for recovery and the
//!   `history` command.
//! * [`PresenceStore`]: who is on a channel.
//! * [`RoomStore`]: which rooms exist and who holds a place in each (the
//!   presence of the room's channel).
//!
//! Every failure is an [`EngineError`], and each has one outcome for the
//! client, the same on every transport (see `docs/architecture.md`,
//! "Engine failures"): a publish, a user send or a presence read that fails
//! answers `unavailable` (HTTP 503); a subscribe whose broker interest or
//! history read fails is rolled back and answers `unavailable`; nothing is
//! reported as delivered that was not accepted.

pub mod conformance;
mod memory;
mod presence;
mod rooms;

use std::sync::Arc;

pub use crate::history::{
    BoxFuture, HeldChannels, HistoryError, HistoryOptions, HistoryRead, HistoryStats, HistoryStore,
    Position,
};
pub use memory::MemoryBroker;
pub use presence::{MemoryPresence, PresenceEntry, PresenceStats, PresenceStore};
pub use rooms::{room_channel, Admission, MemoryRooms, RoomSettings, RoomState, RoomStore};

/// An event on its way to subscribers, as a broker receives it (stamped,
/// not numbered: [`Publication::draft`]) and hands it back (numbered, in an
/// `Arc`).
pub use crate::hub::Publication;

/// Why an engine could not do what was asked. The client is told
/// `unavailable`; the detail goes to the log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("engine: {0}")]
pub struct EngineError(pub String);

impl From<HistoryError> for EngineError {
    fn from(e: HistoryError) -> Self {
        EngineError(e.0)
    }
}

/// A networked store's requests fail as engine errors; `?` makes them the
/// history store's.
impl From<EngineError> for HistoryError {
    fn from(e: EngineError) -> Self {
        HistoryError(e.0)
    }
}

/// What a publish did, for the `published` reply, the HTTP answer and
/// in-process publishers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// The event's offset, where the channel keeps history.
    pub offset: Option<u64>,
    /// The history's epoch, where the channel keeps history.
    pub epoch: Option<Arc<str>>,
    /// Subscribers on this node the event was queued for.
    pub subscribers: usize,
}

/// What happened to an event sent to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendOutcome {
    /// Live connections it was handed to.
    pub connections: usize,
    /// Whether it was queued for the user's next connection instead.
    pub queued: bool,
}

/// A node's local delivery, as a broker sees it: where events come back to.
/// The hub implements it; a broker never knows of connections.
pub trait EventSink: Send + Sync + 'static {
    /// Queues a numbered publication for this node's subscribers of its
    /// channel; returns how many it was queued for. Called in offset order
    /// per channel.
    fn deliver(&self, publication: &Arc<Publication>) -> usize;

    /// Queues an event for `user`'s connections on this node. `None` when
    /// the user has no live connection here (the broker may then keep it
    /// for the user's next connection); otherwise how many took it.
    fn deliver_to_user(&self, user: &str, publication: &Arc<Publication>) -> Option<usize>;

    /// Subscribers of `channel` on this node, for a networked broker's
    /// publish answer (it delivers from its subscription, after `publish`
    /// resolved, so it cannot count what it queued).
    fn subscribers(&self, _channel: &str) -> usize {
        0
    }

    /// The broker may have missed events (its link to the other nodes was
    /// cut and is back): every subscriber on this node must come back
    /// through recovery, where it learns whether it missed anything
    /// (`recovered: false`), instead of silently skipping a gap.
    fn resync(&self) {}

    /// This node's figures, for the node registry a networked broker keeps.
    fn report(&self) -> NodeReport {
        NodeReport::default()
    }
}

/// One node as the cluster sees it (`nodes` of `GET /api/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeReport {
    /// The node's id (`server.node_id`).
    pub node_id: String,
    /// Where clients reach it, when it knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Live WebSocket connections.
    pub connections: usize,
    /// Live subscriptions (connection and channel pairs).
    pub subscriptions: usize,
    /// Seconds since the node started.
    pub uptime_seconds: u64,
}

/// Registers a user's new connection with the node (called by
/// [`Broker::attach_user`] at the moment no event can slip between the
/// registration and the hand-over of what was queued).
pub type Register<'a> = &'a mut (dyn FnMut() + Send);

/// Moving events: publish, channel interest, user sends.
pub trait Broker: Send + Sync + 'static {
    /// Hands the broker the node's local delivery and its id (unique in
    /// the cluster). Called once, before any other method.
    fn start(&self, sink: Arc<dyn EventSink>, node_id: &str);

    /// Whether the broker can do its work now (its server answers). A
    /// node whose broker cannot is not ready (`/readyz` answers 503), so a
    /// load balancer sends clients elsewhere.
    fn health(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Publishes `publication` (stamped, not numbered). With `history`,
    /// the broker numbers it (offset and epoch) and keeps it, then it
    /// reaches every node interested in its channel, in offset order.
    /// Resolves once the event is accepted: numbered, kept, and queued for
    /// this node's subscribers.
    fn publish(
        &self,
        publication: Publication,
        history: Option<HistoryOptions>,
    ) -> BoxFuture<'_, Result<PublishOutcome, EngineError>>;

    /// This node wants `channel`'s events. Called for every subscription a
    /// session makes (the broker counts nothing: a second call for a
    /// channel is free); resolves when events published from now on reach
    /// this node, so a history read after it leaves no gap.
    fn subscribe<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;

    /// This node no longer has subscribers of `channel` (its last one
    /// left). Does not wait: a networked broker queues it in order behind
    /// earlier calls, so an unsubscribe and a later subscribe keep their
    /// order.
    fn unsubscribe(&self, channel: &str);

    /// Sends `publication` to every live connection of `user`, on any node;
    /// with none, keeps it for the user's next connection (bounded per
    /// user, with a TTL).
    fn send_to_user<'a>(
        &'a self,
        user: &'a str,
        publication: Arc<Publication>,
    ) -> BoxFuture<'a, Result<SendOutcome, EngineError>>;

    /// Registers a new connection of `user` through `register` and returns
    /// what was kept for the user, oldest first, to be sent right after
    /// `connected`. An event sent concurrently is either in the returned
    /// list or delivered live, never both, never neither.
    fn attach_user<'a>(
        &'a self,
        user: &'a str,
        register: Register<'a>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Publication>>, EngineError>>;

    /// A connection of `user` that [`Broker::attach_user`] registered has
    /// closed (a networked broker tracks on which nodes a user is live).
    fn detach_user(&self, _user: &str) {}

    /// Every live node of the cluster, as each last announced itself;
    /// empty where the broker keeps no registry (one node: the hub
    /// reports itself).
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeReport>, EngineError>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Events waiting for users, for stats.
    fn queued_for_users(&self) -> usize;

    /// Events for users dropped by overflow or TTL since start, for stats.
    fn dropped_for_users(&self) -> u64;

    /// Housekeeping: drops expired state.
    fn sweep(&self);

    /// Whether a publication a history read already included can still
    /// reach the sink after the read: true for a broker that delivers from
    /// its own subscription, which may lag the read. The hub then keeps,
    /// per subscriber whose sync ended, the offset it was given, and skips
    /// such late copies; a broker that numbers and delivers in one step
    /// says false and spares it that.
    fn delivers_late(&self) -> bool {
        true
    }
}

/// The parts of an engine, chosen once per node.
#[derive(Clone)]
pub struct Engine {
    /// Publishing and channel interest.
    pub broker: Arc<dyn Broker>,
    /// Channel history.
    pub history: Arc<dyn HistoryStore>,
    /// Presence.
    pub presence: Arc<dyn PresenceStore>,
    /// Rooms; their members are entered in [`Engine::presence`].
    pub rooms: Arc<dyn RoomStore>,
}

impl Engine {
    /// The in-memory engine: one node, nothing shared, nothing to run.
    /// History is bounded by `history.memory_budget_bytes`, user queues by
    /// `[users]`.
    pub fn memory(config: &crate::Config) -> Engine {
        let history = Arc::new(crate::history::MemoryHistory::new(
            config.history.memory_budget_bytes,
        ));
        let broker = Arc::new(MemoryBroker::new(
            history.clone(),
            config.users.queue_size,
            std::time::Duration::from_secs(config.users.queue_ttl_s),
        ));
        let presence = Arc::new(MemoryPresence::default());
        Engine {
            broker,
            history,
            rooms: Arc::new(MemoryRooms::new(presence.clone())),
            presence,
        }
    }
}
