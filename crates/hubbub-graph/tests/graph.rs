//! Graphs: the generators (reproducible, exact, connected enough, fast)
//! and every refusal of a bad graph or bad parameters, each naming what is
//! wrong.

mod common;

use std::collections::HashSet;
use std::time::Instant;

use common::*;
use hubbub_graph::algo::prepare;
use hubbub_graph::graph::{Graph, Limits};
use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters};
use hubbub_protocol::graph::{
    EdgeSpec, ExplicitGraph, GeneratedGraph, Generator, GraphNode, GraphSpec, NodeId, NodeSpec,
};

const GENERATORS: [Generator; 3] = [
    Generator::Grid,
    Generator::RandomGeometric,
    Generator::BarabasiAlbert,
];

fn generated(generator: Generator, nodes: u64, seed: u64) -> GraphSpec {
    GraphSpec::Generated(GeneratedGraph {
        generator,
        nodes,
        seed,
    })
}

fn gen(generator: Generator, nodes: u64, seed: u64) -> Graph {
    Graph::build(&generated(generator, nodes, seed), &Limits::default()).expect("graph")
}

fn edge_set(g: &Graph) -> Vec<(u32, u32, u64)> {
    g.edges().map(|(a, b, w)| (a, b, w.to_bits())).collect()
}

fn connected(g: &Graph) -> bool {
    let mut seen = vec![false; g.node_count()];
    let mut stack = vec![0u32];
    seen[0] = true;
    let mut count = 1;
    while let Some(u) = stack.pop() {
        for (v, _) in g.neighbors(u) {
            if !seen[v as usize] {
                seen[v as usize] = true;
                count += 1;
                stack.push(v);
            }
        }
    }
    count == g.node_count()
}

#[test]
fn generators_are_reproducible_exact_and_simple() {
    for generator in GENERATORS {
        for n in [1u64, 2, 3, 4, 7, 50, 1000] {
            let a = gen(generator, n, 7);
            let b = gen(generator, n, 7);
            assert_eq!(a.node_count() as u64, n, "{generator:?}");
            assert_eq!(edge_set(&a), edge_set(&b), "{generator:?} {n}");
            assert_eq!(a.to_event(), b.to_event());
            assert!(!a.directed());
            let mut pairs = HashSet::new();
            for (x, y, w) in a.edges() {
                assert_ne!(x, y, "{generator:?}: self-loop");
                assert!(
                    pairs.insert((x.min(y), x.max(y))),
                    "{generator:?}: duplicate"
                );
                let (p, q) = (a.coords(x).unwrap(), a.coords(y).unwrap());
                let len = ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt();
                assert!(
                    (w - len).abs() < 1e-12,
                    "{generator:?}: weight is the length"
                );
            }
            for i in 0..n as u32 {
                assert_eq!(a.id(i), &NodeId::Int(i as i64));
                assert_eq!(a.index_of(&NodeId::Int(i as i64)), Some(i));
                assert!(a.coords(i).is_some());
            }
            assert_eq!(a.index_of(&NodeId::Int(n as i64)), None);
            assert_eq!(a.index_of(&NodeId::Str("0".into())), None);
        }
        if generator != Generator::Grid {
            assert_ne!(
                edge_set(&gen(generator, 500, 1)),
                edge_set(&gen(generator, 500, 2)),
                "{generator:?}: seeds differ"
            );
        }
    }
}

#[test]
fn grid_is_a_grid() {
    let g = gen(Generator::Grid, 10, 0);
    // side 4: rows 0-3, 4-7, 8-9.
    assert_eq!(g.coords(9), Some((1.0, 2.0)));
    assert_eq!(g.edge_count(), 3 * 2 + 1 + 6);
    assert!(connected(&g));
}

#[test]
fn barabasi_albert_has_two_edges_per_new_node() {
    let g = gen(Generator::BarabasiAlbert, 1000, 3);
    assert_eq!(g.edge_count(), 2 * 1000 - 3);
    assert!(connected(&g));
}

#[test]
fn random_geometric_of_2000_nodes_is_connected_in_most_seeds() {
    let connected_seeds = (0..20)
        .filter(|&s| connected(&gen(Generator::RandomGeometric, 2000, s)))
        .count();
    assert!(connected_seeds >= 15, "{connected_seeds} of 20");
}

