//! The tasks held, with the indexes the queue's reads and its retention
//! need: creation order (listing), finish order (dropping the oldest
//! finished first, by count or by age) and a count per status (`GET
//! /api/queue` in O(1)). Plain data under the queue's one lock; nothing
//! here waits.

use std::collections::{BTreeMap, HashMap};

use hubbub_protocol::tasks::{QueueStatus, Task, TaskStatus};

use crate::machine::finished;

/// A task and its place in creation order.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// Creation order, kept across restarts (ids are random).
    pub n: u64,
    pub task: Task,
}

/// The held tasks.
#[derive(Debug, Default)]
pub(crate) struct Store {
    tasks: HashMap<String, Held>,
    /// `n` -> id.
    order: BTreeMap<u64, String>,
    /// (finished at, `n`) -> id, oldest first.
    finished: BTreeMap<(u64, u64), String>,
    counts: [u64; 4],
    /// The next creation number.
    pub next_n: u64,
}

fn slot(s: TaskStatus) -> usize {
    match s {
        TaskStatus::Pending => 0,
        TaskStatus::Running => 1,
        TaskStatus::Completed => 2,
        TaskStatus::Failed => 3,
    }
}

impl Store {
    /// Tasks held.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// The task `id`.
    pub fn get(&self, id: &str) -> Option<&Held> {
        self.tasks.get(id)
    }

    /// Adds or replaces a task (a new one, a changed one, or one read back
    /// from the log).
    pub fn put(&mut self, held: Held) {
        self.remove(&held.task.task_id);
        let id = held.task.task_id.clone();
        self.counts[slot(held.task.status)] += 1;
        self.order.insert(held.n, id.clone());
        if finished(held.task.status) {
            self.finished
                .insert((held.task.updated_at, held.n), id.clone());
        }
        self.next_n = self.next_n.max(held.n + 1);
        self.tasks.insert(id, held);
    }

    /// Drops a task; returns whether it was held.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(old) = self.tasks.remove(id) else {
            return false;
        };
        self.counts[slot(old.task.status)] -= 1;
        self.order.remove(&old.n);
        self.finished.remove(&(old.task.updated_at, old.n));
        true
    }

    /// Drops the oldest finished task; returns its id.
    pub fn drop_oldest_finished(&mut self) -> Option<String> {
        let (_, id) = self.finished.first_key_value()?;
        let id = id.clone();
        self.remove(&id);
        Some(id)
    }

    /// Drops finished tasks beyond `keep` and those finished before
    /// `cutoff` (ms); returns their ids.
    pub fn prune(&mut self, keep: usize, cutoff: u64) -> Vec<String> {
        let mut gone = Vec::new();
        while let Some((&(at, _), _)) = self.finished.first_key_value() {
            if self.finished.len() <= keep && at >= cutoff {
                break;
            }
            gone.extend(self.drop_oldest_finished());
        }
        gone
    }

    /// The tasks in `status` (all with `None`), oldest first.
    pub fn list(&self, status: Option<TaskStatus>) -> Vec<Task> {
        self.order
            .values()
            .filter_map(|id| self.tasks.get(id))
            .filter(|h| status.is_none_or(|s| h.task.status == s))
            .map(|h| h.task.clone())
            .collect()
    }

    /// Every task with its creation number, for a snapshot of the log.
    pub fn all(&self) -> Vec<Held> {
        self.order
            .values()
            .filter_map(|id| self.tasks.get(id))
            .cloned()
            .collect()
    }

    /// The counts `GET /api/queue` and `queue_status` carry.
    pub fn queue(&self) -> QueueStatus {
        let c = self.counts;
        QueueStatus {
            total_tasks: self.tasks.len() as u64,
            pending_tasks: c[0],
            running_tasks: c[1],
            completed_tasks: c[2],
            failed_tasks: c[3],
        }
    }
}
