//! The graph a job runs on: nodes numbered `0..n` in the order given, with
//! their ids and optional coordinates, the edges as listed, and an
//! out-adjacency (both directions for an undirected graph) for the
//! algorithms.

use std::collections::HashMap;

use hubbub_protocol::graph::{GraphEdge, GraphNode, GraphSpec, NodeId};

mod csr;
mod event;
mod explicit;
mod generate;

pub(crate) use csr::Csr;
pub use event::GraphEvent;

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

/// A validated graph, ready for the algorithms: nodes numbered `0..n` in
/// the order given, so that the algorithms work on plain indices and the
/// results go back to the ids the client sent.
#[derive(Debug, Clone)]
pub struct Graph {
    directed: bool,
    ids: Vec<NodeId>,
    index: NodeIndex,
    /// Coordinates per node, `None` when the node has none.
    coords: Vec<Option<(f64, f64)>>,
    /// The edges as listed (each undirected edge once): `(from, to, weight)`.
    edges: Vec<(u32, u32, f64)>,
    /// Out-adjacency; both directions for an undirected graph.
    out: Csr,
}

/// From id to number: generated graphs number their nodes `Int(0..n)`, so
/// they need no map.
#[derive(Debug, Clone)]
enum NodeIndex {
    /// Node `i` has the id `Int(i)`.
    Sequential,
    /// Any other ids.
    Map(HashMap<NodeId, u32>),
}

impl Graph {
    /// Builds (and for a generator, generates) the graph `spec` describes,
    /// within `limits`: checked before anything large is allocated.
    pub fn build(spec: &GraphSpec, limits: &Limits) -> Result<Graph, GraphError> {
        match spec {
            GraphSpec::Generated(g) => generate::generate(g, limits),
            GraphSpec::Explicit(g) => explicit::build(g, limits),
        }
    }

    /// Assembles a graph from checked parts (every edge endpoint below
    /// `ids.len()`, at most `u32::MAX` nodes).
    fn assemble(
        directed: bool,
        ids: Vec<NodeId>,
        index: NodeIndex,
        coords: Vec<Option<(f64, f64)>>,
        edges: Vec<(u32, u32, f64)>,
    ) -> Graph {
        let out = Csr::build(ids.len(), &edges, true, !directed);
        Graph {
            directed,
            ids,
            index,
            coords,
            edges,
            out,
        }
    }

    /// Whether edges are directed.
    pub fn directed(&self) -> bool {
        self.directed
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of edges (each undirected edge once).
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// The id of node `i`. Panics when `i` is not below
    /// [`Self::node_count`], as indexing does: numbers come from the graph.
    pub fn id(&self, i: u32) -> &NodeId {
        &self.ids[i as usize]
    }

    /// The number of the node with id `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<u32> {
        match &self.index {
            NodeIndex::Sequential => match id {
                NodeId::Int(i) if *i >= 0 && (*i as u64) < self.ids.len() as u64 => Some(*i as u32),
                _ => None,
            },
            NodeIndex::Map(map) => map.get(id).copied(),
        }
    }

    /// The layout of node `i`, where it has one: A* needs it, and a runner
    /// may want to draw without rebuilding the `graph` event. `None` also
    /// for a number out of range.
    pub fn coords(&self, i: u32) -> Option<(f64, f64)> {
        self.coords.get(i as usize).copied().flatten()
    }

    /// Whether every node has coordinates (A* needs them all).
    pub fn has_all_coords(&self) -> bool {
        self.coords.iter().all(Option::is_some)
    }

    /// The edges as listed, `(from, to, weight)` by node number, each
    /// undirected edge once: for checks over all edges and for drawing.
    pub fn edges(&self) -> impl ExactSizeIterator<Item = (u32, u32, f64)> + '_ {
        self.edges.iter().copied()
    }

    /// The edges leaving node `i` (on an undirected graph, every edge at
    /// it; a self-loop once), as `(neighbour, weight)` in the order the
    /// algorithms walk them: the edges' order.
    pub fn neighbors(&self, i: u32) -> impl ExactSizeIterator<Item = (u32, f64)> + '_ {
        let (t, w) = self.out.neighbors(i);
        t.iter().copied().zip(w.iter().copied())
    }

    /// The out-adjacency, for the algorithms.
    pub(crate) fn adjacency(&self) -> &Csr {
        &self.out
    }

    /// The listed edges, for the algorithms.
    pub(crate) fn edge_list(&self) -> &[(u32, u32, f64)] {
        &self.edges
    }

    /// The `graph` event that opens a job's stream.
    pub fn event(&self) -> GraphEvent<'_> {
        GraphEvent(self)
    }

    /// The `graph` event as the protocol's type (a copy of every node and
    /// edge; [`Graph::event`] writes the same JSON without it).
    pub fn to_event(&self) -> hubbub_protocol::algorithm::Graph {
        let nodes = self
            .ids
            .iter()
            .zip(&self.coords)
            .map(|(id, c)| GraphNode {
                id: id.clone(),
                x: c.map(|c| c.0),
                y: c.map(|c| c.1),
            })
            .collect();
        let edges = self
            .edges
            .iter()
            .map(|&(a, b, weight)| GraphEdge {
                from: self.ids[a as usize].clone(),
                to: self.ids[b as usize].clone(),
                weight,
            })
            .collect();
        hubbub_protocol::algorithm::Graph {
            directed: self.directed,
            nodes,
            edges,
        }
    }
}

/// Refuses a node count over the limits (or over what a node number
/// holds), before anything is allocated for it.
fn check_nodes(n: u64, limits: &Limits) -> Result<(), GraphError> {
    if n > limits.max_nodes as u64 {
        return Err(GraphError(format!(
            "the graph has {n} nodes, over the limit of {}",
            limits.max_nodes
        )));
    }
    if n >= u64::from(u32::MAX) {
        return Err(GraphError(format!(
            "the graph has {n} nodes, over the most this hub numbers ({})",
            u32::MAX - 1
        )));
    }
    Ok(())
}

/// Refuses an edge count over the limit.
fn check_edges(m: u64, limits: &Limits) -> Result<(), GraphError> {
    if m > limits.max_edges as u64 {
        return Err(GraphError(format!(
            "the graph has {m} edges, over the limit of {}",
            limits.max_edges
        )));
    }
    Ok(())
}

/// An id as a message names it: as JSON, so that `1` and `"1"` read apart.
pub(crate) fn show(id: &NodeId) -> String {
    serde_json::to_string(id).unwrap_or_else(|_| id.to_string())
}
