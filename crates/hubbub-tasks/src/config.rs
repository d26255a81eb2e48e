//! `[apps.tasks]`: the task queue's bounds, its `queue_status` pace and
//! where it keeps its list (docs/tasks.md), set like any other key
//! (`--set apps.tasks.max_tasks=50000`).

use serde::{Deserialize, Serialize};

/// How many tasks are held, how long finished ones stay, how often the
/// queue's counts go out, and whether the list outlives the process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TasksConfig {
    /// Whether the queue is offered (`/api/tasks`, `/api/queue`, the
    /// `tasks` events). In a cluster, one node holds the queue: turn it
    /// off on the others (docs/tasks.md).
    pub enabled: bool,
    /// `queue_status` on `tasks` this often, ms, while anyone listens.
    pub queue_status_interval_ms: u64,
    /// Finished (`completed` or `failed`) tasks kept at most; the oldest
    /// finished go first. 0 drops a task as soon as it finishes.
    pub keep_finished: usize,
    /// ...and for at most this long after they finished, seconds.
    pub keep_finished_s: u64,
    /// Tasks held at most, finished ones included. Creating one more drops
    /// the oldest finished task; with none finished it is refused
    /// (`limit_exceeded`): unfinished work is never dropped.
    pub max_tasks: usize,
    /// Task events kept in the `tasks` channel's history, so that a
    /// dashboard that reconnects with `since` recovers what it missed
    /// (older than that, it reloads `GET /api/tasks`); 0 keeps none.
    /// `queue_status` is never kept: the next one supersedes it.
    pub keep_events: usize,
    /// ...each for at most this long, seconds.
    pub keep_events_s: u64,
    /// Bytes of a task's `data` (as JSON text) at most.
    pub max_data_bytes: usize,
    /// Where the task list is kept (`<data_dir>/tasks.log`); empty: in
    /// memory only, lost at exit.
    pub data_dir: String,
    /// With `data_dir`: flush each batch of changes to the disk
    /// (`fdatasync`) before answering them, so an answered change survives
    /// a power loss; without it, it survives a crash of the process only.
    pub fsync: bool,
}

impl Default for TasksConfig {
    fn default() -> Self {
        TasksConfig {
            enabled: true,
            queue_status_interval_ms: 2_000,
            keep_finished: 1_000,
            keep_finished_s: 86_400,
            max_tasks: 10_000,
            keep_events: 1_000,
            keep_events_s: 600,
            max_data_bytes: 8_192,
            data_dir: String::new(),
            fsync: true,
        }
    }
}

impl TasksConfig {
    /// The section from the node's configuration (defaults when absent);
    /// an error names what is wrong, for the binary to exit 2 with.
    pub fn from_config(config: &hubbub_server::Config) -> Result<Self, String> {
        let c: TasksConfig = config.app_section("tasks")?;
        c.check()?;
        Ok(c)
    }

    /// Checks values that cannot work, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("queue_status_interval_ms", self.queue_status_interval_ms),
            ("keep_finished_s", self.keep_finished_s),
            ("max_tasks", self.max_tasks as u64),
            ("max_data_bytes", self.max_data_bytes as u64),
            ("keep_events_s", self.keep_events_s),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("apps.tasks.{k} must be positive"));
        }
        Ok(())
    }

    /// How task events are kept in the `tasks` channel's history.
    pub(crate) fn retention(&self) -> hubbub_server::Retention {
        match self.keep_events {
            0 => hubbub_server::Retention::Transient,
            size => hubbub_server::Retention::Keep {
                size,
                ttl: std::time::Duration::from_secs(self.keep_events_s),
            },
        }
    }
}
