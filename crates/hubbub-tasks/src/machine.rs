//! What a change to a task may be: the checks of a new task and of a
//! patch (HTTP_API.md "Tasks": 400 `bad_request`), and the status moves
//! `pending -> running -> completed | failed` (anything else: 409
//! `conflict`). Pure functions, so the rules are read (and tested) apart
//! from locking, logging and publishing.

use hubbub_protocol::tasks::{Task, TaskStatus};
use hubbub_protocol::EventPayload;
use serde::Deserialize;

/// A task's name at most, in characters: a label for a dashboard row.
pub const MAX_NAME_CHARS: usize = 200;
/// A task's `message` at most, in characters: a status line, not a log.
pub const MAX_MESSAGE_CHARS: usize = 1_000;

/// Why a change was refused; each maps to one error code of PROTOCOL.md
/// section 9.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// The input is not acceptable (`bad_request`, 400).
    #[error("{0}")]
    BadRequest(String),
    /// No task has that id (`not_found`, 404).
    #[error("no task {0}")]
    NotFound(String),
    /// The move is not allowed from where the task is (`conflict`, 409).
    #[error("{0}")]
    Conflict(String),
    /// The queue holds `max_tasks` unfinished tasks (`limit_exceeded`,
    /// 429).
    #[error("the queue holds its maximum of {0} unfinished tasks")]
    LimitExceeded(usize),
    /// The change took effect but could not be saved, or the queue has
    /// stopped (`unavailable`, 503).
    #[error("{0}")]
    Unavailable(String),
}

/// A change to a task: the body of `PATCH /api/tasks/{id}`. Absent fields
/// leave the task as it is; `null` is refused like any other wrong type
/// (the OpenAPI schema says so, and "clear the message" is no operation
/// the spec has).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// The status to move to; the current one is no move.
    #[serde(default, deserialize_with = "not_null")]
    pub status: Option<TaskStatus>,
    /// The share done, 0 to 1.
    #[serde(default, deserialize_with = "not_null")]
    pub progress: Option<f64>,
    /// A status line, replacing the previous one.
    #[serde(default, deserialize_with = "not_null")]
    pub message: Option<String>,
}

/// A field that, when present, must be a `T` (not `null`).
fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// Checks a new task's name: not blank, at most [`MAX_NAME_CHARS`].
pub fn check_name(name: &str) -> Result<(), TaskError> {
    if name.trim().is_empty() {
        return Err(TaskError::BadRequest("name must not be empty".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(TaskError::BadRequest(format!(
            "name must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

/// Checks a patch's values, whatever the task's state.
pub fn check_patch(patch: &TaskPatch) -> Result<(), TaskError> {
    if let Some(p) = patch.progress {
        // NaN fails both comparisons, so it is refused here too.
        if !(0.0..=1.0).contains(&p) {
            return Err(TaskError::BadRequest(format!(
                "progress must be a number from 0 to 1, not {p}"
            )));
        }
    }
    if let Some(m) = &patch.message {
        if m.chars().count() > MAX_MESSAGE_CHARS {
            return Err(TaskError::BadRequest(format!(
                "message must be at most {MAX_MESSAGE_CHARS} characters"
            )));
        }
    }
    Ok(())
}

/// Whether a task in `status` is done with: it takes no more changes.
pub fn finished(status: TaskStatus) -> bool {
    matches!(status, TaskStatus::Completed | TaskStatus::Failed)
}

/// Whether `from -> to` is a move the spec allows (`from == to` is no
/// move, and not asked here).
pub fn may_move(from: TaskStatus, to: TaskStatus) -> bool {
    use TaskStatus::*;
    matches!(
        (from, to),
        (Pending, Running) | (Running, Completed) | (Running, Failed)
    )
}

/// Applies a checked patch to `task` at `now` (ms). Returns the event
/// that announces the change (`task_updated`, `task_completed` or
/// `task_failed`), or `None` when the patch changes nothing (the same
/// status, progress and message: an idempotent retry). A finished task
/// takes no change at all (409), since its final event has gone out; a
/// refused patch leaves the task untouched.
pub fn apply(
    task: &mut Task,
    patch: &TaskPatch,
    now: u64,
) -> Result<Option<&'static str>, TaskError> {
    let to = patch.status.unwrap_or(task.status);
    let moved = to != task.status;
    if moved && !may_move(task.status, to) {
        return Err(TaskError::Conflict(format!(
            "a task cannot move from {} to {} (pending -> running -> completed | failed)",
            name(task.status),
            name(to)
        )));
    }
    let progress = patch.progress.filter(|p| *p != task.progress);
    let message = patch
        .message
        .as_ref()
        .filter(|m| task.message.as_ref() != Some(*m));
    if !moved && progress.is_none() && message.is_none() {
        return Ok(None);
    }
    if finished(task.status) {
        return Err(TaskError::Conflict(format!(
            "the task is {}: it takes no more changes",
            name(task.status)
        )));
    }
    task.status = to;
    if let Some(p) = progress {
        task.progress = p;
    }
    if let Some(m) = message {
        task.message = Some(m.clone());
    }
    task.updated_at = now.max(task.updated_at);
    Ok(Some(task.change_event_type()))
}

/// The wire name of a status.
pub fn name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "pending",
        TaskStatus::Running => "running",
        TaskStatus::Completed => "completed",
        TaskStatus::Failed => "failed",
    }
}

/// The `task_created` event type.
pub(crate) fn created_event() -> &'static str {
    hubbub_protocol::tasks::TaskCreated::EVENT_TYPE
}

/// Parses a status as the query `?status=` names it.
pub fn parse_status(s: &str) -> Option<TaskStatus> {
    Some(match s {
        "pending" => TaskStatus::Pending,
        "running" => TaskStatus::Running,
        "completed" => TaskStatus::Completed,
        "failed" => TaskStatus::Failed,
        _ => return None,
    })
}