#[test]
fn the_largest_graphs_generate_quickly_within_the_limits() {
    for generator in GENERATORS {
        let t = Instant::now();
        let g = gen(generator, 200_000, 1);
        assert_eq!(g.node_count(), 200_000);
        assert!(g.edge_count() <= 2_000_000, "{generator:?}");
        eprintln!(
            "{generator:?} 200k: {} edges in {:?} (debug build)",
            g.edge_count(),
            t.elapsed()
        );
    }
}

fn refused(spec: GraphSpec, limits: Limits) -> String {
    Graph::build(&spec, &limits).expect_err("refused").0
}

#[test]
fn oversized_and_empty_generated_graphs_are_refused_at_once() {
    let t = Instant::now();
    let e = refused(
        generated(Generator::Grid, 1_000_000_000_000, 1),
        Limits::default(),
    );
    assert!(e.contains("1000000000000") && e.contains("200000"), "{e}");
    assert!(t.elapsed().as_millis() < 100);
    let e = refused(
        generated(Generator::RandomGeometric, 0, 1),
        Limits::default(),
    );
    assert!(e.contains("node"), "{e}");
    let small = Limits {
        max_nodes: 1000,
        max_edges: 100,
    };
    for generator in GENERATORS {
        let e = refused(generated(generator, 1000, 1), small);
        assert!(e.contains("edges") && e.contains("100"), "{e}");
    }
}

fn explicit(nodes: Vec<NodeSpec>, edges: Vec<(NodeId, NodeId, Option<f64>)>) -> GraphSpec {
    GraphSpec::Explicit(ExplicitGraph {
        nodes,
        edges: edges
            .into_iter()
            .map(|(from, to, weight)| EdgeSpec { from, to, weight })
            .collect(),
        directed: None,
    })
}

fn placed(id: NodeId, x: Option<f64>, y: Option<f64>) -> NodeSpec {
    NodeSpec::Node(GraphNode { id, x, y })
}

#[test]
fn bad_explicit_graphs_are_refused_naming_the_problem() {
    let a = || NodeSpec::Id("a".into());
    let cases: Vec<(GraphSpec, Limits, &[&str])> = vec![
        (explicit(vec![], vec![]), Limits::default(), &["no nodes"]),
        (
            explicit(vec![a(), NodeSpec::Id(1.into()), a()], vec![]),
            Limits::default(),
            &["duplicate", "\"a\""],
        ),
        (
            explicit(
                vec![a(), NodeSpec::Id(1.into())],
                vec![("a".into(), 1.into(), None), ("a".into(), "1".into(), None)],
            ),
            Limits::default(),
            &["edge 1", "\"1\""],
        ),
        (
            explicit(vec![a()], vec![("a".into(), "a".into(), Some(f64::NAN))]),
            Limits::default(),
            &["edge 0", "non-finite weight"],
        ),
        (
            explicit(vec![placed("a".into(), Some(1.0), None)], vec![]),
            Limits::default(),
            &["\"a\"", "one of x and y"],
        ),
        (
            explicit(
                vec![placed(5.into(), Some(1.0), Some(f64::INFINITY))],
                vec![],
            ),
            Limits::default(),
            &["5", "non-finite coordinate"],
        ),
        (
            explicit(
                vec![a(), NodeSpec::Id(1.into()), NodeSpec::Id(2.into())],
                vec![],
            ),
            Limits {
                max_nodes: 2,
                max_edges: 10,
            },
            &["3 nodes", "limit of 2"],
        ),
        (
            explicit(vec![a()], vec![("a".into(), "a".into(), None); 3]),
            Limits {
                max_nodes: 2,
                max_edges: 2,
            },
            &["3 edges", "limit of 2"],
        ),
    ];
    for (spec, limits, words) in cases {
        let e = refused(spec, limits);
        for w in words {
            assert!(e.contains(w), "{e:?} lacks {w:?}");
        }
    }
}

