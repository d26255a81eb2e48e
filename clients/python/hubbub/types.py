"""Payload types of PROTOCOL.md sections 6-8, and the client's own records.

Payloads are ``TypedDict``s: an event's ``data`` arrives as a plain dict and a
TypedDict types it without copying. Field names follow the hub's serde types
(crates/hubbub-protocol) exactly. Records the client builds itself (events,
replies, gaps) are frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

# ---------------------------------------------------------------- section 6


class PresenceEntry(TypedDict):
    """One connection present in a room or presence-enabled channel."""

    user_id: Optional[str]
    connection_id: str
    info: Dict[str, Any]
    joined_at: int


class UserJoined(TypedDict):
    """``user_joined`` on ``room:<room>``."""

    room: str
    user_id: Optional[str]
    connection_id: str
    info: Dict[str, Any]


class UserLeft(TypedDict):
    """``user_left`` on ``room:<room>``."""

    room: str
    user_id: Optional[str]
    connection_id: str
    info: Dict[str, Any]


class RoomDeleted(TypedDict):
    """``room_deleted`` on ``room:<room>``: the room's last event."""

    room: str


# ---------------------------------------------------------------- section 7

NodeId = Union[int, str]


class GraphNode(TypedDict, total=False):
    """A node of a job's ``graph`` event (``x``/``y`` where it has a layout)."""

    id: NodeId
    x: float
    y: float


class Graph(TypedDict):
    """``graph``: the first event of a job."""

    directed: bool
    nodes: List[GraphNode]
    edges: List[List[Any]]


class _AlgorithmProgressBase(TypedDict):
    job_id: str
    progress: float
    current_step: int
    nodes_processed: int
    edges_processed: int


class AlgorithmProgress(_AlgorithmProgressBase, total=False):
    """``algorithm_progress``: how far a job is."""

    intermediate_results: Any


class NodeActivation(TypedDict):
    """``node_activation``: a node the algorithm touched."""

    node_id: NodeId
    activation_level: float
    timestamp: int
    algorithm: str


class EdgeTraversal(TypedDict):
    """``edge_traversal``: an edge the algorithm followed."""

    from_node: NodeId
    to_node: NodeId
    weight: float
    timestamp: int
    algorithm: str


class PathDiscovered(TypedDict):
    """``path_discovered``: a path from source to target."""

    job_id: str
    path: List[NodeId]
    cost: float
    is_optimal: bool


class AlgorithmStatistics(TypedDict, total=False):
    """A job's work counts."""

    nodes_processed: int
    edges_processed: int
    events_emitted: int
    events_coalesced: int
    wall_time_ms: int


class AlgorithmComplete(TypedDict):
    """``algorithm_complete``: the job's answer (``result`` shaped per algorithm)."""

    job_id: str
    result: Dict[str, Any]
    execution_time_ms: int
    statistics: AlgorithmStatistics


class AlgorithmStopped(TypedDict):
    """``algorithm_stopped``: the job was stopped before it finished."""

    job_id: str


class AlgorithmFailed(TypedDict):
    """``algorithm_failed``: the job could not finish."""

    job_id: str
    error: str


# ---------------------------------------------------------------- section 8


class _SystemMetricsBase(TypedDict):
    node_id: str
    cpu_percent: float
    memory_bytes: int
    events_per_second: float
    connections: int
    messages_per_second: float


class SystemMetrics(_SystemMetricsBase, total=False):
    """``system_metrics`` on ``metrics``; the latencies (ms, over the
    node's last load window) are absent when nothing was published."""

    latency_p50_ms: float
    latency_p99_ms: float


class _NodeStatusBase(TypedDict):
    node_id: str
    address: str
    connections: int
    uptime_seconds: int


class NodeStatusUpdate(_NodeStatusBase, total=False):
    """``node_status_update`` on ``nodes``."""

    latency_ms: float


Severity = Literal["low", "medium", "high"]


class ThresholdAlert(TypedDict):
    """``alert`` with ``type: threshold_exceeded``."""

    type: Literal["threshold_exceeded"]
    metric: str
    value: float
    threshold: float
    severity: Severity


class AnomalyAlert(TypedDict):
    """``alert`` with ``type: anomaly_detected``."""

    type: Literal["anomaly_detected"]
    metric: str
    value: float
    z_score: float
    severity: Severity


Alert = Union[ThresholdAlert, AnomalyAlert]


class ResourceUpdate(TypedDict):
    """``resource_update`` on ``resources``."""

    node_id: str
    cpu_percent: float
    memory_bytes: int
    open_fds: int
    queue_bytes: int


class TopologyNode(TypedDict):
    """A hub node in a topology update."""

    node_id: str
    address: str


# ``from`` is a Python keyword, hence the functional form.
TopologyLink = TypedDict(
    "TopologyLink", {"from": str, "to": str, "latency_ms": float}, total=False
)


class TopologyUpdate(TypedDict):
    """``topology_update`` on ``topology``: the whole cluster."""

    nodes: List[TopologyNode]
    links: List[TopologyLink]


class _ConnectionOpenedBase(TypedDict):
    connection_id: str
    user_id: Optional[str]
    encoding: str


class ConnectionOpened(_ConnectionOpenedBase, total=False):
    """``connection_opened`` on ``connections`` (admin only)."""

    remote_addr: str


class ConnectionClosed(TypedDict):
    """``connection_closed`` on ``connections`` (admin only)."""

    connection_id: str
    user_id: Optional[str]
    code: int
    reason: str
    duration_ms: int


HubStatus = Literal["starting", "ready", "degraded", "draining"]


