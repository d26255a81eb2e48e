//! Breadth-first and depth-first search from one node, over out-edges
//! (every edge at a node on an undirected graph), neighbours in the order
//! the edges were listed.

use hubbub_protocol::algorithm::AlgorithmResult;

use super::track::{check, Tracker};
use super::{Observer, Outcome};
use crate::graph::Graph;

fn order(graph: &Graph, nodes: &[u32]) -> Outcome {
    Outcome::Done(AlgorithmResult::Order {
        order: nodes.iter().map(|&v| graph.id(v).clone()).collect(),
    })
}

/// Breadth-first: visits (activates, level 1.0) nodes in the order they are
/// dequeued, which is the order they were discovered; walks (traverses)
/// every out-edge of each visited node; one step per visit. Stops right
/// after visiting `target`, if given.
pub(crate) fn bfs(
    graph: &Graph,
    source: u32,
    target: Option<u32>,
    observer: &mut dyn Observer,
) -> Outcome {
    let n = graph.node_count();
    let adj = graph.adjacency();
    let mut seen = vec![false; n];
    let mut queue: Vec<u32> = Vec::with_capacity(n.min(1 << 16));
    let mut t = Tracker::default();
    seen[source as usize] = true;
    queue.push(source);
    let mut head = 0;
    while head < queue.len() {
        let u = queue[head];
        head += 1;
        t.nodes += 1;
        observer.activate(u, 1.0);
        if Some(u) == target {
            check!(t.step(observer, 1.0, None));
            break;
        }
        let (targets, weights) = adj.neighbors(u);
        for (&v, &w) in targets.iter().zip(weights) {
            t.edges += 1;
            observer.traverse(u, v, w);
            if !seen[v as usize] {
                seen[v as usize] = true;
                queue.push(v);
            }
        }
        let fraction = if head == queue.len() {
            1.0
        } else {
            head as f64 / n as f64
        };
        check!(t.step(observer, fraction, None));
    }
    check!(t.finish(observer, None));
    order(graph, &queue[..head])
}

/// Depth-first, iteratively with a stack of (node, next edge), so the
/// order is a true preorder: each node after the first is a neighbour of
/// the node on top of the stack. Visits (activates, level 1.0) a node when
/// first reached, walks (traverses) every out-edge of each visited node as
/// it comes to it; one step per visit. Stops right after visiting
/// `target`, if given.
pub(crate) fn dfs(
    graph: &Graph,
    source: u32,
    target: Option<u32>,
    observer: &mut dyn Observer,
) -> Outcome {
    let n = graph.node_count();
    let adj = graph.adjacency();
    let mut seen = vec![false; n];
    let mut visited: Vec<u32> = Vec::new();
    let mut stack: Vec<(u32, usize)> = Vec::new();
    let mut t = Tracker::default();

    seen[source as usize] = true;
    visited.push(source);
    t.nodes += 1;
    observer.activate(source, 1.0);
    if Some(source) == target {
        check!(t.step(observer, 1.0, None));
        return order(graph, &visited);
    }
    check!(t.step(observer, 1.0 / n as f64, None));
    stack.push((source, 0));
    while let Some(top) = stack.last_mut() {
        let (u, pos) = *top;
        let (targets, weights) = adj.neighbors(u);
        if pos == targets.len() {
            stack.pop();
            continue;
        }
        top.1 += 1;
        let (v, w) = (targets[pos], weights[pos]);
        t.edges += 1;
        observer.traverse(u, v, w);
        if seen[v as usize] {
            continue;
        }
        seen[v as usize] = true;
        visited.push(v);
        t.nodes += 1;
        observer.activate(v, 1.0);
        if Some(v) == target {
            check!(t.step(observer, 1.0, None));
            return order(graph, &visited);
        }
        check!(t.step(observer, visited.len() as f64 / n as f64, None));
        stack.push((v, 0));
    }
    check!(t.finish(observer, None));
    order(graph, &visited)
}
