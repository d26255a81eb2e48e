//! [`Tasks`]: the queue an embedding application (or the HTTP API) drives.
//! A change is checked, made under the queue's one lock and handed, in
//! that order, to the publisher (module `publisher`), which saves and
//! announces it before the call returns.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::tasks::{QueueStatus, Task, TaskStatus};
use hubbub_protocol::JsonData;
use hubbub_server::config::EngineKind;
use hubbub_server::{now_ms, Node};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::config::TasksConfig;
use crate::log::Log;
use crate::machine::{self, TaskError, TaskPatch};
use crate::publisher::{self, Change, State};
use crate::store::Held;

/// How often finished tasks past `keep_finished_s` are looked for: a
/// finished task is dropped at most this long after its time is up.
const SWEEP: Duration = Duration::from_secs(1);

/// The live task queue: create, move and read tasks; every change is
/// published on `tasks` and, with a `data_dir`, saved. Cheap to clone.
#[derive(Clone)]
pub struct Tasks {
    inner: Arc<Inner>,
}

struct Inner {
    node: Node,
    config: TasksConfig,
    state: Arc<Mutex<State>>,
    tx: mpsc::Sender<Change>,
    /// The node is one of a cluster: it cannot see subscribers elsewhere.
    cluster: bool,
}

fn stopped() -> TaskError {
    TaskError::Unavailable("the task queue has stopped (the hub is shutting down)".into())
}

