//! The job runner: admits jobs within their limits, runs each on a thread
//! of a bounded pool (never on the hub's async workers), streams it through
//! a publisher task of its own, and keeps a record of recent jobs.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubbub_protocol::algorithm::{
    job_channel, Algorithm, AlgorithmComplete, AlgorithmFailed, AlgorithmParameters,
    AlgorithmStatistics, AlgorithmStopped, ALL_ALGORITHMS_CHANNEL, NODE_ACTIVATIONS_CHANNEL,
};
use hubbub_protocol::JsonData;
use hubbub_server::rpc::RpcError;
use hubbub_server::{CheckedData, JobCaller, Node, Retention};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::algo::{self, Outcome, Params};
use crate::config::JobsConfig;
use crate::graph::{Graph, Limits};
use crate::stream::{Also, Halt, Out, Pace, Streamer};

/// Events in flight between a job's thread and its publisher task: the
/// thread waits when the hub falls behind, so a job's memory is bounded.
const EVENT_QUEUE: usize = 1024;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Admitted: running, or waiting for a thread.
    Running,
    /// Finished with a result.
    Completed,
    /// Stopped on request (or its starter left).
    Stopped,
    /// Failed: out of time, or an internal error.
    Failed,
}

/// A job as `GET /api/algorithms` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    /// The job.
    pub job_id: String,
    /// Its algorithm.
    pub algorithm: String,
    /// Where it is.
    pub status: Status,
    /// Its counts so far (final once it ended).
    pub statistics: AlgorithmStatistics,
    /// Who started it (`null`: an anonymous connection or the HTTP API).
    pub user_id: Option<String>,
    /// When it was admitted, ms since the Unix epoch.
    pub started_at: u64,
}

struct Record {
    summary: JobSummary,
    /// Whose limit it counts against.
    owner: String,
    connection_id: Option<String>,
    stop: Arc<AtomicBool>,
    ended: Option<Instant>,
}

#[derive(Default)]
struct Table {
    jobs: HashMap<String, Record>,
    /// Job ids, oldest first.
    order: VecDeque<String>,
}

pub(crate) struct Inner {
    pub(crate) node: Node,
    config: JobsConfig,
    pool: crate::pool::Pool,
    /// Where graphs are built: off the async workers and tokio's blocking
    /// pool, at the jobs' priority.
    builder: crate::pool::Pool,
    /// Graphs kept in history: until when, and their size.
    kept: Mutex<VecDeque<(Instant, usize)>>,
    table: Mutex<Table>,
}

/// The graph-algorithm jobs of one node. Cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    pub(crate) inner: Arc<Inner>,
}

/// A job admitted and not yet running: [`Prepared::start`] sets it going;
/// dropping it unstarted records the job as failed and frees its place.
pub struct Prepared {
    /// The job's id.
    pub job_id: String,
    /// Its channel.
    pub channel: String,
    run: Option<Run>,
    jobs: Jobs,
}

struct Run {
    algorithm: Algorithm,
    graph: Graph,
    /// The `graph` event, encoded and checked with the graph's build (a
    /// 100,000-node graph is megabytes of JSON: that is building the
    /// graph, not running the algorithm).
    graph_event: CheckedData,
    params: Params,
    pace: (Option<u64>, Option<Duration>),
    stop: Arc<AtomicBool>,
}

