//! `[apps.algorithms]`: the limits and pace of graph-algorithm jobs
//! (docs/algorithms.md), set like any other key (`--set
//! apps.algorithms.max_running=8`).

use serde::{Deserialize, Serialize};

/// How many jobs, how large, how long, and how long they are remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Whether `algorithm_start` and `POST /api/algorithms` are offered.
    pub enabled: bool,
    /// Most nodes in a job's graph.
    pub max_nodes: usize,
    /// Most edges in a job's graph (each undirected edge once).
    pub max_edges: usize,
    /// Threads that run jobs; 0: one per core. Jobs beyond them wait.
    pub workers: usize,
    /// Niceness of those threads (Linux), 0 to 19: at 19 a job gets a
    /// small share of a core the hub also wants, and all of one it does
    /// not. (The idle scheduling class was tried and rejected: a job
    /// preempted while holding a lock the hub then waits for stretched the
    /// fan-out's tail to 100 ms; docs/algorithms.md.)
    pub nice: i32,
    /// Jobs admitted at once (running or waiting for a thread), in all.
    pub max_running: usize,
    /// Jobs admitted at once per user (an anonymous connection counts as
    /// a user of its own).
    pub max_running_per_user: usize,
    /// A job's wall-clock limit, ms: past it the job fails.
    pub max_duration_ms: u64,
    /// The longest pause a job may ask for between steps, ms.
    pub max_step_delay_ms: u64,
    /// Stop a job when the connection that started it closes.
    pub stop_on_disconnect: bool,
    /// Finished jobs listed (and their channels' `graph` and terminal
    /// events kept) at most.
    pub keep_finished: usize,
    /// ...and for at most this long, seconds.
    pub keep_finished_s: u64,
    /// Bytes of `graph` events kept in history for late readers, in all;
    /// a graph that would go over is delivered live only.
    pub keep_graph_bytes: usize,
    /// `algorithm_progress` at least this often while a job runs, ms (and
    /// at every 1% of the work).
    pub progress_interval_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            enabled: true,
            max_nodes: 200_000,
            max_edges: 2_000_000,
            workers: 0,
            nice: 19,
            max_running: 8,
            max_running_per_user: 2,
            max_duration_ms: 300_000,
            max_step_delay_ms: 10_000,
            stop_on_disconnect: false,
            keep_finished: 100,
            keep_finished_s: 3_600,
            keep_graph_bytes: 256 << 20,
            progress_interval_ms: 100,
        }
    }
}

impl JobsConfig {
    /// The section from the node's configuration (defaults when absent);
    /// an error names what is wrong, for the binary to exit 2 with.
    pub fn from_config(config: &hubbub_server::Config) -> Result<Self, String> {
        let c: JobsConfig = config.app_section("algorithms")?;
        let positive = [
            ("max_nodes", c.max_nodes as u64),
            ("max_edges", c.max_edges as u64),
            ("max_running", c.max_running as u64),
            ("max_running_per_user", c.max_running_per_user as u64),
            ("max_duration_ms", c.max_duration_ms),
            ("keep_finished_s", c.keep_finished_s),
            ("progress_interval_ms", c.progress_interval_ms),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("apps.algorithms.{k} must be positive"));
        }
        if !(0..=19).contains(&c.nice) {
            return Err("apps.algorithms.nice must be 0 to 19".into());
        }
        Ok(c)
    }

    /// Threads for jobs.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}
