//! Dijkstra and A*: one search, A* being Dijkstra ordered by distance plus
//! a heuristic (a scale of 0 makes it Dijkstra). A binary heap with lazy
//! deletion over the CSR adjacency; nothing allocated per step.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use hubbub_protocol::algorithm::AlgorithmResult;

use super::track::{check, Tracker};
use super::{Observer, Outcome};
use crate::graph::Graph;

/// A heap entry: the smallest key comes out first (ties: smaller node).
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: f64,
    node: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .total_cmp(&self.key)
            .then_with(|| other.node.cmp(&self.node))
    }
}

/// The distance between two points without overflow for any finite
/// coordinates (quartered, then scaled back: `4 *` the result).
pub(crate) fn quarter_distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 * 0.25 - b.0 * 0.25).hypot(a.1 * 0.25 - b.1 * 0.25)
}

/// The A* heuristic scale: the smallest weight / length ratio over the
/// edges (edges of length 0, or with an end without coordinates, skipped),
/// 0 (Dijkstra) when that is undefined, 0 or not finite; shrunk by 1e-9 so
/// that rounding never makes the heuristic overestimate.
pub(crate) fn heuristic_scale(graph: &Graph) -> f64 {
    let mut ratio = f64::INFINITY;
    for (a, b, w) in graph.edges() {
        if let (Some(pa), Some(pb)) = (graph.coords(a), graph.coords(b)) {
            let len = quarter_distance(pa, pb) * 4.0;
            if len > 0.0 {
                ratio = ratio.min(w / len);
            }
        }
    }
    if ratio.is_finite() && ratio > 0.0 {
        ratio * (1.0 - 1e-9)
    } else {
        0.0
    }
}

/// Shortest path from `source` to `target`, weights non-negative (checked
/// by `prepare`). `scale` 0 is Dijkstra, above 0 A* with the heuristic
/// `scale * distance to target`. Activations: 0.5 when a node's tentative
/// distance is first set or lowered (it joins the frontier), 1.0 when it is
/// settled. Every edge out of a settled node is traversed; one step per
/// settled node; `path` once, when the target is settled (optimal).
pub(crate) fn shortest(
    graph: &Graph,
    source: u32,
    target: u32,
    scale: f64,
    observer: &mut dyn Observer,
) -> Outcome {
    let n = graph.node_count();
    let adj = graph.adjacency();
    let goal = graph.coords(target);
    let h = |v: u32| -> f64 {
        match (scale > 0.0, goal, graph.coords(v)) {
            (true, Some(g), Some(p)) => scale * quarter_distance(p, g) * 4.0,
            _ => 0.0,
        }
    };
    let mut dist = vec![f64::INFINITY; n];
    let mut pred = vec![u32::MAX; n];
    let mut done = vec![false; n];
    let mut heap = BinaryHeap::with_capacity(n.min(1 << 16));
    let mut t = Tracker::default();

    dist[source as usize] = 0.0;
    heap.push(Entry {
        key: h(source),
        node: source,
    });
    observer.activate(source, 0.5);
    let mut settled = 0usize;
    while let Some(Entry { node: u, .. }) = heap.pop() {
        if done[u as usize] {
            continue;
        }
        done[u as usize] = true;
        settled += 1;
        t.nodes += 1;
        observer.activate(u, 1.0);
        let du = dist[u as usize];
        if u == target {
            let mut path = vec![target];
            let mut v = target;
            while v != source {
                v = pred[v as usize];
                path.push(v);
            }
            path.reverse();
            observer.path(&path, du, true);
            check!(t.step(observer, 1.0, None));
            return Outcome::Done(AlgorithmResult::Path {
                path: Some(path.iter().map(|&v| graph.id(v).clone()).collect()),
                cost: Some(du),
            });
        }
        let (targets, weights) = adj.neighbors(u);
        for (&v, &w) in targets.iter().zip(weights) {
            t.edges += 1;
            observer.traverse(u, v, w);
            let nd = du + w;
            if !done[v as usize] && nd < dist[v as usize] {
                dist[v as usize] = nd;
                pred[v as usize] = u;
                heap.push(Entry {
                    key: nd + h(v),
                    node: v,
                });
                observer.activate(v, 0.5);
            }
        }
        check!(t.step(observer, settled as f64 / n as f64, None));
    }
    check!(t.finish(observer, None));
    Outcome::Done(AlgorithmResult::Path {
        path: None,
        cost: None,
    })
}
