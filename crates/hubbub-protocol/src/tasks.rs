//! The live task queue's stream, channel `tasks` (PROTOCOL.md section 8,
//! HTTP_API.md "Tasks").

use serde::{Deserialize, Serialize};

use crate::payload::{event_payloads, some_value};

/// Where a task is. Moves go `pending -> running -> completed | failed`;
/// any other move is refused with `conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Created, not started.
    Pending,
    /// Being worked on.
    Running,
    /// Done.
    Completed,
    /// Given up.
    Failed,
}

/// A task as the HTTP API returns it and every task event carries it, so
/// that a dashboard replaces its row with the event's data as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The task's id.
    pub task_id: String,
    /// What it is, as given at creation.
    pub name: String,
    /// Where it is.
    pub status: TaskStatus,
    /// Share done, 0 to 1.
    pub progress: f64,
    /// The latest status text; absent until one is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Data given at creation; absent until set (a `null` that was set
    /// stays present).
    #[serde(
        default,
        deserialize_with = "some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<serde_json::Value>,
    /// When it was created, ms since the Unix epoch.
    pub created_at: u64,
    /// When it last changed, ms since the Unix epoch.
    pub updated_at: u64,
}

/// `task_created`: a task was added to the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskCreated(pub Task);

/// `task_updated`: a task moved to `running` or its progress or message
/// changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskUpdated(pub Task);

/// `task_completed`: a task reached `completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskCompleted(pub Task);

/// `task_failed`: a task reached `failed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskFailed(pub Task);

/// `queue_status`, every 2 s: the queue's counts, the same object as
/// `GET /api/queue`, so a dashboard keeps its totals without listing tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// All tasks held.
    pub total_tasks: u64,
    /// Tasks `pending`.
    pub pending_tasks: u64,
    /// Tasks `running`.
    pub running_tasks: u64,
    /// Tasks `completed`.
    pub completed_tasks: u64,
    /// Tasks `failed`.
    pub failed_tasks: u64,
}

event_payloads! {
    TaskCreated => "task_created",
    TaskUpdated => "task_updated",
    TaskCompleted => "task_completed",
    TaskFailed => "task_failed",
    QueueStatus => "queue_status",
}

impl Task {
    /// The event that announces this task as it now is: `task_completed` or
    /// `task_failed` for a finished task, `task_updated` otherwise (a new
    /// task is announced with [`TaskCreated`]).
    pub fn change_event_type(&self) -> &'static str {
        use crate::payload::EventPayload;
        match self.status {
            TaskStatus::Completed => TaskCompleted::EVENT_TYPE,
            TaskStatus::Failed => TaskFailed::EVENT_TYPE,
            TaskStatus::Pending | TaskStatus::Running => TaskUpdated::EVENT_TYPE,
        }
    }
}
