//! The algorithms, each run step by step on a [`Graph`] and telling an
//! [`Observer`] what it does: which node it activated, which edge it
//! walked, which path it found, how far along it is. The observer decides
//! what of that reaches watchers (pace, coalescing) and whether to go on.

use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters, AlgorithmResult};

use crate::graph::Graph;

/// Whether the run goes on after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// End now (stopped, out of time): the run returns [`Outcome::Stopped`].
    Stop,
}

/// How far a run is, after a step.
pub struct Progress<'a> {
    /// Share done, 0 to 1, never decreasing over a run.
    pub fraction: f64,
    /// Steps so far (a visit, a relaxation, an iteration).
    pub step: u64,
    /// Nodes processed so far.
    pub nodes: u64,
    /// Edges processed so far.
    pub edges: u64,
    /// What the algorithm has found so far, computed only if asked.
    pub intermediate: Option<&'a dyn Fn() -> serde_json::Value>,
}

/// What a run tells as it goes. Nodes are numbered as in the [`Graph`].
pub trait Observer {
    /// A node the algorithm touched, with its activation level (0 to 1).
    fn activate(&mut self, node: u32, level: f64);
    /// An edge the algorithm walked.
    fn traverse(&mut self, from: u32, to: u32, weight: f64);
    /// A path found, with its cost and whether it is proven shortest.
    fn path(&mut self, path: &[u32], cost: f64, optimal: bool);
    /// After each step; the answer decides whether the run goes on.
    fn step(&mut self, progress: &Progress<'_>) -> Flow;
}

/// Parameters checked against the graph: what [`run`] needs.
#[derive(Debug, Clone)]
pub struct Params {
    // Filled in by the implementation.
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It finished, with its result.
    Done(AlgorithmResult),
    /// The observer stopped it.
    Stopped,
}

/// Why parameters were refused: answered as `bad_request` with this text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

/// Checks `parameters` for `algorithm` on `graph` (unknown algorithm,
/// unknown or missing source or target, negative weights for a shortest
/// path, A* without coordinates, PageRank settings out of range).
pub fn prepare(
    algorithm: &Algorithm,
    graph: &Graph,
    parameters: &AlgorithmParameters,
) -> Result<Params, ParamError> {
    let _ = (algorithm, graph, parameters);
    Err(ParamError("not built yet".into()))
}

/// Runs `algorithm` to its end or until `observer` stops it.
pub fn run(
    algorithm: &Algorithm,
    graph: &Graph,
    params: &Params,
    observer: &mut dyn Observer,
) -> Outcome {
    let _ = (algorithm, graph, params, observer);
    Outcome::Stopped
}
