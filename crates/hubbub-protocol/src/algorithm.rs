//! Graph algorithm jobs (PROTOCOL.md section 7): which algorithm, with
//! which parameters, and what a job streams on `algorithm_<job_id>`, in this
//! order: [`Graph`], work events ([`AlgorithmProgress`], [`NodeActivation`],
//! [`EdgeTraversal`], [`PathDiscovered`]), then exactly one terminal event
//! ([`AlgorithmComplete`], [`AlgorithmStopped`] or [`AlgorithmFailed`]).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::graph::{GraphEdge, GraphNode, GraphSpec, NodeId};
use crate::payload::{event_payloads, some_value};

/// A graph algorithm the hub runs. Unknown names are kept as
/// [`Algorithm::Other`]: the spec says more may follow, and a client must
/// still read the events of a newer hub's jobs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Breadth-first search (`bfs`).
    Bfs,
    /// Depth-first search (`dfs`).
    Dfs,
    /// Shortest paths by Dijkstra (`dijkstra`).
    Dijkstra,
    /// A* with the Euclidean distance as heuristic (`astar`).
    Astar,
    /// PageRank (`pagerank`).
    Pagerank,
    /// Connected components, weak ones on a directed graph.
    ConnectedComponents,
    /// A name this version does not know.
    Other(String),
}

impl Algorithm {
    /// The algorithms of protocol v1.
    pub const KNOWN: [Algorithm; 6] = [
        Algorithm::Bfs,
        Algorithm::Dfs,
        Algorithm::Dijkstra,
        Algorithm::Astar,
        Algorithm::Pagerank,
        Algorithm::ConnectedComponents,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Algorithm::Bfs => "bfs",
            Algorithm::Dfs => "dfs",
            Algorithm::Dijkstra => "dijkstra",
            Algorithm::Astar => "astar",
            Algorithm::Pagerank => "pagerank",
            Algorithm::ConnectedComponents => "connected_components",
            Algorithm::Other(name) => name,
        }
    }
}

impl From<&str> for Algorithm {
    fn from(name: &str) -> Self {
        Algorithm::KNOWN
            .into_iter()
            .find(|a| a.as_str() == name)
            .unwrap_or_else(|| Algorithm::Other(name.to_owned()))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(Algorithm::from(name.as_str()))
    }
}

/// The `parameters` of `algorithm_start` (and of `POST /api/algorithms`),
/// typed so that the hub checks and a client builds the same fields (the
/// command itself carries them as raw JSON). Fields that do not apply to the
/// algorithm are ignored; absent ones take the defaults below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmParameters {
    /// The graph to run on.
    pub graph: GraphSpec,
    /// Start node (searches and paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<NodeId>,
    /// Goal node: paths end there, `bfs`/`dfs` stop there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<NodeId>,
    /// Pause between steps, for watching; none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_delay_ms: Option<u64>,
    /// Activations above this rate are coalesced; nothing is without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_events_per_second: Option<u64>,
    /// PageRank damping ([`Self::DEFAULT_DAMPING`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damping: Option<f64>,
    /// PageRank L1 change that counts as converged ([`Self::DEFAULT_TOLERANCE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// PageRank iteration cap ([`Self::DEFAULT_MAX_ITERATIONS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u64>,
}

impl AlgorithmParameters {
    /// PageRank damping when none is given.
    pub const DEFAULT_DAMPING: f64 = 0.85;
    /// PageRank tolerance when none is given.
    pub const DEFAULT_TOLERANCE: f64 = 1e-10;
    /// PageRank iteration cap when none is given.
    pub const DEFAULT_MAX_ITERATIONS: u64 = 100;

    /// Parameters with only a graph.
    pub fn new(graph: GraphSpec) -> Self {
        AlgorithmParameters {
            graph,
            source: None,
            target: None,
            step_delay_ms: None,
            max_events_per_second: None,
            damping: None,
            tolerance: None,
            max_iterations: None,
        }
    }
}

impl crate::message::AlgorithmStart {
    /// An `algorithm_start` command body.
    pub fn new(algorithm: &Algorithm, parameters: &AlgorithmParameters) -> Self {
        crate::message::AlgorithmStart {
            algorithm: algorithm.as_str().to_owned(),
            parameters: crate::JsonData::from_serialize(parameters),
        }
    }

    /// The algorithm and its parameters, typed; an error to answer with
    /// `bad_request`.
    pub fn parse(&self) -> Result<(Algorithm, AlgorithmParameters), serde_json::Error> {
        let parameters = serde_json::from_str(self.parameters.get())?;
        Ok((Algorithm::from(self.algorithm.as_str()), parameters))
    }
}

/// `graph`: the first event of a job, so that a watcher can draw the graph
/// before the work events refer to its nodes and edges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Whether edges are directed.
    pub directed: bool,
    /// Every node, with coordinates where it has a layout.
    pub nodes: Vec<GraphNode>,
    /// Every edge (each undirected edge once), with its weight.
    pub edges: Vec<GraphEdge>,
}

/// `algorithm_progress` (also on `all_algorithms`): how far a job is, for
/// progress bars and job lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmProgress {
    /// The job.
    pub job_id: String,
    /// Share done, 0 to 1, never decreasing.
    pub progress: f64,
    /// Steps taken so far (the spec leaves the shape open; a step is one
    /// unit of the algorithm's work: a visit, a relaxation, an iteration).
    pub current_step: u64,
    /// Nodes processed so far.
    pub nodes_processed: u64,
    /// Edges processed so far.
    pub edges_processed: u64,
    /// What the algorithm has found so far, in its own shape (for
    /// `pagerank`, say, the ranks); absent when it has nothing to show.
    #[serde(
        default,
        deserialize_with = "some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub intermediate_results: Option<serde_json::Value>,
}

