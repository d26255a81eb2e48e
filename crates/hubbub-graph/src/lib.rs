//! Graph-algorithm jobs (PROTOCOL.md section 7; docs/algorithms.md), an
//! application on the hub's public library API: the hub's core knows
//! nothing of graphs.
//!
//! - [`graph`]: the graph a job runs on, built from `parameters.graph`
//!   (validated, or generated: `grid`, `random_geometric`,
//!   `barabasi_albert`, seeded and reproducible).
//! - [`algo`]: the six algorithms, each run step by step and telling an
//!   [`algo::Observer`] what it does, so that a job can stream it; without
//!   streaming they are plain algorithms, checked against `petgraph`.
//! - [`Jobs`]: the runner. It admits jobs within their limits, runs them on
//!   a bounded pool of threads, streams them (module `stream`: pace,
//!   coalescing, progress) and remembers recent ones.
//! - [`install`]: the wiring into a node: `algorithm_start` and
//!   `algorithm_stop` ([`hubbub_server::Node::on_jobs`]),
//!   `/api/algorithms` ([`hubbub_server::Node::extend_api`]), and stopping
//!   a job whose starter left ([`hubbub_server::Node::on_disconnect`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let node = hubbub_server::Node::new(hubbub_server::Config::default())?;
//! let config = hubbub_graph::JobsConfig::from_config(node.config())?;
//! hubbub_graph::install(&node, config);
//! node.serve(std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod algo;
mod config;
pub mod graph;
mod http;
mod pool;
mod runner;
mod stream;

pub use config::JobsConfig;
pub use runner::{JobSummary, Jobs, Prepared, Status};

use hubbub_protocol::JsonData;
use hubbub_server::engine::BoxFuture;
use hubbub_server::rpc::RpcError;
use hubbub_server::{JobCaller, JobHandler, JobStarted, Node};

impl JobHandler for Jobs {
    fn start(
        &self,
        caller: JobCaller,
        algorithm: String,
        parameters: JsonData,
    ) -> BoxFuture<'static, Result<JobStarted, RpcError>> {
        let jobs = self.clone();
        Box::pin(async move {
            let p = jobs.prepare(&caller, &algorithm, parameters).await?;
            Ok(JobStarted {
                job_id: p.job_id.clone(),
                channel: p.channel.clone(),
                start: Box::new(move || p.start()),
            })
        })
    }

    fn stop(&self, caller: JobCaller, job_id: String) -> BoxFuture<'static, Result<(), RpcError>> {
        let r = Jobs::stop(self, &caller, &job_id);
        Box::pin(async move { r })
    }
}

/// Offers graph-algorithm jobs on `node`; call before it serves. Returns
/// the runner, for an application that also starts jobs itself.
pub fn install(node: &Node, config: JobsConfig) -> Jobs {
    let jobs = Jobs::new(node, config);
    node.on_jobs(jobs.clone());
    let j = jobs.clone();
    node.on_disconnect(move |d| j.connection_closed(&d.connection_id));
    node.extend_api(http::extension(jobs.clone()));
    jobs
}
