//! PageRank, the standard form of PROTOCOL.md section 7: unweighted (an
//! edge counts once per listing, so parallel edges count several times; an
//! undirected edge is one edge each way, a self-loop one edge), starting
//! from 1/N, the rank of nodes without out-edges spread evenly over all
//! nodes, power iteration until the L1 change is below the tolerance or
//! the iteration cap is reached.

use std::collections::BTreeMap;

use hubbub_protocol::algorithm::AlgorithmResult;
use serde_json::json;

use super::track::{check, Tracker};
use super::{Observer, Outcome};
use crate::graph::Graph;

/// Nodes between two looks-in at the observer inside an iteration.
const CHUNK: usize = 4096;

/// How much a node's level must move before it is activated again.
const LEVEL_CHANGE: f64 = 0.01;

/// The `count` best ranked nodes, best first, as JSON for
/// `intermediate_results`: `{"iterations", "top": [{"id", "rank"}]}`.
fn top(graph: &Graph, rank: &[f64], iterations: u64, count: usize) -> serde_json::Value {
    let mut best: Vec<(f64, u32)> = Vec::with_capacity(count + 1);
    for (v, &r) in rank.iter().enumerate() {
        if best.len() == count && best.last().is_some_and(|l| l.0 >= r) {
            continue;
        }
        let at = best.partition_point(|b| b.0 >= r);
        best.insert(at, (r, v as u32));
        best.truncate(count);
    }
    let top: Vec<_> = best
        .iter()
        .map(|&(r, v)| json!({"id": graph.id(v), "rank": r}))
        .collect();
    json!({"iterations": iterations, "top": top})
}

/// Runs PageRank. One step per iteration, and a look-in (same step count)
/// every 4,096 nodes inside an iteration on larger graphs, so that a stop
/// is seen quickly. After each iteration a node is activated at level
/// `rank / max rank` when that level moved by more than 0.01 since it was
/// last activated (every node after the first iteration). No traversals:
/// every iteration reads every edge, counted in `Progress::edges`. The
/// fraction is the larger of iterations / cap and an estimate from the
/// convergence rate, never decreasing.
pub(crate) fn pagerank(
    graph: &Graph,
    damping: f64,
    tolerance: f64,
    max_iterations: u64,
    observer: &mut dyn Observer,
) -> Outcome {
    let n = graph.node_count();
    let adj = graph.adjacency();
    let nf = n as f64;
    let mut rank = vec![1.0 / nf; n];
    let mut next = vec![0.0; n];
    let mut sent = vec![f64::NAN; n];
    let mut t = Tracker::default();
    let mut first_delta = f64::NAN;
    let mut converged = false;
    let mut iterations = 0u64;

    while iterations < max_iterations {
        let dangling: f64 = (0..n as u32)
            .filter(|&u| adj.degree(u) == 0)
            .map(|u| rank[u as usize])
            .sum();
        next.fill((1.0 - damping) / nf + damping * dangling / nf);
        for u in 0..n {
            let (targets, _) = adj.neighbors(u as u32);
            if !targets.is_empty() {
                let share = damping * rank[u] / targets.len() as f64;
                for &v in targets {
                    next[v as usize] += share;
                }
                t.edges += targets.len() as u64;
            }
            if (u + 1) % CHUNK == 0 && u + 1 < n {
                let within = (iterations as f64 + (u + 1) as f64 / nf) / max_iterations as f64;
                let show = || top(graph, &rank, iterations, 10);
                check!(t.tick(observer, within.min(1.0), Some(&show)));
            }
        }
        let delta: f64 = rank.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
        std::mem::swap(&mut rank, &mut next);
        iterations += 1;
        t.nodes += n as u64;

        let max = rank.iter().copied().fold(0.0, f64::max);
        if max > 0.0 {
            for (v, &r) in rank.iter().enumerate() {
                let level = r / max;
                let last = sent[v];
                if last.is_nan() || (level - last).abs() > LEVEL_CHANGE {
                    sent[v] = level;
                    observer.activate(v as u32, level.clamp(0.0, 1.0));
                }
            }
        }

        converged = delta < tolerance;
        let mut fraction = iterations as f64 / max_iterations as f64;
        if iterations == 1 {
            first_delta = delta;
        } else if first_delta > tolerance && delta > 0.0 {
            // Steps of a geometric decay from the first change to the tolerance.
            let est = (first_delta / delta).ln() / (first_delta / tolerance).ln();
            if est.is_finite() {
                fraction = fraction.max(est.min(0.99));
            }
        }
        if converged {
            fraction = 1.0;
        }
        let show = || top(graph, &rank, iterations, 10);
        check!(t.step(observer, fraction, Some(&show)));
        if converged {
            break;
        }
    }
    let show = || top(graph, &rank, iterations, 10);
    check!(t.finish(observer, Some(&show)));

    // Keys are the ids as text: two ids with the same text (1 and "1")
    // share a key, and their ranks are added so that the ranks still sum to 1.
    let mut ranks = BTreeMap::new();
    for (v, &r) in rank.iter().enumerate() {
        *ranks.entry(graph.id(v as u32).to_string()).or_insert(0.0) += r;
    }
    Outcome::Done(AlgorithmResult::Ranks {
        ranks,
        iterations,
        converged,
    })
}
