//! The graph a job runs on: nodes numbered `0..n` in the order given, with
//! their ids and optional coordinates, the edges as listed, and an
//! out-adjacency (both directions for an undirected graph) for the
//! algorithms.

use hubbub_protocol::graph::{GraphSpec, NodeId};

/// Limits on what a job may ask for (configuration; PROTOCOL.md section 7
/// defaults: 200,000 nodes, 2,000,000 edges).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most nodes.
    pub max_nodes: usize,
    /// Most edges (each undirected edge once).
    pub max_edges: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nodes: 200_000,
            max_edges: 2_000_000,
        }
    }
}

/// Why a graph was refused: answered as `bad_request` with this text, which
/// names the problem (which node, which edge, which limit).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct GraphError(pub String);

/// A validated graph, ready for the algorithms.
#[derive(Debug, Clone)]
pub struct Graph {
    // Filled in by the implementation.
}

impl Graph {
    /// Builds (and for a generator, generates) the graph `spec` describes,
    /// within `limits`: checked before anything large is allocated.
    pub fn build(spec: &GraphSpec, limits: &Limits) -> Result<Graph, GraphError> {
        let _ = (spec, limits);
        Err(GraphError("not built yet".into()))
    }

    /// Whether edges are directed.
    pub fn directed(&self) -> bool {
        unimplemented!()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        unimplemented!()
    }

    /// Number of edges (each undirected edge once).
    pub fn edge_count(&self) -> usize {
        unimplemented!()
    }

    /// The id of node `i`.
    pub fn id(&self, i: u32) -> &NodeId {
        let _ = i;
        unimplemented!()
    }

    /// The number of the node with id `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<u32> {
        let _ = id;
        unimplemented!()
    }

    /// The `graph` event that opens a job's stream.
    pub fn to_event(&self) -> hubbub_protocol::algorithm::Graph {
        unimplemented!()
    }
}