class _StatusChangeBase(TypedDict):
    node_id: str
    status: HubStatus


class StatusChange(_StatusChangeBase, total=False):
    """``status_change`` on ``status``."""

    previous: HubStatus
    reason: str


class Log(TypedDict):
    """``log`` on ``logs`` (admin only)."""

    node_id: str
    level: Literal["warn", "error"]
    target: str
    message: str


TaskStatus = Literal["pending", "running", "completed", "failed"]


class _TaskBase(TypedDict):
    task_id: str
    name: str
    status: TaskStatus
    progress: float
    created_at: int
    updated_at: int


class Task(_TaskBase, total=False):
    """A task: the data of ``task_created/updated/completed/failed``."""

    message: str
    data: Any


class QueueStatus(TypedDict):
    """``queue_status`` on ``tasks``."""

    total_tasks: int
    pending_tasks: int
    running_tasks: int
    completed_tasks: int
    failed_tasks: int


#: The payload type of each known ``event_type`` (for ``Event.data`` casts).
EVENT_PAYLOADS: Dict[str, Any] = {
    "user_joined": UserJoined,
    "user_left": UserLeft,
    "room_deleted": RoomDeleted,
    "graph": Graph,
    "algorithm_progress": AlgorithmProgress,
    "node_activation": NodeActivation,
    "edge_traversal": EdgeTraversal,
    "path_discovered": PathDiscovered,
    "algorithm_complete": AlgorithmComplete,
    "algorithm_stopped": AlgorithmStopped,
    "algorithm_failed": AlgorithmFailed,
    "system_metrics": SystemMetrics,
    "node_status_update": NodeStatusUpdate,
    "alert": Alert,
    "resource_update": ResourceUpdate,
    "topology_update": TopologyUpdate,
    "connection_opened": ConnectionOpened,
    "connection_closed": ConnectionClosed,
    "status_change": StatusChange,
    "log": Log,
    "task_created": Task,
    "task_updated": Task,
    "task_completed": Task,
    "task_failed": Task,
    "queue_status": QueueStatus,
}

#: Terminal event types of a graph job.
JOB_TERMINAL = frozenset({"algorithm_complete", "algorithm_stopped", "algorithm_failed"})

# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Publisher:
    """Who published an event, when a client connection did."""

    user_id: Optional[str]
    connection_id: str


@dataclass(frozen=True)
class Event:
    """An ``event``: everything a channel delivers.

    ``data`` is the decoded payload; cast it with the TypedDict of its
    ``event_type`` (``EVENT_PAYLOADS``), e.g. ``cast(SystemMetrics, ev.data)``.
    """

    channel: str
    event_type: str
    data: Any
    message_id: str
    offset: Optional[int] = None
    epoch: Optional[str] = None
    publisher: Optional[Publisher] = None
    timestamp: Optional[int] = None

    @staticmethod
    def from_wire(msg: Dict[str, Any]) -> "Event":
        """Builds an event from a decoded ``event`` message (or history entry)."""
        pub = msg.get("publisher")
        return Event(
            channel=str(msg.get("channel", "")),
            event_type=str(msg.get("event_type", "")),
            data=msg.get("data"),
            message_id=str(msg.get("message_id", "")),
            offset=msg.get("offset"),
            epoch=msg.get("epoch"),
            publisher=(
                Publisher(pub.get("user_id"), str(pub.get("connection_id", "")))
                if isinstance(pub, dict)
                else None
            ),
            timestamp=msg.get("timestamp"),
        )


@dataclass(frozen=True)
class Gap:
    """Events of ``channel`` the client could not deliver and recovery could not fill.

    ``after`` is the last offset delivered (in ``epoch_before``); ``until`` the
    newest offset known lost (``None`` when unknown: the history was lost and
    a new epoch began). ``reason``: ``not_recovered`` (the hub no longer held
    them), ``epoch_changed`` (the history was lost, e.g. a hub restart),
    ``offset_gap`` (a jump seen in the live stream) or ``overflow`` (the
    application did not drain its subscription's bounded buffer).
    """

    channel: str
    reason: str
    after: int
    until: Optional[int]
    epoch_before: Optional[str]
    epoch_after: Optional[str]


@dataclass(frozen=True)
class Recovered:
    """A resubscription caught up: ``missed`` events follow, none lost."""

    channel: str
    missed: int


@dataclass(frozen=True)
class SubscribedChannel:
    """A channel's entry in the ``subscribed`` reply."""

    channel: str
    offset: int
    epoch: str
    recovered: bool
    missed: int


@dataclass(frozen=True)
class Published:
    """Reply to ``publish``: ``offset`` where the channel keeps history."""

    channel: str
    offset: Optional[int]


@dataclass(frozen=True)
class HistoryPage:
    """Reply to ``history``: events in increasing offset order."""

    channel: str
    epoch: str
    offset: int
    events: List[Event]


@dataclass(frozen=True)
class PresenceStats:
    """Reply to ``presence_stats``."""

    channel: str
    num_clients: int
    num_users: int


@dataclass(frozen=True)
class ConnectionInfo:
    """The ``connected`` message of the current connection."""

    connection_id: str
    user_id: Optional[str]
    server_time: int
    heartbeat_interval_ms: int
    max_message_size: int
    encoding: str
    features: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class Disconnected:
    """The connection ended (``disconnected`` and ``closed`` carry it)."""

    code: int
    reason: str
    reconnect: bool


@dataclass(frozen=True)
class Reconnecting:
    """The client waits ``delay`` seconds before attempt number ``attempt``."""

    delay: float
    attempt: int
    code: int
