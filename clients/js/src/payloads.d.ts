// The data of the protocol's events (docs/protocol.md sections 6-8), as the
// hub sends them. Times are integer ms since the Unix epoch.

// Section 6: rooms and presence.
export interface PresenceEntry {
  user_id: string | null;
  connection_id: string;
  info: Record<string, unknown> | null;
  joined_at: number;
}
/** `user_joined` / `user_left` on `room:<room>`. */
export interface RoomMemberEvent {
  room: string;
  user_id: string | null;
  connection_id: string;
  info: Record<string, unknown> | null;
}
export interface RoomDeleted {
  room: string;
}

// Section 7: graph algorithm jobs.
export type NodeId = number | string;
export interface GraphData {
  directed: boolean;
  nodes: { id: NodeId; x?: number; y?: number }[];
  edges: [NodeId, NodeId, number][];
}
export interface AlgorithmProgress {
  job_id: string;
  progress: number;
  current_step: number;
  nodes_processed: number;
  edges_processed: number;
  intermediate_results?: unknown;
}
export interface NodeActivation {
  node_id: NodeId;
  activation_level: number;
  timestamp: number;
  algorithm: string;
}
export interface EdgeTraversal {
  from_node: NodeId;
  to_node: NodeId;
  weight: number;
  timestamp: number;
  algorithm: string;
}
export interface PathDiscovered {
  job_id: string;
  path: NodeId[];
  cost: number;
  is_optimal: boolean;
}
export type AlgorithmResult =
  | { order: NodeId[] }
  | { path: NodeId[] | null; cost: number | null }
  | { ranks: Record<string, number>; iterations: number; converged: boolean }
  | { components: NodeId[][] };
export interface AlgorithmComplete {
  job_id: string;
  result: AlgorithmResult;
  execution_time_ms: number;
  statistics: Record<string, unknown>;
}
export interface AlgorithmStopped {
  job_id: string;
}
export interface AlgorithmFailed {
  job_id: string;
  error: string;
}
export type TerminalEvent = AlgorithmComplete | AlgorithmStopped | AlgorithmFailed;
/** A job's events by `event_type`. */
export interface GraphEventMap {
  graph: GraphData;
  algorithm_progress: AlgorithmProgress;
  node_activation: NodeActivation;
  edge_traversal: EdgeTraversal;
  path_discovered: PathDiscovered;
  algorithm_complete: AlgorithmComplete;
  algorithm_stopped: AlgorithmStopped;
  algorithm_failed: AlgorithmFailed;
}

// Section 8: built-in streams (the hub's own types: hubbub-protocol streams.rs, tasks.rs).
export interface SystemMetrics {
  node_id: string;
  cpu_percent: number;
  memory_bytes: number;
  events_per_second: number;
  connections: number;
  messages_per_second: number;
  /** Publish latency over the node's last load window, ms; absent when nothing was published. */
  latency_p50_ms?: number;
  latency_p99_ms?: number;
}
export interface NodeStatusUpdate {
  node_id: string;
  address: string;
  connections: number;
  uptime_seconds: number;
  latency_ms: number | null;
}
export type TaskState = 'pending' | 'running' | 'completed' | 'failed';
export interface Task {
  task_id: string;
  name: string;
  status: TaskState;
  progress: number;
  message?: string;
  data?: unknown;
  created_at: number;
  updated_at: number;
}
export interface QueueStatus {
  total_tasks: number;
  pending_tasks: number;
  running_tasks: number;
  completed_tasks: number;
  failed_tasks: number;
}
export type Severity = 'low' | 'medium' | 'high';
export type Alert =
  | { type: 'threshold_exceeded'; metric: string; value: number; threshold: number; severity: Severity }
  | { type: 'anomaly_detected'; metric: string; value: number; z_score: number; severity: Severity };
export interface ResourceUpdate {
  node_id: string;
  cpu_percent: number;
  memory_bytes: number;
  open_fds: number;
  queue_bytes: number;
}
export interface TopologyUpdate {
  nodes: { node_id: string; address: string }[];
  links: { from: string; to: string; latency_ms: number | null }[];
}
export interface ConnectionOpened {
  connection_id: string;
  user_id: string | null;
  encoding: string;
  remote_addr: string | null;
}
export interface ConnectionClosed {
  connection_id: string;
  user_id: string | null;
  code: number;
  reason: string;
  duration_ms: number;
}
export type HubStatus = 'starting' | 'ready' | 'degraded' | 'draining';
export interface StatusChange {
  node_id: string;
  previous: HubStatus | null;
  status: HubStatus;
  reason: string | null;
}
export interface Log {
  node_id: string;
  level: 'warn' | 'error';
  target: string;
  message: string;
}
/** Built-in stream events by `event_type`. */
export interface StreamEventMap {
  system_metrics: SystemMetrics;
  node_status_update: NodeStatusUpdate;
  task_created: Task;
  task_updated: Task;
  task_completed: Task;
  task_failed: Task;
  queue_status: QueueStatus;
  alert: Alert;
  resource_update: ResourceUpdate;
  topology_update: TopologyUpdate;
  connection_opened: ConnectionOpened;
  connection_closed: ConnectionClosed;
  status_change: StatusChange;
  log: Log;
}
