//! Helpers of the algorithm tests: graphs from plain lists, an observer
//! that records everything, and the references the results are checked
//! against.

#![allow(dead_code)]

use hubbub_graph::algo::{prepare, run, Flow, Observer, Outcome, Progress};
use hubbub_graph::graph::{Graph, Limits};
use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters, AlgorithmResult};
use hubbub_protocol::graph::{EdgeSpec, ExplicitGraph, GraphNode, GraphSpec, NodeId, NodeSpec};

/// The id of node `i` in the test graphs: strings, so ids and numbers differ.
pub fn id(i: usize) -> NodeId {
    NodeId::Str(format!("v{i}"))
}

/// The node number of a test id.
pub fn num(id: &NodeId) -> usize {
    match id {
        NodeId::Str(s) => s[1..].parse().expect("test id"),
        NodeId::Int(_) => panic!("test ids are strings"),
    }
}

/// An explicit graph spec of `n` nodes (with coordinates if given).
pub fn spec(
    n: usize,
    edges: &[(usize, usize, f64)],
    directed: bool,
    coords: Option<&[(f64, f64)]>,
) -> GraphSpec {
    let nodes = (0..n)
        .map(|i| match coords {
            None => NodeSpec::Id(id(i)),
            Some(c) => NodeSpec::Node(GraphNode {
                id: id(i),
                x: Some(c[i].0),
                y: Some(c[i].1),
            }),
        })
        .collect();
    let edges = edges
        .iter()
        .map(|&(a, b, w)| EdgeSpec {
            from: id(a),
            to: id(b),
            weight: Some(w),
        })
        .collect();
    GraphSpec::Explicit(ExplicitGraph {
        nodes,
        edges,
        directed: Some(directed),
    })
}

/// Everything a run told.
#[derive(Default)]
pub struct Recorder {
    pub activations: Vec<(u32, f64)>,
    pub traversals: Vec<(u32, u32, f64)>,
    pub paths: Vec<(Vec<u32>, f64, bool)>,
    pub fractions: Vec<f64>,
    pub steps: Vec<u64>,
    /// Answer `Stop` at this call of `step` (1-based).
    pub stop_at: Option<usize>,
    pub intermediate: Vec<serde_json::Value>,
}

impl Observer for Recorder {
    fn activate(&mut self, node: u32, level: f64) {
        self.activations.push((node, level));
    }
    fn traverse(&mut self, from: u32, to: u32, weight: f64) {
        self.traversals.push((from, to, weight));
    }
    fn path(&mut self, path: &[u32], cost: f64, optimal: bool) {
        self.paths.push((path.to_vec(), cost, optimal));
    }
    fn step(&mut self, progress: &Progress<'_>) -> Flow {
        self.fractions.push(progress.fraction);
        self.steps.push(progress.step);
        if let Some(f) = progress.intermediate {
            if self.intermediate.len() < 3 {
                self.intermediate.push(f());
            }
        }
        if self.stop_at == Some(self.fractions.len()) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

/// Builds, prepares and runs; the outcome and what the observer saw.
pub fn go(
    algorithm: Algorithm,
    spec: GraphSpec,
    edit: impl FnOnce(&mut AlgorithmParameters),
) -> (Graph, Outcome, Recorder) {
    let graph = Graph::build(&spec, &Limits::default()).expect("graph");
    let mut p = AlgorithmParameters::new(spec);
    edit(&mut p);
    let params = prepare(&algorithm, &graph, &p).expect("params");
    let mut rec = Recorder::default();
    let out = run(&algorithm, &graph, &params, &mut rec);
    (graph, out, rec)
}

/// The result of a finished run.
pub fn done(out: Outcome) -> AlgorithmResult {
    match out {
        Outcome::Done(r) => r,
        Outcome::Stopped => panic!("stopped"),
    }
}

/// Out-adjacency of a test graph (both ways when undirected; a self-loop
/// once): `adj[u]` lists `(v, w)`.
pub fn adjacency(
    n: usize,
    edges: &[(usize, usize, f64)],
    directed: bool,
) -> Vec<Vec<(usize, f64)>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b, w) in edges {
        adj[a].push((b, w));
        if !directed && a != b {
            adj[b].push((a, w));
        }
    }
    adj
}

/// A petgraph graph with every traversable direction as a directed edge.
pub fn petgraph_of(
    n: usize,
    edges: &[(usize, usize, f64)],
    directed: bool,
) -> petgraph::Graph<(), f64, petgraph::Directed> {
    let mut g = petgraph::Graph::new();
    let nodes: Vec<_> = (0..n).map(|_| g.add_node(())).collect();
    for &(a, b, w) in edges {
        g.add_edge(nodes[a], nodes[b], w);
        if !directed && a != b {
            g.add_edge(nodes[b], nodes[a], w);
        }
    }
    g
}

/// PageRank as PROTOCOL.md states it, written plainly: the reference.
pub fn reference_pagerank(
    adj: &[Vec<(usize, f64)>],
    d: f64,
    tol: f64,
    max: u64,
) -> (Vec<f64>, u64, bool) {
    let n = adj.len();
    let mut r = vec![1.0 / n as f64; n];
    for it in 1..=max {
        let dangling: f64 = (0..n).filter(|&u| adj[u].is_empty()).map(|u| r[u]).sum();
        let mut next = vec![(1.0 - d) / n as f64 + d * dangling / n as f64; n];
        for u in 0..n {
            for &(v, _) in &adj[u] {
                next[v] += d * r[u] / adj[u].len() as f64;
            }
        }
        let delta: f64 = (0..n).map(|i| (next[i] - r[i]).abs()).sum();
        r = next;
        if delta < tol {
            return (r, it, true);
        }
    }
    (r, max, false)
}

/// Components by union-find, as sets of node numbers.
pub fn reference_components(n: usize, edges: &[(usize, usize, f64)]) -> Vec<Vec<usize>> {
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let mut p: Vec<usize> = (0..n).collect();
    for &(a, b, _) in edges {
        let (ra, rb) = (find(&mut p, a), find(&mut p, b));
        p[ra] = rb;
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for v in 0..n {
        let r = find(&mut p, v);
        groups.entry(r).or_default().push(v);
    }
    let mut out: Vec<Vec<usize>> = groups.into_values().collect();
    out.sort();
    out
}
