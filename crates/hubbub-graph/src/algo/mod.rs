//! The algorithms, each run step by step on a [`Graph`] and telling an
//! [`Observer`] what it does: which node it activated, which edge it
//! walked, which path it found, how far along it is. The observer decides
//! what of that reaches watchers (pace, coalescing) and whether to go on.

use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters, AlgorithmResult};
use hubbub_protocol::graph::NodeId;

use crate::graph::{show, Graph};

mod components;
mod pagerank;
mod search;
mod shortest;
mod track;

pub use components::component_level;

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

/// Parameters checked against the graph: what [`run`] needs, node ids
/// turned into node numbers and defaults filled in.
#[derive(Debug, Clone)]
pub struct Params {
    algorithm: Algorithm,
    nodes: usize,
    source: Option<u32>,
    target: Option<u32>,
    damping: f64,
    tolerance: f64,
    max_iterations: u64,
    scale: f64,
}

impl Params {
    /// The start node, by number, for the algorithms that take one (for
    /// `bfs`/`dfs` without a `source`: node 0), so a runner can name it.
    pub fn source(&self) -> Option<u32> {
        self.source
    }

    /// The goal node, by number, where one was given and applies.
    pub fn target(&self) -> Option<u32> {
        self.target
    }

    /// The A* heuristic scale (smallest weight/length ratio, shrunk a
    /// hair; 0 means plain Dijkstra), for a runner that reports it.
    pub fn heuristic_scale(&self) -> f64 {
        self.scale
    }
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
///
/// Only the fields that apply to the algorithm are looked at (a `source`
/// given to `pagerank` is ignored, not checked):
/// - `bfs`, `dfs`: `source` optional, the first node (node 0) without it;
///   they visit only what is reachable from it. `target` optional: they
///   stop right after visiting it.
/// - `dijkstra`, `astar`: `source` and `target` required (the result is a
///   path between them), no negative weight; `astar` needs coordinates on
///   every node.
/// - `pagerank`: `damping` in (0, 1), `tolerance` above 0, `max_iterations`
///   at least 1 (defaults: [`AlgorithmParameters::DEFAULT_DAMPING`] and the
///   others there).
/// - `connected_components`: nothing.
pub fn prepare(
    algorithm: &Algorithm,
    graph: &Graph,
    parameters: &AlgorithmParameters,
) -> Result<Params, ParamError> {
    let node = |role: &str, id: &Option<NodeId>| -> Result<Option<u32>, ParamError> {
        match id {
            None => Ok(None),
            Some(id) => graph.index_of(id).map(Some).ok_or_else(|| {
                ParamError(format!("{role} {} is not a node of the graph", show(id)))
            }),
        }
    };
    let required = |role: &str, found: Option<u32>| {
        found.ok_or_else(|| ParamError(format!("{algorithm} needs a {role}")))
    };
    let mut params = Params {
        algorithm: algorithm.clone(),
        nodes: graph.node_count(),
        source: None,
        target: None,
        damping: AlgorithmParameters::DEFAULT_DAMPING,
        tolerance: AlgorithmParameters::DEFAULT_TOLERANCE,
        max_iterations: AlgorithmParameters::DEFAULT_MAX_ITERATIONS,
        scale: 0.0,
    };
    match algorithm {
        Algorithm::Other(name) => {
            let known: Vec<&str> = Algorithm::KNOWN.iter().map(Algorithm::as_str).collect();
            return Err(ParamError(format!(
                "unknown algorithm {name:?}; known: {}",
                known.join(", ")
            )));
        }
        Algorithm::Bfs | Algorithm::Dfs => {
            params.source = Some(node("source", &parameters.source)?.unwrap_or(0));
            params.target = node("target", &parameters.target)?;
        }
        Algorithm::Dijkstra | Algorithm::Astar => {
            params.source = Some(required("source", node("source", &parameters.source)?)?);
            params.target = Some(required("target", node("target", &parameters.target)?)?);
            if let Some((k, (a, b, w))) = graph.edges().enumerate().find(|e| e.1 .2 < 0.0) {
                return Err(ParamError(format!(
                    "{algorithm} needs weights of 0 or more; edge {k} ({} to {}) weighs {w}",
                    show(graph.id(a)),
                    show(graph.id(b))
                )));
            }
            if *algorithm == Algorithm::Astar {
                if let Some(v) = (0..graph.node_count() as u32).find(|&v| graph.coords(v).is_none())
                {
                    return Err(ParamError(format!(
                        "astar needs coordinates on every node; node {} has none",
                        show(graph.id(v))
                    )));
                }
                params.scale = shortest::heuristic_scale(graph);
            }
        }
        Algorithm::Pagerank => {
            let d = parameters.damping.unwrap_or(params.damping);
            if !(d > 0.0 && d < 1.0) {
                return Err(ParamError(format!(
                    "damping must be between 0 and 1 (exclusive), not {d}"
                )));
            }
            let tol = parameters.tolerance.unwrap_or(params.tolerance);
            if tol.is_nan() || tol <= 0.0 {
                return Err(ParamError(format!("tolerance must be above 0, not {tol}")));
            }
            let max = parameters.max_iterations.unwrap_or(params.max_iterations);
            if max == 0 {
                return Err(ParamError(
                    "max_iterations must be at least 1, not 0".into(),
                ));
            }
            (params.damping, params.tolerance, params.max_iterations) = (d, tol, max);
        }
        Algorithm::ConnectedComponents => {}
    }
    Ok(params)
}

/// Runs `algorithm` to its end or until `observer` stops it.
///
/// `params` must come from [`prepare`] for this algorithm and this graph:
/// the algorithm they were prepared for is the one run, and parameters
/// prepared for a graph of another size give a result of
/// [`AlgorithmResult::Other`] with an `error` instead of a run. Any `Stop`
/// from [`Observer::step`], the last step's included, ends the run with
/// [`Outcome::Stopped`]. Every run ends with a step at fraction 1.0 when it
/// completes.
pub fn run(
    algorithm: &Algorithm,
    graph: &Graph,
    params: &Params,
    observer: &mut dyn Observer,
) -> Outcome {
    let _ = algorithm;
    let n = graph.node_count();
    let fits = |v: Option<u32>| v.is_none_or(|v| (v as usize) < n);
    if params.nodes != n || !fits(params.source) || !fits(params.target) {
        return Outcome::Done(AlgorithmResult::Other(serde_json::json!({
            "error": "parameters prepared for another graph"
        })));
    }
    let source = params.source.unwrap_or(0);
    match &params.algorithm {
        Algorithm::Bfs => search::bfs(graph, source, params.target, observer),
        Algorithm::Dfs => search::dfs(graph, source, params.target, observer),
        Algorithm::Dijkstra | Algorithm::Astar => {
            let target = params.target.unwrap_or(source);
            shortest::shortest(graph, source, target, params.scale, observer)
        }
        Algorithm::Pagerank => pagerank::pagerank(
            graph,
            params.damping,
            params.tolerance,
            params.max_iterations,
            observer,
        ),
        Algorithm::ConnectedComponents => components::components(graph, observer),
        Algorithm::Other(name) => Outcome::Done(AlgorithmResult::Other(serde_json::json!({
            "error": format!("unknown algorithm {name:?}")
        }))),
    }
}