/// A task id: 16 hex digits, random.
fn new_task_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Tasks {
    /// The queue on `node`, its list read back from `config.data_dir` when
    /// set; starts its publisher and timer (call within a Tokio runtime).
    /// An unreadable or damaged log is an error naming the file and line.
    pub fn open(node: &Node, config: TasksConfig) -> Result<Tasks, String> {
        config.check()?;
        let mut state = State::default();
        let log = if config.data_dir.is_empty() {
            None
        } else {
            let (mut log, held) = Log::open(Path::new(&config.data_dir), config.fsync)?;
            for h in held {
                state.store.put(h);
            }
            // Retention as if the hub had never stopped, then a clean log
            // (a torn last line must not stay in front of new records).
            state
                .store
                .prune(config.keep_finished, cutoff(&config, now_ms()));
            log.rewrite(&state.store.all())
                .map_err(|e| format!("{}: {e}", config.data_dir))?;
            tracing::info!(
                tasks = state.store.len(),
                dir = %config.data_dir,
                "task list read back"
            );
            Some(log)
        };
        let state = Arc::new(Mutex::new(state));
        let (tx, rx) = mpsc::channel(publisher::QUEUE);
        tokio::spawn(publisher::run(
            node.clone(),
            config.retention(),
            state.clone(),
            log,
            rx,
        ));
        let tasks = Tasks {
            inner: Arc::new(Inner {
                node: node.clone(),
                cluster: node.config().engine.kind != EngineKind::Memory,
                config,
                state,
                tx,
            }),
        };
        tokio::spawn(tasks.clone().timer());
        Ok(tasks)
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &TasksConfig {
        &self.inner.config
    }

    /// Adds a `pending` task and publishes `task_created`. `name`: 1 to
    /// [`machine::MAX_NAME_CHARS`] characters, not blank; `data`: any
    /// JSON up to `max_data_bytes`. At `max_tasks` the oldest finished
    /// task makes room; with none, `limit_exceeded`.
    pub async fn create(
        &self,
        name: impl Into<String>,
        data: Option<serde_json::Value>,
    ) -> Result<Task, TaskError> {
        let name = name.into();
        machine::check_name(&name)?;
        let mut task = Task {
            task_id: String::new(),
            name,
            status: TaskStatus::Pending,
            progress: 0.0,
            message: None,
            data,
            created_at: 0,
            updated_at: 0,
        };
        self.check_data(&task)?;
        let permit = self.inner.tx.reserve().await.map_err(|_| stopped())?;
        let (ack, done) = oneshot::channel();
        {
            let mut st = self.inner.state.lock();
            let mut removed = Vec::new();
            if st.store.len() >= self.inner.config.max_tasks {
                match st.store.drop_oldest_finished() {
                    Some(id) => removed.push(id),
                    None => return Err(TaskError::LimitExceeded(self.inner.config.max_tasks)),
                }
            }
            task.task_id = loop {
                let id = new_task_id();
                if st.store.get(&id).is_none() {
                    break id;
                }
            };
            let now = now_ms();
            (task.created_at, task.updated_at) = (now, now);
            let held = Held {
                n: st.store.next_n,
                task: task.clone(),
            };
            st.store.put(held.clone());
            let mut change = Change::new(&mut st);
            change.put = Some(held);
            change.event = Some(machine::created_event());
            change.removed = removed;
            change.ack = Some(ack);
            permit.send(change);
        }
        done.await
            .map_err(|_| stopped())?
            .map_err(TaskError::Unavailable)?;
        Ok(task)
    }

    /// Applies `patch` to task `id` and publishes `task_updated`,
    /// `task_completed` or `task_failed` (nothing when it changes
    /// nothing). Returns the task as it now is.
    pub async fn update(&self, id: &str, patch: TaskPatch) -> Result<Task, TaskError> {
        machine::check_patch(&patch)?;
        let permit = self.inner.tx.reserve().await.map_err(|_| stopped())?;
        let (ack, done) = oneshot::channel();
        let task = {
            let mut st = self.inner.state.lock();
            let held = st
                .store
                .get(id)
                .ok_or_else(|| TaskError::NotFound(id.to_owned()))?;
            let (n, mut task) = (held.n, held.task.clone());
            let now = now_ms();
            let event = machine::apply(&mut task, &patch, now)?;
            let mut change = Change::new(&mut st);
            if let Some(event) = event {
                let held = Held {
                    n,
                    task: task.clone(),
                };
                st.store.put(held.clone());
                change.put = Some(held);
                change.event = Some(event);
                if machine::finished(task.status) {
                    let c = &self.inner.config;
                    change.removed = st.store.prune(c.keep_finished, cutoff(c, now));
                }
            }
            // An unchanged task too waits its turn: its answer must not
            // overtake the events of changes made before it.
            change.ack = Some(ack);
            permit.send(change);
            task
        };
        done.await
            .map_err(|_| stopped())?
            .map_err(TaskError::Unavailable)?;
        Ok(task)
    }

    /// The task `id`.
    pub fn get(&self, id: &str) -> Option<Task> {
        self.inner
            .state
            .lock()
            .store
            .get(id)
            .map(|h| h.task.clone())
    }

    /// The tasks in `status` (all with `None`), oldest first.
    pub fn list(&self, status: Option<TaskStatus>) -> Vec<Task> {
        self.inner.state.lock().store.list(status)
    }

    /// The queue's counts, as `queue_status` carries them.
    pub fn queue(&self) -> QueueStatus {
        self.inner.state.lock().store.queue()
    }

    /// Refuses data over `max_data_bytes` or nested deeper than an event
    /// may be, before anything changes.
    fn check_data(&self, task: &Task) -> Result<(), TaskError> {
        let Some(data) = &task.data else {
            return Ok(());
        };
        let text = serde_json::to_string(data).map_err(|e| TaskError::BadRequest(e.to_string()))?;
        let max = self.inner.config.max_data_bytes;
        if text.len() > max {
            return Err(TaskError::BadRequest(format!(
                "data must be at most {max} bytes of JSON"
            )));
        }
        JsonData::from_serialize(task)
            .check()
            .map_err(|e| TaskError::BadRequest(format!("data: {e}")))
    }

    /// `queue_status` every interval while anyone listens, and finished
    /// tasks past their age dropped, until the node closes.
    async fn timer(self) {
        let closed = self.inner.node.closed();
        tokio::pin!(closed);
        let every = Duration::from_millis(self.inner.config.queue_status_interval_ms);
        let mut status = tokio::time::interval(every);
        let mut sweep = tokio::time::interval(SWEEP);
        status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = &mut closed => break,
                _ = status.tick() => self.queue_tick(),
                _ = sweep.tick() => self.sweep(),
            }
        }
    }

    /// Whether `queue_status` goes out now: while this node has a
    /// subscriber of `tasks`; on a cluster engine always, since
    /// subscribers on other nodes are not seen from here (one small
    /// event per interval).
    fn listened(&self) -> bool {
        self.inner.cluster
            || self
                .inner
                .node
                .subscriber_count(hubbub_server::TASKS_CHANNEL)
                > 0
    }

    fn queue_tick(&self) {
        if !self.listened() {
            return;
        }
        // A full queue skips this tick: the next one carries newer counts.
        let Ok(permit) = self.inner.tx.try_reserve() else {
            return;
        };
        let mut st = self.inner.state.lock();
        let mut change = Change::new(&mut st);
        change.queue = Some(st.store.queue());
        permit.send(change);
    }

    fn sweep(&self) {
        let Ok(permit) = self.inner.tx.try_reserve() else {
            return;
        };
        let c = &self.inner.config;
        let mut st = self.inner.state.lock();
        let removed = st.store.prune(c.keep_finished, cutoff(c, now_ms()));
        if removed.is_empty() {
            return;
        }
        let mut change = Change::new(&mut st);
        change.removed = removed;
        permit.send(change);
    }
}

/// Finished before this (ms) is too old to keep.
fn cutoff(c: &TasksConfig, now: u64) -> u64 {
    now.saturating_sub(c.keep_finished_s.saturating_mul(1_000))
}