/// `node_activation` (also on `node_activations`): a node the algorithm
/// touched, for lighting it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeActivation {
    /// The node.
    pub node_id: NodeId,
    /// How strongly, 0 to 1 (the spec leaves the scale to the algorithm;
    /// a plain visit is 1).
    pub activation_level: f64,
    /// When, ms since the Unix epoch.
    pub timestamp: u64,
    /// Which algorithm (the channel `node_activations` mixes jobs).
    pub algorithm: Algorithm,
}

/// `edge_traversal`: an edge the algorithm followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeTraversal {
    /// Start node.
    pub from_node: NodeId,
    /// End node.
    pub to_node: NodeId,
    /// The edge's weight.
    pub weight: f64,
    /// When, ms since the Unix epoch.
    pub timestamp: u64,
    /// Which algorithm.
    pub algorithm: Algorithm,
}

/// `path_discovered`: a path from source to target, shown as soon as it is
/// found (a shortest-path job may find better ones later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathDiscovered {
    /// The job.
    pub job_id: String,
    /// Nodes from source to target.
    pub path: Vec<NodeId>,
    /// Sum of the path's weights.
    pub cost: f64,
    /// Whether the path is proven shortest.
    pub is_optimal: bool,
}

/// `algorithm_complete` (also on `all_algorithms`): the job finished; the
/// last event, carrying the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmComplete {
    /// The job.
    pub job_id: String,
    /// The answer, shaped per algorithm.
    pub result: AlgorithmResult,
    /// Wall time from start to completion, whole ms.
    pub execution_time_ms: u64,
    /// Work counts of the whole job.
    pub statistics: AlgorithmStatistics,
}

/// `algorithm_stopped` (also on `all_algorithms`): the job was stopped by
/// `algorithm_stop` or the HTTP API before it finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlgorithmStopped {
    /// The job.
    pub job_id: String,
}

/// `algorithm_failed` (also on `all_algorithms`): the job could not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlgorithmFailed {
    /// The job.
    pub job_id: String,
    /// Why, as text for people (the spec leaves the shape open).
    pub error: String,
}

/// A job's work counts, final in its terminal event (and as far as they
/// go in `GET /api/algorithms`). The spec leaves `statistics` open; fields
/// beyond the two counts `algorithm_progress` reports default to 0 when a
/// sender leaves them out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlgorithmStatistics {
    /// Nodes processed.
    pub nodes_processed: u64,
    /// Edges processed.
    pub edges_processed: u64,
    /// Events the job published (the `graph` and terminal events included).
    #[serde(default)]
    pub events_emitted: u64,
    /// Activations folded into a later one by `max_events_per_second`
    /// (the latest level per node per tick is what is sent).
    #[serde(default)]
    pub events_coalesced: u64,
    /// Wall time of the run, ms.
    #[serde(default)]
    pub wall_time_ms: u64,
}

/// `algorithm_complete.result`, one shape per algorithm. The event does not
/// name its algorithm, so the shape is told by its fields; a shape this
/// version does not know (an algorithm added later) is kept as
/// [`AlgorithmResult::Other`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlgorithmResult {
    /// `bfs`, `dfs`: nodes in the order of first visit.
    Order {
        /// Visit order.
        order: Vec<NodeId>,
    },
    /// `dijkstra`, `astar`: the shortest path, both null when unreachable.
    Path {
        /// Nodes from source to target.
        #[serde(deserialize_with = "present")]
        path: Option<Vec<NodeId>>,
        /// Its cost.
        #[serde(deserialize_with = "present")]
        cost: Option<f64>,
    },
    /// `pagerank`.
    Ranks {
        /// Rank per node, summing to 1, keyed by the node id as text (JSON
        /// object keys are strings, so `1` and `"1"` share a key here).
        ranks: BTreeMap<String, f64>,
        /// Iterations run.
        iterations: u64,
        /// False when `max_iterations` ran out first.
        converged: bool,
    },
    /// `connected_components`.
    Components {
        /// Each component's nodes.
        components: Vec<Vec<NodeId>>,
    },
    /// Another algorithm's result.
    Other(serde_json::Value),
}

/// A nullable field that must be there (`deserialize_with` makes serde
/// refuse its absence), so `{}` is not read as an unreachable path.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

event_payloads! {
    Graph => "graph",
    AlgorithmProgress => "algorithm_progress",
    NodeActivation => "node_activation",
    EdgeTraversal => "edge_traversal",
    PathDiscovered => "path_discovered",
    AlgorithmComplete => "algorithm_complete",
    AlgorithmStopped => "algorithm_stopped",
    AlgorithmFailed => "algorithm_failed",
}

/// The channel of a job's events: `algorithm_<job_id>`.
pub fn job_channel(job_id: &str) -> String {
    format!("algorithm_{job_id}")
}

/// The channel that gets every job's progress and terminal events.
pub const ALL_ALGORITHMS_CHANNEL: &str = "all_algorithms";

/// The channel that gets every job's `node_activation` events.
pub const NODE_ACTIVATIONS_CHANNEL: &str = "node_activations";
