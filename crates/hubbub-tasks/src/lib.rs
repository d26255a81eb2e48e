//! A live task queue (HTTP_API.md "Tasks", PROTOCOL.md section 8;
//! docs/tasks.md), an application on the hub's public library API: the
//! hub's core knows nothing of tasks.
//!
//! - [`Tasks`]: create tasks, move them `pending -> running -> completed
//!   | failed`, set their progress and message, list and count them. Every
//!   change publishes its event on `tasks` (`task_created`,
//!   `task_updated`, `task_completed`, `task_failed`, the task object as
//!   `data`) in the order the changes were made, and `queue_status` goes
//!   out every interval while anyone listens.
//! - [`machine`]: the checks and the state machine, as pure functions.
//! - Retention: finished tasks are kept up to `keep_finished` and
//!   `keep_finished_s`; at most `max_tasks` are held.
//! - Persistence: with `data_dir`, the list is kept in an append-only log
//!   and read back at start (module `log`).
//! - [`install`]: the wiring into a node, `/api/tasks` and `/api/queue`
//!   ([`hubbub_server::Node::extend_api`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = hubbub_server::Node::new(hubbub_server::Config::default())?;
//! let config = hubbub_tasks::TasksConfig::from_config(node.config())?;
//! let tasks = hubbub_tasks::install(&node, config)?.expect("enabled");
//! let t = tasks.create("resize images", None).await?;
//! # let _ = t;
//! node.serve(std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod config;
mod http;
mod log;
pub mod machine;
mod publisher;
mod store;
mod tasks;

pub use config::TasksConfig;
pub use hubbub_protocol::tasks::{QueueStatus, Task, TaskStatus};
pub use machine::{TaskError, TaskPatch};
pub use tasks::Tasks;

use hubbub_server::Node;

/// Offers the task queue on `node` (call within a Tokio runtime, before
/// it serves) and returns it, for an application that also drives tasks
/// itself. `None` when `enabled = false`. An error (a damaged task log,
/// a data directory that cannot be written) names what is wrong, for the
/// binary to exit with.
pub fn install(node: &Node, config: TasksConfig) -> Result<Option<Tasks>, String> {
    if !config.enabled {
        return Ok(None);
    }
    let tasks = Tasks::open(node, config)?;
    node.extend_api(http::extension(tasks.clone()));
    Ok(Some(tasks))
}
