//! The six algorithms on random graphs, directed and undirected, checked
//! against `petgraph` and plainly written references, and what they tell
//! their observer.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;
use hubbub_graph::algo::{prepare, run, Outcome};
use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters, AlgorithmResult};
use proptest::prelude::*;

type Edges = Vec<(usize, usize, f64)>;

/// A random graph: node count, edges (weights 0 to 10), directed.
fn graphs() -> impl Strategy<Value = (usize, Edges, bool)> {
    (1usize..24, any::<bool>()).prop_flat_map(|(n, directed)| {
        let edge = (0..n, 0..n, 0.0f64..10.0);
        (
            Just(n),
            proptest::collection::vec(edge, 0..(3 * n + 2)),
            Just(directed),
        )
    })
}

/// A random graph with coordinates, each edge weighing its length times 1
/// to 3 (so the A* heuristic matters).
fn placed_graphs() -> impl Strategy<Value = (usize, Edges, bool, Vec<(f64, f64)>)> {
    (1usize..24, any::<bool>()).prop_flat_map(|(n, directed)| {
        (
            Just(n),
            proptest::collection::vec((0..n, 0..n, 1.0f64..3.0), 0..(3 * n + 2)),
            Just(directed),
            proptest::collection::vec((0.0f64..10.0, 0.0f64..10.0), n),
        )
            .prop_map(|(n, e, d, c)| {
                let e = e
                    .into_iter()
                    .map(|(a, b, f)| {
                        let (dx, dy) = (c[a].0 - c[b].0, c[a].1 - c[b].1);
                        (a, b, (dx * dx + dy * dy).sqrt() * f)
                    })
                    .collect();
                (n, e, d, c)
            })
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Checks a path result against petgraph's cost (None: unreachable) and
/// that the path is a real one of that cost.
fn check_path(
    result: AlgorithmResult,
    expected: Option<f64>,
    adj: &[Vec<(usize, f64)>],
    (s, t): (usize, usize),
) -> Result<(), TestCaseError> {
    let AlgorithmResult::Path { path, cost } = result else {
        return Err(TestCaseError::fail("not a path"));
    };
    match (path, cost, expected) {
        (None, None, None) => {}
        (Some(path), Some(cost), Some(exp)) => {
            prop_assert!(close(cost, exp), "cost {} expected {}", cost, exp);
            let nodes: Vec<usize> = path.iter().map(num).collect();
            prop_assert_eq!(nodes[0], s);
            prop_assert_eq!(*nodes.last().unwrap(), t);
            let mut sum = 0.0;
            for w in nodes.windows(2) {
                let best = adj[w[0]]
                    .iter()
                    .filter(|e| e.0 == w[1])
                    .map(|e| e.1)
                    .fold(f64::INFINITY, f64::min);
                prop_assert!(best.is_finite(), "no edge {} -> {}", w[0], w[1]);
                sum += best;
            }
            prop_assert!(close(sum, cost));
        }
        other => return Err(TestCaseError::fail(format!("disagrees: {other:?}"))),
    }
    Ok(())
}

/// Fractions never decrease and end at 1.0; activations name real nodes;
/// traversals are real edges with their weights.
fn check_observed(
    rec: &Recorder,
    n: usize,
    edges: &Edges,
    directed: bool,
) -> Result<(), TestCaseError> {
    prop_assert!(rec.fractions.windows(2).all(|w| w[0] <= w[1]));
    prop_assert_eq!(rec.fractions.last().copied(), Some(1.0));
    prop_assert!(rec.steps.windows(2).all(|w| w[0] <= w[1]));
    for &(v, level) in &rec.activations {
        prop_assert!((v as usize) < n && (0.0..=1.0).contains(&level));
    }
    let real: HashSet<(usize, usize, u64)> = edges
        .iter()
        .flat_map(|&(a, b, w)| {
            let mut v = vec![(a, b, w.to_bits())];
            if !directed {
                v.push((b, a, w.to_bits()));
            }
            v
        })
        .collect();
    for &(a, b, w) in &rec.traversals {
        prop_assert!(real.contains(&(a as usize, b as usize, w.to_bits())));
    }
    Ok(())
}

/// Hop distances from `s` by petgraph's dijkstra with unit weights.
fn hops(n: usize, edges: &Edges, directed: bool, s: usize) -> HashMap<usize, f64> {
    let g = petgraph_of(n, edges, directed);
    petgraph::algo::dijkstra(&g, petgraph::graph::NodeIndex::new(s), None, |_| 1.0)
        .into_iter()
        .map(|(k, v)| (k.index(), v))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn dijkstra_matches_petgraph((n, edges, directed) in graphs(), s in 0usize..24, t in 0usize..24) {
        let (s, t) = (s % n, t % n);
        let (_, out, rec) = go(Algorithm::Dijkstra, spec(n, &edges, directed, None), |p| {
            p.source = Some(id(s));
            p.target = Some(id(t));
        });
        let g = petgraph_of(n, &edges, directed);
        let costs = petgraph::algo::dijkstra(&g, petgraph::graph::NodeIndex::new(s), None, |e| *e.weight());
        let expected = costs.get(&petgraph::graph::NodeIndex::new(t)).copied();
        check_observed(&rec, n, &edges, directed)?;
        prop_assert_eq!(rec.paths.len(), usize::from(expected.is_some()));
        if let Some((_, _, optimal)) = rec.paths.first() {
            prop_assert!(*optimal);
        }
        check_path(done(out), expected, &adjacency(n, &edges, directed), (s, t))?;
    }

    #[test]
    fn astar_matches_petgraph((n, edges, directed, coords) in placed_graphs(), s in 0usize..24, t in 0usize..24) {
        let (s, t) = (s % n, t % n);
        let (_, out, rec) = go(Algorithm::Astar, spec(n, &edges, directed, Some(&coords)), |p| {
            p.source = Some(id(s));
            p.target = Some(id(t));
        });
        let g = petgraph_of(n, &edges, directed);
        let goal = petgraph::graph::NodeIndex::new(t);
        let expected = petgraph::algo::astar(&g, petgraph::graph::NodeIndex::new(s), |v| v == goal, |e| *e.weight(), |_| 0.0)
            .map(|(c, _)| c);
        check_observed(&rec, n, &edges, directed)?;
        check_path(done(out), expected, &adjacency(n, &edges, directed), (s, t))?;
    }

    #[test]
    fn pagerank_matches_the_reference((n, edges, directed) in graphs(), d in 0.05f64..0.95) {
        let (_, out, rec) = go(Algorithm::Pagerank, spec(n, &edges, directed, None), |p| {
            p.damping = Some(d);
            p.tolerance = Some(1e-12);
            p.max_iterations = Some(500);
        });
        let (expected, iterations, converged) =
            reference_pagerank(&adjacency(n, &edges, directed), d, 1e-12, 500);
        let AlgorithmResult::Ranks { ranks, iterations: it, converged: c } = done(out) else {
            return Err(TestCaseError::fail("not ranks"));
        };
        prop_assert_eq!((it, c), (iterations, converged));
        prop_assert_eq!(ranks.len(), n);
        for (v, r) in expected.iter().enumerate() {
            let key = format!("v{}", v);
            prop_assert!((ranks[&key] - r).abs() < 1e-6, "{}: {} vs {}", key, ranks[&key], r);
        }
        prop_assert!((ranks.values().sum::<f64>() - 1.0).abs() < 1e-9);
        check_observed(&rec, n, &edges, directed)?;
        prop_assert!(!rec.intermediate.is_empty());
    }

    #[test]
    fn components_match_union_find((n, edges, directed) in graphs()) {
        let (_, out, rec) = go(Algorithm::ConnectedComponents, spec(n, &edges, directed, None), |_| {});
        let AlgorithmResult::Components { components } = done(out) else {
            return Err(TestCaseError::fail("not components"));
        };
        let got: Vec<Vec<usize>> = components.iter().map(|c| c.iter().map(num).collect()).collect();
        // Ordered by first node, each in input order.
        prop_assert!(got.windows(2).all(|w| w[0][0] < w[1][0]));
        prop_assert!(got.iter().all(|c| c.windows(2).all(|w| w[0] < w[1])));
        let mut sorted = got.clone();
        sorted.sort();
        prop_assert_eq!(sorted, reference_components(n, &edges));
        check_observed(&rec, n, &edges, directed)?;
    }

    #[test]
    fn bfs_goes_by_hop_distance((n, edges, directed) in graphs(), s in 0usize..24) {
        let s = s % n;
        let (_, out, rec) = go(Algorithm::Bfs, spec(n, &edges, directed, None), |p| p.source = Some(id(s)));
        let AlgorithmResult::Order { order } = done(out) else {
            return Err(TestCaseError::fail("not an order"));
        };
        let order: Vec<usize> = order.iter().map(num).collect();
        let hops = hops(n, &edges, directed, s);
        prop_assert_eq!(order[0], s);
        prop_assert_eq!(order.iter().copied().collect::<HashSet<_>>(), hops.keys().copied().collect());
        prop_assert_eq!(order.len(), hops.len());
        prop_assert!(order.windows(2).all(|w| hops[&w[0]] <= hops[&w[1]]));
        check_observed(&rec, n, &edges, directed)?;
    }

    #[test]
    fn dfs_is_a_preorder((n, edges, directed) in graphs(), s in 0usize..24) {
        let s = s % n;
        let (_, out, rec) = go(Algorithm::Dfs, spec(n, &edges, directed, None), |p| p.source = Some(id(s)));
        let AlgorithmResult::Order { order } = done(out) else {
            return Err(TestCaseError::fail("not an order"));
        };
        let order: Vec<usize> = order.iter().map(num).collect();
        let adj = adjacency(n, &edges, directed);
        let hops = hops(n, &edges, directed, s);
        prop_assert_eq!(order.iter().copied().collect::<HashSet<_>>(), hops.keys().copied().collect());
        prop_assert_eq!(order.len(), hops.len());
        // Each next node hangs off the deepest node on the stack that still
        // has it as a neighbour; the nodes left above it are finished.
        let mut seen = HashSet::from([order[0]]);
        let mut stack = vec![order[0]];
        for &v in &order[1..] {
            loop {
                let Some(&top) = stack.last() else {
                    return Err(TestCaseError::fail(format!("{v} hangs off nothing")));
                };
                if adj[top].iter().any(|e| e.0 == v) {
                    break;
                }
                prop_assert!(adj[top].iter().all(|e| seen.contains(&e.0)), "{} left unfinished", top);
                stack.pop();
            }
            seen.insert(v);
            stack.push(v);
        }
        check_observed(&rec, n, &edges, directed)?;
    }

    #[test]
    fn a_stop_after_k_steps_stops((n, edges, directed) in graphs(), k in 1usize..6, which in 0usize..6) {
        let algorithm = Algorithm::KNOWN[which].clone();
        let coords: Vec<(f64, f64)> = (0..n).map(|i| (i as f64, 0.0)).collect();
        let edges: Edges = edges.into_iter().map(|(a, b, w)| (a, b, w + (a as f64 - b as f64).abs())).collect();
        let sp = spec(n, &edges, directed, Some(&coords));
        let graph = hubbub_graph::graph::Graph::build(&sp, &Default::default()).unwrap();
        let mut p = AlgorithmParameters::new(sp);
        p.source = Some(id(0));
        p.target = Some(id(n - 1));
        let params = prepare(&algorithm, &graph, &p).unwrap();
        let mut full = Recorder::default();
        prop_assert!(matches!(run(&algorithm, &graph, &params, &mut full), Outcome::Done(_)));
        let mut rec = Recorder { stop_at: Some(k), ..Default::default() };
        let out = run(&algorithm, &graph, &params, &mut rec);
        if k <= full.fractions.len() {
            prop_assert_eq!(out, Outcome::Stopped);
            prop_assert_eq!(rec.fractions.len(), k);
        } else {
            prop_assert!(matches!(out, Outcome::Done(_)));
        }
    }
}

#[test]
fn bfs_and_dfs_stop_at_the_target_and_start_from_the_first_node() {
    // A path 0 - 1 - 2 - 3 and a loose node 4.
    let edges = [(0, 1, 1.0), (1, 2, 1.0), (2, 3, 1.0)];
    for algorithm in [Algorithm::Bfs, Algorithm::Dfs] {
        let (_, out, rec) = go(algorithm.clone(), spec(5, &edges, false, None), |p| {
            p.target = Some(id(2))
        });
        let AlgorithmResult::Order { order } = done(out) else {
            panic!()
        };
        assert_eq!(order, vec![id(0), id(1), id(2)], "{algorithm}");
        assert_eq!(rec.fractions.last(), Some(&1.0));
        let (_, out, _) = go(algorithm, spec(5, &edges, false, None), |_| {});
        assert_eq!(
            done(out),
            AlgorithmResult::Order {
                order: (0..4).map(id).collect()
            }
        );
    }
}

#[test]
fn pagerank_reaching_the_cap_has_not_converged() {
    let edges = [(0, 1, 1.0), (1, 2, 1.0), (2, 0, 1.0), (2, 1, 1.0)];
    let (_, out, rec) = go(Algorithm::Pagerank, spec(3, &edges, true, None), |p| {
        p.max_iterations = Some(3)
    });
    let AlgorithmResult::Ranks {
        iterations,
        converged,
        ..
    } = done(out)
    else {
        panic!()
    };
    assert_eq!((iterations, converged), (3, false));
    assert_eq!(rec.steps, vec![1, 2, 3]);
    assert_eq!(rec.fractions.last(), Some(&1.0));
}

#[test]
fn unreachable_target_gives_null_path_and_cost() {
    let (_, out, rec) = go(
        Algorithm::Dijkstra,
        spec(3, &[(0, 1, 2.0)], true, None),
        |p| {
            p.source = Some(id(1));
            p.target = Some(id(0));
        },
    );
    assert_eq!(
        done(out),
        AlgorithmResult::Path {
            path: None,
            cost: None
        }
    );
    assert!(rec.paths.is_empty());
    assert_eq!(rec.fractions.last(), Some(&1.0));
}
