//! The hub's built-in streams (PROTOCOL.md section 8), but for `tasks`
//! ([`crate::tasks`]).
//!
//! The spec names what each event tells (cpu, memory, ...) but not its
//! fields; the shapes here are this crate's choice, written down once so the
//! hub, the dashboard and the clients read the same names. Node-scoped
//! events carry the `node_id` of the hub node they describe (as
//! `GET /api/stats` names it), so a cluster's streams stay apart. Quantities
//! carry their unit in the name (`_percent`, `_bytes`, `_ms`, `_seconds`).

use serde::{Deserialize, Serialize};

use crate::payload::event_payloads;

/// `system_metrics` on `metrics`, every 5 s: one node's load at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemMetrics {
    /// The hub node measured.
    pub node_id: String,
    /// CPU used by the hub process, percent of one core (above 100 when it
    /// uses several).
    pub cpu_percent: f64,
    /// Resident memory of the hub process.
    pub memory_bytes: u64,
    /// Events published per second, over the last interval.
    pub events_per_second: f64,
    /// Open WebSocket connections.
    pub connections: u64,
    /// Messages sent and received per second, over the last interval.
    pub messages_per_second: f64,
    /// Median publish latency (from accepting a publication to having it
    /// queued for every local subscriber) over the node's last load
    /// window, ms; absent when nothing was published in it. A dashboard
    /// charts it without asking the metrics store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile of the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
}

/// `node_status_update` on `nodes`, every 5 s, one per hub node: which nodes
/// are up and how they are doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatusUpdate {
    /// The node.
    pub node_id: String,
    /// Where it listens (`host:port`).
    pub address: String,
    /// Its open WebSocket connections.
    pub connections: u64,
    /// Time since it started.
    pub uptime_seconds: u64,
    /// Round-trip time from the reporting node to this one; absent for the
    /// reporting node itself and for a peer not yet measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// How urgent an alert is. The spec names only `high` (an anomaly beyond
/// 3.5 sigma, HTTP_API.md); `low` and `medium` complete the scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Worth acting on.
    Medium,
    /// Act now.
    High,
}

/// `alert` on `alerts`, sent at once: a metric entered its alerting state
/// (not again while it stays there). Tagged by `type` inside `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Alert {
    /// The value went strictly above the rule's `above` or below its `below`.
    ThresholdExceeded {
        /// The metric.
        metric: String,
        /// The value that crossed.
        value: f64,
        /// The bound it crossed (`above` or `below` of the rule).
        threshold: f64,
        /// How urgent.
        severity: Severity,
    },
    /// The value lies further from the window's mean than the rule allows.
    AnomalyDetected {
        /// The metric.
        metric: String,
        /// The unusual value.
        value: f64,
        /// The value's own z-score (signed: below the mean is negative),
        /// not the rule's limit.
        z_score: f64,
        /// How urgent.
        severity: Severity,
    },
}

/// `resource_update` on `resources`, every 15 s, one per hub node: what a
/// node uses, for capacity planning and spotting a leak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUpdate {
    /// The node.
    pub node_id: String,
    /// CPU used by the hub process, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory of the hub process.
    pub memory_bytes: u64,
    /// Open file descriptors (sockets included).
    pub open_fds: u64,
    /// Bytes waiting in connections' outbound queues.
    pub queue_bytes: u64,
}

/// A hub node in [`TopologyUpdate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyNode {
    /// The node.
    pub node_id: String,
    /// Where it listens (`host:port`).
    pub address: String,
}

/// A link between two hub nodes in [`TopologyUpdate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyLink {
    /// One end (`node_id`).
    pub from: String,
    /// The other end (`node_id`).
    pub to: String,
    /// Round-trip time over the link; absent until measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

/// `topology_update` on `topology`, on change: the whole cluster as it now
/// is (not a diff), so a late subscriber needs only the newest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyUpdate {
    /// Every node.
    pub nodes: Vec<TopologyNode>,
    /// Every link between them.
    pub links: Vec<TopologyLink>,
}

/// `connection_opened` on `connections` (admin only): a WebSocket
/// connection was accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionOpened {
    /// The connection.
    pub connection_id: String,
    /// Its user; null when anonymous.
    pub user_id: Option<String>,
    /// `json` or `msgpack`.
    pub encoding: String,
    /// The peer's address (`ip:port`); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
}

/// `connection_closed` on `connections` (admin only): a connection ended,
/// with the close code it ended on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionClosed {
    /// The connection.
    pub connection_id: String,
    /// Its user; null when anonymous.
    pub user_id: Option<String>,
    /// WebSocket close code (section 9).
    pub code: u16,
    /// Short reason (`slow_consumer`, `heartbeat_timeout`, ...).
    pub reason: String,
    /// How long it was open.
    pub duration_ms: u64,
}

/// A hub node's state as `status_change` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HubStatus {
    /// Starting up, not yet accepting connections.
    Starting,
    /// Serving (`/readyz` answers 200).
    Ready,
    /// Serving with something it depends on down.
    Degraded,
    /// Shutting down: refusing new connections, closing with 1001.
    Draining,
}

/// `status_change` on `status`, on change: a node's state moved, so that
/// monitors see a drain or a degradation as it happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The node.
    pub node_id: String,
    /// The state before; absent for a node's first report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<HubStatus>,
    /// The state now.
    pub status: HubStatus,
    /// Why, as text for people; absent when there is nothing to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Level of a streamed log line: the stream carries warnings and errors only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

/// `log` on `logs` (admin only), on change: the hub's warnings and errors,
/// so an operator can watch them without shell access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Log {
    /// The node that logged it.
    pub node_id: String,
    /// `warn` or `error`.
    pub level: LogLevel,
    /// The part of the hub that logged it (the log target, a module path).
    pub target: String,
    /// The line.
    pub message: String,
}

event_payloads! {
    SystemMetrics => "system_metrics",
    NodeStatusUpdate => "node_status_update",
    Alert => "alert",
    ResourceUpdate => "resource_update",
    TopologyUpdate => "topology_update",
    ConnectionOpened => "connection_opened",
    ConnectionClosed => "connection_closed",
    StatusChange => "status_change",
    Log => "log",
}
