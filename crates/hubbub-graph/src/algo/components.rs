//! Connected components (weakly connected ones on a directed graph): a
//! breadth-first walk from each node not yet in a component, in input
//! order.

use hubbub_protocol::algorithm::AlgorithmResult;

use super::track::{check, Tracker};
use super::{Observer, Outcome};
use crate::graph::{Csr, Graph};

/// The activation level of the `k`-th component (0-based): `1 - 0.9 *
/// frac(k / golden ratio)`, so the first is 1.0 and neighbouring components
/// get levels far apart, all in (0.1, 1].
pub fn component_level(k: u32) -> f64 {
    let x = f64::from(k) * 0.618_033_988_749_894_9;
    1.0 - 0.9 * (x - x.floor())
}

/// Components ordered by their first node in input order, the nodes of
/// each in input order. Each node is activated at its component's level
/// ([`component_level`]) when the walk reaches it; every edge at it is
/// traversed (in its own direction: `from` is the edge's start); one step
/// per node.
pub(crate) fn components(graph: &Graph, observer: &mut dyn Observer) -> Outcome {
    let n = graph.node_count();
    let out = graph.adjacency();
    let inward = graph
        .directed()
        .then(|| Csr::build(n, graph.edge_list(), false, true));
    const NONE: u32 = u32::MAX;
    let mut comp = vec![NONE; n];
    let mut queue: Vec<u32> = Vec::new();
    let mut t = Tracker::default();
    let mut k = 0u32;
    for s in 0..n as u32 {
        if comp[s as usize] != NONE {
            continue;
        }
        let level = component_level(k);
        comp[s as usize] = k;
        queue.clear();
        queue.push(s);
        let mut head = 0;
        while head < queue.len() {
            let u = queue[head];
            head += 1;
            t.nodes += 1;
            observer.activate(u, level);
            let (targets, weights) = out.neighbors(u);
            for (&v, &w) in targets.iter().zip(weights) {
                t.edges += 1;
                observer.traverse(u, v, w);
                if comp[v as usize] == NONE {
                    comp[v as usize] = k;
                    queue.push(v);
                }
            }
            if let Some(inward) = &inward {
                let (sources, weights) = inward.neighbors(u);
                for (&v, &w) in sources.iter().zip(weights) {
                    t.edges += 1;
                    observer.traverse(v, u, w);
                    if comp[v as usize] == NONE {
                        comp[v as usize] = k;
                        queue.push(v);
                    }
                }
            }
            check!(t.step(observer, t.nodes as f64 / n as f64, None));
        }
        k += 1;
    }
    check!(t.finish(observer, None));
    let mut components = vec![Vec::new(); k as usize];
    for (v, &c) in comp.iter().enumerate() {
        components[c as usize].push(graph.id(v as u32).clone());
    }
    Outcome::Done(AlgorithmResult::Components { components })
}