#[test]
fn explicit_graphs_keep_ids_weights_and_loops() {
    let spec = explicit(
        vec![
            NodeSpec::Id(1.into()),
            NodeSpec::Id("1".into()),
            placed("p".into(), Some(0.5), Some(-2.0)),
        ],
        vec![
            (1.into(), "1".into(), None),
            ("p".into(), "p".into(), Some(-3.0)),
            (1.into(), "1".into(), Some(2.0)),
        ],
    );
    let g = Graph::build(&spec, &Limits::default()).unwrap();
    assert_eq!((g.node_count(), g.edge_count()), (3, 3));
    assert_eq!(g.index_of(&"1".into()), Some(1));
    assert_eq!(g.coords(2), Some((0.5, -2.0)));
    assert_eq!(g.coords(0), None);
    let ev = serde_json::to_value(g.to_event()).unwrap();
    assert_eq!(
        ev,
        serde_json::json!({
            "directed": false,
            "nodes": [{"id": 1}, {"id": "1"}, {"id": "p", "x": 0.5, "y": -2.0}],
            "edges": [[1, "1", 1.0], ["p", "p", -3.0], [1, "1", 2.0]]
        })
    );
    // A self-loop is one edge at its node, parallel edges are two.
    assert_eq!(g.neighbors(2).len(), 1);
    assert_eq!(g.neighbors(0).len(), 2);
}

fn param_error(
    algorithm: Algorithm,
    spec: GraphSpec,
    edit: impl FnOnce(&mut AlgorithmParameters),
) -> String {
    let g = Graph::build(&spec, &Limits::default()).unwrap();
    let mut p = AlgorithmParameters::new(spec);
    edit(&mut p);
    prepare(&algorithm, &g, &p).expect_err("refused").0
}

#[test]
fn bad_parameters_are_refused_naming_the_problem() {
    let plain = || spec(3, &[(0, 1, 1.0), (1, 2, -1.5)], false, None);
    let ok = || spec(3, &[(0, 1, 1.0)], false, None);
    let st = |p: &mut AlgorithmParameters| {
        p.source = Some(id(0));
        p.target = Some(id(2));
    };
    let cases: Vec<(String, &[&str])> = vec![
        (
            param_error(Algorithm::Other("sort".into()), ok(), |_| {}),
            &["sort", "bfs"],
        ),
        (
            param_error(Algorithm::Bfs, ok(), |p| p.source = Some(id(9))),
            &["source", "\"v9\""],
        ),
        (
            param_error(Algorithm::Dfs, ok(), |p| p.target = Some(3.into())),
            &["target", "3"],
        ),
        (
            param_error(Algorithm::Dijkstra, ok(), |p| p.target = Some(id(1))),
            &["dijkstra", "source"],
        ),
        (
            param_error(Algorithm::Astar, ok(), |p| p.source = Some(id(1))),
            &["astar", "target"],
        ),
        (
            param_error(Algorithm::Dijkstra, plain(), st),
            &["edge 1", "\"v1\"", "-1.5"],
        ),
        (
            param_error(Algorithm::Astar, plain(), st),
            &["edge 1", "-1.5"],
        ),
        (
            param_error(Algorithm::Astar, ok(), st),
            &["coordinates", "\"v0\""],
        ),
        (
            param_error(Algorithm::Pagerank, ok(), |p| p.damping = Some(1.0)),
            &["damping", "1"],
        ),
        (
            param_error(Algorithm::Pagerank, ok(), |p| p.damping = Some(f64::NAN)),
            &["damping"],
        ),
        (
            param_error(Algorithm::Pagerank, ok(), |p| p.tolerance = Some(0.0)),
            &["tolerance"],
        ),
        (
            param_error(Algorithm::Pagerank, ok(), |p| p.max_iterations = Some(0)),
            &["max_iterations"],
        ),
    ];
    for (e, words) in cases {
        for w in words {
            assert!(e.contains(w), "{e:?} lacks {w:?}");
        }
    }
    // Negative weights are fine where weights do not matter.
    for algorithm in [
        Algorithm::Bfs,
        Algorithm::Pagerank,
        Algorithm::ConnectedComponents,
    ] {
        let g = Graph::build(&plain(), &Limits::default()).unwrap();
        assert!(prepare(&algorithm, &g, &AlgorithmParameters::new(plain())).is_ok());
    }
}