impl Prepared {
    /// Starts the job on the runner's pool.
    pub fn start(mut self) {
        if let Some(run) = self.run.take() {
            let jobs = self.jobs.clone();
            let id = self.job_id.clone();
            tokio::spawn(async move { jobs.run(id, run).await });
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.run.is_some() {
            self.jobs.end(&self.job_id, Status::Failed, None);
        }
    }
}

fn limit(message: String) -> RpcError {
    RpcError::new(hubbub_protocol::ErrorCode::LimitExceeded, message)
}

impl Jobs {
    /// A runner for `node` (see [`crate::install`] for the usual wiring).
    pub fn new(node: &Node, config: JobsConfig) -> Jobs {
        Jobs {
            inner: Arc::new(Inner {
                node: node.clone(),
                pool: crate::pool::Pool::new("hubbub-job", config.worker_count(), config.nice),
                builder: crate::pool::Pool::new("hubbub-graph", config.worker_count(), config.nice),
                kept: Mutex::new(VecDeque::new()),
                config,
                table: Mutex::new(Table::default()),
            }),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &JobsConfig {
        &self.inner.config
    }

    /// Whether `caller` may run jobs: operators, tokens with `"jobs":
    /// true`, and callers the namespace rules let publish on job channels.
    pub fn may_run(caller: &JobCaller) -> bool {
        caller.admin || caller.jobs || caller.may_publish_under_namespace(&job_channel("x"))
    }

    /// Checks and admits a job: the parameters, the graph (built off the
    /// async workers), the caller's rights and the limits.
    pub async fn prepare(
        &self,
        caller: &JobCaller,
        algorithm: &str,
        parameters: JsonData,
    ) -> Result<Prepared, RpcError> {
        let cfg = &self.inner.config;
        if !cfg.enabled {
            return Err(RpcError::new(
                hubbub_protocol::ErrorCode::Unavailable,
                "algorithm jobs are turned off on this hub (apps.algorithms.enabled)",
            ));
        }
        if !Self::may_run(caller) {
            return Err(RpcError::forbidden(
                "starting jobs needs a token with \"jobs\": true (or admin), or publish rights on algorithm_ channels",
            ));
        }
        let algorithm = Algorithm::from(algorithm);
        if let Algorithm::Other(name) = &algorithm {
            return Err(RpcError::bad_request(format!(
                "unknown algorithm {name:?}: one of bfs, dfs, dijkstra, astar, pagerank, connected_components"
            )));
        }
        let parameters: AlgorithmParameters = serde_json::from_str(parameters.get())
            .map_err(|e| RpcError::bad_request(format!("parameters: {e}")))?;
        let step_delay = match parameters.step_delay_ms {
            Some(d) if d > cfg.max_step_delay_ms => {
                return Err(RpcError::bad_request(format!(
                    "step_delay_ms: at most {} ms",
                    cfg.max_step_delay_ms
                )))
            }
            Some(0) | None => None,
            Some(d) => Some(Duration::from_millis(d)),
        };
        if parameters.max_events_per_second == Some(0) {
            return Err(RpcError::bad_request(
                "max_events_per_second must be at least 1",
            ));
        }
        let owner = match (&caller.user_id, &caller.connection_id) {
            (Some(u), _) => format!("user:{u}"),
            (None, Some(c)) => format!("connection:{c}"),
            (None, None) => "api".to_owned(),
        };
        // Places are checked before the graph is built (cheap refusals
        // first) and taken after (a refused graph takes none).
        self.check_places(&owner)?;
        let limits = Limits {
            max_nodes: cfg.max_nodes,
            max_edges: cfg.max_edges,
        };
        let alg = algorithm.clone();
        let built = self
            .inner
            .builder
            .run(move || {
                let graph = Graph::build(&parameters.graph, &limits).map_err(|e| e.0)?;
                let params = algo::prepare(&alg, &graph, &parameters).map_err(|e| e.0)?;
                let event = CheckedData::new(JsonData::from_serialize(&graph.event()))
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((graph, event, params, parameters.max_events_per_second))
            })
            .await
            .map_err(|_| RpcError::internal("the graph could not be built"))?;
        let (graph, graph_event, params, cap) = built.map_err(RpcError::bad_request)?;
        let job_id = new_job_id();
        let stop = Arc::new(AtomicBool::new(false));
        self.admit(
            &owner,
            Record {
                summary: JobSummary {
                    job_id: job_id.clone(),
                    algorithm: algorithm.as_str().to_owned(),
                    status: Status::Running,
                    statistics: AlgorithmStatistics::default(),
                    user_id: caller.user_id.clone(),
                    started_at: hubbub_server::now_ms(),
                },
                owner: owner.clone(),
                connection_id: caller.connection_id.clone(),
                stop: stop.clone(),
                ended: None,
            },
        )?;
        Ok(Prepared {
            channel: job_channel(&job_id),
            job_id,
            run: Some(Run {
                algorithm,
                graph,
                graph_event,
                params,
                pace: (cap, step_delay),
                stop,
            }),
            jobs: self.clone(),
        })
    }

    fn check_places(&self, owner: &str) -> Result<(), RpcError> {
        let cfg = &self.inner.config;
        let table = self.inner.table.lock();
        let running = table
            .jobs
            .values()
            .filter(|r| r.summary.status == Status::Running);
        let (mut all, mut mine) = (0, 0);
        for r in running {
            all += 1;
            mine += usize::from(r.owner == owner);
        }
        if all >= cfg.max_running {
            return Err(limit(format!(
                "{all} jobs are running, the most this hub runs at once (apps.algorithms.max_running)"
            )));
        }
        if owner != "api" && mine >= cfg.max_running_per_user {
            return Err(limit(format!(
                "you have {mine} jobs running, the most per user (apps.algorithms.max_running_per_user)"
            )));
        }
        Ok(())
    }

    fn admit(&self, owner: &str, record: Record) -> Result<(), RpcError> {
        self.check_places(owner)?;
        let mut table = self.inner.table.lock();
        self.prune(&mut table);
        table.order.push_back(record.summary.job_id.clone());
        table.jobs.insert(record.summary.job_id.clone(), record);
        Ok(())
    }

    /// Forgets finished jobs beyond `keep_finished` or older than
    /// `keep_finished_s`.
    fn prune(&self, table: &mut Table) {
        let cfg = &self.inner.config;
        let max_age = Duration::from_secs(cfg.keep_finished_s);
        let mut finished = table.jobs.values().filter(|r| r.ended.is_some()).count();
        let Table { jobs, order } = table;
        order.retain(|id| {
            let Some(r) = jobs.get(id) else { return false };
            let Some(ended) = r.ended else { return true };
            if finished > cfg.keep_finished || ended.elapsed() > max_age {
                finished -= 1;
                jobs.remove(id);
                false
            } else {
                true
            }
        });
    }

    /// Running and recent jobs, oldest first.
    pub fn list(&self) -> Vec<JobSummary> {
        let mut table = self.inner.table.lock();
        self.prune(&mut table);
        table
            .order
            .iter()
            .filter_map(|id| table.jobs.get(id).map(|r| r.summary.clone()))
            .collect()
    }

    /// Asks a job to stop: its owner, or an operator. Stopping a job that
    /// already ended is not an error.
    pub fn stop(&self, caller: &JobCaller, job_id: &str) -> Result<(), RpcError> {
        let table = self.inner.table.lock();
        let Some(r) = table.jobs.get(job_id) else {
            return Err(RpcError::not_found(format!("no job {job_id:?}")));
        };
        let own = match (&caller.user_id, &caller.connection_id) {
            (Some(u), _) => r.summary.user_id.as_ref() == Some(u),
            (None, Some(c)) => r.connection_id.as_ref() == Some(c),
            (None, None) => false,
        };
        if !(caller.admin || own) {
            return Err(RpcError::forbidden(format!(
                "job {job_id:?} is not yours to stop"
            )));
        }
        r.stop.store(true, Relaxed);
        Ok(())
    }

    /// Stops the jobs the connection `connection_id` started (when
    /// `stop_on_disconnect` is set).
    pub fn connection_closed(&self, connection_id: &str) {
        if !self.inner.config.stop_on_disconnect {
            return;
        }
        let table = self.inner.table.lock();
        for r in table.jobs.values() {
            if r.ended.is_none() && r.connection_id.as_deref() == Some(connection_id) {
                r.stop.store(true, Relaxed);
            }
        }
    }

    fn end(&self, job_id: &str, status: Status, statistics: Option<AlgorithmStatistics>) {
        let mut table = self.inner.table.lock();
        if let Some(r) = table.jobs.get_mut(job_id) {
            r.summary.status = status;
            if let Some(s) = statistics {
                r.summary.statistics = s;
            }
            r.ended = Some(Instant::now());
        }
    }

    /// Runs a job to its end: waits for a thread, runs the algorithm there
    /// while this task publishes what it emits, then the terminal event.
    async fn run(self, job_id: String, run: Run) {
        let node = &self.inner.node;
        let channel = job_channel(&job_id);
        let keep = Retention::Keep {
            size: 2,
            ttl: Duration::from_secs(self.inner.config.keep_finished_s),
        };
        let (tx, mut rx) = mpsc::channel::<Out>(EVENT_QUEUE);
        let limit = Duration::from_millis(self.inner.config.max_duration_ms);
        let progress_interval = Duration::from_millis(self.inner.config.progress_interval_ms);
        let id = job_id.clone();
        let thread = self.inner.pool.run(move || {
            // The time limit and the wall time count from here: waiting
            // for a thread is not running.
            let started = Instant::now();
            let deadline = started + limit;
            let Run {
                algorithm,
                graph,
                graph_event,
                params,
                pace: (cap, step_delay),
                stop,
            } = run;
            let pace = Pace {
                max_events_per_second: cap,
                step_delay,
                progress_interval,
                deadline,
            };
            let mut s = Streamer::new(&graph, id, algorithm.clone(), tx, stop, pace);
            s.send_checked("graph", graph_event, Also::Kept);
            let outcome = algo::run(&algorithm, &graph, &params, &mut s);
            s.flush();
            if matches!(outcome, Outcome::Done(_)) && s.reported() < 1.0 {
                let step = s.counts.nodes;
                s.progress_event(1.0, step, None);
            }
            let (counts, halt) = (s.counts, s.halt);
            drop(s);
            // The graph goes back with the outcome and is freed after the
            // terminal event: freeing a large graph takes a while.
            (outcome, counts, halt, started, graph)
        });
        let mut live = 0u64;
        while let Some(out) = rx.recv().await {
            let retention = if out.also == Also::Kept && self.may_keep(out.data.get().len()) {
                keep
            } else {
                Retention::Transient
            };
            let also = match out.also {
                Also::Activations => Some(NODE_ACTIVATIONS_CHANNEL),
                Also::AllAlgorithms => Some(ALL_ALGORITHMS_CHANNEL),
                Also::None | Also::Kept => None,
            };
            let mut targets = vec![(channel.as_str(), retention)];
            targets.extend(also.map(|ch| (ch, Retention::Transient)));
            let published = node
                .broadcast_checked(&targets, out.event_type, out.data)
                .await;
            if let Err(e) = published {
                tracing::warn!(error = %e, job_id, "a job's event was not published");
            }
            live += 1;
            if live & 4095 == 0 {
                // Statistics so far, for the job list.
                self.note_progress(&job_id, live);
            }
        }
        let (outcome, counts, halt, started, graph) = match thread.await {
            Ok(r) => r,
            Err(_) => {
                tracing::error!(job_id, "a job's thread panicked");
                let failed = AlgorithmFailed {
                    job_id: job_id.clone(),
                    error: "internal error".into(),
                };
                self.terminal(&channel, "algorithm_failed", &failed, keep)
                    .await;
                self.end(&job_id, Status::Failed, None);
                return;
            }
        };
        let statistics = AlgorithmStatistics {
            nodes_processed: counts.nodes,
            edges_processed: counts.edges,
            // The terminal event counts itself.
            events_emitted: counts.emitted + 1,
            events_coalesced: counts.coalesced,
            wall_time_ms: started.elapsed().as_millis() as u64,
        };
        let status = match (outcome, halt) {
            (Outcome::Done(result), _) => {
                let complete = AlgorithmComplete {
                    job_id: job_id.clone(),
                    result,
                    execution_time_ms: statistics.wall_time_ms,
                    statistics,
                };
                self.terminal(&channel, "algorithm_complete", &complete, keep)
                    .await;
                Status::Completed
            }
            (Outcome::Stopped, Some(Halt::OutOfTime)) => {
                let failed = AlgorithmFailed {
                    job_id: job_id.clone(),
                    error: format!(
                        "stopped at the time limit of {} ms (apps.algorithms.max_duration_ms)",
                        self.inner.config.max_duration_ms
                    ),
                };
                self.terminal(&channel, "algorithm_failed", &failed, keep)
                    .await;
                Status::Failed
            }
            (Outcome::Stopped, Some(Halt::Gone)) => Status::Failed,
            (Outcome::Stopped, _) => {
                let stopped = AlgorithmStopped {
                    job_id: job_id.clone(),
                };
                self.terminal(&channel, "algorithm_stopped", &stopped, keep)
                    .await;
                Status::Stopped
            }
        };
        self.end(&job_id, status, Some(statistics));
        drop(self.inner.builder.run(move || drop(graph)));
    }

    /// Whether a `graph` event of `bytes` may be kept: the graphs kept for
    /// late readers (each for `keep_finished_s`) stay within
    /// `keep_graph_bytes` in all. A graph over it is delivered live only.
    fn may_keep(&self, bytes: usize) -> bool {
        let cfg = &self.inner.config;
        let now = Instant::now();
        let mut kept = self.inner.kept.lock();
        while kept.front().is_some_and(|(until, _)| *until <= now) {
            kept.pop_front();
        }
        let held: usize = kept.iter().map(|(_, b)| b).sum();
        if held + bytes > cfg.keep_graph_bytes {
            return false;
        }
        kept.push_back((now + Duration::from_secs(cfg.keep_finished_s), bytes));
        true
    }

    fn note_progress(&self, job_id: &str, emitted: u64) {
        if let Some(r) = self.inner.table.lock().jobs.get_mut(job_id) {
            r.summary.statistics.events_emitted = emitted;
        }
    }

    /// The last event of a job: kept on its channel, and on
    /// `all_algorithms` as that namespace keeps it.
    async fn terminal<T: Serialize>(
        &self,
        channel: &str,
        event_type: &str,
        data: &T,
        keep: Retention,
    ) {
        let targets = [
            (channel, keep),
            (ALL_ALGORITHMS_CHANNEL, Retention::Namespace),
        ];
        let data = JsonData::from_serialize(data);
        let published = self
            .inner
            .node
            .broadcast_json_with(&targets, event_type, data)
            .await;
        if let Err(e) = published {
            tracing::warn!(error = %e, channel, "a job's terminal event was not published");
        }
    }
}

/// A job id: 16 hex digits, random.
fn new_job_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
